// make bench, backups: a backup through the operator against plain `kopia snapshot create`
// on the same 1 GiB tree (random data, 8 files; a fresh filesystem repository on a claim
// and a fresh cache for each, several runs, alternating who goes first), and an unchanged
// re-backup of 10,000 small files with kopia's cache kept on a claim between runs (and in
// an emptyDir, and plain kopia with its cache kept). Where a Backup's time goes comes from
// the bench's own watches (ms) and the mover's log. Numbers only: targets are printed
// beside them, never asserted.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Jobs, KopiaBackupConfigs, KopiaBackups, PersistentVolumeClaims, Pods } from '../operator/kube/resources.js';
import { LABELS, MOVER_SELECTOR } from '../operator/jobs/job-builder.js';
import { claimObject } from '../e2e/support/objects.js';
import { STORAGE_CLASS } from '../e2e/support/node-agent.js';
import { repoRoot, moverEntrypoint } from '../e2e/support/paths.js';
import {
  BENCH_PASSWORD,
  isReady,
  PLAIN_MOUNTS,
  PlainKopia,
  readyRepository,
  say,
  secs,
  startBenchWorld,
  until,
  type BenchWorld,
  type Obj,
  moverLogEntries,
} from './bench-support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- status is read structurally */
const RUNS = Number(process.env.BENCH_BACKUP_RUNS ?? 3);
const BIG_MB = Number(process.env.BENCH_BACKUP_MB ?? 1024);
const BIG_FILES = 8;
const SMALL_FILES = Number(process.env.BENCH_SMALL_FILES ?? 10000);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round2 = (x: number) => Math.round(x * 100) / 100;

interface Timeline {
  created: number;
  jobSeen?: number;
  podSeen?: number;
  podRunning?: number;
  podDone?: number;
  jobDone?: number;
  done?: number;
  podUID?: string;
  cacheClaim?: string;
}

interface MoverLog {
  started: number;
  finished: number;
  steps: { step: string; start: number; seconds: number }[];
}

/** The mover's JSON log lines: when it started and finished, and how long each kopia command ran. */
function moverLog(bw: BenchWorld, podUID: string): MoverLog | undefined {
  const entries = moverLogEntries(bw, podUID);
  if (!entries?.length) return undefined;
  const steps: MoverLog['steps'] = [];
  entries.forEach((e, i) => {
    if (e.message !== 'kopia' || !e.argv || !entries[i + 1]) return;
    // kopia's own output is logged when it exits: the next line marks the end of the command.
    const step = e.argv
      .filter((a) => !a.startsWith('-'))
      .slice(0, 2)
      .join(' ');
    steps.push({ step, start: e.t, seconds: secs(entries[i + 1].t - e.t) });
  });
  return { started: entries[0].t, finished: entries[entries.length - 1].t, steps };
}

/** Backups of this benchmark as they go: what the bench sees of them, their Jobs and Pods, first-seen times in ms. */
class BackupWatch {
  private readonly timelines = new Map<string, Timeline>();

  private constructor(private readonly bw: BenchWorld) {}

  static async start(bw: BenchWorld): Promise<BackupWatch> {
    const w = new BackupWatch(bw);
    const of = (o: Obj) => {
      const l = o.metadata.labels ?? {};
      return l[LABELS.operation] === 'backup' ? w.timelines.get(l[LABELS.ownerName]) : undefined;
    };
    await bw.watch<Obj>(KopiaBackups, { namespace: bw.ns }, (event, b) => {
      const tl = w.timelines.get(b.metadata.name!);
      if (tl && event !== 'DELETED' && ['Succeeded', 'Failed'].includes(b.status?.phase)) tl.done ??= Date.now();
    });
    await bw.watch<Obj>(Jobs, { namespace: bw.ns, labelSelector: MOVER_SELECTOR }, (event, j) => {
      const tl = of(j);
      if (!tl || event === 'DELETED') return;
      tl.jobSeen ??= Date.now();
      tl.cacheClaim = (j.spec.template.spec.volumes ?? []).find((v: any) => v.name === 'cache')?.persistentVolumeClaim?.claimName;
      if ((j.status?.conditions ?? []).some((c: any) => ['Complete', 'Failed'].includes(c.type) && c.status === 'True'))
        tl.jobDone ??= Date.now();
    });
    await bw.watch<Obj>(Pods, { namespace: bw.ns, labelSelector: MOVER_SELECTOR }, (event, p) => {
      const tl = of(p);
      if (!tl || event === 'DELETED') return;
      tl.podSeen ??= Date.now();
      tl.podUID = p.metadata.uid;
      if (p.status?.phase === 'Running') tl.podRunning ??= Date.now();
      if (['Succeeded', 'Failed'].includes(p.status?.phase)) tl.podDone ??= Date.now();
    });
    return w;
  }

  /** Creates a Backup of config and waits for it to finish; wall time and where it went. */
  async run(name: string, config: string) {
    const { client, ns } = this.bw;
    const tl: Timeline = { created: Date.now() };
    this.timelines.set(name, tl);
    await client.create(KopiaBackups, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: { name, namespace: ns },
      spec: { configRef: { name: config } },
    } as Obj);
    await until(`Backup ${name} to finish`, async () => tl.done !== undefined, 1800000, 25);
    const backup = await client.get<Obj>(KopiaBackups, ns, name);
    if (backup.status.phase !== 'Succeeded') throw new Error(`Backup ${name} ${backup.status.phase}: ${backup.status.message}`);
    // The pod's phase may be seen after the Backup's (the Job's status is what the operator reads).
    await until('the mover pod to be seen done', async () => tl.podUID !== undefined, 10000, 25).catch(() => undefined);
    const log = tl.podUID ? moverLog(this.bw, tl.podUID) : undefined;
    const create = log?.steps.find((s) => s.step === 'snapshot create');
    const wall = secs(tl.done! - tl.created);
    const at = (t: number | undefined) => (t === undefined ? undefined : secs(t - tl.created));
    return {
      wallSeconds: wall,
      kopiaSnapshotCreateSeconds: create?.seconds,
      overheadSeconds: create ? round2(wall - create.seconds) : undefined,
      cacheClaim: tl.cacheClaim,
      stats: backup.status.stats,
      // Seconds after the Backup was created.
      timeline: {
        jobCreated: at(tl.jobSeen),
        podCreated: at(tl.podSeen),
        podRunning: at(tl.podRunning),
        moverStarted: at(log?.started),
        snapshotCreateStarted: at(create?.start),
        snapshotCreateEnded: create ? at(create.start + create.seconds * 1000) : undefined,
        moverFinished: at(log?.finished),
        podSucceeded: at(tl.podDone),
        jobComplete: at(tl.jobDone),
        backupSucceeded: wall,
      },
      moverSteps: log?.steps.map(({ step, seconds }) => ({ step, seconds })),
    };
  }
}

async function readyConfig(bw: BenchWorld, name: string, spec: Record<string, unknown>): Promise<void> {
  await bw.client.create(KopiaBackupConfigs, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name, namespace: bw.ns },
    spec: { copyMethod: 'Direct', ...spec },
  } as Obj);
  await until(`BackupConfig ${name} Ready`, async () => isReady(await bw.client.get<Obj>(KopiaBackupConfigs, bw.ns, name)), 60000, 100);
}

/** Flushes dirty pages, so one run's writeback does not slow the next. */
const flush = () => execFileSync('sync');

/** How long the mover takes to start and exit with nothing to do: from source with tsx (the test world's image) and compiled (the real image's). */
async function moverStartup(): Promise<{ tsxSeconds: number; compiledSeconds: number }> {
  const run = promisify(execFile);
  const dir = mkdtempSync(join(tmpdir(), 'bench-mover-'));
  const time = async (argv: string[]) => {
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = process.hrtime.bigint();
      await run(argv[0], argv.slice(1), { env: { PATH: process.env.PATH, KOPIA_MOVER_TERMINATION_LOG: join(dir, 'termination') } }).catch(
        () => undefined, // no request: it exits 1, which is all this needs
      );
      samples.push(Number(process.hrtime.bigint() - t) / 1e9);
    }
    return round2(median(samples));
  };
  try {
    return {
      tsxSeconds: await time(moverEntrypoint()),
      compiledSeconds: await time([process.execPath, join(repoRoot, 'dist/operator/mover/main.js')]),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes count files of random data, mb MiB in all, in 1 MiB writes. */
function writeRandomFiles(dir: string, count: number, mb: number): void {
  for (let f = 0; f < count; f++) {
    const fd = openSync(join(dir, `data-${f}.bin`), 'w', 0o644);
    for (let i = 0; i < mb / count; i++) writeSync(fd, randomBytes(1 << 20));
    closeSync(fd);
  }
}

async function benchBig(bw: BenchWorld, watch: BackupWatch): Promise<Record<string, unknown>> {
  const { client, ns } = bw;
  await client.create(PersistentVolumeClaims, claimObject({ name: 'big-data', namespace: ns, storage: '2Gi' }));
  const source = await bw.volumeDir(ns, 'big-data');
  let t = Date.now();
  writeRandomFiles(source, BIG_FILES, BIG_MB);
  say(`backup: ${BIG_MB} MiB of random data in ${BIG_FILES} files written in ${secs(Date.now() - t)} s`);
  const runs: Record<string, unknown>[] = [];
  const operatorWall: number[] = [];
  const kopiaWall: number[] = [];
  const overheads: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // The operator's side: a fresh repository and its BackupConfig, Ready before the clock starts.
    await readyRepository(bw, `op-${i}`);
    await readyConfig(bw, `big-${i}`, { repository: { name: `op-${i}` }, source: { pvc: 'big-data' } });
    // Plain kopia's side: a fresh repository on a claim, connected from a fresh configuration and cache.
    await client.create(PersistentVolumeClaims, claimObject({ name: `plain-${i}`, namespace: ns }));
    const repoDir = await bw.volumeDir(ns, `plain-${i}`);
    const creator = new PlainKopia(bw.world.kopiaBinDir, BENCH_PASSWORD, { repository: repoDir });
    await creator.create();
    creator.close();
    const plain = new PlainKopia(bw.world.kopiaBinDir, BENCH_PASSWORD, { repository: repoDir, data: source });
    try {
      const connect = await plain.connect();
      let op: Awaited<ReturnType<BackupWatch['run']>> | undefined;
      let kopia: { ms: number } | undefined;
      for (const side of i % 2 === 0 ? ['operator', 'kopia'] : ['kopia', 'operator']) {
        flush();
        if (side === 'operator') op = await watch.run(`big-${i}`, `big-${i}`);
        else kopia = await plain.run('snapshot', 'create', PLAIN_MOUNTS.data, '--json', '--no-auto-maintenance');
      }
      const kopiaSeconds = secs(kopia!.ms);
      operatorWall.push(op!.wallSeconds);
      kopiaWall.push(kopiaSeconds);
      if (op!.overheadSeconds !== undefined) overheads.push(op!.overheadSeconds);
      runs.push({ operator: op, plainKopia: { connectSeconds: secs(connect.ms), snapshotCreateSeconds: kopiaSeconds } });
      say(
        `backup run ${i + 1}/${RUNS}: operator ${op!.wallSeconds} s (Backup created → Succeeded; the mover's kopia snapshot create ${op!.kopiaSnapshotCreateSeconds} s), ` +
          `plain kopia snapshot create ${kopiaSeconds} s (connect before it ${secs(connect.ms)} s): ratio ${round2(op!.wallSeconds / kopiaSeconds)}`,
      );
    } finally {
      plain.close();
    }
  }
  t = Date.now();
  const startup = await moverStartup();
  const result = {
    bytes: BIG_MB * 2 ** 20,
    files: BIG_FILES,
    runs: RUNS,
    operatorWallSecondsMedian: round2(median(operatorWall)),
    plainKopiaSecondsMedian: round2(median(kopiaWall)),
    wallTimeRatio: round2(median(operatorWall) / median(kopiaWall)),
    overheadPerBackupSecondsMedian: overheads.length ? round2(median(overheads)) : undefined,
    target: 'a backup through the operator costs at most 5 % more wall time than kopia snapshot create (ratio ≤ 1.05)',
    method:
      'each run: a fresh filesystem repository on a claim for each side, fresh kopia cache (the mover: emptyDir; plain kopia: a new config and cache, connected before the clock starts), copyMethod Direct, sync before each side, order alternating; overhead = Backup created → Succeeded minus the mover-logged kopia snapshot create',
    moverStartup: startup,
    perRun: runs,
  };
  say(
    `backup of ${BIG_MB} MiB: operator ${result.operatorWallSecondsMedian} s vs plain kopia ${result.plainKopiaSecondsMedian} s (medians of ${RUNS}): ratio ${result.wallTimeRatio} (target: ≤ 1.05); ` +
      `fixed overhead per Backup ${result.overheadPerBackupSecondsMedian} s; the mover alone starts and exits in ${startup.tsxSeconds} s from source (tsx, as here), ${startup.compiledSeconds} s compiled (as in the image)`,
  );
  return result;
}

/** count small files (1–4 KiB of random data), 100 per directory. */
function writeSmallFiles(dir: string, count: number): void {
  for (let i = 0; i < count; i++) {
    const sub = join(dir, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) mkdirSync(sub, { recursive: true, mode: 0o755 });
    const fd = openSync(join(sub, `f${String(i % 100).padStart(2, '0')}.dat`), 'w', 0o644);
    writeSync(fd, randomBytes(1024 + ((i * 7919) % 3072)));
    closeSync(fd);
  }
}

async function benchRebackup(bw: BenchWorld, watch: BackupWatch): Promise<Record<string, unknown>> {
  const { client, ns } = bw;
  await client.create(PersistentVolumeClaims, claimObject({ name: 'small-data', namespace: ns }));
  const source = await bw.volumeDir(ns, 'small-data');
  writeSmallFiles(source, SMALL_FILES);
  await readyRepository(bw, 'small');
  const caches = {
    claim: { cache: { storageClassName: STORAGE_CLASS, capacity: '1Gi' } },
    emptyDir: undefined,
  };
  const out: Record<string, unknown> = { files: SMALL_FILES };
  for (const [kind, mover] of Object.entries(caches)) {
    const config = `small-${kind.toLowerCase()}`;
    await readyConfig(bw, config, { repository: { name: 'small' }, source: { pvc: 'small-data' }, ...(mover ? { mover } : {}) });
    flush();
    const first = await watch.run(`${config}-1`, config);
    const again = [];
    for (const n of [2, 3]) {
      flush();
      again.push(await watch.run(`${config}-${n}`, config));
    }
    out[`${kind}Cache`] = {
      firstBackup: first,
      unchangedWallSecondsMedian: round2(median(again.map((r) => r.wallSeconds))),
      unchangedKopiaSnapshotCreateSecondsMedian: round2(median(again.map((r) => r.kopiaSnapshotCreateSeconds ?? NaN))),
      cacheClaimUsed: again.every((r) => !!r.cacheClaim),
      unchanged: again,
    };
    say(
      `re-backup of ${SMALL_FILES} unchanged files, cache in ${kind === 'claim' ? 'a claim (mover.cache.storageClassName)' : 'an emptyDir'}: ` +
        `${out[`${kind}Cache`] && (out[`${kind}Cache`] as any).unchangedWallSecondsMedian} s wall (the mover's kopia snapshot create ${(out[`${kind}Cache`] as any).unchangedKopiaSnapshotCreateSecondsMedian} s); ` +
        `first backup ${first.wallSeconds} s; Job cache volume: ${again[0].cacheClaim ? `claim ${again[0].cacheClaim}` : 'emptyDir'}`,
    );
  }
  // Plain kopia, one client keeping its cache.
  await client.create(PersistentVolumeClaims, claimObject({ name: 'small-plain', namespace: ns }));
  const plain = new PlainKopia(bw.world.kopiaBinDir, BENCH_PASSWORD, { repository: await bw.volumeDir(ns, 'small-plain'), data: source });
  try {
    await plain.create();
    const create = () => plain.run('snapshot', 'create', PLAIN_MOUNTS.data, '--json', '--no-auto-maintenance');
    flush();
    const first = await create();
    const again = [];
    for (let n = 0; n < 2; n++) {
      flush();
      again.push(secs((await create()).ms));
    }
    out.plainKopia = { firstSeconds: secs(first.ms), unchangedSecondsMedian: round2(median(again)), unchanged: again };
    say(`re-backup of ${SMALL_FILES} unchanged files with plain kopia (cache kept): ${round2(median(again))} s; first ${secs(first.ms)} s`);
  } finally {
    plain.close();
  }
  out.target = 'an unchanged re-backup of 10,000 files takes seconds (cache kept between runs)';
  return out;
}

export async function benchBackups(opts: { big: boolean; rebackup: boolean }): Promise<{ backup?: unknown; rebackup?: unknown }> {
  const bw = await startBenchWorld('bench-backup');
  try {
    const watch = await BackupWatch.start(bw);
    return {
      backup: opts.big ? await benchBig(bw, watch) : undefined,
      rebackup: opts.rebackup ? await benchRebackup(bw, watch) : undefined,
    };
  } finally {
    await bw.stop();
  }
}
