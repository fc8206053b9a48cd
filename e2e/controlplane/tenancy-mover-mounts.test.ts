// Issue 14, rules 4 and 7, as a tenant of a shared ClusterRepository would attack them.
// Rule 4: a tenant's data never lands on the mover's code or tools. The tenant chooses its
// BackupConfig's identity.path and the files in its claim; were the claim mounted at that
// path, a claim holding a tool the mover runs would run the tenant's code with the shared
// repository's password. The claim is mounted at one fixed path and kopia is told the
// identity's path (--override-source), so any identity path backs up and restores.
// Rule 7: movers carry no Kubernetes credentials: no mover Pod mounts a service-account token.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeClient } from '../../operator/kube/kube-client.js';
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
import { MOVER_PATHS } from '../../operator/mover/mover-contract.js';
import { removeTree } from '../support/remove-tree.js';
import { createNamespace, deleteNamespace, until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { inventory, KopiaCli } from '../support/kopia-cli.js';
import { claimObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';
import { populatorIdentity, startTestPopulator } from '../support/populator.js';
import { tenantClient } from '../support/tenant.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- Job specs are read structurally */
const t = useTestNamespace('mounts');
const PASSWORD = 'shared repository password';
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let tenantNs: string;
let tenant: KubeClient;
let repository: string;
let nodeDir: string;
let kopia: KopiaCli;
/** Outside /tmp: a mover's /tmp is its own emptyDir, so what it writes there would not be seen here. */
let attackDir: string;
/** Every mover Job the test world saw, as created (they are deleted once finished). */
const jobs = new Map<string, Obj>();
let jobInformer: Informer<Obj>;

async function volumeDir(claimName: string): Promise<string> {
  await until(
    `claim ${claimName} to bind`,
    async () => (await t.client.get<Obj>(PersistentVolumeClaims, tenantNs, claimName)).status?.phase === 'Bound',
  );
  const pvc = await t.client.get<Obj>(PersistentVolumeClaims, tenantNs, claimName);
  return (await t.client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path;
}

/** A tenant's claim with the given files (what the tenant's own pods would write into it). */
async function tenantClaim(name: string, files: Record<string, { content: string; mode?: number }>): Promise<string> {
  await tenant.create(PersistentVolumeClaims, claimObject({ name, namespace: tenantNs }));
  const dir = await volumeDir(name);
  for (const [path, file] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), file.content);
    chmodSync(join(dir, path), file.mode ?? 0o644);
  }
  return dir;
}

async function tenantConfig(name: string, claim: string, path: string): Promise<void> {
  await tenant.create(KopiaBackupConfigs, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name, namespace: tenantNs },
    spec: { repository: { kind: 'ClusterRepository', name: repository }, source: { pvc: claim }, copyMethod: 'Direct', identity: { path } },
  } as Obj);
  await waitForReady(tenant, KopiaBackupConfigs, tenantNs, name, { status: 'True', reason: 'Ready' });
}

async function tenantBackup(name: string, config: string): Promise<Obj> {
  await tenant.create(KopiaBackups, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace: tenantNs },
    spec: { configRef: { name: config } },
  } as Obj);
  let done: Obj | undefined;
  await until(
    `Backup ${name} to finish`,
    async () => ['Succeeded', 'Failed'].includes((done = await tenant.get<Obj>(KopiaBackups, tenantNs, name)).status?.phase),
    90000,
    250,
  );
  return done!;
}

async function tenantRestore(name: string, backup: string, claim: string): Promise<Obj> {
  await tenant.create(PersistentVolumeClaims, claimObject({ name: claim, namespace: tenantNs }));
  await tenant.create(KopiaRestores, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Restore',
    metadata: { name, namespace: tenantNs },
    spec: { source: { backupRef: { name: backup } }, target: { pvc: { name: claim } } },
  } as Obj);
  let done: Obj | undefined;
  await until(
    `Restore ${name} to finish`,
    async () => ['Completed', 'Failed'].includes((done = await tenant.get<Obj>(KopiaRestores, tenantNs, name)).status?.phase),
    90000,
    250,
  );
  return done!;
}

/** Where the Job's mover container mounts the pod volume that holds this claim. */
function mountsOf(job: Obj, claimName: string): { mountPath: string; readOnly: boolean }[] {
  const pod = job.spec.template.spec;
  const volumes = pod.volumes.filter((v: any) => v.persistentVolumeClaim?.claimName === claimName).map((v: any) => v.name);
  return pod.containers.flatMap((c: any) =>
    (c.volumeMounts ?? [])
      .filter((m: any) => volumes.includes(m.name))
      // The API server leaves out readOnly: false.
      .map((m: any) => ({ mountPath: m.mountPath, readOnly: m.readOnly === true })),
  );
}

const jobOf = (operation: string, ownerName: string) =>
  [...jobs.values()].find(
    (j) => j.metadata.labels?.['kopia.io/operation'] === operation && j.metadata.labels?.['kopia.io/owner-name'] === ownerName,
  );

beforeAll(async () => {
  operator = await startTestOperator(t.ns);
  jobInformer = new Informer<Obj>(t.client, Jobs, { labelSelector: 'app.kubernetes.io/component=mover' }).on((event, job) => {
    if (event !== 'DELETED') jobs.set(`${job.metadata.namespace}/${job.metadata.name}/${job.metadata.uid}`, job);
  });
  await jobInformer.start();
  tenantNs = await createNamespace(t.client, 'mounts-tenant');
  tenant = await tenantClient(t.client, tenantNs);
  attackDir = mkdtempSync('/var/tmp/kopia-mount-attack-');
  nodeDir = mkdtempSync('/var/tmp/kopia-mount-repo-');
  chmodSync(nodeDir, 0o777); // the movers' default uid makes the repository
  await t.client.create(Secrets, secretObject({ name: 'shared-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: PASSWORD } }));
  repository = `shared-${tenantNs}`;
  await t.client.create(KopiaClusterRepositories, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'ClusterRepository',
    metadata: { name: repository },
    spec: {
      backend: { filesystem: { path: '/', volume: { hostPath: { path: nodeDir } } } },
      passwordSecretRef: { name: 'shared-password', namespace: t.ns, key: 'KOPIA_PASSWORD' },
      create: { enabled: true },
      allowedNamespaces: { names: [tenantNs] },
    },
  } as Obj);
  await waitForReady(t.client, KopiaClusterRepositories, undefined, repository, { status: 'True', reason: 'Verified' });
  kopia = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, nodeDir, PASSWORD);
});
afterAll(async () => {
  jobInformer?.stop();
  tenant?.close();
  await operator?.stop();
  kopia?.close();
  await deleteNamespace(t.client, tenantNs);
  await t.client.delete(KopiaClusterRepositories, undefined, repository);
  removeTree(attackDir);
  removeTree(nodeDir);
});

describe("rule 4: a tenant's data never lands on the mover's code or tools", () => {
  it('a claim holding a tool the mover container runs, named as its identity path, runs nothing of the tenant', async () => {
    // The test world's runtime starts each container with `setpriv` found on the container's
    // PATH (/run/kopia-node-agent/bin:/usr/local/bin:/usr/bin:/bin), as the real image's
    // mover finds /usr/local/bin/kopia: a claim mounted at /usr/local/bin shadows it. The
    // tenant's `setpriv` notes whether it saw the repository password, then hands over to
    // the real one, so the backup looks normal.
    const marker = join(attackDir, 'tenant-code-ran');
    const payload = `#!/bin/sh\n[ -n "$KOPIA_PASSWORD" ] && echo "with the repository password" > ${marker}\nexec /usr/bin/setpriv "$@"\n`;
    await tenantClaim('tools', { setpriv: { content: payload, mode: 0o755 } });
    await tenantConfig('tools', 'tools', '/usr/local/bin');
    const done = await tenantBackup('tools-1', 'tools');
    expect(existsSync(marker)).toBe(false);
    expect(done.status).toMatchObject({ phase: 'Succeeded', snapshot: { identity: { path: '/usr/local/bin' } } });
    expect(mountsOf(jobOf('backup', 'tools-1')!, 'tools')).toEqual([{ mountPath: MOVER_PATHS.data, readOnly: true }]);
  });

  // The image's entrypoint is /app/dist/operator/mover/main.js (Dockerfile). The test world
  // runs the mover from the checkout at /run/kopia-node-agent/image, so a claim at /app
  // shadows nothing here: the Job's mounts show what a cluster would run.
  it.each([
    ['app', '/app', 'dist/operator/mover/main.js'],
    ['etc', '/etc', 'passwd'],
    ['bin', '/usr/local/bin', 'kopia'],
  ])(
    'identity path %s (%s): the claim is mounted only at the fixed data path, filed under the path, and restores',
    async (name, path, file) => {
      const source = await tenantClaim(`${name}-data`, {
        [file]: { content: `#!/bin/sh\necho "a tenant's ${file}"\n`, mode: 0o755 },
        'nested/notes.txt': { content: 'kept\n' },
      });
      await tenantConfig(name, `${name}-data`, path);
      const done = await tenantBackup(`${name}-1`, name);
      expect(done.status).toMatchObject({ phase: 'Succeeded', snapshot: { identity: { username: name, hostname: tenantNs, path } } });
      // The claim is the Job's only tenant volume, mounted read-only at the fixed path alone.
      expect(mountsOf(jobOf('backup', `${name}-1`)!, `${name}-data`)).toEqual([{ mountPath: MOVER_PATHS.data, readOnly: true }]);

      const listed = (await kopia.snapshots()).find((s) => s.id === done.status.snapshot.id);
      expect(listed?.source).toEqual({ userName: name, host: tenantNs, path });

      const restored = await tenantRestore(`${name}-back`, `${name}-1`, `${name}-restored`);
      expect(restored.status.phase).toBe('Completed');
      expect(mountsOf(jobOf('restore', `${name}-back`)!, `${name}-restored`)).toEqual([{ mountPath: MOVER_PATHS.data, readOnly: false }]);
      const target = await volumeDir(`${name}-restored`);
      const contents = (tree: ReturnType<typeof inventory>) =>
        Object.fromEntries(Object.entries(tree).map(([p, e]) => [p, e.sha256 ?? e.type]));
      expect(contents(inventory(target))).toEqual(contents(inventory(source)));
    },
  );
});

describe('rule 7: movers carry no Kubernetes credentials', () => {
  it('every mover Job made here (verify, backup, restore by the operator and the populator, edit, and what else ran) mounts no service-account token', async () => {
    // A claim the populator fills from a tenant's Backup, and a snapshot deletion (an edit Job).
    const identity = await populatorIdentity(t.client, t.ns);
    const populator = await startTestPopulator({ client: identity.client, namespace: t.ns });
    try {
      await tenant.create(KopiaRestores, {
        apiVersion: 'kopia.io/v1alpha1',
        kind: 'Restore',
        metadata: { name: 'populate', namespace: tenantNs },
        spec: { source: { backupRef: { name: 'app-1' } }, target: { populator: {} } },
      } as Obj);
      const claim = claimObject({ name: 'populated', namespace: tenantNs }) as Obj;
      claim.spec.dataSourceRef = { apiGroup: 'kopia.io', kind: 'Restore', name: 'populate' };
      await tenant.create(PersistentVolumeClaims, claim);
      await until(
        'the populated claim to bind',
        async () => (await tenant.get<Obj>(PersistentVolumeClaims, tenantNs, 'populated')).status?.phase === 'Bound',
        90000,
        250,
      );
    } finally {
      await populator.stop({ release: true });
      await identity.remove();
    }
    const gone = (await tenant.get<Obj>(KopiaBackups, tenantNs, 'etc-1')).status.snapshot.id;
    await tenant.patch(KopiaBackups, tenantNs, 'etc-1', { spec: { deletionPolicy: 'Delete' } });
    // Deleted before the operator holds it with its finalizer, the Backup would go alone.
    await until(
      "the Backup to carry the operator's finalizer",
      async () => ((await tenant.get<Obj>(KopiaBackups, tenantNs, 'etc-1')).metadata.finalizers ?? []).length > 0,
    );
    await tenant.delete(KopiaBackups, tenantNs, 'etc-1');
    await until('the snapshot to be deleted', async () => !(await kopia.snapshots()).some((s) => s.id === gone), 90000, 500);

    const operations = new Set([...jobs.values()].map((j) => j.metadata.labels?.['kopia.io/operation']));
    expect([...operations]).toEqual(expect.arrayContaining(['verify', 'backup', 'restore', 'edit']));
    expect([...jobs.values()].some((j) => j.metadata.labels?.['kopia.io/owner-kind'] === 'PersistentVolumeClaim')).toBe(true);
    for (const job of jobs.values()) {
      expect({ job: job.metadata.name, automount: job.spec.template.spec.automountServiceAccountToken }).toEqual({
        job: job.metadata.name,
        automount: false,
      });
    }
  });
});
