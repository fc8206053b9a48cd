// Issue 14, rules 3 and 5, as a tenant would attack them. A tenant of a shared
// ClusterRepository writes only its namespace's kopia.io objects, claims and pods
// (e2e/support/tenant.ts); the operator and the populator run under their manifests' RBAC.
// - Rule 3: privileged mover settings are checked at every Job build. A populator Restore
//   answered for a claim while its mover was the default, then edited to run as root,
//   gets no root Job in a namespace that never opted in: the populator runs only mover
//   settings the operator approved (status.moverApproval).
// - Rule 5: copies of the ClusterRepository's keys in tenant namespaces follow tenancy:
//   deleted when the namespace leaves allowedNamespaces or its last consumer goes, and
//   refreshed when the source Secret is rotated.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeClient } from '../../operator/kube/kube-client.js';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaClusterRepositories,
  KopiaRestores,
  Namespaces,
  PersistentVolumeClaims,
  PersistentVolumes,
  Pods,
  Secrets,
} from '../../operator/kube/resources.js';
import { clusterSecretCopyName } from '../../operator/repository/secret-copy.js';
import {
  conditionOf,
  createNamespace,
  deleteNamespace,
  eventsAbout,
  until,
  useTestNamespace,
  waitForReady,
  type Obj,
} from '../support/cluster.js';
import { removeTree } from '../support/remove-tree.js';
import { KopiaCli } from '../support/kopia-cli.js';
import { STORAGE_CLASS_WFFC } from '../support/node-agent.js';
import { claimObject, clusterRepositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';
import { populatorIdentity, startTestPopulator, type TestPopulator } from '../support/populator.js';
import { tenantClient } from '../support/tenant.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** A Pod that uses the claim: a WaitForFirstConsumer claim's population starts with it. */
/**
 * A consumer Pod starts the claim's population; the populator refuses a mover the operator
 * did not approve, said on the claim (Normal while the operator has not judged the edit yet, then Warning).
 */
async function consumeAndSeeRefused(namespace: string, podName: string, claimName: string): Promise<void> {
  await tenants[namespace].create(Pods, consumerPod(namespace, podName, claimName));
  await until(
    `the populator to refuse the mover for ${claimName}`,
    async () => (await eventsAbout(t.client, namespace, claimName)).some((e) => e.reason === 'PopulatorMoverNotApproved'),
    60_000,
    250,
  );
}

const consumerPod = (namespace: string, name: string, claimName: string) =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: {
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: 'kopia-operator:test', command: ['true'], volumeMounts: [{ name: 'd', mountPath: '/d' }] }],
      volumes: [{ name: 'd', persistentVolumeClaim: { claimName } }],
    },
  }) as Obj;

const t = useTestNamespace('approval');
const PASSWORD = 'shared by tenants';
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let identity: Awaited<ReturnType<typeof populatorIdentity>>;
let populator: TestPopulator;
let nodeDir: string;
let repository: string;
let copyName: string;
/** Tenant namespaces: a (privileged-mover attack, rotation), b (removed from allowedNamespaces), c (last consumer). */
const ns = { a: '', b: '', c: '' };
const tenants: Record<string, KubeClient> = {};

const backupConfig = (namespace: string) =>
  ({
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name: 'app', namespace },
    spec: { repository: { kind: 'ClusterRepository', name: repository }, source: { pvc: 'app-data' }, copyMethod: 'Direct' },
  }) as Obj;

const backupObject = (namespace: string, name: string) =>
  ({ apiVersion: 'kopia.io/v1alpha1', kind: 'Backup', metadata: { name, namespace }, spec: { configRef: { name: 'app' } } }) as Obj;

/** As the tenant: a source claim with a file, its BackupConfig and one Backup (which makes the key copy there). */
async function tenantWithBackup(namespace: string): Promise<void> {
  const tenant = tenants[namespace];
  await tenant.create(PersistentVolumeClaims, claimObject({ name: 'app-data', namespace }));
  await until('the source claim to bind', async () => (await claimIn(namespace, 'app-data'))?.status?.phase === 'Bound', 60_000, 250);
  const pv = await t.client.get<Obj>(PersistentVolumes, undefined, (await claimIn(namespace, 'app-data'))!.spec.volumeName);
  writeFileSync(join(pv.spec.hostPath.path, 'hello.txt'), `hello from ${namespace}\n`);
  await tenant.create(KopiaBackupConfigs, backupConfig(namespace));
  await tenant.create(KopiaBackups, backupObject(namespace, 'first'));
  await until(
    `Backup ${namespace}/first`,
    async () => (await t.client.get<Obj>(KopiaBackups, namespace, 'first')).status?.phase === 'Succeeded',
    120_000,
    250,
  );
}

const claimIn = (namespace: string, name: string) => t.client.getOrUndefined<Obj>(PersistentVolumeClaims, namespace, name);
const copyIn = (namespace: string) => t.client.getOrUndefined<Obj & { data?: Record<string, string> }>(Secrets, namespace, copyName);

async function snapshotCount(): Promise<number> {
  const kopia = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, nodeDir, PASSWORD);
  try {
    return (await kopia.snapshots()).length;
  } finally {
    kopia.close();
  }
}

/** Every Job seen in a namespace while `during` runs, polled often enough to see any mover that ran. */
async function jobsSeenDuring(namespace: string, during: () => Promise<void>): Promise<Map<string, Obj>> {
  const seen = new Map<string, Obj>();
  let done = false;
  const poll = (async () => {
    while (!done) {
      for (const job of (await t.client.list<Obj>(Jobs, namespace)).items) seen.set(job.metadata.uid!, job);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await during();
  } finally {
    done = true;
    await poll;
  }
  return seen;
}

const runsAsRoot = (job: Obj) => {
  const pod = job.spec.template.spec;
  return [pod.securityContext, ...pod.containers.map((c: any) => c.securityContext)].some((sc) => sc?.runAsUser === 0);
};

beforeAll(async () => {
  operator = await startTestOperator(t.ns);
  identity = await populatorIdentity(t.client, t.ns);
  populator = await startTestPopulator({ client: identity.client, namespace: t.ns, retry: { initialMs: 1000, maxMs: 4000 } });
  nodeDir = mkdtempSync(join(tmpdir(), 'tenancy-approval-'));
  chmodSync(nodeDir, 0o777);
  for (const k of ['a', 'b', 'c'] as const) {
    ns[k] = await createNamespace(t.client, `tenant-${k}`);
    tenants[ns[k]] = await tenantClient(t.client, ns[k]);
  }
  repository = `shared-${t.ns}`;
  copyName = clusterSecretCopyName(repository);
  await t.client.create(Secrets, secretObject({ name: 'shared-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: PASSWORD } }));
  await t.client.create(
    KopiaClusterRepositories,
    clusterRepositoryObject({ name: repository, nodeDir, namespace: t.ns, passwordSecret: 'shared-password', allowed: [ns.a, ns.b, ns.c] }),
  );
  await waitForReady(t.client, KopiaClusterRepositories, undefined, repository, { status: 'True', reason: 'Verified' }, 120_000);
  await tenantWithBackup(ns.a);
}, 300_000);

afterAll(async () => {
  await populator?.stop({ release: true });
  await identity?.remove();
  operator?.stop();
  for (const client of Object.values(tenants)) client.close();
  for (const namespace of Object.values(ns)) if (namespace) await deleteNamespace(t.client, namespace);
  await t.client.delete(KopiaClusterRepositories, undefined, repository).catch(() => undefined);
  removeTree(nodeDir);
});

describe('rule 3: privileged mover settings are checked at every Job build', () => {
  const rootMover = { mover: { securityContext: { runAsUser: 0, runAsGroup: 0 } } };
  const defaultMover = { mover: { securityContext: { runAsUser: null, runAsGroup: null } } };

  it('a Restore edited to run as root after it answered a claim gets no root Job in a namespace not opted in', async () => {
    const tenant = tenants[ns.a];
    await tenant.create(KopiaRestores, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Restore',
      metadata: { name: 'data', namespace: ns.a },
      spec: { source: { fromConfig: { name: 'app' } }, target: { populator: {} } },
    } as Obj);
    await waitForReady(t.client, KopiaRestores, ns.a, 'data', { status: 'False', reason: 'WaitingForClaim' });
    // A claim that waits for a consumer (WaitForFirstConsumer): answered with the default mover, no Job yet.
    const claim = claimObject({ name: 'restored', namespace: ns.a, storageClassName: STORAGE_CLASS_WFFC }) as Obj;
    claim.spec.dataSourceRef = { apiGroup: 'kopia.io', kind: 'Restore', name: 'data' };
    const created = await tenant.create<Obj>(PersistentVolumeClaims, claim);
    const uid = created.metadata.uid!;
    await until(
      'the claim to be answered',
      async () =>
        !!(await t.client.get<Obj>(KopiaRestores, ns.a, 'data')).status?.claims?.some((c: any) => c.claimUID === uid && c.snapshotID),
      90_000,
      250,
    );

    const seen = await jobsSeenDuring(ns.a, async () => {
      // The attack: root with owner capabilities, then a consumer so the populator starts its Job.
      await tenant.patch(KopiaRestores, ns.a, 'data', { spec: rootMover });
      await consumeAndSeeRefused(ns.a, 'consumer', 'restored');
      await operator.manager.whenIdle();
      await new Promise((r) => setTimeout(r, 3000));
    });
    const rootJobs = [...seen.values()].filter(runsAsRoot).map((j) => j.metadata.name);
    expect(rootJobs).toEqual([]);
    expect((await claimIn(ns.a, 'restored'))?.status?.phase).toBe('Pending');

    // Told on the claim (the populator) and on the Restore (the operator), as Warnings.
    const claimWarning = (await eventsAbout(t.client, ns.a, 'restored')).find(
      (e) => e.reason === 'PopulatorMoverNotApproved' && e.type === 'Warning',
    );
    expect(claimWarning).toBeDefined();
    expect(claimWarning.message).toContain('spec.mover');
    const restore = await waitForReady(t.client, KopiaRestores, ns.a, 'data', { status: 'False', reason: 'PrivilegedMoverNotAllowed' });
    expect(conditionOf(restore).message).toContain('runAsUser: 0 (root)');
    expect(conditionOf(restore).message).toContain('kopia.io/privileged-movers');
    expect(restore.status.moverApproval).toBeUndefined();
    const restoreWarning = (await eventsAbout(t.client, ns.a, 'data')).find((e) => e.reason === 'PrivilegedMoverNotAllowed');
    expect(restoreWarning).toMatchObject({ type: 'Warning' });

    // Back to the default mover: approved again, the claim is filled by a non-root mover.
    const after = await jobsSeenDuring(ns.a, async () => {
      await tenant.patch(KopiaRestores, ns.a, 'data', { spec: defaultMover });
      await until('the claim to bind', async () => (await claimIn(ns.a, 'restored'))?.status?.phase === 'Bound', 120_000, 250);
    });
    expect([...after.values()].filter(runsAsRoot)).toEqual([]);
    expect([...after.values()].some((j) => j.metadata.name === `kopia-populate-${uid}`)).toBe(true);
  }, 300_000);

  it('a Restore naming a new claim while its mover runs as root waits, with the reason, and makes no Job', async () => {
    const tenant = tenants[ns.a];
    const seen = await jobsSeenDuring(ns.a, async () => {
      await tenant.patch(KopiaRestores, ns.a, 'data', { spec: rootMover });
      const claim = claimObject({ name: 'second', namespace: ns.a }) as Obj;
      claim.spec.dataSourceRef = { apiGroup: 'kopia.io', kind: 'Restore', name: 'data' };
      await tenant.create(PersistentVolumeClaims, claim);
      await waitForReady(t.client, KopiaRestores, ns.a, 'data', { status: 'False', reason: 'PrivilegedMoverNotAllowed' });
      await operator.manager.whenIdle();
      await new Promise((r) => setTimeout(r, 3000));
    });
    expect([...seen.values()].map((j) => j.metadata.name)).toEqual([]);
    expect((await claimIn(ns.a, 'second'))?.status?.phase).toBe('Pending');
    // Back to the default mover: the claim is answered and filled.
    await tenant.patch(KopiaRestores, ns.a, 'data', { spec: defaultMover });
    await until('the second claim to bind', async () => (await claimIn(ns.a, 'second'))?.status?.phase === 'Bound', 120_000, 250);
  }, 120_000);

  it('withdrawing the privileged-movers opt-in withdraws the approval: the next restore Job is refused', async () => {
    const tenant = tenants[ns.a];
    await t.client.patch(Namespaces, undefined, ns.a, { metadata: { annotations: { 'kopia.io/privileged-movers': 'true' } } });
    await tenant.patch(KopiaRestores, ns.a, 'data', { spec: rootMover });
    await operator.manager.whenIdle();
    const claim = claimObject({ name: 'third', namespace: ns.a, storageClassName: STORAGE_CLASS_WFFC }) as Obj;
    claim.spec.dataSourceRef = { apiGroup: 'kopia.io', kind: 'Restore', name: 'data' };
    const uid = (await tenant.create<Obj>(PersistentVolumeClaims, claim)).metadata.uid!;
    await until(
      'the claim to be answered',
      async () =>
        !!(await t.client.get<Obj>(KopiaRestores, ns.a, 'data')).status?.claims?.some((c: any) => c.claimUID === uid && c.snapshotID),
      90_000,
      250,
    );
    // The administrator withdraws the opt-in before the claim gets its consumer.
    await t.client.patch(Namespaces, undefined, ns.a, { metadata: { annotations: { 'kopia.io/privileged-movers': null } } });
    await until(
      'the approval to be withdrawn',
      async () => !(await t.client.get<Obj>(KopiaRestores, ns.a, 'data')).status?.moverApproval,
      30_000,
      250,
    );
    const seen = await jobsSeenDuring(ns.a, async () => {
      await consumeAndSeeRefused(ns.a, 'consumer-third', 'third');
      await new Promise((r) => setTimeout(r, 3000));
    });
    expect([...seen.values()].filter(runsAsRoot).map((j) => j.metadata.name)).toEqual([]);
    expect((await claimIn(ns.a, 'third'))?.status?.phase).toBe('Pending');
    await waitForReady(t.client, KopiaRestores, ns.a, 'data', { status: 'False', reason: 'PrivilegedMoverNotAllowed' });
    await tenant.delete(PersistentVolumeClaims, ns.a, 'third');
    await tenant.patch(KopiaRestores, ns.a, 'data', { spec: defaultMover });
  }, 240_000);
});

describe('rule 5: copies of a ClusterRepository’s keys follow tenancy', () => {
  it('a namespace removed from allowedNamespaces loses its copy, and a new Backup there gets no Job', async () => {
    await tenantWithBackup(ns.b);
    expect(await copyIn(ns.b)).toBeDefined();
    const snapshots = await snapshotCount();

    await t.client.patch(KopiaClusterRepositories, undefined, repository, { spec: { allowedNamespaces: { names: [ns.a, ns.c] } } });
    await until('the copy to be deleted', async () => !(await copyIn(ns.b)), 60_000, 250);

    await tenants[ns.b].create(KopiaBackups, backupObject(ns.b, 'second'));
    // The BackupConfig is refused first; the Backup waits on it and says why.
    const refused = await waitForReady(t.client, KopiaBackups, ns.b, 'second', { status: 'False', reason: 'ConfigNotReady' });
    expect(conditionOf(refused).message).toContain(
      `RepositoryNotAllowed: ClusterRepository ${repository} does not allow namespace ${ns.b}`,
    );
    expect((await eventsAbout(t.client, ns.b, 'second')).some((e) => e.reason === 'ConfigNotReady')).toBe(true);
    await operator.manager.whenIdle();
    expect((await t.client.list<Obj>(Jobs, ns.b)).items.map((j) => j.metadata.name)).toEqual([]);
    expect(await copyIn(ns.b)).toBeUndefined();
    expect(await snapshotCount()).toBe(snapshots);
    // The other tenants keep theirs.
    expect(await copyIn(ns.a)).toBeDefined();
  }, 300_000);

  it('the copy goes with the last consumer of the repository in a namespace', async () => {
    await tenantWithBackup(ns.c);
    expect(await copyIn(ns.c)).toBeDefined();
    // The BackupConfig still names the repository: the copy stays.
    await tenants[ns.c].delete(KopiaBackups, ns.c, 'first');
    await until('the Backup to be gone', async () => !(await t.client.getOrUndefined(KopiaBackups, ns.c, 'first')), 30_000, 250);
    await operator.manager.whenIdle();
    expect(await copyIn(ns.c)).toBeDefined();
    await tenants[ns.c].delete(KopiaBackupConfigs, ns.c, 'app');
    await until('the copy to be deleted', async () => !(await copyIn(ns.c)), 60_000, 250);
    // The operator's own copy (verification) stays.
    expect(await copyIn(t.ns)).toBeDefined();
  }, 300_000);

  it('a rotated source Secret is copied again to every namespace that holds a copy', async () => {
    const rotated = 'rotated password';
    await t.client.patch(Secrets, t.ns, 'shared-password', { stringData: { KOPIA_PASSWORD: rotated } });
    const want = Buffer.from(rotated).toString('base64');
    for (const namespace of [ns.a, t.ns])
      await until(
        `the copy in ${namespace} to be refreshed`,
        async () => (await copyIn(namespace))?.data?.KOPIA_PASSWORD === want,
        60_000,
        250,
      );
  }, 120_000);
});
