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
import type { ClusterRepositorySpec, Identity, RepositorySpec, RepositoryStatus } from '../../generated/types.js';
import { Reason } from '../reasons.js';
import { isNamespaceAllowed } from './tenancy.js';

/** The repository object as these rules read it (status: what the operator found contested). */
export interface TenancyRepository {
  kind: 'Repository' | 'ClusterRepository';
  name: string;
  spec: RepositorySpec | ClusterRepositorySpec;
  status?: Pick<RepositoryStatus, 'contestedHostnames'>;
}

type TenancySpec = Partial<Pick<ClusterRepositorySpec, 'allowedNamespaces' | 'identityHostnames'>>;
type Contested = RepositoryStatus['contestedHostnames'];

export type IdentityVerdict = { ok: true } | { ok: false; reason: string; message: string };

const OK: IdentityVerdict = { ok: true };

/**
 * The namespace whose identities carry this hostname on a ClusterRepository: the one
 * spec.identityHostnames gives it to, else its namesake — unless it is contested (Backups of
 * another namespace recorded snapshots under it), when it is no one's until an entry decides.
 */
export function hostnameOwner(spec: TenancySpec, hostname: string, contested?: Contested): string | undefined {
  const given = spec.identityHostnames?.find((h) => h.hostname === hostname)?.namespace;
  if (given) return given;
  return contested?.some((c) => c.hostname === hostname) ? undefined : hostname;
}

/** The hostnames a namespace may use on a ClusterRepository: its own name (unless given away or contested) and those given to it. */
export function hostnamesOf(spec: TenancySpec, namespace: string, contested?: Contested): string[] {
  const given = (spec.identityHostnames ?? []).filter((h) => h.namespace === namespace).map((h) => h.hostname);
  return hostnameOwner(spec, namespace, contested) === namespace ? [namespace, ...given] : given;
}

/**
 * Hostnames no namespace owns until spec.identityHostnames decides: some Backup the operator
 * recorded (its status, which no tenant writes) names a snapshot under the hostname in
 * another namespace than the hostname's namesake. Before identities were tied to namespaces
 * a BackupConfig could use any hostname, and its history was shown in its own namespace;
 * handing that history to the namespace that happens to bear the name would give one tenant
 * another's snapshots. An explicit entry is never contested.
 */
export function contestedHostnames(
  spec: TenancySpec,
  repository: string,
  backups: {
    metadata: { namespace?: string };
    status?: { repository?: { kind?: string; name?: string }; snapshot?: { identity?: Pick<Identity, 'hostname'> } };
  }[],
): NonNullable<Contested> {
  // Every namespace whose Backups recorded each hostname (the namesake too: an entry gives the
  // whole hostname, and with it the namesake's own history, to one namespace).
  const recorded = new Map<string, Set<string>>();
  for (const b of backups) {
    const ref = b.status?.repository;
    const hostname = b.status?.snapshot?.identity?.hostname;
    const ns = b.metadata.namespace;
    if (ref?.kind !== 'ClusterRepository' || ref.name !== repository || !hostname || !ns) continue;
    if (spec.identityHostnames?.some((h) => h.hostname === hostname)) continue;
    if (!recorded.has(hostname)) recorded.set(hostname, new Set());
    recorded.get(hostname)!.add(ns);
  }
  return [...recorded]
    .filter(([hostname, namespaces]) => [...namespaces].some((ns) => ns !== hostname))
    .sort(([a], [b]) => a.localeCompare(b))
    .slice(0, 1000)
    .map(([hostname, namespaces]) => ({ hostname, recordedIn: [...namespaces].sort().slice(0, 100) }));
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
  const contested = repo.status?.contestedHostnames;
  if (hostname !== undefined && hostnameOwner(spec, hostname, contested) === namespace) return OK;
  const dispute = contested?.find((c) => c.hostname === hostname);
  if (dispute)
    return {
      ok: false,
      reason: Reason.IdentityNotAllowed,
      message:
        `the identity's hostname ${hostname} is contested on ClusterRepository ${repo.name}: Backups of namespace ${dispute.recordedIn.join(', ')} ` +
        `recorded snapshots under it, and it is also namespace ${hostname}'s own name; no namespace may use it until spec.identityHostnames gives it ` +
        `to one (with all its history: each of those namespaces' snapshots under it)`,
    };
  const mine = hostnamesOf(spec, namespace, contested);
  const allowed = mine.length ? `hostname ${mine.join(' or ')}` : 'no hostname (its own name is given to another namespace, or contested)';
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
