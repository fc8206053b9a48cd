import type { Backup } from '../../../generated/types.js';
import type { KubeObject } from '../../kube/kube-client.js';
import { setReady } from '../../runtime/kstatus.js';
import { deletesSnapshot, snapshotGone, wantsSnapshotFinalizer } from '../snapshot-finalizer.js';

const now = new Date('2026-12-04T03:00:00Z');
const FINALIZER = 'kopia.io/snapshot-deletion';
const succeeded = setReady(undefined, { status: 'True', reason: 'SnapshotMirrored', message: 'found' }, 1, now);
const gone = setReady(succeeded, { status: 'False', reason: 'SnapshotGone', message: 'gone' }, 1, now);

function backup(o: {
  policy?: 'Delete' | 'Retain';
  deleting?: boolean;
  finalizer?: boolean;
  snapshot?: boolean;
  conditions?: typeof succeeded;
}) {
  return {
    metadata: {
      name: 'b',
      namespace: 'media',
      ...(o.deleting ? { deletionTimestamp: now.toISOString() } : {}),
      ...(o.finalizer ? { finalizers: [FINALIZER] } : {}),
    },
    spec: { deletionPolicy: o.policy },
    status: {
      phase: 'Succeeded',
      ...(o.snapshot === false ? {} : { snapshot: { id: 'k1' } }),
      conditions: o.conditions ?? succeeded,
    },
  } as KubeObject & Pick<Backup, 'spec' | 'status'>;
}

describe('wantsSnapshotFinalizer', () => {
  it('wants it on a Backup with deletionPolicy Delete, and not with Retain or no policy', () => {
    expect(wantsSnapshotFinalizer(backup({ policy: 'Delete' }))).toBe(true);
    expect(wantsSnapshotFinalizer(backup({ policy: 'Retain', finalizer: true }))).toBe(false);
    expect(wantsSnapshotFinalizer(backup({}))).toBe(false);
  });

  it('keeps it on a deleted Backup that had it and has a recorded snapshot, and never adds it to a deleted one', () => {
    expect(wantsSnapshotFinalizer(backup({ policy: 'Delete', deleting: true, finalizer: true }))).toBe(true);
    expect(wantsSnapshotFinalizer(backup({ policy: 'Delete', deleting: true, finalizer: false }))).toBe(false);
    expect(wantsSnapshotFinalizer(backup({ policy: 'Delete', deleting: true, finalizer: true, snapshot: false }))).toBe(false);
  });

  // The mirror drops the finalizer and then deletes the object; a Backup operator putting it back in
  // between made the delete conflict, listing after listing (seen in CI: the object never went).
  it('does not want it on a Backup whose snapshot kopia no longer keeps (SnapshotGone), deleted or not', () => {
    expect(wantsSnapshotFinalizer(backup({ policy: 'Delete', conditions: gone }))).toBe(false);
    expect(wantsSnapshotFinalizer(backup({ policy: 'Delete', deleting: true, finalizer: true, conditions: gone }))).toBe(false);
  });
});

describe('snapshotGone', () => {
  it('reads Ready SnapshotGone from the status only', () => {
    expect(snapshotGone(backup({ conditions: gone }))).toBe(true);
    expect(snapshotGone(backup({}))).toBe(false);
    expect(snapshotGone({ status: undefined })).toBe(false);
  });
});

describe('deletesSnapshot', () => {
  it('deletes the snapshot of a deleted Delete-policy Backup holding the finalizer, with a recorded snapshot kopia keeps', () => {
    expect(deletesSnapshot(backup({ policy: 'Delete', deleting: true, finalizer: true }))).toBe(true);
    expect(deletesSnapshot(backup({ policy: 'Delete', deleting: false, finalizer: true }))).toBe(false);
    expect(deletesSnapshot(backup({ policy: 'Delete', deleting: true, finalizer: false }))).toBe(false);
    expect(deletesSnapshot(backup({ policy: 'Delete', deleting: true, finalizer: true, snapshot: false }))).toBe(false);
    expect(deletesSnapshot(backup({ policy: 'Delete', deleting: true, finalizer: true, conditions: gone }))).toBe(false);
  });

  // Switched to Retain and deleted at once: the finalizer is still there until the Backup operator drops it. Only an
  // explicit Delete removes a snapshot, so the deletion operator must not act on the leftover finalizer.
  it('never deletes the snapshot of a Backup whose policy is no longer Delete, finalizer or not', () => {
    expect(deletesSnapshot(backup({ policy: 'Retain', deleting: true, finalizer: true }))).toBe(false);
    expect(deletesSnapshot(backup({ deleting: true, finalizer: true }))).toBe(false);
  });
});
