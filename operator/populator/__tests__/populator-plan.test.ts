import { MOVER_REQUEST_ENV, type MoverResult } from '../../mover/mover-contract.js';
import type { RestoreObject } from '../../restore/restore-job.js';
import {
  DEFAULT_RETRY,
  desiredPrimeClaim,
  EMPTY,
  FAILURES,
  FINALIZER,
  HANDED_OVER,
  handOverPatch,
  HELD_RECLAIM_POLICY,
  holdVolumePatch,
  LAST_FAILED_JOB,
  LAST_FAILURE_TIME,
  nextAttemptAt,
  populationOutcome,
  planPopulation,
  POPULATED,
  POPULATED_FROM,
  POPULATED_WITH,
  recordFailurePatch,
  releaseVolumePatch,
  SELECTED_NODE,
  type Claim,
  type PopulationObserved,
  type PopulationStep,
  type Volume,
} from '../populator-plan.js';
import type { JobObject } from '../../jobs/mover-job.js';
import { answerOf } from '../../restore/restore-plan.js';
import { moverApprovalHash } from '../../restore/mover-approval.js';

const NOW = new Date('2026-11-27T12:00:00Z');
const UID = '0b7f6e1c-1111-2222-3333-444455556666';
const PRIME = `kopia-prime-${UID}`;
const JOB = `kopia-populate-${UID}`;

// ---- fixtures, as factories with overrides --------------------------------------------------

function claim(
  o: {
    phase?: string;
    volumeName?: string;
    finalizer?: boolean;
    deleting?: boolean;
    selectedNode?: string;
    storageClassName?: string | null;
    volumeMode?: string;
    refNamespace?: string;
    kind?: string;
  } = {},
): Claim {
  return {
    metadata: {
      name: 'data',
      namespace: 'media',
      uid: UID,
      resourceVersion: '10',
      finalizers: ['kubernetes.io/pvc-protection', ...(o.finalizer ? [FINALIZER] : [])],
      ...(o.selectedNode ? { annotations: { [SELECTED_NODE]: o.selectedNode } } : {}),
      ...(o.deleting ? { deletionTimestamp: '2026-11-27T11:59:00Z' } : {}),
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '5Gi' } },
      ...(o.storageClassName === null ? {} : { storageClassName: o.storageClassName ?? 'fast' }),
      ...(o.volumeMode ? { volumeMode: o.volumeMode } : {}),
      ...(o.volumeName ? { volumeName: o.volumeName } : {}),
      dataSourceRef: {
        apiGroup: 'kopia.io',
        kind: o.kind ?? 'Restore',
        name: 'jellyfin',
        ...(o.refNamespace ? { namespace: o.refNamespace } : {}),
      },
    },
    status: { phase: o.phase ?? 'Pending' },
  };
}

/** What the operator approves for the default mover and Repository nas (no privileged volume). */
const APPROVED_DEFAULT = moverApprovalHash({ repository: { kind: 'Repository', name: 'nas' } });

function restore(
  o: {
    resolved?: 'snapshot' | 'empty' | 'failed';
    /** Whose answer it is (default: this claim's). */
    forUID?: string;
    phase?: string;
    target?: 'pvc';
    collectedJobUID?: string;
    ready?: [string, string];
    /** The operator's approval of its mover settings (default: of these, at this generation). */
    moverApproval?: { hash: string; generation: number } | null;
  } = {},
) {
  const answer =
    o.resolved === 'empty'
      ? { empty: true, repository: { name: 'nas' } }
      : o.resolved === 'snapshot'
        ? { snapshotID: 'k1234', repository: { name: 'nas' } }
        : o.resolved === 'failed'
          ? { failed: { reason: 'SnapshotMissing', message: 'kopia lists no snapshot' } }
          : undefined;
  const uid = o.forUID ?? UID;
  return {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Restore',
    metadata: { name: 'jellyfin', namespace: 'media', uid: 'r1', generation: 1 },
    spec: { source: { fromConfig: { name: 'jellyfin' } }, target: o.target === 'pvc' ? { pvc: { name: 'x' } } : { populator: {} } },
    status: {
      ...(o.phase ? { phase: o.phase } : {}),
      ...(answer
        ? { claims: [{ claimName: uid === UID ? 'data' : 'other', claimUID: uid, resolvedAt: '2026-11-27T11:00:00Z', ...answer }] }
        : {}),
      ...(answer && !answer.failed ? { resolved: answer } : {}),
      ...(o.collectedJobUID ? { collectedJobUID: o.collectedJobUID } : {}),
      ...(o.ready ? { conditions: [{ type: 'Ready', status: 'False', reason: o.ready[0], message: o.ready[1] }] } : {}),
      ...(o.moverApproval === null ? {} : { moverApproval: o.moverApproval ?? { hash: APPROVED_DEFAULT, generation: 1 } }),
    },
  } as unknown as RestoreObject;
}

function prime(
  o: {
    phase?: string;
    volumeName?: string;
    annotations?: Record<string, string>;
    deleting?: boolean;
  } = {},
): Claim {
  return {
    metadata: {
      name: PRIME,
      namespace: 'media',
      uid: 'p1',
      annotations: o.annotations ?? {},
      ...(o.deleting ? { deletionTimestamp: '2026-11-27T11:59:00Z' } : {}),
    },
    spec: { volumeName: o.volumeName ?? (o.phase === 'Pending' ? undefined : 'pv-1') },
    status: { phase: o.phase ?? 'Bound' },
  };
}

function volume(o: { name?: string; claimRef?: 'prime' | 'claim'; held?: string; populatedFrom?: boolean; reclaim?: string } = {}): Volume {
  return {
    metadata: {
      name: o.name ?? 'pv-1',
      resourceVersion: '7',
      annotations: {
        ...(o.held ? { [HELD_RECLAIM_POLICY]: o.held } : {}),
        ...(o.populatedFrom ? { [POPULATED_FROM]: 'media/jellyfin' } : {}),
      },
    },
    spec: {
      persistentVolumeReclaimPolicy: o.reclaim ?? (o.held ? 'Retain' : 'Delete'),
      claimRef: o.claimRef === 'claim' ? { name: 'data', namespace: 'media', uid: UID } : { name: PRIME, namespace: 'media', uid: 'p1' },
    },
  };
}

/** The prime's marks once the Job restored this claim's answer (snapshot k1234 of Restore r1). */
const POPULATED_K1234 = { [POPULATED]: 'j1', [POPULATED_WITH]: 'r1/snapshot:k1234' };

function job(o: { finished?: 'Complete' | 'Failed'; deleting?: boolean; snapshotID?: string } = {}): JobObject {
  const request = { operation: 'restore', snapshotID: o.snapshotID ?? 'k1234' };
  return {
    metadata: { name: JOB, namespace: 'media', uid: 'j1', ...(o.deleting ? { deletionTimestamp: '2026-11-27T11:59:00Z' } : {}) },
    spec: { template: { spec: { containers: [{ name: 'mover', env: [{ name: MOVER_REQUEST_ENV, value: JSON.stringify(request) }] }] } } },
    status: o.finished ? { conditions: [{ type: o.finished, status: 'True' }] } : {},
  };
}

const restored: MoverResult = {
  ok: true,
  operation: 'restore',
  restored: { files: 3, dirs: 2, bytes: 100, errors: 0, ownersRestored: false },
};
const failed: MoverResult = { ok: false, operation: 'restore', errorClass: 'Unreachable', message: 'dial tcp: connection refused' };

/** What the populator observes; the claim's answer is read from the Restore's status as populator.ts does. */
const observed = (o: Partial<PopulationObserved> = {}): PopulationObserved => {
  const given: PopulationObserved = {
    claim: claim(),
    restore: restore({ resolved: 'snapshot' }),
    storageClass: { metadata: { name: 'fast' }, volumeBindingMode: 'Immediate' },
    repository: { metadata: { name: 'nas', namespace: 'media' }, spec: { backend: {} } } as never,
    now: NOW,
    retry: DEFAULT_RETRY,
    ...o,
  };
  return { ...given, answer: 'answer' in o ? o.answer : answerOf(given.restore?.status, given.claim.metadata.uid!) };
};

// The normal path, stage by stage, as a restarted populator would find it at each point.
const stages: { name: string; given: Partial<PopulationObserved>; expect: Record<string, unknown> }[] = [
  { name: 'a resolved Restore: the finalizer first', given: {}, expect: { action: 'addFinalizer' } },
  {
    name: 'then the prime claim',
    given: { claim: claim({ finalizer: true }) },
    expect: { action: 'createPrime', event: { reason: 'PopulatorPVCPrimeCreated' } },
  },
  {
    name: 'then the restore Job',
    given: { claim: claim({ finalizer: true }), prime: prime({ phase: 'Pending' }) },
    expect: { action: 'startJob', event: { reason: 'PopulatorCreated' } },
  },
  {
    name: 'the Job runs',
    given: { claim: claim({ finalizer: true }), prime: prime(), job: job() },
    expect: { action: 'wait' },
  },
  {
    name: 'the Job succeeded: its result into the Restore first',
    given: { claim: claim({ finalizer: true }), prime: prime(), job: job({ finished: 'Complete' }), jobResult: restored },
    expect: { action: 'collectJob', result: restored },
  },
  {
    name: 'collected: the prime claim is marked populated',
    given: {
      claim: claim({ finalizer: true }),
      restore: restore({ resolved: 'snapshot', collectedJobUID: 'j1' }),
      prime: prime(),
      job: job({ finished: 'Complete' }),
      jobResult: restored,
    },
    expect: { action: 'markPopulated', value: 'j1', with: 'r1/snapshot:k1234' },
  },
  {
    name: 'populated: the Job goes',
    given: { claim: claim({ finalizer: true }), prime: prime({ annotations: { ...POPULATED_K1234 } }), job: job({ finished: 'Complete' }) },
    expect: { action: 'removeJob' },
  },
  {
    name: 'the PV is held at Retain before anything else',
    given: { claim: claim({ finalizer: true }), prime: prime({ annotations: { ...POPULATED_K1234 } }), primeVolume: volume() },
    expect: { action: 'holdVolume', volume: 'pv-1' },
  },
  {
    name: 'held: handed over to the claim',
    given: {
      claim: claim({ finalizer: true }),
      prime: prime({ annotations: { ...POPULATED_K1234 } }),
      primeVolume: volume({ held: 'Delete' }),
    },
    expect: { action: 'handOver', volume: 'pv-1' },
  },
  {
    name: 'handed over: the prime claim is nudged so the PV controller marks it Lost at once',
    given: {
      claim: claim({ finalizer: true }),
      prime: prime({ annotations: { ...POPULATED_K1234 } }),
      claimVolume: volume({ claimRef: 'claim', held: 'Delete', populatedFrom: true }),
    },
    expect: { action: 'nudgePrime', volume: 'pv-1' },
  },
  {
    name: 'nudged: waiting for Lost',
    given: {
      claim: claim({ finalizer: true }),
      prime: prime({ annotations: { ...POPULATED_K1234, [HANDED_OVER]: 'pv-1' } }),
      claimVolume: volume({ claimRef: 'claim', held: 'Delete', populatedFrom: true }),
    },
    expect: { action: 'wait', requeueAfterMs: 2000 },
  },
  {
    name: 'the prime claim is Lost: it may go',
    given: {
      claim: claim({ finalizer: true }),
      prime: prime({ phase: 'Lost', annotations: { ...POPULATED_K1234, [HANDED_OVER]: 'pv-1' } }),
      claimVolume: volume({ claimRef: 'claim', held: 'Delete', populatedFrom: true }),
    },
    expect: { action: 'deletePrime' },
  },
  {
    name: 'bound before the prime was Lost: still only once Lost',
    given: {
      claim: claim({ finalizer: true, phase: 'Bound', volumeName: 'pv-1' }),
      prime: prime({ annotations: { ...POPULATED_K1234, [HANDED_OVER]: 'pv-1' } }),
      claimVolume: volume({ claimRef: 'claim', held: 'Delete', populatedFrom: true }),
    },
    expect: { action: 'wait' },
  },
  {
    name: 'prime gone, claim not bound yet: waiting for the binder',
    given: { claim: claim({ finalizer: true }), claimVolume: volume({ claimRef: 'claim', held: 'Delete', populatedFrom: true }) },
    expect: { action: 'wait', requeueAfterMs: 2000 },
  },
  {
    name: 'bound: the reclaim policy goes back, PopulatorFinished',
    given: {
      claim: claim({ finalizer: true, phase: 'Bound', volumeName: 'pv-1' }),
      claimVolume: volume({ claimRef: 'claim', held: 'Delete', populatedFrom: true }),
    },
    expect: { action: 'releaseVolume', volume: 'pv-1', finished: true, event: { reason: 'PopulatorFinished' } },
  },
  {
    name: 'then the finalizer',
    given: {
      claim: claim({ finalizer: true, phase: 'Bound', volumeName: 'pv-1' }),
      claimVolume: volume({ claimRef: 'claim', populatedFrom: true }),
    },
    expect: { action: 'removeFinalizer' },
  },
  {
    name: 'done',
    given: { claim: claim({ phase: 'Bound', volumeName: 'pv-1' }), claimVolume: volume({ claimRef: 'claim', populatedFrom: true }) },
    expect: { action: 'none' },
  },
];

describe('the stages of one claim', () => {
  it.each(stages.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    expect(planPopulation(observed(c.given))).toMatchObject(c.expect);
  });
});

describe('waiting, never populating from a guess', () => {
  const cases: { name: string; given: Partial<PopulationObserved>; expect: Record<string, unknown> }[] = [
    {
      name: 'the Restore does not exist',
      given: { restore: undefined },
      expect: { action: 'wait', event: { type: 'Warning', reason: 'PopulatorDataSourceNotFound' } },
    },
    {
      name: 'the Restore restores into an existing claim',
      given: { restore: restore({ resolved: 'snapshot', target: 'pvc' }) },
      expect: { action: 'wait', event: { type: 'Warning', reason: 'PopulatorDataSourceInvalid' } },
    },
    {
      name: 'the Restore is not resolved (repository not Ready): its reason is passed on, and nothing is made',
      given: { restore: restore({ phase: 'Pending', ready: ['RepositoryNotReady', 'Repository nas is not Ready (WrongPassword)'] }) },
      expect: {
        action: 'wait',
        event: { type: 'Normal', reason: 'PopulatorWaitingForRestore', message: expect.stringContaining('WrongPassword') },
      },
    },
    {
      name: 'the Restore failed for this claim (snapshot missing, onMissingSnapshot Fail): the claim stays Pending',
      given: { restore: restore({ resolved: 'failed', phase: 'Failed' }) },
      expect: {
        action: 'wait',
        event: { type: 'Warning', reason: 'PopulatorRestoreFailed', message: expect.stringContaining('SnapshotMissing') },
      },
    },
    {
      name: 'WaitForFirstConsumer without a selected node',
      given: { storageClass: { metadata: { name: 'fast' }, volumeBindingMode: 'WaitForFirstConsumer' } },
      expect: { action: 'wait' },
    },
    {
      name: 'a Block claim',
      given: { claim: claim({ volumeMode: 'Block' }) },
      expect: { action: 'wait', event: { reason: 'PopulatorDataSourceInvalid' } },
    },
    {
      name: 'a claim without a storage class',
      given: { claim: claim({ storageClassName: null }), storageClass: undefined },
      expect: { action: 'wait', event: { reason: 'PopulatorDataSourceInvalid' } },
    },
    {
      name: 'a Restore in another namespace',
      given: { claim: claim({ refNamespace: 'other' }) },
      expect: { action: 'wait', event: { reason: 'PopulatorDataSourceInvalid' } },
    },
    {
      name: 'the pinned repository is gone',
      given: { claim: claim({ finalizer: true }), prime: prime(), repository: undefined },
      expect: { action: 'wait', event: { type: 'Warning' } },
    },
    { name: 'a claim naming another kind', given: { claim: claim({ kind: 'Backup' }) }, expect: { action: 'none' } },
  ];
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    expect(planPopulation(observed(c.given))).toMatchObject(c.expect);
  });

  it('WaitForFirstConsumer with a selected node goes on', () => {
    const given = observed({
      claim: claim({ selectedNode: 'node-a' }),
      storageClass: { metadata: { name: 'fast' }, volumeBindingMode: 'WaitForFirstConsumer' },
    });
    expect(planPopulation(given)).toMatchObject({ action: 'addFinalizer' });
  });
});

describe("a claim is filled only from its own answer, never another claim's", () => {
  const ready = { claim: claim({ finalizer: true }), prime: prime() };

  it("another claim's empty answer does not make this claim empty: it waits for its own", () => {
    const given = observed({ ...ready, restore: restore({ resolved: 'empty', forUID: 'an-earlier-claim' }) });
    expect(planPopulation(given)).toMatchObject({ action: 'wait', event: { reason: 'PopulatorWaitingForRestore' } });
  });

  it("another claim's snapshot is not restored into this claim", () => {
    const given = observed({
      ...ready,
      prime: prime({ phase: 'Pending' }),
      restore: restore({ resolved: 'snapshot', forUID: 'an-earlier-claim' }),
    });
    expect(planPopulation(given)).toMatchObject({ action: 'wait' });
  });

  it('a top-level resolved from an older operator is not an answer for this claim', () => {
    const old = restore({ phase: 'Completed' });
    old.status!.resolved = { empty: true, repository: { name: 'nas' } };
    expect(planPopulation(observed({ ...ready, restore: old }))).toMatchObject({ action: 'wait' });
  });
});

describe("only data of the claim's own answer is handed over", () => {
  const finished = { claim: claim({ finalizer: true }), job: job({ finished: 'Complete' }), jobResult: restored };

  it('a Job that restored another snapshot than the answer (an older pin): the prime goes, and the restore starts over', () => {
    const given = observed({
      ...finished,
      restore: restore({ resolved: 'snapshot', collectedJobUID: 'j1' }),
      prime: prime(),
      job: job({ finished: 'Complete', snapshotID: 'kOLD' }),
    });
    expect(planPopulation(given)).toMatchObject({ action: 'deletePrime', event: { type: 'Warning', reason: 'PopulatorPrimeLost' } });
  });

  it('a prime an older populator marked populated (empty, no record of the answer) is never handed over', () => {
    const given = observed({
      claim: claim({ finalizer: true }),
      prime: prime({ annotations: { [POPULATED]: EMPTY } }),
      primeVolume: volume(),
    });
    expect(planPopulation(given)).toMatchObject({ action: 'deletePrime' });
  });

  it('a prime populated for the answer of another Restore of the same name is never handed over', () => {
    const given = observed({
      claim: claim({ finalizer: true }),
      prime: prime({ annotations: { [POPULATED]: 'j1', [POPULATED_WITH]: 'r0/snapshot:k1234' } }),
      primeVolume: volume({ held: 'Delete' }),
    });
    expect(planPopulation(given)).toMatchObject({ action: 'deletePrime' });
  });

  it('without an answer yet, a populated prime waits', () => {
    const given = observed({
      claim: claim({ finalizer: true }),
      restore: restore({ resolved: 'snapshot', forUID: 'another-claim' }),
      prime: prime({ annotations: POPULATED_K1234 }),
      primeVolume: volume(),
    });
    expect(planPopulation(given)).toMatchObject({ action: 'wait' });
  });
});

describe('an empty volume only when the Restore says so', () => {
  it('resolved empty: no Job; the bound prime is marked populated as it is', () => {
    const given = observed({ claim: claim({ finalizer: true }), restore: restore({ resolved: 'empty' }), prime: prime() });
    expect(planPopulation(given)).toMatchObject({ action: 'markPopulated', value: EMPTY, event: { reason: 'PopulatorCreated' } });
  });

  it('resolved empty: waits for the prime claim to bind', () => {
    const given = observed({
      claim: claim({ finalizer: true }),
      restore: restore({ resolved: 'empty' }),
      prime: prime({ phase: 'Pending' }),
    });
    expect(planPopulation(given)).toMatchObject({ action: 'wait' });
  });
});

describe('a failed restore Job', () => {
  const failedJob = { claim: claim({ finalizer: true }), prime: prime(), job: job({ finished: 'Failed' as const }), jobResult: failed };

  it('is collected into the Restore with a Warning Event', () => {
    expect(planPopulation(observed(failedJob))).toMatchObject({
      action: 'collectJob',
      result: failed,
      event: { type: 'Warning', reason: 'PopulatorFailed', message: expect.stringContaining('connection refused') },
    });
  });

  it('is counted on the prime claim, once', () => {
    const collected = { ...failedJob, restore: restore({ resolved: 'snapshot', collectedJobUID: 'j1', phase: 'Failed' }) };
    expect(planPopulation(observed(collected))).toMatchObject({ action: 'recordFailure' });
    const counted = {
      ...collected,
      prime: prime({ annotations: { [FAILURES]: '1', [LAST_FAILED_JOB]: 'j1', [LAST_FAILURE_TIME]: NOW.toISOString() } }),
    };
    expect(planPopulation(observed(counted))).toMatchObject({ action: 'removeJob' });
  });

  it("with the Restore's status following another claim, is told in an Event only and counted", () => {
    const busy = restore({ resolved: 'snapshot', phase: 'Restoring' });
    busy.status!.target = { pvc: 'other' };
    expect(planPopulation(observed({ ...failedJob, restore: busy }))).toMatchObject({ action: 'recordFailure' });
  });

  it('a success without counts is a failure: the volume is never handed out', () => {
    const given = observed({ ...failedJob, job: job({ finished: 'Complete' }), jobResult: { ok: true, operation: 'restore' } });
    expect(planPopulation(given)).toMatchObject({ action: 'collectJob', event: { reason: 'PopulatorFailed' } });
  });

  it('is retried after a backoff that doubles', () => {
    const after = (failures: number, ms: number) =>
      observed({
        claim: claim({ finalizer: true }),
        restore: restore({ resolved: 'snapshot', collectedJobUID: 'j1', phase: 'Failed' }),
        prime: prime({ annotations: { [FAILURES]: String(failures), [LAST_FAILED_JOB]: 'j1', [LAST_FAILURE_TIME]: NOW.toISOString() } }),
        now: new Date(NOW.getTime() + ms),
      });
    expect(planPopulation(after(1, 5_000))).toMatchObject({ action: 'wait', requeueAfterMs: 5_000 });
    expect(planPopulation(after(1, 10_000))).toMatchObject({ action: 'startJob' });
    expect(planPopulation(after(3, 30_000))).toMatchObject({ action: 'wait', requeueAfterMs: 10_000 });
    expect(planPopulation(after(20, 5 * 60_000))).toMatchObject({ action: 'startJob' });
  });

  it('a finished Job whose Pod is not seen yet is waited for briefly, never collected without a result', () => {
    expect(planPopulation(observed({ ...failedJob, jobResult: undefined }))).toMatchObject({ action: 'wait', requeueAfterMs: 1000 });
  });

  it('a Job being deleted is waited for, never adopted', () => {
    expect(planPopulation(observed({ ...failedJob, job: job({ finished: 'Failed', deleting: true }) }))).toMatchObject({ action: 'wait' });
  });
});

describe('the user deletes the claim mid-way', () => {
  const deleted = claim({ finalizer: true, deleting: true });
  const cases: { name: string; given: Partial<PopulationObserved>; expect: Record<string, unknown> }[] = [
    {
      name: 'a held PV gets its reclaim policy back first, so it goes with its claim',
      given: { claim: deleted, prime: prime(), primeVolume: volume({ held: 'Delete' }), job: job() },
      expect: { action: 'releaseVolume', volume: 'pv-1', finished: false },
    },
    {
      name: 'also one already handed over',
      given: { claim: deleted, claimVolume: volume({ claimRef: 'claim', held: 'Delete', populatedFrom: true }) },
      expect: { action: 'releaseVolume', volume: 'pv-1', finished: false },
    },
    {
      name: 'then the running Job',
      given: { claim: deleted, prime: prime(), primeVolume: volume(), job: job() },
      expect: { action: 'removeJob' },
    },
    {
      name: 'then the prime claim',
      given: { claim: deleted, prime: prime(), job: job({ deleting: true }) },
      expect: { action: 'deletePrime' },
    },
    {
      name: 'the finalizer stays until both are gone',
      given: { claim: deleted, prime: prime({ deleting: true }) },
      expect: { action: 'wait' },
    },
    { name: 'then the finalizer goes', given: { claim: deleted }, expect: { action: 'removeFinalizer' } },
    { name: 'a claim we never touched is not held up', given: { claim: claim({ deleting: true }) }, expect: { action: 'none' } },
  ];
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    expect(planPopulation(observed(c.given))).toMatchObject(c.expect);
  });
});

describe('a claim bound without us', () => {
  it('is left alone', () => {
    expect(planPopulation(observed({ claim: claim({ phase: 'Bound', volumeName: 'pv-9' }) }))).toMatchObject({ action: 'none' });
  });

  it('lets go of a prime of another volume: its held PV back to Delete, then the prime', () => {
    const bound = claim({ phase: 'Bound', volumeName: 'pv-9', finalizer: true });
    expect(planPopulation(observed({ claim: bound, prime: prime(), primeVolume: volume({ held: 'Delete' }) }))).toMatchObject({
      action: 'releaseVolume',
      finished: false,
    });
    expect(planPopulation(observed({ claim: bound, prime: prime(), primeVolume: volume() }))).toMatchObject({ action: 'deletePrime' });
  });

  it('waits for a PV someone else pre-bound to it', () => {
    expect(planPopulation(observed({ claim: claim({ finalizer: true }), claimVolume: volume({ claimRef: 'claim' }) }))).toMatchObject({
      action: 'wait',
    });
  });
});

describe('what the steps write', () => {
  it('the prime claim copies class, modes, size and the selected node, without a data source, owned by the claim', () => {
    const c = claim({ selectedNode: 'node-a', volumeMode: 'Filesystem' });
    const p = desiredPrimeClaim(c);
    expect(p.metadata).toMatchObject({
      name: PRIME,
      namespace: 'media',
      annotations: { [SELECTED_NODE]: 'node-a' },
      ownerReferences: [{ kind: 'PersistentVolumeClaim', name: 'data', uid: UID, controller: true }],
    });
    expect(p.spec).toEqual({
      storageClassName: 'fast',
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '5Gi' } },
      volumeMode: 'Filesystem',
    });
  });

  it('holding remembers the policy; releasing puts it back', () => {
    expect(holdVolumePatch(volume({ reclaim: 'Delete' }))).toEqual({
      metadata: { annotations: { [HELD_RECLAIM_POLICY]: 'Delete' }, resourceVersion: '7' },
      spec: { persistentVolumeReclaimPolicy: 'Retain' },
    });
    expect(releaseVolumePatch(volume({ held: 'Recycle' }))).toEqual({
      metadata: { annotations: { [HELD_RECLAIM_POLICY]: null }, resourceVersion: '7' },
      spec: { persistentVolumeReclaimPolicy: 'Recycle' },
    });
  });

  it('the hand-over names the claim by namespace, name, UID and resourceVersion, and the Restore', () => {
    expect(handOverPatch(volume(), claim())).toEqual({
      metadata: { annotations: { [POPULATED_FROM]: 'media/jellyfin' }, resourceVersion: '7' },
      spec: {
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: 'media', name: 'data', uid: UID, resourceVersion: '10' },
      },
    });
  });

  it('failures are counted with the Job and the time, and give the next attempt', () => {
    const patch = recordFailurePatch(prime({ annotations: { [FAILURES]: '2' } }), job(), NOW) as {
      metadata: { annotations: Record<string, string> };
    };
    expect(patch.metadata.annotations).toEqual({ [FAILURES]: '3', [LAST_FAILED_JOB]: 'j1', [LAST_FAILURE_TIME]: NOW.toISOString() });
    expect(nextAttemptAt(prime({ annotations: patch.metadata.annotations }), DEFAULT_RETRY)).toEqual(new Date(NOW.getTime() + 40_000));
    expect(nextAttemptAt(prime(), DEFAULT_RETRY)).toBeUndefined();
  });
});

describe('a prime claim lost before the hand-over', () => {
  // The PV still names the old prime (same name, its UID): Released, and Retain would keep it forever.
  const stray = () => volume({ name: 'pv-old', held: 'Delete' });
  const releasesStray = {
    action: 'releaseVolume',
    volume: 'pv-old',
    finished: false,
    event: { type: 'Warning', reason: 'PopulatorPrimeLost' },
  };

  it('its held PV gets its reclaim policy back before a new prime is made', () => {
    expect(planPopulation(observed({ claim: claim({ finalizer: true }), strayVolumes: [stray()] }))).toMatchObject(releasesStray);
  });

  it('also once a new prime of the same name exists', () => {
    const given = observed({
      claim: claim({ finalizer: true }),
      prime: { ...prime({ phase: 'Pending' }), metadata: { ...prime().metadata, uid: 'p2' } },
      strayVolumes: [stray()],
    });
    expect(planPopulation(given)).toMatchObject(releasesStray);
  });

  it('also when the user deletes the claim: the finalizer does not go before it', () => {
    expect(planPopulation(observed({ claim: claim({ finalizer: true, deleting: true }), strayVolumes: [stray()] }))).toMatchObject(
      releasesStray,
    );
  });

  it('also when the claim was bound meanwhile', () => {
    const given = observed({ claim: claim({ finalizer: true, phase: 'Bound', volumeName: 'pv-9' }), strayVolumes: [stray()] });
    expect(planPopulation(given)).toMatchObject(releasesStray);
  });

  it('a PV no longer held is left to the PV controller', () => {
    const given = observed({ claim: claim({ finalizer: true }), strayVolumes: [volume({ name: 'pv-old' })] });
    expect(planPopulation(given)).toMatchObject({ action: 'createPrime' });
  });

  it('the prime claim is gone after a successful Job: the Job goes and the population starts over', () => {
    const given = {
      claim: claim({ finalizer: true }),
      restore: restore({ resolved: 'snapshot', collectedJobUID: 'j1' }),
      job: job({ finished: 'Complete' }),
      jobResult: restored,
    };
    expect(planPopulation(observed(given))).toMatchObject({
      action: 'removeJob',
      event: { type: 'Warning', reason: 'PopulatorPrimeLost' },
    });
    expect(planPopulation(observed({ ...given, prime: prime({ deleting: true }) }))).toMatchObject({ action: 'removeJob' });
    // Then, the Job gone, a new prime claim.
    expect(planPopulation(observed({ ...given, job: undefined, jobResult: undefined }))).toMatchObject({ action: 'createPrime' });
  });
});

describe('a restore Job runs only mover settings the operator approved', () => {
  const ready = { claim: claim({ finalizer: true }), prime: prime({ phase: 'Pending' }) };
  /** The Restore as the tenant edited it after the operator's check: generation 2, root mover. */
  const edited = (moverApproval?: { hash: string; generation: number } | null) => {
    const r = restore({ resolved: 'snapshot', moverApproval });
    r.metadata.generation = 2;
    r.spec.mover = { securityContext: { runAsUser: 0 } };
    return r;
  };

  it('spec.mover edited to root after the check: no Job until the operator has looked at it', () => {
    const step = planPopulation(observed({ ...ready, restore: edited() }));
    expect(step).toMatchObject({ action: 'wait', event: { type: 'Normal', reason: 'PopulatorMoverNotApproved' } });
    expect(step.event!.message).toContain('generation 2');
  });

  it('the operator withdrew its approval (refused): a Warning, no Job', () => {
    const step = planPopulation(observed({ ...ready, restore: edited(null) }));
    expect(step).toMatchObject({ action: 'wait', event: { type: 'Warning', reason: 'PopulatorMoverNotApproved' } });
    expect(step.event!.message).toContain('spec.mover and Repository nas');
  });

  it('approved at this generation, but for other settings (another repository, volume or mover): no Job', () => {
    const other = moverApprovalHash({ repository: { kind: 'Repository', name: 'elsewhere' } });
    const step = planPopulation(observed({ ...ready, restore: edited({ hash: other, generation: 2 }) }));
    expect(step).toMatchObject({ action: 'wait', event: { type: 'Warning', reason: 'PopulatorMoverNotApproved' } });
  });

  it('a namespaced Repository moved to a node directory after the check: no Job', () => {
    const repository = {
      metadata: { name: 'nas', namespace: 'media' },
      spec: { backend: { filesystem: { path: '/', volume: { hostPath: { path: '/' } } } } },
    } as never;
    expect(planPopulation(observed({ ...ready, repository }))).toMatchObject({
      action: 'wait',
      event: { reason: 'PopulatorMoverNotApproved' },
    });
  });

  it('approved exactly these settings, root included: the Job starts', () => {
    const hash = moverApprovalHash({ mover: { securityContext: { runAsUser: 0 } }, repository: { kind: 'Repository', name: 'nas' } });
    expect(planPopulation(observed({ ...ready, restore: edited({ hash, generation: 2 }) }))).toMatchObject({ action: 'startJob' });
  });

  it('a ClusterRepository that no longer lists the namespace: no Job, whatever the approval said', () => {
    const r = restore({ resolved: 'snapshot' });
    r.status!.claims![0].repository = { kind: 'ClusterRepository', name: 'shared' };
    r.status!.moverApproval = { hash: moverApprovalHash({ repository: { kind: 'ClusterRepository', name: 'shared' } }), generation: 1 };
    const shared = (names: string[]) => ({ metadata: { name: 'shared' }, spec: { backend: {}, allowedNamespaces: { names } } }) as never;
    expect(planPopulation(observed({ ...ready, restore: r, repository: shared(['media']) }))).toMatchObject({ action: 'startJob' });
    const step = planPopulation(observed({ ...ready, restore: r, repository: shared(['other']) }));
    expect(step).toMatchObject({ action: 'wait', event: { type: 'Warning', reason: 'PopulatorMoverNotApproved' } });
    expect(step.event!.message).toContain('does not allow namespace media');
  });
});

describe('population outcomes, as kopia_populations_total counts them', () => {
  const created = (): Claim => {
    const c = claim({ phase: 'Bound', finalizer: true });
    return { ...c, metadata: { ...c.metadata, creationTimestamp: '2026-11-27T11:58:00Z' } };
  };
  const finished = { type: 'Normal' as const, reason: 'PopulatorFinished', message: 'populated' };
  const restoreFailed = { type: 'Warning' as const, reason: 'PopulatorRestoreFailed', message: 'failed' };

  it('the volume handed over with its data: Succeeded, timed from the claim’s creation', () => {
    const step: PopulationStep = { action: 'releaseVolume', volume: 'pv-1', finished: true, event: finished };
    expect(populationOutcome(step, observed({ claim: created() }), true)).toEqual({
      outcome: 'Succeeded',
      reason: 'PopulatorFinished',
      seconds: 120,
    });
  });

  it('a failed restore Job, recorded once on the prime claim: Retried, by the mover’s error class', () => {
    expect(populationOutcome({ action: 'recordFailure' }, observed({ claim: created(), jobResult: failed }), false)).toEqual({
      outcome: 'Retried',
      reason: 'Unreachable',
    });
  });

  it('a claim whose answer failed: Failed with the answer’s reason, when told (once per process), not on later passes', () => {
    const step: PopulationStep = { action: 'wait', message: 'failed', requeueAfterMs: 30_000, event: restoreFailed };
    const o = observed({
      claim: created(),
      answer: { claimUID: UID, claimName: 'data', failed: { reason: 'SnapshotMissing', message: 'none' } } as never,
    });
    expect(populationOutcome(step, o, true)).toEqual({ outcome: 'Failed', reason: 'SnapshotMissing', seconds: 120 });
    expect(populationOutcome(step, o, false)).toBeUndefined();
  });

  it.each<PopulationStep>([
    { action: 'releaseVolume', volume: 'pv-1', finished: false },
    { action: 'markPopulated', value: 'j1', with: 'r1/snapshot:k1' },
    { action: 'wait', message: 'Job to finish', requeueAfterMs: 30_000 },
    { action: 'collectJob', result: failed, event: { type: 'Warning', reason: 'PopulatorFailed', message: 'failed' } },
  ])('no outcome for $action', (step) => {
    expect(populationOutcome(step, observed({ claim: created(), jobResult: failed }), true)).toBeUndefined();
  });
});
