// ClusterRepository: a repository shared by the namespaces it allows, verified in the
// operator's namespace with a copy of its Secrets there (secret-copy.ts).
import type { ClusterRepositorySpec, RepositoryStatus } from '../../generated/types.js';
import type { OwnerReference } from '../kube/kube-client.js';
import { KopiaClusterRepositories } from '../kube/resources.js';
import type { SecretKeyUse } from '../jobs/repository-access.js';
import { ConditionType, Reason } from '../reasons.js';
import { setCondition } from '../runtime/conditions.js';
import { RepositoryReconciler, type RepositoryObject } from './repository-reconciler.js';
import { ensureSecretCopy } from './secret-copy.js';
import { allowedAmong } from './tenancy.js';

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

  protected prepareSecrets(repo: RepositoryObject, uses: SecretKeyUse[], owner: OwnerReference): Promise<SecretKeyUse[]> {
    return ensureSecretCopy(this.ctx.client, this.secrets, this.ctx.namespace, { name: repo.metadata.name!, owner }, uses);
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
