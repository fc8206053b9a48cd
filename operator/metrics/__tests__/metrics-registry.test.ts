import { readFileSync } from 'node:fs';
import { METRICS, metricNamesOf, type Series } from '../metric-catalog.js';
import { createProcessMetrics, type MetricsProcess, type ProcessMetricsOptions } from '../metrics-registry.js';

const packageVersion = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function processMetrics(overrides: Partial<ProcessMetricsOptions> = {}) {
  return createProcessMetrics({ process: 'operator', lease: 'kopia-operator', isLeader: () => true, ...overrides });
}

/** The sample lines of one metric (not HELP/TYPE). */
function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

const ready = (name: string, value = 1): Series => ({
  name: 'kopia_backupconfig_ready',
  labels: { namespace: 'media', name, reason: 'Ready' },
  value,
});

describe('process metrics registry', () => {
  it.each<MetricsProcess>(['operator', 'populator'])('exports every catalogue metric of the %s with HELP and TYPE', async (proc) => {
    const text = await processMetrics({ process: proc }).metrics();
    for (const def of METRICS.filter((m) => metricNamesOf(proc).includes(m.name))) {
      expect(text).toContain(`# HELP ${def.name} ${def.help.replace(/\\/g, '\\\\')}\n`);
      expect(text).toContain(`# TYPE ${def.name} ${def.type}\n`);
    }
    const others = METRICS.filter((m) => !metricNamesOf(proc).includes(m.name));
    expect(others.length).toBeGreaterThan(0);
    for (const def of others) expect(text).not.toContain(`# TYPE ${def.name} `);
    // prom-client's process and Node metrics, on this registry.
    expect(text).toMatch(/^# TYPE process_cpu_seconds_total counter$/m);
    expect(text).toMatch(/^# TYPE nodejs_heap_size_used_bytes gauge$/m);
  });

  it('takes labels and buckets from the catalogue', async () => {
    const m = processMetrics();
    m.metric('kopia_reconcile_duration_seconds').observe({ kind: 'Restore' }, 0.003);
    const text = await m.metrics();
    expect(text).toContain('kopia_reconcile_duration_seconds_bucket{le="0.005",kind="Restore"} 1');
    expect(text).toContain('kopia_reconcile_duration_seconds_bucket{le="30",kind="Restore"} 1');
    expect(() => m.metric('kopia_reconcile_total').inc({ kind: 'Restore', verb: 'GET' } as never)).toThrow();
  });

  it('builds several registries in one process (tests make one per manager)', async () => {
    const a = processMetrics();
    const b = processMetrics({ process: 'populator', lease: 'kopia-populator' });
    a.metric('kopia_watch_restarts_total').inc({ resource: 'jobs' });
    expect(samples(await a.metrics(), 'kopia_watch_restarts_total')).toEqual(['kopia_watch_restarts_total{resource="jobs"} 1']);
    expect(samples(await b.metrics(), 'kopia_watch_restarts_total')).toEqual([]);
  });

  it('says the running version and whether this replica leads', async () => {
    let leading = false;
    const m = processMetrics({ isLeader: () => leading });
    expect(samples(await m.metrics(), 'kopia_build_info')).toEqual([`kopia_build_info{version="${packageVersion}"} 1`]);
    expect(samples(await m.metrics(), 'kopia_leader')).toEqual(['kopia_leader{lease="kopia-operator"} 0']);
    leading = true;
    expect(samples(await m.metrics(), 'kopia_leader')).toEqual(['kopia_leader{lease="kopia-operator"} 1']);
  });

  it('escapes quotes, backslashes and newlines in label values', async () => {
    const m = processMetrics();
    m.setObjectSeriesSource(() => [ready('say "hi"\\now\nthen')]);
    m.metric('kopia_restores_total').inc({ namespace: 'a"b', outcome: 'Failed', reason: 'back\\slash\nnewline' });
    const text = await m.metrics();
    expect(samples(text, 'kopia_backupconfig_ready')).toEqual([
      'kopia_backupconfig_ready{namespace="media",name="say \\"hi\\"\\\\now\\nthen",reason="Ready"} 1',
    ]);
    expect(samples(text, 'kopia_restores_total')).toEqual([
      'kopia_restores_total{namespace="a\\"b",outcome="Failed",reason="back\\\\slash\\nnewline"} 1',
    ]);
  });

  it('asks the object source once per scrape and exports only what it gives now', async () => {
    let current: Series[] = [ready('photos'), ready('music', 0)];
    let asked = 0;
    const m = processMetrics();
    m.setObjectSeriesSource(async () => {
      asked++;
      return current;
    });
    const first = await m.metrics();
    expect(asked).toBe(1);
    expect(samples(first, 'kopia_backupconfig_ready').sort()).toEqual([
      'kopia_backupconfig_ready{namespace="media",name="music",reason="Ready"} 0',
      'kopia_backupconfig_ready{namespace="media",name="photos",reason="Ready"} 1',
    ]);
    current = [ready('photos')]; // music was deleted
    const second = await m.metrics();
    expect(asked).toBe(2);
    expect(samples(second, 'kopia_backupconfig_ready')).toEqual([
      'kopia_backupconfig_ready{namespace="media",name="photos",reason="Ready"} 1',
    ]);
  });

  it('exports no object series on a replica that does not lead, nor before a source is set', async () => {
    let leading = true;
    const m = processMetrics({ isLeader: () => leading });
    expect(samples(await m.metrics(), 'kopia_backupconfig_ready')).toEqual([]);
    m.setObjectSeriesSource(() => [ready('photos')]);
    expect(samples(await m.metrics(), 'kopia_backupconfig_ready')).toHaveLength(1);
    leading = false;
    const text = await m.metrics();
    expect(samples(text, 'kopia_backupconfig_ready')).toEqual([]);
    expect(text).toContain('# TYPE kopia_backupconfig_ready gauge');
  });

  it('treats a series that is not an object gauge of the process as a programming error', async () => {
    const strict = processMetrics({ process: 'populator', lease: 'kopia-populator', strict: true });
    strict.setObjectSeriesSource(() => [ready('photos')]); // an operator metric
    await expect(strict.metrics()).rejects.toThrow(/kopia_backupconfig_ready is not an object gauge of the populator/);

    const runtimeName = processMetrics({ strict: true });
    runtimeName.setObjectSeriesSource(() => [{ name: 'kopia_leader', labels: { lease: 'x' }, value: 1 }]);
    await expect(runtimeName.metrics()).rejects.toThrow(/kopia_leader is not an object gauge/);

    const errors: unknown[] = [];
    const log = { error: (...args: unknown[]) => errors.push(args) } as never;
    const lenient = processMetrics({ strict: false, log });
    lenient.setObjectSeriesSource(() => [ready('photos'), { name: 'kopia_leader', labels: { lease: 'x' }, value: 1 }]);
    await lenient.metrics();
    const text = await lenient.metrics();
    expect(samples(text, 'kopia_backupconfig_ready')).toHaveLength(1);
    expect(errors).toHaveLength(1);
  });
});
