// Faults during population, with the real processes: the populator, and separately the
// operator, is SIGKILLed at each step — after the prime claim is made, while the restore
// Job runs, after the PV is handed over to the claim, and before the finalizer goes — and
// started again. Each claim still ends Bound with the snapshot's files, and no prime claim,
// restore Job, held reclaim policy or finalizer is left. The populator holds at the step
// through its failpoint (operator/runtime/failpoint.ts), so the kill lands exactly there.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
import { FINALIZER, HELD_RECLAIM_POLICY } from '../../operator/populator/populator-plan.js';
import { until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { repoRoot, tsNode } from '../support/paths.js';
import { populatorIdentity, populatorKubeconfig, startPopulatorProcess, type PopulatorProcess } from '../support/populator.js';
import { freePort, processesMentioning, startGuarded, type GuardedProcess } from '../support/processes.js';

const t = useTestNamespace('faults');
const LEADER_ENV = { LEADER_ELECTION_LEASE_DURATION: '2', LEADER_ELECTION_RENEW_DEADLINE: '1.5', LEADER_ELECTION_RETRY_PERIOD: '0.25' };
let identity: Awaited<ReturnType<typeof populatorIdentity>>;
let kubeconfig: string;
let operator: { guarded: GuardedProcess; kill(): Promise<void> } | undefined;
const populators: PopulatorProcess[] = [];
let generation = 0;

/** operator/main.ts as its own process (admin credentials: this file is about faults, not RBAC). */
async function startOperator(): Promise<{ guarded: GuardedProcess; kill(): Promise<void> }> {
  const name = `operator-${++generation}`;
  const [node, ...args] = tsNode();
  const entry = join(repoRoot, 'operator/main.ts');
  const guarded = startGuarded(name, node, [...args, entry], join(process.env.KOPIA_TEST_DIR!, 'logs', `faults-${t.ns}-${name}.log`), {
    ...process.env,
    KUBECONFIG: process.env.KOPIA_TEST_KUBECONFIG!,
    POD_NAMESPACE: t.ns,
    POD_NAME: name,
    HEALTH_PORT: String(await freePort()),
    INTAKE_PORT: '0',
    MOVER_IMAGE: 'kopia-operator:test',
    ...LEADER_ENV,
  });
  return {
    guarded,
    async kill() {
      for (const pid of await processesMentioning(entry)) {
        try {
          // The node process itself, not the guard shell that started it.
          const ours = readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`POD_NAME=${name}\0`);
          if (ours && readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(process.execPath)) process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await guarded.exited;
    },
  };
}

async function startPopulator(env: Record<string, string> = {}): Promise<PopulatorProcess> {
  const p = await startPopulatorProcess({ name: `populator-${++generation}`, kubeconfig, namespace: t.ns, env: { ...LEADER_ENV, ...env } });
  populators.push(p);
  return p;
}

async function volumeDir(claimName: string): Promise<string> {
  await until(
    `claim ${claimName} to bind`,
    async () => (await t.client.get<Obj>(PersistentVolumeClaims, t.ns, claimName)).status?.phase === 'Bound',
  );
  const pvc = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, claimName);
  return (await t.client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path;
}

/** Bound with the snapshot's file, and nothing of the population left. */
async function populatedWithNothingLeft(name: string): Promise<void> {
  let why = '';
  await until(
    `claim ${name} Bound with its data and nothing left`,
    async () => {
      const claim = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, name);
      if (claim.status?.phase !== 'Bound') return !(why = `phase ${claim.status?.phase}`);
      if (claim.metadata.finalizers?.includes(FINALIZER)) return !(why = 'finalizer still there');
      if (await t.client.getOrUndefined(PersistentVolumeClaims, t.ns, `kopia-prime-${claim.metadata.uid}`))
        return !(why = 'prime claim left');
      const jobs = (await t.client.list<Obj>(Jobs, t.ns)).items.filter((j) => j.metadata.name!.includes(claim.metadata.uid!));
      if (jobs.length) return !(why = `Jobs left: ${jobs.map((j) => j.metadata.name).join(', ')}`);
      const pv = await t.client.get<Obj>(PersistentVolumes, undefined, claim.spec.volumeName);
      if (pv.metadata.annotations?.[HELD_RECLAIM_POLICY]) return !(why = 'PV still held at Retain');
      return true;
    },
    120_000,
    250,
  ).catch((e: Error) => {
    throw new Error(`${e.message} (last: ${why})`);
  });
  const dir = await volumeDir(name);
  expect(readFileSync(join(dir, 'version.txt'), 'utf8')).toBe('restored\n');
  expect(readFileSync(join(dir, 'sub/data.bin')).equals(Buffer.alloc(200_000, 3))).toBe(true);
  // The prime's volume was handed over, not left Released beside the claim's.
  const strays = (await t.client.list<Obj>(PersistentVolumes)).items.filter((v) => v.spec.claimRef?.name?.startsWith('kopia-prime-'));
  expect(strays.map((v) => v.metadata.name)).toEqual([]);
}

function newClaim(name: string): Promise<Obj> {
  const claim = claimObject({ name, namespace: t.ns }) as Obj;
  claim.spec.dataSourceRef = { apiGroup: 'kopia.io', kind: 'Restore', name: 'latest' };
  return t.client.create<Obj>(PersistentVolumeClaims, claim);
}

/** Starts a populator holding at `step`, makes a claim, and waits until the populator holds there. */
async function claimHeldAt(step: string, name: string): Promise<{ populator: PopulatorProcess; dir: string }> {
  const dir = join(process.env.KOPIA_TEST_DIR!, `failpoint-${t.ns}-${name}`);
  mkdirSync(dir, { recursive: true });
  const populator = await startPopulator({ KOPIA_FAILPOINT_AFTER: step, KOPIA_FAILPOINT_DIR: dir });
  await newClaim(name);
  await until(`the populator to hold after ${step}`, async () => existsSync(join(dir, 'reached')), 120_000, 100);
  return { populator, dir };
}

beforeAll(async () => {
  identity = await populatorIdentity(t.client, t.ns);
  kubeconfig = await populatorKubeconfig(t.client, t.ns, join(process.env.KOPIA_TEST_DIR!, `populator-${t.ns}.kubeconfig`));
  operator = await startOperator();
  await t.client.create(Secrets, secretObject({ name: 'nas-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: 'faults' } }));
  for (const claim of ['nas', 'app-data']) await t.client.create(PersistentVolumeClaims, claimObject({ name: claim, namespace: t.ns }));
  await t.client.create(KopiaRepositories, repositoryObject({ name: 'nas', namespace: t.ns }));
  await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' }, 120_000);
  await t.client.create(KopiaBackupConfigs, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name: 'app', namespace: t.ns },
    spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' }, copyMethod: 'Direct' },
  } as Obj);
  await waitForReady(t.client, KopiaBackupConfigs, t.ns, 'app', { status: 'True', reason: 'Ready' });
  const source = await volumeDir('app-data');
  mkdirSync(join(source, 'sub'), { recursive: true });
  writeFileSync(join(source, 'version.txt'), 'restored\n');
  writeFileSync(join(source, 'sub/data.bin'), Buffer.alloc(200_000, 3));
  await t.client.create(KopiaBackups, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: { name: 'first', namespace: t.ns },
    spec: { configRef: { name: 'app' } },
  } as Obj);
  await until('the backup', async () => (await t.client.get<Obj>(KopiaBackups, t.ns, 'first')).status?.phase === 'Succeeded', 120_000, 250);
  await t.client.create(KopiaRestores, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Restore',
    metadata: { name: 'latest', namespace: t.ns },
    spec: { source: { fromConfig: { name: 'app' } }, target: { populator: {} } },
  } as Obj);
  // Each claim is resolved on its own once it exists; before that the Restore says what a claim would get.
  await until('the Restore to wait for claims', async () =>
    ((await t.client.get<Obj>(KopiaRestores, t.ns, 'latest')).status?.conditions ?? []).some(
      (c: { reason: string; message: string }) => c.reason === 'WaitingForClaim' && c.message.includes('would get snapshot'),
    ),
  );
}, 240_000);

/** SIGTERM every populator still running (each releases the Lease), so the next test's is the one that leads. */
async function stopPopulators(): Promise<void> {
  for (const p of populators.splice(0)) await p.guarded.stop();
}
afterEach(stopPopulators);

afterAll(async () => {
  await stopPopulators();
  await operator?.guarded.stop();
  await identity?.remove();
});

// The steps the issue names: after prime creation, during the Job, after the rebind, before the finalizer is removed.
const STEPS: [string, string][] = [
  ['createPrime', 'after the prime claim is made'],
  ['startJob', 'while the restore Job runs'],
  ['handOver', 'after the PV is handed over to the claim'],
  ['releaseVolume', 'before the finalizer is removed'],
];

describe.each(STEPS)('SIGKILL %s (%s)', (step) => {
  it('of the populator: the next populator finishes the claim', async () => {
    const name = `pop-${step.toLowerCase()}`;
    const { populator } = await claimHeldAt(step, name);
    await populator.kill();
    await startPopulator();
    await populatedWithNothingLeft(name);
  });

  it('of the operator: started again, the claim still ends Bound with its data', async () => {
    const name = `op-${step.toLowerCase()}`;
    const { dir } = await claimHeldAt(step, name);
    await operator!.kill();
    operator = await startOperator();
    writeFileSync(join(dir, 'resume'), '');
    await populatedWithNothingLeft(name);
    expect((await t.client.get<Obj>(KopiaRestores, t.ns, 'latest')).status.phase).not.toBe('Failed');
  });
});

// The prime claim is the populator's, but a user (or a GC sweep) can delete it at any point.
describe('the prime claim deleted mid-way', () => {
  /** Holds the populator after `step`, deletes the prime claim there, goes on; returns the prime's PV. */
  async function primeDeletedAfter(step: string, name: string, untilGone: boolean): Promise<string> {
    const { dir } = await claimHeldAt(step, name);
    const claim = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, name);
    const primeName = `kopia-prime-${claim.metadata.uid}`;
    const prime = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, primeName);
    await t.client.delete(PersistentVolumeClaims, t.ns, primeName);
    // Gone; or, while a finished Job's Pod still names it, kept by pvc-protection until that Pod goes.
    await until(`prime claim ${primeName} to be ${untilGone ? 'gone' : 'deleted'}`, async () => {
      const left = await t.client.getOrUndefined<Obj>(PersistentVolumeClaims, t.ns, primeName);
      return !left || (!untilGone && !!left.metadata.deletionTimestamp);
    });
    writeFileSync(join(dir, 'resume'), '');
    return prime.spec.volumeName;
  }

  it('between the hold and the hand-over: its PV gets its reclaim policy back and goes; the claim is populated anew', async () => {
    const volume = await primeDeletedAfter('holdVolume', 'prime-gone-held', true);
    // Held at Retain for a claim that is gone, it would stay Released forever.
    await until(
      `the held PV ${volume} of the deleted prime to go`,
      async () => !(await t.client.getOrUndefined(PersistentVolumes, undefined, volume)),
      60_000,
      250,
    );
    await populatedWithNothingLeft('prime-gone-held');
  }, 240_000);

  it('after the restore Job succeeded: the Job goes and the claim is populated anew, not after the Job’s TTL', async () => {
    await primeDeletedAfter('collectJob', 'prime-gone-collected', false);
    await populatedWithNothingLeft('prime-gone-collected');
  }, 240_000);
});
