// List-then-watch cache for one resource type, kept the way client-go's reflector keeps
// one: a watch that fails or goes silent is resumed from the last resourceVersion it saw
// (relisting only when that version has expired, 410 Gone); failures and watches that end
// at once back off exponentially with jitter; a periodic resync re-announces every cached
// object as a safety net. Handlers receive keys, never payloads to trust: reconcilers
// re-read the cache (or the API) by key.
import { isGone, type KubeClient, type KubeObject, type ResourceType, type WatchEvent } from '../kube/kube-client.js';
import { abortableSleep } from './abortable-sleep.js';

export type InformerEvent = 'ADDED' | 'MODIFIED' | 'DELETED' | 'RESYNC';
export type InformerHandler<T extends KubeObject> = (event: InformerEvent, obj: T, old?: T) => void;

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

/** client-go's reflector backs off from 800 ms up to 30 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 800, maxMs: 30_000 };

/** A watch that ends sooner than this without delivering anything did not really work. */
export const MIN_HEALTHY_WATCH_MS = 1000;

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  resyncMs?: number;
  /**
   * Cache PartialObjectMetadata instead of whole objects (names, labels, owners, versions;
   * no data, spec or status): for kinds watched only to find what to reconcile, e.g. Secrets.
   */
  metadataOnly?: boolean;
  /** A watch silent (no event, no bookmark) for this long is resumed on a new connection; KubeClient's default (3 min) otherwise. */
  watchIdleTimeoutMs?: number;
  backoff?: Partial<BackoffPolicy>;
  /** Failed lists and watches (before each retry), and errors thrown by handlers. */
  onError?: (error: unknown) => void;
  /** A watch ended or failed and another follows (kopia_watch_restarts_total). */
  onWatchRestart?: () => void;
}

/** A handler threw while being told about an object; the informer carries on. */
export class InformerHandlerError extends Error {
  constructor(
    readonly event: InformerEvent,
    readonly key: string,
    cause: unknown,
  ) {
    super(`informer handler failed on ${event} ${key}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'InformerHandlerError';
  }
}

/**
 * Server-side apply bookkeeping is never read here and is often the largest part of an
 * object: dropped before caching, as controller-runtime's TransformStripManagedFields does.
 * An update sent from a cached object leaves the server's managedFields as they are.
 */
export function withoutManagedFields<T extends KubeObject>(obj: T): T {
  if (obj.metadata?.managedFields !== undefined) delete obj.metadata.managedFields;
  return obj;
}

export function objectKey(obj: KubeObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : (obj.metadata.name ?? '');
}

/**
 * The wait before retry number `failures` (1, 2, ...): doubling from initialMs, capped at
 * maxMs, then drawn from the upper half so that many informers failing together (an API
 * server restart) do not all come back at the same instant.
 */
export function backoffDelayMs(failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, failures - 1));
  return ceiling / 2 + (random() * ceiling) / 2;
}

/** How one watch ended. */
export interface WatchOutcome {
  error?: unknown;
  durationMs: number;
  /** Any event, bookmarks included. */
  received: boolean;
}

/** What the loop does next: relist or resume, and whether (and how long, from failures) to back off first. */
export interface NextStep {
  relist: boolean;
  failures: number;
  backOff: boolean;
}

/**
 * What to do after a watch, given the failures in a row before it: relist only when its
 * resourceVersion expired (or there is none to resume from); back off after an error or a
 * watch that ended at once without delivering anything (a server or proxy refusing it
 * quietly). A watch that worked for a while starts the count of failures over, so a
 * connection reset every few minutes never grows into long waits.
 */
export function afterWatch(outcome: WatchOutcome, hasResourceVersion: boolean, failuresBefore: number): NextStep {
  const worked = outcome.received || outcome.durationMs >= MIN_HEALTHY_WATCH_MS;
  const failures = worked ? 0 : failuresBefore;
  if (outcome.error !== undefined && isGone(outcome.error)) return { relist: true, failures, backOff: false };
  if (outcome.error !== undefined || !worked) return { relist: !hasResourceVersion, failures: failures + 1, backOff: true };
  return { relist: !hasResourceVersion, failures: 0, backOff: false };
}

export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  private abort = new AbortController();
  private resourceVersion = '';
  private running = false;
  private synced!: Promise<void>;
  private resyncTimer?: NodeJS.Timeout;

  constructor(
    private readonly client: KubeClient,
    readonly type: ResourceType,
    private readonly options: InformerOptions = {},
  ) {}

  on(handler: InformerHandler<T>): this {
    this.handlers.push(handler);
    return this;
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  /** Starts listing and watching; resolves once the first list is in the cache. */
  start(): Promise<void> {
    if (this.running) return this.synced;
    this.running = true;
    this.abort = new AbortController();
    let markSynced!: () => void;
    let failSynced!: (e: unknown) => void;
    this.synced = new Promise((res, rej) => {
      markSynced = res;
      failSynced = rej;
    });
    void this.loop(this.abort.signal, markSynced, failSynced);
    if (this.options.resyncMs) {
      this.resyncTimer = setInterval(() => this.list().forEach((o) => this.emit('RESYNC', o)), this.options.resyncMs);
      this.resyncTimer.unref();
    }
    return this.synced;
  }

  stop(): void {
    this.running = false;
    this.abort.abort();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
  }

  private report(error: unknown): void {
    try {
      this.options.onError?.(error);
    } catch {
      // an error reporter that throws must not stop the informer either
    }
  }

  private emit(event: InformerEvent, obj: T, old?: T): void {
    // Each handler on its own: one that throws neither starves the others nor breaks the
    // watch (which would otherwise end in a relist).
    for (const h of this.handlers) {
      try {
        h(event, obj, old);
      } catch (e) {
        this.report(new InformerHandlerError(event, objectKey(obj), e));
      }
    }
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const list = await this.client.list<T>(
      this.type,
      this.options.namespace,
      { labelSelector: this.options.labelSelector },
      { metadataOnly: this.options.metadataOnly, signal },
    );
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = objectKey(item);
      seen.add(key);
      const old = this.store.get(key);
      this.store.set(key, withoutManagedFields(item));
      if (!old) this.emit('ADDED', item);
      else if (old.metadata.resourceVersion !== item.metadata.resourceVersion) this.emit('MODIFIED', item, old);
    }
    for (const [key, old] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit('DELETED', old);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion;
  }

  private apply(ev: WatchEvent<T>): void {
    this.resourceVersion = ev.object.metadata.resourceVersion ?? this.resourceVersion;
    if (ev.type === 'BOOKMARK') return;
    const obj = ev.object;
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (ev.type === 'DELETED') {
      this.store.delete(key);
      this.emit('DELETED', obj);
    } else {
      this.store.set(key, withoutManagedFields(obj));
      this.emit(old ? 'MODIFIED' : 'ADDED', obj, old);
    }
  }

  /** One watch from the current resourceVersion, and how it ended. */
  private async watchOnce(signal: AbortSignal): Promise<WatchOutcome> {
    const started = Date.now();
    let received = false;
    try {
      await this.client.watch<T>(
        this.type,
        this.options.namespace,
        this.resourceVersion,
        (ev) => {
          received = true;
          this.apply(ev);
        },
        {
          signal,
          labelSelector: this.options.labelSelector,
          metadataOnly: this.options.metadataOnly,
          idleTimeoutMs: this.options.watchIdleTimeoutMs,
        },
      );
      return { durationMs: Date.now() - started, received };
    } catch (error) {
      return { error, durationMs: Date.now() - started, received };
    }
  }

  // `signal` belongs to this run: after stop() and start() the old loop must end even if
  // it was asleep in a backoff when that happened.
  private async loop(signal: AbortSignal, markSynced: () => void, failSynced: (e: unknown) => void): Promise<void> {
    const backoff = { ...DEFAULT_BACKOFF, ...this.options.backoff };
    let needList = true;
    let failures = 0;
    let firstListDone = false;
    while (!signal.aborted) {
      if (needList) {
        try {
          await this.relist(signal);
          needList = false;
          if (!firstListDone) {
            firstListDone = true;
            markSynced();
          }
        } catch (e) {
          if (signal.aborted) break;
          failures++;
          this.report(e);
          if (!firstListDone && failures >= 5) {
            failSynced(e);
            this.running = false;
            break;
          }
          await abortableSleep(backoffDelayMs(failures, backoff), signal);
          continue;
        }
      }
      const outcome = await this.watchOnce(signal);
      if (signal.aborted) break;
      this.options.onWatchRestart?.();
      const next = afterWatch(outcome, this.resourceVersion !== '', failures);
      needList = next.relist;
      failures = next.failures;
      if (!next.backOff) continue;
      if (outcome.error !== undefined) this.report(outcome.error);
      await abortableSleep(backoffDelayMs(failures, backoff), signal);
    }
  }
}
