// Decisions for one Backup. Pure: which backup of an identity may run now, where its data
// comes from (the claim itself, a clone, or a VolumeSnapshot), and the objects that
// takes. Names are deterministic, so a restarted operator finds what it made.
import type { BackupConfigSpec } from '../../generated/types.js';
import type { KubeObject, OwnerReference } from '../kube/kube-client.js';
import { boundedName, LABELS, MANAGED_BY } from '../jobs/job-builder.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- claims and snapshots are read structurally */
type Obj = KubeObject & { spec?: any; status?: any };

export interface QueuedBackup {
  key: string; // namespace/name
  creationTimestamp: string;
  phase?: string;
  /** repository + identity, once known; backups with the same one never run at once. */
  identityKey?: string;
}

/** The backup that holds this identity now, if it is not this one: running ones first, then older pending ones. */
export function identityBlocker(me: QueuedBackup, all: QueuedBackup[], claimed: string | undefined): string | undefined {
  if (claimed && claimed !== me.key) return claimed;
  const same = all.filter((b) => b.key !== me.key && b.identityKey && b.identityKey === me.identityKey);
  const running = same.find((b) => b.phase === 'Running');
  if (running) return running.key;
  const older = same
    .filter((b) => (b.phase ?? 'Pending') === 'Pending')
    .find((b) => b.creationTimestamp < me.creationTimestamp || (b.creationTimestamp === me.creationTimestamp && b.key < me.key));
  return older?.key;
}

/**
 * Backups not finished yet, by identity, kept current from informer events: finding the
 * backups of one identity (the ones a finished backup frees, the one blocking a new
 * backup) visits only that identity's entries, never every Backup. Handling an event is
 * O(1), so a resync of N Backups costs O(N) instead of O(N²).
 */
export class QueuedBackupIndex {
  private readonly byIdentity = new Map<string, Map<string, QueuedBackup>>();
  private readonly identityOfKey = new Map<string, string>();

  /** The backup as it is now; undefined when it is gone, finished, or has no identity yet. */
  set(key: string, queued: QueuedBackup | undefined): void {
    const before = this.identityOfKey.get(key);
    if (before !== undefined && before !== queued?.identityKey) {
      const entries = this.byIdentity.get(before)!;
      entries.delete(key);
      if (entries.size === 0) this.byIdentity.delete(before);
      this.identityOfKey.delete(key);
    }
    if (!queued?.identityKey) return;
    let entries = this.byIdentity.get(queued.identityKey);
    if (!entries) this.byIdentity.set(queued.identityKey, (entries = new Map()));
    entries.set(key, queued);
    this.identityOfKey.set(key, queued.identityKey);
  }

  /** The unfinished backups of one identity. */
  sameIdentity(identityKey: string | undefined): QueuedBackup[] {
    const entries = identityKey === undefined ? undefined : this.byIdentity.get(identityKey);
    return entries ? [...entries.values()] : [];
  }
}

export const backupJobName = (backup: string) => boundedName('kopia-backup', backup);
/** The VolumeSnapshot and the temporary claim of a Snapshot or Clone backup share this name. */
export const sourceCopyName = (backup: string) => boundedName('kopia-src', backup);

export type CopyMethod = NonNullable<BackupConfigSpec['copyMethod']>;

function temporaryLabels(backup: string): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.component]: 'backup-source', [LABELS.ownerKind]: 'Backup', [LABELS.ownerName]: backup };
}

/** A VolumeSnapshot of the source claim (copyMethod Snapshot). */
export function desiredVolumeSnapshot(backup: string, namespace: string, owner: OwnerReference, source: string, className?: string): Obj {
  return {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: { name: sourceCopyName(backup), namespace, labels: temporaryLabels(backup), ownerReferences: [owner] },
    spec: { source: { persistentVolumeClaimName: source }, ...(className ? { volumeSnapshotClassName: className } : {}) },
  };
}

/** The temporary claim the mover reads: a clone of the source claim, or filled from the VolumeSnapshot. */
export function desiredSourceCopyClaim(
  backup: string,
  namespace: string,
  owner: OwnerReference,
  source: Obj,
  method: 'Snapshot' | 'Clone',
): Obj {
  const name = sourceCopyName(backup);
  const dataSource =
    method === 'Clone'
      ? { kind: 'PersistentVolumeClaim', name: source.metadata.name }
      : { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name };
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace, labels: temporaryLabels(backup), ownerReferences: [owner] },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: source.spec.storageClassName,
      volumeMode: source.spec.volumeMode ?? 'Filesystem',
      resources: { requests: { storage: source.status?.capacity?.storage ?? source.spec.resources?.requests?.storage } },
      dataSource,
    },
  };
}

/** kopia's cache for a BackupConfig's movers, kept between backups (so an unchanged re-backup is quick). */
export const cacheClaimName = (config: string) => boundedName('kopia-cache', config);

export function desiredCacheClaim(
  config: string,
  namespace: string,
  owner: OwnerReference,
  cache: { capacity?: string | number; storageClassName?: string },
): Obj {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: cacheClaimName(config),
      namespace,
      labels: {
        [LABELS.managedBy]: MANAGED_BY,
        [LABELS.component]: 'mover-cache',
        [LABELS.ownerKind]: 'BackupConfig',
        [LABELS.ownerName]: config,
      },
      ownerReferences: [owner],
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: cache.storageClassName,
      resources: { requests: { storage: cache.capacity ?? '2Gi' } },
    },
  };
}

/** Pods that mount the claim and run: a ReadWriteOnce claim can be read only on their node. */
export function nodeUsingClaim(pods: Obj[], claim: string): string | undefined {
  const pod = pods.find(
    (p) =>
      p.spec?.nodeName &&
      (p.status?.phase === 'Running' || p.status?.phase === 'Pending') &&
      (p.spec.volumes ?? []).some((v: any) => v.persistentVolumeClaim?.claimName === claim),
  );
  return pod?.spec.nodeName;
}
