// Leader election on a coordination.k8s.io Lease, so only one replica reconciles, with the
// semantics of client-go's leaderelection:
// - the leader renews in a loop, one attempt in flight at a time, each starting retryPeriod
//   after the previous one started (or when it ends, if it took longer); a renewal is one
//   PUT of the object we last wrote (its resourceVersion), read again only after a conflict,
//   so a slow API server costs one request per renewal, not two;
// - the leader gives up leading once renewDeadline has passed since the start of its last
//   successful renewal (see renewUntilLost for why the start);
// - a candidate takes over only when the record has not changed for leaseDuration of its
//   own monotonic time since it first saw it; remote timestamps are never compared with
//   the local clock, so clock skew between replicas cannot cause two leaders;
// - since renewDeadline < leaseDuration, the old leader has stopped before anyone takes over;
// - a leader that stops can release the lease (empty holder) so a standby takes over at once.
// Losing the lease is fatal to the process (as in controller-runtime): a restart is the
// simplest way to drop every in-flight assumption.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isConflict, isNotFound, resourcePath, type KubeClient, type KubeObject } from '../kube/kube-client.js';
import { Leases } from '../kube/resources.js';
import type { Logger } from './logger.js';
import { abortableSleep } from './abortable-sleep.js';

export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
type Lease = KubeObject & { spec?: LeaseRecord };

export interface LeaderElectionTimings {
  /** How long a candidate waits, after it last saw the record change, before taking over. */
  leaseDurationMs: number;
  /** How long the leader keeps failing to renew before it stops leading. */
  renewDeadlineMs: number;
  /** The wait between two attempts to acquire or renew. */
  retryPeriodMs: number;
}

export interface LeaderElectionOptions extends Partial<LeaderElectionTimings> {
  namespace: string;
  name: string;
  identity?: string;
}

/** client-go's defaults. */
export const DEFAULT_TIMINGS: LeaderElectionTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** client-go's jitter factor: the renew deadline must leave room for more than one retry. */
const JITTER_FACTOR = 1.2;

/** Pure: the timings with defaults filled in; throws unless leaseDuration > renewDeadline > retryPeriod × 1.2. */
/** Durations from the environment (LEADER_ELECTION_*), in (possibly fractional) seconds; unset ones keep the defaults. */
export function timingsFromEnv(env: NodeJS.ProcessEnv): Partial<LeaderElectionTimings> {
  const ms = (name: string) => {
    const value = env[name];
    if (value === undefined || value === '') return undefined;
    const seconds = Number(value);
    if (!Number.isFinite(seconds)) throw new Error(`${name} must be a number of seconds, not ${JSON.stringify(value)}`);
    return seconds * 1000;
  };
  return {
    leaseDurationMs: ms('LEADER_ELECTION_LEASE_DURATION'),
    renewDeadlineMs: ms('LEADER_ELECTION_RENEW_DEADLINE'),
    retryPeriodMs: ms('LEADER_ELECTION_RETRY_PERIOD'),
  };
}

export function resolveTimings(opts: Partial<LeaderElectionTimings> = {}): LeaderElectionTimings {
  const t: LeaderElectionTimings = {
    leaseDurationMs: opts.leaseDurationMs ?? DEFAULT_TIMINGS.leaseDurationMs,
    renewDeadlineMs: opts.renewDeadlineMs ?? DEFAULT_TIMINGS.renewDeadlineMs,
    retryPeriodMs: opts.retryPeriodMs ?? DEFAULT_TIMINGS.retryPeriodMs,
  };
  for (const [name, value] of Object.entries(t)) {
    if (!Number.isFinite(value) || value <= 0) throw new Error(`leader election: ${name} must be a positive number of milliseconds`);
  }
  if (t.leaseDurationMs <= t.renewDeadlineMs) throw new Error('leader election: leaseDuration must be greater than renewDeadline');
  if (t.renewDeadlineMs <= JITTER_FACTOR * t.retryPeriodMs) {
    throw new Error(`leader election: renewDeadline must be greater than retryPeriod × ${JITTER_FACTOR}`);
  }
  return t;
}

/** The record as the API server last returned it, and the local monotonic time it was first seen so. */
export interface Observation {
  raw: string;
  record: LeaseRecord;
  observedAtMs: number;
}

const rawRecord = (r: LeaseRecord): string =>
  JSON.stringify([r.holderIdentity ?? '', r.leaseDurationSeconds, r.acquireTime, r.renewTime, r.leaseTransitions]);

/** Pure: the observation after reading record at nowMs; its time moves only when the record changed. */
export function observe(previous: Observation | undefined, record: LeaseRecord, nowMs: number): Observation {
  const raw = rawRecord(record);
  return previous?.raw === raw ? previous : { raw, record, observedAtMs: nowMs };
}

/**
 * Pure: may identity write itself into the lease at nowMs? Yes when nobody holds it, when it
 * holds it already, or when the record has not changed for its lease duration of local time.
 */
export function mayAcquire(observation: Observation, identity: string, nowMs: number, fallbackDurationSeconds: number): boolean {
  const holder = observation.record.holderIdentity;
  if (!holder || holder === identity) return true;
  const durationSeconds = observation.record.leaseDurationSeconds || fallbackDurationSeconds;
  return nowMs - observation.observedAtMs >= durationSeconds * 1000;
}

/** Pure: the record that makes identity the holder (a renewal keeps acquireTime and the transition count). */
export function holderRecord(current: LeaseRecord | undefined, identity: string, wallNow: Date, leaseDurationSeconds: number): LeaseRecord {
  const renewing = current?.holderIdentity === identity;
  return {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: renewing ? current.acquireTime : microTime(wallNow),
    renewTime: microTime(wallNow),
    leaseTransitions: (current?.leaseTransitions ?? 0) + (current && !renewing ? 1 : 0),
  };
}

/** Pure: the record a stopping leader writes so that a standby may take over at once. */
export function releasedRecord(current: LeaseRecord, wallNow: Date): LeaseRecord {
  return {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: microTime(wallNow),
    renewTime: microTime(wallNow),
    leaseTransitions: current.leaseTransitions ?? 0,
  };
}

const microTime = (d: Date) => d.toISOString().replace('Z', '000Z');

/** Local monotonic milliseconds: immune to wall-clock steps. */
const monotonicMs = () => performance.now();

/** held: our write landed; sentAt is when it was sent, the earliest it can have landed. */
type Attempt = { held: true; sentAt: number } | { held: false; otherHolder?: string };

export class LeaderElector {
  readonly identity: string;
  private readonly timings: LeaderElectionTimings;
  private readonly leaseDurationSeconds: number;
  private readonly path: string;
  private readonly stopping = new AbortController();
  private readonly inFlight = new Set<AbortController>();
  private observation?: Observation;
  /** The Lease as our last successful write returned it: the next renewal writes over it. */
  private lastWritten?: Lease;
  private leading = false;
  /** A write naming us is on its way: if stop() interrupts it, it may still have landed. */
  private writing = false;
  private renewing?: Promise<void>;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: LeaderElectionOptions,
    private readonly log: Logger,
  ) {
    this.identity = opts.identity ?? `${hostname()}_${randomBytes(4).toString('hex')}`;
    this.timings = resolveTimings(opts);
    // The Lease stores whole seconds; rounding up only makes others wait longer.
    this.leaseDurationSeconds = Math.ceil(this.timings.leaseDurationMs / 1000);
    this.path = resourcePath(Leases, opts.namespace, opts.name);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Resolves once this process holds the lease; then renews it in the background and calls
   * onLost (once) when it has failed to renew for renewDeadline or another holder is named.
   * Rejects if stop() is called first.
   */
  async acquire(onLost: () => void): Promise<void> {
    let sentAt: number;
    for (;;) {
      if (this.stopping.signal.aborted) throw new Error('leader election stopped');
      const attemptStartedAt = monotonicMs();
      // A candidate's slow attempt is harmless: its write lands only if the record is still
      // the one it read, and its term counts from when the write was sent. The bound only
      // frees a hung connection; it leaves room for a new connection's handshake, a read and
      // a write at the latency renewals survive (3 × renewDeadline / 2 with the defaults).
      const attempt = await this.attempt(this.timings.leaseDurationMs);
      if (attempt.held) {
        sentAt = attempt.sentAt;
        break;
      }
      // Paced from the attempt's start: a slow read does not stretch the period.
      await this.pause(attemptStartedAt + this.timings.retryPeriodMs - monotonicMs());
    }
    if (this.stopping.signal.aborted) throw new Error('leader election stopped');
    this.leading = true;
    this.log.info('leader election: acquired', { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.identity });
    this.renewing = this.renewUntilLost(sentAt, onLost);
  }

  /**
   * The leader's loop. renewedAt is when our last successful write was sent, and the renew
   * deadline counts from there. That is the earliest moment the write can have landed,
   * so it is the earliest moment a standby's leaseDuration wait can have begun: stopping by
   * renewedAt + renewDeadline (< leaseDuration) stops us before any standby may take over,
   * however the request's latency splits between the way there and the way back.
   * client-go counts its deadline from the start of the renew round that follows a success
   * by retryPeriod, i.e. from when the success ended (plus retryPeriod): more lenient, but if
   * the write lands early and the answer comes back late (say 4 s), its leader may still
   * lead after a standby took over (4 + 2 + 10 > 15). Counting from the send instead, a
   * renewal needs only to be sent and answered within renewDeadline of the previous one's
   * send: with one request per renewal, requests of up to renewDeadline / 2 (5 s by default)
   * keep the lease, with no margin for a failed attempt near that bound.
   */
  private async renewUntilLost(renewedAt: number, onLost: () => void): Promise<void> {
    // The first renewal comes retryPeriod after the acquiring write.
    let startedAt = renewedAt;
    for (;;) {
      const deadline = renewedAt + this.timings.renewDeadlineMs;
      // retryPeriod after the previous attempt started; at once if it took longer than that.
      await this.pause(Math.min(startedAt + this.timings.retryPeriodMs, deadline) - monotonicMs());
      if (this.stopping.signal.aborted) return;
      const remaining = deadline - monotonicMs();
      if (remaining <= 0) return this.lose(onLost, `could not renew for ${this.timings.renewDeadlineMs} ms`);
      startedAt = monotonicMs();
      // Bounded by what is left of the deadline, so a hung request cannot keep us leading past it.
      const attempt = await this.attempt(remaining);
      if (this.stopping.signal.aborted) return;
      if (attempt.held) renewedAt = attempt.sentAt;
      else if (attempt.otherHolder) return this.lose(onLost, `the lease names ${attempt.otherHolder}`);
    }
  }

  private lose(onLost: () => void, why: string): void {
    this.leading = false;
    this.log.error('leader election: lost the lease', { identity: this.identity, why });
    this.stopping.abort();
    onLost();
  }

  /**
   * One attempt, as client-go's tryAcquireOrRenew: the leader writes over its last write
   * (one PUT); if the Lease changed or vanished since, or we do not lead, read it and decide.
   * Every failure is just a failed attempt.
   */
  private async attempt(timeoutMs: number): Promise<Attempt> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`attempt timed out after ${Math.round(timeoutMs)} ms`)), timeoutMs);
    this.inFlight.add(controller);
    try {
      if (this.leading && this.lastWritten) {
        try {
          return await this.write('PUT', controller.signal, this.lastWritten);
        } catch (e) {
          // Someone else wrote (or a write of ours that timed out landed after all): read it.
          if (!isConflict(e) && !isNotFound(e)) throw e;
        }
      }
      return await this.readThenWrite(controller.signal);
    } catch (e) {
      if (!this.stopping.signal.aborted) {
        this.log.warn('leader election: attempt failed', { identity: this.identity, leading: this.leading, error: (e as Error).message });
      }
      // A failed write may still have landed; the next attempt's conflict or read tells.
      return { held: false };
    } finally {
      this.writing = false;
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }

  /** Writes us in as the holder over current (POST when there is none), and remembers what was written. */
  private async write(method: 'PUT' | 'POST', signal: AbortSignal, current?: Lease): Promise<Attempt> {
    this.writing = true;
    const sentAt = monotonicMs();
    const spec = holderRecord(current?.spec, this.identity, new Date(), this.leaseDurationSeconds);
    const written =
      method === 'POST'
        ? await this.call<Lease>('POST', signal, {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.opts.name, namespace: this.opts.namespace },
            spec,
          })
        : await this.call<Lease>('PUT', signal, { ...current, spec });
    this.lastWritten = written;
    this.observation = observe(undefined, written!.spec ?? {}, monotonicMs());
    return { held: true, sentAt };
  }

  /** Reads the Lease, then writes us in if we may (client-go's slow path, and every candidate's attempt). */
  private async readThenWrite(signal: AbortSignal): Promise<Attempt> {
    const current = await this.call<Lease | undefined>('GET', signal);
    if (!current) return this.write('POST', signal);
    const now = monotonicMs();
    const record = current.spec ?? {};
    this.observation = observe(this.observation, record, now);
    if (!mayAcquire(this.observation, this.identity, now, this.leaseDurationSeconds)) {
      return { held: false, otherHolder: record.holderIdentity };
    }
    return this.write('PUT', signal, current);
  }

  /** A request that ends when signal aborts even if the response stalls; GET answers undefined for NotFound. */
  private async call<T>(method: 'GET' | 'PUT' | 'POST', signal: AbortSignal, body?: unknown): Promise<T | undefined> {
    const path = method === 'POST' ? resourcePath(Leases, this.opts.namespace) : this.path;
    let onAbort!: () => void;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([this.client.request<T>(method, path, { body, signal }), aborted]);
    } catch (e) {
      if (method === 'GET' && isNotFound(e)) return undefined;
      throw e;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Waits ms, or less if stop() is called (on the global timers, which tests can drive). */
  private pause(ms: number): Promise<void> {
    const signal = this.stopping.signal;
    if (ms <= 0 || signal.aborted) return Promise.resolve();
    return abortableSleep(ms, signal);
  }

  /**
   * Stops campaigning and renewing (aborting any request in flight). With release, a leader
   * then writes the lease with no holder so a standby takes over without waiting leaseDuration.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    const mayHold = this.leading || this.writing;
    this.leading = false;
    this.stopping.abort();
    for (const c of this.inFlight) c.abort(new Error('leader election stopped'));
    await this.renewing;
    if (options.release && mayHold) await this.release();
  }

  private async release(): Promise<void> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('release timed out')), this.timings.renewDeadlineMs);
    try {
      const current = await this.call<Lease>('GET', controller.signal);
      // Only our own record: if someone else holds it already, there is nothing to release.
      if (current?.spec?.holderIdentity !== this.identity) return;
      await this.call<Lease>('PUT', controller.signal, { ...current, spec: releasedRecord(current.spec, new Date()) });
      this.log.info('leader election: released', { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.identity });
    } catch (e) {
      this.log.warn('leader election: could not release the lease', { error: (e as Error).message });
    } finally {
      clearTimeout(timer);
    }
  }
}
