// ClusterRepository: a repository shared by the namespaces it allows. Its Secrets live in
// namespaces of their own; a Job can only read Secrets of its namespace, so the operator
// keeps one copy Secret (just the keys the mover needs, owned by the ClusterRepository)
// in each namespace where it runs a mover — for verification, its own namespace.
import type { ClusterRepositorySpec, RepositoryStatus } from '../../generated/types.js';
import { isAlreadyExists, type KubeObject, type OwnerReference } from '../kube/kube-client.js';
import { KopiaClusterRepositories, Secrets } from '../kube/resources.js';
import { boundedName, LABELS, MANAGED_BY } from '../jobs/job-builder.js';
import { copyKey, usesFromCopy, type SecretKeyUse } from '../jobs/repository-access.js';
import { ConditionType, Reason } from '../reasons.js';
import { setCondition } from '../runtime/conditions.js';
import { deepEqual } from '../runtime/deep-equal.js';
import { RepositoryReconciler, type RepositoryObject } from './repository-reconciler.js';
import { allowedAmong } from './tenancy.js';

export function clusterSecretCopyName(repositoryName: string): string {
  return boundedName('kopia-clusterrepo', repositoryName);
}

export class ClusterRepositoryOperator extends RepositoryReconciler {
  readonly kind = 'ClusterRepository';
  protected readonly resource = KopiaClusterRepositories;
  /** Namespace labels decide selector tenancy: a relabelled namespace re-evaluates all. */
  protected override keysForNamespace(): string[] {
    return this.repositories.list().map((r) => r.metadata.name!);
  }

  protected jobNamespace(): string {
    return this.ctx.namespace;
  }

  protected async prepareSecrets(repo: RepositoryObject, uses: SecretKeyUse[], owner: OwnerReference): Promise<SecretKeyUse[]> {
    const name = clusterSecretCopyName(repo.metadata.name!);
    await this.ensureSecretCopy(this.ctx.namespace, name, uses, owner, repo.metadata.name!);
    return usesFromCopy(uses, name);
  }

  /** Writes the copy only when its content differs, so a quiet cluster sees no writes. */
  async ensureSecretCopy(
    namespace: string,
    name: string,
    uses: SecretKeyUse[],
    owner: OwnerReference,
    repositoryName: string,
  ): Promise<void> {
    const data: Record<string, string> = {};
    for (const u of uses) {
      const value = await this.readSecretKey(u.secret.namespace!, u.secret.name, u.key);
      if (value !== undefined) data[copyKey(u)] = value;
    }
    const labels = { [LABELS.managedBy]: MANAGED_BY, [LABELS.ownerKind]: this.kind, [LABELS.ownerName]: repositoryName };
    const existing = this.secrets.get(`${namespace}/${name}`) as (KubeObject & { data?: Record<string, string> }) | undefined;
    const body = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: { name, namespace, labels, ownerReferences: [owner] },
      data,
    } as KubeObject;
    if (!existing) {
      try {
        await this.ctx.client.create(Secrets, body);
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        await this.ctx.client.patch(Secrets, namespace, name, { data, metadata: { labels, ownerReferences: [owner] } });
      }
    } else if (!deepEqual(existing.data ?? {}, data)) {
      await this.ctx.client.replace(Secrets, { ...existing, data });
    }
  }

  protected override decorateStatus(repo: RepositoryObject, status: RepositoryStatus): RepositoryStatus {
    const spec = repo.spec as unknown as ClusterRepositorySpec;
    const all = this.namespaces.list().map((n) => ({ name: n.metadata.name!, labels: n.metadata.labels ?? {} }));
    const allowed = allowedAmong(spec.allowedNamespaces, all);
    const [reason, message] = spec.allowedNamespaces.all
      ? [Reason.AllNamespaces, 'every namespace may use this repository']
      : spec.allowedNamespaces.names
        ? [Reason.NamespacesListed, `allowed namespaces: ${spec.allowedNamespaces.names.join(', ')}`]
        : [Reason.NamespaceSelector, `namespaces matching the selector: ${allowed?.length ? allowed.join(', ') : 'none yet'}`];
    const conditions = setCondition(
      status.conditions,
      { type: ConditionType.Tenancy, status: 'True', reason, message },
      repo.metadata.generation,
      this.ctx.now(),
    );
    return { ...status, conditions, allowedNamespaces: allowed };
  }
}
