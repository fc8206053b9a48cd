// The volume populator for claims whose dataSourceRef names a kopia.io Restore. One pass
// per claim: observe (caches) → guards → planPopulation (pure, populator-plan.ts) → the
// Restore's status for our part (written first: a Job's result is stored before the Job
// may go) → the one step → its Event. Watches on claims, PVs, Jobs, Pods and Restores map
// back to the user's claim by UID (the prime claim and the Job are named after it), so
// every change wakes the claim it concerns.
import { isAlreadyExists, isConflict, isNotFound } from '../kube/kube-client.js';
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
import { LABELS, MOVER_SELECTOR } from '../jobs/job-builder.js';
import { isJobFinished, MoverJobs, type JobObject } from '../jobs/mover-job.js';
import { ConditionType } from '../reasons.js';
import type { AnyRepository } from '../repository/repository-jobs.js';
import { buildRestoreJob, type RestoreObject } from '../restore/restore-job.js';
import { answerOf, pinnedSnapshot } from '../restore/restore-plan.js';
import { findCondition } from '../runtime/conditions.js';
import { noFailpoint, type Failpoint } from '../runtime/failpoint.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import {
  claimOwner,
  claimUIDFromName,
  DEFAULT_RETRY,
  desiredPrimeClaim,
  finalizerPatch,
  handOverPatch,
  HANDED_OVER,
  holdVolumePatch,
  isHeld,
  isPopulatorClaim,
  POPULATED,
  POPULATED_WITH,
  planPopulation,
  populationOutcome,
  populateJobName,
  primeClaimName,
  recordFailurePatch,
  releaseVolumePatch,
  restoreName,
  SELECTED_NODE,
  type Claim,
  type PlannedEvent,
  type PopulationObserved,
  type PopulationOutcome,
  type PopulationStep,
  type RetryPolicy,
  type StorageClass,
  type Volume,
} from './populator-plan.js';
import { PopulatorEvent } from './populator-reasons.js';
import { restoreStatusFor } from './populator-status.js';

/** Jobs (and their Pods) the populator starts: restore movers owned by a claim. */
export const POPULATOR_JOB_SELECTOR = `${MOVER_SELECTOR},${LABELS.ownerKind}=PersistentVolumeClaim`;

export interface PopulatorOptions {
  retry?: RetryPolicy;
  /** Fault tests: hold after a named step (runtime/failpoint.ts). */
  failpoint?: Failpoint;
}

export class RestorePopulator extends KindOperator {
  readonly kind = 'PersistentVolumeClaim';
  private claims!: Informer<Claim>;
  private volumes!: Informer<Volume>;
  private restores!: Informer<RestoreObject>;
  private repositories!: Informer<AnyRepository>;
  private clusterRepositories!: Informer<AnyRepository>;
  private storageClasses!: Informer<StorageClass>;
  private moverJobs!: MoverJobs;
  /** UID → key of the claims we populate: primes, Jobs and PVs name the claim by UID. */
  private readonly keyOfUID = new Map<string, string>();
  /** The wait last reported per claim UID, so a wait is told once, not on every pass. */
  private readonly toldWait = new Map<string, string>();
  private readonly retry: RetryPolicy;
  private readonly failpoint: Failpoint;

  constructor(ctx: OperatorContext, opts: PopulatorOptions = {}) {
    super(ctx);
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.failpoint = opts.failpoint ?? noFailpoint;
  }

  protected override async init(): Promise<void> {
    this.claims = this.ctx.informers.get<Claim>(PersistentVolumeClaims);
    this.claims.on((event, claim) => {
      const key = `${claim.metadata.namespace}/${claim.metadata.name}`;
      if (isPopulatorClaim(claim)) {
        if (event === 'DELETED') {
          this.keyOfUID.delete(claim.metadata.uid!);
          this.toldWait.delete(claim.metadata.uid!);
        } else this.keyOfUID.set(claim.metadata.uid!, key);
        this.queue.add(key);
      } else this.wakeByUID(claimUIDFromName(claim.metadata.name));
    });
    this.volumes = this.watchRelated<Volume>(PersistentVolumes, (pv) => {
      const ref = pv.spec?.claimRef;
      return this.keysOfUID(claimUIDFromName(ref?.name) ?? ref?.uid);
    });
    this.restores = this.watchRelated<RestoreObject>(KopiaRestores, (r) =>
      this.claims
        .list()
        .filter((c) => c.metadata.namespace === r.metadata.namespace && isPopulatorClaim(c) && restoreName(c) === r.metadata.name)
        .map((c) => `${c.metadata.namespace}/${c.metadata.name}`),
    );
    this.repositories = this.ctx.informers.get<AnyRepository>(KopiaRepositories);
    this.clusterRepositories = this.ctx.informers.get<AnyRepository>(KopiaClusterRepositories);
    this.storageClasses = this.ctx.informers.get<StorageClass>(StorageClasses);
    this.moverJobs = new MoverJobs(
      this.ctx.client,
      this.watchRelated<JobObject>(Jobs, (j) => this.keysOfUID(claimUIDFromName(j.metadata.name)), {
        labelSelector: POPULATOR_JOB_SELECTOR,
      }),
      this.watchRelated<JobObject>(Pods, (p) => this.keysOfUID(claimUIDFromName(p.metadata.labels?.['job-name'])), {
        labelSelector: POPULATOR_JOB_SELECTOR,
      }),
    );
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const claim = this.claims.get(key);
    if (!claim || !isPopulatorClaim(claim)) return;
    const observed = this.observe(claim);
    const step = planPopulation(observed);
    if (observed.restore) {
      const status = restoreStatusFor(step, observed);
      if (status) {
        await this.announce(observed.restore, status);
        const written = await writeStatus(this.ctx.client, KopiaRestores, observed.restore, status, this.written);
        if (written === 'conflict') return { requeueAfterMs: 200 };
      }
    }
    try {
      await this.act(step, observed);
      await this.failpoint.after(step.action);
    } catch (e) {
      // Patches carry the resourceVersion they were planned from: a conflict means "look again".
      if (isConflict(e)) return { requeueAfterMs: 200 };
      // Planned from a cache a step behind a deletion: the watch brings the news.
      if (isNotFound(e)) return;
      throw e;
    }
    const told = await this.tell(claim, step);
    this.countOutcome(populationOutcome(step, observed, told), claim);
    if (step.action === 'wait') return { requeueAfterMs: step.requeueAfterMs };
    if (step.action === 'none') return;
    // The watch of what the step changed brings the claim back; this is the safety net.
    return { requeueAfterMs: 10_000 };
  }

  /** Everything the plan looks at, from the caches; the Restore as we last wrote it when that is fresher. */
  private observe(claim: Claim): PopulationObserved {
    const caches: PopulationCaches = {
      claims: this.claims,
      volumes: this.volumes,
      restores: this.restores,
      repositories: this.repositories,
      clusterRepositories: this.clusterRepositories,
      storageClasses: this.storageClasses,
      moverJobs: this.moverJobs,
    };
    return observePopulation(caches, claim, this.ctx.now(), this.retry, (r) => this.written.latest(r));
  }

  private async act(step: PopulationStep, o: PopulationObserved): Promise<void> {
    const { client } = this.ctx;
    const { claim, prime, job } = o;
    const ns = claim.metadata.namespace!;
    const volume = (name: string) => [o.claimVolume, o.primeVolume, ...(o.strayVolumes ?? [])].find((v) => v?.metadata.name === name)!;
    switch (step.action) {
      case 'none':
      case 'wait':
      case 'collectJob': // the status write above was the step
        return;
      case 'addFinalizer':
      case 'removeFinalizer':
        await client.patch(PersistentVolumeClaims, ns, claim.metadata.name!, finalizerPatch(claim, step.action === 'addFinalizer'));
        return;
      case 'createPrime':
        try {
          await client.create(PersistentVolumeClaims, desiredPrimeClaim(claim));
        } catch (e) {
          if (isAlreadyExists(e)) return;
          await this.record(claim, {
            type: 'Warning',
            reason: PopulatorEvent.PVCPrimeCreationError,
            message: `cannot create prime claim ${primeClaimName(claim.metadata.uid!)}: ${(e as Error).message}`,
          });
          throw e;
        }
        return;
      case 'startJob':
        await this.moverJobs.start(
          buildRestoreJob({
            restore: o.restore!,
            snapshot: pinnedSnapshot(o.answer)!,
            repository: o.repository!,
            claimName: prime!.metadata.name!,
            jobName: populateJobName(claim.metadata.uid!),
            owner: claimOwner(claim),
            ownerLabels: { kind: 'PersistentVolumeClaim', name: claim.metadata.name!, namespace: ns },
            image: this.ctx.moverImage,
            nodeName: claim.metadata.annotations?.[SELECTED_NODE],
          }),
        );
        return;
      case 'recordFailure':
        await client.patch(PersistentVolumeClaims, ns, prime!.metadata.name!, recordFailurePatch(prime!, job!, o.now));
        return;
      case 'removeJob':
        await this.moverJobs.remove(job!);
        return;
      case 'markPopulated':
        await client.patch(PersistentVolumeClaims, ns, prime!.metadata.name!, {
          metadata: { annotations: { [POPULATED]: step.value, [POPULATED_WITH]: step.with } },
        });
        return;
      case 'nudgePrime':
        await client.patch(PersistentVolumeClaims, ns, prime!.metadata.name!, {
          metadata: { annotations: { [HANDED_OVER]: step.volume } },
        });
        return;
      case 'deletePrime':
        await client.delete(PersistentVolumeClaims, ns, prime!.metadata.name!, {
          propagationPolicy: 'Background',
          uid: prime!.metadata.uid,
        });
        return;
      case 'holdVolume':
        await client.patch(PersistentVolumes, undefined, step.volume, holdVolumePatch(volume(step.volume)));
        return;
      case 'handOver':
        await client.patch(PersistentVolumes, undefined, step.volume, handOverPatch(volume(step.volume), claim));
        return;
      case 'releaseVolume':
        await client.patch(PersistentVolumes, undefined, step.volume, releaseVolumePatch(volume(step.volume)));
        return;
    }
  }

  /** The step's Event; a wait is told once per reason and message, not on every pass. True when told now. */
  private async tell(claim: Claim, step: PopulationStep): Promise<boolean> {
    const uid = claim.metadata.uid!;
    if (step.action !== 'wait') this.toldWait.delete(uid);
    if (!step.event) return false;
    if (step.action === 'wait') {
      const told = `${step.event.reason}/${step.event.message}`;
      if (this.toldWait.get(uid) === told) return false;
      this.toldWait.set(uid, told);
    }
    await this.record(claim, step.event);
    return true;
  }

  private countOutcome(o: PopulationOutcome | undefined, claim: Claim): void {
    const metrics = this.ctx.metrics;
    if (!o || !metrics) return;
    metrics.metric('kopia_populations_total').inc({ namespace: claim.metadata.namespace!, outcome: o.outcome, reason: o.reason });
    if (o.seconds !== undefined) metrics.metric('kopia_population_duration_seconds').observe({ outcome: o.outcome }, o.seconds);
  }

  private record(claim: Claim, event: PlannedEvent): Promise<void> {
    // Cached list items carry no kind: the Event's involvedObject needs it.
    return this.ctx.events.record({ ...claim, apiVersion: 'v1', kind: 'PersistentVolumeClaim' }, event.type, event.reason, event.message);
  }

  /** An Event on the Restore when its Ready condition changes, as the operator does for its part. */
  private async announce(restore: RestoreObject, after: NonNullable<RestoreObject['status']>): Promise<void> {
    const was = findCondition(restore.status?.conditions, ConditionType.Ready);
    const now = findCondition(after.conditions, ConditionType.Ready);
    if (!now || (was?.reason === now.reason && was?.message === now.message)) return;
    await this.ctx.events.record(restore, after.phase === 'Failed' ? 'Warning' : 'Normal', now.reason, now.message);
  }

  private keysOfUID(uid: string | undefined): string[] {
    const key = uid ? this.keyOfUID.get(uid) : undefined;
    return key ? [key] : [];
  }

  private wakeByUID(uid: string | undefined): void {
    for (const key of this.keysOfUID(uid)) this.queue.add(key);
  }
}

/** The caches a claim's population is observed through: the populator's informers. */
export interface PopulationCaches {
  claims: Informer<Claim>;
  volumes: Informer<Volume>;
  restores: Informer<RestoreObject>;
  repositories: Informer<AnyRepository>;
  clusterRepositories: Informer<AnyRepository>;
  storageClasses: Informer<StorageClass>;
  moverJobs: Pick<MoverJobs, 'get' | 'result'>;
}

/**
 * Everything planPopulation looks at for one claim, from the caches (the reconciler, and the
 * metrics that tell why claims wait). `fresher`: a newer copy of the cached Restore, if known.
 */
export function observePopulation(
  caches: PopulationCaches,
  claim: Claim,
  now: Date,
  retry: RetryPolicy,
  fresher: (restore: RestoreObject) => RestoreObject = (r) => r,
): PopulationObserved {
  const ns = claim.metadata.namespace!;
  const uid = claim.metadata.uid!;
  const cachedRestore = caches.restores.get(`${ns}/${restoreName(claim)}`);
  const restore = cachedRestore ? fresher(cachedRestore) : undefined;
  const prime = caches.claims.get(`${ns}/${primeClaimName(uid)}`);
  const job = caches.moverJobs.get(ns, populateJobName(uid));
  const answer = answerOf(restore?.status, uid);
  const ref = answer?.repository;
  const repository = !ref
    ? undefined
    : ref.kind === 'ClusterRepository'
      ? caches.clusterRepositories.get(ref.name)
      : caches.repositories.get(`${ns}/${ref.name}`);
  return {
    claim,
    restore,
    answer,
    storageClass: claim.spec?.storageClassName ? caches.storageClasses.get(claim.spec.storageClassName) : undefined,
    prime,
    primeVolume: prime?.spec?.volumeName ? caches.volumes.get(prime.spec.volumeName) : undefined,
    // A volume is the claim's only when it names the claim: a claim's spec.volumeName alone
    // (anyone may write one) must not let it act on another claim's volume.
    claimVolume: claimVolume(caches.volumes, claim),
    strayVolumes: caches.volumes
      .list()
      .filter(
        (v) =>
          isHeld(v) &&
          v.spec?.claimRef?.namespace === ns &&
          v.spec.claimRef.name === primeClaimName(uid) &&
          v.spec.claimRef.uid !== prime?.metadata.uid,
      ),
    job,
    jobResult: job && isJobFinished(job) ? caches.moverJobs.result(job, now) : undefined,
    repository,
    now,
    retry,
  };
}

function claimVolume(volumes: Informer<Volume>, claim: Claim): Volume | undefined {
  const uid = claim.metadata.uid;
  const named = claim.spec?.volumeName ? volumes.get(claim.spec.volumeName) : undefined;
  if (named) return named.spec?.claimRef?.uid === uid ? named : undefined;
  return volumes.list().find((v) => v.spec?.claimRef?.uid === uid);
}
