// Maintenance: repository upkeep under one owner. observe (the object, the other
// Maintenances of its repository, the repository, its Job) → plan (maintenance-plan.ts) →
// act (start, collect, remove the Job) → write status once, with Events for what changed.
// The Job's result is written before the Job is deleted (mover-job.ts).
import type { MaintenanceSpec, MaintenanceStatus, RepositoryReference } from '../../generated/types.js';
import { controllerReference, type KubeObject } from '../kube/kube-client.js';
import { Jobs, KopiaClusterRepositories, KopiaMaintenances, KopiaRepositories, Namespaces, Pods, Secrets } from '../kube/resources.js';
import { boundedName, buildMoverJob, LABELS, MOVER_SELECTOR } from '../jobs/job-builder.js';
import { isJobFinished, MoverJobs, RESULT_PENDING_REQUEUE_MS, type JobObject } from '../jobs/mover-job.js';
import { moverPermission, privilegedSettings } from '../jobs/mover-privileges.js';
import { moverJobRefusal } from '../jobs/job-gate.js';
import { secretKeyUses } from '../jobs/repository-access.js';
import type { MaintenanceRequest, MoverResult } from '../mover/mover-contract.js';
import { ConditionType, Reason } from '../reasons.js';
import { operatorIdentity, repositoryKey, repositoryOfKey, type AnyRepository } from '../repository/repository-jobs.js';
import { kopiaRepositoryOf } from '../repository/shared-repository.js';
import { resolveRepository, type ResolvedRepository } from '../repository/repository-resolver.js';
import { ensureSecretCopy } from '../repository/secret-copy.js';
import { findCondition } from '../runtime/conditions.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import { SecretKeys } from '../runtime/secret-keys.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import { clusterName } from './cluster-name.js';
import { defaultMaintenanceName, mayMaintain } from './maintenance-defaults.js';
import {
  adoptableOwners,
  DEFAULT_MAINTENANCE_LABEL,
  defaultOwner,
  JOB_PURPOSE_ANNOTATION,
  ownerIdentity,
  planMaintenance,
  refreshConditions,
  RUN_MAINTENANCE_ANNOTATION,
  statusFromResult,
  DEFAULT_INDEX_BLOB_WARNING_THRESHOLD,
  type JobPurpose,
  type MaintenanceInput,
  type MaintenancePlan,
  type ObservedJob,
} from './maintenance-plan.js';

export type MaintenanceObject = KubeObject & { spec: MaintenanceSpec; status?: MaintenanceStatus };

/** Full maintenance of a large repository can take hours; a day is the outer bound. */
const MAINTENANCE_DEADLINE_SECONDS = 24 * 3600;
const BLOCKED_POLL_MS = 60_000;

/** The work-queue key of the repository a Maintenance in `namespace` names. */
export function maintainedRepositoryKey(namespace: string, ref: RepositoryReference): string {
  return repositoryKey({ kind: ref.kind ?? 'Repository', name: ref.name, namespace });
}

/**
 * Which Maintenance acts for a repository: the platform's (a ClusterRepository's, in the
 * operator's namespace) before any other over the same kopia repository — a tenant's
 * Repository may reach it with the keys it can read, but not take its maintenance over —
 * then a user-written one before a default one, then the oldest.
 */
export function actingMaintenance(candidates: MaintenanceObject[], operatorNamespace?: string): MaintenanceObject | undefined {
  const platform = (m: MaintenanceObject) => m.spec.repository.kind === 'ClusterRepository' && m.metadata.namespace === operatorNamespace;
  const rank = (m: MaintenanceObject) => (platform(m) ? 0 : 2) + (m.metadata.labels?.[DEFAULT_MAINTENANCE_LABEL] === 'true' ? 1 : 0);
  return [...candidates]
    .filter((m) => !m.metadata.deletionTimestamp)
    .sort(
      (a, b) =>
        rank(a) - rank(b) ||
        (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
        `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`),
    )[0];
}

/**
 * One Maintenance acts per kopia repository, across every Repository and ClusterRepository
 * object that reaches it (`kopiaRepository`: its uniqueID once verified). Names the acting
 * one when it is not `maintenance`.
 */
export function conflictWith(
  maintenance: MaintenanceObject,
  all: MaintenanceObject[],
  kopiaRepository: (m: MaintenanceObject) => string,
  operatorNamespace?: string,
): string | undefined {
  const group = kopiaRepository(maintenance);
  const acting = actingMaintenance(
    all.filter((m) => kopiaRepository(m) === group),
    operatorNamespace,
  );
  if (!acting || acting.metadata.uid === maintenance.metadata.uid) return undefined;
  const name = `${acting.metadata.namespace}/${acting.metadata.name}`;
  const ref = acting.spec.repository;
  const sameObject =
    maintainedRepositoryKey(acting.metadata.namespace!, ref) ===
    maintainedRepositoryKey(maintenance.metadata.namespace!, maintenance.spec.repository);
  return sameObject ? name : `${name} (of ${ref.kind ?? 'Repository'} ${ref.name}, the same kopia repository)`;
}

interface Act {
  /** After the status write: delete this collected Job. */
  remove?: JobObject;
  /** The result collected in this pass, for Events. */
  collected?: { result: MoverResult; purpose?: JobPurpose };
  started?: { purpose: JobPurpose; jobName: string };
  /** The Job finished but its Pod is not in the cache yet: look again shortly. */
  resultPending?: boolean;
}

export class MaintenanceOperator extends KindOperator {
  readonly kind = 'Maintenance';
  private maintenances!: Informer<MaintenanceObject>;
  private repositories!: Informer<AnyRepository>;
  private clusterRepositories!: Informer<AnyRepository>;
  private namespaces!: Informer<KubeObject>;
  private secrets!: SecretKeys;
  private moverJobs!: MoverJobs;

  constructor(ctx: OperatorContext) {
    super(ctx);
  }

  protected override async init(): Promise<void> {
    // A Maintenance's change can end or start another's Conflict: wake every one of its repository.
    await this.watchResource('kopia.io', 'v1alpha1', 'maintenances', async (e) => {
      const m = e.object as unknown as MaintenanceObject;
      this.enqueue(m);
      for (const key of this.keysOfRepository(maintainedRepositoryKey(m.metadata.namespace!, m.spec.repository))) this.queue.add(key);
    });
    this.maintenances = this.ctx.informers.get<MaintenanceObject>(KopiaMaintenances);
    this.repositories = this.watchRelated<AnyRepository>(KopiaRepositories, (r) =>
      this.keysOfRepository(repositoryKey(r.metadata as never)),
    );
    this.clusterRepositories = this.watchRelated<AnyRepository>(KopiaClusterRepositories, (r) =>
      this.keysOfRepository(repositoryKey({ kind: 'ClusterRepository', name: r.metadata.name! })),
    );
    this.namespaces = this.watchRelated<KubeObject>(Namespaces, (n) =>
      this.maintenances
        .list()
        .filter((m) => m.metadata.namespace === n.metadata.name)
        .map((m) => `${m.metadata.namespace}/${m.metadata.name}`),
    );
    this.secrets = new SecretKeys(this.ctx.client, this.ctx.informers.get<KubeObject>(Secrets, { metadataOnly: true }));
    const ownerKey = (o: JobObject) => {
      const l = o.metadata.labels ?? {};
      return l[LABELS.ownerKind] === 'Maintenance' && l[LABELS.operation] === 'maintenance'
        ? [`${l[LABELS.ownerNamespace]}/${l[LABELS.ownerName]}`]
        : [];
    };
    this.moverJobs = new MoverJobs(
      this.ctx.client,
      this.watchRelated<JobObject>(Jobs, ownerKey, { labelSelector: MOVER_SELECTOR }),
      this.watchRelated<JobObject>(Pods, ownerKey, { labelSelector: MOVER_SELECTOR }),
    );
  }

  /** The Maintenances of a repository object and of every other object reaching the same kopia repository. */
  private keysOfRepository(repoKey: string): string[] {
    const repo = repositoryOfKey(repoKey, this.repositories, this.clusterRepositories);
    const group = repo ? kopiaRepositoryOf(repo) : undefined;
    return this.maintenances
      .list()
      .filter(
        (m) =>
          maintainedRepositoryKey(m.metadata.namespace!, m.spec.repository) === repoKey ||
          (group !== undefined && this.kopiaRepositoryOfMaintenance(m) === group),
      )
      .map((m) => `${m.metadata.namespace}/${m.metadata.name}`);
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const cached = this.maintenances.get(key);
    if (!cached || cached.metadata.deletionTimestamp) return;
    const maintenance = this.written.latest(cached);
    const ns = maintenance.metadata.namespace!;
    const name = maintenance.metadata.name!;
    const owner = maintenance.spec.owner ?? defaultOwner(clusterName(this.ctx, this.namespaces));
    const resolved = this.resolve(maintenance);
    const jobName = boundedName('kopia-maintenance', name);
    const job = this.moverJobs.get(ns, jobName);
    const before = maintenance.status ?? {};
    const plan = planMaintenance({
      spec: maintenance.spec,
      status: structuredClone(before),
      namespace: ns,
      name,
      generation: maintenance.metadata.generation ?? 1,
      creationTime: new Date(maintenance.metadata.creationTimestamp ?? 0),
      now: this.ctx.now(),
      owner,
      conflictWith: this.conflictWith(maintenance),
      blocked: resolved.ok
        ? (this.moverBlocked(maintenance, resolved) ?? this.jobRefusal(maintenance, resolved))
        : { reason: resolved.reason, message: resolved.message },
      manualRequest: maintenance.metadata.annotations?.[RUN_MAINTENANCE_ANNOTATION],
      job: job ? observeJob(job, before.collectedJobUID) : undefined,
    });
    const act = await this.act(maintenance, plan, { job, jobName, owner, resolved });
    await this.announce(maintenance, before, plan.status, act, owner);
    const written = await writeStatus(this.ctx.client, KopiaMaintenances, maintenance, plan.status, this.written);
    if (written === 'conflict') return { requeueAfterMs: 200 };
    if (act.resultPending) return { requeueAfterMs: RESULT_PENDING_REQUEUE_MS };
    // With the result stored, the Job may go; a failed delete is retried with backoff.
    if (act.remove && written !== 'gone') await this.moverJobs.remove(act.remove);
    if (plan.step.action === 'idle' && (plan.status.conditions ?? []).some((c) => c.type === ConditionType.Ready && c.status === 'False'))
      return { requeueAfterMs: Math.min(plan.requeueAfterMs ?? BLOCKED_POLL_MS, BLOCKED_POLL_MS) };
    return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
  }

  private async act(
    maintenance: MaintenanceObject,
    plan: MaintenancePlan,
    ctx: { job?: JobObject; jobName: string; owner: string; resolved: ResolvedRepository },
  ): Promise<Act> {
    const { step } = plan;
    switch (step.action) {
      case 'idle':
        plan.status.jobName = undefined;
        return {};
      case 'wait':
        plan.status.jobName = ctx.jobName;
        return {};
      case 'remove':
        return { remove: ctx.job };
      case 'collect': {
        const job = ctx.job!;
        const result = this.moverJobs.result(job, this.ctx.now());
        if (!result) {
          plan.status.jobName = ctx.jobName;
          return { resultPending: true };
        }
        const purpose = purposeOf(job);
        Object.assign(
          plan.status,
          statusFromResult(
            plan.status,
            result,
            { uid: job.metadata.uid!, purpose, startTime: job.status?.startTime, endTime: job.status?.completionTime },
            this.ctx.now(),
          ),
        );
        plan.status.jobName = undefined;
        // The count just collected goes out with its threshold, as every later pass writes it.
        if (plan.status.indexBlobs)
          plan.status.indexBlobs.warningThreshold = maintenance.spec.indexBlobWarningThreshold ?? DEFAULT_INDEX_BLOB_WARNING_THRESHOLD;
        // Recompute conditions from the new status (the next pass would; this one writes it at once).
        plan.status.conditions = refreshConditions(this.inputAgain(maintenance, ctx.owner, plan.status));
        return { remove: job, collected: { result, purpose } };
      }
      case 'start': {
        if (!ctx.resolved.ok) return {};
        const desired = await this.desiredJob(maintenance, ctx.resolved, ctx.jobName, ctx.owner, step.purpose, plan.status);
        await this.moverJobs.start(desired);
        plan.status.jobName = ctx.jobName;
        return { started: { purpose: step.purpose, jobName: ctx.jobName } };
      }
    }
  }

  /** The plan's input for recomputing conditions after a collect (no Job, the new status). */
  private inputAgain(maintenance: MaintenanceObject, owner: string, status: MaintenanceStatus): MaintenanceInput {
    const resolved = this.resolve(maintenance);
    return {
      spec: maintenance.spec,
      status,
      namespace: maintenance.metadata.namespace!,
      name: maintenance.metadata.name!,
      generation: maintenance.metadata.generation ?? 1,
      creationTime: new Date(maintenance.metadata.creationTimestamp ?? 0),
      now: this.ctx.now(),
      owner,
      conflictWith: this.conflictWith(maintenance),
      blocked: resolved.ok
        ? (this.moverBlocked(maintenance, resolved) ?? this.jobRefusal(maintenance, resolved))
        : { reason: resolved.reason, message: resolved.message },
      // A manual request just handled is not pending again.
      manualRequest: undefined,
    };
  }

  private async desiredJob(
    maintenance: MaintenanceObject,
    resolved: Extract<ResolvedRepository, { ok: true }>,
    jobName: string,
    owner: string,
    purpose: JobPurpose,
    status: MaintenanceStatus,
  ): Promise<KubeObject> {
    const ns = maintenance.metadata.namespace!;
    const repo = this.repositoryObject(maintenance)!;
    const uses = secretKeyUses(resolved.spec);
    const jobUses =
      resolved.kind === 'ClusterRepository'
        ? await ensureSecretCopy(this.ctx.client, this.secrets, ns, { name: resolved.name, owner: controllerReference(repo) }, uses)
        : uses;
    const verify = operatorIdentity('verify', repo);
    const request: MaintenanceRequest = {
      operation: 'maintenance',
      repository: { backend: resolved.spec.backend, cache: resolved.spec.cache, expectedUniqueID: resolved.status?.uniqueID },
      identity: ownerIdentity(owner),
      mode: purpose.mode,
      takeover: maintenance.spec.takeoverPolicy === 'Force',
      adoptableOwners: adoptableOwners(status, `${verify.username}@${verify.hostname}`),
    };
    const job = buildMoverJob({
      name: jobName,
      namespace: ns,
      owner: controllerReference(maintenance),
      ownerLabels: { kind: 'Maintenance', name: maintenance.metadata.name!, namespace: ns },
      image: this.ctx.moverImage,
      request,
      secrets: jobUses,
      filesystem: resolved.spec.backend.filesystem,
      mover: { ...resolved.spec.mover, ...maintenance.spec.mover },
      activeDeadlineSeconds: MAINTENANCE_DEADLINE_SECONDS,
    });
    job.metadata.annotations = { ...job.metadata.annotations, [JOB_PURPOSE_ANNOTATION]: JSON.stringify(purpose) };
    return job;
  }

  /** The repository, resolved as any consumer resolves it; the operator's own default for a ClusterRepository needs no tenancy. */
  private resolve(maintenance: MaintenanceObject): ResolvedRepository {
    const ns = maintenance.metadata.namespace!;
    const ownDefault = maintenance.spec.repository.kind === 'ClusterRepository' && ns === this.ctx.namespace;
    return resolveRepository(maintenance.spec.repository, ns, {
      repository: (n, r) => this.repositories.get(`${n}/${r}`) as never,
      clusterRepository: (r) => {
        const repo = this.clusterRepositories.get(r);
        // The operator's namespace runs every ClusterRepository's verify Jobs already.
        return (repo && ownDefault ? { ...repo, spec: { ...repo.spec, allowedNamespaces: { all: true } } } : repo) as never;
      },
      namespaceLabels: (n) => this.namespaces.get(n)?.metadata.labels ?? {},
    });
  }

  private repositoryObject(maintenance: MaintenanceObject): AnyRepository | undefined {
    const ref = maintenance.spec.repository;
    return ref.kind === 'ClusterRepository'
      ? this.clusterRepositories.get(ref.name)
      : this.repositories.get(`${maintenance.metadata.namespace}/${ref.name}`);
  }

  /**
   * Checked at every pass that may start a Job (jobs/job-gate.ts), from the caches now, not
   * from the namespaced Repository's Ready decided earlier: the settings the Job takes from this
   * namespace — the Maintenance's mover, and a namespaced Repository's own mover and volume —
   * and the ClusterRepository's tenancy. The operator's default Maintenance of a
   * ClusterRepository runs the administrator's settings only.
   */
  private jobRefusal(maintenance: MaintenanceObject, resolved: Extract<ResolvedRepository, { ok: true }>) {
    const ns = maintenance.metadata.namespace!;
    if (resolved.kind === 'ClusterRepository' && ns === this.ctx.namespace) return undefined;
    const namespaced = resolved.kind === 'Repository';
    return moverJobRefusal({
      settings: {
        mover: namespaced ? { ...resolved.spec.mover, ...maintenance.spec.mover } : maintenance.spec.mover,
        filesystem: namespaced ? resolved.spec.backend.filesystem : undefined,
      },
      namespace: ns,
      namespaceObject: this.namespaces.get(ns),
      repository: { kind: resolved.kind, name: resolved.name, spec: this.repositoryObject(maintenance)?.spec ?? resolved.spec },
    });
  }

  /** Why no mover may start for this Maintenance, though its repository is usable. */
  private moverBlocked(
    maintenance: MaintenanceObject,
    resolved: Extract<ResolvedRepository, { ok: true }>,
  ): { reason: string; message: string } | undefined {
    const ns = maintenance.metadata.namespace!;
    if (!this.mayAct(maintenance))
      return {
        reason: Reason.MaintenanceNotAllowed,
        message:
          `ClusterRepository ${resolved.name} is shared: its maintenance is the platform's, and only a Maintenance in namespace ${this.ctx.namespace} ` +
          `(its default ${defaultMaintenanceName({ metadata: { name: resolved.name } } as AnyRepository, this.ctx.namespace).name}, or one the cluster administrator writes there) acts for it; this one does nothing`,
      };
    const clusterScoped = resolved.kind === 'ClusterRepository' && ns === this.ctx.namespace;
    const permission = moverPermission(
      privilegedSettings({ mover: maintenance.spec.mover }),
      clusterScoped
        ? { clusterScoped: true }
        : { clusterScoped: false, namespace: ns, namespaceAnnotations: this.namespaces.get(ns)?.metadata.annotations ?? {} },
    );
    return permission.allowed ? undefined : { reason: Reason.PrivilegedMoverNotAllowed, message: permission.message };
  }

  /** The kopia repository a Maintenance maintains: its uniqueID once verified, else its repository object's key. */
  private kopiaRepositoryOfMaintenance(m: MaintenanceObject): string {
    const repo = this.repositoryObject(m);
    return repo ? kopiaRepositoryOf(repo) : maintainedRepositoryKey(m.metadata.namespace!, m.spec.repository);
  }

  private mayAct(maintenance: MaintenanceObject): boolean {
    return mayMaintain(maintenance, this.ctx.namespace);
  }

  private conflictWith(maintenance: MaintenanceObject): string | undefined {
    if (!this.mayAct(maintenance)) return undefined; // refused on its own (moverBlocked), it competes with none
    const candidates = this.maintenances.list().filter((m) => this.mayAct(m));
    return conflictWith(maintenance, candidates, (m) => this.kopiaRepositoryOfMaintenance(m), this.ctx.namespace);
  }

  private async announce(
    maintenance: MaintenanceObject,
    before: MaintenanceStatus,
    after: MaintenanceStatus,
    act: Act,
    owner: string,
  ): Promise<void> {
    const events = this.ctx.events;
    if (act.started) {
      const { purpose, jobName } = act.started;
      const why = purpose.manual
        ? `asked for (${RUN_MAINTENANCE_ANNOTATION}=${purpose.manual})`
        : (purpose.fullSlot ?? purpose.quickSlot ?? 'first run');
      await events.record(
        maintenance,
        'Normal',
        Reason.MaintenanceStarted,
        `${purpose.mode} maintenance as ${owner}, Job ${jobName}: ${why}`,
      );
    }
    if (act.collected) {
      const { result, purpose } = act.collected;
      const mode = purpose?.mode ?? 'quick';
      if (result.ok && result.maintenance) {
        const m = result.maintenance;
        if (m.previousOwner && m.tookOver)
          await events.record(
            maintenance,
            'Warning',
            Reason.MaintenanceTakenOver,
            `took maintenance over from ${m.previousOwner} (takeoverPolicy Force); the owner is ${m.owner}`,
          );
        else if (m.previousOwner !== m.owner && m.previousOwner !== undefined)
          await events.record(
            maintenance,
            'Normal',
            Reason.MaintenanceOwnerSet,
            `maintenance owner set to ${m.owner} (was ${m.previousOwner || 'none'})`,
          );
        const reclaimed = m.reclaimedBytes !== undefined ? `, reclaimed ${m.reclaimedBytes} bytes` : '';
        await events.record(
          maintenance,
          'Normal',
          Reason.MaintenanceSucceeded,
          `${mode} maintenance succeeded${reclaimed}; ${m.indexBlobs} index blobs`,
        );
      } else if (!result.ok && result.errorClass === 'OwnedByOther') {
        await events.record(maintenance, 'Warning', Reason.OwnedByOther, result.message);
      } else {
        const message = result.ok ? 'the mover reported no maintenance outcome' : `${result.errorClass}: ${result.message}`;
        await events.record(maintenance, 'Warning', Reason.MaintenanceFailed, `${mode} maintenance failed: ${message}`);
      }
    }
    for (const type of [ConditionType.Stale, ConditionType.TooManyIndexBlobs]) {
      const was = findCondition(before.conditions, type);
      const is = findCondition(after.conditions, type);
      if (is?.status === 'True' && was?.status !== 'True') await events.record(maintenance, 'Warning', is.reason, is.message);
    }
    const was = findCondition(before.conditions, ConditionType.Ready);
    const is = findCondition(after.conditions, ConditionType.Ready);
    // Run outcomes have their own Events above; this tells blockers (Conflict, repository, schedule) as they appear.
    if (is && is.status === 'False' && !act.collected && (was?.status !== is.status || was?.reason !== is.reason))
      await events.record(maintenance, 'Warning', is.reason, is.message);
  }
}

function purposeOf(job: JobObject): JobPurpose | undefined {
  const raw = job.metadata.annotations?.[JOB_PURPOSE_ANNOTATION];
  try {
    return raw ? (JSON.parse(raw) as JobPurpose) : undefined;
  } catch {
    return undefined;
  }
}

function observeJob(job: JobObject, collectedJobUID: string | undefined): ObservedJob {
  return { uid: job.metadata.uid!, finished: isJobFinished(job), collected: job.metadata.uid === collectedJobUID, purpose: purposeOf(job) };
}
