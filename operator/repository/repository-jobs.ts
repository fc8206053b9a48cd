// What every repository-wide mover Job (catalog listing, snapshot edits) shares: where it
// runs (the repository's namespace; the operator's for a ClusterRepository), who owns it,
// the Secret keys it reads (a ClusterRepository's through a copy), and how the mover finds
// the repository — with the verified unique ID, so it never acts on another one.
import type { RepositorySpec, RepositoryStatus } from '../../generated/types.js';
import { controllerReference, type KubeClient, type KubeObject } from '../kube/kube-client.js';
import type { MoverJobInput } from '../jobs/job-builder.js';
import { secretKeyUses } from '../jobs/repository-access.js';
import type { MoverRepository } from '../mover/mover-contract.js';
import type { Informer } from '../runtime/informer.js';
import type { SecretKeys } from '../runtime/secret-keys.js';
import { ensureSecretCopy } from './secret-copy.js';

export type AnyRepository = KubeObject & { spec: RepositorySpec; status?: RepositoryStatus };

/** "Repository/<namespace>/<name>" or "ClusterRepository/<name>": the work-queue key of repository-wide work. */
export function repositoryKey(repo: { kind?: string; name: string; namespace?: string }): string {
  return repo.kind === 'ClusterRepository' ? `ClusterRepository/${repo.name}` : `Repository/${repo.namespace}/${repo.name}`;
}

export function repositoryOfKey(
  key: string,
  repositories: Informer<AnyRepository>,
  clusterRepositories: Informer<AnyRepository>,
): AnyRepository | undefined {
  const [kind, ...rest] = key.split('/');
  return (kind === 'ClusterRepository' ? clusterRepositories : repositories).get(rest.join('/'));
}

export function moverRepository(repo: AnyRepository): MoverRepository {
  return { backend: repo.spec.backend, cache: repo.spec.cache, expectedUniqueID: repo.status?.uniqueID };
}

/** The parts of a repository-wide mover Job that do not depend on the operation. */
export async function repositoryJobBase(
  repo: AnyRepository,
  ctx: { client: KubeClient; namespace: string; moverImage: string },
  secrets: SecretKeys,
): Promise<Omit<MoverJobInput, 'name' | 'request' | 'activeDeadlineSeconds'>> {
  const namespace = repo.metadata.namespace ?? ctx.namespace;
  const owner = controllerReference(repo);
  const uses = secretKeyUses(repo.spec);
  return {
    namespace,
    owner,
    ownerLabels: { kind: repo.kind!, name: repo.metadata.name!, namespace: repo.metadata.namespace },
    image: ctx.moverImage,
    secrets: repo.metadata.namespace
      ? uses
      : await ensureSecretCopy(ctx.client, secrets, namespace, { name: repo.metadata.name!, owner }, uses),
    filesystem: repo.spec.backend.filesystem,
    mover: repo.spec.mover,
  };
}

/** The connection identity of repository-wide work (not a snapshot source). */
export function operatorIdentity(operation: string, repo: AnyRepository): { username: string; hostname: string } {
  return {
    username: 'kopia-operator',
    hostname: repo.metadata.namespace ? `${operation}.${repo.metadata.namespace}` : `${operation}.cluster`,
  };
}
