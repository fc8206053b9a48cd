// The object metrics (metric-catalog.ts, scope 'object') as pure functions of the objects the
// informer caches hold, computed at scrape time: an object that is gone from the cache has no
// series, so cardinality follows what exists. Labels carry names, kinds, modes, phases and
// Ready reasons only (reasons are PascalCase constants, reasons.ts), never messages or values
// from Secrets.
//
// A BackupConfig's status keeps only its last backup and last success; the rest comes from
// its Backups: those that name it (spec.configRef) and the snapshots of its identity in its
// repository that the catalog mirrored (origin Discovered) — a snapshot kopia keeps is kept,
// whoever made it. Backups that retention expired are removed by the catalog mirror.
import type {
  Backup,
  BackupConfig,
  BackupSchedule,
  Condition,
  Identity,
  Maintenance,
  RepositoryStatus,
  Restore,
} from '../../generated/types.js';
import { resolveIdentity } from '../backupconfig/backupconfig-identity.js';
import type { KubeObject, ResourceType } from '../kube/kube-client.js';
import {
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaBackupSchedules,
  KopiaClusterRepositories,
  KopiaMaintenances,
  KopiaRepositories,
  KopiaRestores,
  Namespaces,
} from '../kube/resources.js';
import { clusterName, FALLBACK_CLUSTER_NAME } from '../maintenance/cluster-name.js';
import { DEFAULT_INDEX_BLOB_WARNING_THRESHOLD, defaultOwner, lastRun } from '../maintenance/maintenance-plan.js';
import { canonicalPath } from '../mover/mover-contract.js';
import { snapshotGone } from '../deletion/snapshot-finalizer.js';
import { ConditionType } from '../reasons.js';
import { findCondition } from '../runtime/conditions.js';
import type { Informer } from '../runtime/informer.js';
import type { InformerFactory, InformerSelection } from '../runtime/kind-operator.js';
import type { MetricName, Series } from './metric-catalog.js';
import { ScheduleIntervals } from './schedule-interval.js';

/** Schedule intervals, remembered across scrapes; at most this much new cron work per scrape. */
const scheduleIntervals = new ScheduleIntervals();
export const INTERVAL_BUDGET_MS = 200;

type Obj<T> = KubeObject & Omit<T, 'apiVersion' | 'kind'>;
export type BackupConfigObject = Obj<BackupConfig>;
export type BackupScheduleObject = Obj<BackupSchedule>;
export type BackupObject = Obj<Backup>;
export type RestoreObject = Obj<Restore>;
export type MaintenanceObject = Obj<Maintenance>;
/** A Repository or ClusterRepository: only the status is read. */
export type RepositoryObject = KubeObject & { status?: RepositoryStatus };

const seconds = (ms: number) => ms / 1000;
/** Unix seconds of an RFC 3339 time; undefined when unset or unreadable. */
function unixSeconds(time: string | undefined): number | undefined {
  const ms = time ? Date.parse(time) : NaN;
  return Number.isNaN(ms) ? undefined : seconds(ms);
}

/** A series list builder that leaves out values that are not known (no sample beats a made-up one). */
class SeriesList {
  readonly items: Series[] = [];
  add(name: MetricName, labels: Record<string, string>, value: number | boolean | undefined): void {
    if (value === undefined || (typeof value === 'number' && !Number.isFinite(value))) return;
    this.items.push({ name, labels, value: typeof value === 'boolean' ? (value ? 1 : 0) : value });
  }
}

/** Condition reasons are PascalCase constants; anything else (a hand-written status) is not let into a label. */
const REASON = /^[A-Za-z][A-Za-z0-9]{0,127}$/;

/** 1/0 and the Ready reason; reason "" before the object's first reconcile. */
function readiness(conditions: Condition[] | undefined): { ready: boolean; reason: string } {
  const ready = findCondition(conditions, ConditionType.Ready);
  if (!ready) return { ready: false, reason: '' };
  return { ready: ready.status === 'True', reason: REASON.test(ready.reason) ? ready.reason : 'Unknown' };
}

const objectLabels = (o: KubeObject) => ({ namespace: o.metadata.namespace ?? '', name: o.metadata.name ?? '' });

// --- BackupConfig ---

/** Where a config's Backups are found: its own by name, mirrored ones by repository and identity. */
const ownKey = (namespace: string | undefined, config: string) => `own\0${namespace}\0${config}`;
const mirroredKey = (namespace: string | undefined, repo: { kind?: string; name: string } | undefined, id: Identity | undefined) =>
  `mirrored\0${namespace}\0${repo?.kind ?? 'Repository'}\0${repo?.name}\0${id?.username}@${id?.hostname}:${canonicalPath(id?.path ?? '')}`;

function pushTo<T>(map: Map<string, T[]>, key: string, item: T): void {
  const items = map.get(key);
  if (items) items.push(item);
  else map.set(key, [item]);
}

/** The Backups by config: one pass over them all, so a scrape stays linear in Backups (30,000 in the bench). */
export function indexBackups(backups: readonly BackupObject[]): Map<string, BackupObject[]> {
  const index = new Map<string, BackupObject[]>();
  for (const b of backups) {
    const key = b.spec.configRef
      ? ownKey(b.metadata.namespace, b.spec.configRef.name)
      : b.status?.origin === 'Discovered'
        ? mirroredKey(b.metadata.namespace, b.status.repository, b.status.snapshot?.identity)
        : undefined;
    if (key) pushTo(index, key, b);
  }
  return index;
}

/** The config's Backups: its own, and the mirrored snapshots of its identity in its repository. */
export function backupsOfConfig(config: BackupConfigObject, index: Map<string, BackupObject[]>): BackupObject[] {
  const ns = config.metadata.namespace;
  const identity = resolveIdentity(config.spec, config.metadata.name!, ns!);
  return [...(index.get(ownKey(ns, config.metadata.name!)) ?? []), ...(index.get(mirroredKey(ns, config.spec.repository, identity)) ?? [])];
}

const finishedAt = (b: BackupObject) => (b.status?.completionTime ? Date.parse(b.status.completionTime) : NaN);

/**
 * Failures since the last success: counted on the Backups, or — when failedBackupsHistoryLimit
 * pruned failed ones — taken from a schedule of the config whose own count started at or
 * after the config's last success (so every failure it counts came after that success).
 */
function consecutiveFailures(finished: BackupObject[], lastSuccessMs: number | undefined, schedules: BackupScheduleObject[]): number {
  const counted = finished.filter(
    (b) => b.status!.phase === 'Failed' && (lastSuccessMs === undefined || finishedAt(b) > lastSuccessMs),
  ).length;
  const fromSchedules = schedules.map((s) => {
    const since = s.status?.lastSuccessTime ? Date.parse(s.status.lastSuccessTime) : undefined;
    const covers = lastSuccessMs === undefined ? since === undefined : since !== undefined && since >= lastSuccessMs;
    return covers ? (s.status?.consecutiveFailures ?? 0) : 0;
  });
  return Math.max(counted, ...fromSchedules);
}

export function backupConfigSeries(
  configs: readonly BackupConfigObject[],
  schedules: readonly BackupScheduleObject[],
  backups: readonly BackupObject[],
  now: Date,
  intervals: ScheduleIntervals = scheduleIntervals,
): Series[] {
  const out = new SeriesList();
  const index = indexBackups(backups);
  const budget = intervals.budget(INTERVAL_BUDGET_MS);
  const schedulesOf = new Map<string, BackupScheduleObject[]>();
  for (const s of schedules) {
    const key = ownKey(s.metadata.namespace, s.spec.configRef.name);
    pushTo(schedulesOf, key, s);
  }
  for (const config of configs) {
    const labels = objectLabels(config);
    const { ready, reason } = readiness(config.status?.conditions);
    out.add('kopia_backupconfig_ready', { ...labels, reason }, ready);

    const mine = backupsOfConfig(config, index);
    const finished = mine
      .filter((b) => (b.status?.phase === 'Succeeded' || b.status?.phase === 'Failed') && !Number.isNaN(finishedAt(b)))
      .sort((a, b) => finishedAt(b) - finishedAt(a));
    const lastAttempt = finished[0];
    const lastSuccess = finished.find((b) => b.status!.phase === 'Succeeded');
    // The status remembers a success whose Backup is gone (deleted by hand, or expired).
    const successMs = [lastSuccess && finishedAt(lastSuccess), config.status?.lastSuccessTime && Date.parse(config.status.lastSuccessTime)]
      .filter((t): t is number => typeof t === 'number' && !Number.isNaN(t))
      .reduce<number | undefined>((a, b) => Math.max(a ?? b, b), undefined);
    out.add('kopia_backupconfig_last_success_timestamp_seconds', labels, successMs === undefined ? undefined : seconds(successMs));

    const mySchedules = schedulesOf.get(ownKey(config.metadata.namespace, config.metadata.name!)) ?? [];
    if (successMs !== undefined && (!lastAttempt || successMs > finishedAt(lastAttempt))) {
      // Only the status remembers the newest attempt, a success whose Backup is gone: its start and duration are unknown.
      out.add('kopia_backupconfig_last_attempt_succeeded', labels, true);
      out.add('kopia_backupconfig_consecutive_failures', labels, 0);
    } else if (lastAttempt) {
      const s = lastAttempt.status!;
      out.add('kopia_backupconfig_last_attempt_timestamp_seconds', labels, unixSeconds(s.startTime ?? s.completionTime));
      out.add('kopia_backupconfig_last_attempt_succeeded', labels, s.phase === 'Succeeded');
      const started = unixSeconds(s.startTime);
      const ended = unixSeconds(s.completionTime);
      out.add(
        'kopia_backupconfig_last_duration_seconds',
        labels,
        started !== undefined && ended !== undefined ? Math.max(0, ended - started) : undefined,
      );
      out.add('kopia_backupconfig_consecutive_failures', labels, consecutiveFailures(finished, successMs, mySchedules));
    }
    out.add('kopia_backupconfig_last_bytes', labels, lastSuccess?.status?.stats?.totalBytes);
    out.add('kopia_backupconfig_last_files', labels, lastSuccess?.status?.stats?.files);
    // A Backup whose snapshot the mirror found gone is on its way out: not a snapshot kept.
    out.add('kopia_backupconfig_snapshots', labels, mine.filter((b) => b.status?.phase === 'Succeeded' && !snapshotGone(b)).length);

    const running = mySchedules.filter((s) => !s.spec.suspend).map((s) => ({ cron: s.spec.cron, timeZone: s.spec.timeZone }));
    const gapMs = running.length ? intervals.intervalMs(running, now, budget) : undefined;
    out.add('kopia_backupconfig_schedule_interval_seconds', labels, gapMs === undefined ? undefined : seconds(gapMs));
  }
  return out.items;
}

// --- Restore ---

export const RESTORE_PHASES = ['Pending', 'Resolving', 'Restoring', 'Completed', 'Failed'] as const;

export function restoreSeries(restores: readonly RestoreObject[]): Series[] {
  const out = new SeriesList();
  for (const restore of restores) {
    const labels = objectLabels(restore);
    // A Restore the operator has not seen yet waits like a Pending one.
    const phase = restore.status?.phase ?? 'Pending';
    for (const p of RESTORE_PHASES) out.add('kopia_restore_phase', { ...labels, phase: p }, p === phase);
    const started = unixSeconds(restore.status?.startTime);
    out.add('kopia_restore_start_timestamp_seconds', labels, started);
    const ended = unixSeconds(restore.status?.completionTime);
    const finished = phase === 'Completed' || phase === 'Failed';
    out.add(
      'kopia_restore_duration_seconds',
      labels,
      finished && started !== undefined && ended !== undefined ? Math.max(0, ended - started) : undefined,
    );
  }
  return out.items;
}

// --- Repository and ClusterRepository ---

export function repositorySeries(kind: 'Repository' | 'ClusterRepository', repositories: readonly RepositoryObject[]): Series[] {
  const out = new SeriesList();
  for (const repo of repositories) {
    const labels = { kind, namespace: kind === 'ClusterRepository' ? '' : (repo.metadata.namespace ?? ''), name: repo.metadata.name ?? '' };
    const status = repo.status;
    const { ready, reason } = readiness(status?.conditions);
    out.add('kopia_repository_ready', { ...labels, reason }, ready);
    out.add('kopia_repository_snapshots', labels, status?.snapshotCount);
    // Verified = connected: lastCheckTime moves on failed verifications too.
    out.add('kopia_repository_last_verify_timestamp_seconds', labels, unixSeconds(status?.lastConnectTime));
    const paused = findCondition(status?.conditions, ConditionType.DeletionsPaused);
    out.add('kopia_repository_deletions_paused', labels, paused ? paused.status === 'True' : (status?.deletions?.waiting ?? 0) > 0);
    out.add('kopia_repository_deletions_waiting', labels, status?.deletions?.waiting ?? 0);
    out.add('kopia_repository_catalog_last_sync_timestamp_seconds', labels, unixSeconds(status?.catalog?.lastSyncTime));
    out.add('kopia_repository_catalog_snapshots', labels, status?.catalog?.snapshots);
    out.add('kopia_catalog_upload_bytes', labels, status?.catalog?.uploadBytes);
  }
  return out.items;
}

// --- Maintenance ---

/**
 * `defaultOwner`: the owner a Maintenance without spec.owner runs as (maintenance@<cluster>).
 * Owner mismatch is the maintenance plan's own rule: kopia reported another owner at our last
 * run (which therefore failed); a changed spec.owner that the next run will set is not one.
 */
export function maintenanceSeries(maintenances: readonly MaintenanceObject[], defaultOwner: string): Series[] {
  const out = new SeriesList();
  for (const m of maintenances) {
    const labels = objectLabels(m);
    const status = m.status ?? {};
    out.add('kopia_maintenance_last_success_timestamp_seconds', { ...labels, mode: 'quick' }, unixSeconds(status.lastSuccessfulQuickTime));
    out.add('kopia_maintenance_last_success_timestamp_seconds', { ...labels, mode: 'full' }, unixSeconds(status.lastSuccessfulFullTime));
    if (!m.spec.suspend) {
      out.add('kopia_maintenance_next_run_timestamp_seconds', { ...labels, mode: 'quick' }, unixSeconds(status.nextQuickTime));
      out.add('kopia_maintenance_next_run_timestamp_seconds', { ...labels, mode: 'full' }, unixSeconds(status.nextFullTime));
    }
    const ours = m.spec.owner ?? defaultOwner;
    out.add('kopia_maintenance_owner_mismatch', labels, !!status.owner && status.owner !== ours && lastRun(status)?.result === 'Failed');
    out.add('kopia_maintenance_index_blobs', labels, status.indexBlobs?.count);
    out.add('kopia_maintenance_index_blobs_threshold', labels, m.spec.indexBlobWarningThreshold ?? DEFAULT_INDEX_BLOB_WARNING_THRESHOLD);
  }
  return out.items;
}

// --- the operator's caches ---

/**
 * An informer the process already keeps for the type (and selection), or undefined: a scrape
 * never makes one (it would be empty, and start with the next startAll).
 */
export function keptInformer<T extends KubeObject>(
  informers: InformerFactory,
  type: ResourceType,
  selection: InformerSelection = {},
): Informer<T> | undefined {
  const kept = informers.all().some((i) => i.type.group === type.group && i.type.plural === type.plural && i.type.version === type.version);
  return kept ? informers.get<T>(type, selection) : undefined;
}

/**
 * Every object series of the operator, from its informer caches (call on the leader, whose
 * caches are the ones reconciled from). `clusterName`: KOPIA_CLUSTER_NAME, as the operator
 * was given it (the default maintenance owner is derived from it, else from kube-system's UID).
 */
export function operatorObjectSeries(informers: InformerFactory, now: Date, options: { clusterName?: string } = {}): Series[] {
  const list = <T extends KubeObject>(type: ResourceType) => keptInformer<T>(informers, type)?.list() ?? [];
  const namespaces = keptInformer<KubeObject>(informers, Namespaces);
  const cluster = namespaces ? clusterName(options, namespaces) : (options.clusterName ?? FALLBACK_CLUSTER_NAME);
  return [
    ...backupConfigSeries(
      list<BackupConfigObject>(KopiaBackupConfigs),
      list<BackupScheduleObject>(KopiaBackupSchedules),
      list<BackupObject>(KopiaBackups),
      now,
    ),
    ...restoreSeries(list<RestoreObject>(KopiaRestores)),
    ...repositorySeries('Repository', list<RepositoryObject>(KopiaRepositories)),
    ...repositorySeries('ClusterRepository', list<RepositoryObject>(KopiaClusterRepositories)),
    ...maintenanceSeries(list<MaintenanceObject>(KopiaMaintenances), defaultOwner(cluster)),
  ];
}
