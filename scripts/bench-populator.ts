// make bench, populator: how long a claim whose dataSourceRef names a kopia.io Restore takes
// from its creation to Bound, less the restore itself (target: under 5 s), for one claim at
// a time and for many created at once. The world: the operator and the populator, each the
// compiled process as it ships (the populator with a token of its own ServiceAccount and
// the RBAC of manifests/populator/), a filesystem Repository, one Backup of a few files and
// a target.populator Restore of its config's newest snapshot; each claim is resolved against
// a kopia listing begun after it was created, inside the clock. Every claim's path is timed by the bench's own watches (ms after the claim was
// created) and the mover's log, read before the populator deletes the Job. Numbers only:
// the target is printed beside them, never asserted.
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaRestores,
  PersistentVolumeClaims,
  PersistentVolumes,
  Pods,
} from '../operator/kube/resources.js';
import { FINALIZER, HELD_RECLAIM_POLICY, POPULATED, claimUIDFromName } from '../operator/populator/populator-plan.js';
import { POPULATOR_JOB_SELECTOR } from '../operator/populator/populator.js';
import { claimObject } from '../e2e/support/objects.js';
import { STORAGE_CLASS } from '../e2e/support/node-agent.js';

import { startGuarded } from '../e2e/support/processes.js';

import {
  startDeployedPopulator,
  cpuBetween,
  isReady,
  readyRepository,
  say,
  secs,
  sleep,
  startBenchWorld,
  until,
  type BenchWorld,
  apiCallsOf,
  type Calls,
  type Obj,
  moverLogEntries,
  deploymentScript,
} from './bench-support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- status is read structurally */
const SINGLE_RUNS = Number(process.env.BENCH_POPULATOR_SINGLE ?? 3);
const CLAIMS = Number(process.env.BENCH_POPULATOR_CLAIMS ?? 20);
const TARGET_SECONDS = 5;
const TARGET = `claim created → Bound, less the restore itself, under ${TARGET_SECONDS} s`;
const POPULATOR_SCRIPT = deploymentScript('manifests/populator/deployment.yaml');

const round2 = (x: number) => Math.round(x * 100) / 100;
const quantile = (xs: number[], q: number) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return undefined;
  const i = (s.length - 1) * q;
  return round2(s[Math.floor(i)] + (s[Math.ceil(i)] - s[Math.floor(i)]) * (i - Math.floor(i)));
};
const stats = (xs: number[]) => ({ p50: quantile(xs, 0.5), max: quantile(xs, 1), min: quantile(xs, 0) });

/** First-seen times (Date.now()) of one claim's stages, as the bench's watches see them. */
interface Timeline {
  name: string;
  created: number;
  uid?: string;
  finalizer?: number;
  primeCreated?: number;
  /** The PV binder chose dynamic provisioning (the storage-provisioner annotation). */
  primeProvisioning?: number;
  /** The node agent's provisioner created the prime claim's PV. */
  primeVolumeCreated?: number;
  primeBound?: number;
  /** The node agent (the scheduler here) bound the Pod to the node: its claims are Bound. */
  podScheduled?: number;
  jobCreated?: number;
  podCreated?: number;
  podRunning?: number;
  podSucceeded?: number;
  jobComplete?: number;
  /** The Job's own status.startTime → completionTime (the API keeps whole seconds). */
  jobStatusSeconds?: number;
  jobDeleted?: number;
  primePopulated?: number;
  volumeHeld?: number;
  handedOver?: number;
  primeLost?: number;
  bound?: number;
  settled?: number;
  podUID?: string;
  jobName?: string;
}

/**
 * The path a claim takes to Bound, stage after stage, with who acts in each gap. The prime
 * claim binds beside it (the Job is created at once; its Pod waits for the prime claim),
 * so primeBound is timed apart.
 */
const STAGES: [keyof Timeline, Party, string][] = [
  ['finalizer', 'populator', 'finalizer on the claim'],
  ['primeCreated', 'populator', 'prime claim created'],
  ['jobCreated', 'populator', 'restore Job created'],
  ['podCreated', 'jobController', 'Pod created'],
  [
    'podRunning',
    'nodeAgent',
    'prime claim bound (PV binder, provisioner), Pod scheduled and started: the node agent’s 8 pod workers both schedule and run pods',
  ],
  ['podSucceeded', 'container', 'the mover: kopia connect, status, snapshot list, snapshot restore'],
  ['jobComplete', 'jobController', 'Job Complete (pod updates are batched for 1 s)'],
  ['primePopulated', 'populator', 'result collected, prime claim marked populated'],
  ['volumeHeld', 'populator', 'PV held at Retain'],
  ['handedOver', 'populator', 'PV claimRef → the claim'],
  ['bound', 'pvBinder', 'claim Bound'],
];
type Party = 'populator' | 'jobController' | 'nodeAgent' | 'container' | 'pvBinder';
const PARTIES: Party[] = ['populator', 'jobController', 'nodeAgent', 'container', 'pvBinder'];

interface MoverTimes {
  startedMs: number;
  finishedMs: number;
  /** `kopia snapshot restore` alone, from the mover's log line before it to the one after. */
  kopiaRestoreSeconds?: number;
  steps: { step: string; seconds: number }[];
}

/** The mover's JSON log lines (the node agent keeps them under pods/<uid>/logs). */
function moverTimes(bw: BenchWorld, podUID: string): MoverTimes | undefined {
  const entries = moverLogEntries(bw, podUID);
  if (!entries?.length) return undefined;
  const steps: { step: string; seconds: number }[] = [];
  entries.forEach((e, i) => {
    if (e.message !== 'kopia' || !e.argv || !entries[i + 1]) return;
    const step = e.argv
      .filter((a) => !a.startsWith('-'))
      .slice(0, 2)
      .join(' ');
    steps.push({ step, seconds: secs(entries[i + 1].t - e.t) });
  });
  return {
    startedMs: entries[0].t,
    finishedMs: entries[entries.length - 1].t,
    kopiaRestoreSeconds: steps.find((s) => s.step === 'snapshot restore')?.seconds,
    steps,
  };
}

/** Watches every claim, prime claim, PV, restore Job and Pod of the benchmark; one timeline per claim. */
class PopulationWatch {
  private readonly byName = new Map<string, Timeline>();
  private readonly byUID = new Map<string, Timeline>();

  private constructor(private readonly bw: BenchWorld) {}

  static async start(bw: BenchWorld): Promise<PopulationWatch> {
    const w = new PopulationWatch(bw);
    const now = () => Date.now();
    await bw.watch<Obj>(PersistentVolumeClaims, { namespace: bw.ns }, (event, c) => {
      if (event === 'DELETED') return;
      const own = w.byName.get(c.metadata.name!);
      if (own) {
        if (!own.uid) w.register(own, c.metadata.uid!);
        if ((c.metadata.finalizers ?? []).includes(FINALIZER)) own.finalizer ??= now();
        if (c.status?.phase === 'Bound') own.bound ??= now();
        if (own.bound && !(c.metadata.finalizers ?? []).includes(FINALIZER)) own.settled ??= now();
        return;
      }
      const tl = w.of(claimUIDFromName(c.metadata.name));
      if (!tl) return;
      tl.primeCreated ??= now();
      if (c.metadata.annotations?.['volume.kubernetes.io/storage-provisioner']) tl.primeProvisioning ??= now();
      if (c.status?.phase === 'Bound') tl.primeBound ??= now();
      if (c.metadata.annotations?.[POPULATED]) tl.primePopulated ??= now();
      if (c.status?.phase === 'Lost') tl.primeLost ??= now();
    });
    await bw.watch<Obj>(PersistentVolumes, {}, (event, pv) => {
      if (event === 'DELETED') return;
      const ref = pv.spec?.claimRef;
      const tl = w.of(claimUIDFromName(ref?.name) ?? ref?.uid);
      if (!tl) return;
      tl.primeVolumeCreated ??= now();
      if (pv.metadata.annotations?.[HELD_RECLAIM_POLICY]) tl.volumeHeld ??= now();
      if (ref?.uid === tl.uid) tl.handedOver ??= now();
    });
    await bw.watch<Obj>(Jobs, { namespace: bw.ns, labelSelector: POPULATOR_JOB_SELECTOR }, (event, j) => {
      const tl = w.of(claimUIDFromName(j.metadata.name));
      if (!tl) return;
      tl.jobName = j.metadata.name;
      if (event === 'DELETED') return void (tl.jobDeleted ??= now());
      tl.jobCreated ??= now();
      if ((j.status?.conditions ?? []).some((c: any) => ['Complete', 'Failed'].includes(c.type) && c.status === 'True'))
        tl.jobComplete ??= now();
      if (j.status?.startTime && j.status?.completionTime)
        tl.jobStatusSeconds ??= secs(Date.parse(j.status.completionTime) - Date.parse(j.status.startTime));
    });
    await bw.watch<Obj>(Pods, { namespace: bw.ns, labelSelector: POPULATOR_JOB_SELECTOR }, (event, p) => {
      const tl = w.of(claimUIDFromName(p.metadata.labels?.['job-name']));
      if (!tl || event === 'DELETED') return;
      tl.podCreated ??= now();
      tl.podUID = p.metadata.uid;
      if (p.spec?.nodeName) tl.podScheduled ??= now();
      if (p.status?.phase === 'Running') tl.podRunning ??= now();
      if (['Succeeded', 'Failed'].includes(p.status?.phase)) tl.podSucceeded ??= now();
    });
    return w;
  }

  private of(uid: string | undefined): Timeline | undefined {
    return uid ? this.byUID.get(uid) : undefined;
  }

  private register(tl: Timeline, uid: string): void {
    tl.uid = uid;
    this.byUID.set(uid, tl);
  }

  /** Creates claim name with its dataSourceRef on restore; its timeline starts just before the request. */
  async create(name: string, restore: string): Promise<Timeline> {
    const tl: Timeline = { name, created: Date.now() };
    this.byName.set(name, tl);
    const claim = claimObject({ name, namespace: this.bw.ns, storageClassName: STORAGE_CLASS }) as Obj;
    claim.spec.dataSourceRef = { apiGroup: 'kopia.io', kind: 'Restore', name: restore };
    const made = await this.bw.client.create<Obj>(PersistentVolumeClaims, claim);
    if (!tl.uid) this.register(tl, made.metadata.uid!);
    return tl;
  }
}

/** One claim's numbers, in seconds after its creation. */
function claimResult(bw: BenchWorld, tl: Timeline) {
  const at = (t: number | undefined) => (t === undefined ? undefined : secs(t - tl.created));
  const bound = secs(tl.bound! - tl.created);
  const mover = tl.podUID ? moverTimes(bw, tl.podUID) : undefined;
  // The restore's own time: the mover Pod's container running (Running → Succeeded as the
  // bench's Pod watch sees the node agent report it; ms, where the API's container times
  // keep whole seconds only).
  const containerSeconds = tl.podRunning && tl.podSucceeded ? secs(tl.podSucceeded - tl.podRunning) : undefined;
  return {
    claim: tl.name,
    boundSeconds: bound,
    containerRunningSeconds: containerSeconds,
    jobStatusSeconds: tl.jobStatusSeconds,
    kopiaRestoreSeconds: mover?.kopiaRestoreSeconds,
    moverProcessSeconds: mover ? secs(mover.finishedMs - mover.startedMs) : undefined,
    boundLessContainerSeconds: containerSeconds === undefined ? undefined : round2(bound - containerSeconds),
    boundLessJobStatusSeconds: tl.jobStatusSeconds === undefined ? undefined : round2(bound - tl.jobStatusSeconds),
    boundLessKopiaRestoreSeconds: mover?.kopiaRestoreSeconds === undefined ? undefined : round2(bound - mover.kopiaRestoreSeconds),
    settledSeconds: at(tl.settled),
    // Seconds of the path to Bound each party's gaps took (they add up to boundSeconds).
    byParty: Object.fromEntries(
      PARTIES.map((party) => {
        let prev = tl.created;
        let sum = 0;
        for (const [k, who] of STAGES) {
          const t = tl[k] as number;
          if (who === party) sum += t - prev;
          prev = t;
        }
        return [party, secs(sum)];
      }),
    ) as Record<Party, number>,
    timeline: Object.fromEntries([
      ...STAGES.map(([k]) => [k, at(tl[k] as number | undefined)]),
      ['primeProvisioning', at(tl.primeProvisioning)],
      ['primeVolumeCreated', at(tl.primeVolumeCreated)],
      ['primeBound', at(tl.primeBound)],
      ['podScheduled', at(tl.podScheduled)],
      ['moverStarted', at(mover?.startedMs)],
      ['moverFinished', at(mover?.finishedMs)],
      ['jobDeleted', at(tl.jobDeleted)],
      ['primeLost', at(tl.primeLost)],
      ['settled', at(tl.settled)],
    ]),
    moverSteps: mover?.steps,
  };
}
type ClaimResult = ReturnType<typeof claimResult>;

/** Per stage: seconds from the stage before it (p50 and max over the claims); per party: its share of the path. */
function stageGaps(results: ClaimResult[]) {
  const stages: Record<string, { p50?: number; max?: number; who: Party; what: string }> = {};
  let prev = 'created';
  for (const [k, who, what] of STAGES) {
    const gaps = results.map((r) => {
      const t = r.timeline[k];
      const p = prev === 'created' ? 0 : r.timeline[prev];
      return t === undefined || p === undefined ? NaN : t - p;
    });
    stages[`${prev}→${k}`] = { p50: quantile(gaps, 0.5), max: quantile(gaps, 1), who, what };
    prev = k;
  }
  const beside = (who: Party, what: string, from: string, to: string) => {
    const gaps = results.map((r) => (r.timeline[to] ?? NaN) - (r.timeline[from] ?? NaN));
    stages[`${from}→${to}`] = { ...stats(gaps), who, what };
  };
  beside('nodeAgent', 'beside the path: the prime claim Bound (PV binder and provisioner)', 'primeCreated', 'primeBound');
  beside('pvBinder', 'the PV binder annotates the prime claim for provisioning', 'primeCreated', 'primeProvisioning');
  beside('nodeAgent', 'the node agent’s provisioner creates its PV (4 at once)', 'primeProvisioning', 'primeVolumeCreated');
  beside('pvBinder', 'the PV binder binds them', 'primeVolumeCreated', 'primeBound');
  beside(
    'nodeAgent',
    'the node agent schedules the Pod once its claims are Bound (it looks again every 1 s, on the same 8 workers that run pods)',
    'primeBound',
    'podScheduled',
  );
  beside('nodeAgent', 'the node agent starts the Pod (8 pods at once)', 'podScheduled', 'podRunning');
  const byParty = Object.fromEntries(PARTIES.map((p) => [p, stats(results.map((r) => r.byParty[p]))]));
  return { stages, byParty };
}

const describe = (s: { p50?: number; max?: number }) => `p50 ${s.p50} s, max ${s.max} s`;

function populatorCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return (f[11] + f[12]) / 100;
}

async function populatorCalls(port: number): Promise<Calls> {
  return apiCallsOf(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
}

const totalCalls = (before: Calls, after: Calls) => Object.entries(after).reduce((n, [k, v]) => n + v - (before[k] ?? 0), 0);

export async function benchPopulator(): Promise<Record<string, unknown>> {
  const bw = await startBenchWorld('bench-populator');
  const { client, ns } = bw;
  const logsDir = join(bw.world.controlPlane.dir, 'logs');
  let populator: ReturnType<typeof startGuarded> | undefined;
  try {
    // The source: a few files, backed up once through a BackupConfig.
    await readyRepository(bw, 'nas');
    await client.create(PersistentVolumeClaims, claimObject({ name: 'app-data', namespace: ns }));
    const source = await bw.volumeDir(ns, 'app-data');
    mkdirSync(join(source, 'nested'), { recursive: true });
    writeFileSync(join(source, 'hello.txt'), 'hello from the snapshot\n');
    writeFileSync(join(source, 'nested/data.bin'), randomBytes(1 << 20));
    for (let i = 0; i < 3; i++) writeFileSync(join(source, `note-${i}.txt`), `note ${i}\n`.repeat(100));
    await client.create(KopiaBackupConfigs, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'BackupConfig',
      metadata: { name: 'app', namespace: ns },
      spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' }, copyMethod: 'Direct' },
    } as Obj);
    await until('BackupConfig app Ready', async () => isReady(await client.get<Obj>(KopiaBackupConfigs, ns, 'app')), 60000, 100);
    await client.create(KopiaBackups, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'first', namespace: ns },
      spec: { configRef: { name: 'app' } },
    } as Obj);
    await until(
      'Backup first Succeeded',
      async () => (await client.get<Obj>(KopiaBackups, ns, 'first')).status?.phase === 'Succeeded',
      120000,
      200,
    );
    await client.create(KopiaRestores, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Restore',
      metadata: { name: 'latest', namespace: ns },
      spec: { target: { populator: {} }, source: { fromConfig: { name: 'app', offset: 0 } } },
    } as Obj);
    // Each claim is resolved on its own (a listing begun after it was created, inside the clock);
    // before the clock the Restore has only checked what a claim would get.
    await until(
      'Restore latest to wait for claims',
      async () =>
        ((await client.get<Obj>(KopiaRestores, ns, 'latest')).status?.conditions ?? []).some(
          (c: { reason: string; message: string }) => c.reason === 'WaitingForClaim' && c.message.includes('would get snapshot'),
        ),
      120000,
      200,
    );

    const started = await startDeployedPopulator(bw, {
      script: POPULATOR_SCRIPT,
      logFile: join(logsDir, 'populator.log'),
      podName: 'bench-populator',
      logLevel: process.env.BENCH_POPULATOR_LOG_LEVEL ?? 'info',
    });
    populator = started.process;
    const populatorPid = started.pid;
    const port = started.port;
    const watch = await PopulationWatch.start(bw);
    const settled = (tls: Timeline[]) =>
      until(`${tls.length} claim(s) Bound and settled`, async () => tls.every((tl) => tl.settled !== undefined), 600000, 50);

    const pick = (rs: ClaimResult[], k: keyof ClaimResult) => rs.map((r) => r[k] as number);
    // (a) One claim at a time.
    const single: ClaimResult[] = [];
    for (let i = 0; i < SINGLE_RUNS; i++) {
      const tl = await watch.create(`single-${i}`, 'latest');
      await settled([tl]);
      const r = claimResult(bw, tl);
      single.push(r);
      say(
        `populator, one claim (${i + 1}/${SINGLE_RUNS}): Bound after ${r.boundSeconds} s; less the mover container's ${r.containerRunningSeconds} s: ` +
          `${r.boundLessContainerSeconds} s (target: under ${TARGET_SECONDS} s); less kopia snapshot restore alone (${r.kopiaRestoreSeconds} s): ${r.boundLessKopiaRestoreSeconds} s; ` +
          `by party ${JSON.stringify(r.byParty)}`,
      );
      await sleep(2000);
    }

    const singleOf = (k: keyof ClaimResult) => stats(pick(single, k));
    say(
      `populator, one claim, ${SINGLE_RUNS} runs: Bound ${describe(singleOf('boundSeconds'))}; less the mover container ` +
        `${describe(singleOf('boundLessContainerSeconds'))} (target: under ${TARGET_SECONDS} s)`,
    );

    // (b) CLAIMS claims created at once.
    const cpuBefore = { ...bw.cpu(), populator: populatorCpuSeconds(populatorPid) };
    const callsBefore = await populatorCalls(port);
    const t0 = Date.now();
    const tls = await Promise.all(Array.from({ length: CLAIMS }, (_, i) => watch.create(`burst-${i}`, 'latest')));
    await until(`${CLAIMS} claims Bound`, async () => tls.every((tl) => tl.bound !== undefined), 600000, 50);
    const allBound = Date.now();
    await settled(tls);
    const cpuAfter = { ...bw.cpu(), populator: populatorCpuSeconds(populatorPid) };
    const populatorRequests = totalCalls(callsBefore, await populatorCalls(port));
    const burst = tls.map((tl) => claimResult(bw, tl));
    const burstResult = {
      claims: CLAIMS,
      wallSecondsAllBound: secs(allBound - t0),
      wallSecondsAllSettled: secs(Math.max(...tls.map((tl) => tl.settled!)) - t0),
      boundSeconds: stats(pick(burst, 'boundSeconds')),
      boundLessContainerSeconds: stats(pick(burst, 'boundLessContainerSeconds')),
      boundLessJobStatusSeconds: stats(pick(burst, 'boundLessJobStatusSeconds')),
      boundLessKopiaRestoreSeconds: stats(pick(burst, 'boundLessKopiaRestoreSeconds')),
      containerRunningSeconds: stats(pick(burst, 'containerRunningSeconds')),
      kopiaRestoreSeconds: stats(pick(burst, 'kopiaRestoreSeconds')),
      stages: stageGaps(burst),
      cpuSeconds: cpuBetween(cpuBefore, cpuAfter),
      populatorApiRequests: populatorRequests,
      perClaim: burst,
    };
    say(
      `populator, ${CLAIMS} claims at once: all Bound after ${burstResult.wallSecondsAllBound} s (all settled ${burstResult.wallSecondsAllSettled} s); ` +
        `per claim Bound ${describe(burstResult.boundSeconds)}; less the mover container: ${describe(burstResult.boundLessContainerSeconds)} ` +
        `(target: under ${TARGET_SECONDS} s); less kopia snapshot restore alone: ${describe(burstResult.boundLessKopiaRestoreSeconds)}`,
    );
    say(
      `  the mover container ran ${describe(burstResult.containerRunningSeconds)}, kopia snapshot restore in it ${describe(burstResult.kopiaRestoreSeconds)}; ` +
        `CPU seconds meanwhile ${JSON.stringify(burstResult.cpuSeconds)}; ${populatorRequests} populator API requests`,
    );
    for (const [gap, s] of Object.entries(burstResult.stages.stages)) say(`  ${gap}: ${describe(s)} (${s.who}: ${s.what})`);
    say(
      `  the path to Bound by party: ${Object.entries(burstResult.stages.byParty)
        .map(([p, s]) => `${p} ${describe(s)}`)
        .join('; ')}`,
    );

    return {
      target: TARGET,
      method:
        'claims of an Immediate class name one target.populator Restore (fromConfig, offset 0) of a 1 MiB, 5-file snapshot, each claim resolved against its own listing inside the clock; ' +
        'Bound = the bench’s claim watch sees status.phase Bound, timed from just before the create request; the restore’s own time subtracted = ' +
        'the mover Pod’s container running time (Pod Running → Succeeded as the bench’s Pod watch sees the node agent report it, ms); ' +
        'also given: less the Job’s status.startTime → completionTime (whole seconds in the API) and less the mover-logged kopia snapshot restore alone',
      populatorProcess: `${POPULATOR_SCRIPT}, its own process, leader-elected, with a token of ServiceAccount kopia-populator bound to the rules of manifests/populator/rbac.yaml`,
      singleClaim: {
        runs: SINGLE_RUNS,
        first: single[0],
        boundSeconds: singleOf('boundSeconds'),
        boundLessContainerSeconds: singleOf('boundLessContainerSeconds'),
        boundLessJobStatusSeconds: singleOf('boundLessJobStatusSeconds'),
        boundLessKopiaRestoreSeconds: singleOf('boundLessKopiaRestoreSeconds'),
        stages: stageGaps(single),
        perRun: single,
      },
      claimsAtOnce: burstResult,
    };
  } finally {
    await populator?.stop();
    // The world's directory goes with it: keep the logs where asked.
    const keep = process.env.BENCH_KEEP_LOGS;
    if (keep) {
      mkdirSync(keep, { recursive: true });
      for (const f of ['populator.log', 'operator.log', 'kube-controller-manager.log', 'node-agent.log'])
        if (existsSync(join(logsDir, f))) copyFileSync(join(logsDir, f), join(keep, f));
    }
    await bw.stop();
  }
}
