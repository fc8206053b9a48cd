// The catalog mirror: per repository, on its catalog interval and soon after each backup,
// a catalog Job lists every snapshot (`kopia snapshot list --all --json`) and uploads the
// listing to the operator's intake; the operator then mirrors it as Backup objects
// (catalog-plan.ts). Snapshots the cluster did not make — before a rebuild, or by a plain
// kopia client — appear as origin Discovered; objects whose snapshot kopia no longer keeps
// go. Keys: "Repository/<namespace>/<name>" and "ClusterRepository/<name>".
import { randomBytes } from 'node:crypto';
import type { Backup, Identity, RepositoryStatus } from '../../generated/types.js';
import { isAlreadyExists, isConflict, isNotFound, resourcePath, type KubeObject } from '../kube/kube-client.js';
import { Jobs, KopiaBackups, KopiaClusterRepositories, KopiaRepositories, Namespaces, Pods, Secrets } from '../kube/resources.js';
import { boundedName, buildMoverJob, LABELS, MOVER_SELECTOR } from '../jobs/job-builder.js';
import { isJobFinished, moverRequestOf, MoverJobs, RESULT_PENDING_REQUEUE_MS, type JobObject } from '../jobs/mover-job.js';
import type { CatalogRequest } from '../mover/mover-contract.js';
import { ConditionType, Reason } from '../reasons.js';
import { parseDuration } from '../repository/repository-verification.js';
import { SNAPSHOT_FINALIZER } from '../deletion/deletion-plan.js';
import { snapshotGone } from '../deletion/snapshot-finalizer.js';
import {
  moverRepository,
  operatorIdentity,
  repositoryJobBase,
  repositoryKey,
  repositoryOfKey,
  type AnyRepository,
} from '../repository/repository-jobs.js';
import { hostnameOwner, snapshotVerdict } from '../repository/identity-tenancy.js';
import { findCondition } from '../runtime/conditions.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import { SecretKeys } from '../runtime/secret-keys.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import type { ListedSnapshot } from '../restore/restore-plan.js';
import type { CatalogIntake } from './catalog-intake.js';
import { uploadTokenSecret, uploadTokenUse } from './catalog-upload-token.js';
import {
  backupJustSucceeded,
  discoveredBackup,
  catalogSyncSeconds,
  LISTING_STARTED_ANNOTATION,
  mirrorCandidate,
  nextListingAfterMs,
  planMirror,
  SNAPSHOT_ID_LABEL,
  type MirroredBackup,
  type MirrorInput,
  type MirrorPlan,
  type MirrorRemoval,
} from './catalog-plan.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- repository specs of both kinds are read structurally */
type RepoObject = AnyRepository & { spec: { allowedNamespaces?: any } };
type BackupObject = KubeObject & Backup;

const UPLOAD_ANNOTATION = 'kopia.io/upload-id';
const CATALOG_DEADLINE_SECONDS = 1800;
/** How soon after a backup its repository's catalog is listed again (backups in a burst share one run). */
const AFTER_BACKUP_DELAY_MS = 2000;
/** API requests in flight while mirroring (10,000 snapshots are 20,000 writes on a first sync). */
const MIRROR_CONCURRENCY = 24;
/** Tries to drop the finalizer and delete a Backup judged gone before the next listing takes over. */
const REMOVE_ATTEMPTS = 3;

/** A complete listing of one repository: what Restores resolve against. */
export interface Listing {
  snapshots: ListedSnapshot[];
  /** When the catalog Job was created (the API server's clock, whole seconds). */
  listedAt: Date;
  /** The repository listed (the Job's expected unique ID): a listing of another is no answer. */
  uniqueID?: string;
}

export class CatalogOperator extends KindOperator {
  readonly kind = 'Catalog';
  private repositories!: Informer<RepoObject>;
  private clusterRepositories!: Informer<RepoObject>;
  private backups!: Informer<BackupObject>;
  private namespaces!: Informer<KubeObject>;
  private secrets!: SecretKeys;
  private moverJobs!: MoverJobs;
  /** Repositories with a backup finished since their last listing. */
  private readonly dirty = new Set<string>();
  /** Repositories a Restore wants listed: listed even with the mirror turned off. */
  private readonly requested = new Set<string>();
  /** The last listing of each repository and when it began: what Restores resolve against. */
  private readonly listings = new Map<string, Listing>();
  /**
   * Per repository: the Backups (UIDs) the last collected listing lacked, and what the one
   * before it lacked — so collecting the same Job twice (a failed apply) never counts one
   * listing as two.
   */
  private readonly absences = new Map<string, { jobUID: string; before: ReadonlySet<string>; absent: ReadonlySet<string> }>();

  constructor(
    ctx: OperatorContext,
    private readonly intake: CatalogIntake,
  ) {
    super(ctx);
  }

  protected override async init(): Promise<void> {
    this.repositories = this.watchRelated<RepoObject>(KopiaRepositories, (r) => [
      repositoryKey({ name: r.metadata.name!, namespace: r.metadata.namespace }),
    ]);
    this.clusterRepositories = this.watchRelated<RepoObject>(KopiaClusterRepositories, (r) => [
      repositoryKey({ kind: 'ClusterRepository', name: r.metadata.name! }),
    ]);
    this.backups = this.ctx.informers.get<BackupObject>(KopiaBackups);
    this.backups.on((event, b, old) => {
      // A backup that just succeeded: list its repository again soon.
      if (!backupJustSucceeded(event, b as unknown as MirroredBackup, old as unknown as MirroredBackup | undefined)) return;
      const repo = b.status?.repository;
      if (!repo) return;
      const key = repositoryKey({ kind: repo.kind, name: repo.name, namespace: b.metadata.namespace });
      this.dirty.add(key);
      this.queue.addAfter(key, AFTER_BACKUP_DELAY_MS);
    });
    this.namespaces = this.ctx.informers.get(Namespaces);
    this.secrets = new SecretKeys(this.ctx.client, this.ctx.informers.get<KubeObject>(Secrets, { metadataOnly: true }));
    const ownerKey = (o: JobObject) => {
      const l = o.metadata.labels ?? {};
      if (l[LABELS.operation] !== 'catalog') return [];
      return [
        l[LABELS.ownerNamespace]
          ? `${l[LABELS.ownerKind]}/${l[LABELS.ownerNamespace]}/${l[LABELS.ownerName]}`
          : `${l[LABELS.ownerKind]}/${l[LABELS.ownerName]}`,
      ];
    };
    this.moverJobs = new MoverJobs(
      this.ctx.client,
      this.watchRelated<JobObject>(Jobs, ownerKey, { labelSelector: MOVER_SELECTOR }),
      this.watchRelated<JobObject>(Pods, ownerKey, { labelSelector: MOVER_SELECTOR }),
    );
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const cached = repositoryOfKey(key, this.repositories, this.clusterRepositories);
    if (!cached || cached.metadata.deletionTimestamp) return this.forget(key);
    const repo = this.written.latest(cached);
    const type = cached.kind === 'ClusterRepository' ? KopiaClusterRepositories : KopiaRepositories;
    const catalog = repo.status?.catalog ?? {};
    const jobNamespace = repo.metadata.namespace ?? this.ctx.namespace;
    const jobName = boundedName('kopia-catalog', repo.metadata.name!);
    const job = this.moverJobs.get(jobNamespace, jobName);

    if (job && !isJobFinished(job)) return;
    if (job && job.metadata.uid === catalog.collectedJobUID) return void (await this.moverJobs.remove(job));
    if (job) {
      const status = await this.collect(repo, job);
      if (!status) return { requeueAfterMs: RESULT_PENDING_REQUEUE_MS };
      const written = await writeStatus(this.ctx.client, type, repo, status, this.written);
      if (written === 'conflict') return { requeueAfterMs: 200 };
      // A listing mirrored and recorded, once per Job: the next pass finds it collected.
      const seconds = catalogSyncSeconds(job, this.ctx.now());
      if (written === 'written' && !status.catalog?.lastError && seconds !== undefined)
        this.ctx.metrics?.metric('kopia_catalog_sync_duration_seconds').observe({ kind: cached.kind! }, seconds);
      this.intake.forget(job.metadata.annotations?.[UPLOAD_ANNOTATION] ?? '');
      await this.moverJobs.remove(job);
      // A listing asked for while this one ran (a Restore created meanwhile) starts right away.
      if (this.dirty.has(key) || this.requested.has(key)) return { requeueAfterMs: 100 };
      if (repo.spec.catalog?.enabled === false) return;
      return { requeueAfterMs: nextListingAfterMs(this.intervalMs(repo), !!status.catalog?.lastError) };
    }

    // With the mirror turned off, only a Restore's request lists (once).
    if (repo.spec.catalog?.enabled === false && !this.requested.has(key)) return;
    const ready = findCondition(repo.status?.conditions, ConditionType.Ready)?.status === 'True' && !!repo.status?.uniqueID;
    if (!ready) return; // the repository's own changes wake us
    const last = catalog.lastSyncTime ? Date.parse(catalog.lastSyncTime) : undefined;
    const due = last === undefined ? 0 : last + this.intervalMs(repo) - this.ctx.now().getTime();
    if (due > 0 && !this.dirty.has(key) && !this.requested.has(key)) return { requeueAfterMs: due };
    this.dirty.delete(key);
    this.requested.delete(key);
    await this.startJob(repo, jobName);
  }

  /** The last complete listing of a repository (key as repositoryKey), if this process made one. */
  listing(key: string): Listing | undefined {
    return this.listings.get(key);
  }

  /** Lists the repository again now (a Restore wants kopia's answer, not an older one). */
  requestListing(key: string): void {
    if (this.requested.has(key)) return;
    this.requested.add(key);
    this.queue.add(key);
  }

  /** A repository gone: nothing of it is kept (its listing, what it lacked, pending requests). */
  private forget(key: string): void {
    this.dirty.delete(key);
    this.requested.delete(key);
    this.listings.delete(key);
    this.absences.delete(key);
  }

  private intervalMs(repo: RepoObject): number {
    return parseDuration(repo.spec.catalog?.refreshInterval ?? '15m');
  }

  /**
   * Starts a listing: a random upload id and token the intake expects, the Job, and the
   * Secret that hands the token to the Job — owned by the Job, so it goes with it. The
   * Secret follows the Job (its owner needs the Job's UID); a Pod that starts first waits
   * for it, as for any Secret it references.
   */
  private async startJob(repo: RepoObject, name: string): Promise<void> {
    const uploadId = randomBytes(16).toString('hex');
    const token = randomBytes(32).toString('hex');
    const key = repositoryKey({ kind: repo.kind, name: repo.metadata.name!, namespace: repo.metadata.namespace });
    this.intake.expect(uploadId, { token, onReceived: () => this.queue.add(key) });
    const request: CatalogRequest = {
      operation: 'catalog',
      repository: moverRepository(repo),
      identity: operatorIdentity('catalog', repo),
      upload: { url: this.intake.url(uploadId) },
    };
    const base = await repositoryJobBase(repo, this.ctx, this.secrets);
    const job = buildMoverJob({
      ...base,
      name,
      request,
      activeDeadlineSeconds: CATALOG_DEADLINE_SECONDS,
      secrets: [...base.secrets, uploadTokenUse(uploadId)],
    });
    job.metadata.annotations = {
      ...job.metadata.annotations,
      [UPLOAD_ANNOTATION]: uploadId,
      [LISTING_STARTED_ANNOTATION]: this.ctx.now().toISOString(),
    };
    const created = await this.moverJobs.start(job);
    // Adopted (another pass made it): its upload is another one; this one will never come.
    if (!created) return this.intake.forget(uploadId);
    try {
      await this.ctx.client.create(
        Secrets,
        uploadTokenSecret({ uploadId, token, job: { name, namespace: base.namespace, uid: created.metadata.uid! } }),
      );
    } catch (e) {
      // Without its token the Job could only wait: remove it and let the queue try again.
      this.intake.forget(uploadId);
      await this.moverJobs.remove(created as JobObject);
      throw e;
    }
  }

  /** Mirrors the uploaded listing and returns the repository status that records it (undefined: the Job's Pod is not in the cache yet). */
  private async collect(repo: RepoObject, job: JobObject): Promise<RepositoryStatus | undefined> {
    const status = structuredClone(repo.status ?? {});
    const now = this.ctx.now();
    const result = this.moverJobs.result(job, now);
    if (!result) return undefined;
    const uploadId = job.metadata.annotations?.[UPLOAD_ANNOTATION] ?? '';
    const snapshots = this.intake.get(uploadId);
    const refused = this.intake.refusals(uploadId);
    if (refused.length)
      await this.ctx.events.record(
        repo,
        'Warning',
        Reason.CatalogUploadRefused,
        `catalog upload of Job ${job.metadata.name} refused: ${refused.join('; ')}`,
      );
    const base = { ...status.catalog, collectedJobUID: job.metadata.uid, lastSyncTime: now.toISOString().replace(/\.\d{3}Z$/, 'Z') };
    if (!result.ok || !snapshots) {
      const error = result.ok ? 'the catalog Job finished but its upload never arrived (operator restarted?)' : result.message;
      const why = refused.length ? `${error}; the intake refused: ${refused.join('; ')}` : error;
      return { ...status, catalog: { ...base, lastError: why.slice(0, 1024) } };
    }
    const uniqueID = status.uniqueID!;
    const key = repositoryKey({ kind: repo.kind, name: repo.metadata.name!, namespace: repo.metadata.namespace });
    // For Restores, on the API server's clock (they compare it with their creationTimestamp).
    const listedAt = new Date(job.metadata.creationTimestamp ?? now.toISOString());
    // For the mirror, on the operator's clock; a Job without it (an older operator's) judges nothing gone.
    const started = Date.parse(job.metadata.annotations?.[LISTING_STARTED_ANNOTATION] ?? '');
    const previous = this.absences.get(key);
    const absentBefore = previous && previous.jobUID === job.metadata.uid ? previous.before : (previous?.absent ?? new Set<string>());
    // The intake's trimmed snapshots themselves: no second copy for Restores.
    this.listings.set(key, {
      snapshots,
      listedAt,
      // The mover refuses to list any other repository than the one with this ID.
      uniqueID: moverRequestOf<CatalogRequest>(job)?.repository.expectedUniqueID,
    });
    // Turned off, the mirror makes and removes no Backup objects: this listing was for a Restore only.
    // The newest upload's size (a failed listing above keeps the last one's).
    const uploadBytes = this.intake.size(uploadId);
    if (repo.spec.catalog?.enabled === false)
      return {
        ...status,
        catalog: { ...base, uploadBytes, snapshots: undefined, incomplete: undefined, unassigned: undefined, lastError: undefined },
      };
    const repository: MirrorInput['repository'] = {
      kind: repo.kind as 'Repository' | 'ClusterRepository',
      name: repo.metadata.name!,
      namespace: repo.metadata.namespace,
      uniqueID,
    };
    const all = this.backups.list() as unknown as MirroredBackup[];
    const tenancy = {
      kind: repository.kind as 'Repository' | 'ClusterRepository',
      name: repository.name,
      spec: repo.spec,
      status: repo.status,
    };
    const refusal = (ns: string, id: Required<Identity>) => {
      const verdict = snapshotVerdict(tenancy, ns, this.namespaces.get(ns)?.metadata.labels ?? {}, id);
      return verdict.ok ? undefined : { reason: verdict.reason, message: verdict.message };
    };
    const plan = planMirror({
      repository,
      snapshots,
      // Only this object's Backups (several objects may reach one kopia repository), found by what the operator wrote.
      backups: all.filter((b) => mirrorCandidate(b, repository)),
      ownerOf: (id) => {
        // A contested hostname is no one's: its snapshots are shown nowhere until identityHostnames decides.
        const ns =
          tenancy.kind === 'ClusterRepository'
            ? hostnameOwner(repo.spec, id.hostname, repo.status?.contestedHostnames)
            : repo.metadata.namespace!;
        return ns && this.namespaces.get(ns) && !refusal(ns, id) ? ns : undefined;
      },
      refusal,
      shownElsewhere: this.shownByOthers(repo, all),
      listingStartedAt: new Date(Number.isNaN(started) ? 0 : started),
      absentBefore,
      now,
    });
    this.absences.set(key, { jobUID: job.metadata.uid!, before: absentBefore, absent: new Set(plan.absent) });
    await this.apply(plan, repository, now);
    if (plan.create.length || plan.remove.length)
      await this.ctx.events.record(
        repo,
        'Normal',
        Reason.CatalogSynced,
        `${snapshots.length - plan.incomplete} snapshot(s) listed: ${plan.create.length} new Backup object(s), ${plan.remove.length} removed (kopia no longer keeps their snapshot)`,
      );
    return {
      ...status,
      catalog: {
        ...base,
        uploadBytes,
        snapshots: snapshots.length - plan.incomplete,
        incomplete: plan.incomplete,
        unassigned: plan.unassigned,
        lastError: undefined,
      },
    };
  }

  /**
   * "namespace/snapshotID" of the Backups other repository objects reaching the same kopia
   * repository show (status names them): this object makes no second one.
   */
  private shownByOthers(repo: RepoObject, backups: MirroredBackup[]): Set<string> {
    const uniqueID = repo.status?.uniqueID;
    const shown = new Set<string>();
    if (!uniqueID) return shown;
    const others = [...this.repositories.list(), ...this.clusterRepositories.list()].filter(
      (r) => r !== repo && r.metadata.uid !== repo.metadata.uid && r.status?.uniqueID === uniqueID,
    );
    if (!others.length) return shown;
    for (const b of backups) {
      const id = b.status?.snapshot?.id;
      if (id && others.some((r) => mirrorCandidate(b, { kind: r.kind, name: r.metadata.name!, namespace: r.metadata.namespace })))
        shown.add(`${b.metadata.namespace}/${id}`);
    }
    return shown;
  }

  private async apply(plan: MirrorPlan, repository: MirrorInput['repository'], now: Date): Promise<void> {
    const work: (() => Promise<void>)[] = [
      ...plan.create.map((c) => async () => {
        const b = discoveredBackup(c, repository, now);
        let created: KubeObject;
        try {
          created = await this.ctx.client.create(KopiaBackups, { ...b, status: undefined });
        } catch (e) {
          if (!isAlreadyExists(e)) throw e;
          return; // named the same as an object of another snapshot or made meanwhile: the next sync sorts it out
        }
        await this.ctx.client.replace(KopiaBackups, { ...created, status: b.status }, 'status');
      }),
      ...plan.update.map((u) => async () => {
        const current = this.backups.get(`${u.namespace}/${u.name}`);
        if (!current) return;
        try {
          // kopia saved the snapshot under a new id: the label (what Restores and deletions find it by) follows first.
          const labelled = u.snapshotID
            ? await this.ctx.client.patch<KubeObject>(KopiaBackups, u.namespace, u.name, {
                metadata: { labels: { [SNAPSHOT_ID_LABEL]: u.snapshotID }, resourceVersion: current.metadata.resourceVersion },
              })
            : current;
          await this.ctx.client.replace(KopiaBackups, { ...labelled, status: u.status }, 'status');
          if (u.refused) await this.ctx.events.record(current, 'Warning', u.refused.reason, u.status.message ?? u.refused.message);
        } catch (e) {
          if (!isConflict(e) && !isNotFound(e)) throw e; // moved on meanwhile: the next sync sees it
        }
      }),
      ...plan.remove.map((r) => () => this.remove(r)),
    ];
    await inParallel(work, MIRROR_CONCURRENCY);
  }

  /**
   * Removes an object whose snapshot is gone — never by way of a snapshot deletion. First its
   * status says SnapshotGone (only if it is still the object judged, unchanged since: UID and
   * resourceVersion), so the Backup operator no longer puts the snapshot finalizer back; then
   * the finalizer goes, then the object. A conflict there (the Backup operator dropped the
   * finalizer itself, or wrote meanwhile) is retried on the object as it now is, while its
   * status still says SnapshotGone; a conflict on the first write leaves it to the next listing.
   */
  private async remove(r: MirrorRemoval): Promise<void> {
    try {
      let current = this.backups.get(`${r.namespace}/${r.name}`) as KubeObject | undefined;
      if (!current || current.metadata.uid !== r.uid) return;
      current = { ...current, metadata: { ...current.metadata, resourceVersion: r.resourceVersion } };
      if (r.goneStatus) current = await this.ctx.client.replace<KubeObject>(KopiaBackups, { ...current, status: r.goneStatus }, 'status');
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.removeMarked(current, r.uid);
        } catch (e) {
          if (!isConflict(e) || attempt === REMOVE_ATTEMPTS) throw e;
          current = await this.ctx.client.get<KubeObject>(KopiaBackups, r.namespace, r.name);
          if (current.metadata.uid !== r.uid || current.metadata.deletionTimestamp || !snapshotGone(current as MirroredBackup)) return;
        }
      }
    } catch (e) {
      if (!isConflict(e) && !isNotFound(e)) throw e;
    }
  }

  /** Drops the snapshot finalizer, then deletes the object, both only if it has not changed since `b`. */
  private async removeMarked(b: KubeObject, uid: string): Promise<void> {
    let resourceVersion = b.metadata.resourceVersion!;
    const finalizers = b.metadata.finalizers ?? [];
    if (finalizers.includes(SNAPSHOT_FINALIZER)) {
      const patched = await this.ctx.client.patch<KubeObject>(KopiaBackups, b.metadata.namespace, b.metadata.name!, {
        metadata: { finalizers: finalizers.filter((f) => f !== SNAPSHOT_FINALIZER), resourceVersion },
      });
      resourceVersion = patched.metadata.resourceVersion!;
    }
    await this.ctx.client.request('DELETE', resourcePath(KopiaBackups, b.metadata.namespace, b.metadata.name!), {
      body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid, resourceVersion } },
    });
  }
}

/** Runs tasks with at most n in flight; the first failure is thrown after all settle. */
async function inParallel(tasks: (() => Promise<void>)[], n: number): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++];
      try {
        await task();
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, tasks.length) }, worker));
  if (errors.length) throw errors[0];
}
