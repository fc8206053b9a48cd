// The Kopia identity a BackupConfig's snapshots are filed under. Pure.
import type { BackupConfigSpec, Identity } from '../../generated/types.js';

export function resolveIdentity(spec: BackupConfigSpec, name: string, namespace: string): Required<Identity> {
  return {
    username: spec.identity?.username ?? name,
    hostname: spec.identity?.hostname ?? namespace,
    path: spec.identity?.path ?? '/data',
  };
}

export function identityString(id: Required<Identity>): string {
  return `${id.username}@${id.hostname}:${id.path}`;
}
