// The catalog mirror's edges on the real control plane with real kopia: an object is removed
// only once kopia has really let its snapshot go, and a removal never becomes a snapshot
// deletion. The operator's clock runs ten minutes behind the API server's here, as a node's
// clock may: whatever the mirror compares, it compares on one clock.
import { mkdirSync, mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '../../operator/kube/kube-client.js';
import {
  Jobs,
  KopiaBackups,
  KopiaRepositories,
  PersistentVolumeClaims,
  PersistentVolumes,
  Secrets,
} from '../../operator/kube/resources.js';
import type { CatalogOperator } from '../../operator/catalog/catalog-operator.js';
import { LISTING_STARTED_ANNOTATION } from '../../operator/catalog/catalog-plan.js';
import { Informer } from '../../operator/runtime/informer.js';
import { removeTree } from '../support/remove-tree.js';
import { eventsAbout, until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { KopiaCli } from '../support/kopia-cli.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';
import { createProcessMetrics } from '../../operator/metrics/metrics-registry.js';

const t = useTestNamespace('catalog');
const PASSWORD = 'catalog password';
const SKEW_MS = 10 * 60_000;
const operatorNow = () => new Date(Date.now() - SKEW_MS);
let operator: Awaited<ReturnType<typeof startTestOperator>>;
const metrics = createProcessMetrics({ process: 'operator', lease: 'kopia-operator', isLeader: () => true });
let kopia: KopiaCli;
let scratch: string;
let jobs: Informer<KubeObject>;
/** Every Job the test namespace saw, by name, in order. */
const jobsSeen: string[] = [];
/** When each catalog listing the test namespace saw began, on the operator's clock (its Job's mark). */
const listingsBegun: number[] = [];

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
const lastSync = async () => (await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas')).status.catalog?.lastSyncTime as string | undefined;

/** Waits for `count` more catalog listings to be collected. */
async function listingsCollected(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const before = await lastSync();
    await until(`catalog listing ${i + 1} of ${count}`, async () => (await lastSync()) !== before, 60000, 200);
  }
}

beforeAll(async () => {
  operator = await startTestOperator(t.ns, { now: operatorNow, metrics });
  scratch = mkdtempSync(join(tmpdir(), 'catalog-test-'));
  chmodSync(scratch, 0o777); // plain kopia runs as the movers' uid (KopiaCli)
  jobs = new Informer<KubeObject>(t.client, Jobs, { namespace: t.ns });
  jobs.on((event, job) => {
    if (event !== 'ADDED') return;
    jobsSeen.push(job.metadata.name!);
    const begun = job.metadata.annotations?.[LISTING_STARTED_ANNOTATION];
    if (begun) listingsBegun.push(Date.parse(begun));
  });
  await jobs.start();
  await t.client.create(Secrets, secretObject({ name: 'nas-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: PASSWORD } }));
  await t.client.create(PersistentVolumeClaims, claimObject({ name: 'nas', namespace: t.ns }));
  await t.client.create(
    KopiaRepositories,
    repositoryObject({ name: 'nas', namespace: t.ns, spec: { catalog: { refreshInterval: '10s' } } }),
  );
  await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' });
  kopia = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, await volumeDir('nas'), PASSWORD, { username: 'laptop', hostname: 'home' });
});
afterAll(async () => {
  jobs?.stop();
  await operator?.stop();
  kopia?.close();
  removeTree(scratch);
});

describe('removing an object whose snapshot kopia no longer keeps', () => {
  it('removes a Delete-policy Backup whose snapshot vanished without any edit Job and without kopia deleting anything', async () => {
    for (const name of ['docs', 'photos']) {
      mkdirSync(join(scratch, name));
      writeFileSync(join(scratch, name, 'a.txt'), `${name} from a laptop`);
      await kopia.run('snapshot', 'create', join(scratch, name), '--json');
    }
    await until('two Discovered Backups', async () => (await backupsOf('laptop')).length === 2, 60000, 250);
    // The listing's upload size is in the status (metric kopia_catalog_upload_bytes): gzip of two snapshots' lines.
    await until('the upload size in the status', async () => {
      const bytes = (await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas')).status.catalog?.uploadBytes as number | undefined;
      return bytes !== undefined && bytes > 100 && bytes < 10_000;
    });
    // Each mirrored listing is timed from its Job's start on the operator's (skewed) clock: seconds, not the skew.
    // It is observed just after the status write the test saw, so wait for it rather than race it.
    const syncSeconds = async () => {
      const { values } = await metrics.metric('kopia_catalog_sync_duration_seconds').get();
      const pick = (suffix: string) =>
        values.find((v) => v.metricName === `kopia_catalog_sync_duration_seconds_${suffix}` && v.labels.kind === 'Repository')?.value;
      return { count: pick('count') ?? 0, sum: pick('sum') ?? 0 };
    };
    await until('a catalog sync duration observed', async () => (await syncSeconds()).count >= 1, 10000);
    const { count, sum } = await syncSeconds();
    expect(sum / count).toBeGreaterThan(0);
    expect(sum / count).toBeLessThan(120);
    const docs = (await backupsOf('laptop')).find((b) => b.status.snapshot.identity.path.endsWith('/docs'))!;
    await t.client.patch(KopiaBackups, t.ns, docs.metadata.name!, { spec: { deletionPolicy: 'Delete' } });
    await until('the snapshot finalizer', async () =>
      ((await t.client.get<Obj>(KopiaBackups, t.ns, docs.metadata.name!)).metadata.finalizers ?? []).includes('kopia.io/snapshot-deletion'),
    );

    // The snapshot goes behind the cluster's back (plain kopia); the object must follow, and only the object.
    await kopia.run('snapshot', 'delete', docs.status.snapshot.id, '--delete');
    const kept = (await kopia.snapshots()).map((s) => s.id).sort();
    const seenBefore = jobsSeen.length;
    // Two complete listings after the deletion must lack it, and the one under way may predate it: up to three
    // listings of (10 s + a Job). A failed listing says why in the status, so a timeout names it.
    const deletedAt = operatorNow().getTime();
    let begunBeforeRemoval: number[] = [];
    await until(
      'the Backup to go',
      async () => {
        begunBeforeRemoval = [...listingsBegun];
        return !(await t.client.getOrUndefined(KopiaBackups, t.ns, docs.metadata.name!));
      },
      90000,
      250,
    ).catch(async (e: Error) => {
      throw new Error(
        `${e.message}; catalog status: ${JSON.stringify((await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas')).status.catalog)}`,
      );
    });
    // Removed by the first listing that could: the second one begun after the snapshot went. (The Backup operator
    // once put the snapshot finalizer back between the mirror's two writes, and the removal lost that race,
    // listing after listing.)
    expect(begunBeforeRemoval.filter((t) => t > deletedAt).length).toBeLessThanOrEqual(2);
    // Nothing said a snapshot was kept or deleted: there was none left to keep.
    expect((await eventsAbout(t.client, t.ns, docs.metadata.name!)).map((e) => e.reason)).not.toContain('SnapshotKept');

    expect(jobsSeen.slice(seenBefore).filter((name) => !name.startsWith('kopia-catalog-'))).toEqual([]);
    expect((await kopia.snapshots()).map((s) => s.id).sort()).toEqual(kept);
    expect((await backupsOf('laptop')).map((b) => b.status.snapshot.identity.path)).toEqual([join(scratch, 'photos')]);
  });

  it('keeps a Backup that completed after the listing started until two later listings lack its snapshot', async () => {
    const uniqueID = (await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas')).status.uniqueID as string;
    // A listing is under way (its Job exists); the Backup completes now, after that listing was asked for.
    const syncBefore = await lastSync();
    const seen = jobsSeen.length;
    await until('a catalog Job to start', async () => jobsSeen.slice(seen).some((n) => n.startsWith('kopia-catalog-')), 60000, 50);
    const id = 'kf00dfeedf00dfeedf00dfeedf00dfeed';
    const created = await t.client.create<Obj>(KopiaBackups, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: {
        name: 'late',
        namespace: t.ns,
        labels: { 'kopia.io/snapshot-id': id, 'kopia.io/repository-id': uniqueID.slice(0, 32) },
      },
      spec: { snapshot: { repository: { kind: 'Repository', name: 'nas' }, id } },
    } as Obj);
    const completed = operatorNow()
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
    await t.client.replace(
      KopiaBackups,
      {
        ...created,
        status: {
          phase: 'Succeeded',
          origin: 'Discovered',
          repository: { kind: 'Repository', name: 'nas' },
          snapshot: { id, identity: { username: 'laptop', hostname: 'home', path: '/late' } },
          completionTime: completed,
          // As the mirror records a snapshot it found: when, on the operator's clock.
          conditions: [{ type: 'Ready', status: 'True', reason: 'SnapshotMirrored', message: 'found', lastTransitionTime: completed }],
        },
      },
      'status',
    );
    // The listing under way, then the first one asked for after the completion: neither is enough alone.
    await until('the listing under way to be collected', async () => (await lastSync()) !== syncBefore, 60000, 100);
    expect(await t.client.getOrUndefined(KopiaBackups, t.ns, 'late')).toBeDefined();
    await listingsCollected(1);
    expect(await t.client.getOrUndefined(KopiaBackups, t.ns, 'late')).toBeDefined();
    // A second listing after its completion without its snapshot: now it is gone.
    await until('the Backup to go', async () => !(await t.client.getOrUndefined(KopiaBackups, t.ns, 'late')), 60000, 250);
  });
});

describe('a snapshot kopia saved under a new id', () => {
  const pathOf = (b: Obj) => b.status.snapshot.identity.path as string;
  const idsOf = async (path: string) => (await kopia.snapshots()).filter((s) => s.source.path === path).map((s) => s.id);

  async function discovered(name: string): Promise<Obj> {
    const dir = join(scratch, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.txt'), `${name} from a laptop`);
    await kopia.run('snapshot', 'create', dir, '--json');
    let found: Obj | undefined;
    await until(
      `a Discovered Backup of ${name}`,
      async () => !!(found = (await backupsOf('laptop')).find((b) => pathOf(b) === dir)),
      60000,
      250,
    );
    return found!;
  }

  it('is followed when a plain kopia client pins it: the same Backup, the new id in label and status, nothing created or removed', async () => {
    const before = await discovered('music');
    const dir = pathOf(before);
    await kopia.run('snapshot', 'pin', before.status.snapshot.id, '--add=mine');
    const [newID] = await idsOf(dir);
    expect(newID).not.toBe(before.status.snapshot.id);
    await until(
      'the Backup to follow the new id',
      async () => (await t.client.get<Obj>(KopiaBackups, t.ns, before.metadata.name!)).status.snapshot.id === newID,
      60000,
      250,
    );
    await listingsCollected(2);
    const now = (await backupsOf('laptop')).filter((b) => pathOf(b) === dir);
    expect(now.map((b) => [b.metadata.uid, b.metadata.labels?.['kopia.io/snapshot-id'], b.status.snapshot.id])).toEqual([
      [before.metadata.uid, newID, newID],
    ]);
  });

  it("is followed when the operator pins it (spec.pin): the edit Job's new id reaches the Backup, which stays the only one", async () => {
    const before = await discovered('videos');
    const dir = pathOf(before);
    await t.client.patch(KopiaBackups, t.ns, before.metadata.name!, { spec: { pin: true } });
    await until(
      'the Backup to be pinned',
      async () => (await t.client.get<Obj>(KopiaBackups, t.ns, before.metadata.name!)).status.pinned === true,
      60000,
      250,
    );
    const [newID] = await idsOf(dir);
    expect(newID).not.toBe(before.status.snapshot.id);
    expect((await kopia.snapshots()).find((s) => s.id === newID)?.pins).toEqual(['kopia-operator']);
    await listingsCollected(2);
    const now = (await backupsOf('laptop')).filter((b) => pathOf(b) === dir);
    expect(now.map((b) => [b.metadata.uid, b.metadata.labels?.['kopia.io/snapshot-id'], b.status.snapshot.id, b.status.pinned])).toEqual([
      [before.metadata.uid, newID, newID, true],
    ]);
  });
});

describe('with the mirror turned off (catalog.enabled: false)', () => {
  it('lists once when a Restore asks, mirrors nothing, and forgets the listing when the repository goes', async () => {
    await t.client.create(Secrets, secretObject({ name: 'off-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: PASSWORD } }));
    await t.client.create(PersistentVolumeClaims, claimObject({ name: 'off', namespace: t.ns }));
    await t.client.create(KopiaRepositories, repositoryObject({ name: 'off', namespace: t.ns, spec: { catalog: { enabled: false } } }));
    await waitForReady(t.client, KopiaRepositories, t.ns, 'off', { status: 'True', reason: 'Verified' });
    const offline = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, await volumeDir('off'), PASSWORD, {
      username: 'offline',
      hostname: 'home',
    });
    let id: string;
    try {
      const dir = join(scratch, 'offline');
      mkdirSync(dir);
      writeFileSync(join(dir, 'a.txt'), 'kept offline');
      await offline.run('snapshot', 'create', dir, '--json');
      [id] = (await offline.snapshots()).map((s) => s.id);
    } finally {
      offline.close();
    }
    const catalog = operator.manager.operators.find((o) => o.kind === 'Catalog') as CatalogOperator;
    const key = `Repository/${t.ns}/off`;
    const seen = jobsSeen.length;
    catalog.requestListing(key);
    await until('the one-off listing', async () => !!catalog.listing(key)?.snapshots.some((s) => s.id === id), 60000, 250);
    expect(jobsSeen.slice(seen).filter((n) => n === 'kopia-catalog-off')).toEqual(['kopia-catalog-off']);
    expect(await backupsOf('offline')).toEqual([]);
    await listingsCollected(1); // the mirrored repository lists on; this one does not, and still mirrors nothing
    expect(jobsSeen.slice(seen).filter((n) => n === 'kopia-catalog-off')).toEqual(['kopia-catalog-off']);
    expect(await backupsOf('offline')).toEqual([]);

    await t.client.delete(KopiaRepositories, t.ns, 'off');
    await until('the listing to be forgotten', async () => catalog.listing(key) === undefined, 60000, 250);
  });
});
