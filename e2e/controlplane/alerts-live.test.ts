// Issue 17's "done when", in the `make run` world as a user sees it: after the demo backup
// the operator's /metrics carries the demo config's last success time; taking the
// repository's storage away (its files moved off the volume, as a NAS that went offline)
// makes the repository-not-ready and backup-failing alert expressions true in a real
// Prometheus scraping both processes, and bringing it back clears them. The expressions
// are read from the shipped rule file, so this checks what users install, not a copy.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { KubeClient, type KubeObject } from '../../operator/kube/kube-client.js';
import { KopiaBackups, KopiaRepositories, PersistentVolumeClaims, PersistentVolumes } from '../../operator/kube/resources.js';
import { until } from '../support/cluster.js';
import { sampleValue } from '../support/metrics-text.js';
import { repoRoot } from '../support/paths.js';
import { startPrometheus, type Prometheus } from '../support/prometheus.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = KubeObject & { spec?: any; status?: any };

const RULE_FILE = join(repoRoot, 'manifests/monitoring/kopia-operator.rules.yaml');

/** The expression of the shipped alert with this name. */
function alertExpr(name: string): string {
  const groups = (parse(readFileSync(RULE_FILE, 'utf8')) as { groups: { rules: { alert?: string; expr: string }[] }[] }).groups;
  const rule = groups.flatMap((g) => g.rules).find((r) => r.alert === name);
  if (!rule) throw new Error(`no alert ${name} in ${RULE_FILE}`);
  return rule.expr;
}

async function backupTo(client: KubeClient, name: string): Promise<Obj> {
  await client.create(KopiaBackups, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace: 'demo' },
    spec: { configRef: { name: 'app' } },
  } as Obj);
  let backup: Obj | undefined;
  await until(
    `Backup demo/${name} to finish`,
    async () => ['Succeeded', 'Failed'].includes((backup = await client.get<Obj>(KopiaBackups, 'demo', name)).status?.phase),
    180_000,
    500,
  );
  return backup!;
}

it('the demo config’s last success is in /metrics; storage away fires the repository and backup alerts, and they clear', async () => {
  const notReady = alertExpr('KopiaRepositoryNotReady');
  const failing = alertExpr('KopiaBackupFailing');
  const run = spawn('make', ['run'], { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  run.stdout.on('data', (c) => (output += c));
  run.stderr.on('data', (c) => (output += c));
  const exited = new Promise<void>((r) => run.on('exit', () => r()));
  let prometheus: Prometheus | undefined;
  let client: KubeClient | undefined;
  try {
    await until('make run to say it is running', async () => /running \(data in (\S+)\)/.test(output), 240_000, 250);
    const operatorMetrics = /operator metrics: (http:\/\/\S+\/metrics)/.exec(output)?.[1];
    const populatorMetrics = /populator metrics: (http:\/\/\S+\/metrics)/.exec(output)?.[1];
    expect(operatorMetrics).toBeDefined();
    expect(populatorMetrics).toBeDefined();
    client = await KubeClient.fromFile(/export KUBECONFIG=(\S+)/.exec(output)![1]);

    // The demo backup's completion time, as the operator exports it.
    const first = await client.get<Obj>(KopiaBackups, 'demo', 'app-first');
    expect(first.status.phase).toBe('Succeeded');
    const exported = sampleValue(await (await fetch(operatorMetrics!)).text(), 'kopia_backupconfig_last_success_timestamp_seconds', {
      namespace: 'demo',
      name: 'app',
    });
    expect(exported).toBeGreaterThanOrEqual(Math.floor(Date.parse(first.status.completionTime) / 1000));

    prometheus = await startPrometheus(
      [
        { job: 'kopia-operator-metrics', address: new URL(operatorMetrics!).host, labels: { namespace: 'kopia-system' } },
        { job: 'kopia-populator-metrics', address: new URL(populatorMetrics!).host, labels: { namespace: 'kopia-system' } },
      ],
      [RULE_FILE],
    );
    const p = prometheus;
    await until('Prometheus to scrape both processes', async () => (await p.query('up == 1')).length === 2, 60_000, 500);
    await until(
      'the demo config in Prometheus',
      async () => (await p.query('kopia_backupconfig_last_success_timestamp_seconds')).length > 0,
      60_000,
      500,
    );
    expect(await p.query(notReady)).toEqual([]);
    expect(await p.query(failing)).toEqual([]);

    // The storage goes away: the repository's files leave the volume.
    const pvc = await client.get<Obj>(PersistentVolumeClaims, 'demo', 'kopia-nas');
    const storage = (await client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path as string;
    const away = `${storage}.offline`;
    mkdirSync(away);
    for (const entry of readdirSync(storage)) renameSync(join(storage, entry), join(away, entry));

    const failed = await backupTo(client, 'app-during-outage');
    expect(failed.status.phase).toBe('Failed');
    // Verification every 10s from now on (a spec edit also starts one at once).
    await client.patch(KopiaRepositories, 'demo', 'nas', { spec: { verifyInterval: '10s' } }, 'merge');
    await until(
      'the repository-not-ready and backup-failing expressions to be true',
      async () =>
        (await p.query(notReady)).some((s) => s.metric.name === 'nas') && (await p.query(failing)).some((s) => s.metric.name === 'app'),
      120_000,
      1000,
    );

    // It comes back: the same files, the same repository.
    for (const entry of readdirSync(away)) renameSync(join(away, entry), join(storage, entry));
    await until(
      'the repository to be Ready again',
      async () =>
        (await client!.get<Obj>(KopiaRepositories, 'demo', 'nas')).status?.conditions?.some(
          (c: any) => c.type === 'Ready' && c.status === 'True',
        ),
      120_000,
      1000,
    );
    const recovered = await backupTo(client, 'app-after-outage');
    expect(recovered.status.phase).toBe('Succeeded');
    await until(
      'both expressions to clear by themselves',
      async () => (await p.query(notReady)).length === 0 && (await p.query(failing)).length === 0,
      60_000,
      1000,
    );
  } finally {
    client?.close();
    await prometheus?.stop();
    process.kill(-run.pid!, 'SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 60_000))]);
  }
}, 720_000);
