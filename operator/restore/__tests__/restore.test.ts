import { chooseSnapshot, describeChoice, type ListedSnapshot } from '../restore-plan.js';
import { statusFromRestoreResult } from '../restore-operator.js';

const app = { username: 'app', hostname: 'media', path: '/data' };
const snap = (id: string, startTime: string, o: Partial<ListedSnapshot> = {}): ListedSnapshot => ({
  id,
  source: { ...app },
  startTime,
  ...o,
});
const listing = [
  snap('k1', '2026-11-20T03:00:00Z'),
  snap('k2', '2026-11-21T03:00:00Z'),
  snap('k3', '2026-11-22T03:00:00Z'),
  snap('kc', '2026-11-23T03:00:00Z', { incompleteReason: 'checkpoint' }),
  snap('ko', '2026-11-24T03:00:00Z', { source: { username: 'other', hostname: 'media', path: '/data' } }),
];

describe('choosing the snapshot a Restore means', () => {
  const cases: { name: string; choice: Parameters<typeof chooseSnapshot>[2]; expect: string | undefined }[] = [
    { name: 'the newest complete one of the identity', choice: {}, expect: 'k3' },
    { name: 'offset 0', choice: { offset: 0 }, expect: 'k3' },
    { name: 'offset 2', choice: { offset: 2 }, expect: 'k1' },
    { name: 'offset past the oldest', choice: { offset: 3 }, expect: undefined },
    { name: 'asOf between two', choice: { asOf: '2026-11-21T12:00:00Z' }, expect: 'k2' },
    { name: 'asOf exactly at one', choice: { asOf: '2026-11-21T03:00:00Z' }, expect: 'k2' },
    { name: 'asOf before the first', choice: { asOf: '2026-11-01T00:00:00Z' }, expect: undefined },
    { name: 'by id', choice: { id: 'k1' }, expect: 'k1' },
    { name: 'an incomplete one is never chosen', choice: { id: 'kc' }, expect: undefined },
    { name: "another identity's is never chosen", choice: { id: 'ko' }, expect: undefined },
  ];
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    expect(chooseSnapshot(listing, app, c.choice)?.id).toBe(c.expect);
  });

  it('finds nothing when the identity has no snapshot (the only case Continue may make empty)', () => {
    expect(chooseSnapshot([], app, {})).toBeUndefined();
    expect(describeChoice(app, { asOf: '2026-11-01T00:00:00Z' })).toBe(
      'the newest snapshot of app@media:/data taken at or before 2026-11-01T00:00:00Z',
    );
  });
});

describe('restore status', () => {
  const now = new Date('2026-11-27T12:00:00Z');
  const resolved = { phase: 'Restoring' as const, resolved: { snapshotID: 'k3' } };

  it('says plainly when owners could not be given back', () => {
    const s = statusFromRestoreResult(
      resolved,
      { ok: true, operation: 'restore', restored: { files: 3, dirs: 2, bytes: 10, errors: 0, ownersRestored: false } },
      'j1',
      1,
      now,
    );
    expect(s).toMatchObject({
      phase: 'Completed',
      ownersRestored: false,
      collectedJobUID: 'j1',
      progress: { restoredFiles: 3, restoredDirs: 2 },
    });
    expect(s.conditions![0]).toMatchObject({ status: 'True', reason: 'OwnersNotRestored' });
  });

  it('is Completed with owners when the mover gave them back', () => {
    const s = statusFromRestoreResult(
      resolved,
      { ok: true, operation: 'restore', restored: { files: 3, dirs: 2, bytes: 10, errors: 0, ownersRestored: true } },
      'j1',
      1,
      now,
    );
    expect(s.conditions![0]).toMatchObject({ status: 'True', reason: 'RestoreCompleted' });
  });

  it('fails with the error class as reason', () => {
    const s = statusFromRestoreResult(
      resolved,
      { ok: false, operation: 'restore', errorClass: 'WrongPassword', message: 'invalid repository password' },
      'j1',
      1,
      now,
    );
    expect(s).toMatchObject({ phase: 'Failed', message: 'invalid repository password' });
    expect(s.conditions![0]).toMatchObject({ status: 'False', reason: 'WrongPassword' });
  });
});
