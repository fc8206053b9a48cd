import type { RestoreStatus } from '../../../generated/types.js';
import type { MoverResult } from '../../mover/mover-contract.js';
import type { RestoreObject } from '../../restore/restore-job.js';
import { DEFAULT_RETRY, FINALIZER, POPULATED_FROM, type Claim, type PopulationObserved, type PopulationStep } from '../populator-plan.js';
import { restoreStatusFor } from '../populator-status.js';
import { answerOf } from '../../restore/restore-plan.js';
import { kstatusOf, kstatusRuleBreaks } from '../../test-support/kstatus.js';

const NOW = new Date('2026-11-27T12:00:00Z');
const UID = 'c1';
const JOB = `kopia-populate-${UID}`;

const claim = (o: { phase?: string; deleting?: boolean; finalizer?: boolean; name?: string } = {}): Claim => ({
  metadata: {
    name: o.name ?? 'data',
    namespace: 'media',
    uid: UID,
    finalizers: o.finalizer === false ? [] : [FINALIZER],
    ...(o.deleting ? { deletionTimestamp: '2026-11-27T11:59:00Z' } : {}),
  },
  spec: {
    volumeName: o.phase === 'Bound' ? 'pv-1' : undefined,
    dataSourceRef: { apiGroup: 'kopia.io', kind: 'Restore', name: 'jellyfin' },
  },
  status: { phase: o.phase ?? 'Pending' },
});

const restore = (status: RestoreStatus): RestoreObject =>
  ({
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Restore',
    metadata: { name: 'jellyfin', namespace: 'media', generation: 2 },
    spec: { source: { fromConfig: { name: 'jellyfin' } }, target: { populator: {} } },
    status,
  }) as unknown as RestoreObject;

const resolved = { snapshotID: 'k1234', repository: { name: 'nas' } };
/** A status whose answer for this claim is `answer` (and shown at the top level, as the operator writes it). */
const answered = (answer: RestoreStatus['resolved'], o: RestoreStatus = {}): RestoreStatus => ({
  phase: 'Pending',
  resolved: answer,
  claims: [{ claimName: 'data', claimUID: UID, resolvedAt: '2026-11-27T11:00:00Z', ...answer }],
  ...o,
});
const pending: RestoreStatus = answered(resolved);
const runningJob = { metadata: { name: JOB, namespace: 'media', uid: 'j1' }, status: {} };
const finishedJob = {
  metadata: { name: JOB, namespace: 'media', uid: 'j1' },
  status: { conditions: [{ type: 'Complete', status: 'True' }] },
};
const ok: MoverResult = { ok: true, operation: 'restore', restored: { files: 3, dirs: 2, bytes: 100, errors: 0, ownersRestored: false } };
const unreachable: MoverResult = { ok: false, operation: 'restore', errorClass: 'Unreachable', message: 'connection refused' };

const observed = (o: Partial<PopulationObserved>): PopulationObserved => {
  const given: PopulationObserved = { claim: claim(), restore: restore(pending), now: NOW, retry: DEFAULT_RETRY, ...o };
  return { ...given, answer: answerOf(given.restore?.status, given.claim.metadata.uid!) };
};
const ready = (s: RestoreStatus | undefined) => s?.conditions?.find((c) => c.type === 'Ready');
const wait: PopulationStep = { action: 'wait', message: 'restore Job to finish', requeueAfterMs: 30_000 };

describe("the Restore's status for the populator's part", () => {
  it('Restoring from the Job start, naming the Job and the claim; the start time is kept while it runs', () => {
    const started = restoreStatusFor({ action: 'startJob' }, observed({}));
    expect(started).toMatchObject({ phase: 'Restoring', jobName: JOB, startTime: '2026-11-27T12:00:00Z', target: { pvc: 'data' } });
    expect(started).toMatchObject({ observedGeneration: 2 });
    expect(ready(started)).toMatchObject({ status: 'False', reason: 'Restoring' });
    const later = restoreStatusFor(wait, observed({ restore: restore(started!), job: runningJob, now: new Date('2026-11-27T12:05:00Z') }));
    expect(later).toEqual(started);
  });

  it("the Job's counts are stored while the volume is handed over; Completed only once the claim is bound", () => {
    const collected = restoreStatusFor({ action: 'collectJob', result: ok }, observed({ job: finishedJob, jobResult: ok }));
    expect(collected).toMatchObject({
      phase: 'Restoring',
      collectedJobUID: 'j1',
      progress: { restoredFiles: 3, restoredDirs: 2, restoredBytes: 100, errors: 0 },
      ownersRestored: false,
    });
    expect(ready(collected)).toMatchObject({ status: 'False', reason: 'BindingVolume' });

    const bound = claim({ phase: 'Bound' });
    const volume = { metadata: { name: 'pv-1', annotations: { [POPULATED_FROM]: 'media/jellyfin' } } };
    const done = restoreStatusFor(
      { action: 'removeFinalizer' },
      observed({ claim: bound, restore: restore(collected!), claimVolume: volume }),
    );
    expect(done).toMatchObject({ phase: 'Completed', completionTime: '2026-11-27T12:00:00Z', target: { pvc: 'data' } });
    expect(ready(done)).toMatchObject({ status: 'True', reason: 'OwnersNotRestored' });
    // Once Completed, later passes write nothing new.
    const again = restoreStatusFor(
      { action: 'none', why: 'Bound' },
      observed({ claim: bound, restore: restore(done!), claimVolume: volume }),
    );
    expect(again).toEqual(done);
  });

  it('a failed Job: Failed with its error class as the reason, and the claim said to stay Pending', () => {
    const started = restoreStatusFor({ action: 'startJob' }, observed({}));
    const failed = restoreStatusFor(
      { action: 'collectJob', result: unreachable },
      observed({ restore: restore(started!), job: finishedJob, jobResult: unreachable }),
    );
    expect(failed).toMatchObject({ phase: 'Failed', collectedJobUID: 'j1', message: expect.stringContaining('stays Pending') });
    expect(ready(failed)).toMatchObject({ status: 'False', reason: 'Unreachable' });
    const retried = restoreStatusFor(
      { action: 'startJob' },
      observed({ restore: restore(failed!), now: new Date('2026-11-27T12:01:00Z') }),
    );
    // The retry keeps the first attempt's start, so a population failing again and again ages.
    expect(retried).toMatchObject({ phase: 'Restoring', startTime: '2026-11-27T12:00:00Z' });
    expect(retried?.completionTime).toBeUndefined();
  });

  it('an empty volume is Completed when bound, with nothing restored', () => {
    const empty: RestoreStatus = answered({ empty: true, repository: { name: 'nas' } });
    const binding = restoreStatusFor({ action: 'markPopulated', value: 'empty', with: 'r1/empty' }, observed({ restore: restore(empty) }));
    expect(ready(binding)).toMatchObject({ reason: 'BindingVolume' });
    const volume = { metadata: { name: 'pv-1', annotations: { [POPULATED_FROM]: 'media/jellyfin' } } };
    const done = restoreStatusFor(
      { action: 'releaseVolume', volume: 'pv-1', finished: true },
      observed({ claim: claim({ phase: 'Bound' }), restore: restore(binding!), claimVolume: volume }),
    );
    expect(done).toMatchObject({ phase: 'Completed' });
    expect(ready(done)).toMatchObject({ status: 'True', reason: 'RestoreCompleted', message: expect.stringContaining('empty') });
  });

  it('a claim deleted mid-way gives the Restore back to waiting for a claim', () => {
    const restoring = restoreStatusFor({ action: 'startJob' }, observed({}))!;
    const released = restoreStatusFor({ action: 'removeJob' }, observed({ claim: claim({ deleting: true }), restore: restore(restoring) }));
    expect(released).toMatchObject({ phase: 'Pending', resolved });
    expect(released?.jobName).toBeUndefined();
    expect(released?.target).toBeUndefined();
    expect(ready(released)).toMatchObject({ reason: 'WaitingForClaim' });
  });

  it("leaves alone: an unresolved Restore, another claim's restore in flight, a claim bound without us, plain waits", () => {
    expect(restoreStatusFor({ action: 'startJob' }, observed({ restore: restore({ phase: 'Pending' }) }))).toBeUndefined();
    const other = restore(answered(resolved, { phase: 'Restoring', target: { pvc: 'other' } }));
    expect(restoreStatusFor({ action: 'startJob' }, observed({ restore: other }))).toBeUndefined();
    expect(restoreStatusFor({ action: 'none', why: 'Bound' }, observed({ claim: claim({ phase: 'Bound' }) }))).toBeUndefined();
    expect(restoreStatusFor({ action: 'holdVolume', volume: 'pv-1' }, observed({}))).toBeUndefined();
  });
});

describe("kstatus of a Restore through the populator's part", () => {
  const verdict = (s: RestoreStatus | undefined) => {
    const o = { metadata: { generation: 2 }, status: s };
    expect(kstatusRuleBreaks(o)).toEqual([]);
    return kstatusOf(o);
  };
  it('Restoring and handing the volume over are InProgress; a failed Job is Failed; bound is Current', () => {
    const started = restoreStatusFor({ action: 'startJob' }, observed({}));
    expect(verdict(started)).toEqual({ status: 'InProgress', reason: 'Restoring' });
    const collected = restoreStatusFor({ action: 'collectJob', result: ok }, observed({ job: finishedJob, jobResult: ok }));
    expect(verdict(collected)).toEqual({ status: 'InProgress', reason: 'BindingVolume' });
    const failed = restoreStatusFor({ action: 'collectJob', result: unreachable }, observed({ job: finishedJob, jobResult: unreachable }));
    expect(verdict(failed)).toEqual({ status: 'Failed', reason: 'Unreachable' });
    const volume = { metadata: { name: 'pv-1', annotations: { [POPULATED_FROM]: 'media/jellyfin' } } };
    const done = restoreStatusFor(
      { action: 'removeFinalizer' },
      observed({ claim: claim({ phase: 'Bound' }), restore: restore(collected!), claimVolume: volume }),
    );
    expect(verdict(done)).toEqual({ status: 'Current' });
  });

  it('a failed Job is Stalled even where its reason alone would be progress (ExpireLimitExceeded is Pending elsewhere)', () => {
    const odd: MoverResult = { ok: false, operation: 'restore', errorClass: 'ExpireLimitExceeded', message: 'm' };
    const failed = restoreStatusFor({ action: 'collectJob', result: odd }, observed({ job: finishedJob, jobResult: odd }));
    expect(verdict(failed)).toEqual({ status: 'Failed', reason: 'ExpireLimitExceeded' });
  });
});
