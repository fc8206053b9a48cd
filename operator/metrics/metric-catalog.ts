// Every metric the operator and the populator export, as data: the one list the prom-client
// registries are built from, the README's table, the alert rules and the Grafana dashboard
// are checked against. A name here is a contract users alert on: rename only with a release note.
//
// Object metrics (scope 'object') are a view of the informer caches, computed at scrape time
// on the leader only: a deleted object's series disappear with it (bounded cardinality) and
// two replicas never export the same series. Runtime metrics are kept by each process.

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type MetricProcess = 'operator' | 'populator' | 'both';

export interface MetricDefinition {
  name: string;
  help: string;
  type: MetricType;
  labels: readonly string[];
  process: MetricProcess;
  scope: 'runtime' | 'object';
  buckets?: readonly number[];
}

const OBJECT = ['namespace', 'name'] as const;
const REPOSITORY = ['kind', 'namespace', 'name'] as const;
/** Seconds: reconciles are milliseconds to seconds; movers minutes to hours. */
const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const MOVER_BUCKETS = [5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];

export const METRICS = [
  // --- runtime, both processes ---
  {
    name: 'kopia_build_info',
    help: 'Always 1; the running version.',
    type: 'gauge',
    labels: ['version'],
    process: 'both',
    scope: 'runtime',
  },
  {
    name: 'kopia_leader',
    help: '1 while this replica holds the lease and reconciles, else 0.',
    type: 'gauge',
    labels: ['lease'],
    process: 'both',
    scope: 'runtime',
  },
  {
    name: 'kopia_reconcile_duration_seconds',
    help: 'Time one reconcile took, by kind.',
    type: 'histogram',
    labels: ['kind'],
    process: 'both',
    scope: 'runtime',
    buckets: RECONCILE_BUCKETS,
  },
  {
    name: 'kopia_reconcile_total',
    help: 'Reconciles by kind and result (success, requeue, error).',
    type: 'counter',
    labels: ['kind', 'result'],
    process: 'both',
    scope: 'runtime',
  },
  {
    name: 'kopia_reconcile_errors_total',
    help: 'Reconciles that ended in an error, by kind.',
    type: 'counter',
    labels: ['kind'],
    process: 'both',
    scope: 'runtime',
  },
  {
    name: 'kopia_workqueue_depth',
    help: 'Keys waiting in the work queue, by kind.',
    type: 'gauge',
    labels: ['kind'],
    process: 'both',
    scope: 'runtime',
  },
  {
    name: 'kopia_workqueue_retries_total',
    help: 'Keys requeued with backoff after an error, by kind.',
    type: 'counter',
    labels: ['kind'],
    process: 'both',
    scope: 'runtime',
  },
  {
    name: 'kopia_api_requests_total',
    help: 'Kubernetes API requests by verb, resource and HTTP code (0: no response).',
    type: 'counter',
    labels: ['verb', 'resource', 'code'],
    process: 'both',
    scope: 'runtime',
  },
  {
    name: 'kopia_watch_restarts_total',
    help: 'Watches started again after they ended or failed, by resource.',
    type: 'counter',
    labels: ['resource'],
    process: 'both',
    scope: 'runtime',
  },

  // --- BackupConfig (operator) ---
  {
    name: 'kopia_backupconfig_ready',
    help: '1 when the BackupConfig is Ready, else 0; reason is its Ready reason.',
    type: 'gauge',
    labels: [...OBJECT, 'reason'],
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_backupconfig_last_success_timestamp_seconds',
    help: 'Completion time of the newest successful backup of the config (Unix seconds).',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_backupconfig_last_attempt_timestamp_seconds',
    help: 'Start time of the newest finished backup attempt of the config (Unix seconds).',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_backupconfig_last_attempt_succeeded',
    help: '1 when the newest finished backup of the config succeeded, 0 when it failed.',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_backupconfig_consecutive_failures',
    help: 'Finished backups of the config that failed since its last success.',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_backupconfig_last_duration_seconds',
    help: 'How long the newest finished backup of the config ran.',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_backupconfig_last_bytes',
    help: 'Bytes in the newest successful snapshot of the config.',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_backupconfig_last_files',
    help: 'Files in the newest successful snapshot of the config.',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_backupconfig_snapshots',
    help: 'Snapshots of the config kept in the repository (Succeeded Backups not expired).',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_backupconfig_schedule_interval_seconds',
    help: 'The shortest of the config’s unsuspended BackupSchedules’ own longest gaps between runs (8 days ahead, with cron, time zone and DST); absent without one.',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },

  // --- Restore (operator: the Restore objects; populator: populations) ---
  {
    name: 'kopia_restore_phase',
    help: '1 for the Restore’s current phase (Pending, Resolving, Restoring, Completed, Failed), 0 for the others.',
    type: 'gauge',
    labels: [...OBJECT, 'phase'],
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_restore_start_timestamp_seconds',
    help: 'When the Restore started (Unix seconds).',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_restore_duration_seconds',
    help: 'How long a finished Restore ran.',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_restores_total',
    help: 'Restore objects that ended, by namespace, outcome (Completed, Failed) and reason.',
    type: 'counter',
    labels: ['namespace', 'outcome', 'reason'],
    process: 'operator',
    scope: 'runtime',
  },
  {
    name: 'kopia_populations_total',
    help: 'Claim populations that ended or were retried, by namespace, outcome (Succeeded, Failed, Retried) and reason.',
    type: 'counter',
    labels: ['namespace', 'outcome', 'reason'],
    process: 'populator',
    scope: 'runtime',
  },
  {
    name: 'kopia_population_duration_seconds',
    help: 'Time from a claim’s first sight to Bound with its data, or to failure, by outcome.',
    type: 'histogram',
    labels: ['outcome'],
    process: 'populator',
    scope: 'runtime',
    buckets: MOVER_BUCKETS,
  },
  {
    name: 'kopia_population_claims_waiting',
    help: 'Claims the populator has not yet filled, by namespace and the reason they wait.',
    type: 'gauge',
    labels: ['namespace', 'reason'],
    process: 'populator',
    scope: 'object',
  },

  // --- Repository and ClusterRepository (operator; kind says which) ---
  {
    name: 'kopia_repository_ready',
    help: '1 when the repository is Ready (verified), else 0; reason is its Ready reason.',
    type: 'gauge',
    labels: [...REPOSITORY, 'reason'],
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_repository_snapshots',
    help: 'Snapshots in the repository (its last count).',
    type: 'gauge',
    labels: REPOSITORY,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_repository_last_verify_timestamp_seconds',
    help: 'When the repository was last verified (Unix seconds).',
    type: 'gauge',
    labels: REPOSITORY,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_repository_deletions_paused',
    help: '1 while the deletion breaker holds snapshot deletions of the repository, else 0.',
    type: 'gauge',
    labels: REPOSITORY,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_repository_deletions_waiting',
    help: 'Snapshot deletions held by the deletion breaker.',
    type: 'gauge',
    labels: REPOSITORY,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_repository_catalog_last_sync_timestamp_seconds',
    help: 'When the catalog mirror last listed the repository (Unix seconds).',
    type: 'gauge',
    labels: REPOSITORY,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_repository_catalog_snapshots',
    help: 'Complete snapshots in the catalog mirror’s last listing.',
    type: 'gauge',
    labels: REPOSITORY,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_catalog_sync_duration_seconds',
    help: 'Time one catalog listing took, from its Job’s start to the mirror written.',
    type: 'histogram',
    labels: ['kind'],
    process: 'operator',
    scope: 'runtime',
    buckets: MOVER_BUCKETS,
  },
  {
    name: 'kopia_catalog_upload_bytes',
    help: 'Size of the newest catalog upload per repository (gzip bytes).',
    type: 'gauge',
    labels: REPOSITORY,
    process: 'operator',
    scope: 'object',
  },

  // --- Maintenance (operator) ---
  {
    name: 'kopia_maintenance_last_success_timestamp_seconds',
    help: 'When quick or full maintenance last succeeded (Unix seconds), by mode.',
    type: 'gauge',
    labels: [...OBJECT, 'mode'],
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_maintenance_next_run_timestamp_seconds',
    help: 'When quick or full maintenance is next due (Unix seconds), by mode; absent while suspended.',
    type: 'gauge',
    labels: [...OBJECT, 'mode'],
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_maintenance_owner_mismatch',
    help: '1 when the repository’s maintenance owner is not this Maintenance’s owner (another cluster maintains it), else 0.',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_maintenance_index_blobs',
    help: 'Index blobs in the repository at the last maintenance.',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
  {
    name: 'kopia_maintenance_index_blobs_threshold',
    help: 'The Maintenance’s indexBlobWarningThreshold.',
    type: 'gauge',
    labels: OBJECT,
    process: 'operator',
    scope: 'object',
  },
] as const satisfies readonly MetricDefinition[];

export type MetricName = (typeof METRICS)[number]['name'];

/** The metrics a process exports: its own and the shared ones. */
export function definitionsOf(process: 'operator' | 'populator'): MetricDefinition[] {
  return METRICS.filter((m) => m.process === process || m.process === 'both');
}

/** Their names, without prom-client's process and Node metrics. */
export function metricNamesOf(process: 'operator' | 'populator'): string[] {
  return definitionsOf(process).map((m) => m.name);
}

/** One sample of an object metric, computed from the caches at scrape time. */
export interface Series {
  name: MetricName;
  labels: Record<string, string>;
  value: number;
}
