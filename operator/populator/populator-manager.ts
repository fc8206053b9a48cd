// Wires the populator onto one client, its own informers and event recorder, in the same
// two phases as the operator's manager: caches on every replica (readiness means "caches
// synced"), reconciling only on the replica holding the kopia-populator Lease.
import type { KubeClient } from '../kube/kube-client.js';
import { ApiEventRecorder } from '../runtime/events.js';
import { InformerFactory, type OperatorContext } from '../runtime/kind-operator.js';
import type { Logger } from '../runtime/logger.js';
import type { Failpoint } from '../runtime/failpoint.js';
import type { RetryPolicy } from './populator-plan.js';
import { RestorePopulator } from './populator.js';
import { registerVolumePopulator } from './volume-populator-registration.js';
import type { ProcessMetrics } from '../metrics/metrics-registry.js';
import { populatorObjectSeries } from '../metrics/population-metrics.js';

export const POPULATOR_COMPONENT = 'kopia-populator';

export interface PopulatorManagerOptions {
  client: KubeClient;
  log: Logger;
  /** The mover image the restore Jobs run. */
  moverImage: string;
  /** The namespace the populator runs in. */
  namespace: string;
  resyncMs?: number;
  now?: () => Date;
  /** The process's runtime metrics (kopia_reconcile_*, kopia_api_requests_total, ...); none in most tests. */
  metrics?: ProcessMetrics;
  retry?: RetryPolicy;
  failpoint?: Failpoint;
}

export interface PopulatorManager {
  populator: RestorePopulator;
  informers: InformerFactory;
  /** Starts reconciling (idempotent) and registers the VolumePopulator where its API exists. */
  startReconciling(): void;
  whenIdle(): Promise<void>;
  stop(): void;
}

export async function startPopulatorCaches(opts: PopulatorManagerOptions): Promise<PopulatorManager> {
  const informers = new InformerFactory(opts.client, opts.log, opts.resyncMs, opts.metrics);
  const ctx: OperatorContext = {
    client: opts.client,
    informers,
    events: new ApiEventRecorder(opts.client, POPULATOR_COMPONENT, opts.log),
    log: opts.log,
    namespace: opts.namespace,
    moverImage: opts.moverImage,
    now: opts.now ?? (() => new Date()),
    metrics: opts.metrics,
  };
  // Claims waiting, and why: the populator's own plan run on these caches at each scrape (on the leader only).
  opts.metrics?.setObjectSeriesSource(() => populatorObjectSeries(informers, opts.client, ctx.now(), opts.retry));
  const populator = new RestorePopulator(ctx, { retry: opts.retry, failpoint: opts.failpoint });
  await populator.start();
  await informers.startAll();
  opts.log.info('caches synced');
  let reconciling = false;
  return {
    populator,
    informers,
    startReconciling() {
      if (reconciling) return;
      reconciling = true;
      populator.run();
      registerVolumePopulator(opts.client, opts.log).then(
        (r) => opts.log.debug('VolumePopulator registration', { result: r }),
        (e: Error) => opts.log.warn('cannot register the VolumePopulator; claims are populated all the same', { error: e.message }),
      );
      opts.log.info('populator running');
    },
    whenIdle: () => populator.whenIdle(),
    stop() {
      populator.stop();
      informers.stopAll();
    },
  };
}

/** Both phases: a single replica, or leader election off. */
export async function startPopulator(opts: PopulatorManagerOptions): Promise<PopulatorManager> {
  const manager = await startPopulatorCaches(opts);
  manager.startReconciling();
  return manager;
}
