import { jest } from '@jest/globals';
import type { KubeClient } from '../../kube/kube-client.js';
import { ApiError } from '../../kube/kube-client.js';
import {
  DEFAULT_TIMINGS,
  holderRecord,
  LeaderElector,
  mayAcquire,
  observe,
  releasedRecord,
  resolveTimings,
  type LeaseRecord,
} from '../leader-election.js';
import { createLogger } from '../logger.js';

describe('leader election timings', () => {
  it("defaults to client-go's 15 s lease, 10 s renew deadline and 2 s retry period", () => {
    expect(resolveTimings()).toEqual({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
    expect(resolveTimings({ retryPeriodMs: 500 })).toEqual({ ...DEFAULT_TIMINGS, retryPeriodMs: 500 });
  });

  it('requires leaseDuration > renewDeadline > retryPeriod × 1.2', () => {
    expect(() => resolveTimings({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(/leaseDuration must be greater/);
    expect(() => resolveTimings({ leaseDurationMs: 3_000, renewDeadlineMs: 4_000, retryPeriodMs: 100 })).toThrow(
      /leaseDuration must be greater/,
    );
    expect(() => resolveTimings({ renewDeadlineMs: 2_400, retryPeriodMs: 2_000 })).toThrow(/renewDeadline must be greater/);
    expect(() => resolveTimings({ retryPeriodMs: 0 })).toThrow(/retryPeriodMs must be a positive/);
    expect(() => resolveTimings({ leaseDurationMs: Number.NaN })).toThrow(/leaseDurationMs must be a positive/);
    expect(resolveTimings({ leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 1_000 }).renewDeadlineMs).toBe(1_500);
  });

  it('rejects bad options when an elector is built, before any request', () => {
    let requests = 0;
    const client = { request: async () => requests++ } as unknown as KubeClient;
    expect(() => new LeaderElector(client, { namespace: 'ns', name: 'l', renewDeadlineMs: 20_000 }, createLogger('t', 'error'))).toThrow(
      /leaseDuration must be greater/,
    );
    expect(requests).toBe(0);
  });
});

describe('leader election takeover decision', () => {
  const ghost: LeaseRecord = {
    holderIdentity: 'ghost',
    leaseDurationSeconds: 15,
    // Far in the past by our wall clock: a skewed clock or a dead holder; we cannot tell, so we wait.
    renewTime: '2001-01-01T00:00:00.000000Z',
    acquireTime: '2001-01-01T00:00:00.000000Z',
    leaseTransitions: 3,
  };

  it('takes a lease that names nobody or names itself at once', () => {
    expect(mayAcquire(observe(undefined, {}, 100), 'me', 100, 15)).toBe(true);
    expect(mayAcquire(observe(undefined, { ...ghost, holderIdentity: '' }, 100), 'me', 100, 15)).toBe(true);
    expect(mayAcquire(observe(undefined, { ...ghost, holderIdentity: 'me' }, 100), 'me', 100, 15)).toBe(true);
  });

  it("waits a full lease duration of local time after first seeing another holder's record, whatever its renewTime says", () => {
    const first = observe(undefined, ghost, 1_000);
    expect(mayAcquire(first, 'me', 1_000, 15)).toBe(false);
    // The same record read again later: still the first observation's time.
    const again = observe(first, { ...ghost }, 14_000);
    expect(again.observedAtMs).toBe(1_000);
    expect(mayAcquire(again, 'me', 15_999, 15)).toBe(false);
    expect(mayAcquire(again, 'me', 16_000, 15)).toBe(true);
  });

  it('restarts the wait whenever the record changes (the holder renewed)', () => {
    let seen = observe(undefined, ghost, 0);
    seen = observe(seen, { ...ghost, renewTime: '2001-01-01T00:00:10.000000Z' }, 10_000);
    expect(seen.observedAtMs).toBe(10_000);
    expect(mayAcquire(seen, 'me', 20_000, 15)).toBe(false);
    expect(mayAcquire(seen, 'me', 25_000, 15)).toBe(true);
  });

  it("uses the record's lease duration, and ours when the record has none", () => {
    const short = observe(undefined, { ...ghost, leaseDurationSeconds: 2 }, 0);
    expect(mayAcquire(short, 'me', 1_999, 15)).toBe(false);
    expect(mayAcquire(short, 'me', 2_000, 15)).toBe(true);
    const unset = observe(undefined, { ...ghost, leaseDurationSeconds: undefined }, 0);
    expect(mayAcquire(unset, 'me', 14_999, 15)).toBe(false);
    expect(mayAcquire(unset, 'me', 15_000, 15)).toBe(true);
  });
});

describe('lease records', () => {
  const now = new Date('2026-01-01T00:00:30.000Z');

  it('counts a transition on takeover and keeps acquireTime and the count on renewal', () => {
    const created = holderRecord(undefined, 'me', now, 15);
    expect(created).toEqual({
      holderIdentity: 'me',
      leaseDurationSeconds: 15,
      acquireTime: '2026-01-01T00:00:30.000000Z',
      renewTime: '2026-01-01T00:00:30.000000Z',
      leaseTransitions: 0,
    });
    const renewed = holderRecord(created, 'me', new Date('2026-01-01T00:00:32.000Z'), 15);
    expect(renewed).toMatchObject({ acquireTime: created.acquireTime, renewTime: '2026-01-01T00:00:32.000000Z', leaseTransitions: 0 });
    const taken = holderRecord(renewed, 'other', new Date('2026-01-01T00:01:00.000Z'), 15);
    expect(taken).toMatchObject({ holderIdentity: 'other', acquireTime: '2026-01-01T00:01:00.000000Z', leaseTransitions: 1 });
  });

  it('releases with no holder and a 1 s duration, keeping the transition count, so a standby takes it at once', () => {
    const released = releasedRecord({ holderIdentity: 'me', leaseDurationSeconds: 15, leaseTransitions: 4 }, now);
    expect(released).toEqual({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: '2026-01-01T00:00:30.000000Z',
      renewTime: '2026-01-01T00:00:30.000000Z',
      leaseTransitions: 4,
    });
    expect(mayAcquire(observe(undefined, released, 0), 'standby', 0, 15)).toBe(true);
    expect(holderRecord(released, 'standby', now, 15).leaseTransitions).toBe(5);
  });
});

/** An API server holding one Lease, with optimistic concurrency and a configurable response delay. */
class FakeLeaseServer {
  lease?: { metadata: Record<string, unknown>; spec: LeaseRecord };
  private version = 0;
  inFlight = 0;
  maxInFlight = 0;
  gets = 0;
  puts = 0;
  delayMs = 0;
  /** When (local time) each write landed, and whom it named. */
  readonly writes: { at: number; holder?: string }[] = [];

  readonly client = {
    request: (method: string, _path: string, opts: { body?: unknown } = {}) => this.handle(method, opts.body),
  } as unknown as KubeClient;

  private async handle(method: string, body: unknown): Promise<unknown> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, this.delayMs));
      const obj = structuredClone(body) as { metadata: Record<string, unknown>; spec: LeaseRecord };
      if (method === 'GET') {
        this.gets++;
        if (!this.lease) throw new ApiError(404, 'NotFound', 'not found');
        return structuredClone(this.lease);
      }
      if (method === 'POST') {
        if (this.lease) throw new ApiError(409, 'AlreadyExists', 'exists');
        return this.store(obj);
      }
      this.puts++;
      if (obj.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) throw new ApiError(409, 'Conflict', 'modified');
      return this.store(obj);
    } finally {
      this.inFlight--;
    }
  }

  /** Another client's write: the record changes and, as with every write, so does the resourceVersion. */
  writeBehindOurBack(spec: LeaseRecord): void {
    this.store({ metadata: { ...this.lease!.metadata }, spec });
  }

  private store(obj: { metadata: Record<string, unknown>; spec: LeaseRecord }) {
    this.lease = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.version) } };
    this.writes.push({ at: performance.now(), holder: obj.spec.holderIdentity });
    return structuredClone(this.lease);
  }
}

describe('leader elector renewals', () => {
  const log = Object.assign(createLogger('test', 'error'), { silent: true });

  /** A leader and a standby campaigning for the same Lease of the fake server. */
  const leaderAndStandby = (server: FakeLeaseServer) =>
    (['leader', 'standby'] as const).map((identity) => new LeaderElector(server.client, { namespace: 'ns', name: 'l', identity }, log));

  /** Stops the electors while simulated time runs (their requests are slow), then goes back to real timers. */
  async function stopOnSimulatedTime(electors: LeaderElector[], advanceMs: number): Promise<void> {
    const stopped = Promise.all(electors.map((e) => e.stop()));
    await jest.advanceTimersByTimeAsync(advanceMs);
    await stopped;
    jest.useRealTimers();
  }
  const until = async (what: string, check: () => boolean, timeoutMs = 5_000) => {
    const deadline = performance.now() + timeoutMs;
    while (!check()) {
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('keeps one attempt in flight on a slow API server and keeps leading', async () => {
    const server = new FakeLeaseServer();
    const elector = new LeaderElector(
      server.client,
      { namespace: 'ns', name: 'l', identity: 'me', leaseDurationMs: 2_000, renewDeadlineMs: 1_000, retryPeriodMs: 50 },
      log,
    );
    let lost = 0;
    await elector.acquire(() => lost++);
    server.delayMs = 120; // each request is slower than the retry period
    await until('four renewals', () => server.puts >= 4);
    await elector.stop();
    expect(server.maxInFlight).toBe(1);
    expect(lost).toBe(0);
    expect(server.lease?.spec.holderIdentity).toBe('me');
  });

  // The defaults keep the lease while one request takes less than renewDeadline / 2.
  it.each([2_100, 4_500])(
    'keeps leading with the default timings when every request takes %i ms, and the standby never takes over',
    async (delayMs) => {
      // Virtual time: two simulated minutes in a moment. performance.now() is faked too.
      jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
      const server = new FakeLeaseServer();
      server.delayMs = delayMs;
      const [leader, standby] = leaderAndStandby(server);
      try {
        let lost = 0;
        const leading = leader.acquire(() => lost++);
        await jest.advanceTimersByTimeAsync(2 * delayMs + 1);
        await leading;
        let standbyLeads = false;
        void standby
          .acquire(() => undefined)
          .then(
            () => (standbyLeads = true),
            () => undefined,
          );
        const from = performance.now();
        await jest.advanceTimersByTimeAsync(120_000);
        expect(lost).toBe(0);
        expect(leader.isLeader).toBe(true);
        expect(standbyLeads).toBe(false);
        const renewals = server.writes.filter((w) => w.at > from);
        expect(renewals.every((w) => w.holder === 'leader')).toBe(true);
        // One PUT per renewal, one after the other: a renewal lands every retry period or request, whichever is longer.
        expect(renewals.length).toBeGreaterThanOrEqual(120_000 / Math.max(DEFAULT_TIMINGS.retryPeriodMs, delayMs) - 1);
        const gaps = renewals.map((w, i) => w.at - (renewals[i - 1]?.at ?? from));
        expect(Math.max(...gaps)).toBeLessThanOrEqual(2 * server.delayMs);
      } finally {
        await stopOnSimulatedTime([standby, leader], 10_000);
      }
    },
  );

  it('stops leading, before the standby takes over, when every request takes more than renewDeadline / 2', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const server = new FakeLeaseServer();
    server.delayMs = 5_500;
    const [leader, standby] = leaderAndStandby(server);
    const events: string[] = [];
    try {
      const leading = leader.acquire(() => events.push('leader lost'));
      await jest.advanceTimersByTimeAsync(2 * server.delayMs + 1);
      await leading;
      const standbyLeads = standby.acquire(() => undefined).then(() => events.push('standby acquired'));
      await jest.advanceTimersByTimeAsync(60_000);
      await standbyLeads;
      expect(events).toEqual(['leader lost', 'standby acquired']);
      // A renewal the leader gave up on still landed; the standby waited a lease duration after it.
      const leaderWrites = server.writes.filter((w) => w.holder === 'leader');
      const standbyWrite = server.writes.find((w) => w.holder === 'standby')!;
      expect(standbyWrite.at - leaderWrites.at(-1)!.at).toBeGreaterThanOrEqual(DEFAULT_TIMINGS.leaseDurationMs);
    } finally {
      await stopOnSimulatedTime([standby, leader], 20_000);
    }
  });

  it('renews with one PUT over its last write, and reads the lease only after a conflict', async () => {
    const server = new FakeLeaseServer();
    const elector = new LeaderElector(
      server.client,
      { namespace: 'ns', name: 'l', identity: 'me', leaseDurationMs: 2_000, renewDeadlineMs: 1_000, retryPeriodMs: 20 },
      log,
    );
    let lost = 0;
    await elector.acquire(() => lost++);
    try {
      const getsWhenLeading = server.gets;
      await until('five renewals', () => server.puts >= 5);
      expect(server.gets).toBe(getsWhenLeading);
      // Another client writes the object (the record still names us): our next PUT conflicts.
      server.writeBehindOurBack({ ...server.lease!.spec });
      const putsBefore = server.puts;
      await until('two more renewals', () => server.puts >= putsBefore + 3);
      expect(server.gets).toBe(getsWhenLeading + 1);
      expect(lost).toBe(0);
      expect(server.lease?.spec.holderIdentity).toBe('me');
    } finally {
      await elector.stop();
    }
  });

  it('treats a conflict as a failed attempt and retries instead of giving up the lease', async () => {
    const server = new FakeLeaseServer();
    const elector = new LeaderElector(
      server.client,
      { namespace: 'ns', name: 'l', identity: 'me', leaseDurationMs: 2_000, renewDeadlineMs: 1_000, retryPeriodMs: 20 },
      log,
    );
    let lost = 0;
    await elector.acquire(() => lost++);
    // Someone touches the object between our read and our write, once: our PUT gets a 409.
    const handle = (server as unknown as { handle: (m: string, b: unknown) => Promise<unknown> }).handle.bind(server);
    let conflicts = 0;
    (server.client as unknown as { request: unknown }).request = async (method: string, _p: string, opts: { body?: unknown } = {}) => {
      if (method === 'PUT' && conflicts === 0) {
        conflicts++;
        throw new ApiError(409, 'Conflict', 'the object has been modified');
      }
      return handle(method, opts.body);
    };
    const putsBefore = server.puts;
    await until(
      'two renewals after the conflict, or the end of leading',
      () => lost > 0 || (conflicts === 1 && server.puts >= putsBefore + 2),
    );
    await elector.stop();
    expect(lost).toBe(0);
    expect(server.lease?.spec.holderIdentity).toBe('me');
  });

  it('gives up leading once it has failed to renew for the renew deadline, before the lease duration', async () => {
    const server = new FakeLeaseServer();
    const timings = { leaseDurationMs: 2_000, renewDeadlineMs: 600, retryPeriodMs: 50 };
    const elector = new LeaderElector(server.client, { namespace: 'ns', name: 'l', identity: 'me', ...timings }, log);
    let lostAt = 0;
    await elector.acquire(() => (lostAt = performance.now()));
    await until('a renewal', () => server.puts >= 1);
    // From now on the API server never answers.
    const unreachableFrom = performance.now();
    (server.client as unknown as { request: unknown }).request = () => new Promise(() => undefined);
    await until('onLost', () => lostAt > 0, 2 * timings.leaseDurationMs);
    expect(lostAt - unreachableFrom).toBeLessThan(timings.renewDeadlineMs + 100);
    expect(lostAt - unreachableFrom).toBeGreaterThan(timings.renewDeadlineMs - timings.retryPeriodMs - 100);
    expect(elector.isLeader).toBe(false);
  });

  it('gives up at once when the lease read back names another holder', async () => {
    const server = new FakeLeaseServer();
    const elector = new LeaderElector(
      server.client,
      { namespace: 'ns', name: 'l', identity: 'me', leaseDurationMs: 5_000, renewDeadlineMs: 4_000, retryPeriodMs: 20 },
      log,
    );
    let lostAt = 0;
    await elector.acquire(() => (lostAt = performance.now()));
    const takenAt = performance.now();
    server.writeBehindOurBack({ ...server.lease!.spec, holderIdentity: 'usurper' });
    await until('onLost', () => lostAt > 0);
    expect(lostAt - takenAt).toBeLessThan(500);
    await elector.stop();
  });
});

describe('leader elector stop', () => {
  const log = Object.assign(createLogger('test', 'error'), { silent: true });
  const timings = { leaseDurationMs: 5_000, renewDeadlineMs: 4_000, retryPeriodMs: 20 };

  it('releases the lease (no holder) when asked, and leaves it named otherwise', async () => {
    const released = new FakeLeaseServer();
    const leader = new LeaderElector(released.client, { namespace: 'ns', name: 'l', identity: 'me', ...timings }, log);
    await leader.acquire(() => undefined);
    await leader.stop({ release: true });
    expect(released.lease?.spec).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 });

    const kept = new FakeLeaseServer();
    const other = new LeaderElector(kept.client, { namespace: 'ns', name: 'l', identity: 'me', ...timings }, log);
    await other.acquire(() => undefined);
    await other.stop();
    expect(kept.lease?.spec.holderIdentity).toBe('me');
  });

  it('does not release a lease another holder has taken', async () => {
    const server = new FakeLeaseServer();
    // A long retry period: the leader is between renewals, so only the release reads the change.
    const leader = new LeaderElector(server.client, { namespace: 'ns', name: 'l', identity: 'me', ...timings, retryPeriodMs: 1_000 }, log);
    await leader.acquire(() => undefined);
    expect(leader.isLeader).toBe(true);
    server.writeBehindOurBack({ ...server.lease!.spec, holderIdentity: 'successor' });
    const putsBefore = server.puts;
    await leader.stop({ release: true });
    expect(server.lease?.spec.holderIdentity).toBe('successor');
    expect(server.puts).toBe(putsBefore);
  });

  it('makes a pending acquire reject', async () => {
    const server = new FakeLeaseServer();
    server.lease = {
      metadata: { resourceVersion: '1' },
      spec: { holderIdentity: 'other', leaseDurationSeconds: 5, renewTime: new Date().toISOString() },
    };
    const candidate = new LeaderElector(server.client, { namespace: 'ns', name: 'l', identity: 'me', ...timings }, log);
    const acquired = candidate.acquire(() => undefined);
    await candidate.stop({ release: true });
    await expect(acquired).rejects.toThrow(/stopped/);
    expect(server.lease?.spec.holderIdentity).toBe('other');
  });
});
