import type { MoverResult } from '../../mover/mover-contract.js';
import {
  desiredSourceCopyClaim,
  desiredVolumeSnapshot,
  identityBlocker,
  nodeUsingClaim,
  QueuedBackupIndex,
  type QueuedBackup,
} from '../backup-plan.js';
import { isTerminal, statusFailed, statusFromBackupResult, statusRunning, statusWaiting } from '../backup-status.js';
import { kstatusOf, kstatusRuleBreaks } from '../../test-support/kstatus.js';

const now = new Date('2026-11-27T12:00:00Z');
const owner = { apiVersion: 'kopia.io/v1alpha1', kind: 'Backup', name: 'b', uid: 'u1' };

describe('one snapshot of an identity at a time', () => {
  const me: QueuedBackup = {
    key: 'media/b',
    creationTimestamp: '2026-11-27T10:00:02Z',
    phase: 'Pending',
    identityKey: 'repo|app@media:/data',
  };
  const cases: { name: string; others: QueuedBackup[]; claimed?: string; expect: string | undefined }[] = [
    { name: 'alone', others: [me], expect: undefined },
    {
      name: 'another identity running',
      others: [{ ...me, key: 'media/x', phase: 'Running', identityKey: 'repo|other@media:/data' }],
      expect: undefined,
    },
    { name: 'same identity running', others: [{ ...me, key: 'media/x', phase: 'Running' }], expect: 'media/x' },
    { name: 'an older one pending', others: [{ ...me, key: 'media/a', creationTimestamp: '2026-11-27T10:00:01Z' }], expect: 'media/a' },
    { name: 'a newer one pending', others: [{ ...me, key: 'media/c', creationTimestamp: '2026-11-27T10:00:03Z' }], expect: undefined },
    { name: 'same second, name decides', others: [{ ...me, key: 'media/a' }], expect: 'media/a' },
    { name: 'claimed by this process for another', others: [], claimed: 'media/z', expect: 'media/z' },
    { name: 'claimed by this process for me', others: [], claimed: 'media/b', expect: undefined },
  ];
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    expect(identityBlocker(me, c.others, c.claimed)).toBe(c.expect);
  });
});

describe('the unfinished backups of an identity', () => {
  const queued = (key: string, identityKey: string | undefined, phase = 'Pending'): QueuedBackup => ({
    key,
    creationTimestamp: '2026-11-27T10:00:00Z',
    phase,
    identityKey,
  });

  it('follows each backup through its states: identity found, running, finished or deleted', () => {
    const index = new QueuedBackupIndex();
    index.set('ns/a', queued('ns/a', undefined));
    expect(index.sameIdentity(undefined)).toEqual([]);
    index.set('ns/a', queued('ns/a', 'x'));
    index.set('ns/b', queued('ns/b', 'x'));
    index.set('ns/c', queued('ns/c', 'y'));
    index.set('ns/a', queued('ns/a', 'x', 'Running'));
    expect(index.sameIdentity('x')).toEqual([queued('ns/a', 'x', 'Running'), queued('ns/b', 'x')]);
    index.set('ns/a', undefined); // finished
    index.set('ns/c', queued('ns/c', 'x')); // its config now names another identity
    expect(index.sameIdentity('x').map((b) => b.key)).toEqual(['ns/b', 'ns/c']);
    expect(index.sameIdentity('y')).toEqual([]);
  });

  it('answers from the backups of that identity alone, however many others there are', () => {
    const index = new QueuedBackupIndex();
    const visited = new Set<string>();
    // Entries count their reads: a lookup that scanned every backup would read all 20,000.
    const counted = (b: QueuedBackup) =>
      new Proxy(b, {
        get: (target, prop) => {
          visited.add(target.key);
          return target[prop as keyof QueuedBackup];
        },
      });
    for (let i = 0; i < 20_000; i++) index.set(`ns/b${i}`, counted(queued(`ns/b${i}`, `identity-${i % 10_000}`)));
    visited.clear();
    const waiters = index.sameIdentity('identity-7').map((b) => b.key);
    expect(waiters).toEqual(['ns/b7', 'ns/b10007']);
    expect(visited.size).toBe(2);
  });
});

describe('source copies', () => {
  const source = {
    metadata: { name: 'data' },
    spec: { storageClassName: 'fast', resources: { requests: { storage: '1Gi' } } },
    status: { capacity: { storage: '2Gi' } },
  };
  it('clones the claim, or fills a claim from the VolumeSnapshot, named after the Backup and owned by it', () => {
    const clone = desiredSourceCopyClaim('b', 'media', owner, source, 'Clone');
    expect(clone.metadata).toMatchObject({ name: 'kopia-src-b', namespace: 'media', ownerReferences: [owner] });
    expect(clone.spec).toMatchObject({
      storageClassName: 'fast',
      dataSource: { kind: 'PersistentVolumeClaim', name: 'data' },
      resources: { requests: { storage: '2Gi' } },
    });
    const fromSnapshot = desiredSourceCopyClaim('b', 'media', owner, source, 'Snapshot');
    expect(fromSnapshot.spec.dataSource).toEqual({ apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'kopia-src-b' });
    expect(desiredVolumeSnapshot('b', 'media', owner, 'data', 'csi').spec).toEqual({
      source: { persistentVolumeClaimName: 'data' },
      volumeSnapshotClassName: 'csi',
    });
  });

  it('finds the node of a running pod that mounts the claim', () => {
    const pod = (name: string, claim: string, phase: string, nodeName?: string) => ({
      metadata: { name },
      spec: { nodeName, volumes: [{ name: 'v', persistentVolumeClaim: { claimName: claim } }] },
      status: { phase },
    });
    expect(
      nodeUsingClaim([pod('a', 'other', 'Running', 'n1'), pod('b', 'data', 'Succeeded', 'n2'), pod('c', 'data', 'Running', 'n3')], 'data'),
    ).toBe('n3');
    expect(nodeUsingClaim([pod('a', 'data', 'Pending')], 'data')).toBeUndefined();
  });
});

describe('backup status', () => {
  const running = statusRunning(
    { phase: 'Pending' },
    { jobName: 'kopia-backup-b', identity: { username: 'app', hostname: 'media', path: '/data' }, repository: { name: 'nas' } },
    1,
    now,
  );
  const snapshot = {
    id: 'k1',
    rootID: 'r1',
    startTime: '2026-11-27T12:00:00Z',
    stats: { totalBytes: 10, files: 2, dirs: 1, errors: 0 },
    retentionReasons: ['latest-1'],
  };

  it('keeps the first start time while running', () => {
    expect(running).toMatchObject({
      phase: 'Running',
      startTime: '2026-11-27T12:00:00Z',
      jobName: 'kopia-backup-b',
      snapshot: { identity: { username: 'app' } },
    });
    expect(
      statusRunning(
        running,
        { jobName: 'kopia-backup-b', identity: running.snapshot!.identity as never, repository: { name: 'nas' } },
        1,
        new Date('2026-11-27T13:00:00Z'),
      ).startTime,
    ).toBe('2026-11-27T12:00:00Z');
  });

  it('a clean snapshot is Succeeded and Ready', () => {
    const s = statusFromBackupResult(
      running,
      { ok: true, operation: 'backup', snapshot, mover: { uid: 65534, gid: 65534 } },
      'job-1',
      1,
      now,
    );
    expect(s).toMatchObject({
      phase: 'Succeeded',
      collectedJobUID: 'job-1',
      snapshot: { id: 'k1', rootID: 'r1', identity: { username: 'app' } },
      mover: { uid: 65534 },
    });
    expect(s.conditions!.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'True', 'BackupSucceeded'],
      ['Reconciling', 'False', 'BackupSucceeded'],
      ['Stalled', 'False', 'BackupSucceeded'],
    ]);
    expect(isTerminal(s)).toBe(true);
  });

  it('a snapshot saved with file errors keeps its id, is Succeeded but not Ready, with a FileErrors condition', () => {
    const result: MoverResult = {
      ok: true,
      operation: 'backup',
      snapshot,
      fileErrors: { count: 2, examples: ['/data/secret: permission denied'] },
    };
    const s = statusFromBackupResult(running, result, 'job-1', 1, now);
    expect(s.phase).toBe('Succeeded');
    expect(s.snapshot!.id).toBe('k1');
    expect(s.conditions!.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'False', 'FileErrors'],
      ['Reconciling', 'False', 'FileErrors'],
      ['Stalled', 'True', 'FileErrors'],
      ['FileErrors', 'True', 'FileErrors'],
    ]);
    expect(s.conditions![3].message).toContain('permission denied');
  });

  it('a failure names the error class and is terminal', () => {
    const s = statusFromBackupResult(
      running,
      { ok: false, operation: 'backup', errorClass: 'Unreachable', message: 'dial tcp: refused' },
      'job-1',
      1,
      now,
    );
    expect(s).toMatchObject({ phase: 'Failed', message: 'dial tcp: refused', completionTime: '2026-11-27T12:00:00Z' });
    expect(s.conditions![0]).toMatchObject({ status: 'False', reason: 'Unreachable' });
  });

  it('waiting is Pending with the reason, never a failure', () => {
    expect(statusWaiting({}, 'IdentityBusy', 'waiting for Backup media/a', 1, now)).toMatchObject({
      phase: 'Pending',
      conditions: [
        { type: 'Ready', status: 'False', reason: 'IdentityBusy' },
        { type: 'Reconciling', status: 'True', reason: 'IdentityBusy', message: 'waiting for Backup media/a' },
        { type: 'Stalled', status: 'False', reason: 'IdentityBusy' },
      ],
    });
  });

  describe('kstatus of a Backup', () => {
    const result = (r: MoverResult) => () => statusFromBackupResult(running, r, 'job-1', 1, now);
    it.each([
      ['Pending, waiting for its identity: InProgress', () => statusWaiting({}, 'IdentityBusy', 'm', 1, now), 'InProgress', 'IdentityBusy'],
      [
        'Pending, its config not Ready yet: InProgress',
        () => statusWaiting({}, 'ConfigNotReady', 'm', 1, now),
        'InProgress',
        'ConfigNotReady',
      ],
      [
        'Pending, its config missing (waited for): InProgress',
        () => statusWaiting({}, 'ConfigNotFound', 'm', 1, now),
        'InProgress',
        'ConfigNotFound',
      ],
      ['Running: InProgress', () => running, 'InProgress', 'BackupRunning'],
      ['Succeeded: Current', result({ ok: true, operation: 'backup', snapshot }), 'Current', undefined],
      [
        'Succeeded with unreadable files: Failed (final, never Ready)',
        result({ ok: true, operation: 'backup', snapshot, fileErrors: { count: 1, examples: [] } }),
        'Failed',
        'FileErrors',
      ],
      [
        'Failed, repository unreachable: Failed',
        result({ ok: false, operation: 'backup', errorClass: 'Unreachable', message: 'x' }),
        'Failed',
        'Unreachable',
      ],
      [
        'Failed over the expiry limit (a reason that only waits while Pending): Failed',
        () => statusFailed(running, 'ExpireLimitExceeded', 'm', 1, now),
        'Failed',
        'ExpireLimitExceeded',
      ],
    ])('%s', (_name, status, verdict, reason) => {
      const o = { metadata: { generation: 1 }, status: status() };
      expect(kstatusOf(o)).toEqual({ status: verdict, ...(reason ? { reason } : {}) });
      expect(kstatusRuleBreaks(o)).toEqual([]);
    });
  });
});
