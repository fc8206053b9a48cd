import type { MoverFailure } from '../../mover/mover-contract.js';
import { PopulatorReason } from '../../populator/populator-reasons.js';
import { REASON_CLASS, reasonClass, type ReasonClass } from '../../reason-classes.js';
import { ConditionType, Reason } from '../../reasons.js';
import { kstatusOf, kstatusRuleBreaks } from '../../test-support/kstatus.js';
import { backfillKstatus, setReady } from '../kstatus.js';

const now = new Date('2026-01-02T03:04:05Z');
const later = new Date('2026-01-02T04:00:00Z');

describe('reason classes', () => {
  it('classes every condition and Event reason, the populator’s and the mover’s error classes as progressing or stalled', () => {
    const moverErrorClasses: Record<MoverFailure['errorClass'], true> = {
      NotInitialized: true,
      WrongPassword: true,
      Unreachable: true,
      Other: true,
      RepositoryMissing: true,
      RepositoryChanged: true,
      ExpireLimitExceeded: true,
      UploadFailed: true,
      SnapshotNotFound: true,
      OwnedByOther: true,
      InvalidRequest: true,
    };
    const all = [...Object.values(Reason), ...Object.values(PopulatorReason), ...Object.keys(moverErrorClasses)];
    const unclassed = all.filter((r) => !Object.hasOwn(REASON_CLASS, r));
    expect(unclassed).toEqual([]);
    for (const r of all) expect(['progressing', 'stalled']).toContain(REASON_CLASS[r as keyof typeof REASON_CLASS]);
  });

  it('follows the issue’s examples', () => {
    const expected: Record<string, ReasonClass> = {
      [Reason.Unreachable]: 'stalled',
      [Reason.WrongPassword]: 'stalled',
      [Reason.RepositoryMissing]: 'stalled',
      [Reason.InvalidSpec]: 'stalled',
      [Reason.SecretNotFound]: 'progressing',
      [Reason.RepositoryNotAllowed]: 'stalled',
      [Reason.RestoreFailed]: 'stalled',
      [Reason.BackupFailed]: 'stalled',
      [Reason.Verifying]: 'progressing',
      [Reason.BackupRunning]: 'progressing',
      [Reason.Restoring]: 'progressing',
      [Reason.ListingSnapshots]: 'progressing',
      [Reason.RepositoryNotReady]: 'progressing',
      [Reason.WaitingForClaim]: 'progressing',
    };
    expect(Object.fromEntries(Object.keys(expected).map((r) => [r, reasonClass(r)]))).toEqual(expected);
  });

  it('takes a reason it does not know as stalled, never as an endless progress', () => {
    expect(reasonClass('SomethingNew')).toBe('stalled');
    expect(reasonClass('toString')).toBe('stalled');
  });
});

describe('setReady', () => {
  const obj = (conditions: ReturnType<typeof setReady>, generation = 3) => ({
    metadata: { generation },
    status: { observedGeneration: generation, conditions },
  });

  it('Ready=True: Reconciling and Stalled False, each with observedGeneration; kstatus Current', () => {
    const c = setReady(undefined, { status: 'True', reason: Reason.Verified, message: 'connected' }, 3, now);
    expect(c).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Verified',
        message: 'connected',
        lastTransitionTime: '2026-01-02T03:04:05Z',
        observedGeneration: 3,
      },
      {
        type: 'Reconciling',
        status: 'False',
        reason: 'Verified',
        message: 'no work toward the spec is under way',
        lastTransitionTime: '2026-01-02T03:04:05Z',
        observedGeneration: 3,
      },
      {
        type: 'Stalled',
        status: 'False',
        reason: 'Verified',
        message: 'not stalled',
        lastTransitionTime: '2026-01-02T03:04:05Z',
        observedGeneration: 3,
      },
    ]);
    expect(kstatusOf(obj(c))).toEqual({ status: 'Current' });
    expect(kstatusRuleBreaks(obj(c))).toEqual([]);
  });

  it('a progressing reason: Reconciling=True with Ready’s reason and message; kstatus InProgress', () => {
    const c = setReady(undefined, { status: 'Unknown', reason: Reason.Verifying, message: 'a verification Job is running' }, 3, now);
    expect(c.find((x) => x.type === ConditionType.Reconciling)).toMatchObject({
      status: 'True',
      reason: 'Verifying',
      message: 'a verification Job is running',
    });
    expect(c.find((x) => x.type === ConditionType.Stalled)).toMatchObject({ status: 'False', reason: 'Verifying' });
    expect(kstatusOf(obj(c))).toEqual({ status: 'InProgress', reason: 'Verifying' });
    expect(kstatusRuleBreaks(obj(c))).toEqual([]);
  });

  it('a stalled reason: Stalled=True, Reconciling False; kstatus Failed', () => {
    const c = setReady(undefined, { status: 'False', reason: Reason.Unreachable, message: 'dial tcp: refused' }, 3, now);
    expect(c.find((x) => x.type === ConditionType.Stalled)).toMatchObject({
      status: 'True',
      reason: 'Unreachable',
      message: 'dial tcp: refused',
    });
    expect(c.find((x) => x.type === ConditionType.Reconciling)).toMatchObject({ status: 'False' });
    expect(kstatusOf(obj(c))).toEqual({ status: 'Failed', reason: 'Unreachable' });
    expect(kstatusRuleBreaks(obj(c))).toEqual([]);
  });

  it('a terminal failure is Stalled whatever its reason’s class', () => {
    const c = setReady(undefined, { status: 'False', reason: Reason.ExpireLimitExceeded, message: 'too many' }, 3, now, { failed: true });
    expect(kstatusOf(obj(c))).toEqual({ status: 'Failed', reason: 'ExpireLimitExceeded' });
  });

  it('moves each lastTransitionTime only when its status changes, and keeps other conditions', () => {
    const first = setReady(
      [{ type: 'Connected', status: 'True', reason: 'Connected', message: 'x', lastTransitionTime: '2025-01-01T00:00:00Z' }],
      { status: 'False', reason: Reason.BackupRunning, message: 'running' },
      1,
      now,
    );
    const second = setReady(first, { status: 'True', reason: Reason.BackupSucceeded, message: 'done' }, 1, later);
    const at = (type: string) => second.find((c) => c.type === type)!.lastTransitionTime;
    expect(second.map((c) => c.type)).toEqual(['Connected', 'Ready', 'Reconciling', 'Stalled']);
    expect([at('Connected'), at('Ready'), at('Reconciling'), at('Stalled')]).toEqual([
      '2025-01-01T00:00:00Z',
      '2026-01-02T04:00:00Z',
      '2026-01-02T04:00:00Z',
      '2026-01-02T03:04:05Z',
    ]);
  });
});

describe('backfillKstatus', () => {
  const oldReady = {
    type: 'Ready',
    status: 'False' as const,
    reason: 'SnapshotMissing',
    message: 'no snapshot',
    lastTransitionTime: '2025-06-01T00:00:00Z',
    observedGeneration: 2,
  };
  const o = (conditions: ReturnType<typeof setReady>) => ({ metadata: { generation: 2 }, status: { observedGeneration: 2, conditions } });

  it('gives an object failed by an older operator (Ready alone) its Stalled, keeping Ready as it was', () => {
    expect(kstatusOf(o([oldReady]))).toEqual({ status: 'InProgress', reason: 'SnapshotMissing' });
    const filled = backfillKstatus([oldReady], now, { failed: true })!;
    expect(filled[0]).toEqual(oldReady);
    expect(filled.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'SnapshotMissing', observedGeneration: 2 });
    expect(kstatusOf(o(filled))).toEqual({ status: 'Failed', reason: 'SnapshotMissing' });
    expect(kstatusRuleBreaks(o(filled))).toEqual([]);
  });

  it('changes nothing once the conditions are there, or without a Ready', () => {
    const filled = backfillKstatus([oldReady], now, { failed: true })!;
    expect(backfillKstatus(filled, later, { failed: true })).toBeUndefined();
    expect(backfillKstatus(undefined, now)).toBeUndefined();
    expect(backfillKstatus([], now)).toBeUndefined();
  });
});

describe('kstatus as cli-utils computes it', () => {
  const c = (type: string, status: 'True' | 'False' | 'Unknown', reason = 'R') => ({
    type,
    status,
    reason,
    message: '',
    lastTransitionTime: '2026-01-01T00:00:00Z',
  });
  it.each([
    ['a newer generation not yet observed', { generation: 2 }, { observedGeneration: 1, conditions: [c('Ready', 'True')] }, 'InProgress'],
    [
      'Reconciling True before Ready True',
      { generation: 1 },
      { observedGeneration: 1, conditions: [c('Ready', 'True'), c('Reconciling', 'True')] },
      'InProgress',
    ],
    ['Stalled True', { generation: 1 }, { observedGeneration: 1, conditions: [c('Ready', 'False'), c('Stalled', 'True')] }, 'Failed'],
    ['Ready False alone', { generation: 1 }, { conditions: [c('Ready', 'False')] }, 'InProgress'],
    ['no conditions', { generation: 1 }, {}, 'Current'],
    ['being deleted', { generation: 1, deletionTimestamp: '2026-01-01T00:00:00Z' }, {}, 'Terminating'],
  ])('%s', (_name, metadata, status, expected) => {
    expect(kstatusOf({ metadata, status }).status).toBe(expected);
  });
});
