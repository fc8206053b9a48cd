// The tenant of the attack tests (e2e/support/tenant.ts) is what it claims to be: it may
// write kopia.io objects, claims and pods in its own namespace, and nothing beyond.
import { KubeClient } from '../../operator/kube/kube-client.js';
import { KopiaBackupConfigs, KopiaClusterRepositories, PersistentVolumeClaims, Secrets } from '../../operator/kube/resources.js';
import { createNamespace, deleteNamespace, useTestNamespace, type Obj } from '../support/cluster.js';
import { claimObject, secretObject } from '../support/objects.js';
import { tenantClient } from '../support/tenant.js';

const t = useTestNamespace('tenant-rbac');
let other: string;
let tenant: KubeClient;

beforeAll(async () => {
  other = await createNamespace(t.client, 'tenant-other');
  tenant = await tenantClient(t.client, t.ns);
});
afterAll(async () => {
  tenant?.close();
  await deleteNamespace(t.client, other);
});

const config = (namespace: string) =>
  ({
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name: 'app', namespace },
    spec: { repository: { name: 'nas' }, source: { pvc: 'data' } },
  }) as Obj;

const status = (p: Promise<unknown>) =>
  p.then(
    () => 200,
    (e: { status?: number }) => e.status,
  );

it('writes kopia.io objects and claims in its own namespace', async () => {
  expect(await status(tenant.create(KopiaBackupConfigs, config(t.ns)))).toBe(200);
  expect(await status(tenant.create(PersistentVolumeClaims, claimObject({ name: 'data', namespace: t.ns })))).toBe(200);
});

it('reads and writes no Secret, nothing in another namespace and no ClusterRepository', async () => {
  expect(await status(tenant.create(Secrets, secretObject({ name: 's', namespace: t.ns, stringData: { a: 'b' } })))).toBe(403);
  expect(await status(tenant.list(Secrets, t.ns))).toBe(403);
  expect(await status(tenant.create(KopiaBackupConfigs, config(other)))).toBe(403);
  expect(await status(tenant.list(KopiaBackupConfigs, other))).toBe(403);
  expect(await status(tenant.list(KopiaClusterRepositories, undefined))).toBe(403);
});
