// make bench: measures the operator against the design's targets (its section 5) and
// writes the numbers to bench/results/latest.json. Targets are printed beside the numbers,
// never asserted: benchmarks measure, tests assert. Each group runs in a test world of its
// own (control plane, CRDs, node agent) with the compiled operator as its own process.
//
//   BENCH_ONLY=catalog,deletions make bench   runs only those (results merged into latest.json)
//
// Groups: validation, maintenance, metrics, repositories, schedules, catalog, deletions, backup, rebackup, populator, footprint.
// Sizes: BENCH_REPOSITORIES (20), BENCH_SCHEDULES (1000), BENCH_CATALOG_SOURCES (500) ×
// BENCH_CATALOG_ROUNDS (20), then a mirror-only run of BENCH_CATALOG_LARGE_ROUNDS (60: 30,000), BENCH_DELETIONS (1000), BENCH_BACKUP_MB (1024),
// BENCH_BACKUP_RUNS (3), BENCH_SMALL_FILES (10000), BENCH_POPULATOR_SINGLE (3) one-claim runs,
// BENCH_POPULATOR_CLAIMS (20) claims at once; BENCH_FOOTPRINT_CONFIGS (1000) BackupConfigs and schedules beside
// the idle operator and populator; BENCH_METRICS_CONFIGS (500) × BENCH_METRICS_BACKUPS (60) for one scrape's
// BackupConfig series; BENCH_REST_MS (30000) for windows at rest.
// BENCH_KEEP_LOGS=<dir> keeps the populator group's process logs (the world's directory goes).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { KopiaRepositories, PersistentVolumeClaims, Secrets } from '../operator/kube/resources.js';
import { createValidator } from '../operator/validation/validator.js';
import { validObjects } from '../operator/test-support/kopia-objects.js';
import { claimObject, secretObject } from '../e2e/support/objects.js';
import { repoRoot } from '../e2e/support/paths.js';
import { isReady, say, secs, sleep, startBenchWorld, until, type Obj } from './bench-support.js';
import { benchCatalog, benchSchedules } from './bench-scale.js';
import { benchBackups } from './bench-backups.js';
import { benchPopulator } from './bench-populator.js';
import { benchMaintenancePlan } from './bench-maintenance.js';
import { benchFootprint } from './bench-footprint.js';
import { benchMetricsScrape } from './bench-metrics.js';

const GROUPS = [
  'validation',
  'maintenance',
  'metrics',
  'repositories',
  'schedules',
  'catalog',
  'deletions',
  'backup',
  'rebackup',
  'populator',
  'footprint',
] as const;
type Group = (typeof GROUPS)[number];
const only = process.env.BENCH_ONLY?.split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const g of only ?? [])
  if (!GROUPS.includes(g as Group)) throw new Error(`BENCH_ONLY: unknown group ${g} (groups: ${GROUPS.join(', ')})`);
const wants = (g: Group) => !only || only.includes(g);

const REPOSITORIES = Number(process.env.BENCH_REPOSITORIES ?? 20);
const LARGE_CATALOG_ROUNDS = Number(process.env.BENCH_CATALOG_LARGE_ROUNDS ?? 60);
const resultsFile = join(repoRoot, 'bench/results/latest.json');
// A partial run keeps the other groups' last numbers.
const results: Record<string, unknown> = only && existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : {};
const git = (...args: string[]) => execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8' }).trim();
// dist/ is built from the working tree: say whether it differed from the commit.
const commit = `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', 'operator', 'generated') ? ' + uncommitted changes' : ''}`;
Object.assign(results, { date: new Date().toISOString(), commit, node: process.version, cores: cpus().length, only: only ?? 'all' });

// On a shared machine a test run beside the benchmark would skew both: wait for it to end
// (up to BENCH_WAIT_FOR_TESTS_S, 1800), and record which groups had one at work beside them.
// A jest process tree counts when it used more than a fifth of a core over 5 s (one
// waiting idle does not skew anything).
function jestCpuSeconds(): number {
  const procs = new Map<number, { ppid: number; cpu: number; jest: boolean }>();
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const jest = readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('jest/bin/jest.js');
      procs.set(Number(entry), { ppid: Number(f[1]), cpu: Number(f[11]) + Number(f[12]), jest });
    } catch {
      // ended while we looked
    }
  }
  const underJest = (pid: number): boolean => {
    for (let p = procs.get(pid), depth = 0; p && depth < 50; p = procs.get(p.ppid), depth++) if (p.jest) return true;
    return false;
  };
  let ticks = 0;
  for (const [pid, p] of procs) if (underJest(pid)) ticks += p.cpu;
  return ticks / 100;
}
let lastJestCpu = { at: Date.now(), cpu: jestCpuSeconds(), busy: false };
const jestBusy = () => {
  const now = { at: Date.now(), cpu: jestCpuSeconds() };
  if (now.at - lastJestCpu.at < 2000) return lastJestCpu.busy;
  // A tree that ended drops out of the sum: a negative difference is no work.
  const busy = (now.cpu - lastJestCpu.cpu) / ((now.at - lastJestCpu.at) / 1000) > 0.2;
  lastJestCpu = { ...now, busy };
  return busy;
};
const contention: Record<string, boolean> = {};
let testsSeen = false;
setInterval(() => (testsSeen ||= jestBusy()), 5000).unref();

async function group(name: Group, run: () => Promise<void> | void): Promise<void> {
  if (!wants(name)) return;
  const deadline = Date.now() + Number(process.env.BENCH_WAIT_FOR_TESTS_S ?? 1800) * 1000;
  let said = false;
  for (;;) {
    await sleep(5000);
    if (!jestBusy() || Date.now() > deadline) break;
    if (!said) say(`a jest run is at work: waiting for it to end before ${name}`);
    said = true;
  }
  testsSeen = false;
  await run();
  contention[name] = testsSeen;
  results.testRunBeside = { ...(results.testRunBeside as object), ...contention };
  if (testsSeen) say(`note: a jest run was at work beside ${name}: its numbers are skewed`);
  save();
}

function save(): void {
  mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
}

function benchValidation(): void {
  const validator = createValidator();
  const objects = Object.values(validObjects).map((f) => f());
  const n = 20000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) validator.validate(objects[i % objects.length]);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  results.validation = { objects: n, ms: Math.round(ms), perSecond: Math.round((n / ms) * 1000) };
  say(`offline validation: ${Math.round((n / ms) * 1000)} objects/s`);
}

/** Repositories created and verified, then at rest. */
async function benchRepositories(): Promise<void> {
  const bw = await startBenchWorld('bench');
  try {
    const { client, ns } = bw;
    results.controlPlaneStartSeconds = bw.startSeconds;
    say(`test world (control plane, CRDs, node agent) up in ${bw.startSeconds} s (target: warm start under 15 s)`);
    await client.create(Secrets, secretObject({ name: 'pw', namespace: ns, stringData: { KOPIA_PASSWORD: 'bench password' } }));
    // One claim per repository: a filesystem path that does not exist is Unreachable, and
    // the operator never creates storage locations it was not told to.
    for (let i = 0; i < REPOSITORIES; i++) {
      await client.create(PersistentVolumeClaims, claimObject({ name: `repo-${i}`, namespace: ns }));
    }
    const t = Date.now();
    for (let i = 0; i < REPOSITORIES; i++) {
      await client.create(KopiaRepositories, {
        apiVersion: 'kopia.io/v1alpha1',
        kind: 'Repository',
        metadata: { name: `r${i}`, namespace: ns },
        spec: {
          backend: { filesystem: { path: '/', volume: { persistentVolumeClaim: { claimName: `repo-${i}` } } } },
          passwordSecretRef: { name: 'pw', key: 'KOPIA_PASSWORD' },
          create: { enabled: true },
        },
      } as Obj);
    }
    const readyCount = async () => (await client.list<Obj>(KopiaRepositories, ns)).items.filter(isReady).length;
    await until(`${REPOSITORIES} repositories Ready`, async () => (await readyCount()) === REPOSITORIES, 600000, 500);
    results.repositoriesVerified = {
      count: REPOSITORIES,
      seconds: secs(Date.now() - t),
      note: 'each verification is a Job running the mover and kopia create/connect/status',
    };
    say(`${REPOSITORIES} filesystem repositories created and verified in ${secs(Date.now() - t)} s`);

    const rest = await bw.rest();
    results.atRest = {
      windowSeconds: rest.windowSeconds,
      apiWrites: rest.apiWrites,
      leaseRenewals: rest.leaseRenewals,
      apiRequests: rest.apiRequests,
      target: 'zero writes per minute at rest (leader-election renewals counted apart)',
    };
    say(
      `at rest for ${rest.windowSeconds} s: ${rest.apiWrites} API writes besides ${rest.leaseRenewals} Lease renewals; ${rest.apiRequests} requests in all (target: 0 writes)`,
    );
    const { rssMB } = bw.memory();
    results.operatorMemory = { rssMB, repositories: REPOSITORIES, target: 'operator resident memory under 150 MB' };
    say(`operator resident memory: ${rssMB} MB (target: under 150 MB)`);
  } finally {
    await bw.stop();
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  await group('validation', benchValidation);
  await group('maintenance', () => void (results.maintenancePlan = benchMaintenancePlan()));
  await group('metrics', () => void (results.metricsScrape = benchMetricsScrape()));
  await group('repositories', benchRepositories);
  await group('schedules', async () => void (results.schedules = await benchSchedules()));
  // The deletions use the catalog's 10,000 snapshots.
  if (wants('deletions') && !wants('catalog')) only!.push('catalog');
  await group('catalog', async () => {
    const r = await benchCatalog({ deletions: wants('deletions') });
    results.catalog = r.catalog;
    if (r.deletions) results.deletions = r.deletions;
    // Beside it, three times as many: the mirror's time and the operator's peak must not grow toward its limit.
    const large = await benchCatalog({ deletions: false, rounds: LARGE_CATALOG_ROUNDS, mirrorOnly: true });
    results.catalogLarge = large.catalog;
  });
  await group('backup', async () => {
    const r = await benchBackups({ big: true, rebackup: wants('rebackup') });
    results.backup = r.backup;
    if (r.rebackup) results.rebackup = r.rebackup;
  });
  if (!wants('backup'))
    await group('rebackup', async () => void (results.rebackup = (await benchBackups({ big: false, rebackup: true })).rebackup));
  await group('populator', async () => void (results.populator = await benchPopulator()));
  // BENCH_FOOTPRINT_UNBUNDLED=1 measures dist/'s main.js files instead of the shipped bundles, apart.
  const footprintKey = process.env.BENCH_FOOTPRINT_UNBUNDLED === '1' ? 'footprintUnbundled' : 'footprint';
  await group('footprint', async () => void (results[footprintKey] = await benchFootprint()));
  say(`results written to bench/results/latest.json (${secs(Date.now() - started)} s in all)`);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(`[bench] failed: ${e.stack ?? e.message}`);
    process.exit(1);
  },
);
