// The last check before an operator builds a mover Job in a tenant's namespace, made from
// the caches as they are at that moment, not from a decision an earlier pass (or another
// kind's operator, like a BackupConfig's Ready) took: the namespace may have lost its
// privileged-movers opt-in, or left a ClusterRepository's allowedNamespaces, since. Pure.
import type { ClusterRepositorySpec } from '../../generated/types.js';
import type { KubeObject } from '../kube/kube-client.js';
import { Reason } from '../reasons.js';
import { isNamespaceAllowed } from '../repository/tenancy.js';
import { moverPermission, privilegedSettings, type MoverSettings } from './mover-privileges.js';

export interface JobGateInput {
  /** The mover settings that come from objects in the namespace. */
  settings: MoverSettings;
  namespace: string;
  /** The Namespace object as the cache holds it now (labels for selector tenancy, annotations for the opt-in). */
  namespaceObject: KubeObject | undefined;
  /** The repository the Job reads. */
  repository: { kind: 'Repository' | 'ClusterRepository'; name: string; spec: object };
}

export function moverJobRefusal(input: JobGateInput): { reason: string; message: string } | undefined {
  const { namespace, repository } = input;
  const labels = input.namespaceObject?.metadata.labels ?? {};
  if (repository.kind === 'ClusterRepository') {
    const allowed = (repository.spec as Partial<ClusterRepositorySpec>).allowedNamespaces;
    if (!allowed || !isNamespaceAllowed(allowed, namespace, labels))
      return {
        reason: Reason.RepositoryNotAllowed,
        message: `ClusterRepository ${repository.name} does not allow namespace ${namespace} (spec.allowedNamespaces)`,
      };
  }
  const permission = moverPermission(privilegedSettings(input.settings), {
    clusterScoped: false,
    namespace,
    namespaceAnnotations: input.namespaceObject?.metadata.annotations ?? {},
  });
  return permission.allowed ? undefined : { reason: Reason.PrivilegedMoverNotAllowed, message: permission.message };
}
