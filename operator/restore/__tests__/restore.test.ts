import type { ClaimResolution, RestoreStatus } from '../../../generated/types.js';
import {
  answerChoice,
  chooseSnapshot,
  CLAIM_HISTORY,
  claimAnswer,
  claimsToResolve,
  describeChoice,
  keptAnswers,
  restoreEnding,
  type ClaimView,
  type ListedSnapshot,
  type SnapshotChoice,
} from '../restore-plan.js';
import { statusForAnswer, statusFromRestoreResult, withApproval } from '../restore-operator.js';
import { kstatusOf, kstatusRuleBreaks } from '../../test-support/kstatus.js';
const NOW = new Date('2026-11-27T12:00:00Z');

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
    expect(answerChoice([], app, {})).toEqual({ kind: 'none' });
    expect(answerChoice([], app, { offset: 3 })).toEqual({ kind: 'none' });
    expect(answerChoice(listing.slice(3), app, { asOf: '2026-11-01T00:00:00Z' })).toEqual({ kind: 'none' });
    expect(describeChoice(app, { asOf: '2026-11-01T00:00:00Z' })).toBe(
      'snapshot of app@media:/data taken at or before 2026-11-01T00:00:00Z',
    );
  });
});

describe('a pin change', () => {
  it('a named snapshot saved again under a new id is found by its start time and root object', () => {
    const repinned = [snap('k1-new', '2026-11-20T03:00:00Z', { rootID: 'root1' }), snap('k2', '2026-11-21T03:00:00Z', { rootID: 'root2' })];
    expect(answerChoice(repinned, app, { id: 'k1' }).kind).toBe('notFound');
    const found = answerChoice(repinned, app, { id: 'k1', sameAs: { startTime: '2026-11-20T03:00:00.000Z', rootID: 'root1' } });
    expect(found).toMatchObject({ kind: 'found', snapshot: { id: 'k1-new' } });
    expect(answerChoice(repinned, app, { id: 'k1', sameAs: { startTime: '2026-11-20T03:00:00Z', rootID: 'other' } }).kind).toBe('notFound');
  });
});

describe('"missing" means only "this identity has no snapshot"', () => {
  const cases: { name: string; choice: SnapshotChoice; listing?: ListedSnapshot[]; says: string[] }[] = [
    {
      name: 'an offset past the oldest',
      choice: { offset: 3 },
      says: ['snapshot 3 before the newest', 'kopia lists 3 snapshots', '2026-11-22T03:00:00Z'],
    },
    {
      name: 'an asOf before the first snapshot',
      choice: { asOf: '2026-11-01T00:00:00Z' },
      says: ['taken at or before 2026-11-01', 'the oldest 2026-11-20T03:00:00Z'],
    },
    {
      name: 'an id kopia does not list',
      choice: { id: 'gone1' },
      says: ['snapshot gone1', 'not in the repository', 'kopia lists 3 snapshots'],
    },
    { name: 'an id of an incomplete snapshot', choice: { id: 'kc' }, says: ['incomplete (checkpoint)'] },
    // Said like a missing one: whose it is, or that it exists, is not this identity's to learn.
    {
      name: "an id of another identity's snapshot",
      choice: { id: 'ko' },
      says: ['not in the repository as a snapshot of app@media:/data'],
    },
    {
      name: 'an id when the identity has no snapshot at all (a named snapshot existed)',
      choice: { id: 'gone1' },
      listing: [],
      says: ['kopia lists no snapshot of app@media:/data'],
    },
  ];
  it.each(cases.map((c) => [c.name, c] as const))('%s fails, naming what was asked and what exists', (_n, c) => {
    const answer = answerChoice(c.listing ?? listing, app, c.choice);
    expect(answer.kind).toBe('notFound');
    for (const text of c.says) expect(answer.kind === 'notFound' && answer.message).toContain(text);
    expect(answer.kind === 'notFound' && answer.message).not.toContain('other@');
  });
});

describe('one answer per claim', () => {
  const claimView = (name: string, uid: string, o: Partial<ClaimView> = {}): ClaimView => ({
    name,
    uid,
    creationTimestamp: `2026-11-2${uid.length}T00:00:00Z`,
    settled: false,
    ...o,
  });
  const answer = (uid: string, o: Partial<ClaimResolution> = {}): ClaimResolution => ({
    claimName: `claim-${uid}`,
    claimUID: uid,
    resolvedAt: '2026-11-20T00:00:00Z',
    ...o,
  });

  it('resolves each unsettled claim without an answer, oldest first', () => {
    const status = { claims: [answer('a', { empty: true })] };
    const claims = [claimView('c', 'ccc'), claimView('a', 'a'), claimView('b', 'bb'), claimView('bound', 'dddd', { settled: true })];
    expect(claimsToResolve(status, claims).map((c) => c.name)).toEqual(['b', 'c']);
  });

  it("keeps every unfilled claim's answer and the newest few of the others (bound or gone)", () => {
    const answers = Array.from({ length: CLAIM_HISTORY + 3 }, (_, i) => answer(`gone-${i}`));
    answers.splice(1, 0, answer('live'));
    const kept = keptAnswers(answers, new Set(['live']));
    expect(kept).toHaveLength(CLAIM_HISTORY + 1);
    expect(kept.map((a) => a.claimUID)).toEqual(['live', ...answers.slice(-CLAIM_HISTORY).map((a) => a.claimUID)]);
  });

  it('an answer of "none" is an empty volume only under Continue; any failure is kept as the claim\'s', () => {
    const claim = { name: 'data', uid: 'u1' };
    const missing = {
      state: 'missing' as const,
      resolved: { empty: true, identity: app, resolvedAt: 'T' },
      message: 'kopia lists no snapshot of app@media:/data',
      listedAt: '2026-11-27T11:00:01Z',
    };
    expect(claimAnswer(claim, missing, 'Continue', 'T')).toMatchObject({ claimUID: 'u1', empty: true, listedAt: '2026-11-27T11:00:01Z' });
    expect(claimAnswer(claim, missing, 'Fail', 'T')).toMatchObject({ failed: { reason: 'SnapshotMissing' } });
    expect(claimAnswer(claim, missing, 'Fail', 'T').empty).toBeUndefined();
    const failed = { state: 'failed' as const, reason: 'SnapshotNotFound', message: 'no snapshot 3 before the newest' };
    expect(claimAnswer(claim, failed, 'Continue', 'T')).toMatchObject({ failed: { reason: 'SnapshotNotFound' } });
  });

  it('the top level follows the newest answer, with the run of an earlier claim cleared', () => {
    const earlier = {
      phase: 'Completed' as const,
      target: { pvc: 'old' },
      resolved: { empty: true },
      progress: { restoredFiles: 0 },
      jobName: 'j',
    };
    const s = statusForAnswer(earlier, answer('u2', { claimName: 'data', snapshotID: 'k9', snapshotTime: 'T', identity: app }), 1, NOW);
    expect(s).toMatchObject({ phase: 'Pending', target: { pvc: 'data' }, resolved: { snapshotID: 'k9' } });
    expect(s.resolved?.empty).toBeUndefined();
    expect(s.progress).toBeUndefined();
    expect(s.jobName).toBeUndefined();
    const failed = statusForAnswer(
      earlier,
      answer('u3', { claimName: 'data', failed: { reason: 'SnapshotNotFound', message: 'm' } }),
      1,
      NOW,
    );
    expect(failed).toMatchObject({ phase: 'Failed', target: { pvc: 'data' } });
    expect(failed.resolved).toBeUndefined();
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

describe('a Restore’s ending, as kopia_restores_total counts it', () => {
  const ready = (reason: string) => [{ type: 'Ready', status: 'False', reason, message: '', lastTransitionTime: NOW.toISOString() }];
  it.each([
    {
      given: { before: { phase: 'Restoring' }, after: { phase: 'Completed', conditions: ready('RestoreCompleted') } },
      expect: { outcome: 'Completed', reason: 'RestoreCompleted' },
    },
    {
      given: { before: {}, after: { phase: 'Failed', conditions: ready('SnapshotMissing') } },
      expect: { outcome: 'Failed', reason: 'SnapshotMissing' },
    },
    { given: { before: { phase: 'Pending' }, after: { phase: 'Failed' } }, expect: { outcome: 'Failed', reason: 'Unknown' } },
    // Already ended: a later pass (or a restarted operator) rewriting the status is no new ending.
    { given: { before: { phase: 'Failed' }, after: { phase: 'Failed', conditions: ready('SnapshotMissing') } }, expect: undefined },
    { given: { before: { phase: 'Completed' }, after: { phase: 'Completed' } }, expect: undefined },
    { given: { before: { phase: 'Pending' }, after: { phase: 'Restoring' } }, expect: undefined },
    // target.populator: each claim's restore that ends after another one began is an ending of its own.
    {
      given: { before: { phase: 'Restoring' }, after: { phase: 'Failed', conditions: ready('RestoreFailed') } },
      expect: { outcome: 'Failed', reason: 'RestoreFailed' },
    },
  ])('$given.before.phase → $given.after.phase', ({ given, expect: expected }) => {
    expect(restoreEnding(given.before as RestoreStatus, given.after as RestoreStatus)).toEqual(expected);
  });
});

describe('kstatus of a Restore', () => {
  const restoring = { phase: 'Restoring' as const, resolved: { snapshotID: 'k3' } };
  const pinned: ClaimResolution = {
    claimName: 'data',
    claimUID: 'u1',
    resolvedAt: 'T',
    snapshotID: 'k3',
    snapshotTime: 'T',
    identity: app,
  };
  const restored = (ownersRestored: boolean) =>
    statusFromRestoreResult(
      restoring,
      { ok: true, operation: 'restore', restored: { files: 3, dirs: 2, bytes: 10, errors: 0, ownersRestored } },
      'j1',
      2,
      NOW,
    );
  it.each([
    [
      'a claim pinned to its snapshot, the restore to come: InProgress',
      () => statusForAnswer({}, pinned, 2, NOW),
      'InProgress',
      'Resolved',
    ],
    [
      'the snapshot asked for not found: Failed',
      () => statusForAnswer({}, { ...pinned, snapshotID: undefined, failed: { reason: 'SnapshotNotFound', message: 'm' } }, 2, NOW),
      'Failed',
      'SnapshotNotFound',
    ],
    [
      'a root mover refused in this namespace: Failed',
      () => withApproval({ phase: 'Pending' }, { refused: { reason: 'PrivilegedMoverNotAllowed', message: 'no root here' } }, true, 2, NOW),
      'Failed',
      'PrivilegedMoverNotAllowed',
    ],
    ['Completed: Current', () => restored(true), 'Current', undefined],
    ['Completed without owners (said, still done): Current', () => restored(false), 'Current', undefined],
    [
      'the mover failed: Failed (Stalled), not silently InProgress',
      () =>
        statusFromRestoreResult(restoring, { ok: false, operation: 'restore', errorClass: 'Other', message: 'disk full' }, 'j1', 2, NOW),
      'Failed',
      'RestoreFailed',
    ],
  ])('%s', (_name, status, verdict, reason) => {
    const o = { metadata: { generation: 2 }, status: status() };
    expect(kstatusOf(o)).toEqual({ status: verdict, ...(reason ? { reason } : {}) });
    expect(kstatusRuleBreaks(o)).toEqual([]);
  });
});
