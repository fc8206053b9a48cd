// How a consumer (BackupConfig, Backup, Restore, Maintenance) finds the repository it
// names and whether it may use it. Pure over cached objects.
import type { ClusterRepositorySpec, RepositoryReference, RepositorySpec, RepositoryStatus } from '../../generated/types.js';
import type { KubeObject } from '../kube/kube-client.js';
import { ConditionType, Reason } from '../reasons.js';
import { findCondition } from '../runtime/conditions.js';
import { isNamespaceAllowed } from './tenancy.js';

export type ResolvedRepository =
  | {
      ok: true;
      kind: 'Repository' | 'ClusterRepository';
      name: string;
      spec: RepositorySpec | ClusterRepositorySpec;
      status?: RepositoryStatus;
    }
  | { ok: false; reason: string; message: string };

type Repo = KubeObject & { spec: RepositorySpec | ClusterRepositorySpec; status?: RepositoryStatus };

export function resolveRepository(
  ref: RepositoryReference,
  namespace: string,
  lookup: {
    repository: (namespace: string, name: string) => Repo | undefined;
    clusterRepository: (name: string) => Repo | undefined;
    namespaceLabels: (name: string) => Record<string, string>;
  },
): ResolvedRepository {
  const kind = ref.kind ?? 'Repository';
  const repo = kind === 'Repository' ? lookup.repository(namespace, ref.name) : lookup.clusterRepository(ref.name);
  const where = kind === 'Repository' ? `Repository ${namespace}/${ref.name}` : `ClusterRepository ${ref.name}`;
  if (!repo) return { ok: false, reason: Reason.RepositoryNotFound, message: `${where} not found` };
  if (kind === 'ClusterRepository') {
    const allowed = (repo.spec as ClusterRepositorySpec).allowedNamespaces;
    if (!isNamespaceAllowed(allowed, namespace, lookup.namespaceLabels(namespace))) {
      return {
        ok: false,
        reason: Reason.RepositoryNotAllowed,
        message: `${where} does not allow namespace ${namespace} (spec.allowedNamespaces)`,
      };
    }
  }
  const ready = findCondition(repo.status?.conditions, ConditionType.Ready);
  if (ready?.status !== 'True') {
    return {
      ok: false,
      reason: Reason.RepositoryNotReady,
      message: `${where} is not Ready${ready ? ` (${ready.reason}: ${ready.message})` : ''}`,
    };
  }
  return { ok: true, kind, name: ref.name, spec: repo.spec, status: repo.status };
}
