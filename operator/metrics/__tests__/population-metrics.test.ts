import type { JobObject } from '../../jobs/mover-job.js';
import type { MoverResult } from '../../mover/mover-contract.js';
import {
  DEFAULT_RETRY,
  FAILURES,
  FINALIZER,
  LAST_FAILED_JOB,
  LAST_FAILURE_TIME,
  type Claim,
  type PopulationObserved,
} from '../../populator/populator-plan.js';
import type { RestoreObject } from '../../restore/restore-job.js';
import { claimsWaitingSeries, claimWaitReason } from '../population-metrics.js';

const NOW = new Date('2027-06-07T12:00:00Z');
const UID = '0b7f6e1c-1111-2222-3333-444455556666';

const claim = (o: { phase?: string; deleting?: boolean; namespace?: string } = {}): Claim => ({
  metadata: {
    name: 'data',
    namespace: o.namespace ?? 'media',
    uid: UID,
    finalizers: [FINALIZER],
    ...(o.deleting ? { deletionTimestamp: '2027-06-07T11:59:00Z' } : {}),
  },
  spec: { storageClassName: 'fast', dataSourceRef: { apiGroup: 'kopia.io', kind: 'Restore', name: 'jellyfin' } },
  status: { phase: o.phase ?? 'Pending' },
});
const answer = { claimName: 'data', claimUID: UID, resolvedAt: '2027-06-07T11:00:00Z', snapshotID: 'k1234', repository: { name: 'nas' } };
const restore = {
  metadata: { name: 'jellyfin', namespace: 'media', uid: 'r1', generation: 1 },
  spec: { source: { fromConfig: { name: 'jellyfin' } }, target: { populator: {} } },
  status: { phase: 'Pending', claims: [answer] },
} as unknown as RestoreObject;
const prime = (annotations: Record<string, string> = {}): Claim => ({
  metadata: { name: `kopia-prime-${UID}`, namespace: 'media', uid: 'p1', annotations },
  spec: { volumeName: 'pv-1' },
  status: { phase: 'Bound' },
});
const job = (finished?: 'Complete' | 'Failed'): JobObject => ({
  metadata: { name: `kopia-populate-${UID}`, namespace: 'media', uid: 'j1' },
  spec: {},
  status: finished ? { conditions: [{ type: finished, status: 'True' }] } : { active: 1 },
});
const failed: MoverResult = { ok: false, operation: 'restore', errorClass: 'Unreachable', message: 'dial tcp: connection refused' };

const observed = (o: Partial<PopulationObserved> = {}): PopulationObserved => ({
  claim: claim(),
  restore,
  answer,
  storageClass: { metadata: { name: 'fast' }, volumeBindingMode: 'Immediate' },
  now: NOW,
  retry: DEFAULT_RETRY,
  ...o,
});

describe('why a claim of the populator waits', () => {
  const cases: { name: string; given: Partial<PopulationObserved>; expect: string | undefined }[] = [
    { name: 'its Restore does not exist', given: { restore: undefined, answer: undefined }, expect: 'PopulatorDataSourceNotFound' },
    { name: 'its Restore has not answered it', given: { answer: undefined }, expect: 'PopulatorWaitingForRestore' },
    {
      name: 'its Restore failed for it',
      given: { answer: { ...answer, snapshotID: undefined, failed: { reason: 'SnapshotMissing', message: 'none' } } },
      expect: 'PopulatorRestoreFailed',
    },
    {
      name: 'no pod uses it and its class waits for one',
      given: { storageClass: { metadata: { name: 'fast' }, volumeBindingMode: 'WaitForFirstConsumer' } },
      expect: 'WaitingForFirstConsumer',
    },
    { name: 'its prime claim is being made', given: {}, expect: 'Provisioning' },
    { name: 'the restore Job runs', given: { prime: prime(), job: job() }, expect: 'Restoring' },
    {
      name: 'the restore Job failed, its result not yet recorded',
      given: { prime: prime(), job: job('Failed'), jobResult: failed },
      expect: 'PopulatorFailed',
    },
    {
      name: 'the last restore Job failed and the next waits out its backoff',
      given: { prime: prime({ [FAILURES]: '2', [LAST_FAILED_JOB]: 'j0', [LAST_FAILURE_TIME]: '2027-06-07T11:59:50Z' }) },
      expect: 'PopulatorFailed',
    },
    {
      name: 'the data is in and the volume is handed over',
      given: { prime: prime({ 'kopia.io/populated': 'j1' }) },
      expect: 'BindingVolume',
    },
    { name: 'it is Bound', given: { claim: claim({ phase: 'Bound' }) }, expect: undefined },
    { name: 'it is being deleted', given: { claim: claim({ deleting: true }) }, expect: undefined },
    { name: 'it names no Restore', given: { claim: { ...claim(), spec: { storageClassName: 'fast' } } }, expect: undefined },
  ];
  it.each(cases)('$name: $expect', ({ given, expect: reason }) => {
    expect(claimWaitReason(observed(given))).toBe(reason);
  });

  it('counts by namespace and reason, and nothing for claims that do not wait', () => {
    const series = claimsWaitingSeries([
      observed({ answer: undefined }),
      observed({ answer: undefined }),
      observed({ claim: claim({ namespace: 'other' }), restore: undefined, answer: undefined }),
      observed({ claim: claim({ phase: 'Bound' }) }),
    ]);
    expect(series).toEqual([
      { name: 'kopia_population_claims_waiting', labels: { namespace: 'media', reason: 'PopulatorWaitingForRestore' }, value: 2 },
      { name: 'kopia_population_claims_waiting', labels: { namespace: 'other', reason: 'PopulatorDataSourceNotFound' }, value: 1 },
    ]);
    expect(claimsWaitingSeries([])).toEqual([]);
  });
});
