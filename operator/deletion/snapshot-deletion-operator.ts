// Snapshot deletions and pins, batched per repository. A Backup with deletionPolicy
// Delete carries a finalizer; once it is being deleted, its snapshot joins the
// repository's next edit Job, which deletes every waiting snapshot in ONE kopia call (a
// peer spent one process per id: 17 deletions in 37 minutes) — behind the mass-deletion
// breaker (deletion-plan.ts). Pin changes (spec.pin) ride along. Only after the Job
// succeeded are the finalizers removed. Keys as the catalog's: "Repository/<ns>/<name>",
// "ClusterRepository/<name>".
import type { Backup } from '../../generated/types.js';
import type { KubeObject } from '../kube/kube-client.js';
import { Jobs, KopiaBackups, KopiaClusterRepositories, KopiaRepositories, Namespaces, Pods, Secrets } from '../kube/resources.js';
import { boundedName, buildMoverJob, LABELS, MOVER_SELECTOR } from '../jobs/job-builder.js';
import { isJobFinished, moverRequestOf, MoverJobs, RESULT_PENDING_REQUEUE_MS, type JobObject } from '../jobs/mover-job.js';
import { EDIT_PIN_LIMIT, type EditRequest } from '../mover/mover-contract.js';
import { SNAPSHOT_ID_LABEL } from '../catalog/catalog-plan.js';
import { ConditionType, Reason } from '../reasons.js';
import { deletesSnapshot, snapshotGone } from './snapshot-finalizer.js';
import {
  moverRepository,
  operatorIdentity,
  repositoryJobBase,
  repositoryKey,
  repositoryOfKey,
  type AnyRepository,
} from '../repository/repository-jobs.js';
import { findCondition } from '../runtime/conditions.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import { SecretKeys } from '../runtime/secret-keys.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import {
  editHolder,
  forget,
  holdersOf,
  RELEASE_DELETIONS_ANNOTATION,
  reserve,
  settle,
  SNAPSHOT_FINALIZER,
  windowEndsInMs,
} from './deletion-plan.js';
import { updateLedger } from './deletion-ledger.js';
import { ledgerHolder } from '../repository/shared-repository.js';
import { snapshotVerdict } from '../repository/identity-tenancy.js';

type BackupObject = KubeObject & Backup;

const EDIT_DEADLINE_SECONDS = 3600;
/** Snapshot ids per kopia call: a Linux environment variable holds 128 KiB (each id ~35 bytes of JSON). */
const MAX_DELETIONS_PER_EDIT = 2000;
const EDIT_HOLDER_PREFIX = editHolder('');
/** Deletions requested within this long of each other go into one kopia call. */
const BATCH_SETTLE_MS = 3000;

/**
 * The snapshot a Backup stands for, if any: only as the operator recorded it (status, which
 * tenants cannot write) — spec.snapshot is a tenant's claim, and a tenant can name any id.
 */
export function snapshotOf(b: BackupObject): string | undefined {
  return b.status?.snapshot?.id;
}

/** The repository a Backup's snapshot lives in, as a work-queue key (from status, as snapshotOf). */
export function repositoryKeyOf(b: BackupObject): string | undefined {
  const ref = b.status?.repository;
  return ref ? repositoryKey({ kind: ref.kind, name: ref.name, namespace: b.metadata.namespace }) : undefined;
}

export class SnapshotDeletionOperator extends KindOperator {
  readonly kind = 'SnapshotDeletion';
  private repositories!: Informer<AnyRepository>;
  private clusterRepositories!: Informer<AnyRepository>;
  private backups!: Informer<BackupObject>;
  private namespaces!: Informer<KubeObject>;
  private secrets!: SecretKeys;
  private moverJobs!: MoverJobs;

  constructor(ctx: OperatorContext) {
    super(ctx);
  }

  protected override async init(): Promise<void> {
    // A ledger's change (a release, budget settled) also wakes the other objects whose batches it holds.
    this.repositories = this.watchRelated<AnyRepository>(KopiaRepositories, (r) => [
      repositoryKey({ name: r.metadata.name!, namespace: r.metadata.namespace }),
      ...this.batchesHeldBy(r),
    ]);
    this.clusterRepositories = this.watchRelated<AnyRepository>(KopiaClusterRepositories, (r) => [
      repositoryKey({ kind: 'ClusterRepository', name: r.metadata.name! }),
      ...this.batchesHeldBy(r),
    ]);
    this.backups = this.watchRelated<BackupObject>(KopiaBackups, (b) => {
      const key = repositoryKeyOf(b);
      return key && (deletesSnapshot(b) || this.wantsPinChange(b)) ? [key] : [];
    });
    this.namespaces = this.ctx.informers.get<KubeObject>(Namespaces);
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

  /** The keys of the repository objects with a batch in `ledger`'s ledger, other than itself. */
  private batchesHeldBy(ledger: AnyRepository): string[] {
    const uids = new Set(
      holdersOf(ledger.status?.deletions)
        .filter((h) => h.startsWith(EDIT_HOLDER_PREFIX))
        .map((h) => h.slice(EDIT_HOLDER_PREFIX.length)),
    );
    uids.delete(ledger.metadata.uid!);
    if (uids.size === 0) return [];
    return [...this.repositories.list(), ...this.clusterRepositories.list()]
      .filter((r) => uids.has(r.metadata.uid!))
      .map((r) => repositoryKey({ kind: r.kind, name: r.metadata.name!, namespace: r.metadata.namespace }));
  }

  /** The object holding the deletion ledger of the kopia repository `repo` reaches (shared by every object with its uniqueID). */
  private ledgerOf(repo: AnyRepository): AnyRepository {
    return this.written.latest(ledgerHolder(repo, [...this.repositories.list(), ...this.clusterRepositories.list()]));
  }

  private wantsPinChange(b: BackupObject): boolean {
    return (
      !b.metadata.deletionTimestamp &&
      b.status?.phase === 'Succeeded' &&
      !!b.status.snapshot?.id &&
      !snapshotGone(b) && // kopia no longer keeps it: an edit Job could only pretend to pin it
      !!b.spec.pin !== !!b.status.pinned
    );
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const cached = repositoryOfKey(key, this.repositories, this.clusterRepositories);
    const mine = this.backups.list().filter((b) => repositoryKeyOf(b) === key);
    if (!cached) {
      // The repository object is gone: nothing can delete the snapshots; keep them (never lose data) and let the objects go.
      for (const b of mine.filter((x) => deletesSnapshot(x)))
        await this.releaseFinalizer(b, { reason: Reason.SnapshotKept, message: 'its repository object is gone; the snapshot was kept' });
      return;
    }
    const repo = this.written.latest(cached);
    const jobName = boundedName('kopia-edit', repo.metadata.name!);
    const job = this.moverJobs.get(repo.metadata.namespace ?? this.ctx.namespace, jobName);
    if (job && !isJobFinished(job)) return;
    if (job) return this.collect(repo, job);

    const deletions = mine.filter((b) => deletesSnapshot(b));
    const pinChanges = mine.filter((b) => this.wantsPinChange(b));
    const holder = editHolder(repo.metadata.uid!);
    const ledger = this.ledgerOf(repo);
    if (deletions.length === 0 && holdersOf(ledger.status?.deletions).includes(holder)) {
      // Nothing waits for deletion any more (the objects went otherwise): neither does the ledger.
      const dropped = await updateLedger(this.ctx, this.written, ledger, (state) => ({
        state: forget(state ?? {}, [holder]),
        result: undefined,
      }));
      if (dropped === 'conflict') return { requeueAfterMs: 200 };
    }
    if (deletions.length === 0 && pinChanges.length === 0) return;
    // Let a burst of deletions (kubectl delete -l …, a GitOps prune) settle into one batch.
    const newest = Math.max(...deletions.map((b) => Date.parse(b.metadata.deletionTimestamp!)));
    const settling = newest + BATCH_SETTLE_MS - this.ctx.now().getTime();
    if (deletions.length > 0 && settling > 0) return { requeueAfterMs: settling };
    if (findCondition(repo.status?.conditions, ConditionType.Ready)?.status !== 'True' || !repo.status?.uniqueID) return; // the repository's changes wake us

    // Checked again right before the Job: the namespace allowed now, the snapshot's identity its own (rule 2).
    const refusal = (b: BackupObject) => this.refusal(repo, b);
    for (const b of deletions.filter(refusal)) await this.releaseFinalizer(b, refusal(b));
    const permitted = deletions.filter((b) => !refusal(b));
    const pins = pinChanges.filter((b) => !refusal(b));
    if (permitted.length === 0 && pins.length === 0) return;

    // Every deletion this batch makes is reserved in the ledger before its Job starts.
    const batch = [...new Set(permitted.map((b) => snapshotOf(b)!))].sort().slice(0, MAX_DELETIONS_PER_EDIT);
    const decided = await updateLedger(this.ctx, this.written, ledger, (state, breaker) => {
      const r = reserve({
        breaker,
        state,
        holder,
        need: batch.length,
        exact: true,
        releaseRequest: ledger.metadata.annotations?.[RELEASE_DELETIONS_ANNOTATION],
        now: this.ctx.now(),
      });
      return { state: r.state, result: { granted: r.granted, wakeInMs: windowEndsInMs(r.state, breaker, this.ctx.now()) } };
    });
    if (decided === 'conflict') return { requeueAfterMs: 200 };
    // A reservation made before (a start that failed) may be smaller than the batch now: the rest go next.
    const toDelete = batch.slice(0, decided.result.granted ?? 0);
    // Waiting: a release request (a change of the repository) or the window's end wakes us.
    if (toDelete.length === 0 && pins.length === 0)
      return decided.result.wakeInMs !== undefined ? { requeueAfterMs: decided.result.wakeInMs } : undefined;
    const request: EditRequest = {
      operation: 'edit',
      repository: moverRepository(repo),
      identity: operatorIdentity('edit', repo),
      // Bounded so the request fits one environment variable and the answer a termination message; the rest go next.
      delete: toDelete,
      pin: pins.filter((b) => b.spec.pin).map((b) => b.status!.snapshot!.id!),
      unpin: pins.filter((b) => !b.spec.pin).map((b) => b.status!.snapshot!.id!),
    };
    request.pin = request.pin.slice(0, EDIT_PIN_LIMIT);
    request.unpin = request.unpin.slice(0, EDIT_PIN_LIMIT - request.pin.length);
    const desired = buildMoverJob({
      ...(await repositoryJobBase(repo, this.ctx, this.secrets)),
      name: jobName,
      request,
      activeDeadlineSeconds: EDIT_DEADLINE_SECONDS,
    });
    await this.moverJobs.start(desired);
  }

  /** The edit Job finished: its reservation becomes what it deleted, then the Backups go. */
  private async collect(repo: AnyRepository, job: JobObject): Promise<ReconcileResult | void> {
    const ledger = this.ledgerOf(repo);
    if (job.metadata.uid === ledger.status?.deletions?.collectedJobUID) return void (await this.moverJobs.remove(job));
    const request = moverRequestOf<EditRequest>(job);
    const result = this.moverJobs.result(job, this.ctx.now());
    if (!result) return { requeueAfterMs: RESULT_PENDING_REQUEUE_MS };
    const edited = result.ok ? result.edited : undefined;
    const holder = editHolder(repo.metadata.uid!);
    const settled = await updateLedger(this.ctx, this.written, ledger, (state, breaker) => {
      // Unknown (a failed Job): all it was allowed counts as deleted.
      const actual = edited?.deleted ?? request?.delete.length ?? 0;
      const next = settle({ breaker, state, holder, actual, now: this.ctx.now() });
      return {
        state: { ...next, collectedJobUID: job.metadata.uid, lastError: result.ok ? undefined : result.message.slice(0, 1024) },
        result: undefined,
      };
    });
    if (settled === 'conflict') return { requeueAfterMs: 200 };
    if (edited && request) {
      // Deleted now or gone before: either way the snapshot no longer exists — unless the mover
      // still saw it after deleting (a concurrent manifest compaction undid it): that Backup
      // keeps its finalizer and the next edit deletes again.
      const present = new Set(edited.stillPresent ?? []);
      const gone = new Set(request.delete.filter((id) => !present.has(id)));
      for (const b of this.backups.list().filter((x) => deletesSnapshot(x) && gone.has(snapshotOf(x)!))) await this.releaseFinalizer(b);
      if (present.size > 0)
        await this.ctx.events.record(
          repo,
          'Warning',
          Reason.SnapshotDeletionFailed,
          `${present.size} deleted snapshot(s) were listed again after deleting (undone by another kopia client's concurrent manifest compaction); deleting again`,
        );
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
    if (edited?.stillPresent?.length) return { requeueAfterMs: 10_000 };
    return result.ok ? undefined : { requeueAfterMs: 60_000 };
  }

  /** Why this Backup's namespace may not delete or pin its snapshot in `repo` (identity-tenancy.ts), if it may not. */
  private refusal(repo: AnyRepository, b: BackupObject): { reason: string; message: string } | undefined {
    const ns = b.metadata.namespace!;
    const verdict = snapshotVerdict(
      { kind: repo.kind as 'Repository' | 'ClusterRepository', name: repo.metadata.name!, spec: repo.spec, status: repo.status },
      ns,
      this.namespaces.get(ns)?.metadata.labels ?? {},
      b.status?.snapshot?.identity,
    );
    return verdict.ok ? undefined : { reason: verdict.reason, message: `snapshot ${snapshotOf(b)} was kept: ${verdict.message}` };
  }

  private async releaseFinalizer(b: BackupObject, warning?: { reason: string; message: string }): Promise<void> {
    if (warning) await this.ctx.events.record(b, 'Warning', warning.reason, warning.message);
    const finalizers = (b.metadata.finalizers ?? []).filter((f) => f !== SNAPSHOT_FINALIZER);
    await this.ctx.client.patch(KopiaBackups, b.metadata.namespace, b.metadata.name!, {
      metadata: { finalizers, resourceVersion: b.metadata.resourceVersion },
    });
  }
}
