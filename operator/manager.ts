// Wires the operators of every kind onto one client, one set of shared informers and one
// event recorder. Two phases, as in controller-runtime: caches are filled on every replica
// (so a standby is ready to lead at once and readiness can mean "caches synced"), and the
// reconcile queues start only on the replica that holds the lease.
import { BackupOperator } from './backup/backup-operator.js';
import { BackupConfigOperator } from './backupconfig/backupconfig-operator.js';
import { BackupScheduleOperator } from './backupschedule/backupschedule-operator.js';
import { CatalogIntake, type IntakeOptions } from './catalog/catalog-intake.js';
import { CatalogOperator } from './catalog/catalog-operator.js';
import { SnapshotDeletionOperator } from './deletion/snapshot-deletion-operator.js';
import { MaintenanceDefaultsOperator } from './maintenance/maintenance-defaults.js';
import { MaintenanceOperator } from './maintenance/maintenance-operator.js';
import { RestoreOperator } from './restore/restore-operator.js';
import type { KubeClient } from './kube/kube-client.js';
import { ClusterRepositoryOperator } from './repository/cluster-repository-operator.js';
import { RepositoryOperator } from './repository/repository-operator.js';
import { ApiEventRecorder } from './runtime/events.js';
import { InformerFactory, type KindOperator, type OperatorContext } from './runtime/kind-operator.js';
import type { Logger } from './runtime/logger.js';
import { createValidator } from './validation/validator.js';
import type { ProcessMetrics } from './metrics/metrics-registry.js';
import { operatorObjectSeries } from './metrics/object-metrics.js';

export interface ManagerOptions {
  client: KubeClient;
  log: Logger;
  namespace: string;
  moverImage: string;
  resyncMs?: number;
  now?: () => Date;
  /** The process's runtime metrics (kopia_reconcile_*, kopia_api_requests_total, ...); none in most tests. */
  metrics?: ProcessMetrics;
  /** This cluster's name in default maintenance owners. */
  clusterName?: string;
  /** Where catalog Jobs upload snapshot listings; without it the catalog mirror does not run. */
  intake?: IntakeOptions;
}

export interface Manager {
  operators: KindOperator[];
  informers: InformerFactory;
  intake?: CatalogIntake;
  /** Starts every operator's reconcile queue (idempotent); events seen before are queued, not lost. */
  startReconciling(): void;
  /** Resolves when no operator has queued or running work. */
  whenIdle(): Promise<void>;
  stop(): void;
}

/** Both phases: for a single replica, or when leader election is off. */
export async function startManager(opts: ManagerOptions): Promise<Manager> {
  const manager = await startCaches(opts);
  manager.startReconciling();
  return manager;
}

/** Phase one: every operator registers its watches and every informer has its first list; nothing reconciles yet. */
export async function startCaches(opts: ManagerOptions): Promise<Manager> {
  const informers = new InformerFactory(opts.client, opts.log, opts.resyncMs, opts.metrics);
  const ctx: OperatorContext = {
    client: opts.client,
    informers,
    events: new ApiEventRecorder(opts.client, 'kopia-operator', opts.log),
    log: opts.log,
    namespace: opts.namespace,
    moverImage: opts.moverImage,
    now: opts.now ?? (() => new Date()),
    metrics: opts.metrics,
    clusterName: opts.clusterName,
  };
  // Object metrics are a view of these caches, computed at each scrape (on the leader only).
  opts.metrics?.setObjectSeriesSource(() => operatorObjectSeries(informers, ctx.now(), { clusterName: ctx.clusterName }));
  const validator = createValidator();
  const operators: KindOperator[] = [
    new RepositoryOperator(ctx, validator),
    new ClusterRepositoryOperator(ctx, validator),
    new BackupConfigOperator(ctx, validator),
    new BackupOperator(ctx),
    new BackupScheduleOperator(ctx),
    new SnapshotDeletionOperator(ctx),
  ];
  let intake: CatalogIntake | undefined;
  let catalog: CatalogOperator | undefined;
  if (opts.intake) {
    intake = new CatalogIntake(opts.intake, opts.log);
    await intake.start();
    catalog = new CatalogOperator(ctx, intake);
    operators.push(catalog);
  } else opts.log.warn('no catalog intake configured: snapshots are not mirrored as Backup objects');
  operators.push(new MaintenanceOperator(ctx), new MaintenanceDefaultsOperator(ctx));
  // Restores resolve against the catalog's listings.
  operators.push(new RestoreOperator(ctx, catalog));
  // @dot-i's start() runs each operator's init(), which registers its watches.
  for (const op of operators) await op.start();
  await informers.startAll();
  opts.log.info('caches synced', { kinds: operators.map((o) => o.kind) });
  let reconciling = false;
  return {
    operators,
    informers,
    intake,
    startReconciling() {
      if (reconciling) return;
      reconciling = true;
      for (const op of operators) op.run();
      opts.log.info('operators running', { kinds: operators.map((o) => o.kind) });
    },
    whenIdle: async () => {
      await Promise.all(operators.map((o) => o.whenIdle()));
    },
    stop() {
      for (const op of operators) op.stop();
      informers.stopAll();
      intake?.stop();
    },
  };
}
