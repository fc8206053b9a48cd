// Deploy-or-restore, end to end: the same manifests — a BackupConfig, a Restore (newest
// snapshot, onMissingSnapshot Continue) and a claim naming it — on an empty repository give
// an empty volume; after a backup, the namespace is deleted and the same manifests applied
// again bring the files back byte for byte, with their modes and owners. The repository
// is a ClusterRepository on a node directory, so it outlives the namespace; the populator
// runs under its own ServiceAccount, the operator resolves.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeClient, KubeObject, ResourceType } from '../../operator/kube/kube-client.js';
import {
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaClusterRepositories,
  KopiaRestores,
  Namespaces,
  PersistentVolumeClaims,
  PersistentVolumes,
  Secrets,
} from '../../operator/kube/resources.js';
import { removeTree } from '../support/remove-tree.js';
import { createNamespace, deleteNamespace, testClient, until, waitForReady, type Obj } from '../support/cluster.js';
import { inventory, type TreeEntry } from '../support/kopia-cli.js';
import { secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';
import { populatorIdentity, startTestPopulator, type TestPopulator } from '../support/populator.js';

let client: KubeClient;
let system: string;
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let identity: Awaited<ReturnType<typeof populatorIdentity>>;
let populator: TestPopulator;
let nodeDir: string;
const app = `app-${randomBytes(3).toString('hex')}`;
const repository = `shared-${app}`;

/** What Git holds for the app's namespace. */
function manifests(): { type: ResourceType; obj: KubeObject }[] {
  const meta = (name: string) => ({ name, namespace: app });
  return [
    {
      type: KopiaBackupConfigs,
      obj: {
        apiVersion: 'kopia.io/v1alpha1',
        kind: 'BackupConfig',
        metadata: meta('data'),
        spec: {
          repository: { kind: 'ClusterRepository', name: repository },
          source: { pvc: 'data' },
          copyMethod: 'Direct',
          // A root backup reads every file, whatever its owner and mode (the namespace is opted in).
          mover: { securityContext: { runAsUser: 0, runAsGroup: 0 } },
        },
      },
    },
    {
      type: KopiaRestores,
      obj: {
        apiVersion: 'kopia.io/v1alpha1',
        kind: 'Restore',
        metadata: meta('data'),
        spec: {
          source: { fromConfig: { name: 'data', offset: 0 } },
          target: { populator: {} },
          onMissingSnapshot: 'Continue',
          // Owners come back only from a root mover: a privileged setting, allowed in this namespace.
          mover: { securityContext: { runAsUser: 0, runAsGroup: 0 } },
        },
      },
    },
    {
      type: PersistentVolumeClaims,
      obj: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: meta('data'),
        spec: {
          accessModes: ['ReadWriteOnce'],
          storageClassName: 'kopia-test-hostpath',
          resources: { requests: { storage: '1Gi' } },
          dataSourceRef: { apiGroup: 'kopia.io', kind: 'Restore', name: 'data' },
        },
      },
    },
  ];
}

async function deploy(): Promise<string> {
  await client.create(Namespaces, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: app, annotations: { 'kopia.io/privileged-movers': 'true' } },
  } as KubeObject);
  for (const { type, obj } of manifests()) await client.create(type, obj);
  await until(
    'the claim to be Bound',
    async () => (await client.get<Obj>(PersistentVolumeClaims, app, 'data')).status?.phase === 'Bound',
    180_000,
    250,
  );
  const pvc = await client.get<Obj>(PersistentVolumeClaims, app, 'data');
  return (await client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path;
}

beforeAll(async () => {
  client = await testClient();
  system = await createNamespace(client, 'dor-system');
  operator = await startTestOperator(system);
  identity = await populatorIdentity(client, system);
  populator = await startTestPopulator({ client: identity.client, namespace: system });
  nodeDir = mkdtempSync(join(tmpdir(), 'deploy-or-restore-'));
  chmodSync(nodeDir, 0o777);
  await client.create(Secrets, secretObject({ name: 'repo', namespace: system, stringData: { KOPIA_PASSWORD: 'deploy or restore' } }));
  await client.create(KopiaClusterRepositories, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'ClusterRepository',
    metadata: { name: repository },
    spec: {
      backend: { filesystem: { path: '/', volume: { hostPath: { path: nodeDir } } } },
      passwordSecretRef: { name: 'repo', namespace: system, key: 'KOPIA_PASSWORD' },
      create: { enabled: true },
      allowedNamespaces: { names: [app] },
      // kopia keeps a filesystem repository in 0700 directories of the uid that made them: the
      // app's movers run as root (to read every file and give owners back), so the repository's do too.
      mover: { securityContext: { runAsUser: 0, runAsGroup: 0 } },
    },
  } as Obj);
  await waitForReady(client, KopiaClusterRepositories, undefined, repository, { status: 'True', reason: 'Verified' });
});
afterAll(async () => {
  await populator.stop({ release: true });
  operator.stop();
  await identity.remove();
  await deleteNamespace(client, app);
  await client.delete(KopiaClusterRepositories, undefined, repository);
  await deleteNamespace(client, system);
  client.close();
  removeTree(nodeDir);
});

it('comes up empty on an empty repository, and with its files, modes and owners after the namespace is rebuilt', async () => {
  const first = await deploy();
  expect(inventory(first)).toEqual({});
  expect((await client.get<Obj>(KopiaRestores, app, 'data')).status.resolved).toMatchObject({ empty: true });

  // The application writes its data: nested directories, modes, owners, symlinks, a larger file.
  mkdirSync(join(first, 'config/plugins'), { recursive: true });
  writeFileSync(join(first, 'config/settings.json'), '{"theme":"dark"}\n');
  writeFileSync(join(first, 'config/plugins/big.bin'), randomBytes(2 * 1024 * 1024));
  writeFileSync(join(first, 'run.sh'), '#!/bin/sh\n');
  writeFileSync(join(first, 'empty'), '');
  symlinkSync('config/settings.json', join(first, 'settings'));
  chownSync(join(first, 'config'), 1000, 1000);
  chownSync(join(first, 'config/settings.json'), 1000, 1000);
  chownSync(join(first, 'config/plugins/big.bin'), 1001, 1002);
  chmodSync(join(first, 'run.sh'), 0o755);
  // Readable by its owner and group only: a root backup without DAC_READ_SEARCH leaves it out.
  writeFileSync(join(first, 'config/secret.conf'), 'token=only-for-1000\n');
  chownSync(join(first, 'config/secret.conf'), 1000, 1000);
  chmodSync(join(first, 'config/secret.conf'), 0o640);
  const before: Record<string, TreeEntry> = inventory(first, { owners: true });

  await client.create(KopiaBackups, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: { name: 'before-rebuild', namespace: app },
    spec: { configRef: { name: 'data' } },
  } as Obj);
  await until(
    'the backup',
    async () => (await client.get<Obj>(KopiaBackups, app, 'before-rebuild')).status?.phase === 'Succeeded',
    90_000,
    250,
  );
  const saved = await client.get<Obj>(KopiaBackups, app, 'before-rebuild');
  expect(saved.status.stats).toMatchObject({ errors: 0 });

  // The cluster loses the namespace — claim, volume, every object; the repository keeps the snapshot.
  await client.delete(Namespaces, undefined, app);
  await until('the namespace to be gone', async () => !(await client.getOrUndefined(Namespaces, undefined, app)), 120_000, 500);

  const second = await deploy();
  expect(second).not.toBe(first);
  expect(inventory(second, { owners: true })).toEqual(before);
  const restored = await client.get<Obj>(KopiaRestores, app, 'data');
  expect(restored.status).toMatchObject({
    phase: 'Completed',
    ownersRestored: true,
    resolved: { identity: { username: 'data', hostname: app } },
  });
  expect(restored.status.resolved.snapshotID).toMatch(/^[0-9a-f]+$/);
}, 600_000);
