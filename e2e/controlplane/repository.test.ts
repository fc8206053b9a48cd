// Repository and ClusterRepository on the real control plane: verification Jobs run the
// real mover and kopia through the node agent.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeClient } from '../../operator/kube/kube-client.js';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaClusterRepositories,
  KopiaRepositories,
  Namespaces,
  PersistentVolumeClaims,
  PersistentVolumes,
  Secrets,
} from '../../operator/kube/resources.js';
import { MOVER_SELECTOR } from '../../operator/jobs/job-builder.js';
import { createNamespace, deleteNamespace, eventsAbout, testClient, until, waitForReady, type Obj } from '../support/cluster.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';
import { kstatusOf } from '../../operator/test-support/kstatus.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

const PASSWORD = 'correct horse battery staple';
let client: KubeClient;
let ns: string;
let operator: Awaited<ReturnType<typeof startTestOperator>>;
const jobSpecs: string[] = [];

beforeAll(async () => {
  client = await testClient();
  ns = await createNamespace(client, 'repo');
  operator = await startTestOperator(ns);
  // Keep every mover Job spec the operator creates, to scan for the password later.
  operator.manager.informers.get<Obj>(Jobs, { labelSelector: MOVER_SELECTOR }).on((_t, job) => jobSpecs.push(JSON.stringify(job)));
});
afterAll(async () => {
  operator.stop();
  await deleteNamespace(client, ns);
  client.close();
});

async function secret(name: string, data: Record<string, string>, namespace = ns): Promise<void> {
  await client.create(Secrets, secretObject({ name, namespace, stringData: data }));
}

async function claim(name: string): Promise<void> {
  await client.create(PersistentVolumeClaims, claimObject({ name, namespace: ns }));
}

const repository = (name: string, claimName: string, create: boolean) => repositoryObject({ name, namespace: ns, claimName, create });
const condition = (o: Obj, type: string) => o.status.conditions.find((c: any) => c.type === type);

async function repositoryDir(claimName: string): Promise<string> {
  const pvc = await client.get<Obj>(PersistentVolumeClaims, ns, claimName);
  const pv = await client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName);
  return pv.spec.hostPath.path;
}

describe('Repository', () => {
  it('creates a filesystem repository when create is enabled and goes Ready with its unique ID', async () => {
    await claim('nas');
    await secret('nas-password', { KOPIA_PASSWORD: PASSWORD });
    await client.create(KopiaRepositories, repository('nas', 'nas', true));
    const repo = await waitForReady(client, KopiaRepositories, ns, 'nas', { status: 'True', reason: 'Verified' });
    expect(repo.status.uniqueID).toMatch(/^[0-9a-f]{32,}$/);
    expect(repo.status.format).toMatchObject({ encryption: expect.any(String), hash: expect.any(String), splitter: expect.any(String) });
    expect(repo.status.snapshotCount).toBe(0);
    expect(repo.status.observedGeneration).toBe(repo.metadata.generation);
    expect(repo.status.conditions.find((c: any) => c.type === 'Connected')).toMatchObject({ status: 'True', reason: 'Connected' });
    // kstatus: Current, the way Flux and kubectl wait read it (Reconciling and Stalled False, this generation observed).
    for (const type of ['Ready', 'Reconciling', 'Stalled'])
      expect(condition(repo, type)).toMatchObject({
        status: type === 'Ready' ? 'True' : 'False',
        observedGeneration: repo.metadata.generation,
      });
    expect(kstatusOf(repo)).toEqual({ status: 'Current' });
    expect(readdirSync(await repositoryDir('nas'))).toContain('kopia.repository.f');
    const reasons = (await eventsAbout(client, ns, 'nas')).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['RepositoryCreated', 'Verified']));
    // The verify Job was collected and removed: at most one exists per repository.
    await until('the verify Job to be removed', async () => !(await client.getOrUndefined(Jobs, ns, 'kopia-verify-nas')));
  });

  it('reports NotInitialized, with a Warning Event, when create is not enabled', async () => {
    await claim('empty');
    await secret('empty-password', { KOPIA_PASSWORD: PASSWORD });
    await client.create(KopiaRepositories, repository('empty', 'empty', false));
    const repo = await waitForReady(client, KopiaRepositories, ns, 'empty', { status: 'False', reason: 'NotInitialized' });
    expect(repo.status.conditions.find((c: any) => c.type === 'Ready').message).toContain('not initialized');
    const warning = (await eventsAbout(client, ns, 'empty')).find((e) => e.reason === 'NotInitialized');
    expect(warning?.type).toBe('Warning');
    expect(readdirSync(await repositoryDir('empty')).filter((f) => f !== '.shards')).toEqual([]);
  });

  it('flips to WrongPassword when its Secret changes, and to SecretNotFound when it is deleted', async () => {
    await client.patch(Secrets, ns, 'nas-password', { stringData: { KOPIA_PASSWORD: 'not the password' } });
    const wrong = await waitForReady(client, KopiaRepositories, ns, 'nas', { status: 'False', reason: 'WrongPassword' });
    expect(wrong.status.conditions.find((c: any) => c.type === 'Connected')).toMatchObject({ status: 'False', reason: 'WrongPassword' });
    expect(condition(wrong, 'Stalled')).toMatchObject({ status: 'True', reason: 'WrongPassword' });
    expect(kstatusOf(wrong)).toEqual({ status: 'Failed', reason: 'WrongPassword' });
    await until('a WrongPassword Warning Event', async () =>
      (await eventsAbout(client, ns, 'nas')).some((e) => e.reason === 'WrongPassword' && e.type === 'Warning'),
    );

    await client.delete(Secrets, ns, 'nas-password');
    const missing = await waitForReady(client, KopiaRepositories, ns, 'nas', { status: 'False', reason: 'SecretNotFound' });
    expect(missing.status.conditions.find((c: any) => c.type === 'Ready').message).toBe(`Secret ${ns}/nas-password not found`);

    await secret('nas-password', { KOPIA_PASSWORD: PASSWORD });
    const back = await waitForReady(client, KopiaRepositories, ns, 'nas', { status: 'True', reason: 'Verified' });
    // Stalled clears by itself once the cause is gone.
    expect(condition(back, 'Stalled')).toMatchObject({ status: 'False' });
    expect(kstatusOf(back)).toEqual({ status: 'Current' });
  });

  it('an unreachable repository is Stalled with Ready=False (kstatus Failed), not silently progressing', async () => {
    await secret('gone-password', { KOPIA_PASSWORD: PASSWORD });
    // Nothing listens on the discard port: kopia's connect is refused (after its own retries).
    const gone = repositoryObject({
      name: 'gone',
      namespace: ns,
      create: false,
      spec: { backend: { webdav: { url: 'http://127.0.0.1:9/repo' } } },
    });
    await client.create(KopiaRepositories, gone);
    const repo = await waitForReady(client, KopiaRepositories, ns, 'gone', { status: 'False', reason: 'Unreachable' }, 120_000);
    expect(condition(repo, 'Stalled')).toMatchObject({
      status: 'True',
      reason: 'Unreachable',
      message: expect.stringContaining('connection refused'),
      observedGeneration: repo.metadata.generation,
    });
    expect(condition(repo, 'Reconciling')).toMatchObject({ status: 'False', observedGeneration: repo.metadata.generation });
    expect(repo.status.observedGeneration).toBe(repo.metadata.generation);
    expect(kstatusOf(repo)).toEqual({ status: 'Failed', reason: 'Unreachable' });
  });

  it('never writes the password into Job specs, status, events or mover logs', async () => {
    expect(jobSpecs.length).toBeGreaterThan(0);
    for (const spec of jobSpecs) expect(spec).not.toContain(PASSWORD);
    for (const name of ['nas', 'empty']) {
      expect(JSON.stringify(await client.get(KopiaRepositories, ns, name))).not.toContain(PASSWORD);
      expect(JSON.stringify(await eventsAbout(client, ns, name))).not.toContain(PASSWORD);
    }
    const podsDir = join(process.env.KOPIA_TEST_AGENT_DATA!, 'pods');
    let logs = 0;
    for (const uid of readdirSync(podsDir)) {
      const dir = join(podsDir, uid, 'logs');
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        const text = readFileSync(join(dir, f), 'utf8');
        if (text.includes('"component":"mover"')) logs++;
        expect(text).not.toContain(PASSWORD);
      }
    }
    expect(logs).toBeGreaterThan(0);
  });

  it('keeps no Secret values in its caches (metadata only; values are read when needed)', () => {
    const secretCaches = operator.manager.informers.all().filter((i) => i.type.plural === 'secrets');
    expect(secretCaches.length).toBeGreaterThan(0);
    const cached = secretCaches.flatMap((i) => i.list());
    expect(cached.map((s) => s.metadata.name)).toContain('nas-password');
    for (const s of cached) expect(Object.keys(s)).not.toContain('data');
  });

  it('reports a Secret without the referenced key as SecretNotFound, naming the key', async () => {
    await secret('bad-password', { OTHER: 'x' });
    await client.create(KopiaRepositories, repository('bad', 'nas', false));
    const repo = await waitForReady(client, KopiaRepositories, ns, 'bad', { status: 'False', reason: 'SecretNotFound' });
    expect(repo.status.conditions.find((c: any) => c.type === 'Ready').message).toBe(`Secret ${ns}/bad-password has no key KOPIA_PASSWORD`);
    expect(repo.status.conditions.find((c: any) => c.type === 'Connected')).toMatchObject({ status: 'Unknown', reason: 'SecretNotFound' });
    expect(await client.getOrUndefined(Jobs, ns, 'kopia-verify-bad')).toBeUndefined();
  });

  it('re-verifies every verifyInterval', async () => {
    await client.patch(KopiaRepositories, ns, 'nas', { spec: { verifyInterval: '10s' } });
    const first = await waitForReady(client, KopiaRepositories, ns, 'nas', { status: 'True', reason: 'Verified' });
    await until(
      'the generation change to be verified',
      async () => (await client.get<Obj>(KopiaRepositories, ns, 'nas')).status.observedGeneration === first.metadata.generation,
      30000,
      200,
    );
    const checked = (await client.get<Obj>(KopiaRepositories, ns, 'nas')).status.lastCheckTime;
    await until(
      'a periodic verification',
      async () => (await client.get<Obj>(KopiaRepositories, ns, 'nas')).status.lastCheckTime > checked,
      30000,
      250,
    );
    await client.patch(KopiaRepositories, ns, 'nas', { spec: { verifyInterval: '10m' } });
  });

  it('deleting a Repository leaves the data in it untouched', async () => {
    const dir = await repositoryDir('nas');
    const before = readdirSync(dir).sort();
    await client.delete(KopiaRepositories, ns, 'nas');
    await until('the Repository to be gone', async () => !(await client.getOrUndefined(KopiaRepositories, ns, 'nas')));
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(before).toContain('kopia.repository.f');
  });
});

describe('ClusterRepository', () => {
  let other: string;
  const name = `shared-${Math.random().toString(16).slice(2, 8)}`;

  beforeAll(async () => {
    other = await createNamespace(client, 'tenant');
  });
  afterAll(async () => {
    await client.delete(KopiaClusterRepositories, undefined, name);
    await deleteNamespace(client, other);
  });

  it('is verified with a copy of its Secrets in the operator namespace, and allows only listed namespaces', async () => {
    await claim('shared');
    await secret('shared-password', { KOPIA_PASSWORD: PASSWORD });
    await client.create(KopiaClusterRepositories, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'ClusterRepository',
      metadata: { name },
      spec: {
        backend: { filesystem: { path: '/', volume: { persistentVolumeClaim: { claimName: 'shared' } } } },
        passwordSecretRef: { name: 'shared-password', namespace: ns, key: 'KOPIA_PASSWORD' },
        create: { enabled: true },
        allowedNamespaces: { names: [ns] },
      },
    } as Obj);
    const repo = await waitForReady(client, KopiaClusterRepositories, undefined, name, { status: 'True', reason: 'Verified' });
    expect(repo.status.conditions.find((c: any) => c.type === 'Tenancy')).toMatchObject({ status: 'True', reason: 'NamespacesListed' });
    // The same kstatus rule as a Repository: Current, with Reconciling and Stalled False for this generation.
    expect(repo.status.conditions.map((c: any) => [c.type, c.status, c.observedGeneration])).toEqual(
      expect.arrayContaining([
        ['Reconciling', 'False', repo.metadata.generation],
        ['Stalled', 'False', repo.metadata.generation],
      ]),
    );
    expect(kstatusOf(repo)).toEqual({ status: 'Current' });
    expect(repo.status.allowedNamespaces).toEqual([ns]);
    const copy = await client.get<Obj>(Secrets, ns, `kopia-clusterrepo-${name}`);
    expect(Object.keys((copy as any).data)).toEqual(['KOPIA_PASSWORD']);
    expect(copy.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'ClusterRepository', name });
  });

  it('refuses a namespace outside its allow list: the consumer gets RepositoryNotAllowed', async () => {
    const config = (namespace: string) =>
      ({
        apiVersion: 'kopia.io/v1alpha1',
        kind: 'BackupConfig',
        metadata: { name: 'app', namespace },
        spec: { repository: { kind: 'ClusterRepository', name }, source: { pvc: 'shared' } },
      }) as Obj;
    await client.create(KopiaBackupConfigs, config(other));
    await waitForReady(client, KopiaBackupConfigs, other, 'app', { status: 'False', reason: 'RepositoryNotAllowed' });
    const jobsInOther = await client.list(Jobs, other);
    expect(jobsInOther.items).toEqual([]);

    await client.create(KopiaBackupConfigs, config(ns));
    const allowed = await waitForReady(client, KopiaBackupConfigs, ns, 'app', { status: 'True', reason: 'Ready' });
    expect(allowed.status.identityString).toBe(`app@${ns}:/data`);

    // Allowing the other namespace by label takes effect without touching the consumer.
    await client.patch(Namespaces, undefined, other, { metadata: { labels: { backups: 'yes' } } });
    await client.patch(KopiaClusterRepositories, undefined, name, {
      spec: { allowedNamespaces: { names: null, selector: { matchLabels: { backups: 'yes' } } } },
    });
    await waitForReady(client, KopiaBackupConfigs, other, 'app', { status: 'False', reason: 'SourceNotFound' });
  });
});
