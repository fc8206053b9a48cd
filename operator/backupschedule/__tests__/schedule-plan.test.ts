import type { BackupScheduleSpec, BackupScheduleStatus } from '../../../generated/types.js';
import {
  backupName,
  desiredBackup,
  failedToPrune,
  failureStreak,
  jitterMs,
  planSchedule,
  scheduleStatus,
  SCHEDULE_LABEL,
  SCHEDULED_TIME_ANNOTATION,
  type RunDecision,
  type ScheduledBackup,
  type ScheduleInput,
} from '../schedule-plan.js';
import { kstatusOf, kstatusRuleBreaks, type KstatusVerdict } from '../../test-support/kstatus.js';

const spec = (o: Partial<BackupScheduleSpec> = {}): BackupScheduleSpec => ({ configRef: { name: 'jellyfin' }, cron: '0 3 * * *', ...o });
const input = (o: Partial<ScheduleInput> = {}): ScheduleInput => ({
  namespace: 'media',
  name: 'nightly',
  creationTime: new Date('2026-11-27T09:00:00Z'),
  generation: 1,
  spec: spec(),
  backups: [],
  configExists: true,
  now: new Date('2026-11-27T10:00:00Z'),
  ...o,
});
const backup = (o: Partial<ScheduledBackup> & { name: string }): ScheduledBackup => ({ creationTime: '2026-11-20T03:00:00Z', ...o });
const lastRun = (t: string): BackupScheduleStatus => ({ lastScheduleTime: t });
/** A schedule that existed before its Backups (they are its own only then). */
const longStanding = new Date('2026-11-01T00:00:00Z');

describe('next run, per cron and time zone (schedule-dst.test.ts has every daylight-saving case)', () => {
  const cases: { name: string; given: Partial<ScheduleInput>; expect: string }[] = [
    { name: 'UTC by default', given: {}, expect: '2026-11-28T03:00:00.000Z' },
    { name: 'Europe/Berlin in winter (UTC+1)', given: { spec: spec({ timeZone: 'Europe/Berlin' }) }, expect: '2026-11-28T02:00:00.000Z' },
    {
      name: 'Europe/Berlin in summer (UTC+2)',
      given: {
        spec: spec({ timeZone: 'Europe/Berlin' }),
        creationTime: new Date('2026-07-01T02:00:00Z'),
        now: new Date('2026-07-01T12:00:00Z'),
      },
      expect: '2026-07-02T01:00:00.000Z',
    },
    {
      name: 'a time the spring-forward skips (02:30 on 29 March) runs right after the gap, at 03:00 CEST',
      given: {
        spec: spec({ cron: '30 2 * * *', timeZone: 'Europe/Berlin' }),
        status: lastRun('2026-03-28T01:30:00Z'),
        now: new Date('2026-03-28T12:00:00Z'),
      },
      expect: '2026-03-29T01:00:00.000Z',
    },
    {
      name: 'a time the fall-back repeats (02:30 on 25 October) runs once: the next is the day after',
      given: {
        spec: spec({ cron: '30 2 * * *', timeZone: 'Europe/Berlin' }),
        status: lastRun('2026-10-25T00:30:00Z'),
        now: new Date('2026-10-25T00:31:00Z'),
      },
      expect: '2026-10-26T01:30:00.000Z',
    },
    {
      name: 'an hourly pattern runs once in the repeated hour too: after 02:30 CEST comes 03:30 CET',
      given: {
        spec: spec({ cron: '30 * * * *', timeZone: 'Europe/Berlin' }),
        status: lastRun('2026-10-25T00:30:00Z'),
        now: new Date('2026-10-25T00:31:00Z'),
      },
      expect: '2026-10-25T02:30:00.000Z',
    },
    {
      name: 'America/New_York, weekdays: Friday noon, then Monday',
      given: {
        spec: spec({ cron: '0 12 * * MON-FRI', timeZone: 'America/New_York' }),
        status: lastRun('2026-11-27T17:00:00Z'),
        now: new Date('2026-11-27T18:00:00Z'),
      },
      expect: '2026-11-30T17:00:00.000Z',
    },
    { name: 'a macro', given: { spec: spec({ cron: '@weekly' }) }, expect: '2026-11-29T00:00:00.000Z' },
    {
      name: 'jitter is added to the cron time',
      given: { spec: spec({ jitter: '30m' }) },
      expect: new Date(Date.parse('2026-11-28T03:00:00Z') + jitterMs('media', 'nightly', '30m')).toISOString(),
    },
  ];
  it.each(cases)('$name', ({ given, expect: next }) => {
    const plan = planSchedule(input(given));
    expect(plan.run).toEqual({ action: 'none' });
    expect(plan.next?.toISOString()).toBe(next);
    expect(plan.requeueAfterMs).toBe(Date.parse(next) - (given.now ?? input().now).getTime());
  });
});

describe('jitter', () => {
  it('is the same on every call (every replica, every restart) and below the bound, in whole seconds', () => {
    const names = Array.from({ length: 200 }, (_, i) => `schedule-${i}`);
    const values = names.map((n) => jitterMs('media', n, '30m'));
    expect(names.map((n) => jitterMs('media', n, '30m'))).toEqual(values);
    for (const v of values) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(30 * 60_000);
      expect(v % 1000).toBe(0);
    }
    // Spread out, not one value for all.
    expect(new Set(values).size).toBeGreaterThan(150);
    expect(jitterMs('home', 'schedule-0', '30m')).not.toBe(values[0]);
  });

  const cases: { given: [string, string, string | undefined]; expect: number }[] = [
    { given: ['media', 'nightly', undefined], expect: 0 },
    { given: ['media', 'nightly', '0s'], expect: 0 },
    { given: ['media', 'nightly', '900ms'], expect: 0 },
  ];
  it.each(cases)('$given → $expect', ({ given, expect: v }) => expect(jitterMs(...given)).toBe(v));
});

describe('due runs', () => {
  type Case = { name: string; given: Partial<ScheduleInput>; expect: RunDecision };
  const at = (t: string) => new Date(t);
  const cases: Case[] = [
    { name: 'nothing due before the first cron time', given: {}, expect: { action: 'none' } },
    {
      name: 'due at its time',
      given: { status: lastRun('2026-11-26T03:00:00Z'), now: at('2026-11-27T03:00:05Z') },
      expect: { action: 'create', slot: at('2026-11-27T03:00:00Z'), name: 'nightly-202611270300', replace: [], missed: 0 },
    },
    {
      name: 'not yet due within its jitter',
      given: {
        spec: spec({ jitter: '1h' }),
        status: lastRun('2026-11-26T03:00:00Z'),
        now: new Date(Date.parse('2026-11-27T03:00:00Z') + jitterMs('media', 'nightly', '1h') - 1000),
      },
      expect: { action: 'none' },
    },
    {
      name: 'after downtime, one catch-up run: the most recent missed time',
      given: { status: lastRun('2026-11-23T03:00:00Z'), now: at('2026-11-27T10:00:00Z') },
      expect: { action: 'create', slot: at('2026-11-27T03:00:00Z'), name: 'nightly-202611270300', replace: [], missed: 3 },
    },
    {
      name: 'after downtime, a run later than startingDeadlineSeconds is skipped',
      given: { spec: spec({ startingDeadlineSeconds: 3600 }), status: lastRun('2026-11-23T03:00:00Z'), now: at('2026-11-27T10:00:00Z') },
      expect: {
        action: 'skip',
        slot: at('2026-11-27T03:00:00Z'),
        reason: 'StartingDeadlineMissed',
        message: 'skipped the run of 2026-11-27T03:00:00Z: 25200s late, past startingDeadlineSeconds 3600',
      },
    },
    {
      name: 'within startingDeadlineSeconds it runs',
      given: { spec: spec({ startingDeadlineSeconds: 3600 }), status: lastRun('2026-11-26T03:00:00Z'), now: at('2026-11-27T03:59:00Z') },
      expect: { action: 'create', slot: at('2026-11-27T03:00:00Z'), name: 'nightly-202611270300', replace: [], missed: 0 },
    },
    {
      name: 'startingDeadlineSeconds 0: a run one pass late (15 ms) is on time',
      given: { spec: spec({ startingDeadlineSeconds: 0 }), status: lastRun('2026-11-26T03:00:00Z'), now: at('2026-11-27T03:00:00.015Z') },
      expect: { action: 'create', slot: at('2026-11-27T03:00:00Z'), name: 'nightly-202611270300', replace: [], missed: 0 },
    },
    {
      name: 'a deadline below 10 s counts as 10 s: 9.9 s late runs',
      given: { spec: spec({ startingDeadlineSeconds: 3 }), status: lastRun('2026-11-26T03:00:00Z'), now: at('2026-11-27T03:00:09.900Z') },
      expect: { action: 'create', slot: at('2026-11-27T03:00:00Z'), name: 'nightly-202611270300', replace: [], missed: 0 },
    },
    {
      name: 'a deadline below 10 s counts as 10 s: 10.5 s late is skipped',
      given: { spec: spec({ startingDeadlineSeconds: 0 }), status: lastRun('2026-11-26T03:00:00Z'), now: at('2026-11-27T03:00:10.500Z') },
      expect: {
        action: 'skip',
        slot: at('2026-11-27T03:00:00Z'),
        reason: 'StartingDeadlineMissed',
        message: 'skipped the run of 2026-11-27T03:00:00Z: 10.5s late, past startingDeadlineSeconds 0 (a deadline counts as at least 10s)',
      },
    },
    {
      name: 'a time already skipped is not decided again',
      given: {
        status: {
          lastScheduleTime: '2026-11-26T03:00:00Z',
          lastSkipped: { scheduleTime: '2026-11-27T03:00:00Z', reason: 'ConcurrentRunSkipped' },
        },
        now: at('2026-11-27T03:10:00Z'),
      },
      expect: { action: 'none' },
    },
    {
      name: 'times before the schedule existed are not runs',
      given: { creationTime: at('2026-11-27T04:00:00Z'), now: at('2026-11-27T10:00:00Z') },
      expect: { action: 'none' },
    },
    {
      name: 'runOnCreate: one run right away on a new schedule',
      given: { spec: spec({ runOnCreate: true }), creationTime: at('2026-11-27T09:59:30Z') },
      expect: { action: 'create', slot: at('2026-11-27T09:59:30Z'), name: 'nightly-202611270959', replace: [], missed: 0 },
    },
    {
      name: 'runOnCreate: only while the schedule has never run',
      given: { spec: spec({ runOnCreate: true }), creationTime: at('2026-11-27T09:59:30Z'), status: lastRun('2026-11-27T09:59:30Z') },
      expect: { action: 'none' },
    },
    {
      name: 'the run whose Backup exists already is recorded, not made twice (a lost status write)',
      given: {
        creationTime: longStanding,
        status: lastRun('2026-11-26T03:00:00Z'),
        now: at('2026-11-27T03:00:05Z'),
        backups: [backup({ name: 'nightly-202611270300', phase: 'Running' })],
      },
      expect: { action: 'exists', slot: at('2026-11-27T03:00:00Z'), name: 'nightly-202611270300' },
    },
    {
      name: "a Backup's scheduled-time annotation counts as handled when status lost it",
      given: {
        creationTime: longStanding,
        backups: [
          backup({
            name: 'nightly-202611270300',
            phase: 'Succeeded',
            creationTime: '2026-11-27T03:00:00Z',
            scheduledTime: '2026-11-27T03:00:00Z',
          }),
        ],
      },
      expect: { action: 'none' },
    },
  ];
  it.each(cases)('$name', ({ given, expect: run }) => expect(planSchedule(input(given)).run).toEqual(run));
});

describe('catch-up after operator downtime', () => {
  const at = (t: string) => new Date(t);
  const MINUTE = 60_000;
  /** The operator's passes over one schedule from its restart: when each Backup was made, and for which time. */
  function passes(given: Partial<ScheduleInput>, since: Date, until: Date) {
    const made: { at: number; slot: string; missed: number }[] = [];
    let status = given.status;
    const backups: ScheduledBackup[] = [];
    for (let now = since.getTime(); now < until.getTime(); ) {
      const pass = input({ ...given, status, backups, reconcilingSince: since, now: new Date(now) });
      const plan = planSchedule(pass);
      if (plan.run.action === 'create') {
        made.push({ at: now, slot: plan.run.slot.toISOString(), missed: plan.run.missed });
        backups.push({
          name: plan.run.name,
          phase: 'Succeeded',
          scheduledTime: plan.run.slot.toISOString(),
          creationTime: pass.now.toISOString(),
        });
      }
      status = scheduleStatus(pass, plan, { deleted: [] });
      now += Math.min(plan.requeueAfterMs ?? Infinity, 5 * MINUTE);
    }
    return made;
  }

  it('200 schedules at 03:00 with jitter 1h, operator back at 04:05: each catches up at 04:05 plus its own jitter, not all at once', () => {
    const since = at('2026-11-27T04:05:00Z');
    const names = Array.from({ length: 200 }, (_, i) => `nightly-${i}`);
    const runs = names.map((name) => ({
      name,
      jitter: jitterMs('media', name, '1h'),
      made: passes({ name, spec: spec({ jitter: '1h' }), status: lastRun('2026-11-26T03:00:00Z') }, since, at('2026-11-27T05:10:00Z')),
    }));
    // Each made the one missed run, once, at the restart plus its jitter.
    for (const r of runs) expect(r.made).toEqual([{ at: since.getTime() + r.jitter, slot: '2026-11-27T03:00:00.000Z', missed: 0 }]);
    const perMinute = new Map<number, number>();
    for (const r of runs) perMinute.set(Math.floor(r.made[0].at / MINUTE), (perMinute.get(Math.floor(r.made[0].at / MINUTE)) ?? 0) + 1);
    expect(Math.max(...perMinute.values())).toBeLessThanOrEqual(10);
    expect(runs.filter((r) => r.made[0].at === since.getTime()).length).toBe(runs.filter((r) => r.jitter === 0).length);
  });

  type Case = { name: string; given: Partial<ScheduleInput>; expect: Partial<RunDecision> & { next?: string } };
  const jitter = jitterMs('media', 'nightly', '1h');
  const regular = new Date(Date.parse('2026-11-27T03:00:00Z') + jitter);
  const cases: Case[] = [
    {
      name: 'the catch-up waits for the restart plus the jitter; status shows that as the next time',
      given: { spec: spec({ jitter: '1h' }), reconcilingSince: at('2026-11-27T04:05:00Z'), now: at('2026-11-27T04:05:00Z') },
      expect: {
        action: 'wait',
        slot: at('2026-11-27T03:00:00Z'),
        until: new Date(Date.parse('2026-11-27T04:05:00Z') + jitter),
        next: new Date(Date.parse('2026-11-27T04:05:00Z') + jitter).toISOString(),
      },
    },
    {
      name: 'a run due after the restart is not a catch-up: it runs at its time',
      given: { spec: spec({ jitter: '1h' }), reconcilingSince: at('2026-11-27T02:00:00Z'), now: regular },
      expect: { action: 'create', slot: at('2026-11-27T03:00:00Z') },
    },
    {
      name: 'startingDeadlineSeconds is judged at the restart: back within it, the spread catch-up still runs',
      given: {
        spec: spec({ jitter: '1h', startingDeadlineSeconds: 3600 }),
        reconcilingSince: new Date(regular.getTime() + 30 * MINUTE),
        now: new Date(regular.getTime() + 30 * MINUTE + jitter),
      },
      expect: { action: 'create', slot: at('2026-11-27T03:00:00Z') },
    },
    {
      name: 'startingDeadlineSeconds is judged at the restart: back after it, skipped at once',
      given: {
        spec: spec({ jitter: '1h', startingDeadlineSeconds: 3600 }),
        reconcilingSince: new Date(regular.getTime() + 61 * MINUTE),
        now: new Date(regular.getTime() + 61 * MINUTE),
      },
      expect: { action: 'skip', reason: 'StartingDeadlineMissed' },
    },
    {
      name: 'runOnCreate of a schedule created just before the operator led (applied together) still runs right away, not after the jitter',
      given: {
        spec: spec({ jitter: '1h', runOnCreate: true }),
        status: undefined,
        creationTime: at('2026-11-27T10:00:00Z'),
        reconcilingSince: at('2026-11-27T10:00:30Z'),
        now: at('2026-11-27T10:00:30Z'),
      },
      expect: { action: 'create', slot: at('2026-11-27T10:00:00Z') },
    },
  ];
  it.each(cases)('$name', ({ given, expect: { next, ...run } }) => {
    const plan = planSchedule(input({ status: lastRun('2026-11-26T03:00:00Z'), ...given }));
    expect(plan.run).toMatchObject(run);
    if (next) expect(plan.next?.toISOString()).toBe(next);
  });
});

describe("a re-created schedule (same name) leaves its predecessor's Backups alone", () => {
  // Deleted on 1 June, created again on 10 June with runOnCreate. The old Backups still carry
  // the kopia.io/schedule label (no owner reference: they outlive the schedule).
  const old = (name: string, phase: ScheduledBackup['phase'], day: string) =>
    backup({
      name,
      phase,
      creationTime: `2026-${day}T03:00:00Z`,
      scheduledTime: `2026-${day}T03:00:00Z`,
      ...(phase === 'Running' ? {} : { completionTime: `2026-${day}T03:10:00Z` }),
    });
  const backups = [
    old('nightly-202605300300', 'Succeeded', '05-30'),
    old('nightly-202605310300', 'Failed', '05-31'),
    old('nightly-202606010300', 'Running', '06-01'),
  ];
  const reborn = input({
    spec: spec({ runOnCreate: true, failedBackupsHistoryLimit: 0 }),
    creationTime: new Date('2026-06-10T12:00:00Z'),
    now: new Date('2026-06-10T12:00:02Z'),
    backups,
  });

  it('runs on create as a new schedule: no missed runs, not blocked by the old Running one', () => {
    expect(planSchedule(reborn).run).toEqual({
      action: 'create',
      slot: new Date('2026-06-10T12:00:00Z'),
      name: 'nightly-202606101200',
      replace: [],
      missed: 0,
    });
  });

  it('neither prunes nor counts the old Failed Backups, nor lists the old Running one as active', () => {
    const plan = planSchedule(reborn);
    expect(plan.prune).toEqual([]);
    const status = scheduleStatus(reborn, plan, { deleted: [] });
    expect(status).toMatchObject({ consecutiveFailures: 0, active: ['nightly-202606101200'] });
    expect(status.lastFailureTime).toBeUndefined();
    expect(status.lastSuccessTime).toBeUndefined();
  });

  it('its own Backups count from its creation on (creation times have whole seconds)', () => {
    const own = backup({
      name: 'nightly-202606101200',
      phase: 'Failed',
      creationTime: '2026-06-10T12:00:00Z',
      completionTime: '2026-06-10T12:05:00Z',
    });
    const later = input({
      ...reborn,
      status: lastRun('2026-06-10T12:00:00Z'),
      backups: [...backups, own],
      now: new Date('2026-06-10T13:00:00Z'),
    });
    const plan = planSchedule(later);
    expect(plan.prune).toEqual(['nightly-202606101200']);
    expect(scheduleStatus(later, plan, { deleted: [] })).toMatchObject({ consecutiveFailures: 1, lastFailureTime: '2026-06-10T12:05:00Z' });
  });
});

describe('concurrency policy', () => {
  const due = { creationTime: longStanding, status: lastRun('2026-11-26T03:00:00Z'), now: new Date('2026-11-27T03:00:05Z') };
  const running = backup({ name: 'nightly-202611260300', phase: 'Running' });
  type Case = { name: string; given: Partial<ScheduleInput>; expect: Partial<RunDecision> };
  const cases: Case[] = [
    {
      name: 'Forbid (default) skips while one is Running',
      given: { backups: [running] },
      expect: {
        action: 'skip',
        reason: 'ConcurrentRunSkipped',
        message:
          'skipped the run of 2026-11-27T03:00:00Z: Backup nightly-202611260300 is still Pending or Running (concurrencyPolicy Forbid)',
      },
    },
    {
      name: 'Forbid counts a Backup with no status yet as Pending',
      given: { backups: [backup({ name: 'nightly-202611260300' })] },
      expect: { action: 'skip', reason: 'ConcurrentRunSkipped' },
    },
    {
      name: 'Forbid runs when the others are finished or being deleted',
      given: {
        backups: [
          backup({ name: 'a', phase: 'Succeeded' }),
          backup({ name: 'b', phase: 'Failed' }),
          backup({ name: 'c', phase: 'Running', deleting: true }),
        ],
      },
      expect: { action: 'create', replace: [] },
    },
    {
      name: 'Allow runs beside it',
      given: { spec: spec({ concurrencyPolicy: 'Allow' }), backups: [running] },
      expect: { action: 'create', replace: [] },
    },
    {
      name: 'Replace deletes the active ones first',
      given: {
        spec: spec({ concurrencyPolicy: 'Replace' }),
        backups: [running, backup({ name: 'other', phase: 'Pending' }), backup({ name: 'done', phase: 'Succeeded' })],
      },
      expect: { action: 'create', replace: ['nightly-202611260300', 'other'] },
    },
  ];
  it.each(cases)('$name', ({ given, expect: run }) => expect(planSchedule(input({ ...due, ...given })).run).toMatchObject(run));
});

describe('readiness', () => {
  type Case = {
    name: string;
    given: Partial<ScheduleInput>;
    expect: { status: string; reason: string; message?: string };
    kstatus: KstatusVerdict;
  };
  const cases: Case[] = [
    {
      name: 'scheduling',
      given: {},
      expect: { status: 'True', reason: 'Scheduling', message: 'backs up jellyfin at "0 3 * * *" in UTC' },
      kstatus: 'Current',
    },
    {
      name: 'suspended is healthy',
      given: { spec: spec({ suspend: true }) },
      expect: { status: 'True', reason: 'Suspended' },
      kstatus: 'Current',
    },
    {
      name: 'a bad cron field',
      given: { spec: spec({ cron: '61 3 * * *' }) },
      expect: { status: 'False', reason: 'InvalidSchedule' },
      kstatus: 'Failed',
    },
    {
      name: 'six fields',
      given: { spec: spec({ cron: '0 0 3 * * *' }) },
      expect: { status: 'False', reason: 'InvalidSchedule' },
      kstatus: 'Failed',
    },
    {
      name: 'a cron that matches no date',
      given: { spec: spec({ cron: '0 0 30 2 *' }) },
      expect: { status: 'False', reason: 'InvalidSchedule', message: 'cron "0 0 30 2 *" matches no date' },
      kstatus: 'Failed',
    },
    {
      name: 'an unknown time zone',
      given: { spec: spec({ timeZone: 'Mars/Olympus_Mons' }) },
      expect: { status: 'False', reason: 'InvalidTimeZone', message: 'unknown IANA time zone "Mars/Olympus_Mons"' },
      kstatus: 'Failed',
    },
    {
      name: 'the BackupConfig is missing',
      given: { configExists: false },
      expect: { status: 'False', reason: 'ConfigNotFound', message: 'BackupConfig media/jellyfin not found' },
      // Waited for (GitOps applies a wave in any order), not Stalled.
      kstatus: 'InProgress',
    },
  ];
  it.each(cases)('$name (kstatus $kstatus)', ({ given, expect: ready, kstatus }) => {
    const pass = input({ status: lastRun('2026-11-26T03:00:00Z'), now: new Date('2026-11-27T03:00:05Z'), ...given });
    const plan = planSchedule(pass);
    expect(plan.ready).toMatchObject(ready);
    // Suspended is Ready (Current), never Reconciling; a bad spec is Stalled; a missing config is waited for.
    const schedule = { metadata: { generation: pass.generation }, status: scheduleStatus(pass, plan, { deleted: [] }) };
    expect(kstatusOf(schedule).status).toBe(kstatus);
    expect(kstatusRuleBreaks(schedule)).toEqual([]);
    if (ready.reason !== 'Scheduling') {
      // Not Ready or suspended: no run, no next time, no wake-up (watches wake it when something changes).
      expect(plan.run).toEqual({ action: 'none' });
      expect(plan.next).toBeUndefined();
      expect(plan.requeueAfterMs).toBeUndefined();
    }
  });
});

describe('failed history', () => {
  const failed = (name: string, completionTime: string) => backup({ name, phase: 'Failed', completionTime });
  const cases: { name: string; given: [ScheduledBackup[], number | undefined]; expect: string[] }[] = [
    {
      name: 'within the default limit of 3',
      given: [[failed('a', '2026-11-01T03:00:00Z'), failed('b', '2026-11-02T03:00:00Z')], undefined],
      expect: [],
    },
    {
      name: 'the oldest beyond the limit, oldest first; Succeeded and active ones untouched',
      given: [
        [
          failed('d', '2026-11-04T03:00:00Z'),
          failed('a', '2026-11-01T03:00:00Z'),
          backup({ name: 'ok', phase: 'Succeeded', completionTime: '2026-10-01T03:00:00Z' }),
          failed('c', '2026-11-03T03:00:00Z'),
          backup({ name: 'run', phase: 'Running' }),
          failed('b', '2026-11-02T03:00:00Z'),
        ],
        2,
      ],
      expect: ['a', 'b'],
    },
    { name: 'limit 0 keeps none', given: [[failed('a', '2026-11-01T03:00:00Z')], 0], expect: ['a'] },
    { name: 'already being deleted', given: [[{ ...failed('a', '2026-11-01T03:00:00Z'), deleting: true }], 0], expect: [] },
  ];
  it.each(cases)('$name', ({ given, expect: prune }) => expect(failedToPrune(...given)).toEqual(prune));
});

describe('failure streak', () => {
  const b = (name: string, phase: 'Succeeded' | 'Failed', completionTime: string) => backup({ name, phase, completionTime });
  type Case = { name: string; given: [Parameters<typeof failureStreak>[0], ScheduledBackup[]]; expect: ReturnType<typeof failureStreak> };
  const cases: Case[] = [
    { name: 'no Backups', given: [undefined, []], expect: { consecutiveFailures: 0 } },
    {
      name: 'failures after the last success',
      given: [
        undefined,
        [b('a', 'Failed', '2026-11-01T03:10:00Z'), b('b', 'Succeeded', '2026-11-02T03:10:00Z'), b('c', 'Failed', '2026-11-03T03:10:00Z')],
      ],
      expect: { consecutiveFailures: 1, lastSuccessTime: '2026-11-02T03:10:00Z', lastFailureTime: '2026-11-03T03:10:00Z' },
    },
    {
      name: 'pruned failures keep counting',
      given: [
        { consecutiveFailures: 5, lastFailureTime: '2026-11-05T03:10:00Z' },
        [b('d', 'Failed', '2026-11-04T03:10:00Z'), b('e', 'Failed', '2026-11-05T03:10:00Z'), b('f', 'Failed', '2026-11-06T03:10:00Z')],
      ],
      expect: { consecutiveFailures: 6, lastFailureTime: '2026-11-06T03:10:00Z' },
    },
    {
      name: 'a success starts it over',
      given: [
        { consecutiveFailures: 5, lastFailureTime: '2026-11-05T03:10:00Z' },
        [b('e', 'Failed', '2026-11-05T03:10:00Z'), b('g', 'Succeeded', '2026-11-06T03:10:00Z')],
      ],
      expect: { consecutiveFailures: 0, lastSuccessTime: '2026-11-06T03:10:00Z', lastFailureTime: '2026-11-05T03:10:00Z' },
    },
    {
      name: 'a lost status is recounted from the Backups',
      given: [{}, [b('e', 'Failed', '2026-11-05T03:10:00Z'), b('f', 'Failed', '2026-11-06T03:10:00Z')]],
      expect: { consecutiveFailures: 2, lastFailureTime: '2026-11-06T03:10:00Z' },
    },
  ];
  it.each(cases)('$name', ({ given, expect: streak }) => expect(failureStreak(...given)).toEqual(streak));
});

describe('Backup names and objects', () => {
  const cases: { given: [string, string]; expect: string }[] = [
    { given: ['nightly', '2026-11-27T03:00:00Z'], expect: 'nightly-202611270300' },
    { given: ['jellyfin-nightly', '2026-03-29T01:00:59Z'], expect: 'jellyfin-nightly-202603290100' },
  ];
  it.each(cases)('$given → $expect', ({ given: [schedule, slot], expect: name }) =>
    expect(backupName(schedule, new Date(slot))).toBe(name),
  );

  it('stays a valid name of at most 63 characters, distinct per schedule and time', () => {
    const long = `${'a'.repeat(30)}.${'b'.repeat(32)}`;
    const names = [
      backupName(long, new Date('2026-11-27T03:00:00Z')),
      backupName(`${long.slice(0, 62)}c`, new Date('2026-11-27T03:00:00Z')),
    ];
    for (const n of names) {
      expect(n.length).toBeLessThanOrEqual(63);
      expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
      expect(n.endsWith('-202611270300')).toBe(true);
    }
    expect(names[0]).not.toBe(names[1]);
  });

  it('labels the Backup with its schedule, records the time, and sets no owner', () => {
    const b = desiredBackup({ namespace: 'media', name: 'nightly', configName: 'jellyfin' }, new Date('2026-11-27T03:00:00Z'));
    expect(b).toEqual({
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: {
        name: 'nightly-202611270300',
        namespace: 'media',
        labels: { [SCHEDULE_LABEL]: 'nightly' },
        annotations: { [SCHEDULED_TIME_ANNOTATION]: '2026-11-27T03:00:00Z' },
      },
      spec: { configRef: { name: 'jellyfin' } },
    });
    expect(SCHEDULE_LABEL).toBe('kopia.io/schedule');
  });
});

describe('status', () => {
  const due = input({ creationTime: longStanding, status: lastRun('2026-11-26T03:00:00Z'), now: new Date('2026-11-27T03:00:05Z') });

  it('records a made run, its Backup as active and the next time', () => {
    const status = scheduleStatus(due, planSchedule(due), { deleted: [] });
    expect(status).toMatchObject({
      observedGeneration: 1,
      lastScheduleTime: '2026-11-27T03:00:00Z',
      lastBackup: 'nightly-202611270300',
      nextScheduleTime: '2026-11-28T03:00:00Z',
      active: ['nightly-202611270300'],
      consecutiveFailures: 0,
    });
    expect(status.conditions).toEqual([
      expect.objectContaining({
        type: 'Ready',
        status: 'True',
        reason: 'Scheduling',
        observedGeneration: 1,
        lastTransitionTime: '2026-11-27T03:00:05Z',
      }),
      expect.objectContaining({ type: 'Reconciling', status: 'False', reason: 'Scheduling', observedGeneration: 1 }),
      expect.objectContaining({ type: 'Stalled', status: 'False', reason: 'Scheduling', observedGeneration: 1 }),
    ]);
  });

  it('is unchanged on the next pass when nothing happened (no write at rest)', () => {
    const first = scheduleStatus(due, planSchedule(due), { deleted: [] });
    const later = input({
      creationTime: longStanding,
      status: first,
      now: new Date('2026-11-27T09:00:00Z'),
      backups: [backup({ name: 'nightly-202611270300', scheduledTime: '2026-11-27T03:00:00Z' })],
    });
    const plan = planSchedule(later);
    expect(plan.run).toEqual({ action: 'none' });
    expect(scheduleStatus(later, plan, { deleted: [] })).toEqual(first);
  });

  it('records a skipped run and leaves lastScheduleTime alone', () => {
    const skipping = { ...due, backups: [backup({ name: 'nightly-202611260300', phase: 'Running' as const })] };
    const status = scheduleStatus(skipping, planSchedule(skipping), { deleted: [] });
    expect(status).toMatchObject({
      lastScheduleTime: '2026-11-26T03:00:00Z',
      lastSkipped: { scheduleTime: '2026-11-27T03:00:00Z', reason: 'ConcurrentRunSkipped' },
      nextScheduleTime: '2026-11-28T03:00:00Z',
      active: ['nightly-202611260300'],
    });
  });

  it('drops replaced Backups from active', () => {
    const replacing = {
      ...due,
      spec: spec({ concurrencyPolicy: 'Replace' as const }),
      backups: [backup({ name: 'nightly-202611260300', phase: 'Running' as const })],
    };
    const status = scheduleStatus(replacing, planSchedule(replacing), { deleted: ['nightly-202611260300'] });
    expect(status.active).toEqual(['nightly-202611270300']);
  });
});
