// Which Backups carry the snapshot finalizer (kopia.io/snapshot-deletion): those whose
// deletion must delete their snapshot. Decided here once, for the Backup operator that adds
// and drops it and for the snapshot-deletion operator that acts on it. Pure.
import type { BackupStatus } from '../../generated/types.js';
import type { KubeObject } from '../kube/kube-client.js';
import { ConditionType, Reason } from '../reasons.js';
import { SNAPSHOT_FINALIZER } from './deletion-plan.js';

/** What the decision reads of a Backup (a mirrored one in the catalog's plan is enough). */
type BackupObject = KubeObject & { spec: { deletionPolicy?: string }; status?: BackupStatus };

/**
 * Whether the catalog mirror found the Backup's snapshot gone from kopia (two complete
 * listings lacked it) and is removing the object: its Ready says SnapshotGone. Status only,
 * which tenants cannot write.
 */
export function snapshotGone(b: Pick<BackupObject, 'status'>): boolean {
  return (b.status?.conditions ?? []).some((c) => c.type === ConditionType.Ready && c.reason === Reason.SnapshotGone);
}

/**
 * Whether a Backup should carry the snapshot finalizer: deletionPolicy Delete, a snapshot the
 * operator recorded (status) if it is being deleted, and a snapshot kopia still keeps. A
 * deleted Backup that never had it does not get it (its deletion began without a promise to
 * delete anything). A gone snapshot has nothing to delete: putting the finalizer back there
 * would race the mirror's removal of the object for ever.
 */
export function wantsSnapshotFinalizer(b: BackupObject): boolean {
  const has = (b.metadata.finalizers ?? []).includes(SNAPSHOT_FINALIZER);
  const deleting = !!b.metadata.deletionTimestamp;
  const snapshot = b.status?.snapshot?.id;
  return b.spec.deletionPolicy === 'Delete' && !snapshotGone(b) && (!deleting || (!!snapshot && has));
}

/**
 * Whether removing this Backup must delete its snapshot now: it is being deleted, holds the
 * finalizer, and still wants it. The same rule as the finalizer's own, so a Backup switched to
 * Retain (or found gone) whose finalizer has not been dropped yet never reaches kopia.
 */
export function deletesSnapshot(b: BackupObject): boolean {
  return !!b.metadata.deletionTimestamp && (b.metadata.finalizers ?? []).includes(SNAPSHOT_FINALIZER) && wantsSnapshotFinalizer(b);
}
