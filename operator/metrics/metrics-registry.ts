// One prom-client Registry per process, built from the metric catalogue (metric-catalog.ts)
// so the names, help, types, labels and buckets users alert on are written in one place.
// prom-client's process and Node metrics join it; the registry is our own, never the
// global one, so tests can build several.
//
// Runtime metrics are kept by the process as it runs (typed accessors below). Object
// metrics are a view of the caches, asked of a source at each scrape: their gauges are
// emptied and refilled then, so a deleted object's series vanish, and they stay empty on a
// replica that is not the leader (two replicas never export the same series).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import packageJson from '../../package.json' with { type: 'json' };
import type { KubeClient } from '../kube/kube-client.js';
import type { Logger } from '../runtime/logger.js';
import { definitionsOf, METRICS, type MetricDefinition, type MetricName, type Series } from './metric-catalog.js';

export type MetricsProcess = 'operator' | 'populator';

type Catalogue = (typeof METRICS)[number];
type DefinitionOf<N extends MetricName> = Extract<Catalogue, { name: N }>;
type LabelOf<N extends MetricName> = DefinitionOf<N>['labels'][number];
type RuntimeName = Extract<Catalogue, { scope: 'runtime' }>['name'];
type RuntimeMetric<N extends RuntimeName> = DefinitionOf<N>['type'] extends 'counter'
  ? Counter<LabelOf<N>>
  : DefinitionOf<N>['type'] extends 'histogram'
    ? Histogram<LabelOf<N>>
    : Gauge<LabelOf<N>>;

/** Gives the object series of this process at scrape time (operator/metrics/object-metrics.ts). */
export type ObjectSeriesSource = () => Series[] | Promise<Series[]>;

export interface ProcessMetricsOptions {
  process: MetricsProcess;
  /** The Lease this process leads with (kopia_leader's label). */
  lease: string;
  /** Whether this replica leads now: kopia_leader, and whether object series are exported. */
  isLeader: () => boolean;
  log?: Logger;
  /**
   * A Series this process does not export is a programming error: thrown when strict (the
   * default under jest, NODE_ENV=test), else logged once and dropped.
   */
  strict?: boolean;
  /** The version in kopia_build_info; package.json's otherwise. */
  version?: string;
}

/** The runtime metrics a kind's queue and the informers feed; absent in tests that need none. */
export interface ProcessMetrics {
  readonly registry: Registry;
  /** A runtime metric of this process by its catalogue name, typed by its labels. */
  metric<N extends RuntimeName>(name: N): RuntimeMetric<N>;
  setObjectSeriesSource(source: ObjectSeriesSource): void;
  /** The exposition text (registry.metrics()). */
  metrics(): Promise<string>;
  readonly contentType: string;
}

export const PACKAGE_VERSION: string = packageJson.version;

/** Counts every request of client in kopia_api_requests_total (code 0: no response). */
export function countApiRequests(client: KubeClient, metrics: ProcessMetrics): void {
  const requests = metrics.metric('kopia_api_requests_total');
  client.observeRequests((verb, resource, code) => requests.inc({ verb, resource, code: String(code) }));
}

export function createProcessMetrics(options: ProcessMetricsOptions): ProcessMetrics {
  return new CatalogueMetrics(options);
}

class CatalogueMetrics implements ProcessMetrics {
  readonly registry = new Registry();
  private readonly runtime = new Map<string, Metric>();
  private readonly objectGauges = new Map<string, Gauge>();
  private source?: ObjectSeriesSource;
  /** The refresh every object gauge of one scrape waits on: the source is asked once per scrape. */
  private refreshing?: Promise<void>;
  private readonly loggedErrors = new Set<string>();
  private readonly strict: boolean;

  constructor(private readonly options: ProcessMetricsOptions) {
    this.strict = options.strict ?? process.env.NODE_ENV === 'test';
    for (const def of definitionsOf(options.process)) {
      if (def.scope === 'object') {
        if (def.type !== 'gauge') throw new Error(`object metric ${def.name} must be a gauge`);
        const refresh = () => this.refreshObjects();
        this.objectGauges.set(def.name, new Gauge({ ...base(def), registers: [this.registry], collect: refresh }));
      } else this.runtime.set(def.name, this.build(def));
    }
    (this.runtime.get('kopia_build_info') as Gauge).set({ version: options.version ?? PACKAGE_VERSION }, 1);
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  metric<N extends RuntimeName>(name: N): RuntimeMetric<N> {
    const m = this.runtime.get(name);
    if (!m) throw new Error(`${name} is not a runtime metric of the ${this.options.process}`);
    return m as unknown as RuntimeMetric<N>;
  }

  setObjectSeriesSource(source: ObjectSeriesSource): void {
    this.source = source;
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  private build(def: MetricDefinition): Metric {
    const common = { ...base(def), registers: [this.registry] };
    switch (def.type) {
      case 'counter':
        return new Counter(common);
      case 'histogram':
        return new Histogram({ ...common, buckets: [...(def.buckets ?? [])] });
      case 'gauge':
        if (def.name === 'kopia_leader') {
          const { lease, isLeader } = this.options;
          return new Gauge({
            ...common,
            collect() {
              this.set({ lease }, isLeader() ? 1 : 0);
            },
          });
        }
        return new Gauge(common);
    }
  }

  // prom-client asks every metric of a scrape in the same tick, so all object gauges share
  // one refresh, and each reads its values only after it.
  private refreshObjects(): Promise<void> {
    this.refreshing ??= this.fillObjectGauges().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async fillObjectGauges(): Promise<void> {
    let series: Series[] = [];
    try {
      if (this.source && this.options.isLeader()) series = await this.source();
    } catch (e) {
      this.options.log?.error('object metrics failed; exported empty', { error: (e as Error).message });
      series = [];
    }
    for (const gauge of this.objectGauges.values()) gauge.reset();
    for (const s of series) {
      const gauge = this.objectGauges.get(s.name);
      try {
        if (!gauge) throw new Error(`${s.name} is not an object gauge of the ${this.options.process}`);
        gauge.set(s.labels, s.value);
      } catch (e) {
        this.programmingError(s.name, e as Error);
      }
    }
  }

  private programmingError(name: string, error: Error): void {
    if (this.strict) throw error;
    if (this.loggedErrors.has(name)) return;
    this.loggedErrors.add(name);
    this.options.log?.error('object series dropped (reported once per metric)', { metric: name, error: error.message });
  }
}

function base(def: MetricDefinition): { name: string; help: string; labelNames: string[] } {
  return { name: def.name, help: def.help, labelNames: [...def.labels] };
}
