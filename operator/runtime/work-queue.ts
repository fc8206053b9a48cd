// The operator's work queue (the part @dot-i/k8s-operator lacks): keys such as
// "Repository/media/nas"; repeated adds merge; one run per key at a time; a failed run is
// retried with per-key exponential backoff; a run may ask to be requeued after a delay.
// Modelled on client-go's workqueue as used by lib-volume-populator's runWorker.

export interface ReconcileResult {
  /** Run the key again after this many milliseconds (a "waiting" outcome, not an error). */
  requeueAfterMs?: number;
}

export type Reconciler = (key: string) => Promise<ReconcileResult | void>;

/** Node runs a setTimeout longer than 2^31-1 ms after 1 ms: longer delays are waited in steps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface WorkQueueOptions {
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onError?: (key: string, error: unknown, retryInMs: number) => void;
  /** Start paused: keys collect until resume() (operators wait for their caches). */
  paused?: boolean;
  /** Each run's end: how it ended and how long it took (kopia_reconcile_*). */
  onRunEnd?: (key: string, result: RunResult, seconds: number) => void;
  /** The keys waiting to run, whenever that changes (kopia_workqueue_depth). */
  onDepth?: (depth: number) => void;
}

/** How one run ended: done, asked to run again later, or failed (retried with backoff). */
export type RunResult = 'success' | 'requeue' | 'error';

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  /** Keys added while running: run again once the current run ends. */
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private readonly idleWaiters: (() => void)[] = [];
  private active = 0;
  private stopped = false;
  private paused: boolean;
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(
    private readonly reconcile: Reconciler,
    private readonly options: WorkQueueOptions = {},
  ) {
    this.concurrency = options.concurrency ?? 4;
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 5 * 60_000;
    this.paused = options.paused ?? false;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  get length(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.options.onDepth?.(this.queue.length);
    this.pump();
  }

  /** Adds key after delayMs; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    this.arm(key, at);
  }

  private arm(key: string, at: number): void {
    const wait = at - Date.now();
    const timer = setTimeout(
      () => {
        if (at > Date.now()) return this.arm(key, at);
        this.timers.delete(key);
        this.add(key);
      },
      Math.min(Math.max(wait, 0), MAX_TIMER_MS),
    );
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** The delay the next failure of key will wait: base * 2^failures, capped. */
  backoffFor(key: string): number {
    const n = this.failures.get(key) ?? 0;
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
  }

  /** Resolves when nothing is queued, running or waiting on a short timer (tests, benchmarks). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    this.options.onDepth?.(0);
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.active === 0;
  }

  private pump(): void {
    while (!this.stopped && !this.paused && this.active < this.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.options.onDepth?.(this.queue.length);
      this.queued.delete(key);
      this.running.add(key);
      this.active++;
      void this.runOne(key);
    }
    if (this.isIdle()) this.idleWaiters.splice(0).forEach((r) => r());
  }

  private async runOne(key: string): Promise<void> {
    const started = performance.now();
    let outcome: RunResult = 'error';
    try {
      const result = await this.reconcile(key);
      this.failures.delete(key);
      outcome = result?.requeueAfterMs !== undefined ? 'requeue' : 'success';
      if (result?.requeueAfterMs !== undefined) this.addAfterFinish(key, result.requeueAfterMs);
    } catch (error) {
      const delay = this.backoffFor(key);
      this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
      this.options.onError?.(key, error, delay);
      this.addAfterFinish(key, delay);
    } finally {
      this.options.onRunEnd?.(key, outcome, (performance.now() - started) / 1000);
      this.running.delete(key);
      this.active--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }

  private addAfterFinish(key: string, delayMs: number): void {
    // Scheduled after the run is marked finished so add() does not mark it dirty.
    queueMicrotask(() => this.addAfter(key, Math.max(1, delayMs)));
  }
}
