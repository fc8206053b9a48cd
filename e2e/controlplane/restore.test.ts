// Restores on the real control plane with real kopia: resolved once against kopia's own
// listing and pinned; asOf and offset pick the right snapshot; a missing snapshot fails
// loudly unless onMissingSnapshot is Continue, and an unusable repository is never taken
// for "missing"; a restore into an existing claim brings the files back.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaRepositories,
  KopiaRestores,
  PersistentVolumeClaims,
  PersistentVolumes,
  Secrets,
} from '../../operator/kube/resources.js';
import { conditionOf, eventsAbout, until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';

const t = useTestNamespace('restore');
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let source: string;
const snapshots: string[] = [];

async function volumeDir(claimName: string): Promise<string> {
  await until(
    `claim ${claimName} to bind`,
    async () => (await t.client.get<Obj>(PersistentVolumeClaims, t.ns, claimName)).status?.phase === 'Bound',
  );
  const pvc = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, claimName);
  return (await t.client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path;
}

async function backup(name: string): Promise<string> {
  await t.client.create(KopiaBackups, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace: t.ns },
    spec: { configRef: { name: 'app' } },
  } as Obj);
  let done: Obj | undefined;
  await until(
    `Backup ${name}`,
    async () => (done = await t.client.get<Obj>(KopiaBackups, t.ns, name)).status?.phase === 'Succeeded',
    90000,
    250,
  );
  return done!.status.snapshot.id;
}

async function restore(name: string, spec: Record<string, unknown>): Promise<void> {
  await t.client.create(KopiaRestores, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Restore',
    metadata: { name, namespace: t.ns },
    spec,
  } as Obj);
}

async function finished(name: string): Promise<Obj> {
  let r: Obj | undefined;
  await until(
    `Restore ${name} to finish`,
    async () => ['Completed', 'Failed'].includes((r = await t.client.get<Obj>(KopiaRestores, t.ns, name)).status?.phase),
    90000,
    250,
  );
  return r!;
}

beforeAll(async () => {
  operator = await startTestOperator(t.ns);
  await t.client.create(
    Secrets,
    secretObject({ name: 'nas-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: 'restore password' } }),
  );
  for (const claim of ['nas', 'app-data']) await t.client.create(PersistentVolumeClaims, claimObject({ name: claim, namespace: t.ns }));
  await t.client.create(KopiaRepositories, repositoryObject({ name: 'nas', namespace: t.ns }));
  await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' });
  await t.client.create(KopiaBackupConfigs, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name: 'app', namespace: t.ns },
    spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' }, copyMethod: 'Direct' },
  } as Obj);
  await waitForReady(t.client, KopiaBackupConfigs, t.ns, 'app', { status: 'True', reason: 'Ready' });
  source = await volumeDir('app-data');
  mkdirSync(join(source, 'sub'), { recursive: true });
  writeFileSync(join(source, 'version.txt'), 'one\n');
  writeFileSync(join(source, 'sub/data.bin'), Buffer.alloc(100_000, 7));
  snapshots.push(await backup('first'));
  await new Promise((r) => setTimeout(r, 1100)); // snapshots one second apart, so asOf can tell them apart
  writeFileSync(join(source, 'version.txt'), 'two\n');
  snapshots.push(await backup('second'));
});
afterAll(() => operator.stop());

describe('a Restore into an existing claim', () => {
  it('restores the newest snapshot (fromConfig, offset 0), pinned in status, and says the owners are the mover’s', async () => {
    await t.client.create(PersistentVolumeClaims, claimObject({ name: 'target', namespace: t.ns }));
    await restore('latest', { source: { fromConfig: { name: 'app' } }, target: { pvc: { name: 'target' } } });
    const done = await finished('latest');
    expect(done.status).toMatchObject({
      phase: 'Completed',
      resolved: { snapshotID: snapshots[1], identity: { username: 'app' } },
      ownersRestored: false,
    });
    expect(conditionOf(done)).toMatchObject({ status: 'True', reason: 'OwnersNotRestored' });
    const dir = await volumeDir('target');
    expect(readFileSync(join(dir, 'version.txt'), 'utf8')).toBe('two\n');
    expect(readFileSync(join(dir, 'sub/data.bin')).equals(Buffer.alloc(100_000, 7))).toBe(true);
    await until('the restore Job to be removed', async () => !(await t.client.getOrUndefined(Jobs, t.ns, 'kopia-restore-latest')));
  });

  it('picks the right snapshot with offset and with asOf', async () => {
    await t.client.create(PersistentVolumeClaims, claimObject({ name: 'older', namespace: t.ns }));
    await restore('by-offset', { source: { fromConfig: { name: 'app', offset: 1 } }, target: { pvc: { name: 'older' } } });
    expect((await finished('by-offset')).status.resolved.snapshotID).toBe(snapshots[0]);
    expect(readFileSync(join(await volumeDir('older'), 'version.txt'), 'utf8')).toBe('one\n');

    // A second after the first backup finished (times are whole seconds): before the second one started.
    const first = await t.client.get<Obj>(KopiaBackups, t.ns, 'first');
    const asOf = new Date(Date.parse(first.status.completionTime) + 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    await restore('by-time', { source: { fromConfig: { name: 'app', asOf } }, target: { pvc: { name: 'older' } } });
    expect((await finished('by-time')).status.resolved.snapshotID).toBe(snapshots[0]);
  });

  it('waits while a running pod mounts the claim', async () => {
    await t.client.create(Jobs, {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'app-running', namespace: t.ns },
      spec: {
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'app',
                image: 'kopia-operator:test',
                command: ['sh', '-c', 'sleep 30'],
                volumeMounts: [{ name: 'd', mountPath: '/d' }],
              },
            ],
            volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'target' } }],
          },
        },
      },
    } as Obj);
    await restore('in-use', { source: { fromConfig: { name: 'app' } }, target: { pvc: { name: 'target' } } });
    await waitForReady(t.client, KopiaRestores, t.ns, 'in-use', { status: 'False', reason: 'ClaimInUse' });
    expect(await t.client.getOrUndefined(Jobs, t.ns, 'kopia-restore-in-use')).toBeUndefined();
    await t.client.delete(Jobs, t.ns, 'app-running', { propagationPolicy: 'Background' });
  });
});

describe('a missing snapshot', () => {
  beforeAll(async () => {
    await t.client.create(KopiaBackupConfigs, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'BackupConfig',
      metadata: { name: 'never-backed-up', namespace: t.ns },
      spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' }, copyMethod: 'Direct' },
    } as Obj);
    await t.client.create(PersistentVolumeClaims, claimObject({ name: 'fresh', namespace: t.ns }));
  });

  it('fails loudly with onMissingSnapshot Fail (the default)', async () => {
    await restore('missing', { source: { fromConfig: { name: 'never-backed-up' } }, target: { pvc: { name: 'fresh' } } });
    const done = await finished('missing');
    expect(done.status.phase).toBe('Failed');
    expect(conditionOf(done)).toMatchObject({ reason: 'SnapshotMissing' });
    const warning = (await eventsAbout(t.client, t.ns, 'missing')).find((e) => e.reason === 'SnapshotMissing');
    expect(warning?.type).toBe('Warning');
  });

  it('is an empty volume only with onMissingSnapshot Continue, and only when kopia answered', async () => {
    await restore('continue', {
      source: { fromConfig: { name: 'never-backed-up' } },
      target: { pvc: { name: 'fresh' } },
      onMissingSnapshot: 'Continue',
    });
    const done = await finished('continue');
    expect(done.status).toMatchObject({ phase: 'Completed', resolved: { empty: true } });
  });

  it('never takes an unusable repository for "missing": a wrong password waits, with the reason named', async () => {
    await t.client.create(
      Secrets,
      secretObject({ name: 'broken-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: 'not the password' } }),
    );
    await t.client.create(KopiaRepositories, repositoryObject({ name: 'broken', namespace: t.ns, claimName: 'nas', create: false }));
    await waitForReady(t.client, KopiaRepositories, t.ns, 'broken', { status: 'False', reason: 'WrongPassword' });
    await restore('wrong-password', {
      source: { snapshot: { repository: { name: 'broken' }, identity: { username: 'app', hostname: t.ns, path: '/data' } } },
      target: { pvc: { name: 'fresh' } },
      onMissingSnapshot: 'Continue',
    });
    const waiting = await waitForReady(t.client, KopiaRestores, t.ns, 'wrong-password', { status: 'False', reason: 'RepositoryNotReady' });
    expect(waiting.status.resolved).toBeUndefined();
    expect(conditionOf(waiting).message).toContain('WrongPassword');
    await operator.manager.whenIdle();
    expect((await t.client.get<Obj>(KopiaRestores, t.ns, 'wrong-password')).status.phase).toBe('Pending');
  });
});
