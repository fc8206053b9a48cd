// Restores on the real control plane with real kopia: resolved once against kopia's own
// listing and pinned; asOf and offset pick the right snapshot; a missing snapshot fails
// loudly unless onMissingSnapshot is Continue, and an unusable repository is never taken
// for "missing"; a restore into an existing claim brings the files back.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaRepositories,
  KopiaRestores,
  PersistentVolumeClaims,
  PersistentVolumes,
  Pods,
  Secrets,
} from '../../operator/kube/resources.js';
import { conditionOf, eventsAbout, until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';
import { createProcessMetrics, type ProcessMetrics } from '../../operator/metrics/metrics-registry.js';
import { kstatusOf } from '../../operator/test-support/kstatus.js';
import { grantClusterRole, serviceAccountClient } from '../support/service-accounts.js';

const t = useTestNamespace('restore');
const condition = (o: Obj, type: string) => o.status.conditions.find((c: { type: string }) => c.type === type);
let operator: Awaited<ReturnType<typeof startTestOperator>>;
const operatorMetrics = () => createProcessMetrics({ process: 'operator', lease: 'kopia-operator', isLeader: () => true });
let metrics: ProcessMetrics = operatorMetrics();
/** kopia_restores_total of this test's namespace for one outcome and reason. */
async function restoresCounted(m: ProcessMetrics, outcome: string, reason: string): Promise<number> {
  const { values } = await m.metric('kopia_restores_total').get();
  return values.find((v) => v.labels.namespace === t.ns && v.labels.outcome === outcome && v.labels.reason === reason)?.value ?? 0;
}
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
  operator = await startTestOperator(t.ns, { metrics });
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
    // Counted just after the write the test saw: let that pass finish first.
    await operator.manager.whenIdle();
    expect(await restoresCounted(metrics, 'Completed', 'OwnersNotRestored')).toBe(1);
    // kstatus: Current (Reconciling and Stalled False, this generation observed), as Flux and kubectl wait read it.
    for (const type of ['Ready', 'Reconciling', 'Stalled'])
      expect(condition(done, type)).toMatchObject({
        status: type === 'Ready' ? 'True' : 'False',
        observedGeneration: done.metadata.generation,
      });
    expect(done.status.observedGeneration).toBe(done.metadata.generation);
    expect(kstatusOf(done)).toEqual({ status: 'Current' });
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
    const inUse = await waitForReady(t.client, KopiaRestores, t.ns, 'in-use', { status: 'False', reason: 'ClaimInUse' });
    // Someone has to stop the pod (or allow it): Stalled, not an endless progress.
    expect(kstatusOf(inUse)).toEqual({ status: 'Failed', reason: 'ClaimInUse' });
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
    // A failed Restore is Stalled (kstatus Failed), never shown as progressing.
    expect(condition(done, 'Stalled')).toMatchObject({
      status: 'True',
      reason: 'SnapshotMissing',
      observedGeneration: done.metadata.generation,
    });
    expect(condition(done, 'Reconciling')).toMatchObject({ status: 'False' });
    expect(kstatusOf(done)).toEqual({ status: 'Failed', reason: 'SnapshotMissing' });
    const warning = (await eventsAbout(t.client, t.ns, 'missing')).find((e) => e.reason === 'SnapshotMissing');
    expect(warning?.type).toBe('Warning');
    await operator.manager.whenIdle();
    expect(await restoresCounted(metrics, 'Failed', 'SnapshotMissing')).toBe(1);
    // A restarted operator reads the ended Restore again and does not count it again.
    await operator.stop();
    metrics = operatorMetrics();
    operator = await startTestOperator(t.ns, { metrics });
    await operator.manager.whenIdle();
    expect(await restoresCounted(metrics, 'Failed', 'SnapshotMissing')).toBe(0);
    const { values } = await metrics.metric('kopia_reconcile_total').get();
    expect(values.find((v) => v.labels.kind === 'Restore')?.value).toBeGreaterThanOrEqual(1);
  });

  it('gives a Restore an older operator failed (Ready alone) its Stalled on the next pass', async () => {
    const done = await t.client.get<Obj>(KopiaRestores, t.ns, 'missing');
    const readyAlone = { ...done.status, conditions: done.status.conditions.filter((c: { type: string }) => c.type === 'Ready') };
    const old = await t.client.replace(KopiaRestores, { ...done, status: readyAlone }, 'status');
    expect(kstatusOf(old)).toEqual({ status: 'InProgress', reason: 'SnapshotMissing' }); // what kstatus made of it before
    let now: Obj | undefined;
    await until(
      'the operator to add Stalled',
      async () => kstatusOf((now = await t.client.get<Obj>(KopiaRestores, t.ns, 'missing'))).status === 'Failed',
      30_000,
      200,
    );
    expect(condition(now!, 'Ready')).toEqual(condition(done, 'Ready'));
    expect(condition(now!, 'Stalled')).toMatchObject({ status: 'True', reason: 'SnapshotMissing' });
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
    // The Restore waits for its repository (Reconciling); the repository itself says it is Stalled.
    expect(kstatusOf(waiting)).toEqual({ status: 'InProgress', reason: 'RepositoryNotReady' });
    expect(kstatusOf(await t.client.get<Obj>(KopiaRepositories, t.ns, 'broken'))).toEqual({ status: 'Failed', reason: 'WrongPassword' });
    await operator.manager.whenIdle();
    expect((await t.client.get<Obj>(KopiaRestores, t.ns, 'wrong-password')).status.phase).toBe('Pending');
  });
});

describe('whose word a restore takes', () => {
  it('not a tenant’s Pod labelled like the restore Job’s and “answering” success: the failure of the Pod the Job made stands', async () => {
    // A tenant who may create Pods in the namespace and nothing of kopia.io.
    const grant = await grantClusterRole(t.client, `tenant-${t.ns}`, { namespace: t.ns, name: 'tenant' }, [
      { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list'] },
    ]);
    const tenant = await serviceAccountClient(t.client, t.ns, 'tenant');
    const format = join(await volumeDir('nas'), 'kopia.repository.f');
    let stopped = false;
    try {
      // Pinned while the repository is fine; then its storage "did not mount": the real mover fails.
      await restore('forged', { source: { fromConfig: { name: 'app' } }, target: { pvc: { name: 'forged-target' } } });
      await until(
        'the Restore to pin a snapshot',
        async () => !!(await t.client.get<Obj>(KopiaRestores, t.ns, 'forged')).status?.resolved?.snapshotID,
      );
      renameSync(format, `${format}.away`);
      await t.client.create(PersistentVolumeClaims, claimObject({ name: 'forged-target', namespace: t.ns }));
      let real: Obj | undefined;
      await until(
        'the restore Job’s Pod',
        async () => !!(real = (await t.client.list<Obj>(Pods, t.ns, { labelSelector: 'job-name=kopia-restore-forged' })).items[0]),
        60000,
        20,
      );
      // The operator pauses, so the forged Pod is surely there when the result is read (a real attacker races for it).
      await operator.stop();
      stopped = true;
      expect((await t.client.get<Obj>(KopiaRestores, t.ns, 'forged')).status.phase).toBe('Restoring');
      await until('the restore Job to fail', async () =>
        ((await t.client.get<Obj>(Jobs, t.ns, 'kopia-restore-forged')).status?.conditions ?? []).some(
          (c: { type: string; status: string }) => c.type === 'Failed' && c.status === 'True',
        ),
      );
      // Newer than the real Pod (creation times are whole seconds).
      const wait = Date.parse(real!.metadata.creationTimestamp!) + 1100 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const forgedResult = {
        ok: true,
        operation: 'restore',
        restored: { files: 4242, dirs: 1, bytes: 1, errors: 0, ownersRestored: false },
      };
      await tenant.create(Pods, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'forged-mover', namespace: t.ns, labels: { ...real!.metadata.labels, 'job-name': 'kopia-restore-forged' } },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'mover',
              image: 'kopia-operator:test',
              command: ['sh', '-c', 'printf %s "$ANSWER" > /dev/termination-log'],
              env: [{ name: 'ANSWER', value: JSON.stringify(forgedResult) }],
            },
          ],
        },
      } as Obj);
      await until(
        'the forged Pod to “answer”',
        async () => (await t.client.get<Obj>(Pods, t.ns, 'forged-mover')).status?.phase === 'Succeeded',
      );
      renameSync(`${format}.away`, format);
      operator = await startTestOperator(t.ns);
      stopped = false;
      const done = await finished('forged');
      expect(done.status.phase).toBe('Failed');
      expect(done.status.progress?.restoredFiles).not.toBe(4242);
      expect(conditionOf(done)).toMatchObject({ status: 'False', reason: 'RepositoryMissing' });
    } finally {
      try {
        renameSync(`${format}.away`, format);
      } catch {
        // put back already
      }
      // The rest of the file (and afterAll) needs a running operator, whatever happened here.
      if (stopped) operator = await startTestOperator(t.ns);
      tenant.close();
      await grant.remove();
    }
  });
});
