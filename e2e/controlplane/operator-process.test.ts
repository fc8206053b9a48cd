// Two replicas of the real operator process (as the Deployment runs them): both become Ready
// once their caches are synced while exactly one holds the lease; SIGTERM to the leader
// releases the lease, so the other takes over at once rather than after the lease duration.
// Their /metrics are prom-client's exposition of the metric catalogue.
import { join } from 'node:path';
import { resourcePath } from '../../operator/kube/kube-client.js';
import { KopiaRepositories, Leases } from '../../operator/kube/resources.js';
import { metricNamesOf } from '../../operator/metrics/metric-catalog.js';
import type { LeaseRecord } from '../../operator/runtime/leader-election.js';
import { until, useTestNamespace } from '../support/cluster.js';
import { scrapeMetrics, sampleValue } from '../support/metrics-text.js';
import { repositoryObject } from '../support/objects.js';
import { repoRoot, tsNode } from '../support/paths.js';
import { freePort, startGuarded, type GuardedProcess } from '../support/processes.js';

const t = useTestNamespace('replicas');
const LEASE_DURATION_SECONDS = 15;

interface Replica {
  name: string;
  port: number;
  process: GuardedProcess;
}

async function startReplica(name: string): Promise<Replica> {
  const port = await freePort();
  const [node, ...args] = tsNode();
  const process_ = startGuarded(
    `operator-${name}`,
    node,
    [...args, join(repoRoot, 'operator/main.ts')],
    join(process.env.KOPIA_TEST_DIR!, 'logs', `operator-${t.ns}-${name}.log`),
    {
      ...process.env,
      KUBECONFIG: process.env.KOPIA_TEST_KUBECONFIG!,
      POD_NAMESPACE: t.ns,
      POD_NAME: name,
      HEALTH_PORT: String(port),
      INTAKE_PORT: '0', // two replicas on one host: each its own catalog intake port
      MOVER_IMAGE: 'kopia-operator:test',
      // A long lease: a quick takeover can then only come from the release.
      LEADER_ELECTION_LEASE_DURATION: String(LEASE_DURATION_SECONDS),
      LEADER_ELECTION_RENEW_DEADLINE: '10',
      LEADER_ELECTION_RETRY_PERIOD: '0.5',
    },
  );
  return { name, port, process: process_ };
}

/** The HTTP status of a replica's endpoint; 0 while it does not listen yet. */
const status = (r: Replica, path: string) =>
  fetch(`http://127.0.0.1:${r.port}${path}`).then(
    (res) => res.status,
    () => 0,
  );
const scrape = (r: Replica) => scrapeMetrics(r.port);
const sample = sampleValue;
const leading = async (r: Replica) =>
  /kopia_leader\{lease="kopia-operator"\} 1/.test(await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text());
const leaseHolder = async () =>
  (await t.client.request<{ spec: LeaseRecord }>('GET', resourcePath(Leases, t.ns, 'kopia-operator'))).spec.holderIdentity;

let replicas: Replica[] = [];
afterAll(async () => {
  await Promise.all(replicas.map((r) => r.process.stop()));
});

it('makes both replicas Ready while one leads, and hands over at once on SIGTERM', async () => {
  replicas = await Promise.all([startReplica('replica-a'), startReplica('replica-b')]);
  await until(
    'both replicas to answer /readyz 200',
    async () => (await Promise.all(replicas.map((r) => status(r, '/readyz')))).every((s) => s === 200),
    90_000,
    200,
  );
  await until('a replica to hold the lease', async () => !!(await leaseHolder()));
  const holder = await leaseHolder();
  const leader = replicas.find((r) => r.name === holder)!;
  const standby = replicas.find((r) => r.name !== holder)!;
  expect(leader).toBeDefined();
  expect(await leading(leader)).toBe(true);
  expect(await leading(standby)).toBe(false);
  // The leader's own metrics: every catalogue name with HELP and TYPE, its reconciles and API requests.
  await t.client.create(KopiaRepositories, repositoryObject({ name: 'watched', namespace: t.ns }));
  await until('the leader to count a Repository reconcile', async () => {
    const text = await scrape(leader);
    return sample(text, 'kopia_reconcile_total', { kind: 'Repository' }) !== undefined;
  });
  const text = await scrape(leader);
  for (const name of metricNamesOf('operator')) {
    expect(text).toContain(`# HELP ${name} `);
    expect(text).toContain(`# TYPE ${name} `);
  }
  expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
  expect(sample(text, 'kopia_leader', { lease: 'kopia-operator' })).toBe(1);
  expect(sample(text, 'kopia_build_info', {})).toBe(1);
  // The lease taken: created (201) by the first leader, or updated (200) by a later one.
  const leaseWrites =
    (sample(text, 'kopia_api_requests_total', { verb: 'POST', resource: 'leases', code: '201' }) ?? 0) +
    (sample(text, 'kopia_api_requests_total', { verb: 'PUT', resource: 'leases', code: '200' }) ?? 0);
  expect(leaseWrites).toBeGreaterThanOrEqual(1);
  expect(sample(text, 'kopia_api_requests_total', { verb: 'WATCH', resource: 'repositories', code: '200' })).toBeGreaterThanOrEqual(1);
  expect(sample(text, 'kopia_reconcile_duration_seconds_count', { kind: 'Repository' })).toBeGreaterThanOrEqual(1);
  expect(sample(await scrape(standby), 'kopia_leader', { lease: 'kopia-operator' })).toBe(0);
  expect(sample(await scrape(standby), 'kopia_reconcile_total', { kind: 'Repository' })).toBeUndefined();

  // The standby is Ready (caches synced) though it does not lead; both are alive.
  expect(await status(standby, '/readyz')).toBe(200);
  expect(await status(leader, '/readyz')).toBe(200);
  expect(await status(standby, '/healthz')).toBe(200);

  const stoppedAt = performance.now();
  await leader.process.stop(); // SIGTERM through the guard
  expect(await leader.process.exited).toBe(0);
  await until('the standby to hold the lease', async () => (await leaseHolder()) === standby.name, 20_000, 100);
  expect(performance.now() - stoppedAt).toBeLessThan((LEASE_DURATION_SECONDS * 1000) / 3);
  await until('the standby to report leading', () => leading(standby));
  expect(await status(standby, '/readyz')).toBe(200);
}, 180_000);
