// What a Backup's status becomes at each step. Pure: the operator passes in what it
// observed and writes the result once.
import type { BackupStatus, Identity, RepositoryReference } from '../../generated/types.js';
import type { MoverResult } from '../mover/mover-contract.js';
import { ConditionType, Reason } from '../reasons.js';
import { setCondition, type ConditionInput } from '../runtime/conditions.js';
import { setReady } from '../runtime/kstatus.js';

export type BackupObjectStatus = BackupStatus;
type Phase = NonNullable<BackupStatus['phase']>;

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export function isTerminal(status: BackupStatus | undefined): boolean {
  return status?.phase === 'Succeeded' || status?.phase === 'Failed';
}

function withReady(status: BackupStatus, ready: Omit<ConditionInput, 'type'>, generation: number, now: Date): BackupStatus {
  return {
    ...status,
    observedGeneration: generation,
    // A Failed Backup never runs again: Stalled whatever its reason (one that only waits while Pending too).
    conditions: setReady(status.conditions, ready, generation, now, { failed: status.phase === 'Failed' }),
  };
}

/** Still Pending, waiting for something named in the condition (never a failure). */
export function statusWaiting(status: BackupStatus, reason: string, message: string, generation: number, now: Date): BackupStatus {
  return withReady({ ...status, phase: 'Pending' }, { status: 'False', reason, message }, generation, now);
}

/** The mover Job runs. */
export function statusRunning(
  status: BackupStatus,
  facts: { jobName: string; identity: Required<Identity>; repository: RepositoryReference },
  generation: number,
  now: Date,
): BackupStatus {
  const started = status.phase === 'Running' ? status : { ...status, startTime: iso(now) };
  return withReady(
    {
      ...started,
      phase: 'Running',
      jobName: facts.jobName,
      repository: facts.repository,
      snapshot: { ...status.snapshot, identity: facts.identity },
    },
    { status: 'False', reason: Reason.BackupRunning, message: `mover Job ${facts.jobName} is taking the snapshot` },
    generation,
    now,
  );
}

/** A failure before any snapshot: terminal. */
export function statusFailed(status: BackupStatus, reason: string, message: string, generation: number, now: Date): BackupStatus {
  return withReady(
    { ...status, phase: 'Failed', completionTime: iso(now), message },
    { status: 'False', reason, message },
    generation,
    now,
  );
}

/**
 * The mover's answer. A snapshot saved with file errors is Succeeded (it exists and can be
 * restored) but not Ready, with a FileErrors condition: never a clean success, never a
 * lost snapshot id.
 */
export function statusFromBackupResult(
  status: BackupStatus,
  result: MoverResult,
  jobUID: string,
  generation: number,
  now: Date,
): BackupStatus {
  const collected = { ...status, collectedJobUID: jobUID, completionTime: iso(now) };
  if (!result.ok || !result.snapshot) {
    const reason = result.ok
      ? Reason.BackupFailed
      : result.errorClass === 'Other' || result.errorClass === 'InvalidRequest'
        ? Reason.BackupFailed
        : result.errorClass;
    const message = result.ok ? 'the mover reported success without a snapshot' : result.message;
    return statusFailed(collected, reason, message, generation, now);
  }
  const s = result.snapshot;
  let next: BackupStatus = {
    ...collected,
    phase: 'Succeeded' satisfies Phase,
    snapshot: { ...status.snapshot, id: s.id, rootID: s.rootID },
    stats: s.stats,
    retentionReasons: s.retentionReasons ?? [],
    ...(result.mover ? { mover: result.mover } : {}),
    message: undefined,
  };
  const files = result.fileErrors;
  if (files && files.count > 0) {
    const message = `snapshot ${s.id} saved, but ${files.count} file(s) could not be read${files.examples.length ? `: ${files.examples.join('; ')}` : ''}`;
    next = withReady(next, { status: 'False', reason: Reason.FileErrors, message }, generation, now);
    next.conditions = setCondition(
      next.conditions,
      { type: ConditionType.FileErrors, status: 'True', reason: Reason.FileErrors, message },
      generation,
      now,
    );
    return next;
  }
  const message = `snapshot ${s.id}: ${s.stats.files ?? 0} files, ${s.stats.totalBytes ?? 0} bytes`;
  return withReady(next, { status: 'True', reason: Reason.BackupSucceeded, message }, generation, now);
}

/**
 * Whether an informer event tells that a Backup has just finished, freeing the source
 * identity its run held (so the Backups waiting on it are woken).
 */
export function justFinished(
  event: string,
  b: { spec: { snapshot?: unknown; configRef?: unknown }; status?: BackupStatus },
  old?: { status?: BackupStatus },
): boolean {
  // Mirrored Backups (spec.snapshot) never run; a resync or a first sight re-announces an old finish.
  if (b.spec.snapshot || event !== 'MODIFIED' || !old) return false;
  return isTerminal(b.status) && !isTerminal(old.status);
}
