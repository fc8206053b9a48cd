import { jest } from '@jest/globals';
import { Cron } from 'croner';
import type { MaintenanceStatus } from '../../../generated/types.js';
import type { MoverResult } from '../../mover/mover-contract.js';
import { iso } from '../../backupschedule/schedule-plan.js';
import { actingMaintenance, conflictWith, type MaintenanceObject } from '../maintenance-operator.js';
import { desiredDefaultMaintenance, mayMaintain, planDefaults } from '../maintenance-defaults.js';
import {
  adoptableOwners,
  DEFAULT_MAINTENANCE_LABEL,
  dueSlot,
  ownerIsStale,
  parseWindows,
  planMaintenance,
  refreshConditions,
  statusFromResult,
  type MaintenanceInput,
} from '../maintenance-plan.js';
import { kstatusOf, kstatusRuleBreaks } from '../../test-support/kstatus.js';

const created = new Date('2026-11-01T00:00:00Z');
const OWNER = 'maintenance@cluster-a';

function input(over: Partial<MaintenanceInput> = {}): MaintenanceInput {
  return {
    spec: { repository: { name: 'nas' }, quick: { cron: '0 */6 * * *' }, full: { cron: '0 3 * * *' } },
    status: {},
    namespace: 'media',
    name: 'nas',
    generation: 1,
    creationTime: created,
    now: new Date('2026-11-01T00:10:00Z'),
    owner: OWNER,
    ...over,
  };
}

const ran: MaintenanceStatus = {
  owner: OWNER,
  lastQuick: { startTime: '2026-11-01T00:00:05Z', endTime: '2026-11-01T00:00:09Z', result: 'Succeeded' },
};
const condition = (s: MaintenanceStatus, type: string) => s.conditions?.find((c) => c.type === type);

describe('schedule', () => {
  it('runs a first quick maintenance at once (it sets the owner), then waits for the cron times', () => {
    expect(planMaintenance(input()).step).toEqual({ action: 'start', purpose: { mode: 'quick' } });
    const idle = planMaintenance(input({ status: ran }));
    expect(idle.step).toEqual({ action: 'idle' });
    expect(idle.status.nextQuickTime).toBe('2026-11-01T06:00:00Z');
    expect(idle.status.nextFullTime).toBe('2026-11-01T03:00:00Z');
    expect(idle.requeueAfterMs).toBe(Date.parse('2026-11-01T03:00:00Z') - Date.parse('2026-11-01T00:10:00Z'));
  });

  it('a due full run also handles a due quick run; missed times collapse into the latest', () => {
    const plan = planMaintenance(input({ status: ran, now: new Date('2026-11-03T07:00:00Z') }));
    expect(plan.step).toEqual({
      action: 'start',
      purpose: { mode: 'full', fullSlot: '2026-11-03T03:00:00Z', quickSlot: '2026-11-03T06:00:00Z' },
    });
  });

  it('the jitter is fixed per object and mode, below its bound, and delays the run', () => {
    const spec = { repository: { name: 'nas' }, quick: { cron: '0 */6 * * *', jitter: '30m' } };
    const a = parseWindows(spec, 'media', 'nas');
    const b = parseWindows(spec, 'media', 'nas');
    const other = parseWindows(spec, 'media', 'photos');
    if (!a.ok || !b.ok || !other.ok) throw new Error('windows did not parse');
    expect(a.quick.jitterMs).toBe(b.quick.jitterMs);
    expect(a.quick.jitterMs).toBeLessThan(30 * 60_000);
    expect(a.quick.jitterMs).not.toBe(other.quick.jitterMs);
    const at = new Date(Date.parse('2026-11-01T06:00:00Z') + a.quick.jitterMs);
    expect(dueSlot(a.quick, created, new Date(at.getTime() - 1000)).slot).toBeUndefined();
    expect(dueSlot(a.quick, created, at).slot).toEqual(new Date('2026-11-01T06:00:00Z'));
  });

  it('a manual request runs once (full unless it starts with "quick"), even when suspended', () => {
    const suspended = { repository: { name: 'nas' }, suspend: true };
    expect(planMaintenance(input({ spec: suspended, status: ran, manualRequest: 'now-1' })).step).toEqual({
      action: 'start',
      purpose: { mode: 'full', manual: 'now-1' },
    });
    expect(planMaintenance(input({ status: ran, manualRequest: 'quick-2' })).step).toMatchObject({ purpose: { mode: 'quick' } });
    expect(planMaintenance(input({ status: { ...ran, manualRunHandled: 'now-1' }, manualRequest: 'now-1' })).step).toEqual({
      action: 'idle',
    });
    expect(planMaintenance(input({ spec: suspended, status: ran, now: new Date('2026-11-05T00:00:00Z') })).step).toEqual({
      action: 'idle',
    });
  });

  it('bad schedules and time zones are a condition, not a run', () => {
    const plan = planMaintenance(input({ spec: { repository: { name: 'nas' }, timeZone: 'Mars/Olympus' } }));
    expect(plan.step).toEqual({ action: 'idle' });
    expect(condition(plan.status, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidTimeZone' });
  });
});

describe('one Job, one Maintenance per repository', () => {
  it('waits for a running Job, collects a finished one, then removes it', () => {
    const job = { uid: 'u1', finished: false, collected: false, purpose: { mode: 'full' as const } };
    expect(planMaintenance(input({ status: ran, job, now: new Date('2026-11-09T00:00:00Z') })).step).toEqual({ action: 'wait' });
    expect(planMaintenance(input({ status: ran, job: { ...job, finished: true } })).step).toEqual({ action: 'collect' });
    expect(planMaintenance(input({ status: ran, job: { ...job, finished: true, collected: true } })).step).toEqual({ action: 'remove' });
  });

  it('a Maintenance in conflict does nothing and says which one acts', () => {
    const plan = planMaintenance(input({ conflictWith: 'media/first' }));
    expect(plan.step).toEqual({ action: 'idle' });
    expect(condition(plan.status, 'Ready')).toMatchObject({ status: 'False', reason: 'Conflict' });
    expect(condition(plan.status, 'Ready')!.message).toContain('media/first');
  });

  const m = (name: string, creationTimestamp: string, isDefault = false) =>
    ({
      metadata: {
        name,
        namespace: 'media',
        uid: name,
        creationTimestamp,
        labels: isDefault ? { [DEFAULT_MAINTENANCE_LABEL]: 'true' } : {},
        ownerReferences: isDefault ? [{ apiVersion: 'kopia.io/v1alpha1', kind: 'Repository', name: 'nas', uid: 'r-nas' }] : [],
      },
      spec: { repository: { name: 'nas' } },
    }) as MaintenanceObject;

  it('the acting one: user-written before default, then the oldest', () => {
    expect(actingMaintenance([m('b', '2026-11-02T00:00:00Z'), m('a', '2026-11-03T00:00:00Z')])!.metadata.name).toBe('b');
    expect(actingMaintenance([m('default', '2026-11-01T00:00:00Z', true), m('mine', '2026-11-03T00:00:00Z')])!.metadata.name).toBe('mine');
  });

  it('one acts per kopia repository (uniqueID), across Repository and ClusterRepository objects; the others name it', () => {
    const of = (name: string, creationTimestamp: string, repository: { kind?: 'ClusterRepository'; name: string }, isDefault = true) =>
      ({ ...m(name, creationTimestamp, isDefault), spec: { repository } }) as MaintenanceObject;
    const uniqueIDs: Record<string, string> = { 'Repository/nas': 'u1', 'Repository/nas-alias': 'u1', 'ClusterRepository/shared': 'u1' };
    const group = (x: MaintenanceObject) => {
      const key = `${x.spec.repository.kind ?? 'Repository'}/${x.spec.repository.name}`;
      return uniqueIDs[key] ? `uniqueID/${uniqueIDs[key]}` : key;
    };
    const nas = of('nas', '2026-11-02T00:00:00Z', { name: 'nas' });
    const alias = of('nas-alias', '2026-11-03T00:00:00Z', { name: 'nas-alias' });
    const shared = of('shared', '2026-11-02T00:00:00Z', { kind: 'ClusterRepository', name: 'shared' });
    const all = [alias, shared, nas];
    // Oldest first; at the same age, the name decides.
    expect(conflictWith(nas, all, group)).toBeUndefined();
    expect(conflictWith(alias, all, group)).toBe('media/nas (of Repository nas, the same kopia repository)');
    expect(conflictWith(shared, all, group)).toBe('media/nas (of Repository nas, the same kopia repository)');
    // The platform's (a ClusterRepository's, in the operator's namespace) acts before any other:
    // a tenant's Repository reaching the same kopia repository does not take its maintenance over.
    const platform = { ...shared, metadata: { ...shared.metadata, namespace: 'kopia-system' } } as MaintenanceObject;
    const withPlatform = [alias, platform, nas];
    expect(conflictWith(platform, withPlatform, group, 'kopia-system')).toBeUndefined();
    expect(conflictWith(nas, withPlatform, group, 'kopia-system')).toBe(
      'kopia-system/shared (of ClusterRepository shared, the same kopia repository)',
    );
    // Not verified yet (no uniqueID): an object stands alone.
    delete uniqueIDs['Repository/nas-alias'];
    expect(conflictWith(alias, all, group)).toBeUndefined();
  });

  it('a default lives beside its Repository under its name, a ClusterRepository’s in the operator’s namespace', () => {
    const repo = { apiVersion: 'kopia.io/v1alpha1', kind: 'Repository', metadata: { name: 'nas', namespace: 'media', uid: 'r1' } } as never;
    expect(desiredDefaultMaintenance(repo, 'kopia-system')).toMatchObject({
      metadata: {
        name: 'nas',
        namespace: 'media',
        labels: { [DEFAULT_MAINTENANCE_LABEL]: 'true' },
        ownerReferences: [{ kind: 'Repository', uid: 'r1' }],
      },
      spec: { repository: { kind: 'Repository', name: 'nas' } },
    });
    const shared = { apiVersion: 'kopia.io/v1alpha1', kind: 'ClusterRepository', metadata: { name: 'offsite', uid: 'c1' } } as never;
    expect(desiredDefaultMaintenance(shared, 'kopia-system')).toMatchObject({
      metadata: { name: 'cluster-offsite', namespace: 'kopia-system', ownerReferences: [{ kind: 'ClusterRepository', uid: 'c1' }] },
      spec: { repository: { kind: 'ClusterRepository', name: 'offsite' } },
    });
  });

  it('defaults: created unless opted out or a user-written one exists, removed when replaced', () => {
    const repo = { metadata: { name: 'nas', namespace: 'media', uid: 'r-nas' }, spec: { backend: {}, passwordSecretRef: {} } } as never;
    expect(planDefaults(repo, [], 'kopia-system')).toEqual({ create: true, remove: [] });
    expect(planDefaults(repo, [m('nas', 'x', true)], 'kopia-system')).toEqual({ create: false, remove: [] });
    const replaced = planDefaults(repo, [m('nas', 'x', true), m('mine', 'y')], 'kopia-system');
    expect(replaced.remove.map((r) => r.metadata.name)).toEqual(['nas']);
    const optedOut = {
      metadata: { name: 'nas', namespace: 'media', uid: 'r-nas' },
      spec: { maintenance: { createDefault: false } },
    } as never;
    expect(planDefaults(optedOut, [m('nas', 'x', true)], 'kopia-system').remove).toHaveLength(1);
    expect(planDefaults(optedOut, [], 'kopia-system').create).toBe(false);
    expect(planDefaults(undefined, [m('nas', 'x', true)], 'kopia-system')).toEqual({ create: false, remove: [] });
  });

  it("a ClusterRepository's default is replaced only from the operator's namespace: a tenant's Maintenance of it may not act", () => {
    const shared = {
      kind: 'ClusterRepository',
      metadata: { name: 'offsite', uid: 'c1' },
      spec: { backend: {}, passwordSecretRef: {} },
    } as never;
    const of = (namespace: string, name: string, isDefault = false, owned = isDefault) =>
      ({
        metadata: {
          name,
          namespace,
          uid: name,
          labels: isDefault ? { [DEFAULT_MAINTENANCE_LABEL]: 'true' } : {},
          ownerReferences: owned ? [{ kind: 'ClusterRepository', name: 'offsite', uid: 'c1' }] : [],
        },
        spec: { repository: { kind: 'ClusterRepository', name: 'offsite' } },
      }) as never;
    const platformDefault = of('kopia-system', 'cluster-offsite', true);
    expect(planDefaults(shared, [platformDefault, of('media', 'takeover')], 'kopia-system')).toEqual({ create: false, remove: [] });
    // A "default" planted by a tenant (the label, not the owner, not where defaults live) does not stand in for the real one.
    expect(planDefaults(shared, [of('media', 'cluster-offsite', true, false)], 'kopia-system')).toEqual({ create: true, remove: [] });
    expect(planDefaults(shared, [of('media', 'fake', true, true)], 'kopia-system')).toEqual({ create: true, remove: [] });
    expect(planDefaults(shared, [platformDefault, of('kopia-system', 'mine')], 'kopia-system').remove).toEqual([platformDefault]);
    expect(mayMaintain(of('media', 'takeover'), 'kopia-system')).toBe(false);
    expect(mayMaintain(of('kopia-system', 'mine'), 'kopia-system')).toBe(true);
  });
});

describe('results, owners and alarms', () => {
  const job = { uid: 'job-1', purpose: { mode: 'full' as const, fullSlot: '2026-11-02T03:00:00Z' } };
  const success: MoverResult = {
    ok: true,
    operation: 'maintenance',
    maintenance: {
      mode: 'full',
      owner: OWNER,
      previousOwner: 'kopia-operator@verify.media',
      tookOver: false,
      startTime: '2026-11-02T03:10:00Z',
      endTime: '2026-11-02T03:12:30Z',
      reclaimedBytes: 4096,
      indexBlobs: 12,
    },
  };

  it('a success records the run, owner, index blobs and the handled time', () => {
    const s = statusFromResult({}, success, job, new Date());
    expect(s).toMatchObject({
      collectedJobUID: 'job-1',
      owner: OWNER,
      lastFullScheduleTime: '2026-11-02T03:00:00Z',
      lastSuccessfulFullTime: '2026-11-02T03:12:30Z',
      lastFull: { result: 'Succeeded', durationSeconds: 150, reclaimedBytes: 4096 },
      indexBlobs: { count: 12 },
    });
  });

  it('another owner (Never): the condition names it and its last run, recorded as a failed attempt', () => {
    const refused: MoverResult = {
      ok: false,
      operation: 'maintenance',
      errorClass: 'OwnedByOther',
      message: 'maintenance is owned by alice@laptop',
      maintenanceOwner: { owner: 'alice@laptop', lastRunTime: '2026-10-01T00:00:00Z' },
    };
    const s = statusFromResult(
      ran,
      refused,
      { uid: 'j', purpose: { mode: 'quick', quickSlot: '2026-11-02T06:00:00Z' } },
      new Date('2026-11-02T06:01:00Z'),
    );
    expect(s.owner).toBe('alice@laptop');
    expect(s.lastQuick).toMatchObject({ result: 'Failed' });
    const plan = planMaintenance(
      input({ status: { ...s, lastFullScheduleTime: '2026-11-02T03:00:00Z' }, now: new Date('2026-11-02T06:02:00Z') }),
    );
    const ready = condition(plan.status, 'Ready')!;
    expect(ready).toMatchObject({ status: 'False', reason: 'OwnedByOther' });
    expect(ready.message).toContain('alice@laptop');
    expect(ready.message).toContain('2026-10-01T00:00:00Z');
    expect(ready.message).toContain('stale');
    // Not adopted: alice is not ours.
    expect(adoptableOwners(s, 'kopia-operator@verify.media')).toEqual(['kopia-operator@verify.media']);
    // Ours before an owner change: adopted.
    expect(adoptableOwners(ran, 'kopia-operator@verify.media')).toContain(OWNER);
  });

  it('Stale once the second full cron time (plus jitter) after the last successful full run has passed, from the clock given', () => {
    const status = {
      ...ran,
      lastSuccessfulFullTime: '2026-11-02T03:12:30Z',
      lastFullScheduleTime: '2026-11-02T03:00:00Z',
      lastQuickScheduleTime: '2026-11-04T06:00:00Z',
    };
    const spec = { repository: { name: 'nas' }, suspend: true };
    const windows = parseWindows(spec, 'media', 'nas');
    if (!windows.ok) throw new Error('windows did not parse');
    // The default full cron, "0 3 * * *" with jitter 1h: 3 November 03:00, then 4 November 03:00.
    const staleAt = Date.parse('2026-11-04T03:00:00Z') + windows.full.jitterMs;
    const fresh = planMaintenance(input({ status, now: new Date(staleAt - 1000), spec }));
    expect(condition(fresh.status, 'Stale')).toMatchObject({ status: 'False', reason: 'MaintenanceCurrent' });
    expect(condition(fresh.status, 'Stale')!.message).toContain(`stale after ${iso(new Date(staleAt))}`);
    const stale = planMaintenance(input({ status, now: new Date(staleAt), spec }));
    expect(condition(stale.status, 'Stale')).toMatchObject({ status: 'True', reason: 'MaintenanceStale' });
  });

  it('more index blobs than the threshold is a condition', () => {
    const status = { ...ran, indexBlobs: { count: 7 } };
    const over = planMaintenance(input({ status, spec: { repository: { name: 'nas' }, indexBlobWarningThreshold: 5 } }));
    expect(condition(over.status, 'TooManyIndexBlobs')).toMatchObject({ status: 'True', reason: 'TooManyIndexBlobs' });
    expect(over.status.indexBlobs).toEqual({ count: 7, warningThreshold: 5 });
    const under = planMaintenance(input({ status, spec: { repository: { name: 'nas' } } }));
    expect(condition(under.status, 'TooManyIndexBlobs')).toMatchObject({ status: 'False' });
  });

  it('a failed run keeps its error and makes Ready False', () => {
    const failed: MoverResult = { ok: false, operation: 'maintenance', errorClass: 'Unreachable', message: 'connection refused' };
    const s = statusFromResult(ran, failed, job, new Date('2026-11-02T03:20:00Z'));
    expect(s.lastFull).toMatchObject({ result: 'Failed', error: 'Unreachable: connection refused' });
    expect(s.lastSuccessfulFullTime).toBeUndefined();
    const next = planMaintenance(
      input({ status: { ...s, lastQuickScheduleTime: '2026-11-02T00:00:00Z' }, now: new Date('2026-11-02T03:21:00Z') }),
    );
    expect(next.step).toEqual({ action: 'idle' });
    const ready = condition(next.status, 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'MaintenanceFailed' });
  });
});

describe('Stale counts full cron times, not a sampled interval', () => {
  const staleOf = (over: Partial<MaintenanceInput>) => condition({ conditions: refreshConditions(input(over)) }, 'Stale');
  const at = (t: string | number) => new Date(t);
  const succeeded = (endTime: string): MaintenanceStatus => ({
    ...ran,
    lastSuccessfulFullTime: endTime,
    lastFull: { startTime: endTime, endTime, result: 'Succeeded' },
  });

  it('Berlin daily with one failed run on the fall-back weekend: not Stale until Monday’s run has had its turn', () => {
    const spec = { repository: { name: 'nas' }, timeZone: 'Europe/Berlin', full: { cron: '0 3 * * *' } };
    // Saturday 03:12:30 CEST the full run succeeds; Sunday 03:00 CET (02:00Z, an hour longer day) it fails.
    const status: MaintenanceStatus = {
      ...succeeded('2026-10-24T01:12:30Z'),
      lastFull: { startTime: '2026-10-25T02:00:00Z', endTime: '2026-10-25T02:05:00Z', result: 'Failed', error: 'Unreachable: x' },
      lastFullScheduleTime: '2026-10-25T02:00:00Z',
    };
    for (let t = Date.parse('2026-10-24T01:12:30Z'); t < Date.parse('2026-10-26T02:00:00Z'); t += 30 * 60_000)
      expect([iso(at(t)), staleOf({ spec, status, now: at(t) })?.status]).toEqual([iso(at(t)), 'False']);
    // Monday 03:00 CET: the run for it starts, and is given its turn.
    const monday = planMaintenance(
      input({ spec, status: { ...status, lastQuickScheduleTime: '2026-10-26T01:00:00Z' }, now: at('2026-10-26T02:00:00Z') }),
    );
    expect(monday.step).toEqual({ action: 'start', purpose: { mode: 'full', fullSlot: '2026-10-26T02:00:00Z' } });
    expect(condition(monday.status, 'Stale')).toMatchObject({ status: 'False' });
    const running = { uid: 'j', finished: false, collected: false, purpose: { mode: 'full' as const, fullSlot: '2026-10-26T02:00:00Z' } };
    expect(
      condition(planMaintenance(input({ spec, status, job: running, now: at('2026-10-26T02:40:00Z') })).status, 'Stale'),
    ).toMatchObject({
      status: 'False',
    });
    // It fails too: two full times have passed without a success.
    const failedAgain: MaintenanceStatus = {
      ...status,
      lastFull: { startTime: '2026-10-26T02:00:00Z', endTime: '2026-10-26T02:45:00Z', result: 'Failed', error: 'Unreachable: x' },
      lastFullScheduleTime: '2026-10-26T02:00:00Z',
    };
    expect(staleOf({ spec, status: failedAgain, now: at('2026-10-26T02:45:01Z') })).toMatchObject({
      status: 'True',
      reason: 'MaintenanceStale',
    });
    // Without a run (suspended), the second time itself makes it Stale.
    expect(staleOf({ spec: { ...spec, suspend: true }, status, now: at('2026-10-26T01:59:59Z') })?.status).toBe('False');
    expect(staleOf({ spec: { ...spec, suspend: true }, status, now: at('2026-10-26T02:00:00Z') })?.status).toBe('True');
  });

  it('"*/5 2-4 * * 0" (Sunday nights): a success at the night’s last time stays current all week, until next Sunday’s second time plus jitter', () => {
    const spec = { repository: { name: 'nas' }, suspend: true, full: { cron: '*/5 2-4 * * 0', jitter: '3m' } };
    const windows = parseWindows(spec, 'media', 'nas');
    if (!windows.ok) throw new Error('windows did not parse');
    const jitter = windows.full.jitterMs;
    const status = succeeded('2026-11-01T04:57:10Z');
    expect(staleOf({ spec, status, now: at('2026-11-01T05:15:00Z') })?.status).toBe('False');
    expect(staleOf({ spec, status, now: at('2026-11-05T12:00:00Z') })?.status).toBe('False');
    // The next Sunday: 02:00 is the first time after the success, 02:05 the second.
    const second = Date.parse('2026-11-08T02:05:00Z') + jitter;
    expect(staleOf({ spec, status, now: at(second - 1000) })?.status).toBe('False');
    expect(staleOf({ spec, status, now: at(second) })?.status).toBe('True');
  });

  it('"0 3 * 1-6 *" (January to June): a success on 30 June is current until the second of January', () => {
    const spec = { repository: { name: 'nas' }, suspend: true, full: { cron: '0 3 * 1-6 *' } };
    const status = succeeded('2026-06-30T03:10:00Z');
    expect(staleOf({ spec, status, now: at('2026-07-02T04:00:00Z') })?.status).toBe('False');
    expect(staleOf({ spec, status, now: at('2026-12-31T23:00:00Z') })?.status).toBe('False');
    expect(staleOf({ spec, status, now: at('2027-01-02T02:59:59Z') })?.status).toBe('False');
    expect(staleOf({ spec, status, now: at('2027-01-02T03:00:00Z') })).toMatchObject({ status: 'True', reason: 'MaintenanceStale' });
    // Another owner is judged by the same rule: one that last ran on 30 June is not stale in September.
    const windows = parseWindows(spec, 'media', 'nas');
    expect(ownerIsStale({ ownerLastRunTime: '2026-06-30T03:10:00Z' }, windows, at('2026-09-01T00:00:00Z'))).toBe(false);
    expect(ownerIsStale({ ownerLastRunTime: '2026-06-30T03:10:00Z' }, windows, at('2027-01-02T03:00:01Z'))).toBe(true);
  });
});

describe('catch-up after downtime', () => {
  const cronMethods = ['nextRun', 'nextRuns', 'previousRun', 'previousRuns'] as const;
  /** Cron evaluations (croner's public next/previous calls) made while `f` runs. */
  function cronEvaluations<T>(f: () => T): { result: T; evaluations: number } {
    const spies = cronMethods.map((m) => jest.spyOn(Cron.prototype, m));
    try {
      const result = f();
      return { result, evaluations: spies.reduce((n, s) => n + s.mock.calls.length, 0) };
    } finally {
      for (const s of spies) s.mockRestore();
    }
  }
  const minutely = { repository: { name: 'nas' }, quick: { cron: '* * * * *' }, full: { cron: '0 3 * * *' } };
  const monthBehind: MaintenanceStatus = {
    ...ran,
    lastQuickScheduleTime: '2026-11-01T00:00:00Z',
    lastFullScheduleTime: '2026-11-01T03:00:00Z',
    lastSuccessfulFullTime: '2026-11-01T03:05:00Z',
  };
  const now = new Date('2026-12-01T00:00:30Z');

  it('a minutely cron a month behind: one run for the latest times, the next run after now, a few cron evaluations', () => {
    const { result: plan, evaluations } = cronEvaluations(() => planMaintenance(input({ spec: minutely, status: monthBehind, now })));
    expect(plan.step).toEqual({
      action: 'start',
      purpose: { mode: 'full', fullSlot: '2026-11-30T03:00:00Z', quickSlot: '2026-12-01T00:00:00Z' },
    });
    expect(plan.status.nextQuickTime).toBe('2026-12-01T00:01:00Z');
    expect(plan.status.nextFullTime).toBe('2026-12-01T03:00:00Z');
    // Parsing both windows, both due times and Stale: 8 today, not one per missed minute (the
    // bound leaves room for a DST-aware Cron making a few more).
    expect(evaluations).toBeLessThanOrEqual(30);
  });

  it('with jitter, the latest time whose run time has come, and the next run time after now', () => {
    const spec = { ...minutely, quick: { cron: '*/10 * * * *', jitter: '5m' } };
    const windows = parseWindows(spec, 'media', 'nas');
    if (!windows.ok) throw new Error('windows did not parse');
    const jitter = windows.quick.jitterMs;
    const { result, evaluations } = cronEvaluations(() => dueSlot(windows.quick, new Date('2026-11-01T00:00:00Z'), now));
    // 00:00 plus this object's jitter (over 30 s) has not come at 00:00:30: 23:50 is the latest.
    expect(jitter).toBeGreaterThan(30_000);
    expect(result.slot).toEqual(new Date('2026-11-30T23:50:00Z'));
    expect(result.nextRunAt).toEqual(new Date(Date.parse('2026-12-01T00:00:00Z') + jitter));
    // One look back, one ahead (2 today).
    expect(evaluations).toBeLessThanOrEqual(8);
  });

  it('suspended: nothing is walked, and it wakes when Stale comes', () => {
    const spec = { ...minutely, suspend: true };
    const { result: plan, evaluations } = cronEvaluations(() => planMaintenance(input({ spec, status: monthBehind, now })));
    expect(plan.step).toEqual({ action: 'idle' });
    expect(plan.status.nextQuickTime).toBeUndefined();
    // Parsing and Stale only (6 today).
    expect(evaluations).toBeLessThanOrEqual(20);
    // Stale (True here: a month without a success) is judged at once; one that becomes stale later wakes the operator.
    expect(condition(plan.status, 'Stale')).toMatchObject({ status: 'True' });
    const recent = { ...monthBehind, lastSuccessfulFullTime: '2026-11-30T03:05:00Z' };
    const later = planMaintenance(input({ spec, status: recent, now }));
    expect(later.requeueAfterMs).toBe(Date.parse('2026-12-02T03:00:00Z') - now.getTime());
  });
});

describe('kstatus of a Maintenance', () => {
  const failedRun: MaintenanceStatus = {
    ...ran,
    lastQuickScheduleTime: '2026-11-01T00:00:00Z',
    lastFull: { startTime: '2026-11-01T00:05:00Z', endTime: '2026-11-01T00:06:00Z', result: 'Failed', error: 'Unreachable: refused' },
  };
  const job = { uid: 'u1', finished: false, collected: false, purpose: { mode: 'full' as const } };
  it.each([
    ['scheduling: Current', {}, 'Current', undefined],
    ['a run in progress (periodic work, not the spec): Current', { job }, 'Current', undefined],
    [
      'suspended: Current, Ready with reason Suspended, not Reconciling',
      { spec: { repository: { name: 'nas' }, suspend: true } },
      'Current',
      undefined,
    ],
    [
      'its repository not Ready yet: InProgress',
      { blocked: { reason: 'RepositoryNotReady', message: 'm' } },
      'InProgress',
      'RepositoryNotReady',
    ],
    [
      'its repository missing (waited for): InProgress',
      { blocked: { reason: 'RepositoryNotFound', message: 'm' } },
      'InProgress',
      'RepositoryNotFound',
    ],
    ['its repository refused: Failed', { blocked: { reason: 'RepositoryNotAllowed', message: 'm' } }, 'Failed', 'RepositoryNotAllowed'],
    ['a bad time zone: Failed', { spec: { repository: { name: 'nas' }, timeZone: 'Mars/Olympus' } }, 'Failed', 'InvalidTimeZone'],
    ['another Maintenance acts: Failed', { conflictWith: 'media/first' }, 'Failed', 'Conflict'],
    ['the last run failed: Failed', { status: failedRun }, 'Failed', 'MaintenanceFailed'],
  ] as [string, Partial<MaintenanceInput>, string, string | undefined][])('%s', (_name, over, verdict, reason) => {
    const plan = planMaintenance(input({ status: ran, ...over }));
    const o = { metadata: { generation: 1 }, status: plan.status };
    expect(kstatusOf(o)).toEqual({ status: verdict, ...(reason ? { reason } : {}) });
    expect(kstatusRuleBreaks(o)).toEqual([]);
    if (over.spec?.suspend) expect(condition(plan.status, 'Ready')).toMatchObject({ status: 'True', reason: 'Suspended' });
  });
});
