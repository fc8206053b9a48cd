// Backup: exactly one Kopia snapshot. Pending → Running → Succeeded/Failed: resolve the
// BackupConfig (Ready: repository usable, claim present, mover settings allowed), wait for
// the identity to be free (kopia must never snapshot one source twice at once), make the
// source copy (VolumeSnapshot or clone, per copyMethod), run the backup mover Job, write
// the result, and only then delete the Job and the temporaries.
// Backups that mirror an existing snapshot (spec.snapshot, origin Discovered) belong to
// the catalog mirror; this operator leaves their status alone.
import type { Backup, BackupConfig, BackupStatus, DeletionStatus, Identity, RepositoryReference } from '../../generated/types.js';
import { controllerReference, isNotFound, type KubeObject, type OwnerReference, type ResourceType } from '../kube/kube-client.js';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaClusterRepositories,
  KopiaRepositories,
  Namespaces,
  PersistentVolumeClaims,
  Pods,
  Secrets,
  VolumeSnapshots,
} from '../kube/resources.js';
import { buildMoverJob, LABELS, MOVER_SELECTOR } from '../jobs/job-builder.js';
import { backupCapabilities } from '../jobs/mover-privileges.js';
import { moverJobRefusal } from '../jobs/job-gate.js';
import { isJobFinished, moverRequestOf, MoverJobs, RESULT_PENDING_REQUEUE_MS, type JobObject } from '../jobs/mover-job.js';
import { secretKeyUses } from '../jobs/repository-access.js';
import type { BackupRequest, MoverResult } from '../mover/mover-contract.js';
import { ConditionType, Reason } from '../reasons.js';
import { resolveIdentity, identityString } from '../backupconfig/backupconfig-identity.js';
import { repositoryLabel, REPOSITORY_ID_LABEL, SNAPSHOT_ID_LABEL } from '../catalog/catalog-plan.js';
import {
  backupHolder,
  forget,
  holdersOf,
  RELEASE_DELETIONS_ANNOTATION,
  reserve,
  settle,
  SNAPSHOT_FINALIZER,
  releaseCommand,
  windowEndsInMs,
} from '../deletion/deletion-plan.js';
import { repositoryRef, updateLedger } from '../deletion/deletion-ledger.js';
import { snapshotGone, wantsSnapshotFinalizer } from '../deletion/snapshot-finalizer.js';
import type { AnyRepository } from '../repository/repository-jobs.js';
import { ledgerHolder } from '../repository/shared-repository.js';
import { identityVerdict } from '../repository/identity-tenancy.js';
import { resolveRepository } from '../repository/repository-resolver.js';
import { ensureSecretCopy } from '../repository/secret-copy.js';
import { findCondition } from '../runtime/conditions.js';
import { backfillKstatus } from '../runtime/kstatus.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import { SecretKeys } from '../runtime/secret-keys.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import {
  backupJobName,
  cacheClaimName,
  desiredCacheClaim,
  desiredSourceCopyClaim,
  desiredVolumeSnapshot,
  identityBlocker,
  QueuedBackupIndex,
  nodeUsingClaim,
  sourceCopyName,
  type QueuedBackup,
} from './backup-plan.js';
import { isTerminal, justFinished, statusFailed, statusFromBackupResult, statusRunning, statusWaiting } from './backup-status.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- claims, snapshots and repositories are read structurally */
type Obj = KubeObject & { spec?: any; status?: any };
type BackupObject = KubeObject & Backup;
type ConfigObject = KubeObject & BackupConfig;

/** Label of Backups a BackupSchedule made (origin Scheduled). */
export const SCHEDULE_LABEL = 'kopia.io/schedule';

const BACKUP_DEADLINE_SECONDS = 24 * 3600;
const BACKUP_HOLDER_PREFIX = backupHolder('');
const WAIT_POLL_MS = 2000;
/** On a backup Job: the BackupConfig generation its request was built from. */
const CONFIG_GENERATION_ANNOTATION = 'kopia.io/config-generation';

interface StepOutcome {
  status: BackupStatus;
  requeueAfterMs?: number;
  /** After the status write: delete this collected Job, and the source copy. */
  remove?: JobObject;
  cleanup?: boolean;
  /** After the status write: labels that tie the object to its snapshot. */
  labels?: Record<string, string>;
}

export class BackupOperator extends KindOperator {
  readonly kind = 'Backup';
  private backups!: Informer<BackupObject>;
  private configs!: Informer<ConfigObject>;
  private repositories!: Informer<Obj>;
  private clusterRepositories!: Informer<Obj>;
  private namespaces!: Informer<KubeObject>;
  private claims!: Informer<Obj>;
  private secrets!: SecretKeys;
  private moverJobs!: MoverJobs;
  /** identity key → the backup this process started for it (authoritative between a start and the cache seeing it). */
  private readonly identityClaims = new Map<string, string>();
  /** Unfinished backups by identity, so finding those of one identity never scans every Backup. */
  private readonly queued = new QueuedBackupIndex();
  /** Backup UID → key, for the ledger's holders (which name backups by UID). */
  private readonly backupKeysByUID = new Map<string, string>();

  constructor(ctx: OperatorContext) {
    super(ctx);
  }

  protected override async init(): Promise<void> {
    await this.watchResource('kopia.io', 'v1alpha1', 'backups', async (e) => this.enqueue(e.object as unknown as KubeObject));
    this.backups = this.ctx.informers.get<BackupObject>(KopiaBackups);
    const backupsOfConfig = (namespace: string, config: string) =>
      this.backups
        .list()
        .filter((b) => b.metadata.namespace === namespace && b.spec.configRef?.name === config && !isTerminal(b.status))
        .map((b) => `${namespace}/${b.metadata.name}`);
    this.configs = this.watchRelated<ConfigObject>(KopiaBackupConfigs, (c) => backupsOfConfig(c.metadata.namespace!, c.metadata.name!));
    // Unfinished backups by identity, kept from events (seeded from what the cache holds already).
    const index = (e: string, b: BackupObject) => this.queued.set(backupKey(b), e === 'DELETED' ? undefined : queuedOf(b));
    this.backups.on(index);
    for (const b of this.backups.list()) index('ADDED', b);
    // A finished backup frees its identity: wake the ones waiting for it — only as it finishes
    // (a mirror's 30,000 status writes of finished Backups are no news to anyone waiting).
    this.backups.on((e, b, old) => {
      if (justFinished(e, b, old)) for (const k of this.waitingOn(b)) this.queue.add(k);
    });
    this.backups.on((e, b) => {
      if (e === 'DELETED') this.backupKeysByUID.delete(b.metadata.uid!);
      else this.backupKeysByUID.set(b.metadata.uid!, `${b.metadata.namespace}/${b.metadata.name}`);
    });
    // A repository's ledger changing (a release, budget settled) wakes the backups it holds.
    const heldBackups = (r: Obj) =>
      holdersOf(r.status?.deletions)
        .filter((h) => h.startsWith(BACKUP_HOLDER_PREFIX))
        .flatMap((h) => this.keyOfBackupUID(h.slice(BACKUP_HOLDER_PREFIX.length)) ?? []);
    this.repositories = this.watchRelated<Obj>(KopiaRepositories, heldBackups);
    this.clusterRepositories = this.watchRelated<Obj>(KopiaClusterRepositories, heldBackups);
    this.namespaces = this.ctx.informers.get<KubeObject>(Namespaces);
    this.claims = this.watchRelated<Obj>(PersistentVolumeClaims, (pvc) => {
      const l = pvc.metadata.labels ?? {};
      return l[LABELS.ownerKind] === 'Backup' ? [`${pvc.metadata.namespace}/${l[LABELS.ownerName]}`] : [];
    });
    this.secrets = new SecretKeys(this.ctx.client, this.ctx.informers.get<KubeObject>(Secrets, { metadataOnly: true }));
    const ownerKey = (o: JobObject) => {
      const l = o.metadata.labels ?? {};
      return l[LABELS.ownerKind] === 'Backup' && l[LABELS.operation] === 'backup'
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
    const cached = this.backups.get(key);
    if (!cached) return this.releaseIdentity(key);
    // deletionPolicy Delete: a finalizer holds the object until its snapshot is deleted (snapshot-deletion-operator.ts).
    if (await this.syncFinalizer(cached)) return;
    if (cached.metadata.deletionTimestamp || cached.spec.snapshot) return;
    const backup = this.written.latest(cached);
    const generation = backup.metadata.generation ?? 1;
    const now = this.ctx.now();
    const before = backup.status ?? {};
    const outcome = await this.step(backup, { ...structuredClone(before), origin: originOf(backup) }, generation, now);
    await this.announce(backup, before, outcome.status);
    const written = await writeStatus(this.ctx.client, KopiaBackups, backup, outcome.status, this.written);
    if (written === 'conflict') return { requeueAfterMs: 200 };
    if (written === 'gone') return this.releaseIdentity(key);
    // With the result stored, the Job and the temporaries may go; a failure here is retried.
    if (outcome.labels)
      await this.ctx.client.patch(KopiaBackups, backup.metadata.namespace, backup.metadata.name!, { metadata: { labels: outcome.labels } });
    if (outcome.remove) await this.moverJobs.remove(outcome.remove);
    if (outcome.cleanup) await this.cleanupSourceCopy(backup, outcome.status);
    if (isTerminal(outcome.status)) this.releaseIdentity(key);
    return outcome.requeueAfterMs !== undefined ? { requeueAfterMs: outcome.requeueAfterMs } : undefined;
  }

  private async step(backup: BackupObject, status: BackupStatus, generation: number, now: Date): Promise<StepOutcome> {
    const ns = backup.metadata.namespace!;
    const name = backup.metadata.name!;
    const job = this.moverJobs.get(ns, backupJobName(name));
    if (isTerminal(status)) {
      // Only the leftovers of a finished backup: its collected Job and source copy; and, once,
      // Reconciling and Stalled for one an older operator finished.
      const conditions = backfillKstatus(status.conditions, now, { failed: status.phase === 'Failed' });
      return {
        status: conditions ? { ...status, conditions } : status,
        remove: job && isJobFinished(job) ? job : undefined,
        cleanup: !!status.sourceCopy,
      };
    }
    if (job) {
      if (!isJobFinished(job)) return { status };
      // Collected already (the backup waits to run again): the Job has to go first.
      if (job.metadata.uid === status.collectedJobUID) return { status, remove: job, requeueAfterMs: WAIT_POLL_MS };
      const result = this.moverJobs.result(job, now);
      if (!result) return { status, requeueAfterMs: RESULT_PENDING_REQUEUE_MS };
      const ran = moverRequestOf<BackupRequest>(job);
      const repo = status.repository ? this.repositoryObject(status.repository, ns) : undefined;
      // The reservation becomes what retention expired, before anything else is written.
      if (repo && (await this.settleExpiry(backup, repo, result, ran)) === 'conflict') return { status, requeueAfterMs: 200 };
      if (!result.ok && result.errorClass === 'ExpireLimitExceeded' && result.wouldExpire !== undefined) {
        // Nothing was snapshotted or expired: it runs again once the budget (or a release) covers that many.
        const message = `${result.message}; waiting for the mass-deletion budget to cover ${result.wouldExpire}`;
        const waiting = {
          ...status,
          collectedJobUID: job.metadata.uid,
          wouldExpire: result.wouldExpire,
          wouldExpireGeneration: Number(job.metadata.annotations?.[CONFIG_GENERATION_ANNOTATION]) || undefined,
        };
        return {
          status: statusWaiting(waiting, Reason.ExpireLimitExceeded, message, generation, now),
          remove: job,
          requeueAfterMs: WAIT_POLL_MS,
        };
      }
      const next = statusFromBackupResult(status, result, job.metadata.uid!, generation, now);
      if (next.phase === 'Succeeded') {
        next.pinned = !!ran?.pin;
        next.expired = result.ok ? result.expired : undefined;
        delete next.wouldExpire;
        delete next.wouldExpireGeneration;
      }
      const labels =
        next.snapshot?.id && repo?.status?.uniqueID
          ? { [SNAPSHOT_ID_LABEL]: next.snapshot.id, [REPOSITORY_ID_LABEL]: repositoryLabel(repo.status.uniqueID) }
          : undefined;
      return { status: next, remove: job, cleanup: true, labels };
    }

    // Pending: resolve what the backup needs, in order; each missing piece is a wait, not a failure.
    const config = this.configs.get(`${ns}/${backup.spec.configRef!.name}`);
    if (!config)
      return this.wait(status, Reason.ConfigNotFound, `BackupConfig ${ns}/${backup.spec.configRef!.name} not found`, generation, now);
    // Another namespace's identity never runs (its retention would expire their history), whatever the config's status says yet.
    const refused = this.identityRefusal(config, ns);
    if (refused) return { status: statusFailed(status, refused.reason, refused.message, generation, now) };
    const configReady = findCondition(config.status?.conditions, ConditionType.Ready);
    if (configReady?.status !== 'True' || config.status?.observedGeneration !== config.metadata.generation) {
      const why = configReady ? `${configReady.reason}: ${configReady.message}` : 'not reconciled yet';
      return this.wait(status, Reason.ConfigNotReady, `BackupConfig ${config.metadata.name} is not Ready (${why})`, generation, now);
    }
    const resolved = resolveRepository(config.spec.repository, ns, {
      repository: (n, r) => this.repositories.get(`${n}/${r}`) as never,
      clusterRepository: (r) => this.clusterRepositories.get(r) as never,
      namespaceLabels: (n) => this.namespaces.get(n)?.metadata.labels ?? {},
    });
    if (!resolved.ok) return this.wait(status, resolved.reason, resolved.message, generation, now);
    const repository: RepositoryReference = { kind: resolved.kind, name: resolved.name };
    const identity = resolveIdentity(config.spec, config.metadata.name!, ns);
    const identityKey = `${resolved.kind}/${resolved.kind === 'Repository' ? ns : ''}/${resolved.name}|${identityString(identity)}`;
    const queued: BackupStatus = { ...status, repository, snapshot: { ...status.snapshot, identity } };
    const fs = resolved.spec.backend.filesystem;
    if (resolved.kind === 'ClusterRepository' && fs?.volume.persistentVolumeClaim && ns !== this.ctx.namespace) {
      const message = `ClusterRepository ${resolved.name} lives on a claim of namespace ${this.ctx.namespace}; a mover in ${ns} cannot mount it (use nfs, hostPath or an object store)`;
      return this.wait(queued, Reason.RepositoryNotUsable, message, generation, now);
    }

    const blocker = identityBlocker(
      { key: `${ns}/${name}`, creationTimestamp: backup.metadata.creationTimestamp ?? '', phase: 'Pending', identityKey },
      this.queued.sameIdentity(identityKey),
      this.identityClaims.get(identityKey),
    );
    if (blocker) {
      return this.wait(
        queued,
        Reason.IdentityBusy,
        `waiting for Backup ${blocker}: one snapshot of ${identityString(identity)} at a time`,
        generation,
        now,
      );
    }
    this.identityClaims.set(identityKey, `${ns}/${name}`);

    // Retention may expire snapshots: the budget for that is reserved before the Job exists.
    const repositoryObject = this.repositoryObject(repository, ns);
    if (!repositoryObject)
      return this.wait(queued, Reason.RepositoryNotFound, `${repository.kind} ${repository.name} not found`, generation, now);
    // What an earlier run measured holds only for the config it ran with (a changed retention expires otherwise).
    const need = status.wouldExpireGeneration === config.metadata.generation ? status.wouldExpire : undefined;
    const budget = await this.reserveExpiry(backup, config, repositoryObject, need);
    if (budget === 'conflict') return { status: queued, requeueAfterMs: 200 };
    if (budget.granted === undefined) {
      const message = `retention would expire ${need} snapshot(s) at this backup: ${budget.message}`;
      return { status: statusWaiting(queued, Reason.DeletionsPaused, message, generation, now), requeueAfterMs: budget.wakeInMs ?? 30_000 };
    }

    const owner = controllerReference(backup);
    const source = await this.prepareSource(backup, config, owner, queued);
    if (!source.ready)
      return { status: statusWaiting(source.status, source.reason, source.message, generation, now), requeueAfterMs: WAIT_POLL_MS };

    // Checked again at the Job build, from the caches now: not from the config's Ready, decided earlier.
    const refusal = moverJobRefusal({
      settings: {
        mover: config.spec.mover,
        addCapabilities: backupCapabilities(config.spec.mover),
        // A namespaced Repository's volume is its tenant's too (a ClusterRepository's is the administrator's).
        filesystem: resolved.kind === 'Repository' ? fs : undefined,
      },
      namespace: ns,
      namespaceObject: this.namespaces.get(ns),
      repository: { kind: resolved.kind, name: resolved.name, spec: this.repositoryObject(repository, ns)?.spec ?? resolved.spec },
    });
    if (refusal) return this.wait(source.status, refusal.reason, refusal.message, generation, now);
    const uses = secretKeyUses(resolved.spec);
    const jobUses =
      resolved.kind === 'ClusterRepository'
        ? await ensureSecretCopy(
            this.ctx.client,
            this.secrets,
            ns,
            { name: resolved.name, owner: this.clusterRepositoryOwner(resolved.name) },
            uses,
          )
        : uses;
    const request: BackupRequest = {
      operation: 'backup',
      repository: { backend: resolved.spec.backend, cache: resolved.spec.cache, expectedUniqueID: resolved.status?.uniqueID },
      identity,
      policy: { retention: config.spec.retention, ...config.spec.policy },
      tags: { ...backup.spec.tags, 'kopia-operator-backup': `${ns}.${name}` },
      pin: backup.spec.pin,
      // Retention expiring more than this stops the backup before it changes anything.
      expireLimit: budget.granted,
    };
    const jobName = backupJobName(name);
    const desired = buildMoverJob({
      name: jobName,
      namespace: ns,
      owner,
      ownerLabels: { kind: 'Backup', name, namespace: ns },
      image: this.ctx.moverImage,
      request,
      secrets: jobUses,
      filesystem: fs,
      mover: config.spec.mover,
      activeDeadlineSeconds: BACKUP_DEADLINE_SECONDS,
      data: { claimName: source.claimName, readOnly: true },
      nodeName: source.nodeName,
      cacheClaim: await this.ensureCacheClaim(config),
      addCapabilities: backupCapabilities(config.spec.mover),
    });
    // The config this run's policy came from: what it measures holds for that generation only.
    desired.metadata.annotations = {
      ...desired.metadata.annotations,
      [CONFIG_GENERATION_ANNOTATION]: String(config.metadata.generation ?? 0),
    };
    await this.moverJobs.start(desired);
    return { status: statusRunning(source.status, { jobName, identity, repository }, generation, now) };
  }

  /**
   * Adds the snapshot finalizer to Backups with deletionPolicy Delete and drops it from the
   * rest, from deleted ones that have no snapshot to delete, and from those whose snapshot
   * kopia no longer keeps (wantsSnapshotFinalizer). True when it wrote (the watch brings the
   * object back).
   */
  private async syncFinalizer(backup: BackupObject): Promise<boolean> {
    const has = (backup.metadata.finalizers ?? []).includes(SNAPSHOT_FINALIZER);
    const deleting = !!backup.metadata.deletionTimestamp;
    const wants = wantsSnapshotFinalizer(backup);
    if (has === wants) return false;
    const others = (backup.metadata.finalizers ?? []).filter((f) => f !== SNAPSHOT_FINALIZER);
    await this.ctx.client.patch(KopiaBackups, backup.metadata.namespace, backup.metadata.name!, {
      metadata: { finalizers: wants ? [...others, SNAPSHOT_FINALIZER] : others, resourceVersion: backup.metadata.resourceVersion },
    });
    if (deleting && !wants && backup.spec.deletionPolicy === 'Delete' && backup.spec.snapshot?.id && !snapshotGone(backup))
      // Deleted before a listing showed the named snapshot to be this namespace's: nothing was deleted, and that is said.
      await this.ctx.events.record(
        backup,
        'Warning',
        Reason.SnapshotKept,
        `snapshot ${backup.spec.snapshot.id} was kept: this Backup was deleted before a catalog listing adopted it (showed it to be a snapshot of this namespace), so deletionPolicy Delete did not apply`,
      );
    if (deleting && has && snapshotGone(backup))
      // Deleted with deletionPolicy Delete after the mirror found its snapshot gone: no deletion ran, and that is said.
      await this.ctx.events.record(
        backup,
        'Warning',
        Reason.SnapshotGone,
        `snapshot ${backup.status?.snapshot?.id} was not deleted: two catalog listings found it gone from the repository already`,
      );
    return true;
  }

  /** Why the config's identity is not this namespace's on its ClusterRepository (rule 1), if it is not. */
  private identityRefusal(config: ConfigObject, ns: string): { reason: string; message: string } | undefined {
    const ref = config.spec.repository;
    if ((ref.kind ?? 'Repository') !== 'ClusterRepository') return undefined;
    const repo = this.clusterRepositories.get(ref.name);
    if (!repo) return undefined; // waits for it below
    const verdict = identityVerdict(
      { kind: 'ClusterRepository', name: ref.name, spec: repo.spec, status: repo.status },
      ns,
      resolveIdentity(config.spec, config.metadata.name!, ns),
    );
    return verdict.ok ? undefined : { reason: verdict.reason, message: `BackupConfig ${config.metadata.name}: ${verdict.message}` };
  }

  /** The claim the mover reads, made ready per copyMethod; or why it is not ready yet. */
  private async prepareSource(
    backup: BackupObject,
    config: ConfigObject,
    owner: OwnerReference,
    status: BackupStatus,
  ): Promise<
    | { ready: true; claimName: string; nodeName?: string; status: BackupStatus }
    | { ready: false; reason: string; message: string; status: BackupStatus }
  > {
    const ns = backup.metadata.namespace!;
    const claimName = config.spec.source.pvc;
    const claim = this.claims.get(`${ns}/${claimName}`);
    if (!claim)
      return { ready: false, reason: Reason.SourceNotFound, message: `PersistentVolumeClaim ${ns}/${claimName} not found`, status };
    const method = config.spec.copyMethod ?? 'Snapshot';
    if (method === 'Direct') {
      // A ReadWriteOnce claim in use can be mounted only on the node of the pod using it.
      const pods = (await this.ctx.client.list<Obj>(Pods, ns)).items;
      return { ready: true, claimName, nodeName: nodeUsingClaim(pods, claimName), status };
    }
    const copyName = sourceCopyName(backup.metadata.name!);
    const copy: BackupStatus = {
      ...status,
      sourceCopy: { claimName: copyName, ...(method === 'Snapshot' ? { volumeSnapshotName: copyName } : {}) },
    };
    if (method === 'Snapshot') {
      const snapshot = await this.ensure(
        VolumeSnapshots,
        desiredVolumeSnapshot(backup.metadata.name!, ns, owner, claimName, config.spec.volumeSnapshotClassName),
      );
      if (snapshot.status?.error?.message) {
        return {
          ready: false,
          reason: Reason.SourceCopyFailed,
          message: `VolumeSnapshot ${copyName}: ${snapshot.status.error.message}`,
          status: copy,
        };
      }
      if (snapshot.status?.readyToUse !== true)
        return {
          ready: false,
          reason: Reason.PreparingSource,
          message: `waiting for VolumeSnapshot ${copyName} of ${claimName} to be ready`,
          status: copy,
        };
    }
    const cached = this.claims.get(`${ns}/${copyName}`);
    if (!cached) await this.ensure(PersistentVolumeClaims, desiredSourceCopyClaim(backup.metadata.name!, ns, owner, claim, method));
    return { ready: true, claimName: copyName, status: copy };
  }

  /** The config's persistent cache claim, when mover.cache.storageClassName asks for one. */
  private async ensureCacheClaim(config: ConfigObject): Promise<string | undefined> {
    const cache = config.spec.mover?.cache;
    if (!cache?.storageClassName) return undefined;
    const ns = config.metadata.namespace!;
    const name = cacheClaimName(config.metadata.name!);
    if (this.claims.get(`${ns}/${name}`)) return name;
    const owner: OwnerReference = {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'BackupConfig',
      name: config.metadata.name!,
      uid: config.metadata.uid!,
    };
    await this.ensure(PersistentVolumeClaims, desiredCacheClaim(config.metadata.name!, ns, owner, cache));
    return name;
  }

  /** Reads an object, creating it when missing. */
  private async ensure(type: ResourceType, desired: Obj): Promise<Obj> {
    const existing = await this.ctx.client.getOrUndefined<Obj>(type, desired.metadata.namespace, desired.metadata.name!);
    if (existing) return existing;
    return this.ctx.client.create<Obj>(type, desired);
  }

  private async cleanupSourceCopy(backup: BackupObject, status: BackupStatus): Promise<void> {
    const copy = status.sourceCopy;
    if (!copy) return;
    const ns = backup.metadata.namespace!;
    if (copy.claimName) await this.ctx.client.delete(PersistentVolumeClaims, ns, copy.claimName, { propagationPolicy: 'Background' });
    if (copy.volumeSnapshotName) {
      try {
        await this.ctx.client.delete(VolumeSnapshots, ns, copy.volumeSnapshotName, { propagationPolicy: 'Background' });
      } catch (e) {
        if (!isNotFound(e)) throw e; // also: the VolumeSnapshot API itself is gone
      }
    }
    // Cleaned up: forget them, so a finished Backup at rest causes no further calls.
    const latest = this.written.latest(this.backups.get(`${ns}/${backup.metadata.name}`) ?? backup);
    await writeStatus(this.ctx.client, KopiaBackups, latest, { ...latest.status, sourceCopy: undefined }, this.written);
  }

  private wait(status: BackupStatus, reason: string, message: string, generation: number, now: Date): StepOutcome {
    // Waiting on other objects: their watches wake us; the poll is a safety net.
    return { status: statusWaiting(status, reason, message, generation, now), requeueAfterMs: 30_000 };
  }

  /**
   * Reserves this backup's share of the repository's deletion budget. `need` known (an
   * earlier run said how many retention would expire): all of it, or wait. Unknown: what
   * the config's last backup expired (at least 1) as far as the budget goes; a run that
   * would expire more stops and tells.
   */
  private async reserveExpiry(
    backup: BackupObject,
    config: ConfigObject,
    cachedRepository: Obj,
    need: number | undefined,
  ): Promise<{ granted: number | undefined; message?: string; wakeInMs?: number } | 'conflict'> {
    const repo = this.ledgerOf(cachedRepository);
    const last = config.status?.lastSuccessfulBackup;
    const lastExpired = last ? this.backups.get(`${config.metadata.namespace}/${last}`)?.status?.expired : undefined;
    const holder = backupHolder(backup.metadata.uid!);
    const decided = await updateLedger(this.ctx, this.written, repo, (state, breaker) => {
      const now = this.ctx.now();
      const r = reserve({
        breaker,
        state: forget(state ?? {}, this.vanishedHolders(state)),
        holder,
        need: need ?? Math.max(1, lastExpired ?? 0),
        exact: need !== undefined,
        releaseRequest: repo.metadata.annotations?.[RELEASE_DELETIONS_ANNOTATION],
        now,
      });
      // Stable wording per backup (its Events repeat on every change); the repository's condition has the totals.
      const message =
        `that is more than the mass-deletion budget of ${repo.kind} ${repo.metadata.name} has left (${breaker.maxDeletions} within ` +
        `${Math.round(breaker.windowMs / 60_000)} min; see its DeletionsPaused condition). Let it through once with ${releaseCommand(repositoryRef(repo))}`;
      return { state: r.state, result: { granted: r.granted, message, wakeInMs: windowEndsInMs(r.state, breaker, now) } };
    });
    return decided === 'conflict' ? decided : decided.result;
  }

  /** The mover's answer settles the reservation: what retention expired counts (unknown: all that was reserved). */
  private async settleExpiry(backup: BackupObject, cachedRepository: Obj, result: MoverResult, ran: BackupRequest | undefined) {
    const repo = this.ledgerOf(cachedRepository);
    const reserved = ran?.expireLimit ?? 0;
    const actual = result.ok ? (result.expired ?? reserved) : result.errorClass === 'ExpireLimitExceeded' ? 0 : reserved;
    return updateLedger(this.ctx, this.written, repo, (state, breaker) => ({
      state: settle({ breaker, state, holder: backupHolder(backup.metadata.uid!), actual, now: this.ctx.now() }),
      result: undefined,
    }));
  }

  /** The object holding the deletion ledger of the kopia repository `repo` reaches (shared by every object with its uniqueID). */
  private ledgerOf(repo: Obj): AnyRepository {
    const all = [...this.repositories.list(), ...this.clusterRepositories.list()] as AnyRepository[];
    return this.written.latest(ledgerHolder(repo as AnyRepository, all));
  }

  /** Backup holders in a ledger whose Backup is gone (deleted while holding budget or waiting). */
  private vanishedHolders(state: DeletionStatus | undefined): string[] {
    return holdersOf(state).filter(
      (h) => h.startsWith(BACKUP_HOLDER_PREFIX) && this.keyOfBackupUID(h.slice(BACKUP_HOLDER_PREFIX.length)) === undefined,
    );
  }

  /** The key of the Backup with this UID; the map is rebuilt from the cache when it misses (the informer may have listed before our handler). */
  private keyOfBackupUID(uid: string): string | undefined {
    if (!this.backupKeysByUID.has(uid))
      for (const b of this.backups.list()) this.backupKeysByUID.set(b.metadata.uid!, `${b.metadata.namespace}/${b.metadata.name}`);
    return this.backupKeysByUID.get(uid);
  }

  /** Backups waiting on the identity a finished backup held: only that identity's entries are visited. */
  private waitingOn(finished: BackupObject): string[] {
    return this.queued.sameIdentity(identityKeyOf(finished)).map((b) => b.key);
  }

  private releaseIdentity(key: string): void {
    for (const [identity, holder] of this.identityClaims) if (holder === key) this.identityClaims.delete(identity);
  }

  private repositoryObject(ref: RepositoryReference, namespace: string): Obj | undefined {
    return ref.kind === 'ClusterRepository' ? this.clusterRepositories.get(ref.name) : this.repositories.get(`${namespace}/${ref.name}`);
  }

  private clusterRepositoryOwner(name: string): OwnerReference {
    return controllerReference(this.clusterRepositories.get(name)!);
  }

  private async announce(backup: BackupObject, before: BackupStatus, after: BackupStatus): Promise<void> {
    const was = findCondition(before.conditions, ConditionType.Ready);
    const now = findCondition(after.conditions, ConditionType.Ready);
    if (!now || (was?.reason === now.reason && was?.message === now.message)) return;
    const warning = after.phase === 'Failed' || now.reason === Reason.FileErrors;
    await this.ctx.events.record(backup, warning ? 'Warning' : 'Normal', now.reason, now.message);
  }
}

function originOf(backup: BackupObject): BackupStatus['origin'] {
  if (backup.spec.snapshot) return 'Discovered';
  return backup.metadata.labels?.[SCHEDULE_LABEL] ? 'Scheduled' : 'Manual';
}

const backupKey = (b: BackupObject) => `${b.metadata.namespace}/${b.metadata.name}`;

/** The index entry of a backup that may still take a snapshot (Discovered and finished ones never do). */
function queuedOf(b: BackupObject): QueuedBackup | undefined {
  if (isTerminal(b.status) || b.spec.snapshot) return undefined;
  return {
    key: backupKey(b),
    creationTimestamp: b.metadata.creationTimestamp ?? '',
    phase: b.status?.phase,
    identityKey: identityKeyOf(b),
  };
}

function identityKeyOf(b: BackupObject): string | undefined {
  const repo = b.status?.repository;
  const id = b.status?.snapshot?.identity as Required<Identity> | undefined;
  if (!repo || !id?.username) return undefined;
  return `${repo.kind ?? 'Repository'}/${(repo.kind ?? 'Repository') === 'Repository' ? b.metadata.namespace : ''}/${repo.name}|${identityString(id)}`;
}
