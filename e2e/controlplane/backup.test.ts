// Backups end to end on the real control plane with real kopia: a manual Backup of a claim
// with varied files, checked and restored with plain kopia; honest file errors; the Clone
// and Snapshot copy methods leave nothing behind; the catalog mirror shows snapshots the
// cluster did not make and follows kopia's deletions with no writes when nothing changed;
// Retain keeps the snapshot, Delete removes it, and the breaker holds 15 deletions at 10.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Events,
  Jobs,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaRepositories,
  PersistentVolumeClaims,
  PersistentVolumes,
  Secrets,
  VolumeSnapshots,
} from '../../operator/kube/resources.js';
import { removeTree } from '../support/remove-tree.js';
import { conditionOf, until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { inventory, KopiaCli } from '../support/kopia-cli.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';
import { operatorObjectSeries } from '../../operator/metrics/object-metrics.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const t = useTestNamespace('backup');
const PASSWORD = 'backup password';
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let kopia: KopiaCli;
let scratch: string;
let source: string;

async function volumeDir(claimName: string): Promise<string> {
  await until(
    `claim ${claimName} to bind`,
    async () => (await t.client.get<Obj>(PersistentVolumeClaims, t.ns, claimName)).status?.phase === 'Bound',
  );
  const pvc = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, claimName);
  return (await t.client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path;
}

const backupsOf = async (username: string) =>
  (await t.client.list<Obj>(KopiaBackups, t.ns)).items.filter((b) => b.status?.snapshot?.identity?.username === username);

async function config(name: string, spec: Record<string, unknown>): Promise<void> {
  await t.client.create(KopiaBackupConfigs, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name, namespace: t.ns },
    spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' }, copyMethod: 'Direct', ...spec },
  } as Obj);
  await waitForReady(t.client, KopiaBackupConfigs, t.ns, name, { status: 'True', reason: 'Ready' });
}

async function backup(name: string, configName: string, spec: Record<string, unknown> = {}): Promise<Obj> {
  await t.client.create(KopiaBackups, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace: t.ns },
    spec: { configRef: { name: configName }, ...spec },
  } as Obj);
  let found: Obj | undefined;
  await until(
    `Backup ${name} to finish`,
    async () => ['Succeeded', 'Failed'].includes((found = await t.client.get<Obj>(KopiaBackups, t.ns, name)).status?.phase),
    90000,
    250,
  );
  return found!;
}

beforeAll(async () => {
  operator = await startTestOperator(t.ns);
  scratch = mkdtempSync(join(tmpdir(), 'backup-test-'));
  chmodSync(scratch, 0o777); // plain kopia runs as the movers' uid (KopiaCli)
  await t.client.create(Secrets, secretObject({ name: 'nas-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: PASSWORD } }));
  for (const claim of ['nas', 'app-data']) await t.client.create(PersistentVolumeClaims, claimObject({ name: claim, namespace: t.ns }));
  await t.client.create(
    KopiaRepositories,
    repositoryObject({ name: 'nas', namespace: t.ns, spec: { catalog: { refreshInterval: '10s' } } }),
  );
  await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' });
  kopia = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, await volumeDir('nas'), PASSWORD);

  // The workload's files: nested directories, modes, an empty file, symlinks, a larger file.
  source = await volumeDir('app-data');
  mkdirSync(join(source, 'nested/deeper'), { recursive: true });
  writeFileSync(join(source, 'empty'), '');
  writeFileSync(join(source, 'hello.txt'), 'hello kopia\n');
  writeFileSync(join(source, 'nested/deeper/data.bin'), randomBytes(3 * 1024 * 1024));
  writeFileSync(join(source, 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(source, 'run.sh'), 0o755);
  symlinkSync('hello.txt', join(source, 'link'));
  symlinkSync('/nowhere', join(source, 'dangling'));
  for (const [path, owner] of [
    ['hello.txt', 1000],
    ['nested', 1001],
  ] as const)
    chownSync(join(source, path), owner, owner);
});
afterAll(() => {
  operator.stop();
  kopia.close();
  removeTree(scratch);
});

describe('a manual Backup', () => {
  let snapshotID: string;

  it('takes one snapshot under the pinned identity that restores byte- and mode-identical with plain kopia', async () => {
    await config('app', { retention: { keepLatest: 5 }, policy: { compression: 'zstd-fastest' } });
    const done = await backup('first', 'app', { tags: { reason: 'test' } });
    expect(done.status).toMatchObject({
      phase: 'Succeeded',
      origin: 'Manual',
      snapshot: { identity: { username: 'app', hostname: t.ns, path: '/data' } },
    });
    expect(conditionOf(done)).toMatchObject({ status: 'True', reason: 'BackupSucceeded' });
    expect(done.status.stats.files).toBe(4);
    snapshotID = done.status.snapshot.id;
    expect(done.metadata.labels).toMatchObject({ 'kopia.io/snapshot-id': snapshotID });

    // The leader's caches as the metrics read them: this success, its size, the repository Ready.
    const metric = (name: string, labels: Record<string, string>) =>
      operatorObjectSeries(operator.manager.informers, new Date()).find(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      )?.value;
    const app = { namespace: t.ns, name: 'app' };
    await until('the success in the metrics', async () => metric('kopia_backupconfig_snapshots', app) === 1);
    expect(metric('kopia_backupconfig_last_success_timestamp_seconds', app)).toBe(Date.parse(done.status.completionTime) / 1000);
    expect(metric('kopia_backupconfig_last_attempt_succeeded', app)).toBe(1);
    expect(metric('kopia_backupconfig_consecutive_failures', app)).toBe(0);
    expect(metric('kopia_backupconfig_last_bytes', app)).toBe(done.status.stats.totalBytes);
    expect(metric('kopia_backupconfig_last_files', app)).toBe(4);
    expect(metric('kopia_repository_ready', { kind: 'Repository', namespace: t.ns, name: 'nas', reason: 'Verified' })).toBe(1);

    const listed = (await kopia.snapshots()).find((s) => s.id === snapshotID);
    expect(listed?.source).toEqual({ userName: 'app', host: t.ns, path: '/data' });
    const policy = JSON.parse(await kopia.run('policy', 'show', `app@${t.ns}:/data`, '--json'));
    expect(policy.retention.keepLatest).toBe(5);
    const restored = join(scratch, 'restored');
    await kopia.restoreAsRoot(snapshotID, restored);
    expect(inventory(restored, { owners: true })).toEqual(inventory(source, { owners: true }));
    expect(inventory(restored, { owners: true })['hello.txt']).toMatchObject({ uid: 1000, gid: 1000 });
    await until('the backup Job to be removed', async () => !(await t.client.getOrUndefined(Jobs, t.ns, 'kopia-backup-first')));
  });

  it('says so when files could not be read, and keeps the snapshot id', async () => {
    writeFileSync(join(source, 'private.key'), 'only root reads this');
    chmodSync(join(source, 'private.key'), 0o600);
    try {
      const done = await backup('unreadable', 'app');
      expect(done.status.phase).toBe('Succeeded');
      expect(done.status.snapshot.id).toMatch(/^[0-9a-f]+$/);
      expect(conditionOf(done)).toMatchObject({ status: 'False', reason: 'FileErrors' });
      expect(conditionOf(done, 'FileErrors').message).toContain('private.key');
      expect((await kopia.snapshots()).map((s) => s.id)).toContain(done.status.snapshot.id);
    } finally {
      rmSync(join(source, 'private.key'));
    }
  });
});

describe('copy methods', () => {
  it.each(['Clone', 'Snapshot'])('%s: backs up a copy of the claim and removes the copy afterwards', async (method) => {
    const name = `via-${method.toLowerCase()}`;
    await config(name, { copyMethod: method, identity: { username: name } });
    const done = await backup(name, name);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.stats.files).toBe(4);
    await until('the source copy to be cleaned up', async () => {
      const b = await t.client.get<Obj>(KopiaBackups, t.ns, name);
      return !b.status.sourceCopy && !(await t.client.getOrUndefined(PersistentVolumeClaims, t.ns, `kopia-src-${name}`));
    });
    // Its finalizers go once the snapshot controller let the content go.
    await until('the VolumeSnapshot to be gone', async () => !(await t.client.getOrUndefined(VolumeSnapshots, t.ns, `kopia-src-${name}`)));
  });
});

describe('the catalog mirror', () => {
  it('shows snapshots a plain kopia client made as Discovered Backups, and removes them when kopia expires them', async () => {
    const docs = join(scratch, 'docs');
    mkdirSync(docs);
    writeFileSync(join(docs, 'a.txt'), 'from a laptop');
    const outside = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, await volumeDir('nas'), PASSWORD, {
      username: 'laptop',
      hostname: 'home',
    });
    try {
      await outside.run('snapshot', 'create', docs, '--json');
      await outside.run('snapshot', 'create', docs, '--json');
      await until('two Discovered Backups', async () => (await backupsOf('laptop')).length === 2, 60000, 500);
      const discovered = await backupsOf('laptop');
      expect(discovered.map((b) => b.status.origin)).toEqual(['Discovered', 'Discovered']);
      expect(discovered[0].spec.snapshot).toMatchObject({ repository: { name: 'nas' } });

      const [gone] = (await outside.snapshots()).filter((s) => s.source.userName === 'laptop');
      await outside.run('snapshot', 'delete', gone.id, '--delete');
      await until("the expired snapshot's Backup to go", async () => (await backupsOf('laptop')).length === 1, 60000, 500);
    } finally {
      outside.close();
    }
  });

  it('makes no API write on a re-sync with nothing changed', async () => {
    const synced = async () => (await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas')).status.catalog?.lastSyncTime;
    const first = await synced();
    await until('a catalog sync', async () => (await synced()) !== first, 60000, 500);
    const writes = () =>
      Object.entries(operator.client.calls)
        .filter(([k]) => /^(POST|PUT|PATCH|DELETE) backups$/.test(k))
        .reduce((n, [, v]) => n + v, 0);
    const before = writes();
    const second = await synced();
    await until('another catalog sync', async () => (await synced()) !== second, 60000, 500);
    expect(writes()).toBe(before);
  });
});

describe('deletion', () => {
  it('Retain keeps the snapshot when the Backup goes; Delete removes it', async () => {
    const kept = await backup('kept', 'app');
    await t.client.delete(KopiaBackups, t.ns, 'kept');
    await until('Backup kept to go', async () => !(await t.client.getOrUndefined(KopiaBackups, t.ns, 'kept')));
    expect((await kopia.snapshots()).map((s) => s.id)).toContain(kept.status.snapshot.id);

    const doomed = await backup('doomed', 'app', { deletionPolicy: 'Delete' });
    expect((await t.client.get<Obj>(KopiaBackups, t.ns, 'doomed')).metadata.finalizers).toContain('kopia.io/snapshot-deletion');
    await t.client.delete(KopiaBackups, t.ns, 'doomed');
    await until('Backup doomed to go', async () => !(await t.client.getOrUndefined(KopiaBackups, t.ns, 'doomed')), 60000, 250);
    expect((await kopia.snapshots()).map((s) => s.id)).not.toContain(doomed.status.snapshot.id);
  });

  it('holds 15 deletions at once behind the breaker at 10, until released', async () => {
    // 15 sources with one snapshot each (kopia's default retention would expire repeats of one source).
    const outside = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, await volumeDir('nas'), PASSWORD, {
      username: 'bulk',
      hostname: 'home',
    });
    try {
      for (let i = 0; i < 15; i++) {
        const dir = join(scratch, 'many', String(i));
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'f'), `file ${i}`);
        await outside.run('snapshot', 'create', dir, '--json');
      }
    } finally {
      outside.close();
    }
    await until('15 Discovered Backups', async () => (await backupsOf('bulk')).length === 15, 90000, 500);
    const bulk = await backupsOf('bulk');
    for (const b of bulk) await t.client.patch(KopiaBackups, t.ns, b.metadata.name!, { spec: { deletionPolicy: 'Delete' } });
    await until('finalizers on all 15', async () =>
      (await backupsOf('bulk')).every((b) => b.metadata.finalizers?.includes('kopia.io/snapshot-deletion')),
    );
    for (const b of bulk) await t.client.delete(KopiaBackups, t.ns, b.metadata.name!);

    await until(
      'the breaker to open',
      async () => conditionOf(await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas'), 'DeletionsPaused')?.status === 'True',
      60000,
      250,
    );
    const events = (await t.client.list<Obj>(Events, t.ns, { fieldSelector: 'involvedObject.name=nas' })).items as any[];
    expect(events.find((e) => e.reason === 'DeletionsPaused')?.type).toBe('Warning');
    // The deletions went in as one batch (or the first ones within the limit); at least the five beyond it wait.
    const held = (await kopia.snapshots()).filter((s) => s.source.userName === 'bulk');
    expect(held.length).toBeGreaterThanOrEqual(5);
    expect((await backupsOf('bulk')).map((b) => b.status.snapshot.id).sort()).toEqual(held.map((s) => s.id).sort());

    await t.client.patch(KopiaRepositories, t.ns, 'nas', {
      metadata: { annotations: { 'kopia.io/release-deletions': '2026-11-27T12:00:00Z' } },
    });
    await until('all 15 deleted', async () => (await backupsOf('bulk')).length === 0, 90000, 500);
    expect((await kopia.snapshots()).filter((s) => s.source.userName === 'bulk')).toHaveLength(0);
  });
});
