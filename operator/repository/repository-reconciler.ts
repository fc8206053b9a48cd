// Verification of Repository and ClusterRepository, shared by both kinds' operators:
// observe (object, Secrets, the verify Job and its Pod) → decide (pure plan) → act (create,
// replace, collect and delete the Job) → write status once, with an Event on every change.
// Deleting a repository object never touches the data in it: there is no finalizer, and
// the Jobs and Secret copies it owns are garbage-collected.
import type { RepositorySpec, RepositoryStatus } from '../../generated/types.js';
import { isAlreadyExists, type KubeObject, type OwnerReference, type ResourceType } from '../kube/kube-client.js';
import { Jobs, Pods, Secrets } from '../kube/resources.js';
import { parseMoverResult, type MoverResult, type VerifyRequest } from '../mover/mover-contract.js';
import { ConditionType, Reason } from '../reasons.js';
import { findCondition } from '../runtime/conditions.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import { formatProblem, type KopiaValidator } from '../validation/validator.js';
import { boundedName, buildMoverJob, LABELS, MOVER_SELECTOR, shortHash, SPEC_HASH_ANNOTATION } from '../jobs/job-builder.js';
import { secretKeyUses, type SecretKeyUse } from '../jobs/repository-access.js';
import {
  GENERATION_ANNOTATION,
  parseDuration,
  planVerification,
  SECRETS_HASH_ANNOTATION,
  statusBlocked,
  statusFromResult,
  statusVerifying,
  type ObservedJob,
} from './repository-verification.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- Job and Pod bodies are read structurally */
export type RepositoryObject = KubeObject & { spec: RepositorySpec; status?: RepositoryStatus };
type Obj = KubeObject & { spec?: any; status?: any; data?: Record<string, string> };

const VERIFY_DEADLINE_SECONDS = 600;

export abstract class RepositoryReconciler extends KindOperator {
  protected repositories!: Informer<RepositoryObject>;
  protected jobs!: Informer<Obj>;
  protected pods!: Informer<Obj>;
  protected secrets!: Informer<Obj>;
  /** UIDs of verify Jobs whose result is already in status. */
  private readonly collected = new Set<string>();

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

  protected override async init(): Promise<void> {
    await this.watchResource('kopia.io', 'v1alpha1', this.resource.plural, async (e) => this.enqueue(e.object as unknown as KubeObject));
    this.repositories = this.ctx.informers.get<RepositoryObject>(this.resource);
    const ownerKey = (o: Obj) => {
      const l = o.metadata.labels ?? {};
      if (l[LABELS.ownerKind] !== this.kind || l[LABELS.operation] !== 'verify') return [];
      return [l[LABELS.ownerNamespace] ? `${l[LABELS.ownerNamespace]}/${l[LABELS.ownerName]}` : l[LABELS.ownerName]];
    };
    this.jobs = this.watchRelated<Obj>(Jobs, ownerKey, MOVER_SELECTOR);
    this.pods = this.watchRelated<Obj>(Pods, ownerKey, MOVER_SELECTOR);
    // A changed or new Secret re-verifies every repository that references it.
    this.secrets = this.watchRelated<Obj>(Secrets, (s) =>
      this.repositories
        .list()
        .filter((r) =>
          secretKeyUses(r.spec).some(
            (u) => u.secret.name === s.metadata.name && (u.secret.namespace ?? r.metadata.namespace) === s.metadata.namespace,
          ),
        )
        .map((r) => (r.metadata.namespace ? `${r.metadata.namespace}/${r.metadata.name}` : r.metadata.name!)),
    );
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const cached = this.repositories.get(key);
    if (!cached || cached.metadata.deletionTimestamp) return;
    const repo = this.written.latest(cached);
    const now = this.ctx.now();
    const generation = repo.metadata.generation ?? 1;
    let status: RepositoryStatus = structuredClone(repo.status ?? {});
    const result = await this.verify(repo, status, generation, now);
    status = this.decorateStatus(repo, result.status);
    await this.announce(repo, repo.status, status, result.created);
    const written = await writeStatus(this.ctx.client, this.resource, repo, status, this.written);
    if (written === 'conflict') return { requeueAfterMs: 200 };
    return result.requeueAfterMs !== undefined ? { requeueAfterMs: result.requeueAfterMs } : undefined;
  }

  private async verify(
    repo: RepositoryObject,
    status: RepositoryStatus,
    generation: number,
    now: Date,
  ): Promise<{ status: RepositoryStatus; requeueAfterMs?: number; created?: boolean }> {
    const problems = this.validator.validate({ ...repo, status: undefined });
    if (problems.length > 0) {
      return { status: statusBlocked(status, Reason.InvalidSpec, problems.map(formatProblem).join('; '), generation, now) };
    }
    const uses = secretKeyUses(repo.spec);
    const namespaceOf = (u: SecretKeyUse) => u.secret.namespace ?? repo.metadata.namespace!;
    const missing = this.missingSecret(uses, namespaceOf);
    if (missing) return { status: statusBlocked(status, Reason.SecretNotFound, missing, generation, now) };
    const secretsHash = shortHash(
      uses
        .map(
          (u) => `${namespaceOf(u)}/${u.secret.name}@${this.secrets.get(`${namespaceOf(u)}/${u.secret.name}`)?.metadata.resourceVersion}`,
        )
        .sort()
        .join(','),
      16,
    );

    const owner: OwnerReference = {
      apiVersion: repo.apiVersion!,
      kind: repo.kind!,
      name: repo.metadata.name!,
      uid: repo.metadata.uid!,
      controller: true,
      blockOwnerDeletion: true,
    };
    const jobNamespace = this.jobNamespace(repo);
    const jobName = boundedName('kopia-verify', repo.metadata.name!);
    const jobUses = await this.prepareSecrets(repo, uses, owner);
    const desired = buildMoverJob({
      name: jobName,
      namespace: jobNamespace,
      owner,
      ownerLabels: { kind: this.kind, name: repo.metadata.name!, namespace: repo.metadata.namespace },
      image: this.ctx.moverImage,
      request: this.verifyRequest(repo),
      secrets: jobUses,
      filesystem: repo.spec.backend.filesystem,
      mover: repo.spec.mover,
      activeDeadlineSeconds: VERIFY_DEADLINE_SECONDS,
    });
    desired.metadata.annotations = {
      ...desired.metadata.annotations,
      [GENERATION_ANNOTATION]: String(generation),
      [SECRETS_HASH_ANNOTATION]: secretsHash,
    };

    const cached = this.jobs.get(`${jobNamespace}/${jobName}`);
    // A Job already collected (its deletion not yet seen by the cache) is gone for our purposes.
    const job = cached && !this.collected.has(cached.metadata.uid!) ? cached : undefined;
    const observed = job ? observeJob(job) : undefined;
    const intervalMs = parseDuration(repo.spec.verifyInterval ?? '10m');
    const plan = planVerification({
      status,
      generation,
      secretsHash,
      desiredSpecHash: desired.metadata.annotations[SPEC_HASH_ANNOTATION],
      job: observed,
      now,
      intervalMs,
    });
    switch (plan.action) {
      case 'idle':
        return { status, requeueAfterMs: plan.requeueAfterMs };
      case 'wait':
        return { status: statusVerifying(status, generation, now) };
      case 'replace':
        await this.ctx.client.delete(Jobs, jobNamespace, jobName, { propagationPolicy: 'Background' });
        return { status, requeueAfterMs: 500 };
      case 'start':
        try {
          await this.ctx.client.create(Jobs, desired);
        } catch (e) {
          if (!isAlreadyExists(e)) throw e; // AlreadyExists: the informer has not seen it yet; the watch wakes us
        }
        return { status: statusVerifying(status, generation, now) };
      case 'collect': {
        const result = this.jobResult(job!);
        this.collected.add(job!.metadata.uid!);
        if (this.collected.size > 10000) this.collected.clear();
        await this.ctx.client.delete(Jobs, jobNamespace, jobName, { propagationPolicy: 'Background' });
        return {
          status: statusFromResult(status, result, observed!, now),
          requeueAfterMs: intervalMs,
          created: result.ok && result.created,
        };
      }
    }
  }

  private verifyRequest(repo: RepositoryObject): VerifyRequest {
    return {
      operation: 'verify',
      repository: { backend: repo.spec.backend, create: repo.spec.create, cache: repo.spec.cache },
      identity: { username: 'kopia-operator', hostname: repo.metadata.namespace ? `verify.${repo.metadata.namespace}` : 'verify.cluster' },
    };
  }

  /** The first missing Secret or key, described without any value. */
  private missingSecret(uses: SecretKeyUse[], namespaceOf: (u: SecretKeyUse) => string): string | undefined {
    for (const u of uses) {
      const secret = this.secrets.get(`${namespaceOf(u)}/${u.secret.name}`);
      if (!secret) return `Secret ${namespaceOf(u)}/${u.secret.name} not found`;
      if (!u.optional && !(secret.data && u.key in secret.data)) return `Secret ${namespaceOf(u)}/${u.secret.name} has no key ${u.key}`;
    }
    return undefined;
  }

  private jobResult(job: Obj): MoverResult {
    const pods = this.pods
      .list()
      .filter((p) => p.metadata.namespace === job.metadata.namespace && p.metadata.labels?.['job-name'] === job.metadata.name)
      .sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''));
    const terminated = pods[0]?.status?.containerStatuses?.[0]?.state?.terminated;
    if (terminated?.message) return parseMoverResult(terminated.message);
    const failed = (job.status?.conditions ?? []).find((c: any) => c.type === 'Failed' && c.status === 'True');
    const podFailure = pods[0]?.status?.message;
    return parseMoverResult(podFailure ?? (failed ? `${failed.reason}: ${failed.message}` : undefined));
  }

  private async announce(
    repo: RepositoryObject,
    before: RepositoryStatus | undefined,
    after: RepositoryStatus,
    created?: boolean,
  ): Promise<void> {
    if (created)
      await this.ctx.events.record(
        repo,
        'Normal',
        Reason.RepositoryCreated,
        'kopia reported the repository not initialized and create.enabled is set: created it',
      );
    const was = findCondition(before?.conditions, ConditionType.Ready);
    const now = findCondition(after.conditions, ConditionType.Ready);
    if (!now || (was?.status === now.status && was.reason === now.reason && was.message === now.message)) return;
    await this.ctx.events.record(repo, now.status === 'False' ? 'Warning' : 'Normal', now.reason, now.message);
  }

  /** Secret data keys copied for a ClusterRepository; values read here, never logged. */
  protected async readSecretKey(namespace: string, name: string, key: string): Promise<string | undefined> {
    return this.secrets.get(`${namespace}/${name}`)?.data?.[key];
  }
}

function observeJob(job: Obj): ObservedJob {
  const done = (job.status?.conditions ?? []).some((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  const a = job.metadata.annotations ?? {};
  return {
    finished: done,
    generation: Number(a[GENERATION_ANNOTATION] ?? 0),
    secretsHash: a[SECRETS_HASH_ANNOTATION] ?? '',
    specHash: a[SPEC_HASH_ANNOTATION] ?? '',
  };
}
