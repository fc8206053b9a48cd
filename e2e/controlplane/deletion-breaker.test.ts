// The mass-deletion breaker counts retention expiries across all backups of one repository,
// on the real control plane with real kopia: 40 BackupConfigs with nine days of history
// each are lowered from keepDaily 14 to 7 (three expiries each, 120 in all) at a budget of
// 10. At most 10 snapshots go; the rest of the backups wait, said by a condition and an
// Event with the release command; a release lets exactly those through, and a backup
// started afterwards waits again. A second Repository object over the same kopia repository
// shares that budget, and its Maintenance yields to the acting one.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaMaintenances,
  KopiaRepositories,
  PersistentVolumeClaims,
  PersistentVolumes,
  Secrets,
} from '../../operator/kube/resources.js';
import { removeTree } from '../support/remove-tree.js';
import { conditionOf, eventsAbout, until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { KopiaCli } from '../support/kopia-cli.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';

const t = useTestNamespace('breaker');
const PASSWORD = 'breaker password';
const CONFIGS = 40;
const HISTORY_DAYS = 9;
const MAX_DELETIONS = 10;
const names = Array.from({ length: CONFIGS }, (_, i) => `c${i}`);
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let kopia: KopiaCli;
let scratch: string;
let historyIDs: Set<string>;

const retention = (keepDaily: number) => ({ keepLatest: 0, keepHourly: 0, keepDaily, keepWeekly: 0, keepMonthly: 0, keepAnnual: 0 });

async function volumeDir(claimName: string): Promise<string> {
  await until(
    `claim ${claimName} to bind`,
    async () => (await t.client.get<Obj>(PersistentVolumeClaims, t.ns, claimName)).status?.phase === 'Bound',
  );
  const pvc = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, claimName);
  return (await t.client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path;
}

/** The snapshots of the 40 sources now in kopia. */
async function configSnapshots(): Promise<string[]> {
  return (await kopia.snapshots()).filter((s) => s.source.host === t.ns && names.includes(s.source.userName)).map((s) => s.id);
}

const deletedFromHistory = async () => {
  const now = new Set(await configSnapshots());
  return [...historyIDs].filter((id) => !now.has(id)).length;
};

async function createBackup(name: string, config: string): Promise<void> {
  await t.client.create(KopiaBackups, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace: t.ns },
    spec: { configRef: { name: config } },
  } as Obj);
}

/** The Backups this test made (the catalog mirror adds one per history snapshot beside them). */
const nightly = async () => (await t.client.list<Obj>(KopiaBackups, t.ns)).items.filter((b) => !b.spec.snapshot);

const waitsForBudget = (b: Obj) => b.status?.phase === 'Pending' && conditionOf(b)?.reason === 'DeletionsPaused';

beforeAll(async () => {
  operator = await startTestOperator(t.ns);
  scratch = mkdtempSync(join(tmpdir(), 'breaker-test-'));
  chmodSync(scratch, 0o777); // plain kopia runs as the movers' uid (KopiaCli)
  await t.client.create(Secrets, secretObject({ name: 'nas-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: PASSWORD } }));
  for (const claim of ['nas', 'app-data']) await t.client.create(PersistentVolumeClaims, claimObject({ name: claim, namespace: t.ns }));
  await t.client.create(
    KopiaRepositories,
    repositoryObject({ name: 'nas', namespace: t.ns, spec: { deletionBreaker: { maxDeletions: MAX_DELETIONS, window: '1h' } } }),
  );
  await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' });
  writeFileSync(join(await volumeDir('app-data'), 'file'), 'workload data');

  // History: one snapshot a day for nine days, kept by keepDaily 14, copied to each config's source.
  kopia = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, await volumeDir('nas'), PASSWORD, { username: 'history', hostname: 'maker' });
  await kopia.run(
    'policy',
    'set',
    '--global',
    ...Object.entries(retention(14)).map(([k, v]) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}=${v}`),
  );
  const data = join(scratch, 'data');
  writeFileSync(data, 'history');
  chmodSync(data, 0o644);
  const today = new Date();
  for (let day = HISTORY_DAYS; day >= 1; day--) {
    const at = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - day, 12));
    const start = `${at.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
    await kopia.run('snapshot', 'create', scratch, '--override-source=template@maker:/data', `--start-time=${start}`, '--json');
  }
  for (const name of names) await kopia.run('snapshot', 'copy-history', 'template@maker:/data', `${name}@${t.ns}:/data`);
  historyIDs = new Set(await configSnapshots());
  expect(historyIDs.size).toBe(CONFIGS * HISTORY_DAYS);

  for (const name of names)
    await t.client.create(KopiaBackupConfigs, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'BackupConfig',
      metadata: { name, namespace: t.ns },
      spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' }, copyMethod: 'Direct', retention: retention(14) },
    } as Obj);
}, 300_000);
afterAll(() => {
  operator?.stop();
  kopia?.close();
  removeTree(scratch);
});

describe('a retention change on 40 configs of one repository', () => {
  it('expires no more than the budget; the other backups wait, said by a condition and an Event with the release command', async () => {
    // The change in Git: keepDaily 14 → 7 everywhere, then the nightly backups.
    for (const name of names) await t.client.patch(KopiaBackupConfigs, t.ns, name, { spec: { retention: retention(7) } });
    for (const name of names)
      await until(`BackupConfig ${name} to see the change`, async () => {
        const c = await t.client.get<Obj>(KopiaBackupConfigs, t.ns, name);
        return c.status?.observedGeneration === c.metadata.generation && conditionOf(c)?.status === 'True';
      });
    for (const name of names) await createBackup(`${name}-nightly`, name);

    // Settled: every backup finished or waits for budget, and no mover runs.
    let backups: Obj[] = [];
    await until(
      'every backup to finish or wait for budget',
      async () => {
        backups = await nightly();
        const jobs = (await t.client.list<Obj>(Jobs, t.ns)).items.filter((j) => j.metadata.name!.startsWith('kopia-backup-'));
        return (
          backups.length === CONFIGS &&
          jobs.length === 0 &&
          backups.every((b) => ['Succeeded', 'Failed'].includes(b.status?.phase) || waitsForBudget(b))
        );
      },
      400_000,
      1000,
    );
    const deleted = await deletedFromHistory();
    expect(deleted).toBeLessThanOrEqual(MAX_DELETIONS);
    const succeeded = backups.filter((b) => b.status.phase === 'Succeeded');
    // Each that ran expired exactly its three oldest days, and said so.
    expect(succeeded.map((b) => b.status.expired)).toEqual(succeeded.map(() => 3));
    expect(deleted).toBe(3 * succeeded.length);
    expect(backups.filter((b) => b.status.phase === 'Failed')).toEqual([]);
    const waiting = backups.filter(waitsForBudget);
    expect(waiting.length).toBe(CONFIGS - succeeded.length);
    expect(waiting.length).toBeGreaterThanOrEqual(CONFIGS - Math.floor(MAX_DELETIONS / 3));
    expect(waiting.map((b) => b.status.wouldExpire)).toEqual(waiting.map(() => 3));
    expect(conditionOf(waiting[0]).message).toContain(`kubectl annotate --overwrite -n ${t.ns} repository/nas kopia.io/release-deletions=`);

    const repo = await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas');
    const paused = conditionOf(repo, 'DeletionsPaused');
    expect(paused).toMatchObject({ status: 'True', reason: 'DeletionsPaused' });
    expect(paused.message).toContain(`${3 * waiting.length} snapshot deletion(s) wait (${waiting.length} backup(s)`);
    expect(paused.message).toContain(`kubectl annotate --overwrite -n ${t.ns} repository/nas kopia.io/release-deletions=`);
    expect(repo.status.deletions).toMatchObject({ count: deleted, waiting: 3 * waiting.length });
    const event = (await eventsAbout(t.client, t.ns, 'nas')).find((e) => e.reason === 'DeletionsPaused');
    expect(event).toMatchObject({ type: 'Warning', message: expect.stringContaining('kopia.io/release-deletions') });
  }, 600_000);

  it('a release lets exactly what waited through, once: a backup started afterwards waits again', async () => {
    const waiting = (await nightly()).filter(waitsForBudget).map((b) => b.metadata.name!);
    expect(waiting.length).toBeGreaterThan(0);
    await t.client.patch(KopiaRepositories, t.ns, 'nas', {
      metadata: { annotations: { 'kopia.io/release-deletions': '2026-12-03T08:00:00Z' } },
    });
    // Should it time out, the message names each backup not done and where the ledger stands.
    await until(
      'the released backups to finish',
      async () => {
        const all = await nightly();
        const open = all.filter((b) => b.status?.phase !== 'Succeeded');
        const ledger = (await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas')).status?.deletions;
        const unfinished = `${open.map((b) => `${b.metadata.name} ${b.status?.phase}/${conditionOf(b)?.reason}: ${conditionOf(b)?.message}`).join('; ')}; ledger ${JSON.stringify(ledger)}`;
        if (all.length === CONFIGS && open.length === 0) return true;
        throw new Error(unfinished);
      },
      400_000,
      1000,
    );
    // Each released backup expired its three oldest days, and said so.
    const expiredBy = Object.fromEntries((await nightly()).map((b) => [b.metadata.name!, b.status.expired]));
    expect(expiredBy).toEqual(Object.fromEntries(names.map((n) => [`${n}-nightly`, 3])));
    expect(await deletedFromHistory()).toBe(3 * CONFIGS);

    // c0 now has seven days; a second snapshot today takes today's slot from the first: one expiry, and no budget left.
    await createBackup('c0-again', 'c0');
    await until(
      'c0-again to wait for budget',
      async () => waitsForBudget(await t.client.get<Obj>(KopiaBackups, t.ns, 'c0-again')),
      120_000,
      500,
    );
    expect((await t.client.get<Obj>(KopiaBackups, t.ns, 'c0-again')).status.wouldExpire).toBe(1);
    expect(conditionOf(await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas'), 'DeletionsPaused')?.status).toBe('True');
  }, 600_000);

  it('a backup waiting for budget is measured again when its config changes: keeping more, it runs without any', async () => {
    await t.client.patch(KopiaBackupConfigs, t.ns, 'c0', { spec: { retention: { ...retention(7), keepLatest: 10 } } });
    await until(
      'c0-again to run under the changed retention',
      async () => {
        const b = await t.client.get<Obj>(KopiaBackups, t.ns, 'c0-again');
        return b.status?.phase === 'Succeeded';
      },
      120_000,
      500,
    );
    const done = await t.client.get<Obj>(KopiaBackups, t.ns, 'c0-again');
    expect(done.status.expired).toBe(0);
    expect(done.status.wouldExpire).toBeUndefined();
    expect(await deletedFromHistory()).toBe(3 * CONFIGS);
  }, 300_000);
});

describe('a second Repository object over the same kopia repository', () => {
  beforeAll(async () => {
    await t.client.create(Secrets, secretObject({ name: 'nas-alias-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: PASSWORD } }));
    await t.client.create(KopiaRepositories, repositoryObject({ name: 'nas-alias', namespace: t.ns, claimName: 'nas', create: false }));
    const alias = await waitForReady(t.client, KopiaRepositories, t.ns, 'nas-alias', { status: 'True', reason: 'Verified' });
    expect(alias.status.uniqueID).toBe((await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas')).status.uniqueID);
  }, 120_000);

  it('shares the budget: the oldest object holds it, so a backup through the second waits, for a release of the first', async () => {
    // nas spent the budget, so c1's second snapshot today (one expiry) through nas-alias waits.
    await t.client.create(KopiaBackupConfigs, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'BackupConfig',
      metadata: { name: 'c1-alias', namespace: t.ns },
      spec: {
        repository: { name: 'nas-alias' },
        source: { pvc: 'app-data' },
        copyMethod: 'Direct',
        identity: { username: 'c1' },
        retention: retention(7),
      },
    } as Obj);
    await waitForReady(t.client, KopiaBackupConfigs, t.ns, 'c1-alias', { status: 'True', reason: 'Ready' });
    const before = (await configSnapshots()).length;
    await createBackup('c1-alias-again', 'c1-alias');
    await until(
      'c1-alias-again to wait for budget',
      async () => waitsForBudget(await t.client.get<Obj>(KopiaBackups, t.ns, 'c1-alias-again')),
      120_000,
      500,
    );
    const waiting = await t.client.get<Obj>(KopiaBackups, t.ns, 'c1-alias-again');
    expect(waiting.status.wouldExpire).toBe(1);
    expect(conditionOf(waiting).message).toContain(`-n ${t.ns} repository/nas kopia.io/release-deletions=`);
    expect((await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas-alias')).status.deletions).toBeUndefined();
    expect((await configSnapshots()).length).toBe(before);
  }, 300_000);

  it("has one acting Maintenance: the second object's gets Conflict, naming the acting one, and runs nothing", async () => {
    const conflict = await waitForReady(t.client, KopiaMaintenances, t.ns, 'nas-alias', { status: 'False', reason: 'Conflict' });
    expect(conditionOf(conflict).message).toContain(`${t.ns}/nas (of Repository nas, the same kopia repository)`);
    expect(conflict.status.lastQuick).toBeUndefined();
    expect((await eventsAbout(t.client, t.ns, 'nas-alias')).map((e) => e.reason)).toContain('Conflict');
    expect(conditionOf(await t.client.get<Obj>(KopiaMaintenances, t.ns, 'nas'))?.reason).not.toBe('Conflict');
  }, 120_000);
});
