// List-then-watch cache for one resource type, with relist on expiry (410 Gone), reconnect
// with backoff on errors, and a periodic resync that re-announces every cached object as
// a safety net. Handlers receive keys, never payloads to trust: reconcilers re-read the
// cache (or the API) by key.
import { isGone, type KubeClient, type KubeObject, type ResourceType } from '../kube/kube-client.js';

export type InformerEvent = 'ADDED' | 'MODIFIED' | 'DELETED' | 'RESYNC';
export type InformerHandler<T extends KubeObject> = (event: InformerEvent, obj: T, old?: T) => void;

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  resyncMs?: number;
  onError?: (error: unknown) => void;
}

export function objectKey(obj: KubeObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : (obj.metadata.name ?? '');
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
    void this.loop(markSynced, failSynced);
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

  private emit(event: InformerEvent, obj: T, old?: T): void {
    for (const h of this.handlers) h(event, obj, old);
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.type, this.options.namespace, { labelSelector: this.options.labelSelector });
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = objectKey(item);
      seen.add(key);
      const old = this.store.get(key);
      this.store.set(key, item);
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

  private async loop(markSynced: () => void, failSynced: (e: unknown) => void): Promise<void> {
    let needList = true;
    let failures = 0;
    let firstListDone = false;
    while (this.running) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
          if (!firstListDone) {
            firstListDone = true;
            markSynced();
          }
        }
        await this.client.watch<T>(
          this.type,
          this.options.namespace,
          this.resourceVersion,
          (ev) => {
            if (ev.type === 'BOOKMARK') {
              this.resourceVersion = ev.object.metadata.resourceVersion ?? this.resourceVersion;
              return;
            }
            const obj = ev.object;
            const key = objectKey(obj);
            this.resourceVersion = obj.metadata.resourceVersion ?? this.resourceVersion;
            const old = this.store.get(key);
            if (ev.type === 'DELETED') {
              this.store.delete(key);
              this.emit('DELETED', obj);
            } else {
              this.store.set(key, obj);
              this.emit(old ? 'MODIFIED' : 'ADDED', obj, old);
            }
          },
          { signal: this.abort.signal, labelSelector: this.options.labelSelector },
        );
        failures = 0;
      } catch (e) {
        if (!this.running) break;
        if (isGone(e)) {
          needList = true;
          continue;
        }
        failures++;
        this.options.onError?.(e);
        if (!firstListDone && failures >= 5) {
          failSynced(e);
          this.running = false;
          break;
        }
        needList = true;
        await new Promise((r) => setTimeout(r, Math.min(30_000, 200 * 2 ** failures)));
      }
    }
  }
}
