// Verification of Repository and ClusterRepository, shared by both kinds' operators:
// observe (object, Secrets, the verify Job and its Pod) → decide (pure plan) → act (create,
// replace, collect and delete the Job) → write status once, with an Event on every change.
// Deleting a repository object never touches the data in it: there is no finalizer, and
// the Jobs and Secret copies it owns are garbage-collected.
import type { RepositorySpec, RepositoryStatus } from '../../generated/types.js';
import { controllerReference, type KubeObject, type OwnerReference, type ResourceType } from '../kube/kube-client.js';
import { Jobs, Namespaces, Pods, Secrets } from '../kube/resources.js';
import type { VerifyRequest } from '../mover/mover-contract.js';
import { ConditionType, Reason } from '../reasons.js';
import { findCondition } from '../runtime/conditions.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import { SecretKeys } from '../runtime/secret-keys.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import { formatProblem, type KopiaValidator } from '../validation/validator.js';
import { boundedName, buildMoverJob, LABELS, MOVER_SELECTOR, shortHash, SPEC_HASH_ANNOTATION } from '../jobs/job-builder.js';
import { isJobFinished, MoverJobs, RESULT_PENDING_REQUEUE_MS, type JobObject } from '../jobs/mover-job.js';
import { moverPermission, privilegedSettings } from '../jobs/mover-privileges.js';
import { secretKeyUses, type SecretKeyUse } from '../jobs/repository-access.js';
import {
  GENERATION_ANNOTATION,
  parseDuration,
  pendingReinitialize,
  planVerification,
  REINITIALIZE_ANNOTATION,
  SECRETS_HASH_ANNOTATION,
  statusBlocked,
  statusFromResult,
  statusVerifying,
  type ObservedJob,
} from './repository-verification.js';

export type RepositoryObject = KubeObject & { spec: RepositorySpec; status?: RepositoryStatus };

const VERIFY_DEADLINE_SECONDS = 600;

/** What one verification pass decided; the reconciler writes the status, then acts on the rest. */
interface VerifyOutcome {
  status: RepositoryStatus;
  requeueAfterMs?: number;
  created?: boolean;
  /** A finished Job to delete once the status holding its result is written. */
  remove?: JobObject;
  /** The reinitialize request this pass completed. */
  reinitialized?: { request: string; from?: string; to: string };
}

export abstract class RepositoryReconciler extends KindOperator {
  protected repositories!: Informer<RepositoryObject>;
  protected namespaces!: Informer<KubeObject>;
  protected secrets!: SecretKeys;
  private moverJobs!: MoverJobs;

  constructor(
    ctx: OperatorContext,
    protected readonly validator: KopiaValidator,
  ) {
    super(ctx);
  }

  protected abstract readonly resource: ResourceType;
  /** Where this repository's verify Job runs. */
  protected abstract jobNamespace(repo: RepositoryObject): string;
  /** The Secret key uses as the Job will read them (ClusterRepository: from a copy). */
  protected abstract prepareSecrets(repo: RepositoryObject, uses: SecretKeyUse[], owner: OwnerReference): Promise<SecretKeyUse[]>;
  /** Extra status (ClusterRepository: tenancy). */
  protected decorateStatus(_repo: RepositoryObject, status: RepositoryStatus): RepositoryStatus {
    return status;
  }
  /** The repositories a namespace change concerns (its privileged-mover opt-in; ClusterRepository: its labels). */
  protected keysForNamespace(namespace: KubeObject): string[] {
    return this.repositories
      .list()
      .filter((r) => r.metadata.namespace === namespace.metadata.name)
      .map((r) => `${r.metadata.namespace}/${r.metadata.name}`);
  }

  protected override async init(): Promise<void> {
    await this.watchResource('kopia.io', 'v1alpha1', this.resource.plural, async (e) => this.enqueue(e.object as unknown as KubeObject));
    this.repositories = this.ctx.informers.get<RepositoryObject>(this.resource);
    const ownerKey = (o: JobObject) => {
      const l = o.metadata.labels ?? {};
      if (l[LABELS.ownerKind] !== this.kind || l[LABELS.operation] !== 'verify') return [];
      return [l[LABELS.ownerNamespace] ? `${l[LABELS.ownerNamespace]}/${l[LABELS.ownerName]}` : l[LABELS.ownerName]];
    };
    this.moverJobs = new MoverJobs(
      this.ctx.client,
      this.watchRelated<JobObject>(Jobs, ownerKey, { labelSelector: MOVER_SELECTOR }),
      this.watchRelated<JobObject>(Pods, ownerKey, { labelSelector: MOVER_SELECTOR }),
    );
    this.namespaces = this.watchRelated<KubeObject>(Namespaces, (ns) => this.keysForNamespace(ns));
    // A changed or new Secret re-verifies every repository that references it.
    const secretMetadata = this.watchRelated<KubeObject>(
      Secrets,
      (s) =>
        this.repositories
          .list()
          .filter((r) =>
            secretKeyUses(r.spec).some(
              (u) => u.secret.name === s.metadata.name && (u.secret.namespace ?? r.metadata.namespace) === s.metadata.namespace,
            ),
          )
          .map((r) => (r.metadata.namespace ? `${r.metadata.namespace}/${r.metadata.name}` : r.metadata.name!)),
      { metadataOnly: true },
    );
    this.secrets = new SecretKeys(this.ctx.client, secretMetadata);
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const cached = this.repositories.get(key);
    if (!cached || cached.metadata.deletionTimestamp) return;
    const repo = this.written.latest(cached);
    const now = this.ctx.now();
    const generation = repo.metadata.generation ?? 1;
    const outcome = await this.verify(repo, structuredClone(repo.status ?? {}), generation, now);
    const status = this.decorateStatus(repo, outcome.status);
    await this.announce(repo, repo.status, status, outcome);
    const written = await writeStatus(this.ctx.client, this.resource, repo, status, this.written);
    if (written === 'conflict') return { requeueAfterMs: 200 };
    // Only now, with the result stored, may the Job go; a failed delete is retried with backoff.
    if (outcome.remove && written !== 'gone') await this.moverJobs.remove(outcome.remove);
    return outcome.requeueAfterMs !== undefined ? { requeueAfterMs: outcome.requeueAfterMs } : undefined;
  }

  private async verify(repo: RepositoryObject, status: RepositoryStatus, generation: number, now: Date): Promise<VerifyOutcome> {
    const problems = this.validator.validate({ ...repo, status: undefined });
    if (problems.length > 0) {
      return { status: statusBlocked(status, Reason.InvalidSpec, problems.map(formatProblem).join('; '), generation, now) };
    }
    const permission = moverPermission(
      privilegedSettings({ filesystem: repo.spec.backend.filesystem, mover: repo.spec.mover }),
      repo.metadata.namespace
        ? {
            clusterScoped: false,
            namespace: repo.metadata.namespace,
            namespaceAnnotations: this.namespaces.get(repo.metadata.namespace)?.metadata.annotations ?? {},
          }
        : { clusterScoped: true },
    );
    if (!permission.allowed)
      return { status: statusBlocked(status, Reason.PrivilegedMoverNotAllowed, permission.message, generation, now) };
    const uses = secretKeyUses(repo.spec);
    const namespaceOf = (u: SecretKeyUse) => u.secret.namespace ?? repo.metadata.namespace!;
    const missing = await this.missingSecret(uses, namespaceOf);
    if (missing) return { status: statusBlocked(status, Reason.SecretNotFound, missing, generation, now) };
    const secretsHash = shortHash(
      uses
        .map((u) => `${namespaceOf(u)}/${u.secret.name}@${this.secrets.get(namespaceOf(u), u.secret.name)?.metadata.resourceVersion}`)
        .sort()
        .join(','),
      16,
    );

    const owner = controllerReference(repo);
    const reinitialize = pendingReinitialize(repo.metadata.annotations, status);
    const jobNamespace = this.jobNamespace(repo);
    const jobName = boundedName('kopia-verify', repo.metadata.name!);
    const jobUses = await this.prepareSecrets(repo, uses, owner);
    const desired = buildMoverJob({
      name: jobName,
      namespace: jobNamespace,
      owner,
      ownerLabels: { kind: this.kind, name: repo.metadata.name!, namespace: repo.metadata.namespace },
      image: this.ctx.moverImage,
      request: this.verifyRequest(repo, reinitialize ? undefined : status.uniqueID),
      secrets: jobUses,
      filesystem: repo.spec.backend.filesystem,
      mover: repo.spec.mover,
      activeDeadlineSeconds: VERIFY_DEADLINE_SECONDS,
    });
    desired.metadata.annotations = {
      ...desired.metadata.annotations,
      [GENERATION_ANNOTATION]: String(generation),
      [SECRETS_HASH_ANNOTATION]: secretsHash,
      ...(reinitialize ? { [REINITIALIZE_ANNOTATION]: reinitialize } : {}),
    };

    const job = this.moverJobs.get(jobNamespace, jobName);
    const observed = job ? observeJob(job, status.collectedJobUID) : undefined;
    const intervalMs = parseDuration(repo.spec.verifyInterval ?? '10m');
    const plan = planVerification({
      status,
      generation,
      secretsHash,
      desiredSpecHash: desired.metadata.annotations[SPEC_HASH_ANNOTATION],
      job: observed,
      now,
      intervalMs,
      reinitializePending: !!reinitialize,
    });
    switch (plan.action) {
      case 'idle':
        return { status, requeueAfterMs: plan.requeueAfterMs };
      case 'wait':
        return { status: statusVerifying(status, generation, now) };
      case 'replace':
        await this.moverJobs.remove(job!);
        return { status, requeueAfterMs: 500 };
      case 'start':
        await this.moverJobs.start(desired);
        return { status: statusVerifying(status, generation, now) };
      case 'remove':
        return { status, remove: job, requeueAfterMs: intervalMs };
      case 'collect': {
        const result = this.moverJobs.result(job!, now);
        if (!result) return { status: statusVerifying(status, generation, now), requeueAfterMs: RESULT_PENDING_REQUEUE_MS };
        // The request this Job ran for, read from the Job itself (the annotation may have moved on since).
        const ranFor = job!.metadata.annotations?.[REINITIALIZE_ANNOTATION];
        const next = statusFromResult(status, result, observed!, now, ranFor);
        const reinitialized =
          ranFor && next.reinitializeHandled === ranFor ? { request: ranFor, from: status.uniqueID, to: next.uniqueID! } : undefined;
        return { status: next, remove: job, requeueAfterMs: intervalMs, created: result.ok && result.created, reinitialized };
      }
    }
  }

  private verifyRequest(repo: RepositoryObject, expectedUniqueID: string | undefined): VerifyRequest {
    return {
      operation: 'verify',
      repository: { backend: repo.spec.backend, create: repo.spec.create, cache: repo.spec.cache, expectedUniqueID },
      identity: { username: 'kopia-operator', hostname: repo.metadata.namespace ? `verify.${repo.metadata.namespace}` : 'verify.cluster' },
    };
  }

  /** The first missing Secret or key, described without any value. */
  private async missingSecret(uses: SecretKeyUse[], namespaceOf: (u: SecretKeyUse) => string): Promise<string | undefined> {
    for (const u of uses) {
      const hasKey = await this.secrets.hasKey(namespaceOf(u), u.secret.name, u.key);
      if (hasKey === undefined) return `Secret ${namespaceOf(u)}/${u.secret.name} not found`;
      if (!u.optional && !hasKey) return `Secret ${namespaceOf(u)}/${u.secret.name} has no key ${u.key}`;
    }
    return undefined;
  }

  private async announce(
    repo: RepositoryObject,
    before: RepositoryStatus | undefined,
    after: RepositoryStatus,
    outcome: VerifyOutcome,
  ): Promise<void> {
    if (outcome.created)
      await this.ctx.events.record(
        repo,
        'Normal',
        Reason.RepositoryCreated,
        'kopia reported the repository not initialized and create.enabled is set: created it',
      );
    if (outcome.reinitialized) {
      const { request, from, to } = outcome.reinitialized;
      await this.ctx.events.record(
        repo,
        'Normal',
        Reason.RepositoryReinitialized,
        `${REINITIALIZE_ANNOTATION}=${request}: ${outcome.created ? 'created a new repository' : 'accepted the repository found'}, unique ID ${from ?? '(none)'} → ${to}`,
      );
    }
    const was = findCondition(before?.conditions, ConditionType.Ready);
    const now = findCondition(after.conditions, ConditionType.Ready);
    if (!now || (was?.status === now.status && was.reason === now.reason && was.message === now.message)) return;
    await this.ctx.events.record(repo, now.status === 'False' ? 'Warning' : 'Normal', now.reason, now.message);
  }
}

function observeJob(job: JobObject, collectedJobUID: string | undefined): ObservedJob {
  const a = job.metadata.annotations ?? {};
  return {
    uid: job.metadata.uid!,
    finished: isJobFinished(job),
    collected: job.metadata.uid === collectedJobUID,
    generation: Number(a[GENERATION_ANNOTATION] ?? 0),
    secretsHash: a[SECRETS_HASH_ANNOTATION] ?? '',
    specHash: a[SPEC_HASH_ANNOTATION] ?? '',
  };
}
