// The volume populator on the real control plane (PV binder, garbage collector, Jobs) with
// real kopia: a claim whose dataSourceRef names a Restore comes up Bound with the
// snapshot's files, for WaitForFirstConsumer and Immediate classes alike; an empty volume
// only when the Restore resolved to "no snapshot exists"; a failed Restore or restore Job
// keeps the claim Pending; nothing temporary is left, the PV keeps its reclaim policy, and
// a deletion or a restart at any stage loses and leaks nothing. The populator acts as its
// own ServiceAccount with the RBAC from manifests/populator/; the operator resolves.
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
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
import { FINALIZER, HELD_RECLAIM_POLICY, POPULATED_FROM } from '../../operator/populator/populator-plan.js';
import { conditionOf, until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { inventory, KopiaCli } from '../support/kopia-cli.js';
import { STORAGE_CLASS, STORAGE_CLASS_WFFC } from '../support/node-agent.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';
import { kstatusOf } from '../../operator/test-support/kstatus.js';
import { populatorIdentity, startTestPopulator, type TestPopulator } from '../support/populator.js';
import { populatorObjectSeries } from '../../operator/metrics/population-metrics.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const t = useTestNamespace('populator');
const RETRY = { initialMs: 1000, maxMs: 4000 };
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let identity: Awaited<ReturnType<typeof populatorIdentity>>;
let populator: TestPopulator;
let source: string;
let repositoryDir: string;

const startPopulator = async () => (populator = await startTestPopulator({ client: identity.client, namespace: t.ns, retry: RETRY }));

async function volumeDir(claimName: string): Promise<string> {
  await until(`claim ${claimName} to bind`, async () => (await claimOf(claimName))?.status?.phase === 'Bound', 120_000, 250);
  const pvc = await claimOf(claimName);
  return (await t.client.get<Obj>(PersistentVolumes, undefined, pvc!.spec.volumeName)).spec.hostPath.path;
}

const claimOf = (name: string) => t.client.getOrUndefined<Obj>(PersistentVolumeClaims, t.ns, name);
const restoreOf = (name: string) => t.client.get<Obj>(KopiaRestores, t.ns, name);

async function restore(name: string, spec: Record<string, unknown>): Promise<void> {
  await t.client.create(KopiaRestores, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Restore',
    metadata: { name, namespace: t.ns },
    spec: { target: { populator: {} }, ...spec },
  } as Obj);
}

/** A claim whose dataSourceRef names the Restore. */
async function populatedClaim(name: string, restoreName: string, storageClassName = STORAGE_CLASS): Promise<Obj> {
  const claim = claimObject({ name, namespace: t.ns, storageClassName }) as Obj;
  claim.spec.dataSourceRef = { apiGroup: 'kopia.io', kind: 'Restore', name: restoreName };
  return t.client.create<Obj>(PersistentVolumeClaims, claim);
}

/** Events the populator wrote about a claim, oldest first. */
async function claimEvents(name: string): Promise<any[]> {
  const events = await t.client.list<Obj>({ group: '', version: 'v1', plural: 'events', namespaced: true }, t.ns, {
    fieldSelector: `involvedObject.name=${name},involvedObject.kind=PersistentVolumeClaim`,
  });
  return events.items.sort((a: any, b: any) => (a.firstTimestamp ?? '').localeCompare(b.firstTimestamp ?? ''));
}

/** Bound, and nothing of the populator left: no prime claim, no Job, no finalizer, the PV's policy back. */
async function settled(name: string): Promise<{ claim: Obj; pv: Obj }> {
  let why = '';
  await until(
    `claim ${name} populated and cleaned up`,
    async () => {
      const claim = await claimOf(name);
      if (claim?.status?.phase !== 'Bound') return !(why = `claim ${claim?.status?.phase}`);
      const uid = claim.metadata.uid;
      if (claim.metadata.finalizers?.includes(FINALIZER)) return !(why = 'finalizer still there');
      if (await claimOf(`kopia-prime-${uid}`)) return !(why = 'prime claim still there');
      if (await t.client.getOrUndefined(Jobs, t.ns, `kopia-populate-${uid}`)) return !(why = 'Job still there');
      const pv = await t.client.get<Obj>(PersistentVolumes, undefined, claim.spec.volumeName);
      if (pv.metadata.annotations?.[HELD_RECLAIM_POLICY]) return !(why = 'PV still held');
      return true;
    },
    180_000,
    250,
  ).catch((e: Error) => {
    throw new Error(`${e.message} (${why})`);
  });
  const claim = (await claimOf(name))!;
  return { claim, pv: await t.client.get<Obj>(PersistentVolumes, undefined, claim.spec.volumeName) };
}

async function backup(name: string, config: string): Promise<string> {
  await t.client.create(KopiaBackups, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace: t.ns },
    spec: { configRef: { name: config } },
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

async function config(name: string, spec: Record<string, unknown> = {}): Promise<void> {
  await t.client.create(KopiaBackupConfigs, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name, namespace: t.ns },
    spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' }, copyMethod: 'Direct', ...spec },
  } as Obj);
  await waitForReady(t.client, KopiaBackupConfigs, t.ns, name, { status: 'True', reason: 'Ready' });
}

const restoredFiles = (dir: string) => inventory(dir);

beforeAll(async () => {
  operator = await startTestOperator(t.ns);
  identity = await populatorIdentity(t.client, t.ns);
  await startPopulator();
  await t.client.create(
    Secrets,
    secretObject({ name: 'nas-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: 'populator password' } }),
  );
  for (const claim of ['nas', 'app-data']) await t.client.create(PersistentVolumeClaims, claimObject({ name: claim, namespace: t.ns }));
  await t.client.create(KopiaRepositories, repositoryObject({ name: 'nas', namespace: t.ns }));
  await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' });
  repositoryDir = await volumeDir('nas');
  source = await volumeDir('app-data');
  mkdirSync(join(source, 'nested/deeper'), { recursive: true });
  writeFileSync(join(source, 'hello.txt'), 'hello from the snapshot\n');
  writeFileSync(join(source, 'empty'), '');
  writeFileSync(join(source, 'nested/deeper/data.bin'), randomBytes(2 * 1024 * 1024));
  writeFileSync(join(source, 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(source, 'run.sh'), 0o755);
  symlinkSync('hello.txt', join(source, 'link'));
  await config('app');
  await backup('first', 'app');
  // A config whose identity has never been backed up: kopia lists no snapshot for it.
  await config('never', { identity: { username: 'never' } });
  await restore('latest', { source: { fromConfig: { name: 'app' } } });
}, 240_000);

afterAll(async () => {
  await populator?.stop({ release: true });
  await identity?.remove();
  operator?.stop();
});

describe('a claim whose dataSourceRef names a Restore', () => {
  it('Immediate class: comes up Bound with the snapshot’s files; the Restore says Completed; nothing temporary is left', async () => {
    await populatedClaim('restored', 'latest');
    const { claim, pv } = await settled('restored');
    expect(restoredFiles(pv.spec.hostPath.path)).toEqual(restoredFiles(source));
    // The PV is the claim's now, with the class's policy and a note of where it came from.
    expect(pv.spec.persistentVolumeReclaimPolicy).toBe('Delete');
    expect(pv.metadata.annotations?.[POPULATED_FROM]).toBe(`${t.ns}/latest`);
    expect(pv.spec.claimRef).toMatchObject({ name: 'restored', uid: claim.metadata.uid });
    const done = await restoreOf('latest');
    expect(done.status).toMatchObject({ phase: 'Completed', target: { pvc: 'restored' }, progress: { restoredFiles: expect.any(Number) } });
    expect(conditionOf(done)).toMatchObject({ status: 'True' });
    const reasons = (await claimEvents('restored')).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['PopulatorPVCPrimeCreated', 'PopulatorCreated', 'PopulatorFinished']));
    expect(reasons.indexOf('PopulatorPVCPrimeCreated')).toBeLessThan(reasons.indexOf('PopulatorFinished'));
  });

  it('WaitForFirstConsumer class: waits for a consumer, then is populated on its node and Bound with the files', async () => {
    const created = await populatedClaim('wffc', 'latest', STORAGE_CLASS_WFFC);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await claimOf(`kopia-prime-${created.metadata.uid}`)).toBeUndefined();
    expect((await claimOf('wffc'))?.metadata.finalizers ?? []).not.toContain(FINALIZER);
    await t.client.create(Pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'consumer', namespace: t.ns },
      spec: {
        restartPolicy: 'Never',
        containers: [
          { name: 'main', image: 'kopia-operator:test', command: ['true'], volumeMounts: [{ name: 'data', mountPath: '/data' }] },
        ],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'wffc' } }],
      },
    } as Obj);
    const { claim, pv } = await settled('wffc');
    expect(claim.metadata.annotations?.['volume.kubernetes.io/selected-node']).toBe('local-node');
    expect(restoredFiles(pv.spec.hostPath.path)).toEqual(restoredFiles(source));
    await until('the consumer to run', async () => (await t.client.get<Obj>(Pods, t.ns, 'consumer')).status?.phase === 'Succeeded', 60000);
  });

  it('an empty volume when kopia lists no snapshot and the Restore says Continue, and no restore Job', async () => {
    await restore('nothing-continue', { source: { fromConfig: { name: 'never' } }, onMissingSnapshot: 'Continue' });
    await populatedClaim('fresh', 'nothing-continue');
    const { pv } = await settled('fresh');
    expect(readdirSync(pv.spec.hostPath.path)).toEqual([]);
    const done = await restoreOf('nothing-continue');
    expect(done.status).toMatchObject({ phase: 'Completed', resolved: { empty: true }, target: { pvc: 'fresh' } });
    const created = (await claimEvents('fresh')).find((e) => e.reason === 'PopulatorCreated');
    expect(created.message).toContain('no restore Job');
  });

  it('a Failed Restore (no snapshot, onMissingSnapshot Fail) keeps the claim Pending, with a Warning Event, and makes nothing', async () => {
    await restore('nothing-fail', { source: { fromConfig: { name: 'never' } } });
    const claim = await populatedClaim('must-not-be-empty', 'nothing-fail');
    await until(
      'a PopulatorRestoreFailed Event',
      async () => (await claimEvents('must-not-be-empty')).some((e) => e.reason === 'PopulatorRestoreFailed'),
      60000,
      250,
    );
    const warning = (await claimEvents('must-not-be-empty')).find((e) => e.reason === 'PopulatorRestoreFailed');
    expect(warning).toMatchObject({ type: 'Warning', message: expect.stringContaining('SnapshotMissing') });
    const after = (await claimOf('must-not-be-empty'))!;
    expect(after.status.phase).toBe('Pending');
    expect(after.metadata.finalizers ?? []).not.toContain(FINALIZER);
    expect(await claimOf(`kopia-prime-${claim.metadata.uid}`)).toBeUndefined();
    const failed = await restoreOf('nothing-fail');
    expect(failed.status.phase).toBe('Failed');
    // A failed Restore is Stalled (kstatus Failed), never shown as progressing …
    expect(kstatusOf(failed)).toEqual({ status: 'Failed', reason: 'SnapshotMissing' });
    // … also one an older operator failed with Ready alone: the next pass adds Stalled, Ready untouched.
    const readyAlone = { ...failed.status, conditions: failed.status.conditions.filter((c: { type: string }) => c.type === 'Ready') };
    const old = await t.client.replace(KopiaRestores, { ...failed, status: readyAlone }, 'status');
    expect(kstatusOf(old).status).toBe('InProgress');
    await until('the operator to add Stalled', async () => kstatusOf(await restoreOf('nothing-fail')).status === 'Failed', 30_000, 200);
    expect(conditionOf(await restoreOf('nothing-fail'))).toEqual(conditionOf(failed));
    // The populator's caches as its metrics read them: one claim here waits, for that reason.
    const waiting = populatorObjectSeries(populator.manager.informers, identity.client, new Date(), RETRY).filter(
      (s) => s.labels.namespace === t.ns,
    );
    expect(waiting).toEqual([
      { name: 'kopia_population_claims_waiting', labels: { namespace: t.ns, reason: 'PopulatorRestoreFailed' }, value: 1 },
    ]);
  });

  it('an already Bound claim is left alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prebound-'));
    const pvName = `prebound-${t.ns}`;
    await t.client.create(PersistentVolumes, {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: pvName },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: STORAGE_CLASS,
        hostPath: { path: dir },
        claimRef: { namespace: t.ns, name: 'prebound' },
      },
    } as Obj);
    try {
      // Its Restore comes only once the claim is bound, so the populator cannot get there first.
      await populatedClaim('prebound', 'later');
      await until('the pre-bound claim to bind', async () => (await claimOf('prebound'))?.status?.phase === 'Bound', 60000, 250);
      await restore('later', { source: { fromConfig: { name: 'app' } } });
      // A Bound claim needs no answer: the Restore waits for a claim that does.
      await until(
        'the Restore to be looked at',
        async () => conditionOf(await restoreOf('later'))?.reason === 'WaitingForClaim',
        60000,
        250,
      );
      await new Promise((r) => setTimeout(r, 1000));
      await populator.manager.whenIdle();
      const claim = (await claimOf('prebound'))!;
      expect(claim.metadata.finalizers ?? []).not.toContain(FINALIZER);
      expect(await claimOf(`kopia-prime-${claim.metadata.uid}`)).toBeUndefined();
      const pv = await t.client.get<Obj>(PersistentVolumes, undefined, pvName);
      expect(pv.spec.persistentVolumeReclaimPolicy).toBe('Retain');
      expect(pv.metadata.annotations?.[POPULATED_FROM]).toBeUndefined();
      expect((await claimEvents('prebound')).map((e) => e.reason)).not.toContain('PopulatorPVCPrimeCreated');
      expect((await restoreOf('later')).status.phase).toBe('Pending');
    } finally {
      await t.client.delete(PersistentVolumeClaims, t.ns, 'prebound');
      await t.client.delete(PersistentVolumes, undefined, pvName);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('failures and interruptions', () => {
  it('a failed restore Job never hands out the volume: Failed, a Warning Event, retried with backoff until it works', async () => {
    await restore('flaky', { source: { fromConfig: { name: 'app' } } });
    // The claim gets its answer while no populator runs, so the repository can go before a Job starts.
    await populator.stop();
    const claim = await populatedClaim('flaky', 'flaky');
    await until(
      'the Restore to pin a snapshot for the claim',
      async () => !!(await restoreOf('flaky')).status?.claims?.[0]?.snapshotID,
      60000,
      250,
    );
    // The repository's storage "did not mount": the mover finds no repository where it was verified.
    const format = join(repositoryDir, 'kopia.repository.f');
    renameSync(format, `${format}.away`);
    try {
      await startPopulator();
      await until(
        'a PopulatorFailed Event',
        async () => (await claimEvents('flaky')).some((e) => e.reason === 'PopulatorFailed'),
        120000,
        250,
      );
      const failed = await restoreOf('flaky');
      expect(failed.status.phase).toBe('Failed');
      expect(conditionOf(failed)).toMatchObject({ status: 'False', reason: 'RepositoryMissing' });
      expect((await claimOf('flaky'))!.status.phase).toBe('Pending');
      const pvs = (await t.client.list<Obj>(PersistentVolumes)).items;
      expect(pvs.some((pv) => pv.spec.claimRef?.uid === claim.metadata.uid)).toBe(false);
      await until(
        'the failure counted on the prime claim',
        async () => Number((await claimOf(`kopia-prime-${claim.metadata.uid}`))?.metadata.annotations?.['kopia.io/populate-failures']) >= 1,
        30000,
        250,
      );
    } finally {
      renameSync(`${format}.away`, format);
    }
    const { pv } = await settled('flaky');
    expect(restoredFiles(pv.spec.hostPath.path)).toEqual(restoredFiles(source));
    expect((await restoreOf('flaky')).status.phase).toBe('Completed');
  }, 300_000);

  it('the user deletes the claim while the restore Job runs: Job, prime claim, its PV and the finalizer all go', async () => {
    const claim = await populatedClaim('doomed', 'latest');
    const uid = claim.metadata.uid;
    let primeVolume = '';
    await until(
      'the restore Job and a bound prime claim',
      async () => {
        const prime = await claimOf(`kopia-prime-${uid}`);
        primeVolume = prime?.spec?.volumeName ?? '';
        return !!primeVolume && !!(await t.client.getOrUndefined(Jobs, t.ns, `kopia-populate-${uid}`));
      },
      60000,
      50,
    );
    await t.client.delete(PersistentVolumeClaims, t.ns, 'doomed');
    await until(
      'the claim and everything it had to go',
      async () =>
        !(await claimOf('doomed')) &&
        !(await claimOf(`kopia-prime-${uid}`)) &&
        !(await t.client.getOrUndefined(Jobs, t.ns, `kopia-populate-${uid}`)) &&
        !(await t.client.getOrUndefined(PersistentVolumes, undefined, primeVolume)),
      120000,
      250,
    );
    // The Restore waits for another claim.
    await until('the Restore to be free again', async () => (await restoreOf('latest')).status.phase !== 'Restoring', 30000, 250);
  }, 300_000);

  const stopPoints: { name: string; reached: (uid: string) => Promise<boolean>; whileStopped?: (uid: string) => Promise<void> }[] = [
    { name: 'the prime claim exists', reached: async (uid) => !!(await claimOf(`kopia-prime-${uid}`)) },
    {
      name: 'the restore Job runs (and finishes while no populator runs)',
      reached: async (uid) => !!(await t.client.getOrUndefined(Jobs, t.ns, `kopia-populate-${uid}`)),
      whileStopped: async (uid) =>
        until(
          'the Job to finish',
          async () =>
            ((await t.client.getOrUndefined<Obj>(Jobs, t.ns, `kopia-populate-${uid}`))?.status?.conditions ?? []).some(
              (c: any) => c.status === 'True' && (c.type === 'Complete' || c.type === 'Failed'),
            ),
          120000,
          250,
        ),
    },
    {
      name: 'the PV was handed over',
      reached: async (uid) =>
        (await t.client.list<Obj>(PersistentVolumes)).items.some(
          (pv) => pv.spec.claimRef?.uid === uid && pv.metadata.annotations?.[POPULATED_FROM],
        ),
    },
  ];
  it.each(stopPoints.map((s, i) => [s.name, s, i] as const))(
    'a populator restarted when %s finishes the job: Bound with the files, nothing left',
    async (_n, point, i) => {
      const claim = await populatedClaim(`restart-${i}`, 'latest');
      const uid = claim.metadata.uid!;
      await until(point.name, () => point.reached(uid), 120000, 20);
      await populator.stop();
      await point.whileStopped?.(uid);
      await startPopulator();
      const { pv } = await settled(`restart-${i}`);
      expect(restoredFiles(pv.spec.hostPath.path)).toEqual(restoredFiles(source));
      expect(pv.spec.persistentVolumeReclaimPolicy).toBe('Delete');
    },
    300_000,
  );
});

// Deploy-or-restore over an app's lifetime: the Restore stays in Git unchanged, and a claim
// re-created months later (new StorageClass, lost disk, "restore from backup") must come
// back with the newest data — never with the empty answer the first deploy got.
describe('each claim is answered on its own, from a listing made after it was created', () => {
  let lifeSource: string;
  const snapshots: string[] = [];
  const write = (text: string) => writeFileSync(join(lifeSource, 'state.txt'), text);

  beforeAll(async () => {
    await t.client.create(PersistentVolumeClaims, claimObject({ name: 'life-src', namespace: t.ns }));
    lifeSource = await volumeDir('life-src');
    await config('life', { source: { pvc: 'life-src' }, identity: { username: 'life' } });
    await restore('life', { source: { fromConfig: { name: 'life' } }, onMissingSnapshot: 'Continue' });
  });

  it('first deploy on an empty identity is empty; the claim re-created after backups binds with the newest data', async () => {
    const first = await populatedClaim('life', 'life');
    expect(readdirSync((await settled('life')).pv.spec.hostPath.path)).toEqual([]);

    write('version 1\n');
    snapshots.push(await backup('life-1', 'life'));
    write('version 2, the newest\n');
    snapshots.push(await backup('life-2', 'life'));

    await t.client.delete(PersistentVolumeClaims, t.ns, 'life');
    await until('the first claim to be gone', async () => !(await claimOf('life')), 60_000, 250);
    const second = await populatedClaim('life', 'life');
    const { pv } = await settled('life');
    expect(restoredFiles(pv.spec.hostPath.path)).toEqual(restoredFiles(lifeSource));

    const status = (await restoreOf('life')).status;
    expect(status.claims).toEqual([
      expect.objectContaining({ claimUID: first.metadata.uid, empty: true }),
      expect.objectContaining({ claimUID: second.metadata.uid, snapshotID: snapshots[1] }),
    ]);
    expect(status).toMatchObject({ phase: 'Completed', target: { pvc: 'life' }, resolved: { snapshotID: snapshots[1] } });
    expect(status.resolved.empty).toBeUndefined();
  }, 300_000);

  it('an identity path written "/data/" is the one kopia files as "/data": Continue does not come up empty', async () => {
    await config('slash', { source: { pvc: 'life-src' }, identity: { username: 'slash', path: '/data/' } });
    expect((await t.client.get<Obj>(KopiaBackupConfigs, t.ns, 'slash')).status.identityString).toBe(`slash@${t.ns}:/data`);
    await backup('slash-1', 'slash');
    await restore('slash', { source: { fromConfig: { name: 'slash' } }, onMissingSnapshot: 'Continue' });
    await populatedClaim('slash', 'slash');
    const { pv } = await settled('slash');
    expect(restoredFiles(pv.spec.hostPath.path)).toEqual(restoredFiles(lifeSource));
  }, 300_000);

  it('a pinned snapshot id gives that snapshot', async () => {
    await restore('pinned', {
      source: {
        snapshot: { repository: { name: 'nas' }, identity: { username: 'life', hostname: t.ns, path: '/data' }, id: snapshots[0] },
      },
    });
    await populatedClaim('pinned', 'pinned');
    const { pv } = await settled('pinned');
    expect(restoredFiles(pv.spec.hostPath.path)).toEqual({
      'state.txt': expect.objectContaining({ sha256: createHash('sha256').update('version 1\n').digest('hex') }),
    });
  }, 300_000);

  it('a Backup whose snapshot is gone: Failed with what exists, the claim Pending with an Event — never empty, even with Continue', async () => {
    const outside = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, repositoryDir, 'populator password');
    await outside.run('snapshot', 'delete', snapshots[0], '--delete');
    // The claim first (GitOps may apply it before its Restore), then the Restore a second later: the
    // first listing after the deletion answers both. The Backup object is still there (the mirror
    // removes it only after two listings lack its snapshot).
    const claim = await populatedClaim('gone', 'gone');
    await new Promise((r) => setTimeout(r, 1100));
    await restore('gone', { source: { backupRef: { name: 'life-1' } }, onMissingSnapshot: 'Continue' });
    await until(
      'a PopulatorRestoreFailed Event',
      async () => (await claimEvents('gone')).some((e) => e.reason === 'PopulatorRestoreFailed'),
      90_000,
      250,
    );
    const failed = await restoreOf('gone');
    expect(failed.status).toMatchObject({ phase: 'Failed', target: { pvc: 'gone' } });
    expect(conditionOf(failed)).toMatchObject({ status: 'False', reason: 'SnapshotNotFound' });
    expect(conditionOf(failed).message).toContain(snapshots[0]);
    expect(conditionOf(failed).message).toContain('kopia lists 1 snapshot of life@');
    expect(failed.status.claims).toEqual([expect.objectContaining({ claimUID: claim.metadata.uid, failed: expect.anything() })]);
    const after = (await claimOf('gone'))!;
    expect(after.status.phase).toBe('Pending');
    expect(await claimOf(`kopia-prime-${claim.metadata.uid}`)).toBeUndefined();
  }, 300_000);
});
