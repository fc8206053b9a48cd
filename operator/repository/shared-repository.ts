// Several Repository and ClusterRepository objects can reach one kopia repository (the same
// status.uniqueID): a tenant's Repository beside the admin's ClusterRepository, or two
// objects from two GitOps apps. What must be single per kopia repository — the
// mass-deletion budget, the acting Maintenance — is decided per uniqueID. Pure.
import type { RepositoryStatus } from '../../generated/types.js';
import type { KubeObject } from '../kube/kube-client.js';
import { repositoryKey } from './repository-jobs.js';

type RepositoryLike = KubeObject & { status?: RepositoryStatus };

/** Objects not verified yet (no uniqueID) stand alone, under their own key. */
export function kopiaRepositoryOf(repo: RepositoryLike): string {
  const id = repo.status?.uniqueID;
  return id ? `uniqueID/${id}` : repositoryKey({ kind: repo.kind, name: repo.metadata.name!, namespace: repo.metadata.namespace });
}

/** Oldest first, then ClusterRepository before Repository, then namespace/name: the same answer in every pass and replica. */
export function byAgeThenName(a: RepositoryLike, b: RepositoryLike): number {
  const kind = (r: RepositoryLike) => (r.kind === 'ClusterRepository' ? 0 : 1);
  return (
    (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
    kind(a) - kind(b) ||
    `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace ?? ''}/${b.metadata.name}`)
  );
}

/**
 * The object whose status.deletions holds the mass-deletion ledger of repo's kopia
 * repository: the oldest object with its uniqueID. Oldest, because that does not move when
 * objects are added (a new Repository naming the same repository, a tenant's included,
 * cannot start a fresh ledger with a fresh budget); it moves only when that object is
 * deleted. Its deletionBreaker settings and its release annotation apply to all.
 */
export function ledgerHolder<T extends RepositoryLike>(repo: T, all: Iterable<T>): T {
  const group = kopiaRepositoryOf(repo);
  if (!repo.status?.uniqueID) return repo;
  let holder = repo;
  for (const r of all) if (!r.metadata.deletionTimestamp && kopiaRepositoryOf(r) === group && byAgeThenName(r, holder) < 0) holder = r;
  return holder;
}
