// The data path in a real cluster, as a user drives it with kubectl: a Repository on S3 and
// one on a claim, a backup to each, and a populator restore into a new claim. The copy
// methods run are those the cluster's storage supports (E2E_COPY_METHODS, from make e2e):
// Direct everywhere; Clone and Snapshot need a CSI driver with clones and snapshots, which
// make e2e installs only where one can be built (see e2e/kind/run.sh).
import {
  apply,
  createNamespace,
  deleteNamespace,
  get,
  kubectl,
  leftovers,
  list,
  until,
  waitForPhase,
  waitForReady,
  world,
} from './support/kubectl.js';
import { claim as claimObject, repositorySecret, s3Repository } from './support/objects.js';
import { inventory, restoreMover, runInClaim, seedScript } from './support/volume-data.js';

let ns: string;
let original: string;

const claim = (name: string, extra: object = {}) => JSON.stringify(claimObject(ns, name, '1Gi', extra));

beforeAll(async () => {
  ns = await createNamespace('e2e-data', { 'kopia.io/privileged-movers': 'true' });
  await apply(JSON.stringify(repositorySecret(ns, 'e2e data path')));
  await apply(claim('app-data'));
  await runInClaim(ns, 'app-data', seedScript());
  original = await inventory(ns, 'app-data');
}, 600_000);

afterAll(async () => {
  if (ns) await deleteNamespace(ns);
}, 600_000);

it('makes a Repository on S3 Ready', async () => {
  await apply(JSON.stringify(s3Repository(ns)));
  const repo = await waitForReady('repository', ns, 's3', 300_000);
  expect(JSON.stringify(repo.status)).not.toContain('e2e-secret');
}, 360_000);

it('makes a Repository on a claim Ready', async () => {
  await apply(claim('kopia-nas'));
  // The default mover runs as 65534: the repository's volume is made writable for it, as a user would.
  await runInClaim(ns, 'kopia-nas', 'chown 65534:65534 /data');
  await apply(
    JSON.stringify({
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Repository',
      metadata: { name: 'nas', namespace: ns },
      spec: {
        backend: { filesystem: { path: '/', volume: { persistentVolumeClaim: { claimName: 'kopia-nas' } } } },
        passwordSecretRef: { name: 'kopia-repo', key: 'KOPIA_PASSWORD' },
        create: { enabled: true },
      },
    }),
  );
  await waitForReady('repository', ns, 'nas', 300_000);
}, 360_000);

const copyMethods = (process.env.E2E_COPY_METHODS ?? 'Direct').split(',');

describe.each(
  copyMethods.flatMap((copyMethod) => [
    [copyMethod, 's3'],
    [copyMethod, 'nas'],
  ]),
)('a backup with copyMethod %s (repository %s)', (copyMethod, repository) => {
  const name = `data-${copyMethod.toLowerCase()}-${repository}`;
  it('succeeds, reads every file, and leaves no Job, pod, clone or VolumeSnapshot behind', async () => {
    await apply(
      JSON.stringify({
        apiVersion: 'kopia.io/v1alpha1',
        kind: 'BackupConfig',
        metadata: { name, namespace: ns },
        spec: {
          repository: { name: repository },
          source: { pvc: 'app-data' },
          copyMethod,
          ...(copyMethod === 'Snapshot' ? { volumeSnapshotClassName: world.snapshotClass } : {}),
        },
      }),
    );
    await waitForReady('backupconfig', ns, name, 180_000);
    await apply(
      JSON.stringify({ apiVersion: 'kopia.io/v1alpha1', kind: 'Backup', metadata: { name, namespace: ns }, spec: { configRef: { name } } }),
    );
    const backup = await waitForPhase('backup', ns, name, 'Succeeded', 600_000);
    expect(backup.status.snapshot.id).toMatch(/^k?[0-9a-f]+$/);
    expect(backup.status.stats).toMatchObject({ errors: 0 });
    expect(backup.status.stats.totalBytes).toBeGreaterThan(2 * 1024 * 1024);
    await until(
      'the mover Job, pod and any clone or VolumeSnapshot to be removed',
      async () => {
        const pvcs = (await list('pvc', ns)).map((p) => p.metadata.name).filter((n) => n !== 'app-data' && n !== 'kopia-nas');
        const snapshots = copyMethod === 'Snapshot' ? await list('volumesnapshot', ns) : [];
        const left = (await leftovers()).filter((l) => l.includes(` ${ns}/`));
        return pvcs.length === 0 && snapshots.length === 0 && left.length === 0;
      },
      180_000,
      async () => kubectl(['get', 'jobs,pods,pvc,volumesnapshot', '-n', ns]),
    );
  }, 900_000);
});

it('restores the newest Direct snapshot into a new claim through the populator', async () => {
  await apply(
    JSON.stringify({
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Restore',
      metadata: { name: 'data', namespace: ns },
      spec: {
        source: { fromConfig: { name: 'data-direct-s3', offset: 0 } },
        target: { populator: {} },
        onMissingSnapshot: 'Fail',
        mover: restoreMover,
      },
    }),
  );
  await apply(claim('restored', { dataSourceRef: { apiGroup: 'kopia.io', kind: 'Restore', name: 'data' } }));
  // The inventory pod is the claim's first consumer: a WaitForFirstConsumer class binds for it.
  const restored = await inventory(ns, 'restored');
  expect(restored).toEqual(original);
  const direct = await get('backup', ns, 'data-direct-s3');
  const restore = await get('restore', ns, 'data');
  expect(restore.status.resolved.snapshotID).toBe(direct.status.snapshot.id);
  expect((await leftovers()).filter((l) => l.includes(` ${ns}/`))).toEqual([]);
}, 900_000);
