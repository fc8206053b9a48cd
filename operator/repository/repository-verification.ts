// Decisions for verifying a repository with a short mover Job. Pure: the operator feeds in
// what it observed and gets back what to do and what the status becomes.
import type { RepositoryStatus } from '../../generated/types.js';
import type { MoverResult } from '../mover/mover-contract.js';
import { ConditionType, Reason } from '../reasons.js';
import { setCondition, type ConditionStatus } from '../runtime/conditions.js';
import { setReady } from '../runtime/kstatus.js';

export const GENERATION_ANNOTATION = 'kopia.io/generation';
export const SECRETS_HASH_ANNOTATION = 'kopia.io/secrets-hash';
/**
 * Set by the user, to a new value each time (a timestamp): forget the known unique ID
 * once, so the next verification may create a repository (with create.enabled) where the
 * verified one went missing, or accept the other repository found in its place.
 */
export const REINITIALIZE_ANNOTATION = 'kopia.io/reinitialize';

export interface ObservedJob {
  uid: string;
  finished: boolean;
  /** Its result is already in status (status.collectedJobUID). */
  collected: boolean;
  generation: number;
  secretsHash: string;
  specHash: string;
}

export type VerificationPlan =
  | { action: 'start' }
  | { action: 'wait' }
  | { action: 'replace' }
  | { action: 'collect' }
  | { action: 'remove' }
  | { action: 'idle'; requeueAfterMs: number };

/** The reinitialize request not yet acted on, if any. */
export function pendingReinitialize(
  annotations: Record<string, string> | undefined,
  status: RepositoryStatus | undefined,
): string | undefined {
  const request = annotations?.[REINITIALIZE_ANNOTATION];
  return request && request !== status?.reinitializeHandled ? request : undefined;
}

/** Go-style duration ("10m", "1h30m", "45s") in milliseconds. */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g;
  let matched = '';
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * units[m[2]];
    matched += m[0];
  }
  if (!text || matched !== text) throw new Error(`invalid duration ${JSON.stringify(text)}`);
  return total;
}

export function planVerification(args: {
  status: RepositoryStatus | undefined;
  generation: number;
  secretsHash: string;
  desiredSpecHash: string;
  job: ObservedJob | undefined;
  now: Date;
  intervalMs: number;
  reinitializePending?: boolean;
}): VerificationPlan {
  const { status, generation, secretsHash, job, now, intervalMs } = args;
  if (job) {
    if (job.finished) return job.collected ? { action: 'remove' } : { action: 'collect' };
    const stale = job.generation !== generation || job.secretsHash !== secretsHash || job.specHash !== args.desiredSpecHash;
    return stale ? { action: 'replace' } : { action: 'wait' };
  }
  const lastCheck = status?.lastCheckTime ? Date.parse(status.lastCheckTime) : undefined;
  const changed = status?.observedGeneration !== generation || status?.secretsHash !== secretsHash;
  if (changed || lastCheck === undefined || args.reinitializePending) return { action: 'start' };
  const due = lastCheck + intervalMs - now.getTime();
  return due <= 0 ? { action: 'start' } : { action: 'idle', requeueAfterMs: due };
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

function withReadyAndConnected(
  status: RepositoryStatus,
  ready: [ConditionStatus, string, string],
  connected: [ConditionStatus, string, string],
  generation: number,
  now: Date,
): RepositoryStatus {
  let conditions = setReady(status.conditions, { status: ready[0], reason: ready[1], message: ready[2] }, generation, now);
  conditions = setCondition(
    conditions,
    { type: ConditionType.Connected, status: connected[0], reason: connected[1], message: connected[2] },
    generation,
    now,
  );
  return { ...status, conditions };
}

/**
 * Status after a verification Job finished with result. `reinitialize` is the request the
 * Job ran for (it carried no expected unique ID): on success it is recorded as handled.
 */
export function statusFromResult(
  status: RepositoryStatus,
  result: MoverResult,
  job: ObservedJob,
  now: Date,
  reinitialize?: string,
): RepositoryStatus {
  const base: RepositoryStatus = {
    ...status,
    observedGeneration: job.generation,
    secretsHash: job.secretsHash,
    lastCheckTime: iso(now),
    collectedJobUID: job.uid,
  };
  if (result.ok && result.repository) {
    const r = result.repository;
    if (status.uniqueID && r.uniqueID !== status.uniqueID && !reinitialize) {
      // The mover checks this too; a result without the check must not adopt another repository.
      const message = `the configured location holds repository ${r.uniqueID}, not ${status.uniqueID} verified there before`;
      return withReadyAndConnected(
        base,
        ['False', Reason.RepositoryChanged, message],
        ['False', Reason.RepositoryChanged, message],
        job.generation,
        now,
      );
    }
    const message = `connected; unique ID ${r.uniqueID.slice(0, 16)}…, ${r.snapshotCount} snapshot(s)${result.created ? '; created by this verification' : ''}`;
    return withReadyAndConnected(
      {
        ...base,
        uniqueID: r.uniqueID,
        format: r.format,
        snapshotCount: r.snapshotCount,
        lastConnectTime: iso(now),
        ...(reinitialize ? { reinitializeHandled: reinitialize } : {}),
      },
      ['True', Reason.Verified, message],
      ['True', Reason.Connected, message],
      job.generation,
      now,
    );
  }
  const reason =
    result.ok || result.errorClass === 'Other' || result.errorClass === 'InvalidRequest' ? Reason.VerificationFailed : result.errorClass;
  const message = result.ok ? 'the mover reported success without repository facts' : result.message;
  return withReadyAndConnected(base, ['False', reason, message], ['False', reason, message], job.generation, now);
}

/** Status while a problem stops verification before any Job (bad spec, missing Secret). */
export function statusBlocked(status: RepositoryStatus, reason: string, message: string, generation: number, now: Date): RepositoryStatus {
  return withReadyAndConnected(
    { ...status, observedGeneration: generation },
    ['False', reason, message],
    ['Unknown', reason, message],
    generation,
    now,
  );
}

/** Status when the first verification of this generation starts. */
export function statusVerifying(status: RepositoryStatus, generation: number, now: Date): RepositoryStatus {
  if (status.observedGeneration === generation && status.conditions?.some((c) => c.type === ConditionType.Ready && c.status !== 'Unknown'))
    return status;
  const message = 'a verification Job is running';
  return withReadyAndConnected(status, ['Unknown', Reason.Verifying, message], ['Unknown', Reason.Verifying, message], generation, now);
}
