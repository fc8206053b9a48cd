// Issue 14: a ClusterRepository's maintenance belongs to the platform. A tenant of an allowed
// namespace who writes a Maintenance for it must not take maintenance over (a user-written
// Maintenance outranks the default one) nor run maintenance Jobs with the repository's keys
// in its namespace: its Maintenance is refused with a condition and an Event, the default
// one in the operator's namespace keeps acting, and kopia's maintenance owner stays the
// platform's.
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeClient } from '../../operator/kube/kube-client.js';
import { Jobs, KopiaClusterRepositories, KopiaMaintenances, Secrets } from '../../operator/kube/resources.js';
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
import { clusterRepositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';
import { tenantClient } from '../support/tenant.js';

let admin: KubeClient;
let tenant: KubeClient;
let system: string;
let app: string;
let nodeDir: string;
let operator: Awaited<ReturnType<typeof startTestOperator>>;
const repository = `shared-${process.pid}`;
const defaultMaintenance = `cluster-${repository}`;

beforeAll(async () => {
  admin = await testClient();
  system = await createNamespace(admin, 'tm-system');
  app = await createNamespace(admin, 'tm-app');
  operator = await startTestOperator(system);
  tenant = await tenantClient(admin, app);
  nodeDir = mkdtempSync(join(tmpdir(), 'tenancy-maintenance-'));
  chmodSync(nodeDir, 0o777);
  await admin.create(Secrets, secretObject({ name: 'repo', namespace: system, stringData: { KOPIA_PASSWORD: 'shared by tenants' } }));
  await admin.create(
    KopiaClusterRepositories,
    clusterRepositoryObject({ name: repository, nodeDir, namespace: system, passwordSecret: 'repo', allowed: [app] }),
  );
  await waitForReady(admin, KopiaClusterRepositories, undefined, repository, { status: 'True', reason: 'Verified' });
  await until(
    'the default Maintenance to run once',
    async () => !!(await admin.get<Obj>(KopiaMaintenances, system, defaultMaintenance).catch(() => undefined))?.status?.lastQuick,
    120_000,
    500,
  );
}, 240_000);
afterAll(async () => {
  await operator?.stop();
  tenant?.close();
  await admin.delete(KopiaClusterRepositories, undefined, repository).catch(() => undefined);
  await deleteNamespace(admin, app);
  await deleteNamespace(admin, system);
  admin.close();
  removeTree(nodeDir);
});

it("a tenant's Maintenance of a ClusterRepository is refused and runs nothing; the platform's keeps acting", async () => {
  await tenant.create(KopiaMaintenances, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Maintenance',
    metadata: { name: 'takeover', namespace: app },
    spec: { repository: { kind: 'ClusterRepository', name: repository }, owner: 'tenant@takeover', takeoverPolicy: 'Force' },
  } as Obj);
  const refused = await waitForReady(admin, KopiaMaintenances, app, 'takeover', { status: 'False', reason: 'MaintenanceNotAllowed' });
  expect(conditionOf(refused).message).toContain(`only a Maintenance in namespace ${system}`);
  expect((await eventsAbout(admin, app, 'takeover')).map((e) => e.reason)).toContain('MaintenanceNotAllowed');

  // Another pass of every Maintenance of the repository, then: still no Job in the tenant's
  // namespace, and the default is not in Conflict with the tenant's.
  await admin.patch(KopiaMaintenances, system, defaultMaintenance, {
    metadata: { annotations: { 'kopia.io/run-maintenance': 'after-tenant' } },
  });
  await until(
    'the default Maintenance to run again',
    async () => (await admin.get<Obj>(KopiaMaintenances, system, defaultMaintenance)).status?.manualRunHandled === 'after-tenant',
    120_000,
    500,
  );
  const platform = await admin.get<Obj>(KopiaMaintenances, system, defaultMaintenance);
  expect(conditionOf(platform)?.reason).not.toBe('Conflict');
  expect(platform.status.owner).not.toBe('tenant@takeover');
  expect((await admin.list<Obj>(Jobs, app)).items.map((j) => j.metadata.name)).toEqual([]);
  expect((await admin.get<Obj>(KopiaMaintenances, app, 'takeover')).status?.lastQuick).toBeUndefined();
}, 300_000);
