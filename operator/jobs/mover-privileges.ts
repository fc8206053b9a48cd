// Who may make a mover privileged. The operator can create Jobs in any namespace, so a
// user who may only write kopia.io objects must not borrow that right: mover settings that
// reach beyond the namespace (root or a chosen uid/gid, a node's filesystem through
// hostPath, an NFS export, added capabilities) are honoured only where a cluster
// administrator allowed them — on a ClusterRepository (admin-owned), or in a namespace
// annotated kopia.io/privileged-movers: "true" (VolSync's precedent). Otherwise the owner
// gets a condition and an Event, never a Pod. Pure; one model for every mover.
import type { FilesystemBackend, MoverOptions } from '../../generated/types.js';

export const PRIVILEGED_MOVERS_ANNOTATION = 'kopia.io/privileged-movers';
/** The uid, gid and fsGroup every mover runs with unless told otherwise. */
export const DEFAULT_MOVER_ID = 65534;

export interface MoverSettings {
  filesystem?: FilesystemBackend;
  mover?: MoverOptions;
  /** Capabilities a mover would add (backups and restores that read or restore owners). */
  addCapabilities?: string[];
}

/** The privileged settings among these, each named by its field, in a stable order. */
export function privilegedSettings(s: MoverSettings, fieldPrefix = 'spec'): string[] {
  const found: string[] = [];
  const volume = s.filesystem?.volume;
  if (volume?.hostPath) found.push(`${fieldPrefix}.backend.filesystem.volume.hostPath (${volume.hostPath.path})`);
  if (volume?.nfs) found.push(`${fieldPrefix}.backend.filesystem.volume.nfs (${volume.nfs.server}:${volume.nfs.path})`);
  const sc = s.mover?.securityContext ?? {};
  for (const field of ['runAsUser', 'runAsGroup', 'fsGroup'] as const) {
    const id = sc[field];
    if (id === undefined || id === DEFAULT_MOVER_ID) continue;
    found.push(`${fieldPrefix}.mover.securityContext.${field}: ${id}${id === 0 ? ' (root)' : ''}`);
  }
  for (const cap of s.addCapabilities ?? []) found.push(`capability ${cap}`);
  return found;
}

/**
 * What a root backup mover needs to read every file of the volume whatever its mode or
 * owner: read and search permission bypass, and nothing else (no write bypass, no chown).
 * Without it, root with every capability dropped cannot read a 0640 file of uid 1000.
 */
export const ROOT_BACKUP_CAPABILITIES = ['DAC_READ_SEARCH'];

/** The capabilities a backup mover with these settings gets (root only; a privileged setting already). */
export function backupCapabilities(mover: MoverOptions | undefined): string[] | undefined {
  return mover?.securityContext?.runAsUser === 0 ? ROOT_BACKUP_CAPABILITIES : undefined;
}

export type MoverPermission = { allowed: true } | { allowed: false; message: string };

/**
 * May these privileged settings be used? A ClusterRepository's own settings always (only
 * a cluster administrator can write one); a namespaced object's only in an opted-in
 * namespace.
 */
export function moverPermission(
  privileged: string[],
  scope: { clusterScoped: true } | { clusterScoped: false; namespace: string; namespaceAnnotations: Record<string, string> },
): MoverPermission {
  if (privileged.length === 0 || scope.clusterScoped) return { allowed: true };
  if (scope.namespaceAnnotations[PRIVILEGED_MOVERS_ANNOTATION] === 'true') return { allowed: true };
  return {
    allowed: false,
    message:
      `privileged mover settings are not allowed in namespace ${scope.namespace}: ${privileged.join('; ')}. ` +
      `A cluster administrator may allow them with the namespace annotation ${PRIVILEGED_MOVERS_ANNOTATION}: "true", ` +
      'or use a ClusterRepository',
  };
}
