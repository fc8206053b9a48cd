// Snapshot deletions and pins, batched per repository. A Backup with deletionPolicy
// Delete carries a finalizer; once it is being deleted, its snapshot joins the
// repository's next edit Job, which deletes every waiting snapshot in ONE kopia call (a
// peer spent one process per id: 17 deletions in 37 minutes) — behind the mass-deletion
// breaker (deletion-plan.ts). Pin changes (spec.pin) ride along. Only after the Job
// succeeded are the finalizers removed. Keys as the catalog's: "Repository/<ns>/<name>",
// "ClusterRepository/<name>".
import type { Backup, RepositoryStatus } from '../../generated/types.js';
import type { KubeObject } from '../kube/kube-client.js';
import { Jobs, KopiaBackups, KopiaClusterRepositories, KopiaRepositories, Pods, Secrets } from '../kube/resources.js';
import { boundedName, buildMoverJob, LABELS, MOVER_SELECTOR } from '../jobs/job-builder.js';
import { isJobFinished, moverRequestOf, MoverJobs, RESULT_PENDING_REQUEUE_MS, type JobObject } from '../jobs/mover-job.js';
import { EDIT_PIN_LIMIT, type EditRequest } from '../mover/mover-contract.js';
import { SNAPSHOT_ID_LABEL } from '../catalog/catalog-plan.js';
import { ConditionType, Reason } from '../reasons.js';
import {
  moverRepository,
  operatorIdentity,
  repositoryJobBase,
  repositoryKey,
  repositoryOfKey,
  type AnyRepository,
} from '../repository/repository-jobs.js';
import { findCondition, setCondition } from '../runtime/conditions.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import { SecretKeys } from '../runtime/secret-keys.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import { breakerOf, decideDeletions, RELEASE_DELETIONS_ANNOTATION, SNAPSHOT_FINALIZER } from './deletion-plan.js';

type BackupObject = KubeObject & Backup;

const EDIT_DEADLINE_SECONDS = 3600;
/** Snapshot ids per kopia call: a Linux environment variable holds 128 KiB (each id ~35 bytes of JSON). */
const MAX_DELETIONS_PER_EDIT = 2000;
/** Deletions requested within this long of each other go into one kopia call. */
const BATCH_SETTLE_MS = 3000;
export const DELETIONS_PAUSED_CONDITION = 'DeletionsPaused';

/** The snapshot a Backup stands for, if any. */
export function snapshotOf(b: BackupObject): string | undefined {
  return b.status?.snapshot?.id ?? b.spec.snapshot?.id;
}

/** The repository a Backup's snapshot lives in, as a work-queue key. */
export function repositoryKeyOf(b: BackupObject): string | undefined {
  const ref = b.status?.repository ?? b.spec.snapshot?.repository;
  return ref ? repositoryKey({ kind: ref.kind, name: ref.name, namespace: b.metadata.namespace }) : undefined;
}

export class SnapshotDeletionOperator extends KindOperator {
  readonly kind = 'SnapshotDeletion';
  private repositories!: Informer<AnyRepository>;
  private clusterRepositories!: Informer<AnyRepository>;
  private backups!: Informer<BackupObject>;
  private secrets!: SecretKeys;
  private moverJobs!: MoverJobs;

  constructor(ctx: OperatorContext) {
    super(ctx);
  }

  protected override async init(): Promise<void> {
    this.repositories = this.watchRelated<AnyRepository>(KopiaRepositories, (r) => [
      repositoryKey({ name: r.metadata.name!, namespace: r.metadata.namespace }),
    ]);
    this.clusterRepositories = this.watchRelated<AnyRepository>(KopiaClusterRepositories, (r) => [
      repositoryKey({ kind: 'ClusterRepository', name: r.metadata.name! }),
    ]);
    this.backups = this.watchRelated<BackupObject>(KopiaBackups, (b) => {
      const key = repositoryKeyOf(b);
      return key && (this.wantsDeletion(b) || this.wantsPinChange(b)) ? [key] : [];
    });
    this.secrets = new SecretKeys(this.ctx.client, this.ctx.informers.get<KubeObject>(Secrets, { metadataOnly: true }));
    const ownerKey = (o: JobObject) => {
      const l = o.metadata.labels ?? {};
      if (l[LABELS.operation] !== 'edit') return [];
      return [repositoryKey({ kind: l[LABELS.ownerKind], name: l[LABELS.ownerName], namespace: l[LABELS.ownerNamespace] })];
    };
    this.moverJobs = new MoverJobs(
      this.ctx.client,
      this.watchRelated<JobObject>(Jobs, ownerKey, { labelSelector: MOVER_SELECTOR }),
      this.watchRelated<JobObject>(Pods, ownerKey, { labelSelector: MOVER_SELECTOR }),
    );
  }

  private wantsDeletion(b: BackupObject): boolean {
    return !!b.metadata.deletionTimestamp && (b.metadata.finalizers ?? []).includes(SNAPSHOT_FINALIZER) && !!snapshotOf(b);
  }

  private wantsPinChange(b: BackupObject): boolean {
    return (
      !b.metadata.deletionTimestamp && b.status?.phase === 'Succeeded' && !!b.status.snapshot?.id && !!b.spec.pin !== !!b.status.pinned
    );
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const cached = repositoryOfKey(key, this.repositories, this.clusterRepositories);
    const mine = this.backups.list().filter((b) => repositoryKeyOf(b) === key);
    if (!cached) {
      // The repository object is gone: nothing can delete the snapshots; keep them (never lose data) and let the objects go.
      for (const b of mine.filter((x) => this.wantsDeletion(x)))
        await this.releaseFinalizer(b, 'its repository object is gone; the snapshot was kept');
      return;
    }
    const repo = this.written.latest(cached);
    const type = repo.kind === 'ClusterRepository' ? KopiaClusterRepositories : KopiaRepositories;
    const jobName = boundedName('kopia-edit', repo.metadata.name!);
    const job = this.moverJobs.get(repo.metadata.namespace ?? this.ctx.namespace, jobName);
    if (job && !isJobFinished(job)) return;
    if (job) return this.collect(repo, job, type);

    const deletions = mine.filter((b) => this.wantsDeletion(b));
    const pinChanges = mine.filter((b) => this.wantsPinChange(b));
    if (deletions.length === 0 && pinChanges.length === 0) return;
    // Let a burst of deletions (kubectl delete -l …, a GitOps prune) settle into one batch.
    const newest = Math.max(...deletions.map((b) => Date.parse(b.metadata.deletionTimestamp!)));
    const settling = newest + BATCH_SETTLE_MS - this.ctx.now().getTime();
    if (deletions.length > 0 && settling > 0) return { requeueAfterMs: settling };
    if (findCondition(repo.status?.conditions, ConditionType.Ready)?.status !== 'True' || !repo.status?.uniqueID) return; // the repository's changes wake us

    const now = this.ctx.now();
    const decision = decideDeletions({
      breaker: breakerOf(repo.spec.deletionBreaker),
      state: repo.status.deletions,
      pending: deletions.length,
      releaseRequest: repo.metadata.annotations?.[RELEASE_DELETIONS_ANNOTATION],
      now,
    });
    const paused = !decision.run && deletions.length > 0;
    const status: RepositoryStatus = {
      ...repo.status,
      deletions: decision.state,
      conditions: setCondition(
        repo.status.conditions,
        paused
          ? {
              type: DELETIONS_PAUSED_CONDITION,
              status: 'True',
              reason: Reason.DeletionsPaused,
              message: (decision as { message: string }).message,
            }
          : { type: DELETIONS_PAUSED_CONDITION, status: 'False', reason: Reason.DeletionsAllowed, message: 'snapshot deletions run' },
        repo.metadata.generation,
        now,
      ),
    };
    const wasPaused = findCondition(repo.status.conditions, DELETIONS_PAUSED_CONDITION)?.status === 'True';
    if (paused && !wasPaused)
      await this.ctx.events.record(repo, 'Warning', Reason.DeletionsPaused, (decision as { message: string }).message);
    if ((await writeStatus(this.ctx.client, type, repo, status, this.written)) === 'conflict') return { requeueAfterMs: 200 };
    const toDelete = paused ? [] : deletions.map((b) => snapshotOf(b)!);
    if (toDelete.length === 0 && pinChanges.length === 0) return;
    const request: EditRequest = {
      operation: 'edit',
      repository: moverRepository(repo),
      identity: operatorIdentity('edit', repo),
      // Bounded so the request fits one environment variable and the answer a termination message; the rest go next.
      delete: [...new Set(toDelete)].sort().slice(0, MAX_DELETIONS_PER_EDIT),
      pin: pinChanges.filter((b) => b.spec.pin).map((b) => b.status!.snapshot!.id!),
      unpin: pinChanges.filter((b) => !b.spec.pin).map((b) => b.status!.snapshot!.id!),
    };
    request.pin = request.pin.slice(0, EDIT_PIN_LIMIT);
    request.unpin = request.unpin.slice(0, EDIT_PIN_LIMIT - request.pin.length);
    const desired = buildMoverJob({
      ...(await repositoryJobBase(repo, this.ctx, this.secrets)),
      name: jobName,
      request,
      activeDeadlineSeconds: EDIT_DEADLINE_SECONDS,
    });
    if (decision.run && decision.release)
      desired.metadata.annotations = { ...desired.metadata.annotations, [RELEASE_DELETIONS_ANNOTATION]: decision.release };
    await this.moverJobs.start(desired);
  }

  /** The edit Job finished: count what it deleted, record the release it used, then free the Backups. */
  private async collect(repo: AnyRepository, job: JobObject, type: typeof KopiaRepositories): Promise<ReconcileResult | void> {
    const status = repo.status ?? {};
    if (job.metadata.uid === status.deletions?.collectedJobUID) return void (await this.moverJobs.remove(job));
    const request = moverRequestOf<EditRequest>(job);
    const result = this.moverJobs.result(job, this.ctx.now());
    if (!result) return { requeueAfterMs: RESULT_PENDING_REQUEUE_MS };
    const edited = result.ok ? result.edited : undefined;
    const release = job.metadata.annotations?.[RELEASE_DELETIONS_ANNOTATION];
    const deletions = {
      ...status.deletions,
      collectedJobUID: job.metadata.uid,
      count: (status.deletions?.count ?? 0) + (edited?.deleted ?? 0),
      ...(edited && release ? { releaseHandled: release } : {}),
      lastError: result.ok ? undefined : result.message.slice(0, 1024),
    };
    const written = await writeStatus(this.ctx.client, type, repo, { ...status, deletions }, this.written);
    if (written === 'conflict') return { requeueAfterMs: 200 };
    if (edited && request) {
      // Deleted now or gone before: either way the snapshot no longer exists.
      const gone = new Set(request.delete);
      for (const b of this.backups.list().filter((x) => this.wantsDeletion(x) && gone.has(snapshotOf(x)!))) await this.releaseFinalizer(b);
      // kopia saves a snapshot whose pins change under a new id: follow it, in status and label.
      const pinned = new Set(request.pin);
      const unpinned = new Set(request.unpin);
      for (const b of this.backups.list()) {
        const id = b.status?.snapshot?.id;
        if (!id || !(pinned.has(id) || unpinned.has(id))) continue;
        const newID = edited.newIDs?.[id] ?? id;
        const current =
          newID === id
            ? b
            : await this.ctx.client.patch<BackupObject>(KopiaBackups, b.metadata.namespace, b.metadata.name!, {
                metadata: { labels: { [SNAPSHOT_ID_LABEL]: newID } },
              });
        await writeStatus(this.ctx.client, KopiaBackups, current, {
          ...current.status,
          snapshot: { ...current.status?.snapshot, id: newID },
          pinned: pinned.has(id),
        });
      }
    } else if (!result.ok) {
      await this.ctx.events.record(repo, 'Warning', Reason.SnapshotDeletionFailed, result.message);
    }
    await this.moverJobs.remove(job);
    return result.ok ? undefined : { requeueAfterMs: 60_000 };
  }

  private async releaseFinalizer(b: BackupObject, warning?: string): Promise<void> {
    if (warning) await this.ctx.events.record(b, 'Warning', Reason.SnapshotKept, warning);
    const finalizers = (b.metadata.finalizers ?? []).filter((f) => f !== SNAPSHOT_FINALIZER);
    await this.ctx.client.patch(KopiaBackups, b.metadata.namespace, b.metadata.name!, {
      metadata: { finalizers, resourceVersion: b.metadata.resourceVersion },
    });
  }
}
