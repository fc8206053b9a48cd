// The base of every kind's operator. It is a @dot-i/k8s-operator Operator — the lifecycle
// (start → init → watchResource) and event shapes are that package's — with the parts it
// lacks supplied here (docs/adr/0001-operator-runtime.md): watchResource feeds shared
// informers and our work queue instead of one serial queue; reconcile errors are retried
// with backoff instead of dropped; a watch error reconnects instead of process.exit(1).
import dotI from '@dot-i/k8s-operator';
import type { ResourceEvent } from '@dot-i/k8s-operator';
import type { KubeClient, KubeObject, ResourceType } from '../kube/kube-client.js';
import type { ProcessMetrics } from '../metrics/metrics-registry.js';
import type { EventRecorder } from './events.js';
import { Informer, InformerHandlerError, objectKey } from './informer.js';
import type { Logger } from './logger.js';
import { WrittenObjects } from './status-writer.js';
import { WorkQueue, type ReconcileResult } from './work-queue.js';

const { default: DotIOperator, ResourceMetaImpl } = dotI as unknown as {
  default: typeof import('@dot-i/k8s-operator').default;
  ResourceMetaImpl: typeof import('@dot-i/k8s-operator').ResourceMetaImpl;
};

/** Which objects of a type an informer caches, and how much of each. */
export interface InformerSelection {
  labelSelector?: string;
  /** Cache metadata only (Secrets: never hold every value in the cluster in memory). */
  metadataOnly?: boolean;
}

/** One informer per resource type and selection, shared by every operator. */
export class InformerFactory {
  private readonly informers = new Map<string, Informer<KubeObject>>();

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly resyncMs = 10 * 60_000,
    private readonly metrics?: ProcessMetrics,
  ) {}

  get<T extends KubeObject>(type: ResourceType, selection: InformerSelection = {}): Informer<T> {
    const { labelSelector, metadataOnly } = selection;
    const key = `${type.group}/${type.version}/${type.plural}?${labelSelector ?? ''}${metadataOnly ? '#metadata' : ''}`;
    let informer = this.informers.get(key);
    if (!informer) {
      informer = new Informer<KubeObject>(this.client, type, {
        labelSelector,
        metadataOnly,
        resyncMs: this.resyncMs,
        onWatchRestart: () => this.metrics?.metric('kopia_watch_restarts_total').inc({ resource: type.plural }),
        onError: (e) =>
          e instanceof InformerHandlerError
            ? this.log.error('informer handler failed', { resource: type.plural, error: e.message })
            : this.log.warn('watch failed; reconnecting', { resource: type.plural, error: (e as Error).message }),
      });
      this.informers.set(key, informer);
    }
    return informer as unknown as Informer<T>;
  }

  /** Every informer made so far (tests and benchmarks look inside). */
  all(): Informer<KubeObject>[] {
    return [...this.informers.values()];
  }

  async startAll(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.start()));
  }

  stopAll(): void {
    for (const i of this.informers.values()) i.stop();
  }
}

export interface OperatorContext {
  client: KubeClient;
  informers: InformerFactory;
  events: EventRecorder;
  log: Logger;
  /** The namespace the operator runs in (ClusterRepository Jobs run here). */
  namespace: string;
  /** The mover image (the operator's own image). */
  moverImage: string;
  now: () => Date;
  /** This cluster's name in default maintenance owners (KOPIA_CLUSTER_NAME); unset: derived from kube-system's UID. */
  clusterName?: string;
  /** The process's runtime metrics; tests that need none leave it out. */
  metrics?: ProcessMetrics;
}

export abstract class KindOperator extends DotIOperator {
  abstract readonly kind: string;
  protected readonly queue: WorkQueue;
  protected readonly log: Logger;
  /** Our own status writes, for reads that run ahead of the watch. */
  protected readonly written = new WrittenObjects();

  constructor(protected readonly ctx: OperatorContext) {
    super({
      debug: (m: string) => ctx.log.debug(m),
      info: (m: string) => ctx.log.info(m),
      warn: (m: string) => ctx.log.warn(m),
      error: (m: string) => ctx.log.error(m),
    });
    this.log = ctx.log;
    const metrics = ctx.metrics;
    // this.kind is a subclass field: read when the queue calls back, never here.
    this.queue = new WorkQueue((key) => this.reconcile(key), {
      concurrency: 4,
      paused: true,
      onError: (key, error, retryInMs) => {
        metrics?.metric('kopia_workqueue_retries_total').inc({ kind: this.kind });
        this.log.warn('reconcile failed; retrying', {
          kind: this.kind,
          key,
          retryInMs,
          error: error instanceof Error ? error.message : String(error),
        });
      },
      onRunEnd: metrics
        ? (_key, result, seconds) => {
            metrics.metric('kopia_reconcile_duration_seconds').observe({ kind: this.kind }, seconds);
            metrics.metric('kopia_reconcile_total').inc({ kind: this.kind, result });
            if (result === 'error') metrics.metric('kopia_reconcile_errors_total').inc({ kind: this.kind });
          }
        : undefined,
      onDepth: metrics ? (depth) => metrics.metric('kopia_workqueue_depth').set({ kind: this.kind }, depth) : undefined,
    });
  }

  /** Reconciles one object by key ("namespace/name" or "name"); must be idempotent. */
  protected abstract reconcile(key: string): Promise<ReconcileResult | void>;

  /** Queue the object an event is about. */
  protected enqueue(obj: KubeObject): void {
    this.queue.add(objectKey(obj));
  }

  /** The @dot-i watch API, re-plumbed onto shared informers: events are delivered to onEvent, never dropped. */
  protected override async watchResource(
    group: string,
    version: string,
    plural: string,
    onEvent: (event: ResourceEvent) => Promise<void>,
    namespace?: string,
  ): Promise<void> {
    const informer = this.ctx.informers.get({ group, version, plural, namespaced: !!namespace });
    informer.on((type, obj) => {
      if (namespace && obj.metadata.namespace !== namespace) return;
      const event = {
        type: (type === 'RESYNC' ? 'MODIFIED' : type) as ResourceEvent['type'],
        object: obj as unknown as ResourceEvent['object'],
        meta: ResourceMetaImpl.createWithPlural(plural, obj as never),
      };
      onEvent(event).catch((e: Error) => this.log.error('watch handler failed', { kind: this.kind, resource: plural, error: e.message }));
    });
  }

  /** Watch a resource and queue the object it belongs to (owner, label or index lookup). */
  protected watchRelated<T extends KubeObject>(
    type: ResourceType,
    toKeys: (obj: T) => string[],
    selection: InformerSelection = {},
  ): Informer<T> {
    const informer = this.ctx.informers.get<T>(type, selection);
    informer.on((_t, obj) => toKeys(obj).forEach((k) => this.queue.add(k)));
    return informer;
  }

  /** Begin reconciling: called once every informer has its first list. */
  run(): void {
    this.queue.resume();
  }

  whenIdle(): Promise<void> {
    return this.queue.whenIdle();
  }

  override stop(): void {
    this.queue.stop();
  }
}
