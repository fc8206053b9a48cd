// BackupSchedule on the real control plane, under an injected clock: the test moves time,
// then touches the schedule so it reconciles at the new time (no sleeps). The test plays
// the part of the Backup controller where one is needed, setting Backup phases through the
// status subresource; its crons fire about twelve hours from the real time, so an operator
// on the real clock (another test file's) never makes a run here.
import { KopiaBackupConfigs, KopiaBackups, KopiaBackupSchedules } from '../../operator/kube/resources.js';
import { jitterMs } from '../../operator/backupschedule/schedule-plan.js';
import { validObjects } from '../../operator/test-support/kopia-objects.js';
import { eventsAbout, until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { FakeClock, startTestOperator } from '../support/operator.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const t = useTestNamespace('schedule');
const clock = new FakeClock();
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let touches = 0;

const DAY = 24 * 3600_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const stamp = (ms: number) => iso(ms).replace(/[-:T]/g, '').slice(0, 12);

beforeAll(async () => {
  operator = await startTestOperator(t.ns, { now: clock.now });
  await t.client.create(KopiaBackupConfigs, { ...validObjects.BackupConfig(), metadata: { name: 'cfg', namespace: t.ns } });
});
afterAll(() => operator.stop());
beforeEach(() => clock.set(new Date()));

/** A daily cron about twelve hours from now (UTC), and its first time. */
function dailyCron(): { cron: string; first: number } {
  const now = new Date();
  const first = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), now.getUTCHours() + 12, now.getUTCMinutes());
  const at = new Date(first);
  return { cron: `${at.getUTCMinutes()} ${at.getUTCHours()} * * *`, first };
}

async function createSchedule(name: string, spec: Record<string, unknown>): Promise<void> {
  await t.client.create(KopiaBackupSchedules, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupSchedule',
    metadata: { name, namespace: t.ns },
    spec: { configRef: { name: 'cfg' }, ...spec },
  } as Obj);
}

const getSchedule = (name: string) => t.client.get<Obj>(KopiaBackupSchedules, t.ns, name);

/** Makes the schedule reconcile at the clock's time and waits until that reconcile is done; returns the touched version. */
async function touch(name: string): Promise<string> {
  const n = String(++touches);
  const touched = await t.client.patch<Obj>(KopiaBackupSchedules, t.ns, name, { metadata: { annotations: { 'test.kopia.io/touch': n } } });
  const cache = operator.manager.informers.get<Obj>(KopiaBackupSchedules);
  await until(
    'the operator to see the touch',
    async () => cache.get(`${t.ns}/${name}`)?.metadata.annotations?.['test.kopia.io/touch'] === n,
    10000,
    10,
  );
  await operator.manager.whenIdle();
  return touched.metadata.resourceVersion!;
}

async function backupsOf(schedule: string): Promise<Obj[]> {
  const list = await t.client.list<Obj>(KopiaBackups, t.ns, { labelSelector: `kopia.io/schedule=${schedule}` });
  return list.items.filter((b) => !b.metadata.deletionTimestamp);
}

/** Plays the Backup controller: sets a phase through the status subresource. */
async function setPhase(name: string, phase: string, completionTime?: string): Promise<void> {
  await t.client.patch(KopiaBackups, t.ns, name, { status: { phase, ...(completionTime ? { completionTime } : {}) } }, 'merge', 'status');
}

async function waitForStatus(name: string, what: string, check: (s: any) => boolean): Promise<Obj> {
  await until(`${name}: ${what}`, async () => check((await getSchedule(name)).status ?? {}), 30000, 100);
  return getSchedule(name);
}

async function eventReasons(name: string, type?: string): Promise<string[]> {
  return (await eventsAbout(t.client, t.ns, name)).filter((e) => !type || e.type === type).map((e) => e.reason);
}

describe('BackupSchedule', () => {
  const nightly = dailyCron();

  it('fires at its due time under the injected clock and makes exactly one Backup', async () => {
    await createSchedule('nightly', { cron: nightly.cron });
    const ready = await waitForReady(t.client, KopiaBackupSchedules, t.ns, 'nightly', { status: 'True', reason: 'Scheduling' });
    expect(ready.status.nextScheduleTime).toBe(iso(nightly.first));
    expect(await backupsOf('nightly')).toEqual([]);

    clock.set(new Date(nightly.first + 5000));
    await touch('nightly');
    const backups = await backupsOf('nightly');
    expect(backups.map((b) => b.metadata.name)).toEqual([`nightly-${stamp(nightly.first)}`]);
    const [b] = backups;
    expect(b.metadata.labels).toEqual({ 'kopia.io/schedule': 'nightly' });
    expect(b.metadata.annotations).toMatchObject({ 'kopia.io/scheduled-time': iso(nightly.first) });
    expect(b.metadata.ownerReferences).toBeUndefined();
    expect(b.spec.configRef).toEqual({ name: 'cfg' });
    expect(b.spec.snapshot).toBeUndefined();
    const status = (await getSchedule('nightly')).status;
    expect(status).toMatchObject({
      lastScheduleTime: iso(nightly.first),
      lastBackup: b.metadata.name,
      nextScheduleTime: iso(nightly.first + DAY),
      active: [b.metadata.name],
    });
    expect(await eventReasons('nightly')).toContain('BackupScheduled');

    // Reconciling again at the same time makes nothing more.
    await touch('nightly');
    expect((await backupsOf('nightly')).length).toBe(1);
  });

  it('Forbid skips a due run while a Backup of the schedule is Running, and runs again once it finished', async () => {
    const [first] = await backupsOf('nightly');
    await setPhase(first.metadata.name!, 'Running');
    clock.set(new Date(nightly.first + DAY + 5000));
    await touch('nightly');
    const skipped = await waitForStatus('nightly', 'a skipped run', (s) => s.lastSkipped?.scheduleTime === iso(nightly.first + DAY));
    expect(skipped.status.lastSkipped.reason).toBe('ConcurrentRunSkipped');
    expect(skipped.status.lastScheduleTime).toBe(iso(nightly.first));
    expect(skipped.status.nextScheduleTime).toBe(iso(nightly.first + 2 * DAY));
    expect((await backupsOf('nightly')).length).toBe(1);
    expect(await eventReasons('nightly', 'Warning')).toContain('ConcurrentRunSkipped');

    await setPhase(first.metadata.name!, 'Succeeded', iso(nightly.first + 600_000));
    clock.set(new Date(nightly.first + 2 * DAY + 5000));
    await touch('nightly');
    const names = (await backupsOf('nightly')).map((b) => b.metadata.name).sort();
    expect(names).toEqual([first.metadata.name, `nightly-${stamp(nightly.first + 2 * DAY)}`]);
    const status = (await getSchedule('nightly')).status;
    expect(status).toMatchObject({ lastSuccessTime: iso(nightly.first + 600_000), consecutiveFailures: 0 });
  });

  it('suspend stops the runs; the schedule stays Ready (reason Suspended) with no next time', async () => {
    await t.client.patch(KopiaBackupSchedules, t.ns, 'nightly', { spec: { suspend: true } });
    const suspended = await waitForReady(t.client, KopiaBackupSchedules, t.ns, 'nightly', { status: 'True', reason: 'Suspended' });
    expect(suspended.status.nextScheduleTime).toBeUndefined();
    clock.set(new Date(nightly.first + 3 * DAY + 5000));
    await touch('nightly');
    expect((await backupsOf('nightly')).length).toBe(2);
  });

  it('Replace deletes the active Backup and makes the new one', async () => {
    const { cron, first } = dailyCron();
    await createSchedule('replacer', { cron, concurrencyPolicy: 'Replace' });
    await waitForReady(t.client, KopiaBackupSchedules, t.ns, 'replacer', { status: 'True', reason: 'Scheduling' });
    clock.set(new Date(first + 5000));
    await touch('replacer');
    expect((await backupsOf('replacer')).map((b) => b.metadata.name)).toEqual([`replacer-${stamp(first)}`]);
    clock.set(new Date(first + DAY + 5000));
    await touch('replacer');
    await until('the replaced Backup to be gone', async () => (await backupsOf('replacer')).length === 1);
    expect((await backupsOf('replacer')).map((b) => b.metadata.name)).toEqual([`replacer-${stamp(first + DAY)}`]);
    expect(await eventReasons('replacer')).toContain('BackupsReplaced');
  });

  it('runOnCreate makes one Backup right away', async () => {
    await createSchedule('eager', { cron: dailyCron().cron, runOnCreate: true });
    await until('the first Backup', async () => (await backupsOf('eager')).length === 1);
    const status = await waitForStatus('eager', 'the run recorded', (s) => !!s.lastScheduleTime);
    expect(status.status.lastBackup).toBe((await backupsOf('eager'))[0].metadata.name);
    await touch('eager');
    expect((await backupsOf('eager')).length).toBe(1);
  });

  it('jitter gives the same next time after an operator restart, and the restart writes nothing', async () => {
    const { cron, first } = dailyCron();
    await createSchedule('jittered', { cron, jitter: '30m' });
    const before = await waitForReady(t.client, KopiaBackupSchedules, t.ns, 'jittered', { status: 'True', reason: 'Scheduling' });
    const delay = Date.parse(before.status.nextScheduleTime) - first;
    expect(delay).toBe(jitterMs(t.ns, 'jittered', '30m'));
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThan(30 * 60_000);

    operator.stop();
    operator = await startTestOperator(t.ns, { now: clock.now });
    const touched = await touch('jittered');
    const after = await getSchedule('jittered');
    expect(after.status.nextScheduleTime).toBe(before.status.nextScheduleTime);
    expect(after.metadata.resourceVersion).toBe(touched);
  });

  it('an invalid cron or time zone: Ready=False with the reason and one Warning Event, no hot loop', async () => {
    const { cron } = dailyCron();
    await createSchedule('bad-cron', { cron: '61 3 * * *' });
    await createSchedule('bad-zone', { cron, timeZone: 'Mars/Olympus_Mons' });
    const badCron = await waitForReady(t.client, KopiaBackupSchedules, t.ns, 'bad-cron', { status: 'False', reason: 'InvalidSchedule' });
    expect(badCron.status.nextScheduleTime).toBeUndefined();
    const badZone = await waitForReady(t.client, KopiaBackupSchedules, t.ns, 'bad-zone', { status: 'False', reason: 'InvalidTimeZone' });
    expect(badZone.status.conditions[0].message).toBe('unknown IANA time zone "Mars/Olympus_Mons"');
    await until('Warning Events', async () => {
      const reasons = [...(await eventReasons('bad-cron', 'Warning')), ...(await eventReasons('bad-zone', 'Warning'))];
      return reasons.includes('InvalidSchedule') && reasons.includes('InvalidTimeZone');
    });
    // Reconciling again writes nothing and records nothing new.
    const touched = await touch('bad-cron');
    expect((await getSchedule('bad-cron')).metadata.resourceVersion).toBe(touched);
    const events = (await eventsAbout(t.client, t.ns, 'bad-cron')).filter((e) => e.reason === 'InvalidSchedule');
    expect(events.map((e) => e.count)).toEqual([1]);
    expect(await backupsOf('bad-cron')).toEqual([]);

    await t.client.patch(KopiaBackupSchedules, t.ns, 'bad-cron', { spec: { cron } });
    await waitForReady(t.client, KopiaBackupSchedules, t.ns, 'bad-cron', { status: 'True', reason: 'Scheduling' });
  });

  it('ConfigNotFound until the BackupConfig exists', async () => {
    await createSchedule('orphan', { cron: dailyCron().cron, configRef: { name: 'later' } });
    const orphan = await waitForReady(t.client, KopiaBackupSchedules, t.ns, 'orphan', { status: 'False', reason: 'ConfigNotFound' });
    expect(orphan.status.conditions[0].message).toBe(`BackupConfig ${t.ns}/later not found`);
    expect(await eventReasons('orphan', 'Warning')).toContain('ConfigNotFound');
    await t.client.create(KopiaBackupConfigs, { ...validObjects.BackupConfig(), metadata: { name: 'later', namespace: t.ns } });
    await waitForReady(t.client, KopiaBackupSchedules, t.ns, 'orphan', { status: 'True', reason: 'Scheduling' });
  });

  it('deletes Failed Backups beyond failedBackupsHistoryLimit, oldest first, never a Succeeded one; failures keep counting', async () => {
    // Earlier runs of the schedule, made after it (Backups older than their schedule are a
    // predecessor's, not its own). Suspended: while they arrive, an older one is the latest
    // run time seen, and a run would be due; pruning and counting go on regardless.
    await createSchedule('flaky', { cron: dailyCron().cron, failedBackupsHistoryLimit: 2, suspend: true });
    const base = Date.now() - 4 * DAY - 3600_000;
    const made: [string, string, number][] = [
      ['flaky-ok', 'Succeeded', base],
      ['flaky-f1', 'Failed', base + DAY],
      ['flaky-f2', 'Failed', base + 2 * DAY],
      ['flaky-f3', 'Failed', base + 3 * DAY],
      ['flaky-f4', 'Failed', base + 4 * DAY],
    ];
    for (const [name, phase, at] of made) {
      await t.client.create(KopiaBackups, {
        apiVersion: 'kopia.io/v1alpha1',
        kind: 'Backup',
        metadata: { name, namespace: t.ns, labels: { 'kopia.io/schedule': 'flaky' }, annotations: { 'kopia.io/scheduled-time': iso(at) } },
        spec: { configRef: { name: 'cfg' } },
      } as Obj);
      await setPhase(name, phase, iso(at + 60_000));
    }
    await until('pruning to the limit', async () => (await backupsOf('flaky')).length === 3);
    expect((await backupsOf('flaky')).map((b) => b.metadata.name).sort()).toEqual(['flaky-f3', 'flaky-f4', 'flaky-ok']);
    const status = await waitForStatus('flaky', '4 failures', (s) => s.consecutiveFailures === 4);
    expect(status.status.lastSuccessTime).toBe(iso(base + 60_000));
    const reasons = await eventReasons('flaky');
    expect(reasons).toEqual(expect.arrayContaining(['FailedBackupsPruned', 'BackupsFailing']));

    // The pruned failures still count after the Backups are gone.
    await touch('flaky');
    expect((await getSchedule('flaky')).status.consecutiveFailures).toBe(4);
  });

  it("a schedule created again under a deleted one's name leaves the old Backups alone and starts afresh", async () => {
    // Left by the deleted schedule (no owner reference), nine days ago, Failed.
    const old = Date.now() - 9 * DAY;
    const left = await t.client.create<Obj>(KopiaBackups, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: {
        name: `reborn-${stamp(old)}`,
        namespace: t.ns,
        labels: { 'kopia.io/schedule': 'reborn' },
        annotations: { 'kopia.io/scheduled-time': iso(old) },
      },
      spec: { configRef: { name: 'cfg' } },
    } as Obj);
    await setPhase(`reborn-${stamp(old)}`, 'Failed', iso(old + 60_000));
    // Creation times have whole seconds: the schedule must come in a later one.
    const leftAt = Date.parse(left.metadata.creationTimestamp!);
    await until('a later second', async () => Date.now() >= leftAt + 1000, 5000, 50);
    clock.set(new Date());
    await createSchedule('reborn', { cron: dailyCron().cron, runOnCreate: true, failedBackupsHistoryLimit: 0 });
    const created = Date.parse((await getSchedule('reborn')).metadata.creationTimestamp!);
    await until('the runOnCreate Backup', async () => (await backupsOf('reborn')).length === 2);
    const status = await waitForStatus('reborn', 'the run recorded', (s) => !!s.lastScheduleTime);
    expect(status.status).toMatchObject({ lastScheduleTime: iso(created), consecutiveFailures: 0 });
    expect(status.status.lastFailureTime).toBeUndefined();
    await touch('reborn');
    expect((await backupsOf('reborn')).map((b) => b.metadata.name).sort()).toEqual(
      [`reborn-${stamp(created)}`, `reborn-${stamp(old)}`].sort(),
    );
    const scheduled = (await eventsAbout(t.client, t.ns, 'reborn')).find((e) => e.reason === 'BackupScheduled');
    expect(scheduled.message).not.toContain('missed');
  });

  it('after operator downtime makes one catch-up run only, and skips one past startingDeadlineSeconds', async () => {
    const { cron, first } = dailyCron();
    await createSchedule('catchup', { cron });
    await createSchedule('late', { cron, startingDeadlineSeconds: 600 });
    await waitForReady(t.client, KopiaBackupSchedules, t.ns, 'catchup', { status: 'True', reason: 'Scheduling' });
    await waitForReady(t.client, KopiaBackupSchedules, t.ns, 'late', { status: 'True', reason: 'Scheduling' });

    operator.stop();
    // Down for four cron times; back an hour after the last.
    clock.set(new Date(first + 3 * DAY + 3600_000));
    operator = await startTestOperator(t.ns, { now: clock.now });
    await until('the catch-up run', async () => (await backupsOf('catchup')).length > 0);
    await operator.manager.whenIdle();
    expect((await backupsOf('catchup')).map((b) => b.metadata.name)).toEqual([`catchup-${stamp(first + 3 * DAY)}`]);
    const scheduled = (await eventsAbout(t.client, t.ns, 'catchup')).find((e) => e.reason === 'BackupScheduled');
    expect(scheduled.message).toContain('3 earlier run(s) missed');

    const late = await waitForStatus('late', 'a skipped run', (s) => !!s.lastSkipped);
    expect(late.status.lastSkipped).toMatchObject({ scheduleTime: iso(first + 3 * DAY), reason: 'StartingDeadlineMissed' });
    expect(late.status.nextScheduleTime).toBe(iso(first + 4 * DAY));
    expect(await backupsOf('late')).toEqual([]);
    expect(await eventReasons('late', 'Warning')).toContain('StartingDeadlineMissed');
  });
});
