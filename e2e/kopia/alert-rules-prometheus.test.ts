// The alert rules in a real Prometheus scraping a real /metrics endpoint (a small HTTP
// server here serving what the operator exports), beside promtool's fixtures: the rule
// file loads, the jobs and honor_labels of the ServiceMonitors keep an object's namespace,
// and the repository-not-ready and backup-failing alerts go pending while the endpoint
// says so and disappear once it says otherwise. In the kopia tier: it needs built binaries.
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { freePort } from '../support/processes.js';
import { repoRoot } from '../support/paths.js';
import { startPrometheus, type PromAlert, type Prometheus } from '../support/prometheus.js';

const BROKEN = `# TYPE kopia_repository_ready gauge
kopia_repository_ready{kind="Repository",namespace="media",name="nas",reason="StorageUnreachable"} 0
# TYPE kopia_backupconfig_last_attempt_succeeded gauge
kopia_backupconfig_last_attempt_succeeded{namespace="media",name="jellyfin"} 0
# TYPE kopia_leader gauge
kopia_leader{lease="kopia-operator"} 1
`;
const HEALTHY = `# TYPE kopia_repository_ready gauge
kopia_repository_ready{kind="Repository",namespace="media",name="nas",reason="Verified"} 1
# TYPE kopia_backupconfig_last_attempt_succeeded gauge
kopia_backupconfig_last_attempt_succeeded{namespace="media",name="jellyfin"} 1
# TYPE kopia_leader gauge
kopia_leader{lease="kopia-operator"} 1
`;

let exposition = BROKEN;
let server: Server;
let prometheus: Prometheus;

beforeAll(async () => {
  const port = await freePort();
  server = createServer((req, res) => {
    res.writeHead(req.url === '/metrics' ? 200 : 404, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(req.url === '/metrics' ? exposition : '');
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  prometheus = await startPrometheus(
    // the target's namespace, as the ServiceMonitor's discovery attaches it
    [{ job: 'kopia-operator-metrics', address: `127.0.0.1:${port}`, labels: { namespace: 'kopia-system' } }],
    [join(repoRoot, 'manifests/monitoring/kopia-operator.rules.yaml')],
  );
}, 900_000); // a cold build of prometheus takes minutes

afterAll(async () => {
  await prometheus?.stop();
  server?.closeAllConnections(); // Prometheus' keep-alive scrapes
  await new Promise((r) => server?.close(r));
});

/** The alerts once `done` holds for them, polled for up to 30 s. */
async function alertsUntil(done: (alerts: PromAlert[]) => boolean): Promise<PromAlert[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const alerts = await prometheus.alerts();
    if (done(alerts) || Date.now() > deadline) return alerts;
    await new Promise((r) => setTimeout(r, 500));
  }
}
const named = (alerts: PromAlert[], name: string) => alerts.filter((a) => a.labels.alertname === name);
const summary = (alerts: PromAlert[]) =>
  alerts.map((a) => `${a.labels.alertname} ${a.state} ${a.labels.namespace ?? ''}/${a.labels.name ?? ''}`).sort();

it('loads every rule of the file', async () => {
  const groups = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as {
    data: { groups: { rules: { name: string; health: string }[] }[] };
  };
  const rules = groups.data.groups.flatMap((g) => g.rules);
  expect(rules.length).toBeGreaterThanOrEqual(16);
  expect(rules.filter((r) => r.health === 'err')).toEqual([]);
});

it('puts repository-not-ready and backup-failing in pending from the endpoint, and clears them when it recovers', async () => {
  exposition = BROKEN;
  // before the first scrape the target is absent: wait until that alert has gone too
  const broken = await alertsUntil(
    (a) =>
      named(a, 'KopiaRepositoryNotReady').length > 0 &&
      named(a, 'KopiaBackupFailing').length > 0 &&
      named(a, 'KopiaOperatorAbsent').length === 0,
  );
  expect(summary(broken)).toEqual(
    expect.arrayContaining(['KopiaBackupFailing pending media/jellyfin', 'KopiaRepositoryNotReady pending media/nas']),
  );
  // the object's namespace survived the scrape (honor_labels), and the job is the ServiceMonitor's
  expect(await prometheus.query('kopia_repository_ready')).toEqual([
    expect.objectContaining({ metric: expect.objectContaining({ namespace: 'media', job: 'kopia-operator-metrics' }) }),
  ]);
  expect(named(broken, 'KopiaOperatorAbsent')).toEqual([]);

  exposition = HEALTHY;
  const healthy = await alertsUntil((a) => named(a, 'KopiaRepositoryNotReady').length === 0 && named(a, 'KopiaBackupFailing').length === 0);
  expect(summary(healthy).filter((s) => /NotReady|BackupFailing/.test(s))).toEqual([]);
});
