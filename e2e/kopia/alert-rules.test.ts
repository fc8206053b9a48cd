// The alert rules (manifests/monitoring/kopia-operator.rules.yaml, the same groups as the
// PrometheusRule) through promtool built from its Go module: `promtool check rules` accepts
// them and `promtool test rules` passes every test file in manifests/monitoring/tests/.
// Each alert must have a case where it fires and one where it does not. No skip: without
// promtool (a failed build) beforeAll throws and every test here fails. In the kopia tier
// because it needs a built binary.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { ensureTestBinaries } from '../support/control-plane.js';
import { repoRoot } from '../support/paths.js';

const run = promisify(execFile);
const monitoring = join(repoRoot, 'manifests/monitoring');
const ruleFile = join(monitoring, 'kopia-operator.rules.yaml');
let promtool: string;

beforeAll(() => {
  promtool = join(ensureTestBinaries(['prometheus']), 'promtool');
  if (!existsSync(promtool)) throw new Error(`promtool is missing at ${promtool}: scripts/build-test-binaries.sh prometheus`);
}, 900_000); // a cold build of prometheus and promtool takes minutes

interface RuleGroups {
  groups: { name: string; rules: { alert?: string; expr: string }[] }[];
}
interface PromtoolTests {
  rule_files: string[];
  tests: { alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] }[] }[];
}

const alertNames = () => (parse(readFileSync(ruleFile, 'utf8')) as RuleGroups).groups.flatMap((g) => g.rules.map((r) => r.alert!));
const testFiles = (dir: string) =>
  readdirSync(join(dir, 'tests'))
    .filter((f) => f.endsWith('.test.yaml'))
    .map((f) => join(dir, 'tests', f));

/** promtool's exit status and output; a non-zero exit is a result here, not a throw. */
async function promtoolRun(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(promtool, args, { maxBuffer: 16 << 20 });
    return { code: 0, output: stdout + stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

it('promtool check rules accepts the rule file, every rule counted', async () => {
  const { code, output } = await promtoolRun('check', 'rules', ruleFile);
  expect(output).toContain(`SUCCESS: ${alertNames().length} rules found`);
  expect(code).toBe(0);
});

it('promtool test rules passes every test file', async () => {
  const files = testFiles(monitoring);
  expect(files.length).toBeGreaterThanOrEqual(5);
  const { code, output } = await promtoolRun('test', 'rules', ...files);
  expect(output).not.toContain('FAILED');
  expect(code).toBe(0);
  expect(output.match(/SUCCESS/g)).toHaveLength(files.length);
});

it('tests every alert firing, not firing, and resolving after it fired, against the rule file itself', () => {
  const fires = new Set<string>();
  const quiet = new Set<string>();
  const resolves = new Set<string>();
  const minutes = (t: string) => Number(/^(\d+)m$/.exec(t)?.[1] ?? NaN);
  for (const file of testFiles(monitoring)) {
    const spec = parse(readFileSync(file, 'utf8')) as PromtoolTests;
    expect(spec.rule_files).toEqual(['../kopia-operator.rules.yaml']);
    for (const t of spec.tests) {
      const checks = t.alert_rule_test ?? [];
      for (const check of checks) (check.exp_alerts?.length ? fires : quiet).add(check.alertname);
      // resolving: in one series of inputs, quiet at a time after it fired
      for (const firing of checks.filter((c) => c.exp_alerts?.length))
        if (
          checks.some((c) => c.alertname === firing.alertname && !c.exp_alerts?.length && minutes(c.eval_time) > minutes(firing.eval_time))
        )
          resolves.add(firing.alertname);
    }
  }
  const alerts = alertNames().sort();
  expect([...fires].sort()).toEqual(alerts);
  expect([...quiet].sort()).toEqual(alerts);
  expect([...resolves].sort()).toEqual(alerts);
});

it('fails when a rule is broken (the tests can fail): no max by across a leader change, a shorter for', async () => {
  const copy = mkdtempSync(join(tmpdir(), 'kopia-alert-rules-'));
  try {
    cpSync(monitoring, copy, { recursive: true });
    const rules = readFileSync(ruleFile, 'utf8');
    const broken = rules
      .replace(
        'max by (namespace, name) (kopia_backupconfig_last_success_timestamp_seconds)',
        'kopia_backupconfig_last_success_timestamp_seconds',
      )
      .replace(/(alert: KopiaRepositoryNotReady[\s\S]*?)for: 15m/, '$1for: 1m');
    expect(broken).not.toBe(rules);
    writeFileSync(join(copy, 'kopia-operator.rules.yaml'), broken);
    const { code, output } = await promtoolRun('test', 'rules', ...testFiles(copy));
    expect(code).not.toBe(0);
    expect(output).toMatch(/rule: KopiaBackupStale, time: .*many-to-one matching must be explicit/);
    expect(output).toMatch(/alertname: KopiaRepositoryNotReady, time: 38m/);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
