// Valid objects for each kind, as factories; tests derive invalid ones with withField().
import type { Backup, BackupConfig, BackupSchedule, ClusterRepository, Maintenance, Repository, Restore } from '../../generated/types.js';

const apiVersion = 'kopia.io/v1alpha1' as const;

export const validObjects = {
  Repository: (): Repository => ({
    apiVersion,
    kind: 'Repository',
    metadata: { name: 'nas', namespace: 'media' },
    spec: {
      backend: { filesystem: { path: '/', volume: { persistentVolumeClaim: { claimName: 'kopia-nas' } } } },
      passwordSecretRef: { name: 'kopia-repo', key: 'KOPIA_PASSWORD' },
    },
  }),
  ClusterRepository: (): ClusterRepository => ({
    apiVersion,
    kind: 'ClusterRepository',
    metadata: { name: 'shared' },
    spec: {
      backend: {
        s3: { bucket: 'backups', endpoint: 's3.example.net', credentialsSecretRef: { name: 'kopia-repo', namespace: 'kopia-system' } },
      },
      passwordSecretRef: { name: 'kopia-repo', namespace: 'kopia-system', key: 'KOPIA_PASSWORD' },
      allowedNamespaces: { names: ['media'] },
    },
  }),
  BackupConfig: (): BackupConfig => ({
    apiVersion,
    kind: 'BackupConfig',
    metadata: { name: 'jellyfin', namespace: 'media' },
    spec: { repository: { name: 'nas' }, source: { pvc: 'jellyfin-config' } },
  }),
  BackupSchedule: (): BackupSchedule => ({
    apiVersion,
    kind: 'BackupSchedule',
    metadata: { name: 'jellyfin-nightly', namespace: 'media' },
    spec: { configRef: { name: 'jellyfin' }, cron: '0 3 * * *' },
  }),
  Backup: (): Backup => ({
    apiVersion,
    kind: 'Backup',
    metadata: { generateName: 'jellyfin-', namespace: 'media' },
    spec: { configRef: { name: 'jellyfin' } },
  }),
  Restore: (): Restore => ({
    apiVersion,
    kind: 'Restore',
    metadata: { name: 'jellyfin-config', namespace: 'media' },
    spec: { source: { fromConfig: { name: 'jellyfin' } }, target: { populator: {} } },
  }),
  Maintenance: (): Maintenance => ({
    apiVersion,
    kind: 'Maintenance',
    metadata: { name: 'nas', namespace: 'media' },
    spec: { repository: { name: 'nas' } },
  }),
};

export type KindName = keyof typeof validObjects;

/** A copy of obj with the dotted path set to value (undefined removes the field). */
export function withField<T>(obj: T, path: string, value: unknown): T {
  // A JSON copy: structuredClone's objects come from another realm under jest, which cel-js refuses.
  const copy = JSON.parse(JSON.stringify(obj)) as Record<string, unknown>;
  const parts = path.split('.');
  let node = copy;
  for (const part of parts.slice(0, -1)) {
    if (node[part] === undefined || node[part] === null || typeof node[part] !== 'object') node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  const last = parts[parts.length - 1];
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy as T;
}

/** Applies several withField edits in order. */
export function withFields<T>(obj: T, edits: Record<string, unknown>): T {
  return Object.entries(edits).reduce((o, [p, v]) => withField(o, p, v), obj);
}
