// The populator's stages as one pure decision: from what the API shows about one claim
// whose dataSourceRef names a kopia.io Restore, the single next step. The stages are
// lib-volume-populator's (prime claim, restore, hand the PV over, wait for Lost, clean
// up), with what its users learned the hard way (docs/adr/0006-volume-populator.md):
// - the PV is held at Retain from before the hand-over until the claim is bound to it;
// - the finalizer comes before any temporary, and goes only once every one is gone;
// - a failed restore never hands out the volume: the Job is retried with backoff.
// Every step is idempotent, and what the plan needs to know is in the API (annotations on
// the prime claim and the PV), so a restarted populator resumes where the last one stopped.
import type { KubeObject, OwnerReference } from '../kube/kube-client.js';
import { isJobFinished, moverRequestOf, RESULT_PENDING_REQUEUE_MS, type JobObject } from '../jobs/mover-job.js';
import type { MoverResult, RestoreRequest } from '../mover/mover-contract.js';
import type { AnyRepository } from '../repository/repository-jobs.js';
import type { ClaimResolution } from '../../generated/types.js';
import type { RestoreObject } from '../restore/restore-job.js';
import { ConditionType } from '../reasons.js';
import { findCondition } from '../runtime/conditions.js';
import { checkApproval, restoreMoverInputs } from '../restore/mover-approval.js';
import { PopulatorEvent } from './populator-reasons.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- claims and volumes are read structurally */
export type Claim = KubeObject & { spec?: any; status?: any };
export type Volume = KubeObject & { spec?: any; status?: any };
export type StorageClass = KubeObject & { volumeBindingMode?: string };

export const DATA_SOURCE = { apiGroup: 'kopia.io', kind: 'Restore' } as const;
/** On the user's claim from before the first temporary until the last one is gone. */
export const FINALIZER = 'kopia.io/populate-target-protection';
export const SELECTED_NODE = 'volume.kubernetes.io/selected-node';
/** On the handed-over PV, for good: the Restore that filled it ("<namespace>/<name>"). */
export const POPULATED_FROM = 'kopia.io/populated-from';
/** On a PV while the populator holds it at Retain: the reclaim policy to put back. */
export const HELD_RECLAIM_POLICY = 'kopia.io/held-reclaim-policy';
/** On the prime claim once its volume holds the data: the restore Job's UID, or EMPTY. */
export const POPULATED = 'kopia.io/populated';
/**
 * On the prime claim with POPULATED: the answer its data came from (the Restore's UID and
 * the snapshot, or empty). Data of any other answer — an older operator's Restore-wide pin,
 * a Restore re-created with another source — is never handed to the claim.
 */
export const POPULATED_WITH = 'kopia.io/populated-with';
export const EMPTY = 'empty';
/** On the prime claim: failed restore Jobs so far, the last one's UID and when it was seen failed. */
export const FAILURES = 'kopia.io/populate-failures';
export const LAST_FAILED_JOB = 'kopia.io/populate-failed-job';
export const LAST_FAILURE_TIME = 'kopia.io/populate-failed-at';
/** On the prime claim after the hand-over: the update makes the PV controller look at it (and mark it Lost) at once. */
export const HANDED_OVER = 'kopia.io/handed-over';

const PRIME_PREFIX = 'kopia-prime-';
const JOB_PREFIX = 'kopia-populate-';
export const primeClaimName = (claimUID: string) => `${PRIME_PREFIX}${claimUID}`;
export const populateJobName = (claimUID: string) => `${JOB_PREFIX}${claimUID}`;

/** The user's claim UID a prime claim or populate Job was named after. */
export function claimUIDFromName(name: string | undefined): string | undefined {
  for (const prefix of [PRIME_PREFIX, JOB_PREFIX]) if (name?.startsWith(prefix)) return name.slice(prefix.length);
  return undefined;
}

/** Waits between failed restore Jobs: doubling from initialMs up to maxMs. */
export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
}
export const DEFAULT_RETRY: RetryPolicy = { initialMs: 10_000, maxMs: 5 * 60_000 };

/** Re-checks while waiting on something a watch should report anyway. */
export const WAIT_MS = 30_000;
/** Re-checks while waiting on a controller that acts within seconds (the PV binder). */
export const SHORT_WAIT_MS = 2_000;

export function isPopulatorClaim(claim: Claim): boolean {
  const ref = claim.spec?.dataSourceRef;
  return ref?.apiGroup === DATA_SOURCE.apiGroup && ref?.kind === DATA_SOURCE.kind;
}

export interface PopulationObserved {
  /** The user's claim. */
  claim: Claim;
  /** The Restore its dataSourceRef names (our own last status write, when fresher than the cache). */
  restore?: RestoreObject;
  /** This claim's own answer in the Restore's status.claims (by the claim's UID). */
  answer?: ClaimResolution;
  storageClass?: StorageClass;
  prime?: Claim;
  /** The PV the prime claim is bound to. */
  primeVolume?: Volume;
  /** The PV whose claimRef names the user's claim: handed over by us, or bound some other way. */
  claimVolume?: Volume;
  /**
   * PVs we hold (our annotation) whose claimRef names the prime claim by name but not the prime
   * there is now: the prime was deleted between the hold and the hand-over, so only this
   * annotation and name still lead to them.
   */
  strayVolumes?: Volume[];
  job?: JobObject;
  /** The Job's result, once it has finished and its Pod is in the cache. */
  jobResult?: MoverResult;
  /** The repository this claim's answer names. */
  repository?: AnyRepository;
  now: Date;
  retry: RetryPolicy;
}

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export type PopulationStep = (
  | { action: 'none'; why: string }
  | { action: 'wait'; message: string; requeueAfterMs: number }
  | { action: 'addFinalizer' }
  | { action: 'createPrime' }
  | { action: 'startJob' }
  /** Only the Restore's status changes: the finished Job's result is written there before anything else. */
  | { action: 'collectJob'; result: MoverResult }
  | { action: 'recordFailure' }
  | { action: 'removeJob' }
  | { action: 'markPopulated'; value: string; with: string }
  | { action: 'holdVolume'; volume: string }
  | { action: 'handOver'; volume: string }
  | { action: 'nudgePrime'; volume: string }
  | { action: 'deletePrime' }
  /** Puts the reclaim policy back; finished: the claim is bound to it (else: letting go after a deletion). */
  | { action: 'releaseVolume'; volume: string; finished: boolean }
  | { action: 'removeFinalizer' }
) & { event?: PlannedEvent };

export type StepAction = PopulationStep['action'];

const none = (why: string): PopulationStep => ({ action: 'none', why });
const wait = (message: string, requeueAfterMs = WAIT_MS, event?: PlannedEvent): PopulationStep => ({
  action: 'wait',
  message,
  requeueAfterMs,
  ...(event ? { event } : {}),
});
const deleting = (o: KubeObject | undefined) => !!o?.metadata.deletionTimestamp;
export const hasFinalizer = (claim: Claim) => (claim.metadata.finalizers ?? []).includes(FINALIZER);
export const isHeld = (v: Volume | undefined): boolean => v?.metadata.annotations?.[HELD_RECLAIM_POLICY] !== undefined;
/** The mover restored files and said how many; a success without counts is not trusted. */
export const restoreSucceeded = (r: MoverResult | undefined): boolean => !!r?.ok && !!r.restored;

/** Several claims may name one Restore: its status follows the one whose population is in flight. */
export function statusFollowsAnotherClaim(restore: RestoreObject, claimName: string): boolean {
  const s = restore.status;
  return !!s?.target?.pvc && s.target.pvc !== claimName && (s.phase === 'Restoring' || s.phase === 'Failed');
}

export function restoreName(claim: Claim): string {
  return claim.spec.dataSourceRef.name;
}

/** What a claim's own answer is, as POPULATED_WITH records it; undefined without a usable answer. */
export function answerKey(o: Pick<PopulationObserved, 'restore' | 'answer'>): string | undefined {
  const a = o.answer;
  if (!o.restore || !a || a.failed || (!a.empty && !a.snapshotID)) return undefined;
  return `${o.restore.metadata.uid}/${a.empty ? EMPTY : `snapshot:${a.snapshotID}`}`;
}

/** The prime claim holds data of another answer than the claim's: it goes, and the population starts over. */
function staleData(o: PopulationObserved, what: string): PopulationStep {
  const prime = o.prime!;
  if (deleting(prime)) return wait(`prime claim ${prime.metadata.name} to be gone (it is made again)`, SHORT_WAIT_MS);
  return {
    action: 'deletePrime',
    event: {
      type: 'Warning',
      reason: PopulatorEvent.PrimeLost,
      message: `prime claim ${prime.metadata.name} holds ${what}, not this claim's answer (${answerKey(o) ?? 'none yet'}): it is deleted and the restore starts over`,
    },
  };
}

/** The next step for one claim. */
export function planPopulation(o: PopulationObserved): PopulationStep {
  if (!isPopulatorClaim(o.claim)) return none('the claim names no kopia.io Restore');
  // Whatever the stage: a PV held for a prime that is gone would stay Released at Retain forever.
  const stray = o.strayVolumes?.find(isHeld);
  if (stray) return releaseStrayVolume(o.claim, stray);
  if (deleting(o.claim)) return planCleanup(o);
  if (o.claim.status?.phase === 'Bound') return planAfterBinding(o);
  if (o.claimVolume) return planAfterHandOver(o);
  return planPopulate(o);
}

/** A PV held for a prime claim deleted before the hand-over: its own reclaim policy decides its fate again. */
function releaseStrayVolume(claim: Claim, volume: Volume): PopulationStep {
  const name = volume.metadata.name!;
  return {
    action: 'releaseVolume',
    volume: name,
    finished: false,
    event: {
      type: 'Warning',
      reason: PopulatorEvent.PrimeLost,
      message: `prime claim ${primeClaimName(claim.metadata.uid!)} was deleted before its volume was handed over: PersistentVolume ${name} gets reclaim policy ${volume.metadata.annotations![HELD_RECLAIM_POLICY]} back, and the restore starts over`,
    },
  };
}

/** The user deleted the claim: everything temporary goes, the PV with it unless handed over and kept by policy. */
function planCleanup(o: PopulationObserved): PopulationStep {
  if (!hasFinalizer(o.claim)) return none('deleted, and nothing of the populator holds it');
  // First the reclaim policy: a PV still held at Retain would outlive both claims.
  for (const v of [o.claimVolume, o.primeVolume])
    if (isHeld(v)) return { action: 'releaseVolume', volume: v!.metadata.name!, finished: false };
  if (o.job && !deleting(o.job)) return { action: 'removeJob' };
  if (o.prime && !deleting(o.prime)) return { action: 'deletePrime' };
  // The finalizer stays until the temporaries are really gone, not just asked to go.
  if (o.job || o.prime) return wait('the restore Job and the prime claim to be gone', SHORT_WAIT_MS);
  return { action: 'removeFinalizer' };
}

/** The claim is Bound: finish what the hand-over started, or let go of leftovers if it was bound some other way. */
function planAfterBinding(o: PopulationObserved): PopulationStep {
  const boundTo = o.claim.spec.volumeName;
  if (o.prime && !deleting(o.prime)) {
    if (o.prime.spec?.volumeName === boundTo) {
      // The prime shared our volume until the hand-over; only once Lost may it go.
      if (o.prime.status?.phase === 'Lost') return { action: 'deletePrime' };
      if (!o.prime.metadata.annotations?.[HANDED_OVER]) return { action: 'nudgePrime', volume: boundTo };
      return wait(`the PV controller to mark prime claim ${o.prime.metadata.name} Lost`, SHORT_WAIT_MS);
    }
    // A prime of another volume: the claim was bound without us. Its volume goes with it.
    if (isHeld(o.primeVolume)) return { action: 'releaseVolume', volume: o.primeVolume!.metadata.name!, finished: false };
    return { action: 'deletePrime' };
  }
  if (isHeld(o.claimVolume) && o.claimVolume!.metadata.name === boundTo) {
    return {
      action: 'releaseVolume',
      volume: boundTo,
      finished: true,
      event: {
        type: 'Normal',
        reason: PopulatorEvent.Finished,
        message: `populated from Restore ${o.claim.metadata.namespace}/${restoreName(o.claim)}: bound to ${boundTo}, reclaim policy ${o.claimVolume!.metadata.annotations![HELD_RECLAIM_POLICY]} again`,
      },
    };
  }
  if (o.job && !deleting(o.job)) return { action: 'removeJob' };
  if (!hasFinalizer(o.claim)) return none('Bound');
  if (o.job || o.prime) return wait('the restore Job and the prime claim to be gone', SHORT_WAIT_MS);
  return { action: 'removeFinalizer' };
}

/** The PV names the claim but the binder has not bound them yet. */
function planAfterHandOver(o: PopulationObserved): PopulationStep {
  const volume = o.claimVolume!;
  const name = volume.metadata.name!;
  if (volume.metadata.annotations?.[POPULATED_FROM] === undefined)
    return wait(`PersistentVolume ${name} names this claim; waiting for the PV controller to bind them`, SHORT_WAIT_MS);
  if (o.prime && !deleting(o.prime)) {
    if (o.prime.status?.phase === 'Lost') return { action: 'deletePrime' };
    if (!o.prime.metadata.annotations?.[HANDED_OVER]) return { action: 'nudgePrime', volume: name };
  }
  return wait(`the PV controller to bind the claim to ${name}`, SHORT_WAIT_MS);
}

/** Before the hand-over: prime claim, restore Job, then hold and hand over the PV. */
function planPopulate(o: PopulationObserved): PopulationStep {
  const { claim, prime } = o;
  const problem = claimProblem(o);
  if (problem) return problem;

  if (prime?.metadata.annotations?.[POPULATED] && !deleting(prime)) {
    // The data is in the prime volume: the Job (its result in the Restore's status) may go.
    if (o.job && !deleting(o.job)) return { action: 'removeJob' };
    // Only data of the claim's own answer is handed over (an older populator's prime has no record).
    const want = answerKey(o);
    if (!want) return wait(`Restore ${restoreName(claim)} to answer this claim before its prime volume is handed over`);
    const has = prime.metadata.annotations[POPULATED_WITH];
    if (has !== want) return staleData(o, has ? `data of ${has}` : 'data of an earlier populator');
    const volume = o.primeVolume;
    if (prime.status?.phase !== 'Bound' || !volume) return wait(`prime claim ${prime.metadata.name} to be bound`, SHORT_WAIT_MS);
    if (!isHeld(volume)) return { action: 'holdVolume', volume: volume.metadata.name! };
    return { action: 'handOver', volume: volume.metadata.name! };
  }

  if (o.job) {
    const job = o.job;
    if (deleting(job)) return wait(`restore Job ${job.metadata.name} to be gone`, SHORT_WAIT_MS);
    if (!isJobFinished(job)) return wait(`restore Job ${job.metadata.name} to finish`);
    const result = o.jobResult;
    if (!result) return wait(`the Pod of restore Job ${job.metadata.name} to be seen`, RESULT_PENDING_REQUEUE_MS);
    // The result goes into the Restore's status before anything else happens to the Job
    // (unless the status follows another claim: then the result is told in an Event only).
    const collected =
      !o.restore || statusFollowsAnotherClaim(o.restore, claim.metadata.name!) || o.restore.status?.collectedJobUID === job.metadata.uid;
    if (!collected) {
      return {
        action: 'collectJob',
        result,
        ...(restoreSucceeded(result)
          ? {}
          : {
              event: {
                type: 'Warning' as const,
                reason: PopulatorEvent.Failed,
                message: `restore Job ${job.metadata.name} failed: ${result.ok ? 'no restore counts' : result.message}; the claim stays Pending and the restore is retried`,
              },
            }),
      };
    }
    if (restoreSucceeded(result)) {
      // The prime (and the data in its volume) went after the Job: nothing to hand over, so
      // the Job goes and the population starts over, rather than waiting out the Job's TTL.
      if (!prime || deleting(prime))
        return {
          action: 'removeJob',
          event: {
            type: 'Warning',
            reason: PopulatorEvent.PrimeLost,
            message: `prime claim ${primeClaimName(claim.metadata.uid!)} was deleted after restore Job ${job.metadata.name} succeeded: the Job is removed and the restore starts over`,
          },
        };
      // The Job restored the snapshot it was asked for: only that of the claim's answer counts.
      const want = answerKey(o);
      if (!want) return wait(`Restore ${restoreName(claim)} to answer this claim before its restored data is used`);
      const asked = moverRequestOf<RestoreRequest>(job)?.snapshotID;
      if (o.answer!.empty || asked !== o.answer!.snapshotID)
        return staleData(o, `snapshot ${asked ?? '?'} restored by Job ${job.metadata.name}`);
      return { action: 'markPopulated', value: job.metadata.uid!, with: want };
    }
    if (prime && prime.metadata.annotations?.[LAST_FAILED_JOB] !== job.metadata.uid) return { action: 'recordFailure' };
    return { action: 'removeJob' };
  }

  const restore = o.restore;
  const ns = claim.metadata.namespace!;
  const name = restoreName(claim);
  if (!restore)
    return wait(`Restore ${ns}/${name} not found`, WAIT_MS, {
      type: 'Warning',
      reason: PopulatorEvent.DataSourceNotFound,
      message: `Restore ${ns}/${name} not found`,
    });
  if (!restore.spec.target?.populator) {
    const message = `Restore ${ns}/${name} restores into an existing claim (target.pvc); a dataSourceRef needs a Restore with target.populator`;
    return wait(message, WAIT_MS, { type: 'Warning', reason: PopulatorEvent.DataSourceInvalid, message });
  }
  // Each claim has its own answer, resolved after the claim was created: never another claim's.
  const answer = o.answer;
  if (!answer) {
    const ready = findCondition(restore.status?.conditions, ConditionType.Ready);
    // The Restore's own condition is this claim's news unless it follows another claim.
    const followsOther = !!restore.status?.target?.pvc && restore.status.target.pvc !== claim.metadata.name;
    const why = ready && !followsOther ? `${ready.reason}: ${ready.message}` : 'not resolved yet';
    const message = `waiting for Restore ${name} to pin a snapshot for this claim (${why})`;
    return wait(message, WAIT_MS, { type: 'Normal', reason: PopulatorEvent.WaitingForRestore, message });
  }
  if (answer.failed) {
    const message = `Restore ${name} failed for this claim (${answer.failed.reason}: ${answer.failed.message}); the claim stays Pending (re-create it to resolve again)`;
    return wait(message, WAIT_MS, { type: 'Warning', reason: PopulatorEvent.RestoreFailed, message });
  }
  if (!answer.empty && !answer.snapshotID) {
    const message = `Restore ${name} answered this claim with neither a snapshot nor an empty volume; the claim stays Pending`;
    return wait(message, WAIT_MS, { type: 'Warning', reason: PopulatorEvent.DataSourceInvalid, message });
  }
  if (o.storageClass?.volumeBindingMode === 'WaitForFirstConsumer' && !claim.metadata.annotations?.[SELECTED_NODE])
    return wait(`storage class ${claim.spec.storageClassName} binds WaitForFirstConsumer: waiting for a pod to use the claim`);

  if (!hasFinalizer(claim)) return { action: 'addFinalizer' };
  if (!prime)
    return {
      action: 'createPrime',
      event: {
        type: 'Normal',
        reason: PopulatorEvent.PVCPrimeCreated,
        message: `prime claim ${primeClaimName(claim.metadata.uid!)} created to restore into`,
      },
    };
  if (deleting(prime)) return wait(`prime claim ${prime.metadata.name} to be gone (it is made again)`, SHORT_WAIT_MS);

  if (answer.empty) {
    if (prime.status?.phase !== 'Bound') return wait(`prime claim ${prime.metadata.name} to be bound`, SHORT_WAIT_MS);
    return {
      action: 'markPopulated',
      value: EMPTY,
      with: answerKey(o)!,
      event: {
        type: 'Normal',
        reason: PopulatorEvent.Created,
        message: `no restore Job: kopia lists no snapshot and Restore ${name} has onMissingSnapshot Continue, so the volume starts empty`,
      },
    };
  }
  const retryAt = nextAttemptAt(prime, o.retry);
  if (retryAt && retryAt.getTime() > o.now.getTime())
    return wait(`restore failed before; next attempt at ${retryAt.toISOString()}`, retryAt.getTime() - o.now.getTime());
  const repo = answer.repository;
  if (!o.repository || !repo) {
    const message = `${repo?.kind ?? 'Repository'} ${repo?.name} of Restore ${name} not found`;
    return wait(message, WAIT_MS, { type: 'Warning', reason: PopulatorEvent.WaitingForRestore, message });
  }
  // Only settings the operator approved (it can read the namespace's opt-in; we cannot), checked as the Job would use them.
  const approval = checkApproval(restore, ns, restoreMoverInputs(restore, repo, o.repository), o.repository);
  if (!approval.approved) {
    const message = `no restore Job for Restore ${name}: ${approval.message}`;
    return wait(message, WAIT_MS, { type: approval.checked ? 'Warning' : 'Normal', reason: PopulatorEvent.MoverNotApproved, message });
  }
  return {
    action: 'startJob',
    event: {
      type: 'Normal',
      reason: PopulatorEvent.Created,
      message: `restore Job ${populateJobName(claim.metadata.uid!)} restores snapshot ${answer.snapshotID} into prime claim ${prime.metadata.name}`,
    },
  };
}

/** Why this claim cannot be populated as it stands, if it cannot. */
function claimProblem(o: PopulationObserved): PopulationStep | undefined {
  const { claim } = o;
  const ref = claim.spec.dataSourceRef;
  const invalid = (message: string) => wait(message, WAIT_MS, { type: 'Warning', reason: PopulatorEvent.DataSourceInvalid, message });
  if (ref.namespace && ref.namespace !== claim.metadata.namespace)
    return invalid(`Restore ${ref.namespace}/${ref.name} is in another namespace; a Restore fills claims of its own namespace only`);
  if (claim.spec.volumeMode === 'Block') return invalid('a Block volume cannot be populated: a restore writes files');
  if (!claim.spec.storageClassName) return invalid('the claim has no storage class: the prime volume could not be provisioned');
  if (!o.storageClass) return invalid(`storage class ${claim.spec.storageClassName} not found`);
  return undefined;
}

/** When a failed restore may be tried again (the prime claim counts failures), if one failed. */
export function nextAttemptAt(prime: Claim, policy: RetryPolicy): Date | undefined {
  const a = prime.metadata.annotations ?? {};
  const failures = Number(a[FAILURES] ?? 0);
  const at = Date.parse(a[LAST_FAILURE_TIME] ?? '');
  if (!(failures > 0) || Number.isNaN(at)) return undefined;
  return new Date(at + Math.min(policy.maxMs, policy.initialMs * 2 ** (failures - 1)));
}

// ---- the objects and patches the steps write ----------------------------------------------

export function claimOwner(claim: Claim): OwnerReference {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    name: claim.metadata.name!,
    uid: claim.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * The prime claim: the user's claim without its data source, in its namespace (the restore
 * Job mounts it beside the repository's Secret), owned by it so it goes with it.
 */
export function desiredPrimeClaim(claim: Claim): Claim {
  const node = claim.metadata.annotations?.[SELECTED_NODE];
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: primeClaimName(claim.metadata.uid!),
      namespace: claim.metadata.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'kopia-populator', 'app.kubernetes.io/component': 'prime-claim' },
      ...(node ? { annotations: { [SELECTED_NODE]: node } } : {}),
      ownerReferences: [claimOwner(claim)],
    },
    spec: {
      storageClassName: claim.spec.storageClassName,
      accessModes: claim.spec.accessModes,
      resources: claim.spec.resources,
      volumeMode: claim.spec.volumeMode ?? 'Filesystem',
    },
  };
}

export function finalizerPatch(claim: Claim, add: boolean): Record<string, unknown> {
  const others = (claim.metadata.finalizers ?? []).filter((f) => f !== FINALIZER);
  return { metadata: { finalizers: add ? [...others, FINALIZER] : others, resourceVersion: claim.metadata.resourceVersion } };
}

/** Retain from now until the claim is bound, so no deletion of the prime claim can take the data along. */
export function holdVolumePatch(volume: Volume): Record<string, unknown> {
  return {
    metadata: {
      annotations: { [HELD_RECLAIM_POLICY]: volume.spec.persistentVolumeReclaimPolicy ?? 'Delete' },
      resourceVersion: volume.metadata.resourceVersion,
    },
    spec: { persistentVolumeReclaimPolicy: 'Retain' },
  };
}

export function releaseVolumePatch(volume: Volume): Record<string, unknown> {
  return {
    metadata: { annotations: { [HELD_RECLAIM_POLICY]: null }, resourceVersion: volume.metadata.resourceVersion },
    spec: { persistentVolumeReclaimPolicy: volume.metadata.annotations?.[HELD_RECLAIM_POLICY] ?? 'Delete' },
  };
}

/** The PV names the user's claim from now on; the PV controller binds them and marks the prime Lost. */
export function handOverPatch(volume: Volume, claim: Claim): Record<string, unknown> {
  return {
    metadata: {
      annotations: { [POPULATED_FROM]: `${claim.metadata.namespace}/${restoreName(claim)}` },
      resourceVersion: volume.metadata.resourceVersion,
    },
    spec: {
      claimRef: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        namespace: claim.metadata.namespace,
        name: claim.metadata.name,
        uid: claim.metadata.uid,
        resourceVersion: claim.metadata.resourceVersion,
      },
    },
  };
}

/** Counts one more failed Job on the prime claim (once per Job: its UID is remembered). */
export function recordFailurePatch(prime: Claim, job: JobObject, now: Date): Record<string, unknown> {
  const failures = Number(prime.metadata.annotations?.[FAILURES] ?? 0) + 1;
  return {
    metadata: {
      annotations: { [FAILURES]: String(failures), [LAST_FAILED_JOB]: job.metadata.uid, [LAST_FAILURE_TIME]: now.toISOString() },
    },
  };
}

/** A population's outcome as kopia_populations_total and kopia_population_duration_seconds count it. */
export interface PopulationOutcome {
  outcome: 'Succeeded' | 'Failed' | 'Retried';
  reason: string;
  /** From the claim's creation (its first sight, whichever populator saw it); ended outcomes only. */
  seconds?: number;
}

/**
 * What a step, once done, says about the population. Each is counted once: the finished
 * hand-over and the failure record change what the next pass plans, and a failed answer
 * counts when its Warning is told (told: once per process).
 */
export function populationOutcome(step: PopulationStep, o: PopulationObserved, told: boolean): PopulationOutcome | undefined {
  const created = Date.parse(o.claim.metadata.creationTimestamp ?? '');
  const seconds = Number.isNaN(created) ? undefined : Math.max(0, (o.now.getTime() - created) / 1000);
  const ended = (outcome: 'Succeeded' | 'Failed', reason: string): PopulationOutcome =>
    seconds === undefined ? { outcome, reason } : { outcome, reason, seconds };
  if (step.action === 'releaseVolume' && step.finished) return ended('Succeeded', PopulatorEvent.Finished);
  if (step.action === 'recordFailure')
    return { outcome: 'Retried', reason: o.jobResult && !o.jobResult.ok ? o.jobResult.errorClass : 'NoRestoreCounts' };
  if (step.action === 'wait' && step.event?.reason === PopulatorEvent.RestoreFailed && told && o.answer?.failed)
    return ended('Failed', o.answer.failed.reason);
  return undefined;
}
