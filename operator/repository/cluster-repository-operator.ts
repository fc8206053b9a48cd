// ClusterRepository: a repository shared by the namespaces it allows. Its Secrets live in
// namespaces of their own; a Job can only read Secrets of its namespace, so the operator
// keeps one copy Secret (just the keys the mover needs, owned by the ClusterRepository)
// in each namespace where it runs a mover — for verification, its own namespace.
import type { ClusterRepositorySpec, RepositoryStatus } from '../../generated/types.js';
import { isAlreadyExists, type KubeObject, type OwnerReference } from '../kube/kube-client.js';
import { KopiaClusterRepositories, Secrets } from '../kube/resources.js';
import { boundedName, LABELS, MANAGED_BY, shortHash } from '../jobs/job-builder.js';
import { copyKey, usesFromCopy, type SecretKeyUse } from '../jobs/repository-access.js';
import { ConditionType, Reason } from '../reasons.js';
import { setCondition } from '../runtime/conditions.js';
import { RepositoryReconciler, type RepositoryObject } from './repository-reconciler.js';
import { allowedAmong } from './tenancy.js';

/** On a copy Secret: a hash of the versions of the Secrets it was copied from. */
const SOURCE_VERSION_ANNOTATION = 'kopia.io/source-version';

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

  /**
   * Writes the copy only when its sources changed (their versions are recorded on it), so
   * a quiet cluster sees no reads of Secret values and no writes.
   */
  async ensureSecretCopy(
    namespace: string,
    name: string,
    uses: SecretKeyUse[],
    owner: OwnerReference,
    repositoryName: string,
  ): Promise<void> {
    const sourceVersion = shortHash(
      uses
        .map(
          (u) =>
            `${copyKey(u)}=${u.secret.namespace}/${u.secret.name}/${u.key}@${this.secrets.get(u.secret.namespace!, u.secret.name)?.metadata.resourceVersion}`,
        )
        .sort()
        .join(','),
      16,
    );
    const existing = this.secrets.get(namespace, name);
    if (existing?.metadata.annotations?.[SOURCE_VERSION_ANNOTATION] === sourceVersion) return;
    const data: Record<string, string> = {};
    for (const u of uses) {
      const value = (await this.secrets.read(u.secret.namespace!, u.secret.name))?.data?.[u.key];
      if (value !== undefined) data[copyKey(u)] = value;
    }
    const metadata = {
      name,
      namespace,
      labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.ownerKind]: this.kind, [LABELS.ownerName]: repositoryName },
      annotations: { [SOURCE_VERSION_ANNOTATION]: sourceVersion },
      ownerReferences: [owner],
    };
    const body = { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata, data } as KubeObject;
    if (!existing) {
      try {
        await this.ctx.client.create(Secrets, body);
        return;
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
    }
    await this.ctx.client.replace(Secrets, body);
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
