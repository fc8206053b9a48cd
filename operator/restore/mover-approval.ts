// Which mover settings a populator restore Job may run with. The populator builds Jobs in
// tenants' namespaces but cannot read Namespaces, so it cannot tell whether a namespace
// opted in to privileged movers (docs/adr/0004-mover-permission-model.md). The operator,
// which can, checks the settings at every pass and records what it allowed in
// status.moverApproval as a hash; a tenant cannot write status. The populator hashes the
// settings it is about to put in the Job and starts it only when both hashes agree, so a
// spec.mover edited after the check (say to runAsUser: 0) waits for the next check instead
// of running as root. Pure.
import type { ClusterRepositorySpec, FilesystemBackend, MoverApproval, MoverOptions, RepositoryReference } from '../../generated/types.js';
import { shortHash } from '../jobs/job-builder.js';
import { moverPermission, privilegedSettings, type MoverSettings } from '../jobs/mover-privileges.js';
import { Reason } from '../reasons.js';
import type { AnyRepository } from '../repository/repository-jobs.js';
import { isNamespaceAllowed } from '../repository/tenancy.js';
import { OWNER_CAPABILITIES, restoresOwners, type RestoreObject } from './restore-job.js';

/** What a populator restore Job takes from objects a tenant may write, and from which repository. */
export interface RestoreMoverInputs {
  mover?: MoverOptions;
  repository: { kind: 'Repository' | 'ClusterRepository'; name: string };
  /** A namespaced Repository's filesystem (hostPath and nfs are privileged); a ClusterRepository's is its administrator's. */
  filesystem?: FilesystemBackend;
}

/** The inputs of a restore Job for this Restore from this repository, as buildRestoreJob uses them. */
export function restoreMoverInputs(
  restore: RestoreObject,
  ref: RepositoryReference,
  repository: AnyRepository | undefined,
): RestoreMoverInputs {
  const kind = ref.kind ?? 'Repository';
  return {
    mover: restore.spec.mover,
    repository: { kind, name: ref.name },
    filesystem: kind === 'Repository' ? repository?.spec.backend.filesystem : undefined,
  };
}

/** The settings the permission model judges (mover-privileges.ts), root's owner capabilities named. */
export function restoreMoverSettings(restore: RestoreObject, inputs?: RestoreMoverInputs): MoverSettings {
  return {
    mover: restore.spec.mover,
    filesystem: inputs?.filesystem,
    addCapabilities: restoresOwners(restore) ? OWNER_CAPABILITIES : undefined,
  };
}

/** JSON with sorted keys, nulls and undefined left out: equal settings hash equal however written. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined && v !== null)
      .sort(([a], [b]) => a.localeCompare(b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function moverApprovalHash(inputs: RestoreMoverInputs): string {
  return shortHash(canonical({ mover: inputs.mover ?? {}, repository: inputs.repository, filesystem: inputs.filesystem }), 32);
}

export type ApprovalCheck = { approved: true } | { approved: false; checked: boolean; message: string };

/**
 * May the populator start a restore Job with these inputs? Only when the operator approved
 * exactly them. `checked` false: the operator has not looked at this generation yet (a
 * wait, not a refusal). A ClusterRepository that lists its namespaces (names, all) is
 * checked here as well, at the moment the Job would start; a selector needs the
 * namespace's labels, which the populator cannot read: the approval covers it.
 */
export function checkApproval(
  restore: RestoreObject,
  namespace: string,
  inputs: RestoreMoverInputs,
  repository: AnyRepository | undefined,
): ApprovalCheck {
  const what = `spec.mover and ${inputs.repository.kind} ${inputs.repository.name}`;
  if (inputs.repository.kind === 'ClusterRepository' && repository) {
    const allowed = (repository.spec as Partial<ClusterRepositorySpec>).allowedNamespaces;
    if (allowed && !allowed.selector && !isNamespaceAllowed(allowed, namespace, {}))
      return {
        approved: false,
        checked: true,
        message: `ClusterRepository ${inputs.repository.name} does not allow namespace ${namespace} (spec.allowedNamespaces)`,
      };
  }
  const approval: MoverApproval | undefined = restore.status?.moverApproval;
  const generation = restore.metadata.generation ?? 1;
  if (approval?.hash === moverApprovalHash(inputs)) return { approved: true };
  if (approval && approval.generation < generation)
    return {
      approved: false,
      checked: false,
      message: `waiting for the operator to check the mover settings of generation ${generation} (${what}); it approved generation ${approval.generation}`,
    };
  return {
    approved: false,
    checked: true,
    message: `the operator has not approved ${what} for a restore Job in namespace ${namespace}; the Restore's Ready condition says why`,
  };
}

export type ApprovalDecision = { approval: MoverApproval } | { refused: { reason: string; message: string } };

/**
 * The operator's side: approve the inputs of the repository the Restore's source names now
 * when the namespace may use that repository and may use these settings, as of now.
 */
export function decideApproval(input: {
  restore: RestoreObject;
  /** The inputs with the source's current repository; or why that repository is not known or not allowed. */
  inputs: RestoreMoverInputs | { reason: string; message: string };
  namespaceAnnotations: Record<string, string>;
}): ApprovalDecision {
  const { restore, inputs } = input;
  if (!('repository' in inputs)) return { refused: inputs };
  const permission = moverPermission(privilegedSettings(restoreMoverSettings(restore, inputs)), {
    clusterScoped: false,
    namespace: restore.metadata.namespace!,
    namespaceAnnotations: input.namespaceAnnotations,
  });
  if (!permission.allowed) return { refused: { reason: Reason.PrivilegedMoverNotAllowed, message: permission.message } };
  return { approval: { hash: moverApprovalHash(inputs), generation: restore.metadata.generation ?? 1 } };
}
