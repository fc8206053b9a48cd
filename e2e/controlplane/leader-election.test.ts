// Leader election on a real Lease: one holder at a time; a slow API server (1, 2 and 4 s per
// request, default timings) does not end the leader, and a standby takes over once it is
// killed; an unreachable one ends it within renewDeadline, before a standby takes over; a
// skewed or stale renewTime is never trusted; release on stop hands over at once.
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, resourcePath } from '../../operator/kube/kube-client.js';
import { Leases } from '../../operator/kube/resources.js';
import { DEFAULT_TIMINGS, LeaderElector, type LeaseRecord } from '../../operator/runtime/leader-election.js';
import { createLogger } from '../../operator/runtime/logger.js';
import { testClient, until, useTestNamespace } from '../support/cluster.js';
import { startRelay, type FreezableRelay } from '../support/tcp-proxy.js';

const t = useTestNamespace('lease');
const log = createLogger('test', process.env.LOG_LEVEL ?? 'error');

/** A client of the test API server that goes through relay. */
async function clientThrough(relay: FreezableRelay): Promise<KubeClient> {
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

/** A relay in front of the test API server. */
async function relayToApiServer(): Promise<FreezableRelay> {
  const kc = new KubeConfig();
  kc.loadFromFile(process.env.KOPIA_TEST_KUBECONFIG!);
  const server = new URL(kc.getCurrentCluster()!.server);
  return startRelay({ host: server.hostname, port: Number(server.port) });
}

/** promise, or an error after ms (so that a test that hangs still stops what it started). */
const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref()),
  ]);

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
    /** Every change seen, in order. */
    changes: seen.changes,
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
  const relay = await relayToApiServer();
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
    // Every round trip is slower than the retry period, and a renewal stays within the deadline.
    relay.setDelay(600);
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

// The default timings (lease 15 s, renew deadline 10 s, retry 2 s) behind an API server whose
// every round trip is slowed: one renewal is one PUT, so requests of up to renewDeadline / 2
// keep the lease. Both electors go through the slow link; the test watches the Lease directly.
describe.each([1000, 2000, 4000])('with an API server answering every request %i ms late', (delayMs) => {
  it('keeps one leader without a lease loss, and a standby takes over once the leader is killed', async () => {
    const { leaseDurationMs, retryPeriodMs } = DEFAULT_TIMINGS;
    const relay = await relayToApiServer();
    relay.setDelay(delayMs);
    const leaderClient = await clientThrough(relay);
    const standbyClient = await clientThrough(relay);
    const name = `slow-${delayMs}`;
    const leader = new LeaderElector(leaderClient, { namespace: t.ns, name, identity: 'leader' }, log);
    const standby = new LeaderElector(standbyClient, { namespace: t.ns, name, identity: 'standby' }, log);
    const lease = watchLease(name);
    const lost: string[] = [];
    let bothLeading = 0;
    const sampler = setInterval(() => (bothLeading += leader.isLeader && standby.isLeader ? 1 : 0), 20);
    try {
      await within(
        leader.acquire(() => lost.push('leader')),
        20_000,
        'the leader to acquire',
      );
      const acquiredAt = performance.now();
      const standbyAcquired = standby.acquire(() => lost.push('standby')).then(() => performance.now());
      let standbyLeads = false;
      void standbyAcquired.then(() => (standbyLeads = true));
      // Longer than the lease duration after the standby's first read (a TLS handshake and a
      // GET through the slow link): only renewals keep it out.
      const holdMs = 2 * delayMs + leaseDurationMs + 2 * retryPeriodMs;
      await new Promise((r) => setTimeout(r, holdMs));
      expect(lost).toEqual([]);
      expect(leader.isLeader).toBe(true);
      expect(standbyLeads).toBe(false);
      const renewals = lease.changes.filter((c) => c.at > acquiredAt);
      expect(renewals.map((c) => c.holder)).toEqual(renewals.map(() => 'leader'));
      // One renewal per retry period or per round trip, whichever is longer (minus the edges).
      expect(renewals.length).toBeGreaterThanOrEqual(Math.floor(holdMs / Math.max(retryPeriodMs, delayMs)) - 2);

      // Killed: no release, no more renewals (a write already on its way still lands).
      await leader.stop();
      const killedAt = performance.now();
      const standbyAt = await within(standbyAcquired, 60_000, 'the standby to take over');
      const lastLeaderWrite = lease.lastChangeBy('leader');
      // The standby waited a whole lease duration (its clock) after the leader's last write.
      expect(standbyAt - lastLeaderWrite).toBeGreaterThanOrEqual(leaseDurationMs - 200);
      // ...and not much more: seeing that write, one more read a lease duration later, a write.
      expect(standbyAt - lastLeaderWrite).toBeLessThan(leaseDurationMs + 2 * retryPeriodMs + 4 * delayMs + 1000);
      expect((await readLease(name)).spec.holderIdentity).toBe('standby');
      expect(lost).toEqual([]);
      expect(bothLeading).toBe(0);
      console.log(
        `leader election at ${delayMs} ms per request: ${renewals.length} renewals in ${Math.round(holdMs / 1000)} s; ` +
          `standby took over ${Math.round(standbyAt - killedAt)} ms after the kill, ` +
          `${Math.round(standbyAt - lastLeaderWrite)} ms after the leader's last write`,
      );
    } finally {
      clearInterval(sampler);
      lease.stop();
      await standby.stop();
      await leader.stop();
      leaderClient.close();
      standbyClient.close();
      await relay.close();
    }
  }, 120_000);
});

it('stops leading within the renew deadline when the API server is unreachable, before the standby takes over', async () => {
  const relay = await relayToApiServer();
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
    relay.freezeOpenConnections();
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
