// Tenants of a shared repository act only on their own identities and snapshots (issue 14,
// rules 1 and 2). A ClusterRepository allows namespaces A and B, not C; B backs up its
// claim four times; A and C attack B's history through what a tenant may write: a
// BackupConfig naming B's hostname (with keepLatest 1), a Backup adopting B's snapshot by
// id with deletionPolicy Delete (with and without the catalog mirror's labels forged), and
// a Restore of B's snapshot. Each is refused with a condition and an Event; kopia's own
// listing shows B's history untouched and no Job ran for the attacker.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeClient, KubeObject } from '../../operator/kube/kube-client.js';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaClusterRepositories,
  KopiaRestores,
  PersistentVolumeClaims,
  PersistentVolumes,
  Secrets,
} from '../../operator/kube/resources.js';
import { Informer } from '../../operator/runtime/informer.js';
import {
  conditionOf,
  createNamespace,
  deleteNamespace,
  eventsAbout,
  testClient,
  until,
  waitForReady,
  type Obj,
} from '../support/cluster.js';
import { removeTree } from '../support/remove-tree.js';
import { inventory, KopiaCli } from '../support/kopia-cli.js';
import { claimObject, clusterRepositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';
import { tenantClient } from '../support/tenant.js';

const PASSWORD = 'shared by tenants';
let admin: KubeClient;
let system: string;
let A: string;
let B: string;
let C: string;
let tenantA: KubeClient;
let tenantB: KubeClient;
let tenantC: KubeClient;
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let kopia: KopiaCli;
let nodeDir: string;
let jobs: Informer<KubeObject>;
/** Every Job created anywhere, as namespace/name, in order. */
const jobsSeen: string[] = [];
const repository = `tenancy-${randomBytes(3).toString('hex')}`;
const shared = { kind: 'ClusterRepository', name: repository };
/** B's snapshots, oldest first. */
const victims: string[] = [];

async function volumeDir(client: KubeClient, namespace: string, claimName: string): Promise<string> {
  await until(
    `claim ${namespace}/${claimName} to bind`,
    async () => (await client.get<Obj>(PersistentVolumeClaims, namespace, claimName)).status?.phase === 'Bound',
  );
  const pvc = await client.get<Obj>(PersistentVolumeClaims, namespace, claimName);
  return (await admin.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path;
}

/** B's snapshots as kopia lists them. */
const snapshotsOfB = async () => (await kopia.snapshots()).filter((s) => s.source.host === B).map((s) => s.id);

const lastSync = async () => (await admin.get<Obj>(KopiaClusterRepositories, undefined, repository)).status?.catalog?.lastSyncTime;

/** Waits for n catalog listings collected from now on. */
async function listingsCollected(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const before = await lastSync();
    await until('a catalog listing to be collected', async () => (await lastSync()) !== before, 90_000, 200);
  }
}

function config(namespace: string, name: string, spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name, namespace },
    spec: { repository: shared, source: { pvc: 'data' }, copyMethod: 'Direct', ...spec },
  } as KubeObject;
}

async function finished(client: KubeClient, namespace: string, name: string): Promise<Obj> {
  let found: Obj | undefined;
  await until(
    `Backup ${namespace}/${name} to finish`,
    async () => ['Succeeded', 'Failed'].includes((found = await client.get<Obj>(KopiaBackups, namespace, name)).status?.phase),
    90_000,
    250,
  );
  return found!;
}

const jobsIn = (namespace: string, since: number) => jobsSeen.slice(since).filter((j) => j.startsWith(`${namespace}/`));

beforeAll(async () => {
  admin = await testClient();
  system = await createNamespace(admin, 'tenancy-system');
  A = await createNamespace(admin, 'tenant-a');
  B = await createNamespace(admin, 'tenant-b');
  C = await createNamespace(admin, 'tenant-c');
  jobs = new Informer<KubeObject>(admin, Jobs, {});
  jobs.on((event, job) => void (event === 'ADDED' && jobsSeen.push(`${job.metadata.namespace}/${job.metadata.name}`)));
  await jobs.start();
  operator = await startTestOperator(system);
  nodeDir = mkdtempSync(join(tmpdir(), 'tenancy-identities-'));
  chmodSync(nodeDir, 0o777);
  await admin.create(Secrets, secretObject({ name: 'repo', namespace: system, stringData: { KOPIA_PASSWORD: PASSWORD } }));
  await admin.create(
    KopiaClusterRepositories,
    clusterRepositoryObject({
      name: repository,
      nodeDir,
      namespace: system,
      passwordSecret: 'repo',
      allowed: [A, B],
      spec: { catalog: { refreshInterval: '10s' } },
    }),
  );
  await waitForReady(admin, KopiaClusterRepositories, undefined, repository, { status: 'True', reason: 'Verified' });
  kopia = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, nodeDir, PASSWORD);
  [tenantA, tenantB, tenantC] = await Promise.all([tenantClient(admin, A), tenantClient(admin, B), tenantClient(admin, C)]);

  // B's history: four snapshots of app@B:/data.
  for (const [client, ns] of [
    [tenantA, A],
    [tenantB, B],
  ] as const)
    for (const claim of ['data', 'target', 'target2'])
      await client.create(PersistentVolumeClaims, claimObject({ name: claim, namespace: ns }));
  const source = await volumeDir(tenantB, B, 'data');
  mkdirSync(join(source, 'private'), { recursive: true });
  writeFileSync(join(source, 'private/ledger.txt'), 'only for B\n');
  await tenantB.create(KopiaBackupConfigs, config(B, 'app', { retention: { keepLatest: 10 } }));
  await waitForReady(admin, KopiaBackupConfigs, B, 'app', { status: 'True', reason: 'Ready' });
  for (let i = 1; i <= 4; i++) {
    writeFileSync(join(source, 'private/run.txt'), `run ${i}\n`);
    await tenantB.create(KopiaBackups, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: { name: `b${i}`, namespace: B },
      spec: { configRef: { name: 'app' } },
    } as Obj);
    const done = await finished(admin, B, `b${i}`);
    expect(done.status.phase).toBe('Succeeded');
    victims.push(done.status.snapshot.id);
  }
  expect((await snapshotsOfB()).sort()).toEqual([...victims].sort());
}, 300_000);

afterAll(async () => {
  jobs?.stop();
  await operator?.stop();
  kopia?.close();
  for (const ns of [A, B, C, system]) if (ns) await deleteNamespace(admin, ns);
  await admin.delete(KopiaClusterRepositories, undefined, repository).catch(() => undefined);
  admin.close();
  removeTree(nodeDir);
});

describe('a Restore in A', () => {
  it("of B's snapshot by id, or through a BackupConfig naming B's hostname, is refused: no Job, no data", async () => {
    const since = jobsSeen.length;
    await tenantA.create(KopiaBackupConfigs, config(A, 'peek', { identity: { username: 'app', hostname: B, path: '/data' } }));
    await tenantA.create(KopiaRestores, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Restore',
      metadata: { name: 'by-id', namespace: A },
      spec: {
        source: { snapshot: { repository: shared, identity: { username: 'app', hostname: B, path: '/data' }, id: victims[3] } },
        target: { pvc: { name: 'target' } },
      },
    } as Obj);
    await tenantA.create(KopiaRestores, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Restore',
      metadata: { name: 'from-config', namespace: A },
      spec: { source: { fromConfig: { name: 'peek' } }, target: { pvc: { name: 'target2' } } },
    } as Obj);
    for (const name of ['by-id', 'from-config']) {
      let restore: Obj | undefined;
      // Refused and waiting (the ClusterRepository's identityHostnames entry may come later from Git), never run.
      await until(
        `Restore ${name} to be refused`,
        async () => conditionOf((restore = await admin.get<Obj>(KopiaRestores, A, name)))?.reason === 'IdentityNotAllowed',
        90_000,
        250,
      );
      expect(restore!.status.phase).toBe('Pending');
      expect(conditionOf(restore!)).toMatchObject({ status: 'False', reason: 'IdentityNotAllowed' });
      expect(conditionOf(restore!).message).toContain(`hostname ${B}`);
      expect(restore!.status.resolved).toBeUndefined();
      const events = await eventsAbout(admin, A, name);
      expect(events.filter((e) => e.reason === 'IdentityNotAllowed').map((e) => e.type)).toContain('Warning');
    }
    expect(jobsIn(A, since)).toEqual([]);
    expect(inventory(await volumeDir(tenantA, A, 'target'))).toEqual({});
    expect(inventory(await volumeDir(tenantA, A, 'target2'))).toEqual({});
  });
});

describe("a Backup adopting B's snapshot by id, with deletionPolicy Delete, then deleted", () => {
  async function adoptAndDelete(client: KubeClient, ns: string, name: string, id: string, labels?: Record<string, string>) {
    const since = jobsSeen.length;
    await client.create(KopiaBackups, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: { name, namespace: ns, ...(labels ? { labels } : {}) },
      spec: { snapshot: { repository: shared, id }, deletionPolicy: 'Delete' },
    } as Obj);
    await until(
      'the snapshot finalizer',
      async () => ((await admin.get<Obj>(KopiaBackups, ns, name)).metadata.finalizers ?? []).includes('kopia.io/snapshot-deletion'),
      30_000,
      100,
    );
    // Two listings see it: the mirror had every chance to adopt (or "repair") it.
    await listingsCollected(2);
    const seen = await admin.get<Obj>(KopiaBackups, ns, name);
    await client.delete(KopiaBackups, ns, name);
    await until('the Backup to go', async () => !(await admin.getOrUndefined(KopiaBackups, ns, name)), 60_000, 250);
    // Time for an edit Job, were one coming.
    await listingsCollected(1);
    expect((await snapshotsOfB()).sort()).toEqual([...victims].sort());
    expect(jobsSeen.slice(since).filter((j) => j.includes('/kopia-edit-'))).toEqual([]);
    // What the attacker saw: a refusal, never B's snapshot as its own.
    expect(seen.status?.snapshot?.id).toBeUndefined();
    expect(seen.status?.phase).toBe('Failed');
    return seen;
  }

  it('from A (allowed) is refused with IdentityNotAllowed; the snapshot survives', async () => {
    const seen = await adoptAndDelete(tenantA, A, 'adopt', victims[0]);
    expect(conditionOf(seen)).toMatchObject({ status: 'False', reason: 'IdentityNotAllowed' });
    expect((await eventsAbout(admin, A, 'adopt')).filter((e) => e.reason === 'IdentityNotAllowed').map((e) => e.type)).toContain('Warning');
    // Its deletion deleted nothing, and said so.
    const kept = (await eventsAbout(admin, A, 'adopt')).find((e) => e.reason === 'SnapshotKept');
    expect(kept).toMatchObject({ type: 'Warning', message: expect.stringContaining(`snapshot ${victims[0]} was kept`) });
  });

  it('from C (not allowed on the ClusterRepository) is refused with RepositoryNotAllowed; the snapshot survives', async () => {
    const seen = await adoptAndDelete(tenantC, C, 'adopt', victims[1]);
    expect(conditionOf(seen)).toMatchObject({ status: 'False', reason: 'RepositoryNotAllowed' });
    expect((await eventsAbout(admin, C, 'adopt')).filter((e) => e.reason === 'RepositoryNotAllowed').map((e) => e.type)).toContain(
      'Warning',
    );
  });

  it("with the mirror's labels forged does not shadow B's Backup: B's object keeps its snapshot, A's gets none", async () => {
    const uniqueID = (await admin.get<Obj>(KopiaClusterRepositories, undefined, repository)).status.uniqueID as string;
    const labels = { 'kopia.io/snapshot-id': victims[2], 'kopia.io/repository-id': uniqueID.slice(0, 32) };
    const seen = await adoptAndDelete(tenantA, A, 'shadow', victims[2], labels);
    expect(conditionOf(seen)).toMatchObject({ status: 'False', reason: 'IdentityNotAllowed' });
    const b3 = await admin.get<Obj>(KopiaBackups, B, 'b3');
    expect(b3.status).toMatchObject({ phase: 'Succeeded', origin: 'Manual', snapshot: { id: victims[2] } });
  });

  it("recorded in A under B's identity (as an older operator did) keeps its snapshot when deleted: checked right before the edit Job", async () => {
    const since = jobsSeen.length;
    await tenantA.create<Obj>(KopiaBackups, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'recorded', namespace: A },
      spec: { snapshot: { repository: shared, id: victims[3] }, deletionPolicy: 'Delete' },
    } as Obj);
    await until(
      'the snapshot finalizer',
      async () => ((await admin.get<Obj>(KopiaBackups, A, 'recorded')).metadata.finalizers ?? []).includes('kopia.io/snapshot-deletion'),
      30_000,
      100,
    );
    const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    // What an operator without rule 1 recorded for A's config naming B's hostname: B's snapshot, B's identity.
    const status = {
      phase: 'Succeeded',
      origin: 'Discovered',
      repository: shared,
      snapshot: { id: victims[3], identity: { username: 'app', hostname: B, path: '/data' } },
      completionTime: at,
      conditions: [{ type: 'Ready', status: 'True', reason: 'SnapshotMirrored', message: 'found', lastTransitionTime: at }],
    };
    await until(
      'the recorded status to be written',
      async () =>
        admin
          .replace(KopiaBackups, { ...(await admin.get<Obj>(KopiaBackups, A, 'recorded')), status }, 'status')
          .then(() => true)
          .catch(() => false),
      10_000,
      100,
    );
    await tenantA.delete(KopiaBackups, A, 'recorded');
    await until('the Backup to go', async () => !(await admin.getOrUndefined(KopiaBackups, A, 'recorded')), 60_000, 250);
    await listingsCollected(1);
    expect((await snapshotsOfB()).sort()).toEqual([...victims].sort());
    expect(jobsSeen.slice(since).filter((j) => j.includes('/kopia-edit-'))).toEqual([]);
    const kept = (await eventsAbout(admin, A, 'recorded')).filter((e) => e.reason === 'IdentityNotAllowed');
    expect(kept.map((e) => e.type)).toContain('Warning');
    expect(kept[0].message).toContain(`snapshot ${victims[3]} was kept`);
  });
});

describe("A's BackupConfig naming B's hostname, keepLatest 1", () => {
  it("is refused with IdentityNotAllowed on the config and its Backup; B's history stays; no Job", async () => {
    const before = (await snapshotsOfB()).sort();
    const since = jobsSeen.length;
    await tenantA.create(
      KopiaBackupConfigs,
      config(A, 'thief', {
        identity: { username: 'app', hostname: B, path: '/data' },
        retention: { keepLatest: 1, keepHourly: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepAnnual: 0 },
      }),
    );
    const refused = await waitForReady(
      admin,
      KopiaBackupConfigs,
      A,
      'thief',
      { status: 'False', reason: 'IdentityNotAllowed' },
      30_000,
    ).catch(async () => admin.get<Obj>(KopiaBackupConfigs, A, 'thief'));
    await tenantA.create(KopiaBackups, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'steal', namespace: A },
      spec: { configRef: { name: 'thief' } },
    } as Obj);
    const steal = await finished(admin, A, 'steal');
    // kopia's own answer first: B's history is what it was.
    expect((await snapshotsOfB()).sort()).toEqual(before);
    expect(jobsIn(A, since)).toEqual([]);
    expect(steal.status.phase).toBe('Failed');
    expect(conditionOf(steal)).toMatchObject({ status: 'False', reason: 'IdentityNotAllowed' });
    expect(conditionOf(refused)).toMatchObject({ status: 'False', reason: 'IdentityNotAllowed' });
    expect(conditionOf(refused).message).toContain(`hostname ${B}`);
    for (const name of ['thief', 'steal'])
      expect((await eventsAbout(admin, A, name)).filter((e) => e.reason === 'IdentityNotAllowed').map((e) => e.type)).toContain('Warning');
  });
});

describe('a hostname recorded by another namespace before identities were tied to namespaces', () => {
  it("is no one's (contested) until identityHostnames decides: its namesake does not get the history", async () => {
    // What an older operator recorded for A's BackupConfig that used hostname B: a Backup in A under B's identity.
    await admin.create(KopiaBackups, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'legacy', namespace: A },
      spec: { snapshot: { repository: shared, id: victims[0] } },
    } as Obj);
    const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const status = {
      phase: 'Succeeded',
      origin: 'Manual',
      repository: shared,
      snapshot: { id: victims[0], identity: { username: 'app', hostname: B, path: '/data' } },
      completionTime: at,
      conditions: [{ type: 'Ready', status: 'True', reason: 'Succeeded', message: 'recorded before', lastTransitionTime: at }],
    };
    await until(
      'the recorded status to be written',
      async () =>
        admin
          .replace(KopiaBackups, { ...(await admin.get<Obj>(KopiaBackups, A, 'legacy')), status }, 'status')
          .then(() => true)
          .catch(() => false),
      10_000,
      100,
    );
    await until(
      'the ClusterRepository to call the hostname contested',
      async () =>
        conditionOf(await admin.get<Obj>(KopiaClusterRepositories, undefined, repository), 'Tenancy')?.reason === 'HostnamesContested',
      30_000,
      200,
    );
    const repo = await admin.get<Obj>(KopiaClusterRepositories, undefined, repository);
    expect(repo.status.contestedHostnames).toEqual([{ hostname: B, recordedIn: [A, B].sort() }]);
    // B, the hostname's namesake, may not act under it now: its config and a Restore from it are refused, and nothing runs.
    const since = jobsSeen.length;
    const config = await waitForReady(admin, KopiaBackupConfigs, B, 'app', { status: 'False', reason: 'IdentityNotAllowed' }, 30_000);
    expect(conditionOf(config).message).toContain(`hostname ${B} is contested`);
    await tenantB.create(KopiaRestores, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Restore',
      metadata: { name: 'while-contested', namespace: B },
      spec: { source: { fromConfig: { name: 'app' } }, target: { pvc: { name: 'target' } } },
    } as Obj);
    await waitForReady(admin, KopiaRestores, B, 'while-contested', { status: 'False', reason: 'IdentityNotAllowed' }, 30_000);
    expect(jobsIn(B, since)).toEqual([]);

    // The platform decides: the hostname is B's. B's config is Ready again, the contest is gone.
    await admin.patch(KopiaClusterRepositories, undefined, repository, { spec: { identityHostnames: [{ namespace: B, hostname: B }] } });
    await waitForReady(admin, KopiaBackupConfigs, B, 'app', { status: 'True', reason: 'Ready' }, 30_000);
    expect((await admin.get<Obj>(KopiaClusterRepositories, undefined, repository)).status.contestedHostnames).toBeUndefined();
    await tenantB.delete(KopiaRestores, B, 'while-contested');
    await admin.delete(KopiaBackups, A, 'legacy');
  });
});
