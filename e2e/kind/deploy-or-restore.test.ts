// Deploy-or-restore in a real cluster: the same manifests, applied with kubectl, come up
// empty on an empty repository; after a backup the namespace is deleted and the same
// manifests applied again bring the files back byte-, mode- and owner-identical. The
// repository is a ClusterRepository on S3, so it outlives the namespace.
import { randomBytes } from 'node:crypto';
import { apply, deleteNamespace, get, kubectl, leftovers, until, waitForPhase, waitForReady, world } from './support/kubectl.js';
import { inventory, runInClaim, seedScript } from './support/volume-data.js';

const app = `e2e-dor-${randomBytes(3).toString('hex')}`;
const repository = `e2e-${app}`;
// Owners come back only from root movers: a privileged setting this namespace opts into.
const rootMover = { securityContext: { runAsUser: 0, runAsGroup: 0 } };

/** What Git holds for the application: applied as one document stream, as Argo CD or Flux would. */
const manifests = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app, annotations: { 'kopia.io/privileged-movers': 'true' } } },
  {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name: 'data', namespace: app },
    spec: { repository: { kind: 'ClusterRepository', name: repository }, source: { pvc: 'data' }, copyMethod: 'Direct', mover: rootMover },
  },
  {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Restore',
    metadata: { name: 'data', namespace: app },
    spec: {
      source: { fromConfig: { name: 'data', offset: 0 } },
      target: { populator: {} },
      onMissingSnapshot: 'Continue',
      mover: rootMover,
    },
  },
  {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'data', namespace: app },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: world.storageClass,
      resources: { requests: { storage: '1Gi' } },
      dataSourceRef: { apiGroup: 'kopia.io', kind: 'Restore', name: 'data' },
    },
  },
]
  .map((m) => JSON.stringify(m))
  .join('\n---\n');

beforeAll(async () => {
  await apply(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: repository, namespace: world.system },
      stringData: { KOPIA_PASSWORD: 'deploy or restore', AWS_ACCESS_KEY_ID: 'e2e', AWS_SECRET_ACCESS_KEY: 'e2e-secret' },
    }),
  );
  await apply(
    JSON.stringify({
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'ClusterRepository',
      metadata: { name: repository },
      spec: {
        backend: {
          s3: {
            bucket: world.s3Bucket,
            prefix: `${repository}/`,
            endpoint: world.s3Endpoint,
            tls: { disabled: true },
            credentialsSecretRef: { name: repository, namespace: world.system },
          },
        },
        passwordSecretRef: { name: repository, namespace: world.system, key: 'KOPIA_PASSWORD' },
        create: { enabled: true },
        allowedNamespaces: { names: [app] },
      },
    }),
  );
  await waitForReady('clusterrepository', '', repository, 300_000);
}, 360_000);

afterAll(async () => {
  await deleteNamespace(app);
  await kubectl(['delete', 'clusterrepository', repository, '--ignore-not-found']);
  await kubectl(['delete', 'secret', '-n', world.system, repository, '--ignore-not-found']);
}, 600_000);

it('comes up empty on an empty repository, and with its files, modes and owners after the namespace is rebuilt', async () => {
  await apply(manifests);
  // The first consumer binds the claim; an empty repository gives an empty volume.
  expect(await inventory(app, 'data', { owners: true })).toBe('');
  expect((await get('restore', app, 'data')).status.resolved).toMatchObject({ empty: true });

  await runInClaim(app, 'data', seedScript({ restricted: true }));
  const before = await inventory(app, 'data', { owners: true });
  await apply(
    JSON.stringify({
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'before-rebuild', namespace: app },
      spec: { configRef: { name: 'data' } },
    }),
  );
  const saved = await waitForPhase('backup', app, 'before-rebuild', 'Succeeded', 600_000);
  expect(saved.status.stats).toMatchObject({ errors: 0 });

  // The cluster loses the namespace — claim, volume, every object; the repository keeps the snapshot.
  await deleteNamespace(app);
  await apply(manifests);
  expect(await inventory(app, 'data', { owners: true })).toEqual(before);
  const restored = await get('restore', app, 'data');
  expect(restored.status).toMatchObject({ ownersRestored: true, resolved: { identity: { username: 'data', hostname: app } } });
  expect(restored.status.resolved.snapshotID).toBe(saved.status.snapshot.id);
  await until(
    'no mover Job, pod or prime claim left',
    async () => (await leftovers()).filter((l) => l.includes(` ${app}/`)).length === 0,
    180_000,
  );
}, 1_500_000);
