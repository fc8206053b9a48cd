// make bench, footprint: what the two shipped processes hold in memory. Three views:
//  - imports: a process with the Deployment's node flags that loads what main.js in dist/
//    imports (its static imports, not its body; module by module, as before bundling) and
//    nothing else, then each runtime dependency alone: where the memory before any object goes;
//  - idle: the operator and the populator started against the test world, settled, before
//    any object of ours;
//  - loaded: the same two processes with BENCH_FOOTPRINT_CONFIGS (1000) BackupConfigs, each
//    with a BackupSchedule, converged and at rest.
// The processes run the script their Deployment names (dist/bundle/*.mjs, scripts/bundle.ts);
// BENCH_FOOTPRINT_UNBUNDLED=1 runs dist/'s main.js files instead, with the same flags.
// Numbers only: the targets (operator 100 MB, populator 80 MB resident when idle) are
// printed beside them, never asserted.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KopiaBackupConfigs, KopiaBackupSchedules, PersistentVolumeClaims } from '../operator/kube/resources.js';
import { claimObject } from '../e2e/support/objects.js';
import { repoRoot } from '../e2e/support/paths.js';
import { startGuarded } from '../e2e/support/processes.js';

import {
  createConfigsAndSchedules,
  startDeployedPopulator,
  deploymentNodeFlags,
  deploymentScript,
  isReady,
  readyRepository,
  say,
  secs,
  sleep,
  startBenchWorld,
  until,
  type Memory,
  type Obj,
} from './bench-support.js';

const TARGETS = { operatorIdleMB: 100, populatorIdleMB: 80 };
const PROCESSES = {
  operator: { unbundled: 'dist/operator/main.js', manifest: 'manifests/operator/deployment.yaml' },
  populator: { unbundled: 'dist/operator/populator/main.js', manifest: 'manifests/populator/deployment.yaml' },
} as const;
const UNBUNDLED = process.env.BENCH_FOOTPRINT_UNBUNDLED === '1';
const script = (name: keyof typeof PROCESSES) => (UNBUNDLED ? PROCESSES[name].unbundled : deploymentScript(PROCESSES[name].manifest));
/** How long a process is left alone before its idle memory is read (startup garbage collected). */
const SETTLE_MS = Number(process.env.BENCH_FOOTPRINT_SETTLE_MS ?? 15000);

interface ImportFootprint {
  rssMB: number;
  anonMB: number;
  fileMB: number;
  /** V8 heap in use after two full collections: what the loaded code itself holds. */
  heapMB: number;
}

const mb = (bytes: number) => Math.round(bytes / 1048576);

/** A fresh node (with `flags`) that imports `specifiers` and reports its memory. */
function importFootprint(flags: string[], specifiers: string[]): ImportFootprint {
  const program = `
    for (const s of ${JSON.stringify(specifiers)}) await import(s);
    globalThis.gc(); globalThis.gc();
    const { readFileSync } = await import('node:fs');
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (f) => Number(new RegExp(f + ':\\\\s+(\\\\d+) kB').exec(status)[1]);
    console.log(JSON.stringify({ rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), heap: process.memoryUsage().heapUsed }));`;
  const out = execFileSync(process.execPath, [...flags, '--expose-gc', '--input-type=module', '-e', program], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  const m = JSON.parse(out.trim().split('\n').pop()!) as { rss: number; anon: number; file: number; heap: number };
  return { rssMB: Math.round(m.rss / 1024), anonMB: Math.round(m.anon / 1024), fileMB: Math.round(m.file / 1024), heapMB: mb(m.heap) };
}

/** The modules an ES module file imports statically (side-effect and named imports, not `import type`, which tsc drops). */
function staticImports(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const specs = [...source.matchAll(/^import\s+(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)].map((m) => m[1]);
  return specs.map((s) => (s.startsWith('.') ? pathToFileURL(resolve(dirname(file), s)).href : s));
}

function importsOf(flags: Record<keyof typeof PROCESSES, string[]>) {
  const baseline = importFootprint(flags.operator, []);
  const processes = Object.fromEntries(
    (Object.keys(PROCESSES) as (keyof typeof PROCESSES)[]).map((name) => {
      const f = importFootprint(flags[name], staticImports(join(repoRoot, PROCESSES[name].unbundled)));
      say(`footprint: ${name}'s imports alone: ${f.rssMB} MB resident (${f.anonMB} anonymous), ${f.heapMB} MB V8 heap`);
      return [name, f];
    }),
  );
  // Each runtime dependency alone, above a bare node: which of them is big at import.
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const dependencies = Object.fromEntries(
    Object.keys(pkg.dependencies).map((dep) => {
      const f = importFootprint(flags.operator, [dep]);
      return [dep, { rssMB: f.rssMB - baseline.rssMB, heapMB: f.heapMB - baseline.heapMB }];
    }),
  );
  say(`footprint: node alone ${baseline.rssMB} MB; each dependency above that: ${JSON.stringify(dependencies)}`);
  return { nodeAlone: baseline, ...processes, dependenciesAboveNode: dependencies };
}

function processMemory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (f: string) => Math.round(Number(new RegExp(`${f}:\\s+(\\d+) kB`).exec(status)![1]) / 1024);
  return { rssMB: field('VmRSS'), peakMB: field('VmHWM'), anonMB: field('RssAnon'), fileMB: field('RssFile') };
}

export async function benchFootprint(): Promise<Record<string, unknown>> {
  const flags = {
    operator: deploymentNodeFlags(PROCESSES.operator.manifest),
    populator: deploymentNodeFlags(PROCESSES.populator.manifest),
  };
  const imports = importsOf(flags);

  const n = Number(process.env.BENCH_FOOTPRINT_CONFIGS ?? 1000);
  const scripts = { operator: script('operator'), populator: script('populator') };
  const bw = await startBenchWorld('bench-footprint', scripts.operator);
  let populator: ReturnType<typeof startGuarded> | undefined;
  try {
    const { client, ns } = bw;
    const started = await startDeployedPopulator(bw, {
      script: scripts.populator,
      logFile: join(bw.world.controlPlane.dir, 'logs/populator.log'),
      podName: 'bench-footprint-populator',
      logLevel: 'warn',
    });
    populator = started.process;
    const populatorPid = started.pid;
    const atStart = { operator: bw.idleMemory, populator: processMemory(populatorPid) };
    await sleep(SETTLE_MS);
    const idle = { operator: bw.memory(), populator: processMemory(populatorPid) };
    say(
      `footprint idle (${scripts.operator}, ${scripts.populator}): operator ${idle.operator.rssMB} MB resident (target: ${TARGETS.operatorIdleMB}), populator ${idle.populator.rssMB} MB (target: ${TARGETS.populatorIdleMB})`,
    );

    await readyRepository(bw, 'nas');
    await client.create(PersistentVolumeClaims, claimObject({ name: 'app-data', namespace: ns }));
    const cron = `0 ${(new Date().getUTCHours() + 12) % 24} * * *`; // no run falls into the benchmark
    const t0 = Date.now();
    await createConfigsAndSchedules(client, ns, n, cron);
    await until(
      `${n} configs Ready and ${n} schedules with a next time`,
      async () => {
        const configs = (await client.list<Obj>(KopiaBackupConfigs, ns)).items;
        const schedules = (await client.list<Obj>(KopiaBackupSchedules, ns)).items;
        return (
          configs.filter((c) => isReady(c) && c.status?.observedGeneration === c.metadata.generation).length === n &&
          schedules.filter((s) => s.status?.nextScheduleTime).length === n
        );
      },
      600000,
      1000,
    );
    const convergeSeconds = secs(Date.now() - t0);
    const rest = await bw.rest();
    const loaded = { operator: bw.memory(), populator: processMemory(populatorPid) };
    say(
      `footprint with ${n} BackupConfigs and schedules, at rest: operator ${loaded.operator.rssMB} MB resident (peak ${loaded.operator.peakMB}), populator ${loaded.populator.rssMB} MB (peak ${loaded.populator.peakMB})`,
    );
    return {
      scripts,
      nodeFlags: flags,
      imports,
      atStart: { ...atStart, note: 'the operator once ready, the populator once leading' },
      idle: { ...idle, settledSeconds: secs(SETTLE_MS) },
      loaded: { configs: n, schedules: n, convergeSeconds, restSeconds: rest.windowSeconds, apiWritesAtRest: rest.apiWrites, ...loaded },
      targets: { ...TARGETS, note: 'resident set (VmRSS) when idle; peak is VmHWM since start' },
    };
  } finally {
    await populator?.stop();
    await bw.stop();
  }
}
