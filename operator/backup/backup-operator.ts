// Backup: exactly one Kopia snapshot. Pending → Running → Succeeded/Failed: resolve the
// BackupConfig (Ready: repository usable, claim present, mover settings allowed), wait for
// the identity to be free (kopia must never snapshot one source twice at once), make the
// source copy (VolumeSnapshot or clone, per copyMethod), run the backup mover Job, write
// the result, and only then delete the Job and the temporaries.
// Backups that mirror an existing snapshot (spec.snapshot, origin Discovered) belong to
// the catalog mirror; this operator leaves their status alone.
import type { Backup, BackupConfig, BackupStatus, Identity, RepositoryReference } from '../../generated/types.js';
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
import { isJobFinished, moverRequestOf, MoverJobs, type JobObject } from '../jobs/mover-job.js';
import { secretKeyUses } from '../jobs/repository-access.js';
import type { BackupRequest } from '../mover/mover-contract.js';
import { ConditionType, Reason } from '../reasons.js';
import { resolveIdentity, identityString } from '../backupconfig/backupconfig-identity.js';
import { repositoryLabel, REPOSITORY_ID_LABEL, SNAPSHOT_ID_LABEL } from '../catalog/catalog-plan.js';
import { breakerOf, expireBudget, RELEASE_DELETIONS_ANNOTATION, SNAPSHOT_FINALIZER } from '../deletion/deletion-plan.js';
import { resolveRepository } from '../repository/repository-resolver.js';
import { ensureSecretCopy } from '../repository/secret-copy.js';
import { findCondition } from '../runtime/conditions.js';
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
  nodeUsingClaim,
  sourceCopyName,
  type QueuedBackup,
} from './backup-plan.js';
import { isTerminal, justFinished, statusFromBackupResult, statusRunning, statusWaiting } from './backup-status.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- claims, snapshots and repositories are read structurally */
type Obj = KubeObject & { spec?: any; status?: any };
type BackupObject = KubeObject & Backup;
type ConfigObject = KubeObject & BackupConfig;

/** Label of Backups a BackupSchedule made (origin Scheduled). */
export const SCHEDULE_LABEL = 'kopia.io/schedule';

const BACKUP_DEADLINE_SECONDS = 24 * 3600;
const WAIT_POLL_MS = 2000;

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
    // A finished backup frees its identity: wake the ones waiting for it. Only as it finishes:
    // waitingOn scans every Backup, and 30,000 mirrored ones made that quadratic.
    this.backups.on((e, b, old) => {
      if (justFinished(e, b, old)) for (const k of this.waitingOn(b)) this.queue.add(k);
    });
    this.repositories = this.ctx.informers.get<Obj>(KopiaRepositories);
    this.clusterRepositories = this.ctx.informers.get<Obj>(KopiaClusterRepositories);
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
      // Only the leftovers of a finished backup: its collected Job and source copy.
      return { status, remove: job && isJobFinished(job) ? job : undefined, cleanup: !!status.sourceCopy };
    }
    if (job) {
      if (!isJobFinished(job)) return { status };
      const result = this.moverJobs.result(job);
      const ran = moverRequestOf<BackupRequest>(job);
      const next = statusFromBackupResult(status, result, job.metadata.uid!, generation, now);
      if (next.phase === 'Succeeded') next.pinned = !!ran?.pin;
      const repo = status.repository ? this.repositoryObject(status.repository, ns) : undefined;
      const labels =
        next.snapshot?.id && repo?.status?.uniqueID
          ? { [SNAPSHOT_ID_LABEL]: next.snapshot.id, [REPOSITORY_ID_LABEL]: repositoryLabel(repo.status.uniqueID) }
          : undefined;
      // A backup released from the breaker (no expire limit) used the release request up.
      const release = repo?.metadata.annotations?.[RELEASE_DELETIONS_ANNOTATION];
      if (ran && ran.expireLimit === undefined && result.ok && repo && release && release !== repo.status?.deletions?.releaseHandled) {
        const type = status.repository!.kind === 'ClusterRepository' ? KopiaClusterRepositories : KopiaRepositories;
        await writeStatus(this.ctx.client, type, repo, {
          ...repo.status,
          deletions: { ...repo.status?.deletions, releaseHandled: release },
        });
      }
      return { status: next, remove: job, cleanup: true, labels };
    }

    // Pending: resolve what the backup needs, in order; each missing piece is a wait, not a failure.
    const config = this.configs.get(`${ns}/${backup.spec.configRef!.name}`);
    if (!config)
      return this.wait(status, Reason.ConfigNotFound, `BackupConfig ${ns}/${backup.spec.configRef!.name} not found`, generation, now);
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
      this.queuedBackups(),
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

    const owner = controllerReference(backup);
    const source = await this.prepareSource(backup, config, owner, queued);
    if (!source.ready)
      return { status: statusWaiting(source.status, source.reason, source.message, generation, now), requeueAfterMs: WAIT_POLL_MS };

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
      // Retention expires snapshots too: more than the breaker allows stops the backup instead.
      expireLimit: expireBudget({
        breaker: breakerOf(resolved.spec.deletionBreaker),
        state: resolved.status?.deletions,
        releaseRequest: this.repositoryObject(repository, ns)?.metadata.annotations?.[RELEASE_DELETIONS_ANNOTATION],
        now,
      }),
    };
    const jobName = backupJobName(name);
    await this.moverJobs.start(
      buildMoverJob({
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
        data: { claimName: source.claimName, mountPath: identity.path, readOnly: true },
        nodeName: source.nodeName,
        cacheClaim: await this.ensureCacheClaim(config),
      }),
    );
    return { status: statusRunning(source.status, { jobName, identity, repository }, generation, now) };
  }

  /**
   * Adds the snapshot finalizer to Backups with deletionPolicy Delete and drops it from the
   * rest, and from deleted ones that have no snapshot to delete. True when it wrote (the
   * watch brings the object back).
   */
  private async syncFinalizer(backup: BackupObject): Promise<boolean> {
    const has = (backup.metadata.finalizers ?? []).includes(SNAPSHOT_FINALIZER);
    const deleting = !!backup.metadata.deletionTimestamp;
    const snapshot = backup.status?.snapshot?.id ?? backup.spec.snapshot?.id;
    const wants = backup.spec.deletionPolicy === 'Delete' && (!deleting || !!snapshot) && !(deleting && !has);
    if (has === wants) return false;
    const others = (backup.metadata.finalizers ?? []).filter((f) => f !== SNAPSHOT_FINALIZER);
    await this.ctx.client.patch(KopiaBackups, backup.metadata.namespace, backup.metadata.name!, {
      metadata: { finalizers: wants ? [...others, SNAPSHOT_FINALIZER] : others, resourceVersion: backup.metadata.resourceVersion },
    });
    return true;
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

  private queuedBackups(): QueuedBackup[] {
    return this.backups
      .list()
      .filter((b) => !isTerminal(b.status) && !b.spec.snapshot)
      .map((b) => ({
        key: `${b.metadata.namespace}/${b.metadata.name}`,
        creationTimestamp: b.metadata.creationTimestamp ?? '',
        phase: b.status?.phase,
        identityKey: identityKeyOf(b),
      }));
  }

  /** Backups waiting on the identity a finished backup held. */
  private waitingOn(finished: BackupObject): string[] {
    const key = identityKeyOf(finished);
    return key
      ? this.queuedBackups()
          .filter((b) => b.identityKey === key)
          .map((b) => b.key)
      : [];
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

function identityKeyOf(b: BackupObject): string | undefined {
  const repo = b.status?.repository;
  const id = b.status?.snapshot?.identity as Required<Identity> | undefined;
  if (!repo || !id?.username) return undefined;
  return `${repo.kind ?? 'Repository'}/${(repo.kind ?? 'Repository') === 'Repository' ? b.metadata.namespace : ''}/${repo.name}|${identityString(id)}`;
}
