// Whose a Kopia identity is on a shared repository (issue 14, rules 1 and 2). Pure.
//
// On a ClusterRepository an identity (username@hostname:path) belongs to exactly one
// namespace: the one its hostname names, unless spec.identityHostnames gives that hostname
// to a namespace explicitly. A namespace files backups (and with them retention and kopia
// policy) only under its own identities, restores only from them, and deletes or pins only
// snapshots of them — and only while the ClusterRepository allows it.
//
// A namespaced Repository is its namespace's own: the tenant holds its password and
// credentials, so every identity in it is the namespace's (kopia itself would let them do
// anything there). When such a Repository reaches the same kopia repository as a
// ClusterRepository (the same status.uniqueID), the tenant already holds that repository's
// keys; no rule of the operator can take those back.
import type { ClusterRepositorySpec, Identity, RepositorySpec } from '../../generated/types.js';
import { Reason } from '../reasons.js';
import { isNamespaceAllowed } from './tenancy.js';

/** The repository object as these rules read it. */
export interface TenancyRepository {
  kind: 'Repository' | 'ClusterRepository';
  name: string;
  spec: RepositorySpec | ClusterRepositorySpec;
}

type TenancySpec = Partial<Pick<ClusterRepositorySpec, 'allowedNamespaces' | 'identityHostnames'>>;

export type IdentityVerdict = { ok: true } | { ok: false; reason: string; message: string };

const OK: IdentityVerdict = { ok: true };

/** The namespace whose identities carry this hostname on a ClusterRepository. */
export function hostnameOwner(spec: TenancySpec, hostname: string): string {
  return spec.identityHostnames?.find((h) => h.hostname === hostname)?.namespace ?? hostname;
}

/** The hostnames a namespace may use on a ClusterRepository: its own name (unless given away) and those given to it. */
export function hostnamesOf(spec: TenancySpec, namespace: string): string[] {
  const given = (spec.identityHostnames ?? []).filter((h) => h.namespace === namespace).map((h) => h.hostname);
  return hostnameOwner(spec, namespace) === namespace ? [namespace, ...given] : given;
}

/** Rule 1: may `namespace` back up to, restore from, or act on snapshots of `identity` in this repository? */
export function identityVerdict(
  repo: TenancyRepository,
  namespace: string,
  identity: Pick<Identity, 'hostname'> | undefined,
): IdentityVerdict {
  if (repo.kind !== 'ClusterRepository') return OK;
  const hostname = identity?.hostname;
  const spec = repo.spec as TenancySpec;
  if (hostname !== undefined && hostnameOwner(spec, hostname) === namespace) return OK;
  const mine = hostnamesOf(spec, namespace);
  const allowed = mine.length ? `hostname ${mine.join(' or ')}` : 'no hostname (its own name is given to another namespace)';
  return {
    ok: false,
    reason: Reason.IdentityNotAllowed,
    message:
      `${hostname === undefined ? 'an unknown identity' : `the identity's hostname ${hostname}`} does not belong to namespace ${namespace}: ` +
      `on ClusterRepository ${repo.name} it may use ${allowed} (spec.identityHostnames gives hostnames to namespaces)`,
  };
}

/**
 * Rule 2: may a Backup or Restore of `namespace` act on (delete, pin, adopt, restore) a
 * snapshot of `identity` — the namespace allowed on the repository now, and the identity its own?
 */
export function snapshotVerdict(
  repo: TenancyRepository,
  namespace: string,
  namespaceLabels: Record<string, string>,
  identity: Pick<Identity, 'hostname'> | undefined,
): IdentityVerdict {
  if (
    repo.kind === 'ClusterRepository' &&
    !isNamespaceAllowed((repo.spec as TenancySpec).allowedNamespaces ?? {}, namespace, namespaceLabels)
  )
    return {
      ok: false,
      reason: Reason.RepositoryNotAllowed,
      message: `ClusterRepository ${repo.name} does not allow namespace ${namespace} (spec.allowedNamespaces)`,
    };
  return identityVerdict(repo, namespace, identity);
}
