// Restore: resolved and pinned, once per thing restored into. The operator resolves the
// source — backupRef, fromConfig {asOf | offset}, or snapshot {repository, identity, id |
// asOf} — against a listing kopia made after that thing was asked for:
// - target.pvc: the Restore itself; the answer is pinned in status.resolved and this
//   operator runs the mover Job into the existing claim;
// - target.populator: each claim whose dataSourceRef names the Restore, by UID; each
//   answer is pinned in status.claims for that claim's retries and restarts only, and the
//   populator process fills the claim from it. A claim made months later is answered anew.
// Restores fail loudly: only "kopia answered and the identity has no snapshot at all" with
// onMissingSnapshot: Continue becomes an empty volume; any other miss fails with what was
// asked and what exists; an unreachable or not-Ready repository, a wrong password, any
// error keeps the Restore waiting with the reason named.
import type {
  Backup,
  BackupConfig,
  ClaimResolution,
  ClusterRepositorySpec,
  Identity,
  RepositoryReference,
  RestoreStatus,
} from '../../generated/types.js';
import { controllerReference, type KubeObject } from '../kube/kube-client.js';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaClusterRepositories,
  KopiaRepositories,
  KopiaRestores,
  Namespaces,
  PersistentVolumeClaims,
  Pods,
  Secrets,
} from '../kube/resources.js';
import { LABELS, MOVER_SELECTOR } from '../jobs/job-builder.js';
import { isJobFinished, MoverJobs, RESULT_PENDING_REQUEUE_MS, type JobObject } from '../jobs/mover-job.js';
import { moverPermission, privilegedSettings } from '../jobs/mover-privileges.js';
import { secretKeyUses } from '../jobs/repository-access.js';
import { canonicalIdentity, type MoverResult } from '../mover/mover-contract.js';
import { ConditionType, Reason } from '../reasons.js';
import { identityString, resolveIdentity } from '../backupconfig/backupconfig-identity.js';
import type { CatalogOperator } from '../catalog/catalog-operator.js';
import { nodeUsingClaim } from '../backup/backup-plan.js';
import { repositoryKey, type AnyRepository } from '../repository/repository-jobs.js';
import { identityVerdict } from '../repository/identity-tenancy.js';
import { resolveRepository } from '../repository/repository-resolver.js';
import { ensureSecretCopy } from '../repository/secret-copy.js';
import { isNamespaceAllowed } from '../repository/tenancy.js';
import { findCondition, type ConditionInput } from '../runtime/conditions.js';
import { backfillKstatus, setReady } from '../runtime/kstatus.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import { SecretKeys } from '../runtime/secret-keys.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import { isPopulatorClaim, restoreName } from '../populator/populator-plan.js';
import { buildRestoreJob, restoreJobName, type RestoreObject } from './restore-job.js';
import { decideApproval, restoreMoverInputs, restoreMoverSettings, type ApprovalDecision } from './mover-approval.js';
import {
  answerChoice,
  answerOf,
  CLAIM_HISTORY,
  claimAnswer,
  claimsToResolve,
  describeChoice,
  describeHistory,
  keptAnswers,
  listingIsAfter,
  MAX_CLAIM_ANSWERS,
  pinnedSnapshot,
  resolvedOf,
  snapshotsOf,
  restoreEnding,
  type ClaimView,
  type Resolution,
  type SnapshotChoice,
} from './restore-plan.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- pods and repositories are read structurally */
type Obj = KubeObject & { spec?: any; status?: any };

const WAIT_MS = 30_000;
/** Ready reasons told as Warnings although the Restore has not failed: someone has to act. */
const WARNING_REASONS = new Set<string>([
  Reason.ClaimInUse,
  Reason.OwnersNotRestored,
  Reason.PrivilegedMoverNotAllowed,
  Reason.RepositoryNotAllowed,
  Reason.IdentityNotAllowed,
]);
const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export class RestoreOperator extends KindOperator {
  readonly kind = 'Restore';
  private restores!: Informer<RestoreObject>;
  private backups!: Informer<KubeObject & Backup>;
  private configs!: Informer<KubeObject & BackupConfig>;
  private repositories!: Informer<AnyRepository>;
  private clusterRepositories!: Informer<AnyRepository>;
  private namespaces!: Informer<KubeObject>;
  private claims!: Informer<Obj>;
  private secrets!: SecretKeys;
  private moverJobs!: MoverJobs;

  constructor(
    ctx: OperatorContext,
    /** Kopia's listings of each repository; without it nothing can be resolved. */
    private readonly catalog: CatalogOperator | undefined,
  ) {
    super(ctx);
  }

  protected override async init(): Promise<void> {
    await this.watchResource('kopia.io', 'v1alpha1', 'restores', async (e) => this.enqueue(e.object as unknown as KubeObject));
    this.restores = this.ctx.informers.get<RestoreObject>(KopiaRestores);
    // Restores that may wait for something: unresolved ones, and every populator Restore (a
    // claim may need an answer).
    const unresolved = (ns?: string) =>
      this.restores
        .list()
        .filter((r) => (!r.status?.resolved || !!r.spec.target.populator) && (!ns || r.metadata.namespace === ns))
        .map((r) => `${r.metadata.namespace}/${r.metadata.name}`);
    // What a Restore waits for — its repository, config, backup, a fresh listing, a claim — wakes it.
    this.repositories = this.watchRelated<AnyRepository>(KopiaRepositories, (r) => unresolved(r.metadata.namespace));
    this.clusterRepositories = this.watchRelated<AnyRepository>(KopiaClusterRepositories, () => unresolved());
    this.configs = this.watchRelated(KopiaBackupConfigs, (c) => unresolved(c.metadata.namespace));
    // A Backup concerns only Restores that wait for one: unresolved ones and those naming it
    // (not every populator Restore: the mirror writes thousands of Backups).
    this.backups = this.watchRelated(KopiaBackups, (b) =>
      this.restores
        .list()
        .filter(
          (r) =>
            r.metadata.namespace === b.metadata.namespace &&
            (r.spec.source.backupRef?.name === b.metadata.name || (!r.status?.resolved && !r.spec.target.populator)),
        )
        .map((r) => `${r.metadata.namespace}/${r.metadata.name}`),
    );
    // A namespace's privileged-movers opt-in and labels (selector tenancy) decide approvals and Jobs.
    this.namespaces = this.watchRelated<KubeObject>(Namespaces, (n) =>
      this.restores
        .list()
        .filter((r) => r.metadata.namespace === n.metadata.name && (!!r.spec.target.populator || !r.status?.completionTime))
        .map((r) => `${r.metadata.namespace}/${r.metadata.name}`),
    );
    this.claims = this.watchRelated<Obj>(PersistentVolumeClaims, (c) =>
      isPopulatorClaim(c)
        ? [`${c.metadata.namespace}/${restoreName(c)}`]
        : this.restores
            .list()
            .filter((r) => r.metadata.namespace === c.metadata.namespace && r.spec.target.pvc?.name === c.metadata.name)
            .map((r) => `${r.metadata.namespace}/${r.metadata.name}`),
    );
    this.secrets = new SecretKeys(this.ctx.client, this.ctx.informers.get<KubeObject>(Secrets, { metadataOnly: true }));
    const ownerKey = (o: JobObject) => {
      const l = o.metadata.labels ?? {};
      return l[LABELS.ownerKind] === 'Restore' && l[LABELS.operation] === 'restore'
        ? [`${l[LABELS.ownerNamespace]}/${l[LABELS.ownerName]}`]
        : [];
    };
    this.moverJobs = new MoverJobs(
      this.ctx.client,
      this.watchRelated<JobObject>(Jobs, ownerKey, { labelSelector: MOVER_SELECTOR }),
      this.watchRelated<JobObject>(Pods, ownerKey, { labelSelector: MOVER_SELECTOR }),
    );
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const cached = this.restores.get(key);
    if (!cached || cached.metadata.deletionTimestamp) return;
    const restore = this.written.latest(cached);
    return restore.spec.target.populator ? this.reconcileForClaims(restore) : this.reconcileIntoClaim(restore);
  }

  /** target.pvc: resolve once, then the restore Job into the existing claim. */
  private async reconcileIntoClaim(restore: RestoreObject): Promise<ReconcileResult | void> {
    const now = this.ctx.now();
    const generation = restore.metadata.generation ?? 1;
    const before = restore.status ?? {};
    let status: RestoreStatus = structuredClone(before);
    let requeueAfterMs: number | undefined;
    let removeJob: JobObject | undefined;

    if (status.phase === 'Failed' || status.phase === 'Completed') {
      const job = this.moverJobs.get(restore.metadata.namespace!, restoreJobName(restore.metadata.name!));
      if (job && isJobFinished(job)) await this.moverJobs.remove(job);
      // Finished by an older operator: Reconciling and Stalled from its Ready, once.
      const conditions = backfillKstatus(status.conditions, now, { failed: status.phase === 'Failed' });
      if (
        conditions &&
        (await writeStatus(this.ctx.client, KopiaRestores, restore, { ...status, conditions }, this.written)) === 'conflict'
      )
        return { requeueAfterMs: 200 };
      return;
    }
    if (!status.resolved) {
      const r = await this.resolve(restore, createdAt(restore, now), now);
      status = this.statusAfterResolution(restore, status, r, generation, now);
      if (r.state === 'wait') requeueAfterMs = WAIT_MS;
    }
    if (status.resolved && status.phase !== 'Failed') {
      await this.ensureSecretCopy(restore, status.resolved.repository!);
      const step = await this.restoreIntoClaim(restore, status, generation, now);
      status = step.status;
      requeueAfterMs = step.requeueAfterMs;
      removeJob = step.remove;
    }
    await this.announce(restore, before, status);
    const written = await writeStatus(this.ctx.client, KopiaRestores, restore, status, this.written);
    if (written === 'conflict') return { requeueAfterMs: 200 };
    if (written === 'written') this.countEnding(restore, before, status);
    if (removeJob) await this.moverJobs.remove(removeJob);
    return requeueAfterMs !== undefined ? { requeueAfterMs } : undefined;
  }

  /**
   * target.populator: every claim naming this Restore gets its own answer, from a listing
   * made after the claim was created; the populator takes it from status.claims. The
   * top-level phase and Ready follow the newest claim answered here, unless the populator
   * is filling another claim right now (then that one's progress stays in view).
   */
  private async reconcileForClaims(restore: RestoreObject): Promise<ReconcileResult | void> {
    const now = this.ctx.now();
    const generation = restore.metadata.generation ?? 1;
    const before = restore.status ?? {};
    const claims = this.claimsNaming(restore);
    const onMissing = restore.spec.onMissingSnapshot ?? 'Fail';
    let answers = [...(before.claims ?? [])];
    const fresh: ClaimResolution[] = [];
    let waiting: { claim: ClaimView; reason: string; message: string; phase: 'Pending' | 'Resolving' } | undefined;
    const unsettled = new Set(claims.filter((c) => !c.settled).map((c) => c.uid));
    for (const claim of claimsToResolve(before, claims)) {
      if (answers.filter((a) => unsettled.has(a.claimUID)).length >= MAX_CLAIM_ANSWERS - CLAIM_HISTORY) {
        const message = `${MAX_CLAIM_ANSWERS - CLAIM_HISTORY} claims have answers and are not bound yet: claim ${claim.name} waits until one is bound or deleted`;
        waiting ??= { claim, phase: 'Pending', reason: Reason.TooManyClaims, message };
        break;
      }
      const r = await this.resolve(restore, new Date(claim.creationTimestamp), now);
      if (r.state === 'wait') {
        waiting ??= { claim, phase: r.phase, reason: r.reason, message: `claim ${claim.name}: ${r.message}` };
        continue;
      }
      const answer = claimAnswer(claim, r, onMissing, iso(now));
      answers.push(answer);
      fresh.push(answer);
    }
    answers = keptAnswers(answers, unsettled);

    let status: RestoreStatus = { ...structuredClone(before), claims: answers.length ? answers : undefined };
    const newest = fresh[fresh.length - 1];
    const followed = claims.find((c) => c.name === before.target?.pvc);
    // The populator's progress on another claim stays in view until that claim settles.
    const followedAnswer = followed && answerOf(before, followed.uid);
    const populatorBusy =
      !!followed && !followed.settled && !!followedAnswer && !followedAnswer.failed && followed.name !== waiting?.claim.name;
    if (!populatorBusy) {
      if (newest) status = statusForAnswer(status, newest, generation, now);
      else if (waiting)
        status = withReady({ ...clearRun(status), phase: waiting.phase, target: { pvc: waiting.claim.name } }, generation, now, {
          status: 'False',
          reason: waiting.reason,
          message: waiting.message,
        });
      else if (claims.every((c) => c.settled) && !before.target?.pvc) status = await this.waitingForClaim(restore, status, generation, now);
    }
    const pending = answers.filter((a) => a.snapshotID && a.repository && claims.some((c) => c.uid === a.claimUID && !c.settled));
    // What the populator may run, decided now (not when the claim was answered): it checks the hash before each Job.
    const decision = this.approve(restore);
    status = withApproval(status, decision, pending.length > 0, generation, now);
    // Finished (or failed) by an older operator and not answered again: Reconciling and Stalled from its Ready, once.
    const filled = backfillKstatus(status.conditions, now, { failed: status.phase === 'Failed' });
    if (filled) status = { ...status, conditions: filled };
    for (const answer of pending) await this.ensureSecretCopy(restore, answer.repository!);
    const answerEvents = fresh.map(answerEvent);
    await this.announce(restore, before, status, new Set(answerEvents.map((e) => e.message)));
    const written = await writeStatus(this.ctx.client, KopiaRestores, restore, status, this.written);
    if (written === 'conflict') return { requeueAfterMs: 200 };
    if (written === 'written') this.countEnding(restore, before, status);
    // Told once the answers are stored: a conflicting write answers again next pass.
    for (const e of answerEvents) await this.ctx.events.record(restore, e.type, e.reason, e.message);
    return waiting ? { requeueAfterMs: WAIT_MS } : undefined;
  }

  /** kopia_restores_total: only the write that ended the Restore counts, so each ending is counted once. */
  private countEnding(restore: RestoreObject, before: RestoreStatus, after: RestoreStatus): void {
    const ending = restoreEnding(before, after);
    if (ending) this.ctx.metrics?.metric('kopia_restores_total').inc({ namespace: restore.metadata.namespace!, ...ending });
  }

  /** Claims in the Restore's namespace whose dataSourceRef names it. */
  private claimsNaming(restore: RestoreObject): ClaimView[] {
    return this.claims
      .list()
      .filter((c) => c.metadata.namespace === restore.metadata.namespace && isPopulatorClaim(c) && restoreName(c) === restore.metadata.name)
      .map((c) => ({
        name: c.metadata.name!,
        uid: c.metadata.uid!,
        creationTimestamp: c.metadata.creationTimestamp!,
        settled: c.status?.phase === 'Bound' || !!c.metadata.deletionTimestamp,
      }));
  }

  /** No claim names the Restore yet: say so, and what a claim would get from kopia's listing now. */
  private async waitingForClaim(restore: RestoreObject, status: RestoreStatus, generation: number, now: Date): Promise<RestoreStatus> {
    const r = await this.resolve(restore, createdAt(restore, now), now);
    if (r.state === 'wait')
      return withReady({ ...status, phase: r.phase }, generation, now, { status: 'False', reason: r.reason, message: r.message });
    const would =
      r.state === 'failed'
        ? `a claim would fail now: ${r.message}`
        : r.state === 'missing'
          ? `${r.message}; a claim would ${restore.spec.onMissingSnapshot === 'Continue' ? 'start empty (onMissingSnapshot is Continue)' : 'fail (onMissingSnapshot is Fail)'} unless a snapshot is made first`
          : `a claim would get ${r.message.replace(/^pinned /, '')} if created now`;
    const message = `waiting for a claim whose dataSourceRef names this Restore; each claim is resolved against a listing made after it is created (${would})`;
    return withReady({ ...status, phase: 'Pending' }, generation, now, { status: 'False', reason: Reason.WaitingForClaim, message });
  }

  /**
   * Resolves the source against a kopia listing begun after `since`; never calls an error
   * "missing": that is only "the identity has no snapshot at all".
   */
  private async resolve(restore: RestoreObject, since: Date, now: Date): Promise<Resolution> {
    const ns = restore.metadata.namespace!;
    const permission = moverPermission(privilegedSettings(restoreMoverSettings(restore)), {
      clusterScoped: false,
      namespace: ns,
      namespaceAnnotations: this.namespaces.get(ns)?.metadata.annotations ?? {},
    });
    if (!permission.allowed)
      return { state: 'wait', phase: 'Pending', reason: Reason.PrivilegedMoverNotAllowed, message: permission.message };

    const source = restore.spec.source;
    let repositoryRef: RepositoryReference;
    let identity: Required<Identity>;
    let choice: SnapshotChoice;
    let backupRef: { name: string } | undefined;
    if (source.backupRef) {
      const backup = this.backups.get(`${ns}/${source.backupRef.name}`);
      if (!backup)
        return {
          state: 'wait',
          phase: 'Pending',
          reason: Reason.BackupNotFound,
          message: `Backup ${ns}/${source.backupRef.name} not found`,
        };
      if (backup.status?.phase === 'Failed')
        return { state: 'failed', reason: Reason.BackupFailed, message: `Backup ${ns}/${backup.metadata.name} failed: it has no snapshot` };
      const id = backup.status?.snapshot?.id;
      if (backup.status?.phase !== 'Succeeded' || !id || !backup.status.repository)
        return {
          state: 'wait',
          phase: 'Pending',
          reason: Reason.BackupNotReady,
          message: `Backup ${ns}/${backup.metadata.name} has no snapshot yet (${backup.status?.phase ?? 'Pending'})`,
        };
      repositoryRef = backup.status.repository;
      identity = canonicalIdentity(backup.status.snapshot!.identity as Required<Identity>);
      const { startTime, rootID } = backup.status.snapshot ?? {};
      choice = { id, ...(startTime && rootID ? { sameAs: { startTime, rootID } } : {}) };
      backupRef = { name: backup.metadata.name! };
    } else if (source.fromConfig) {
      const config = this.configs.get(`${ns}/${source.fromConfig.name}`);
      if (!config)
        return {
          state: 'wait',
          phase: 'Pending',
          reason: Reason.ConfigNotFound,
          message: `BackupConfig ${ns}/${source.fromConfig.name} not found`,
        };
      repositoryRef = config.spec.repository;
      identity = resolveIdentity(config.spec, config.metadata.name!, ns);
      choice = { asOf: source.fromConfig.asOf, offset: source.fromConfig.offset };
    } else {
      const s = source.snapshot!;
      repositoryRef = s.repository;
      identity = canonicalIdentity(s.identity as Required<Identity>);
      choice = { id: s.id, asOf: s.asOf };
    }

    const repo = resolveRepository(repositoryRef, ns, {
      repository: (n, r) => this.repositories.get(`${n}/${r}`) as never,
      clusterRepository: (r) => this.clusterRepositories.get(r) as never,
      namespaceLabels: (n) => this.namespaces.get(n)?.metadata.labels ?? {},
    });
    // Not found, not allowed, not Ready (unreachable, wrong password, missing…): wait, never "missing".
    if (!repo.ok) return { state: 'wait', phase: 'Pending', reason: repo.reason, message: repo.message };
    // On a ClusterRepository a namespace reads only its own identities (identity-tenancy.ts):
    // refused before any listing. A wait, like a namespace not allowed yet: applied from Git,
    // the ClusterRepository's identityHostnames entry may arrive after the Restore.
    const mine = identityVerdict(repo, ns, identity);
    if (!mine.ok) return { state: 'wait', phase: 'Pending', reason: mine.reason, message: mine.message };
    if (!this.catalog)
      return {
        state: 'wait',
        phase: 'Resolving',
        reason: Reason.NoListing,
        message: 'the operator runs without a catalog intake: it cannot list snapshots',
      };
    const key = repositoryKey({ kind: repo.kind, name: repo.name, namespace: ns });
    const listing = this.catalog.listing(key);
    // A listing answers only when begun after `since`, and of the repository verified now (not
    // one that stood there before the Repository was pointed elsewhere).
    if (!listing || !listingIsAfter(listing.listedAt, since) || listing.uniqueID !== repo.status?.uniqueID) {
      this.catalog.requestListing(key);
      const lastError = (repo.status as { catalog?: { lastError?: string } } | undefined)?.catalog?.lastError;
      return {
        state: 'wait',
        phase: 'Resolving',
        reason: Reason.ListingSnapshots,
        message: `listing the snapshots of ${repo.kind} ${repo.name}${lastError ? ` (last listing failed: ${lastError})` : ''}`,
      };
    }
    const resolvedRepository = { kind: repo.kind, name: repo.name };
    const answer = answerChoice(listing.snapshots, identity, choice);
    const what = describeChoice(identity, choice);
    const listedAt = iso(listing.listedAt);
    if (answer.kind === 'notFound') {
      const message = backupRef ? `Backup ${backupRef.name}'s ${answer.message}` : answer.message;
      return { state: 'failed', reason: Reason.SnapshotNotFound, message: `${message} (in ${repo.kind} ${repo.name})`, listedAt };
    }
    if (answer.kind === 'none')
      return {
        state: 'missing',
        listedAt,
        resolved: { identity, repository: resolvedRepository, resolvedAt: iso(now), empty: true, ...(backupRef ? { backupRef } : {}) },
        message: `${describeHistory(snapshotsOf(listing.snapshots, identity), identity)} in ${repo.kind} ${repo.name}`,
      };
    const chosen = answer.snapshot;
    return {
      state: 'resolved',
      listedAt,
      resolved: {
        snapshotID: chosen.id,
        snapshotTime: chosen.startTime,
        ...(chosen.rootID ? { rootID: chosen.rootID } : {}),
        identity,
        repository: resolvedRepository,
        resolvedAt: iso(now),
        ...(backupRef ? { backupRef } : {}),
      },
      message: `pinned snapshot ${chosen.id} (${what}, taken ${chosen.startTime})`,
    };
  }

  private statusAfterResolution(
    restore: RestoreObject,
    status: RestoreStatus,
    r: Resolution,
    generation: number,
    now: Date,
  ): RestoreStatus {
    switch (r.state) {
      case 'wait':
        return withReady({ ...status, phase: r.phase }, generation, now, { status: 'False', reason: r.reason, message: r.message });
      case 'failed':
        return withReady({ ...status, phase: 'Failed', completionTime: iso(now), message: r.message }, generation, now, {
          status: 'False',
          reason: r.reason,
          message: r.message,
        });
      case 'missing':
        if ((restore.spec.onMissingSnapshot ?? 'Fail') === 'Continue') {
          // Kopia answered and no snapshot exists: an empty volume is what deploy-or-restore asked for.
          const message = `${r.message}; onMissingSnapshot is Continue: the volume starts empty`;
          return withReady({ ...status, resolved: r.resolved, message }, generation, now, {
            status: 'False',
            reason: Reason.NoSnapshotEmptyVolume,
            message,
          });
        }
        return withReady({ ...status, phase: 'Failed', completionTime: iso(now), message: r.message }, generation, now, {
          status: 'False',
          reason: Reason.SnapshotMissing,
          message: `${r.message} (onMissingSnapshot is Fail)`,
        });
      case 'resolved':
        return withReady({ ...status, resolved: r.resolved, message: r.message }, generation, now, {
          status: 'False',
          reason: Reason.Resolved,
          message: r.message,
        });
    }
  }

  /** target.pvc: the restore Job, from start to collected result. */
  private async restoreIntoClaim(
    restore: RestoreObject,
    status: RestoreStatus,
    generation: number,
    now: Date,
  ): Promise<{ status: RestoreStatus; requeueAfterMs?: number; remove?: JobObject }> {
    const ns = restore.metadata.namespace!;
    const claimName = restore.spec.target.pvc!.name;
    const target = { ...status, target: { pvc: claimName } };
    if (status.resolved!.empty) {
      const message = `nothing to restore into ${claimName}: ${status.message ?? 'no snapshot exists'}`;
      return {
        status: withReady({ ...target, phase: 'Completed', completionTime: iso(now) }, generation, now, {
          status: 'True',
          reason: Reason.RestoreCompleted,
          message,
        }),
      };
    }
    const jobName = restoreJobName(restore.metadata.name!);
    const job = this.moverJobs.get(ns, jobName);
    if (job) {
      if (!isJobFinished(job)) return { status: target };
      if (job.metadata.uid === status.collectedJobUID) return { status: target, remove: job };
      const result = this.moverJobs.result(job, now);
      if (!result) return { status: target, requeueAfterMs: RESULT_PENDING_REQUEUE_MS };
      return { status: statusFromRestoreResult(target, result, job.metadata.uid!, generation, now), remove: job };
    }
    if (!this.claims.get(`${ns}/${claimName}`))
      return {
        status: withReady({ ...target, phase: 'Pending' }, generation, now, {
          status: 'False',
          reason: Reason.ClaimNotFound,
          message: `PersistentVolumeClaim ${ns}/${claimName} not found`,
        }),
        requeueAfterMs: WAIT_MS,
      };
    const pods = (await this.ctx.client.list<Obj>(Pods, ns)).items;
    const user = pods.find(
      (p) => p.status?.phase === 'Running' && (p.spec?.volumes ?? []).some((v: any) => v.persistentVolumeClaim?.claimName === claimName),
    );
    if (user && !restore.spec.options?.allowWhileInUse) {
      const message = `PersistentVolumeClaim ${claimName} is mounted by running pod ${user.metadata.name}: stop it, or set spec.options.allowWhileInUse`;
      return {
        status: withReady({ ...target, phase: 'Pending' }, generation, now, { status: 'False', reason: Reason.ClaimInUse, message }),
        requeueAfterMs: WAIT_MS,
      };
    }
    const repository = this.repositoryOf(restore, status.resolved!.repository!);
    if (!repository)
      return {
        status: withReady(target, generation, now, {
          status: 'False',
          reason: Reason.RepositoryNotFound,
          message: 'the pinned repository is gone',
        }),
        requeueAfterMs: WAIT_MS,
      };
    // Checked again right before the Job: spec.mover, the namespace's opt-in and tenancy may have changed since resolving.
    const refusal = this.jobRefusal(restore, status.resolved!.repository!);
    if (refusal)
      return {
        status: withReady({ ...target, phase: 'Pending' }, generation, now, { status: 'False', ...refusal }),
        requeueAfterMs: WAIT_MS,
      };
    await this.moverJobs.start(
      buildRestoreJob({
        restore,
        snapshot: pinnedSnapshot(status.resolved)!,
        repository,
        claimName,
        jobName,
        owner: controllerReference(restore),
        ownerLabels: { kind: 'Restore', name: restore.metadata.name!, namespace: ns },
        image: this.ctx.moverImage,
        nodeName: nodeUsingClaim(pods, claimName),
      }),
    );
    const message = `mover Job ${jobName} restores snapshot ${status.resolved!.snapshotID} into ${claimName}`;
    return {
      status: withReady({ ...target, phase: 'Restoring', startTime: iso(now), jobName }, generation, now, {
        status: 'False',
        reason: Reason.Restoring,
        message,
      }),
    };
  }

  private repositoryOf(restore: RestoreObject, ref: RepositoryReference): AnyRepository | undefined {
    return ref.kind === 'ClusterRepository'
      ? this.clusterRepositories.get(ref.name)
      : this.repositories.get(`${restore.metadata.namespace}/${ref.name}`);
  }

  /**
   * Why no mover Job may run for this Restore from this repository now, if none may: the
   * repository is gone or no longer allows the namespace, or the mover settings are
   * privileged and the namespace has not opted in. From the caches as they are now.
   */
  private jobRefusal(restore: RestoreObject, ref: RepositoryReference): { reason: string; message: string } | undefined {
    const decision = decideApproval({
      restore,
      inputs: this.currentInputs(restore, ref),
      namespaceAnnotations: this.namespaces.get(restore.metadata.namespace!)?.metadata.annotations ?? {},
    });
    return 'refused' in decision ? decision.refused : undefined;
  }

  /** The approval of the populator's mover settings for the repository the source names now. */
  private approve(restore: RestoreObject): ApprovalDecision {
    const ref = this.sourceRepository(restore);
    return decideApproval({
      restore,
      inputs: 'name' in ref ? this.currentInputs(restore, ref) : ref,
      namespaceAnnotations: this.namespaces.get(restore.metadata.namespace!)?.metadata.annotations ?? {},
    });
  }

  /** The Job's inputs from this repository, or why the namespace may not use it (not found, not allowed). */
  private currentInputs(restore: RestoreObject, ref: RepositoryReference) {
    const ns = restore.metadata.namespace!;
    const resolved = resolveRepository(ref, ns, {
      repository: (n, r) => this.repositories.get(`${n}/${r}`) as never,
      clusterRepository: (r) => this.clusterRepositories.get(r) as never,
      namespaceLabels: (n) => this.namespaces.get(n)?.metadata.labels ?? {},
    });
    // Not Ready is no refusal: the Job would only fail, and the populator says so.
    if (!resolved.ok && resolved.reason !== Reason.RepositoryNotReady) return { reason: resolved.reason, message: resolved.message };
    return restoreMoverInputs(restore, ref, this.repositoryOf(restore, ref));
  }

  /** The repository the Restore's source names now (a Backup's, a BackupConfig's, or its own). */
  private sourceRepository(restore: RestoreObject): RepositoryReference | { reason: string; message: string } {
    const ns = restore.metadata.namespace!;
    const source = restore.spec.source;
    if (source.backupRef) {
      const repository = this.backups.get(`${ns}/${source.backupRef.name}`)?.status?.repository;
      return repository ?? { reason: Reason.BackupNotFound, message: `Backup ${ns}/${source.backupRef.name} names no repository yet` };
    }
    if (source.fromConfig) {
      const config = this.configs.get(`${ns}/${source.fromConfig.name}`);
      return (
        config?.spec.repository ?? { reason: Reason.ConfigNotFound, message: `BackupConfig ${ns}/${source.fromConfig.name} not found` }
      );
    }
    return source.snapshot!.repository;
  }

  /** A ClusterRepository's keys where this Restore's mover (ours or the populator's) runs, while the namespace may use it. */
  private async ensureSecretCopy(restore: RestoreObject, ref: RepositoryReference): Promise<void> {
    if (ref.kind !== 'ClusterRepository') return;
    const repo = this.clusterRepositories.get(ref.name);
    if (!repo) return;
    const ns = restore.metadata.namespace!;
    const allowed = (repo.spec as unknown as ClusterRepositorySpec).allowedNamespaces;
    if (!isNamespaceAllowed(allowed, ns, this.namespaces.get(ns)?.metadata.labels ?? {})) return;
    await ensureSecretCopy(
      this.ctx.client,
      this.secrets,
      restore.metadata.namespace!,
      { name: ref.name, owner: controllerReference(repo) },
      secretKeyUses(repo.spec),
    );
  }

  /** An Event when the Ready condition changes, unless this pass told the same already. */
  private async announce(restore: RestoreObject, before: RestoreStatus, after: RestoreStatus, told = new Set<string>()): Promise<void> {
    const was = findCondition(before.conditions, ConditionType.Ready);
    const now = findCondition(after.conditions, ConditionType.Ready);
    if (!now || (was?.reason === now.reason && was?.message === now.message) || told.has(now.message)) return;
    const warning = after.phase === 'Failed' || WARNING_REASONS.has(now.reason);
    await this.ctx.events.record(restore, warning ? 'Warning' : 'Normal', now.reason, now.message);
  }
}

const createdAt = (o: KubeObject, now: Date) => new Date(o.metadata.creationTimestamp ?? iso(now));

/** One claim's answer, as its Event (and the Ready condition when the status follows that claim) says it. */
export function answerEvent(answer: ClaimResolution): { type: 'Normal' | 'Warning'; reason: string; message: string } {
  const claim = `claim ${answer.claimName}`;
  if (answer.failed) return { type: 'Warning', reason: answer.failed.reason, message: `${claim}: ${answer.failed.message}` };
  if (answer.empty)
    return {
      type: 'Normal',
      reason: Reason.NoSnapshotEmptyVolume,
      message: `${claim}: kopia lists no snapshot of ${identityString(answer.identity as Required<Identity>)}; onMissingSnapshot is Continue: the volume starts empty`,
    };
  return {
    type: 'Normal',
    reason: Reason.Resolved,
    message: `${claim}: pinned snapshot ${answer.snapshotID} of ${identityString(answer.identity as Required<Identity>)}, taken ${answer.snapshotTime}`,
  };
}

/**
 * The approval as status records it. A refusal withdraws it and, while a claim waits for a
 * restore Job and none runs (the populator's progress of a running one stays in view), is
 * what the Ready condition says. Pure.
 */
export function withApproval(
  status: RestoreStatus,
  decision: ApprovalDecision,
  claimsWaiting: boolean,
  generation: number,
  now: Date,
): RestoreStatus {
  if ('approval' in decision) return { ...status, moverApproval: decision.approval };
  const withdrawn = { ...status, moverApproval: undefined };
  if (!claimsWaiting || status.phase === 'Restoring') return withdrawn;
  const { reason, message } = decision.refused;
  return withReady({ ...withdrawn, phase: 'Pending' }, generation, now, { status: 'False', reason, message });
}

/** The status of an earlier claim's run, cleared for the next claim. */
function clearRun(status: RestoreStatus): RestoreStatus {
  const { jobName, startTime, completionTime, progress, ownersRestored, collectedJobUID, message, ...rest } = status;
  void [jobName, startTime, completionTime, progress, ownersRestored, collectedJobUID, message];
  return rest;
}

/** The top-level status once a claim has its answer: the populator takes it from there. Pure. */
export function statusForAnswer(status: RestoreStatus, answer: ClaimResolution, generation: number, now: Date): RestoreStatus {
  const { reason, message } = answerEvent(answer);
  const next: RestoreStatus = { ...clearRun(status), target: { pvc: answer.claimName }, resolved: resolvedOf(answer), message };
  if (answer.failed)
    return withReady({ ...next, phase: 'Failed', completionTime: iso(now) }, generation, now, { status: 'False', reason, message });
  return withReady({ ...next, phase: 'Pending' }, generation, now, { status: 'False', reason, message });
}

function withReady(status: RestoreStatus, generation: number, now: Date, ready: Omit<ConditionInput, 'type'>): RestoreStatus {
  return {
    ...status,
    observedGeneration: generation,
    // A Failed Restore stays failed until someone acts (a new claim, a fixed spec): Stalled whatever its reason.
    conditions: setReady(status.conditions, ready, generation, now, { failed: status.phase === 'Failed' }),
  };
}

/** The restore mover's answer; owners not given back is said plainly, never hidden. Pure. */
export function statusFromRestoreResult(
  status: RestoreStatus,
  result: MoverResult,
  jobUID: string,
  generation: number,
  now: Date,
): RestoreStatus {
  const collected = { ...status, collectedJobUID: jobUID, completionTime: iso(now) };
  if (!result.ok || !result.restored) {
    const reason =
      result.ok || result.errorClass === 'Other' || result.errorClass === 'InvalidRequest' ? Reason.RestoreFailed : result.errorClass;
    const message = result.ok ? 'the mover reported success without restore counts' : result.message;
    return withReady({ ...collected, phase: 'Failed', message }, generation, now, { status: 'False', reason, message });
  }
  const r = result.restored;
  const progress = { restoredFiles: r.files, restoredDirs: r.dirs, restoredBytes: r.bytes, errors: r.errors };
  // A pin change saved the pinned snapshot again under a new id: the pin follows it.
  const resolved = r.snapshotID && status.resolved ? { ...status.resolved, snapshotID: r.snapshotID } : status.resolved;
  const base = { ...collected, resolved, phase: 'Completed' as const, progress, ownersRestored: r.ownersRestored };
  const counts = `${r.files} files, ${r.bytes} bytes from snapshot ${resolved?.snapshotID}${r.snapshotID ? ` (snapshot ${status.resolved?.snapshotID} saved again under a new id by a pin change)` : ''}`;
  if (!r.ownersRestored)
    return withReady(base, generation, now, {
      status: 'True',
      reason: Reason.OwnersNotRestored,
      message: `restored ${counts}; files belong to the mover's user, not their recorded owners (only a root mover, spec.mover.securityContext.runAsUser: 0, gives owners back)`,
    });
  return withReady(base, generation, now, {
    status: 'True',
    reason: Reason.RestoreCompleted,
    message: `restored ${counts}, owners included`,
  });
}
