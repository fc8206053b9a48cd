// A tenant must not borrow the operator's rights: privileged mover settings in a
// namespaced object give a condition and an Event, never a Pod, until a cluster
// administrator opts the namespace in; a ClusterRepository (admin-owned) may use them.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaClusterRepositories,
  KopiaRepositories,
  Namespaces,
  Secrets,
} from '../../operator/kube/resources.js';
import { removeTree } from '../support/remove-tree.js';
import { createNamespace, deleteNamespace, eventsAbout, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { repositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';

const t = useTestNamespace('privileges');
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let nodeDir: string;

beforeAll(async () => {
  operator = await startTestOperator(t.ns);
  // A directory "on the node", writable by the mover's default uid.
  nodeDir = mkdtempSync(join(tmpdir(), 'privileged-'));
  chmodSync(nodeDir, 0o777);
});
afterAll(() => {
  operator.stop();
  removeTree(nodeDir);
});

const password = (name: string, namespace = t.ns) =>
  t.client.create(Secrets, secretObject({ name: `${name}-password`, namespace, stringData: { KOPIA_PASSWORD: 'privileged password' } }));

async function expectRefused(name: string, setting: string): Promise<void> {
  const repo = await waitForReady(t.client, KopiaRepositories, t.ns, name, { status: 'False', reason: 'PrivilegedMoverNotAllowed' });
  const message = repo.status.conditions.find((c: { type: string }) => c.type === 'Ready').message;
  expect(message).toContain(setting);
  expect(message).toContain('kopia.io/privileged-movers');
  const warning = (await eventsAbout(t.client, t.ns, name)).find((e) => e.reason === 'PrivilegedMoverNotAllowed');
  expect(warning?.type).toBe('Warning');
  // The refusal is decided before any Job; once it is in status, none exists or will.
  await operator.manager.whenIdle();
  expect(await t.client.getOrUndefined(Jobs, t.ns, `kopia-verify-${name}`)).toBeUndefined();
}

it('refuses a Repository on a node directory (hostPath) in a namespace not opted in', async () => {
  await password('node');
  await t.client.create(KopiaRepositories, repositoryObject({ name: 'node', namespace: t.ns, volume: { hostPath: { path: nodeDir } } }));
  await expectRefused('node', `hostPath (${nodeDir})`);
  expect(readdirSync(nodeDir)).toEqual([]);
});

it('refuses a Repository whose mover runs as root', async () => {
  await password('root');
  await t.client.create(
    KopiaRepositories,
    repositoryObject({ name: 'root', namespace: t.ns, claimName: 'none', spec: { mover: { securityContext: { runAsUser: 0 } } } }),
  );
  await expectRefused('root', 'runAsUser: 0 (root)');
});

it('runs them once a cluster administrator opts the namespace in', async () => {
  await t.client.patch(Namespaces, undefined, t.ns, { metadata: { annotations: { 'kopia.io/privileged-movers': 'true' } } });
  await waitForReady(t.client, KopiaRepositories, t.ns, 'node', { status: 'True', reason: 'Verified' });
  expect(readdirSync(nodeDir)).toContain('kopia.repository.f');
  await t.client.patch(Namespaces, undefined, t.ns, { metadata: { annotations: { 'kopia.io/privileged-movers': null } } });
  await expectRefused('node', 'hostPath');
});

it('refuses a BackupConfig whose movers would run as another uid, in a namespace not opted in', async () => {
  await t.client.create(KopiaBackupConfigs, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name: 'app', namespace: t.ns },
    spec: { repository: { name: 'node' }, source: { pvc: 'app' }, mover: { securityContext: { runAsUser: 1000 } } },
  } as Obj);
  const config = await waitForReady(t.client, KopiaBackupConfigs, t.ns, 'app', { status: 'False', reason: 'PrivilegedMoverNotAllowed' });
  expect(config.status.conditions[0].message).toContain('spec.mover.securityContext.runAsUser: 1000');
});

it('lets a ClusterRepository use a node directory: only a cluster administrator can write one', async () => {
  const name = `node-${t.ns}`;
  const secrets = await createNamespace(t.client, 'secrets');
  mkdirSync(join(nodeDir, 'cluster'), { mode: 0o777 });
  chmodSync(join(nodeDir, 'cluster'), 0o777);
  try {
    await password('shared', secrets);
    await t.client.create(KopiaClusterRepositories, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'ClusterRepository',
      metadata: { name },
      spec: {
        backend: { filesystem: { path: '/cluster', volume: { hostPath: { path: nodeDir } } } },
        passwordSecretRef: { name: 'shared-password', namespace: secrets, key: 'KOPIA_PASSWORD' },
        create: { enabled: true },
        allowedNamespaces: { names: [t.ns] },
      },
    } as Obj);
    // The operator namespace (t.ns) is no longer opted in; the ClusterRepository runs anyway.
    await waitForReady(t.client, KopiaClusterRepositories, undefined, name, { status: 'True', reason: 'Verified' });
    expect(readdirSync(join(nodeDir, 'cluster'))).toContain('kopia.repository.f');
  } finally {
    await t.client.delete(KopiaClusterRepositories, undefined, name);
    await deleteNamespace(t.client, secrets);
  }
});
