// Repository: a namespaced Kopia repository, verified by a Job in its own namespace that
// reads the Secrets it references directly.
import type { OwnerReference } from '../kube/kube-client.js';
import { KopiaRepositories } from '../kube/resources.js';
import type { SecretKeyUse } from '../jobs/repository-access.js';
import { RepositoryReconciler, type RepositoryObject } from './repository-reconciler.js';

export class RepositoryOperator extends RepositoryReconciler {
  readonly kind = 'Repository';
  protected readonly resource = KopiaRepositories;

  protected jobNamespace(repo: RepositoryObject): string {
    return repo.metadata.namespace!;
  }

  protected async prepareSecrets(_repo: RepositoryObject, uses: SecretKeyUse[], _owner: OwnerReference): Promise<SecretKeyUse[]> {
    return uses;
  }
}
