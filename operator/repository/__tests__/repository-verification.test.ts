import {
  parseDuration,
  pendingReinitialize,
  planVerification,
  statusBlocked,
  statusFromResult,
  statusVerifying,
} from '../repository-verification.js';
import { allowedAmong, isNamespaceAllowed } from '../tenancy.js';
import { resolveRepository } from '../repository-resolver.js';
import { kstatusOf, kstatusRuleBreaks } from '../../test-support/kstatus.js';

const now = new Date('2026-11-25T12:00:00Z');
const job = (o: Partial<{ finished: boolean; collected: boolean; generation: number; secretsHash: string; specHash: string }> = {}) => ({
  uid: 'job-1',
  finished: false,
  collected: false,
  generation: 2,
  secretsHash: 'h',
  specHash: 's',
  ...o,
});
const verified = (uniqueID: string) => ({
  ok: true as const,
  operation: 'verify' as const,
  repository: { uniqueID, format: {}, snapshotCount: 0 },
});
const base = { generation: 2, secretsHash: 'h', desiredSpecHash: 's', now, intervalMs: 600_000 };

describe('planVerification', () => {
  const cases: { name: string; given: Parameters<typeof planVerification>[0]; expect: ReturnType<typeof planVerification> }[] = [
    { name: 'never verified', given: { ...base, status: undefined, job: undefined }, expect: { action: 'start' } },
    {
      name: 'spec changed',
      given: { ...base, status: { observedGeneration: 1, secretsHash: 'h', lastCheckTime: now.toISOString() }, job: undefined },
      expect: { action: 'start' },
    },
    {
      name: 'secret changed',
      given: { ...base, status: { observedGeneration: 2, secretsHash: 'old', lastCheckTime: now.toISOString() }, job: undefined },
      expect: { action: 'start' },
    },
    {
      name: 'checked recently',
      given: { ...base, status: { observedGeneration: 2, secretsHash: 'h', lastCheckTime: '2026-11-25T11:55:00Z' }, job: undefined },
      expect: { action: 'idle', requeueAfterMs: 300_000 },
    },
    {
      name: 'interval passed',
      given: { ...base, status: { observedGeneration: 2, secretsHash: 'h', lastCheckTime: '2026-11-25T11:49:00Z' }, job: undefined },
      expect: { action: 'start' },
    },
    { name: 'job running', given: { ...base, status: {}, job: job() }, expect: { action: 'wait' } },
    { name: 'job finished', given: { ...base, status: {}, job: job({ finished: true }) }, expect: { action: 'collect' } },
    {
      name: 'job finished and its result in status (an earlier delete failed)',
      given: { ...base, status: {}, job: job({ finished: true, collected: true }) },
      expect: { action: 'remove' },
    },
    {
      name: 'checked recently, but a reinitialize request is pending',
      given: {
        ...base,
        status: { observedGeneration: 2, secretsHash: 'h', lastCheckTime: '2026-11-25T11:55:00Z' },
        job: undefined,
        reinitializePending: true,
      },
      expect: { action: 'start' },
    },
    { name: 'job for an older spec', given: { ...base, status: {}, job: job({ generation: 1 }) }, expect: { action: 'replace' } },
    { name: 'job with older secrets', given: { ...base, status: {}, job: job({ secretsHash: 'x' }) }, expect: { action: 'replace' } },
  ];
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    expect(planVerification(c.given)).toEqual(c.expect);
  });
});

describe('kstatus of a Repository', () => {
  const repository = (generation: number, status: ReturnType<typeof statusVerifying>) => ({ metadata: { generation }, status });
  const failure = (errorClass: 'Unreachable' | 'WrongPassword' | 'NotInitialized' | 'RepositoryMissing') =>
    statusFromResult({}, { ok: false, operation: 'verify', errorClass, message: 'm' }, job({ finished: true }), now);
  it.each([
    ['verified: Current', () => statusFromResult({}, verified('abc'), job({ finished: true }), now), 'Current', undefined],
    ['the first verification running: InProgress', () => statusVerifying({}, 2, now), 'InProgress', 'Verifying'],
    [
      'a changed spec being verified: InProgress',
      () => statusVerifying(statusFromResult({}, verified('abc'), job({ finished: true, generation: 1 }), now), 2, now),
      'InProgress',
      'LatestGenerationNotObserved',
    ],
    ['unreachable: Failed (Stalled), not silently InProgress', () => failure('Unreachable'), 'Failed', 'Unreachable'],
    ['wrong password: Failed', () => failure('WrongPassword'), 'Failed', 'WrongPassword'],
    ['not initialized: Failed', () => failure('NotInitialized'), 'Failed', 'NotInitialized'],
    ['gone from its storage: Failed', () => failure('RepositoryMissing'), 'Failed', 'RepositoryMissing'],
    [
      'its Secret missing (waited for): InProgress',
      () => statusBlocked({}, 'SecretNotFound', 'Secret a/b not found', 2, now),
      'InProgress',
      'SecretNotFound',
    ],
    ['an invalid spec: Failed', () => statusBlocked({}, 'InvalidSpec', 'spec.s3.bucket: required', 2, now), 'Failed', 'InvalidSpec'],
  ])('%s', (_name, status, verdict, reason) => {
    const o = repository(2, status());
    expect(kstatusOf(o)).toEqual({ status: verdict, ...(reason ? { reason } : {}) });
    expect(kstatusRuleBreaks(o)).toEqual([]);
  });
});

describe('status', () => {
  it('records a successful verification in both conditions', () => {
    const s = statusFromResult(
      {},
      { ok: true, operation: 'verify', created: true, repository: { uniqueID: 'abc'.repeat(11), format: { hash: 'H' }, snapshotCount: 3 } },
      job({ finished: true }),
      now,
    );
    expect(s).toMatchObject({
      uniqueID: 'abc'.repeat(11),
      snapshotCount: 3,
      observedGeneration: 2,
      secretsHash: 'h',
      lastCheckTime: '2026-11-25T12:00:00Z',
    });
    expect(s.conditions!.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'True', 'Verified'],
      ['Reconciling', 'False', 'Verified'],
      ['Stalled', 'False', 'Verified'],
      ['Connected', 'True', 'Connected'],
    ]);
    expect(s.conditions![0].message).toContain('created by this verification');
  });

  it('uses the error class as the reason', () => {
    const s = statusFromResult(
      {},
      { ok: false, operation: 'verify', errorClass: 'WrongPassword', message: 'invalid repository password' },
      job({ finished: true }),
      now,
    );
    expect(s.conditions!.map((c) => [c.type, c.status, c.reason, c.message])).toEqual([
      ['Ready', 'False', 'WrongPassword', 'invalid repository password'],
      ['Reconciling', 'False', 'WrongPassword', 'no work toward the spec is under way'],
      ['Stalled', 'True', 'WrongPassword', 'invalid repository password'],
      ['Connected', 'False', 'WrongPassword', 'invalid repository password'],
    ]);
  });

  it('records which Job it collected, so a failed delete is retried without collecting again', () => {
    const s = statusFromResult(
      {},
      { ok: false, operation: 'verify', errorClass: 'Unreachable', message: 'x' },
      job({ finished: true }),
      now,
    );
    expect(s.collectedJobUID).toBe('job-1');
  });

  it('never adopts another unique ID without a reinitialize request', () => {
    const s = statusFromResult({ uniqueID: 'old' }, verified('new'), job({ finished: true }), now);
    expect(s.uniqueID).toBe('old');
    expect(s.conditions![0]).toMatchObject({ status: 'False', reason: 'RepositoryChanged' });
    expect(s.conditions![0].message).toContain('old');
  });

  it('adopts the new unique ID on a reinitialize request and marks the request handled', () => {
    const s = statusFromResult({ uniqueID: 'old' }, verified('new'), job({ finished: true }), now, '2026-11-27T10:00:00Z');
    expect(s).toMatchObject({ uniqueID: 'new', reinitializeHandled: '2026-11-27T10:00:00Z' });
    expect(s.conditions![0]).toMatchObject({ status: 'True', reason: 'Verified' });
    const failed = statusFromResult(
      { uniqueID: 'old' },
      { ok: false, operation: 'verify', errorClass: 'WrongPassword', message: 'x' },
      job({ finished: true }),
      now,
      '2026-11-27T10:00:00Z',
    );
    expect(failed.reinitializeHandled).toBeUndefined(); // a failed attempt keeps the request pending
  });

  it('names the missing and changed repository as reasons', () => {
    for (const errorClass of ['RepositoryMissing', 'RepositoryChanged'] as const) {
      const s = statusFromResult(
        { uniqueID: 'old' },
        { ok: false, operation: 'verify', errorClass, message: 'm' },
        job({ finished: true }),
        now,
      );
      expect(s.conditions!.map((c) => c.reason)).toEqual([errorClass, errorClass, errorClass, errorClass]);
      expect(s.uniqueID).toBe('old');
    }
  });

  it('treats a reinitialize annotation as pending until its value is handled', () => {
    const ann = { 'kopia.io/reinitialize': '2026-11-27T10:00:00Z' };
    expect(pendingReinitialize(undefined, {})).toBeUndefined();
    expect(pendingReinitialize(ann, {})).toBe('2026-11-27T10:00:00Z');
    expect(pendingReinitialize(ann, { reinitializeHandled: '2026-11-27T10:00:00Z' })).toBeUndefined();
  });

  it('keeps lastTransitionTime while the status stays the same', () => {
    const first = statusBlocked({}, 'SecretNotFound', 'Secret a/b not found', 1, now);
    const later = statusBlocked(first, 'SecretNotFound', 'Secret a/b not found', 1, new Date('2026-11-25T13:00:00Z'));
    expect(later.conditions![0].lastTransitionTime).toBe(first.conditions![0].lastTransitionTime);
  });

  it('shows Verifying only until the first result of a generation', () => {
    const verifying = statusVerifying({}, 1, now);
    expect(verifying.conditions![0]).toMatchObject({ status: 'Unknown', reason: 'Verifying' });
    const done = statusFromResult(
      verifying,
      { ok: false, operation: 'verify', errorClass: 'Unreachable', message: 'x' },
      job({ generation: 1, finished: true }),
      now,
    );
    expect(statusVerifying(done, 1, now)).toBe(done);
  });

  it('parses Go durations', () => {
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(() => parseDuration('ten')).toThrow('invalid duration');
  });
});

describe('tenancy', () => {
  const namespaces: { name: string; labels: Record<string, string> }[] = [
    { name: 'media', labels: { backups: 'yes' } },
    { name: 'home', labels: {} },
  ];
  it('allows by list, selector or all', () => {
    expect(isNamespaceAllowed({ names: ['media'] }, 'home', {})).toBe(false);
    expect(isNamespaceAllowed({ selector: { matchLabels: { backups: 'yes' } } }, 'media', { backups: 'yes' })).toBe(true);
    expect(
      isNamespaceAllowed(
        { selector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['home'] }] } },
        'home',
        {},
      ),
    ).toBe(true);
    expect(
      isNamespaceAllowed({ selector: { matchExpressions: [{ key: 'backups', operator: 'DoesNotExist' }] } }, 'media', { backups: 'yes' }),
    ).toBe(false);
    expect(isNamespaceAllowed({ all: true }, 'anything', {})).toBe(true);
    expect(allowedAmong({ selector: { matchLabels: { backups: 'yes' } } }, namespaces)).toEqual(['media']);
    expect(allowedAmong({ all: true }, namespaces)).toBeUndefined();
  });

  it('resolves a consumer reference to not found, not allowed, not ready or ok', () => {
    const ready = { conditions: [{ type: 'Ready', status: 'True', reason: 'Verified', message: '', lastTransitionTime: '' }] };
    const cluster = { metadata: { name: 'shared' }, spec: { allowedNamespaces: { names: ['media'] } }, status: ready } as never;
    const lookup = { repository: () => undefined, clusterRepository: () => cluster, namespaceLabels: () => ({}) };
    expect(resolveRepository({ name: 'nas' }, 'media', lookup)).toMatchObject({ ok: false, reason: 'RepositoryNotFound' });
    expect(resolveRepository({ kind: 'ClusterRepository', name: 'shared' }, 'home', lookup)).toMatchObject({
      ok: false,
      reason: 'RepositoryNotAllowed',
    });
    expect(resolveRepository({ kind: 'ClusterRepository', name: 'shared' }, 'media', lookup)).toMatchObject({
      ok: true,
      kind: 'ClusterRepository',
    });
    const notReady = { ...lookup, clusterRepository: () => ({ ...(cluster as object), status: {} }) as never };
    expect(resolveRepository({ kind: 'ClusterRepository', name: 'shared' }, 'media', notReady)).toMatchObject({
      ok: false,
      reason: 'RepositoryNotReady',
    });
  });
});
