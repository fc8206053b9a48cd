// `make run` as a user runs it: it stays up, starts the operator again when it dies, and
// on Ctrl-C (SIGINT to the terminal's whole process group) stops every process it started
// and removes its data directory. It brings its own control plane, not the shared one.
// It prints the metrics URL of the operator and of the populator, and both answer.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { metricNamesOf } from '../../operator/metrics/metric-catalog.js';
import { until } from '../support/cluster.js';
import { sampleValue } from '../support/metrics-text.js';
import { repoRoot } from '../support/paths.js';

/** Processes whose command line or environment mentions text (the run's data directory). */
function processesUsing(text: string): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmdline.includes(text) || environ.includes(text)) found.push({ pid: Number(entry), cmdline });
    } catch {
      // gone while we looked
    }
  }
  return found;
}

const operatorPids = (dir: string) =>
  processesUsing(dir)
    .filter((p) => p.cmdline.startsWith(process.execPath) && p.cmdline.includes('operator/main.ts'))
    .map((p) => p.pid);

it('stays up until Ctrl-C, restarts a dead operator, then leaves nothing behind', async () => {
  const run = spawn('make', ['run'], { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  run.stdout.on('data', (c) => (output += c));
  run.stderr.on('data', (c) => (output += c));
  const exited = new Promise<number | null>((r) => run.on('exit', (code) => r(code)));
  let dir = '';
  try {
    await until('make run to say it is running', async () => /running \(data in (\S+)\)/.test(output), 150000, 250);
    dir = /running \(data in (\S+)\)/.exec(output)![1];
    expect(output).toMatch(/Repository demo\/nas: Ready=True \(Verified\)/);
    for (const proc of ['operator', 'populator'] as const) {
      const url = new RegExp(`${proc} metrics: (http://\\S+/metrics)`).exec(output)?.[1];
      expect(url).toBeDefined();
      const res = await fetch(url!);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      expect(sampleValue(text, 'kopia_build_info')).toBe(1);
      expect(sampleValue(text, 'kopia_leader', { lease: `kopia-${proc}` })).toBe(1);
      for (const name of metricNamesOf(proc)) {
        expect(text).toContain(`# HELP ${name} `);
        expect(text).toContain(`# TYPE ${name} `);
      }
    }

    // Nothing keeps Node's event loop busy here: the run must stay up by itself.
    await new Promise((r) => setTimeout(r, 3000));
    expect(run.exitCode).toBeNull();

    const [first] = operatorPids(dir);
    expect(first).toBeDefined();
    process.kill(first, 'SIGKILL');
    await until('the operator to be started again', async () => operatorPids(dir).some((p) => p !== first), 30000, 250);
    expect(output).toMatch(/operator exited \(code \d+\); starting it again/);
  } finally {
    process.kill(-run.pid!, 'SIGINT'); // what Ctrl-C in a terminal does
  }
  await Promise.race([exited, new Promise((r) => setTimeout(r, 60000))]);
  expect(run.exitCode !== null || run.signalCode !== null).toBe(true); // make itself may end by the signal
  expect(output).toContain(`stopped; removed ${dir}`);
  expect(existsSync(dir)).toBe(false);
  expect(processesUsing(dir)).toEqual([]);
}, 240_000);
