// The Kopia identity a BackupConfig's snapshots are filed under. Pure.
import type { BackupConfigSpec, Identity } from '../../generated/types.js';
import { canonicalPath } from '../mover/mover-contract.js';

/** The identity with its path in kopia's canonical form ("/data/" is "/data"). */
export function resolveIdentity(spec: BackupConfigSpec, name: string, namespace: string): Required<Identity> {
  return {
    username: spec.identity?.username ?? name,
    hostname: spec.identity?.hostname ?? namespace,
    path: canonicalPath(spec.identity?.path ?? '/data'),
  };
}

export function identityString(id: Required<Identity>): string {
  return `${id.username}@${id.hostname}:${id.path}`;
}
