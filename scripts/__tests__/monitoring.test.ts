// The monitoring files users install (manifests/monitoring/): the Grafana dashboard is valid
// JSON whose queries, like the alert rules', name only metrics the operator exports (the
// catalogue, operator/metrics/metric-catalog.ts) or Prometheus' and prom-client's own; the
// PrometheusRule is the rule file's groups; the README documents exactly the catalogue.
// promtool runs the rules in e2e/kopia/alert-rules.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { METRICS } from '../../operator/metrics/metric-catalog.js';
import { dashboardExpressions, isKnownMetric, metricNamesIn, unknownMetrics } from '../monitoring-names.js';
import { prometheusRuleFile, renderPrometheusRule, ruleFile } from '../generate-monitoring.js';

const root = join(import.meta.dirname, '../..');
const monitoring = join(root, 'manifests/monitoring');
const read = (path: string) => readFileSync(path, 'utf8');

interface Panel {
  type: string;
  id?: number;
  title?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: { expr?: string }[];
  panels?: Panel[];
}
interface Rules {
  groups: {
    name: string;
    rules: { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: Record<string, string> }[];
  }[];
}

const dashboardText = () => read(join(monitoring, 'grafana-dashboard.json'));
const rules = () => parse(read(ruleFile)) as Rules;
const alerts = () => rules().groups.flatMap((g) => g.rules);

describe('metricNamesIn', () => {
  it('reads the metric names, not functions, aggregations, labels, keywords, durations or variables', () => {
    expect(
      metricNamesIn(
        'sum by (namespace) (rate(a_total{job="x", le=~"1|2"}[5m])) / on (name) group_left (kind) b offset 1h > 1e3 ' +
          'and count_over_time(c[30d:1h]) unless max(d) without (pod) or label_replace(e, "dst", "$1", "src", "(.*)") ' +
          '* histogram_quantile(0.9, f_bucket[$__rate_interval]) > bool 2',
      ),
    ).toEqual(['a_total', 'b', 'c', 'd', 'e', 'f_bucket']);
  });

  it('knows the catalogue, histogram series, up, ALERTS, process_* and nodejs_*; nothing else', () => {
    for (const name of ['kopia_backupconfig_ready', 'kopia_reconcile_duration_seconds_bucket', 'kopia_population_duration_seconds_count'])
      expect(isKnownMetric(name)).toBe(true);
    for (const name of ['up', 'ALERTS', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds'])
      expect(isKnownMetric(name)).toBe(true);
    // a gauge has no _bucket series; near-misses of catalogue names are unknown
    for (const name of ['kopia_backupconfig_ready_bucket', 'kopia_backupconfig_last_success_seconds', 'kube_pod_info', 'upp'])
      expect(isKnownMetric(name)).toBe(false);
  });
});

describe('grafana-dashboard.json', () => {
  it('is valid JSON: a dashboard with a uid, unique panel ids and a Prometheus query in every panel', () => {
    const dashboard = JSON.parse(dashboardText()) as {
      uid: string;
      title: string;
      panels: Panel[];
      templating: { list: { name: string }[] };
    };
    expect(dashboard.uid).toBe('kopia-operator');
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace']);
    const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels.filter((p) => p.type !== 'row')) {
      expect(p.title).toBeTruthy();
      expect(p.targets?.length).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.expr).toMatch(/\w/);
      expect(p.gridPos!.x + p.gridPos!.w).toBeLessThanOrEqual(24);
    }
    const titles = panels.map((p) => p.title);
    for (const wanted of [
      'Protected configs',
      'Last successful backup age',
      'Consecutive failures',
      'Restore outcomes',
      'Snapshots per repository',
      'Index blobs',
    ])
      expect(titles).toContain(wanted);
  });

  it('queries only metrics the operator exports (or up, ALERTS, process_*, nodejs_*)', () => {
    const exprs = dashboardExpressions(JSON.parse(dashboardText()));
    expect(exprs.length).toBeGreaterThan(40);
    expect(unknownMetrics(exprs)).toEqual([]);
    // the check looked at real names: most of the catalogue is on the dashboard
    const used = new Set(exprs.flatMap(metricNamesIn));
    expect(METRICS.filter((m) => [m.name, `${m.name}_bucket`].some((n) => used.has(n))).length).toBeGreaterThan(METRICS.length * 0.8);
  });

  it('fails on a dashboard naming metrics the operator does not export (fixture)', () => {
    const fixture = JSON.parse(read(join(import.meta.dirname, 'fixtures/dashboard-unknown-metric.json')));
    expect(unknownMetrics(dashboardExpressions(fixture)).map((u) => u.name)).toEqual([
      'kopia_restore_failed_total',
      'kopia_backupconfig_last_success_seconds',
    ]);
  });
});

describe('alert rules', () => {
  it('query only metrics the operator exports (or up, ALERTS, process_*, nodejs_*)', () => {
    const exprs = alerts().map((r) => r.expr);
    expect(exprs.length).toBeGreaterThanOrEqual(16);
    expect(unknownMetrics(exprs)).toEqual([]);
    expect(unknownMetrics([`${exprs[0]} or kopia_backup_failures_total`])).toEqual([
      { name: 'kopia_backup_failures_total', expr: expect.any(String) },
    ]);
  });

  it('each carry a severity, a summary and a description naming the object', () => {
    for (const r of alerts()) {
      expect(['warning', 'critical']).toContain(r.labels.severity);
      expect(Object.keys(r.annotations).sort()).toEqual(['description', 'summary']);
      if (/\bname\b/.test(r.expr)) expect(r.annotations.description).toContain('{{ $labels.name }}');
    }
  });

  it('the PrometheusRule carries exactly the rule file’s groups (scripts/generate-monitoring.ts, make chart)', async () => {
    expect(read(prometheusRuleFile)).toBe(await renderPrometheusRule(read(ruleFile)));
    const prometheusRule = parse(read(prometheusRuleFile)) as { kind: string; spec: Rules };
    expect(prometheusRule.kind).toBe('PrometheusRule');
    expect(prometheusRule.spec.groups).toEqual(rules().groups);
  });
});

describe('service-monitors.yaml', () => {
  /* eslint-disable @typescript-eslint/no-explicit-any -- manifests are read structurally */
  it('scrapes both metrics Services and keeps the metrics’ own namespace label (honorLabels)', () => {
    // Prometheus gives every scraped series its target's namespace (kopia-system); without
    // honorLabels an object's namespace label would become exported_namespace and every
    // per-object alert would name kopia-system.
    const monitors = parseAllDocuments(read(join(monitoring, 'service-monitors.yaml'))).map((d) => d.toJS() as any);
    const services = ['operator', 'populator'].map((c) => parse(read(join(root, `manifests/${c}/metrics-service.yaml`))) as any);
    expect(monitors.map((m) => m.kind)).toEqual(['ServiceMonitor', 'ServiceMonitor']);
    for (const [i, service] of services.entries()) {
      const monitor = monitors[i];
      expect(monitor.metadata.namespace).toBe(service.metadata.namespace);
      expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
      expect(monitor.spec.endpoints).toEqual([{ port: service.spec.ports[0].name, path: '/metrics', interval: '30s', honorLabels: true }]);
    }
  });
});

describe('README "Observability"', () => {
  const section = () => {
    const readme = read(join(root, 'README.md'));
    const start = readme.indexOf('\n## Observability\n');
    expect(start).toBeGreaterThan(0);
    const end = readme.indexOf('\n## ', start + 1);
    return readme.slice(start, end < 0 ? undefined : end);
  };

  it('lists exactly the catalogue’s metrics, each with its type and labels', () => {
    const rows = [...section().matchAll(/^\| `(kopia_\w+)` +\| (\w+) +\| ([^|]*)\|/gm)].map((m) => ({
      name: m[1],
      type: m[2],
      labels: m[3].trim(),
    }));
    expect(rows.map((r) => r.name).sort()).toEqual(METRICS.map((m) => m.name).sort());
    for (const m of METRICS) {
      const row = rows.find((r) => r.name === m.name)!;
      expect(row.type).toBe(m.type);
      expect(row.labels).toBe(m.labels.map((l) => `\`${l}\``).join(', '));
    }
  });

  it('names every alert of the rule file', () => {
    const text = section();
    for (const r of alerts()) expect(text).toContain(`\`${r.alert}\``);
  });
});
