// Leader election on a real Lease: one holder at a time; a slow API server does not end the
// leader; an unreachable one ends it within renewDeadline, before a standby takes over; a
// skewed or stale renewTime is never trusted; release on stop hands over at once.
import { KubeConfig } from '@kubernetes/client-node';
import net from 'node:net';
import { KubeClient, resourcePath } from '../../operator/kube/kube-client.js';
import { Leases } from '../../operator/kube/resources.js';
import { LeaderElector, type LeaseRecord } from '../../operator/runtime/leader-election.js';
import { createLogger } from '../../operator/runtime/logger.js';
import { testClient, until, useTestNamespace } from '../support/cluster.js';

const t = useTestNamespace('lease');
const log = createLogger('test', process.env.LOG_LEVEL ?? 'error');

/**
 * A TCP relay in front of the API server: it can delay every chunk both ways, or stop
 * forwarding altogether (the API server becomes unreachable without refusing connections).
 */
class Relay {
  delayMs = 0;
  forwarding = true;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(target: URL): Promise<Relay> {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const relay = new Relay(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (downstream) => {
      const upstream = net.connect(Number(target.port), target.hostname);
      relay.pipe(downstream, upstream);
      relay.pipe(upstream, downstream);
    });
    return relay;
  }

  private pipe(from: net.Socket, to: net.Socket): void {
    this.sockets.add(from);
    from.on('data', (chunk) => {
      if (!this.forwarding) return;
      // One delay for every chunk keeps their order.
      setTimeout(() => to.destroyed || to.write(chunk), this.delayMs);
    });
    from.on('error', () => undefined);
    from.on('close', () => {
      this.sockets.delete(from);
      setTimeout(() => to.destroy(), this.delayMs);
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/** A client of the test API server that goes through relay. */
async function clientThrough(relay: Relay): Promise<KubeClient> {
  const kc = new KubeConfig();
  kc.loadFromFile(process.env.KOPIA_TEST_KUBECONFIG!);
  const current = kc.getCurrentCluster()!;
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.name === current.name ? { ...c, server: `https://127.0.0.1:${relay.port}` } : c)),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return KubeClient.fromKubeConfig(kc);
}

async function apiServerUrl(): Promise<URL> {
  const kc = new KubeConfig();
  kc.loadFromFile(process.env.KOPIA_TEST_KUBECONFIG!);
  return new URL(kc.getCurrentCluster()!.server);
}

const readLease = (name: string) => t.client.request<{ spec: LeaseRecord }>('GET', resourcePath(Leases, t.ns, name));

/** Polls the lease and records, by the test's clock, when its record changed and whom it named. */
function watchLease(name: string) {
  const seen = { changes: [] as { holder?: string; at: number }[], stopped: false };
  let last = '';
  void (async () => {
    while (!seen.stopped) {
      try {
        const { spec } = await readLease(name);
        const raw = JSON.stringify(spec);
        if (raw !== last) seen.changes.push({ holder: spec.holderIdentity, at: performance.now() });
        last = raw;
      } catch {
        // not created yet
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return {
    /** When the record last changed while it named holder. */
    lastChangeBy: (holder: string) => seen.changes.filter((c) => c.holder === holder).at(-1)?.at ?? Number.NaN,
    stop: () => (seen.stopped = true),
  };
}

it('lets one replica lead and another take over only after the leader stops renewing', async () => {
  const opts = { namespace: t.ns, name: 'takeover', leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200 };
  const first = new LeaderElector(t.client, { ...opts, identity: 'first' }, log);
  const second = new LeaderElector(t.client, { ...opts, identity: 'second' }, log);
  const lease = watchLease('takeover');
  let firstLost = false;
  await first.acquire(() => (firstLost = true));
  let secondLeads = false;
  const secondAcquired = second.acquire(() => undefined).then(() => (secondLeads = true));
  // Longer than the lease duration: only renewals keep the second out.
  await new Promise((r) => setTimeout(r, 3000));
  expect(secondLeads).toBe(false);
  await first.stop();
  const started = performance.now();
  await secondAcquired;
  const acquiredAt = performance.now();
  lease.stop();
  expect(acquiredAt - started).toBeLessThan(6000);
  // Not before a whole lease duration after the first's last renewal (a little slack for the test's polling).
  expect(acquiredAt - lease.lastChangeBy('first')).toBeGreaterThanOrEqual(opts.leaseDurationMs - 200);
  expect(firstLost).toBe(false);
  expect((await readLease('takeover')).spec).toMatchObject({ holderIdentity: 'second', leaseTransitions: 1 });
  await second.stop();
}, 30_000);

it('keeps leading through an API server slower than the retry period', async () => {
  const relay = await Relay.start(await apiServerUrl());
  const slowClient = await clientThrough(relay);
  const timings = { leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 250 };
  const leader = new LeaderElector(slowClient, { namespace: t.ns, name: 'slow', identity: 'leader', ...timings }, log);
  const standby = new LeaderElector(t.client, { namespace: t.ns, name: 'slow', identity: 'standby', ...timings }, log);
  try {
    let lost = false;
    await leader.acquire(() => (lost = true));
    let standbyLeads = false;
    void standby
      .acquire(() => undefined)
      .then(
        () => (standbyLeads = true),
        () => undefined,
      );
    // Every chunk waits longer than the retry period; a renewal (read, then write) stays within the deadline.
    relay.delayMs = 300;
    const putsBefore = slowClient.calls['PUT leases'] ?? 0;
    const slowFrom = performance.now();
    // Several renewals through the slow link, over more than a lease duration.
    await until(
      'renewals through the slow link over more than a lease duration',
      async () => (slowClient.calls['PUT leases'] ?? 0) >= putsBefore + 4 && performance.now() - slowFrom > timings.leaseDurationMs,
      20_000,
    );
    expect(lost).toBe(false);
    expect(leader.isLeader).toBe(true);
    expect(standbyLeads).toBe(false);
    expect((await readLease('slow')).spec.holderIdentity).toBe('leader');
  } finally {
    await standby.stop();
    await leader.stop();
    slowClient.close();
    await relay.close();
  }
}, 60_000);

it('stops leading within the renew deadline when the API server is unreachable, before the standby takes over', async () => {
  const relay = await Relay.start(await apiServerUrl());
  const cutOffClient = await clientThrough(relay);
  const timings = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 200 };
  const leader = new LeaderElector(cutOffClient, { namespace: t.ns, name: 'cut-off', identity: 'leader', ...timings }, log);
  const standby = new LeaderElector(t.client, { namespace: t.ns, name: 'cut-off', identity: 'standby', ...timings }, log);
  const lease = watchLease('cut-off');
  try {
    const events: string[] = [];
    let lostAt = 0;
    await leader.acquire(() => {
      lostAt = performance.now();
      events.push('leader lost');
    });
    const standbyAcquired = standby
      .acquire(() => undefined)
      .then(() => {
        events.push('standby acquired');
        return performance.now();
      });
    await until('the leader to renew', async () => (cutOffClient.calls['PUT leases'] ?? 0) >= 2);
    relay.forwarding = false;
    const cutAt = performance.now();
    const acquiredAt = await standbyAcquired;
    expect(events).toEqual(['leader lost', 'standby acquired']);
    // The last successful renewal started before the cut, so the deadline ran out at most renewDeadline after it.
    expect(lostAt - cutAt).toBeLessThanOrEqual(timings.renewDeadlineMs + 150);
    // The standby waited a whole lease duration (its own clock) after the leader's last write.
    expect(acquiredAt - lease.lastChangeBy('leader')).toBeGreaterThanOrEqual(timings.leaseDurationMs - 200);
    expect((await readLease('cut-off')).spec.holderIdentity).toBe('standby');
    expect(leader.isLeader).toBe(false);
  } finally {
    lease.stop();
    await standby.stop();
    await leader.stop();
    cutOffClient.close();
    await relay.close();
  }
}, 60_000);

it('does not take over a lease whose renewTime is long past until it has seen it unchanged for the lease duration', async () => {
  // Written by hand: a holder whose clock is far behind ours (or who died long ago).
  const longAgo = '2001-01-01T00:00:00.000000Z';
  await t.client.request('POST', resourcePath(Leases, t.ns), {
    body: {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'skewed', namespace: t.ns },
      spec: { holderIdentity: 'ghost', leaseDurationSeconds: 2, acquireTime: longAgo, renewTime: longAgo, leaseTransitions: 5 },
    },
  });
  const candidate = new LeaderElector(
    t.client,
    { namespace: t.ns, name: 'skewed', identity: 'candidate', leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 100 },
    log,
  );
  const started = performance.now();
  await candidate.acquire(() => undefined);
  // The record's own duration (2 s) counts, from the candidate's first read, not from renewTime.
  expect(performance.now() - started).toBeGreaterThanOrEqual(2000);
  expect((await readLease('skewed')).spec).toMatchObject({ holderIdentity: 'candidate', leaseTransitions: 6 });
  await candidate.stop();
}, 30_000);

it('hands the lease to a standby at once when the leader releases it on stop', async () => {
  const timings = { leaseDurationMs: 10_000, renewDeadlineMs: 8000, retryPeriodMs: 200 };
  const standbyClient = await testClient();
  const leader = new LeaderElector(t.client, { namespace: t.ns, name: 'release', identity: 'leader', ...timings }, log);
  const standby = new LeaderElector(standbyClient, { namespace: t.ns, name: 'release', identity: 'standby', ...timings }, log);
  let leaderLost = false;
  await leader.acquire(() => (leaderLost = true));
  const standbyAcquired = standby.acquire(() => undefined);
  // The standby has seen the leader's record, so without a release it would wait a lease duration.
  await until('the standby to read the lease', async () => (standbyClient.calls['GET leases'] ?? 0) >= 2);
  const stoppedAt = performance.now();
  await leader.stop({ release: true });
  await standbyAcquired;
  expect(performance.now() - stoppedAt).toBeLessThan(timings.leaseDurationMs / 4);
  expect(leaderLost).toBe(false);
  expect((await readLease('release')).spec).toMatchObject({ holderIdentity: 'standby', leaseTransitions: 1 });
  await standby.stop();
  standbyClient.close();
}, 30_000);
