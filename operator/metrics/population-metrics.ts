// kopia_population_claims_waiting: the populator's claims not yet Bound, by namespace and why
// they wait. The why is the populator's own: its plan (planPopulation) is run on what its
// caches hold, exactly as a reconcile would see it; a wait the plan tells as an Event is
// counted under that Event's reason (PopulatorWaitingForRestore, PopulatorDataSourceNotFound,
// ...), one it does not under the stage the claim is in. A fixed set of reasons, so the
// series stay few; a claim that is gone (or Bound, or being deleted) is counted nowhere.
import type { KubeClient } from '../kube/kube-client.js';
import {
  Jobs,
  KopiaClusterRepositories,
  KopiaRepositories,
  KopiaRestores,
  PersistentVolumeClaims,
  PersistentVolumes,
  Pods,
  StorageClasses,
} from '../kube/resources.js';
import { isJobFinished, MoverJobs, type JobObject } from '../jobs/mover-job.js';
import { observePopulation, POPULATOR_JOB_SELECTOR, type PopulationCaches } from '../populator/populator.js';
import {
  DEFAULT_RETRY,
  isPopulatorClaim,
  nextAttemptAt,
  planPopulation,
  POPULATED,
  restoreSucceeded,
  SELECTED_NODE,
  type Claim,
  type PopulationObserved,
  type PopulationStep,
  type RetryPolicy,
  type StorageClass,
  type Volume,
} from '../populator/populator-plan.js';
import type { RestoreObject } from '../restore/restore-job.js';
import type { AnyRepository } from '../repository/repository-jobs.js';
import type { InformerFactory } from '../runtime/kind-operator.js';
import { PopulatorEvent, PopulatorReason } from '../populator/populator-reasons.js';
import { Reason } from '../reasons.js';
import type { Series } from './metric-catalog.js';
import { keptInformer } from './object-metrics.js';

/** Why a claim waits when its plan tells no Event about it: the stage it is in. */
export const WaitingStage = {
  /** The restore Job runs (or has just finished and is being collected). */
  Restoring: Reason.Restoring,
  /** The data is in; the volume is being handed to the claim. */
  BindingVolume: PopulatorReason.BindingVolume,
  /** The last restore Job failed; the next one waits out its backoff. */
  RetryingAfterFailure: PopulatorEvent.Failed,
  /** The storage class binds WaitForFirstConsumer and no pod uses the claim yet. */
  WaitingForFirstConsumer: 'WaitingForFirstConsumer',
  /** The prime claim is made, provisioned and bound before the Job can start. */
  Provisioning: 'Provisioning',
} as const;

/** Why the populator's claim waits, or undefined when it does not (Bound, being deleted, not ours). */
export function claimWaitReason(o: PopulationObserved, step: PopulationStep = planPopulation(o)): string | undefined {
  const claim = o.claim;
  if (!isPopulatorClaim(claim) || claim.metadata.deletionTimestamp || claim.status?.phase === 'Bound') return undefined;
  if (step.action === 'wait' && step.event) return step.event.reason;
  if (o.job && !o.job.metadata.deletionTimestamp) {
    // A finished Job is being collected: a failed one is retried after a backoff.
    if (isJobFinished(o.job) && o.jobResult && !restoreSucceeded(o.jobResult)) return WaitingStage.RetryingAfterFailure;
    return WaitingStage.Restoring;
  }
  if ((o.prime?.metadata.annotations?.[POPULATED] && !o.prime.metadata.deletionTimestamp) || o.claimVolume)
    return WaitingStage.BindingVolume;
  const retryAt = o.prime && nextAttemptAt(o.prime, o.retry);
  if (retryAt && retryAt.getTime() > o.now.getTime()) return WaitingStage.RetryingAfterFailure;
  if (o.storageClass?.volumeBindingMode === 'WaitForFirstConsumer' && !claim.metadata.annotations?.[SELECTED_NODE])
    return WaitingStage.WaitingForFirstConsumer;
  return WaitingStage.Provisioning;
}

/** The count of waiting claims per namespace and reason, from each claim's observation. */
export function claimsWaitingSeries(observations: readonly PopulationObserved[]): Series[] {
  const counts = new Map<string, { namespace: string; reason: string; value: number }>();
  for (const o of observations) {
    const reason = claimWaitReason(o);
    if (!reason) continue;
    const namespace = o.claim.metadata.namespace ?? '';
    const key = `${namespace}/${reason}`;
    const entry = counts.get(key) ?? { namespace, reason, value: 0 };
    entry.value++;
    counts.set(key, entry);
  }
  return [...counts.values()].map(({ namespace, reason, value }) => ({
    name: 'kopia_population_claims_waiting',
    labels: { namespace, reason },
    value,
  }));
}

/**
 * The populator's object series, from the informers it keeps (none when one of them is not
 * kept: not the populator process). `client` only completes the Job helper; nothing is sent.
 * `retry`: the populator's retry policy, as it was given it.
 */
export function populatorObjectSeries(
  informers: InformerFactory,
  client: KubeClient,
  now: Date,
  retry: RetryPolicy = DEFAULT_RETRY,
): Series[] {
  const claims = keptInformer<Claim>(informers, PersistentVolumeClaims);
  const volumes = keptInformer<Volume>(informers, PersistentVolumes);
  const restores = keptInformer<RestoreObject>(informers, KopiaRestores);
  const repositories = keptInformer<AnyRepository>(informers, KopiaRepositories);
  const clusterRepositories = keptInformer<AnyRepository>(informers, KopiaClusterRepositories);
  const storageClasses = keptInformer<StorageClass>(informers, StorageClasses);
  const jobs = keptInformer<JobObject>(informers, Jobs, { labelSelector: POPULATOR_JOB_SELECTOR });
  const pods = keptInformer<JobObject>(informers, Pods, { labelSelector: POPULATOR_JOB_SELECTOR });
  if (!claims || !volumes || !restores || !repositories || !clusterRepositories || !storageClasses || !jobs || !pods) return [];
  const caches: PopulationCaches = {
    claims,
    volumes,
    restores,
    repositories,
    clusterRepositories,
    storageClasses,
    moverJobs: new MoverJobs(client, jobs, pods),
  };
  const waiting = claims.list().filter((c) => isPopulatorClaim(c) && !c.metadata.deletionTimestamp && c.status?.phase !== 'Bound');
  return claimsWaitingSeries(waiting.map((c) => observePopulation(caches, c, now, retry)));
}
