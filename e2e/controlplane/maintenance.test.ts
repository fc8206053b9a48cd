// Maintenance on the real control plane with real kopia and a filesystem repository: the
// default Maintenance a Repository gets runs at once and sets the owner kopia records; a
// manual full run; a user-written Maintenance replaces the default and a second one gets
// Conflict; another owner is left alone under Never and taken over under Force; Stale from
// the operator's clock moved by hand; the index-blob warning against kopia's own count.
import { chmodSync } from 'node:fs';
import {
  Jobs,
  KopiaMaintenances,
  KopiaRepositories,
  PersistentVolumeClaims,
  PersistentVolumes,
  Secrets,
} from '../../operator/kube/resources.js';
import { conditionOf, eventsAbout, until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { KopiaCli } from '../support/kopia-cli.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { FakeClock, startTestOperator } from '../support/operator.js';

const t = useTestNamespace('maint');
const PASSWORD = 'maintenance password';
const OWNER = 'maintenance@cluster-a';
const clock = new FakeClock();
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let kopia: KopiaCli;

const maintenance = (name: string) => t.client.get<Obj>(KopiaMaintenances, t.ns, name);
const maintenanceInfo = async () => JSON.parse(await kopia.run('maintenance', 'info', '--json')) as { owner: string };
const indexBlobs = async () => (JSON.parse(await kopia.run('index', 'list', '--json')) as unknown[]).length;

/** Waits for the Maintenance's status to satisfy `ok` and its Job to be gone. */
async function settled(name: string, what: string, ok: (m: Obj) => boolean): Promise<Obj> {
  let m: Obj | undefined;
  await until(
    what,
    async () => {
      m = await maintenance(name);
      return ok(m) && !m.status?.jobName && (await t.client.list(Jobs, t.ns)).items.length === 0;
    },
    120000,
    250,
  );
  return m!;
}

async function runNow(name: string, request: string): Promise<Obj> {
  await t.client.patch(KopiaMaintenances, t.ns, name, { metadata: { annotations: { 'kopia.io/run-maintenance': request } } });
  return settled(name, `the run asked for by ${request}`, (m) => m.status?.manualRunHandled === request);
}

async function eventReasons(name: string): Promise<string[]> {
  return (await eventsAbout(t.client, t.ns, name)).map((e) => e.reason);
}

beforeAll(async () => {
  operator = await startTestOperator(t.ns, { now: clock.now, clusterName: 'cluster-a' });
  await t.client.create(Secrets, secretObject({ name: 'nas-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: PASSWORD } }));
  await t.client.create(PersistentVolumeClaims, claimObject({ name: 'nas', namespace: t.ns }));
  await t.client.create(KopiaRepositories, repositoryObject({ name: 'nas', namespace: t.ns }));
  await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' });
  await until('claim nas to bind', async () => (await t.client.get<Obj>(PersistentVolumeClaims, t.ns, 'nas')).status?.phase === 'Bound');
  const pvc = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, 'nas');
  const dir = (await t.client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path as string;
  chmodSync(dir, 0o777); // plain kopia runs as the movers' uid (KopiaCli)
  kopia = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, dir, PASSWORD, { username: 'alice', hostname: 'laptop' });
});
afterAll(() => {
  kopia?.close();
  operator?.stop();
});

describe('the default Maintenance', () => {
  it('is created for the Repository, runs quick maintenance at once and becomes the owner kopia records', async () => {
    const m = await settled('nas', 'the first run of the default Maintenance', (o) => o.status?.lastQuick?.result === 'Succeeded');
    expect(m.metadata.labels).toMatchObject({ 'kopia.io/default-maintenance': 'true' });
    expect(m.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'Repository', name: 'nas' });
    expect(m.status).toMatchObject({ owner: OWNER, indexBlobs: { count: await indexBlobs(), warningThreshold: 1000 } });
    expect(Date.parse(m.status.lastQuick.endTime)).toBeGreaterThanOrEqual(Date.parse(m.status.lastQuick.startTime));
    expect(m.status.nextQuickTime).toBeDefined();
    expect(m.status.nextFullTime).toBeDefined();
    expect(conditionOf(m)).toMatchObject({ status: 'True', reason: 'Scheduling' });
    expect(conditionOf(m, 'Stale')).toMatchObject({ status: 'False' });
    expect((await maintenanceInfo()).owner).toBe(OWNER);
    // The repository was created by the operator's verify identity: adopted, not taken over.
    const reasons = await eventReasons('nas');
    expect(reasons).toEqual(expect.arrayContaining(['MaintenanceStarted', 'MaintenanceOwnerSet', 'MaintenanceSucceeded']));
    expect(reasons).not.toContain('MaintenanceTakenOver');
  });

  it('runs a full maintenance when asked, recorded beside the quick one', async () => {
    const m = await runNow('nas', 'full-1');
    expect(m.status.lastFull).toMatchObject({ result: 'Succeeded', manual: true });
    expect(m.status.lastSuccessfulFullTime).toBe(m.status.lastFull.endTime);
    expect(m.status.lastQuick).toMatchObject({ result: 'Succeeded' });
    expect((await maintenanceInfo()).owner).toBe(OWNER);
  });
});

describe('one Maintenance per repository', () => {
  it('a user-written Maintenance replaces the default; a second one gets Conflict and runs nothing', async () => {
    await t.client.create(KopiaMaintenances, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Maintenance',
      metadata: { name: 'mine', namespace: t.ns },
      spec: { repository: { name: 'nas' }, owner: OWNER },
    } as Obj);
    await until('the default Maintenance to go', async () => !(await t.client.getOrUndefined(KopiaMaintenances, t.ns, 'nas')));
    // Its first run finds the owner it names already in place.
    const mine = await settled('mine', 'the first run of mine', (o) => o.status?.lastQuick?.result === 'Succeeded');
    expect(mine.status.owner).toBe(OWNER);

    await t.client.create(KopiaMaintenances, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Maintenance',
      metadata: { name: 'second', namespace: t.ns, annotations: { 'kopia.io/run-maintenance': 'now' } },
      spec: { repository: { name: 'nas' } },
    } as Obj);
    const second = await waitForReady(t.client, KopiaMaintenances, t.ns, 'second', { status: 'False', reason: 'Conflict' });
    expect(conditionOf(second).message).toContain(`${t.ns}/mine`);
    expect(second.status.lastQuick).toBeUndefined();
    expect((await t.client.list(Jobs, t.ns)).items).toEqual([]);
    expect(await eventReasons('second')).toContain('Conflict');
    expect(conditionOf(await maintenance('mine'))).toMatchObject({ status: 'True' });
    await t.client.delete(KopiaMaintenances, t.ns, 'second');
  });
});

describe('another owner', () => {
  it('Never: the condition names the owner and nothing runs; Force: takes over, with an Event', async () => {
    await kopia.run('maintenance', 'set', '--owner=alice@laptop');
    const refused = await runNow('mine', 'quick-owned');
    expect(conditionOf(refused)).toMatchObject({ status: 'False', reason: 'OwnedByOther' });
    expect(conditionOf(refused).message).toContain('alice@laptop');
    expect(conditionOf(refused).message).toContain('takeoverPolicy Never');
    expect(refused.status.owner).toBe('alice@laptop');
    expect((await maintenanceInfo()).owner).toBe('alice@laptop');
    expect(await eventReasons('mine')).toContain('OwnedByOther');

    await t.client.patch(KopiaMaintenances, t.ns, 'mine', { spec: { takeoverPolicy: 'Force' } });
    const taken = await runNow('mine', 'quick-force');
    expect(taken.status).toMatchObject({ owner: OWNER, lastQuick: { result: 'Succeeded' } });
    expect(conditionOf(taken)).toMatchObject({ status: 'True', reason: 'Scheduling' });
    expect((await maintenanceInfo()).owner).toBe(OWNER);
    const takeover = (await eventsAbout(t.client, t.ns, 'mine')).find((e) => e.reason === 'MaintenanceTakenOver');
    expect(takeover?.message).toContain('alice@laptop');
  });
});

describe('alarms', () => {
  it('more index blobs than the threshold: a condition and a Warning, with kopia’s own count', async () => {
    // Each snapshot by another client writes index blobs that no maintenance has compacted yet.
    for (let i = 0; i < 10; i++) await kopia.run('snapshot', 'create', '/etc/hostname', '--no-auto-maintenance');
    await t.client.patch(KopiaMaintenances, t.ns, 'mine', { spec: { indexBlobWarningThreshold: 1 } });
    const m = await runNow('mine', 'quick-index');
    const count = await indexBlobs();
    expect(m.status.indexBlobs).toEqual({ count, warningThreshold: 1 });
    expect(count).toBeGreaterThan(1);
    expect(conditionOf(m, 'TooManyIndexBlobs')).toMatchObject({ status: 'True', reason: 'TooManyIndexBlobs' });
    expect(
      (await eventsAbout(t.client, t.ns, 'mine')).filter((e) => e.reason === 'TooManyIndexBlobs' && e.type === 'Warning'),
    ).toHaveLength(1);

    await t.client.patch(KopiaMaintenances, t.ns, 'mine', { spec: { indexBlobWarningThreshold: 1000 } });
    await until('the warning to clear', async () => conditionOf(await maintenance('mine'), 'TooManyIndexBlobs')?.status === 'False');
  });

  it('Stale once the operator’s clock passes the second full cron time (plus jitter) since the last successful full run', async () => {
    // No scheduled run may end the staleness while the clock moves.
    await t.client.patch(KopiaMaintenances, t.ns, 'mine', { spec: { suspend: true } });
    await until('suspend to be seen', async () => conditionOf(await maintenance('mine'))?.reason === 'Suspended');
    const current = await maintenance('mine');
    expect(conditionOf(current, 'Stale')).toMatchObject({ status: 'False', reason: 'MaintenanceCurrent' });
    // mine has had no full run of its own: its staleness counts from its creation. The
    // second "0 3 * * *" after it is at most two days later, and the default jitter below 1h.
    clock.set(new Date(Date.parse(current.metadata.creationTimestamp!) + 49 * 3600_000 + 60_000));
    await t.client.patch(KopiaMaintenances, t.ns, 'mine', { metadata: { labels: { nudge: '1' } } });
    await until('Stale', async () => conditionOf(await maintenance('mine'), 'Stale')?.status === 'True');
    const stale = await maintenance('mine');
    expect(conditionOf(stale, 'Stale')).toMatchObject({ reason: 'MaintenanceStale' });
    expect(conditionOf(stale, 'Stale').message).toContain('two full maintenance times (plus jitter) have passed since without a success');
    expect((await eventsAbout(t.client, t.ns, 'mine')).some((e) => e.reason === 'MaintenanceStale' && e.type === 'Warning')).toBe(true);
  });
});
