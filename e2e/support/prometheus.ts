// A real Prometheus (built by scripts/build-test-binaries.sh prometheus) scraping given
// /metrics endpoints every second and evaluating rule files every second, for tests that
// check alert expressions against real endpoints rather than promtool fixtures. Jobs are
// named as the ServiceMonitors name them, with honor_labels as they set it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ensureTestBinaries } from './control-plane.js';
import { freePort, startGuarded } from './processes.js';

export interface ScrapeTarget {
  /** e.g. kopia-operator-metrics, kopia-populator-metrics */
  job: string;
  /** host:port serving /metrics */
  address: string;
  /** Target labels, as service discovery gives them (e.g. namespace: kopia-system). */
  labels?: Record<string, string>;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
}

export interface Prometheus {
  url: string;
  dir: string;
  /** An instant query's vector result. */
  query(expr: string): Promise<PromSample[]>;
  /** Pending and firing alerts. */
  alerts(): Promise<PromAlert[]>;
  stop(): Promise<void>;
}

async function api<T>(url: string): Promise<T> {
  const response = await fetch(url);
  const body = (await response.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${url}: ${body.error ?? response.status}`);
  return body.data;
}

export async function startPrometheus(targets: ScrapeTarget[], ruleFiles: string[]): Promise<Prometheus> {
  const bin = ensureTestBinaries(['prometheus']);
  const dir = mkdtempSync(join(tmpdir(), 'kopia-prometheus-'));
  const port = await freePort();
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: ruleFiles,
    scrape_configs: targets.map((t) => ({
      job_name: t.job,
      honor_labels: true,
      static_configs: [{ targets: [t.address], labels: t.labels ?? {} }],
    })),
  };
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
  const process = startGuarded(
    'prometheus',
    join(bin, 'prometheus'),
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    join(dir, 'prometheus.log'),
  );
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await process.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (process.child.exitCode !== null || Date.now() > deadline) {
      await process.stop(); // the directory stays, with the log
      throw new Error(`prometheus did not become ready (exit ${process.child.exitCode}); see ${join(dir, 'prometheus.log')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    dir,
    query: async (expr) => (await api<{ result: PromSample[] }>(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    alerts: async () => (await api<{ alerts: PromAlert[] }>(`${url}/api/v1/alerts`)).alerts,
    stop,
  };
}
