import type { Condition } from '../../../generated/types.js';
import { validObjects, withFields } from '../../test-support/kopia-objects.js';
import { METRICS, type Series } from '../metric-catalog.js';
import {
  backupConfigSeries,
  maintenanceSeries,
  repositorySeries,
  restoreSeries,
  type BackupConfigObject,
  type BackupObject,
  type BackupScheduleObject,
  type MaintenanceObject,
  type RepositoryObject,
  type RestoreObject,
} from '../object-metrics.js';

const NOW = new Date('2027-06-07T12:00:00Z');
const unix = (iso: string) => Date.parse(iso) / 1000;

/** The value of the one series with this name and these labels (undefined: no such series). */
function valueOf(series: Series[], name: string, labels: Record<string, string>): number | undefined {
  const found = series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} series ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

const ready = (status: 'True' | 'False', reason: string, message = 'what happened'): Condition => ({
  type: 'Ready',
  status,
  reason,
  message,
  lastTransitionTime: '2027-06-01T00:00:00Z',
});

const config = (edits: Record<string, unknown> = {}): BackupConfigObject =>
  withFields(validObjects.BackupConfig(), {
    status: {
      conditions: [ready('True', 'Ready')],
      identity: { username: 'jellyfin', hostname: 'media', path: '/data' },
      identityString: 'jellyfin@media:/data',
    },
    ...edits,
  }) as BackupConfigObject;

let made = 0;
/** A Backup of the jellyfin config (or, with origin Discovered, a mirrored snapshot). */
function backup(phase: string, startTime: string, completionTime: string | undefined, edits: Record<string, unknown> = {}): BackupObject {
  return withFields(validObjects.Backup(), {
    'metadata.name': `jellyfin-${++made}`,
    'metadata.generateName': undefined,
    status: {
      phase,
      origin: 'Manual',
      repository: { kind: 'Repository', name: 'nas' },
      startTime,
      completionTime,
      snapshot: { id: `k${made}`, identity: { username: 'jellyfin', hostname: 'media', path: '/data' } },
      stats: { totalBytes: 1000 * made, files: 10 * made },
    },
    ...edits,
  }) as BackupObject;
}

const discovered = (startTime: string, completionTime: string, identity = { username: 'jellyfin', hostname: 'media', path: '/data/' }) =>
  backup('Succeeded', startTime, completionTime, {
    spec: { snapshot: { repository: { name: 'nas' }, id: 'kd', identity }, deletionPolicy: 'Retain' },
    'status.origin': 'Discovered',
    'status.snapshot.identity': identity,
  });

const schedule = (edits: Record<string, unknown> = {}): BackupScheduleObject =>
  withFields(validObjects.BackupSchedule(), edits) as BackupScheduleObject;

const JELLYFIN = { namespace: 'media', name: 'jellyfin' };

describe('BackupConfig series', () => {
  it('exports Ready as 1/0 with its reason', () => {
    expect(valueOf(backupConfigSeries([config()], [], [], NOW), 'kopia_backupconfig_ready', { ...JELLYFIN, reason: 'Ready' })).toBe(1);
    const notReady = config({ 'status.conditions': [ready('False', 'RepositoryNotReady')] });
    expect(
      valueOf(backupConfigSeries([notReady], [], [], NOW), 'kopia_backupconfig_ready', { ...JELLYFIN, reason: 'RepositoryNotReady' }),
    ).toBe(0);
    // Not reconciled yet: not Ready, no reason.
    expect(valueOf(backupConfigSeries([config({ status: undefined })], [], [], NOW), 'kopia_backupconfig_ready', JELLYFIN)).toBe(0);
  });

  it('tells the last success, the last attempt and its result, duration, size and the snapshots kept', () => {
    const ok = backup('Succeeded', '2027-06-07T03:00:00Z', '2027-06-07T03:05:00Z');
    const failed = backup('Failed', '2027-06-07T09:00:00Z', '2027-06-07T09:02:00Z', { 'status.stats': undefined });
    const running = backup('Running', '2027-06-07T11:59:00Z', undefined);
    const series = backupConfigSeries([config()], [], [ok, failed, running], NOW);
    expect(valueOf(series, 'kopia_backupconfig_last_success_timestamp_seconds', JELLYFIN)).toBe(unix('2027-06-07T03:05:00Z'));
    expect(valueOf(series, 'kopia_backupconfig_last_attempt_timestamp_seconds', JELLYFIN)).toBe(unix('2027-06-07T09:00:00Z'));
    // A failure after a success: the last attempt did not succeed.
    expect(valueOf(series, 'kopia_backupconfig_last_attempt_succeeded', JELLYFIN)).toBe(0);
    expect(valueOf(series, 'kopia_backupconfig_consecutive_failures', JELLYFIN)).toBe(1);
    expect(valueOf(series, 'kopia_backupconfig_last_duration_seconds', JELLYFIN)).toBe(120);
    // Bytes and files of the newest snapshot that exists, not of the failed attempt.
    expect(valueOf(series, 'kopia_backupconfig_last_bytes', JELLYFIN)).toBe(ok.status!.stats!.totalBytes);
    expect(valueOf(series, 'kopia_backupconfig_last_files', JELLYFIN)).toBe(ok.status!.stats!.files);
    expect(valueOf(series, 'kopia_backupconfig_snapshots', JELLYFIN)).toBe(1);

    // A later success clears the failure.
    const again = backup('Succeeded', '2027-06-07T10:00:00Z', '2027-06-07T10:30:00Z');
    const after = backupConfigSeries([config()], [], [ok, failed, running, again], NOW);
    expect(valueOf(after, 'kopia_backupconfig_last_attempt_succeeded', JELLYFIN)).toBe(1);
    expect(valueOf(after, 'kopia_backupconfig_consecutive_failures', JELLYFIN)).toBe(0);
    expect(valueOf(after, 'kopia_backupconfig_last_duration_seconds', JELLYFIN)).toBe(1800);
    expect(valueOf(after, 'kopia_backupconfig_last_bytes', JELLYFIN)).toBe(again.status!.stats!.totalBytes);
    expect(valueOf(after, 'kopia_backupconfig_snapshots', JELLYFIN)).toBe(2);
  });

  it('counts failures since the last success, and has no attempt series before the first backup finished', () => {
    const fails = [1, 2, 3].map((h) => backup('Failed', `2027-06-0${h}T03:00:00Z`, `2027-06-0${h}T03:01:00Z`));
    const old = backup('Succeeded', '2027-05-30T03:00:00Z', '2027-05-30T03:10:00Z');
    expect(valueOf(backupConfigSeries([config()], [], [old, ...fails], NOW), 'kopia_backupconfig_consecutive_failures', JELLYFIN)).toBe(3);

    const fresh = backupConfigSeries([config()], [], [backup('Running', '2027-06-07T11:59:00Z', undefined)], NOW);
    for (const name of [
      'kopia_backupconfig_last_attempt_timestamp_seconds',
      'kopia_backupconfig_last_attempt_succeeded',
      'kopia_backupconfig_consecutive_failures',
      'kopia_backupconfig_last_duration_seconds',
      'kopia_backupconfig_last_success_timestamp_seconds',
      'kopia_backupconfig_last_bytes',
    ])
      expect(valueOf(fresh, name, JELLYFIN)).toBeUndefined();
    expect(valueOf(fresh, 'kopia_backupconfig_snapshots', JELLYFIN)).toBe(0);
  });

  it("takes the schedule's failure count when failed Backups were pruned, but not failures from before a newer success", () => {
    const ok = backup('Succeeded', '2027-06-01T03:00:00Z', '2027-06-01T03:05:00Z');
    const failed = backup('Failed', '2027-06-07T03:00:00Z', '2027-06-07T03:01:00Z');
    const nightly = schedule({ status: { lastSuccessTime: '2027-06-01T03:05:00Z', consecutiveFailures: 6 } });
    expect(valueOf(backupConfigSeries([config()], [nightly], [ok, failed], NOW), 'kopia_backupconfig_consecutive_failures', JELLYFIN)).toBe(
      6,
    );
    // A manual success after the schedule's last one: the schedule's count reaches back past it.
    const manual = backup('Succeeded', '2027-06-05T12:00:00Z', '2027-06-05T12:05:00Z');
    expect(
      valueOf(backupConfigSeries([config()], [nightly], [ok, manual, failed], NOW), 'kopia_backupconfig_consecutive_failures', JELLYFIN),
    ).toBe(1);
  });

  it('counts a mirrored snapshot of its identity in its repository as kept and as a success, and nobody else’s', () => {
    const mirrored = discovered('2027-06-06T03:00:00Z', '2027-06-06T03:04:00Z');
    const otherIdentity = discovered('2027-06-06T04:00:00Z', '2027-06-06T04:04:00Z', {
      username: 'sonarr',
      hostname: 'media',
      path: '/data',
    });
    const otherRepository = withFields(discovered('2027-06-06T05:00:00Z', '2027-06-06T05:04:00Z'), {
      'status.repository': { kind: 'ClusterRepository', name: 'nas' },
    });
    const otherConfig = backup('Succeeded', '2027-06-06T06:00:00Z', '2027-06-06T06:04:00Z', { 'spec.configRef': { name: 'sonarr' } });
    const otherNamespace = backup('Succeeded', '2027-06-06T07:00:00Z', '2027-06-06T07:04:00Z', { 'metadata.namespace': 'other' });
    const series = backupConfigSeries([config()], [], [mirrored, otherIdentity, otherRepository, otherConfig, otherNamespace], NOW);
    expect(valueOf(series, 'kopia_backupconfig_snapshots', JELLYFIN)).toBe(1);
    expect(valueOf(series, 'kopia_backupconfig_last_success_timestamp_seconds', JELLYFIN)).toBe(unix('2027-06-06T03:04:00Z'));
    expect(valueOf(series, 'kopia_backupconfig_last_attempt_succeeded', JELLYFIN)).toBe(1);
  });

  it("keeps the status's last success when its Backup is gone, and an older failure does not make it failing", () => {
    const series = backupConfigSeries([config({ 'status.lastSuccessTime': '2027-06-07T03:05:00Z' })], [], [], NOW);
    expect(valueOf(series, 'kopia_backupconfig_last_success_timestamp_seconds', JELLYFIN)).toBe(unix('2027-06-07T03:05:00Z'));
    const older = backup('Failed', '2027-06-06T03:00:00Z', '2027-06-06T03:01:00Z');
    const withOlder = backupConfigSeries([config({ 'status.lastSuccessTime': '2027-06-07T03:05:00Z' })], [], [older], NOW);
    expect(valueOf(withOlder, 'kopia_backupconfig_last_attempt_succeeded', JELLYFIN)).toBe(1);
    expect(valueOf(withOlder, 'kopia_backupconfig_consecutive_failures', JELLYFIN)).toBe(0);
    // Its start is not known: no attempt time rather than the older failure's.
    expect(valueOf(withOlder, 'kopia_backupconfig_last_attempt_timestamp_seconds', JELLYFIN)).toBeUndefined();
  });

  it('exports the schedule interval of its unsuspended schedules only, honouring their time zone', () => {
    const nightly = schedule({ 'spec.cron': '30 2 * * *', 'spec.timeZone': 'Europe/Berlin' });
    const interval = (schedules: BackupScheduleObject[], now = NOW) =>
      valueOf(backupConfigSeries([config()], schedules, [], now), 'kopia_backupconfig_schedule_interval_seconds', JELLYFIN);
    expect(interval([nightly])).toBe(86_400);
    // The week of the autumn change: 02:30 comes 25 h after the day before.
    expect(interval([nightly], new Date('2027-10-27T12:00:00Z'))).toBe(25 * 3600);
    expect(interval([withFields(nightly, { 'spec.suspend': true })])).toBeUndefined();
    expect(interval([withFields(nightly, { 'spec.configRef.name': 'sonarr' })])).toBeUndefined();
    expect(interval([])).toBeUndefined();
    // A second, unsuspended schedule: the shorter of the two schedules' own longest gaps (both
    // daily here), a bound the pair never exceeds, so staleness is never alerted early.
    expect(interval([nightly, schedule({ 'metadata.name': 'noon', 'spec.cron': '30 14 * * *', 'spec.timeZone': 'Europe/Berlin' })])).toBe(
      86_400,
    );
    expect(interval([nightly, schedule({ 'metadata.name': 'hourly', 'spec.cron': '15 * * * *' })])).toBe(3_600);
  });

  it('counts right at the bench scale: 500 configs, 30,000 Backups, 500 schedules', () => {
    const configs = Array.from({ length: 500 }, (_, i) => config({ 'metadata.name': `app-${i}` }));
    const schedules = configs.map((c, i) =>
      schedule({
        'metadata.name': `${c.metadata.name}-nightly`,
        'spec.configRef.name': c.metadata.name,
        'spec.cron': `${i % 60} 2 * * *`,
        'spec.timeZone': 'Europe/Berlin',
      }),
    );
    const backups = configs.flatMap((c) =>
      Array.from({ length: 60 }, (_, d) =>
        backup(
          'Succeeded',
          `2027-04-${String((d % 28) + 1).padStart(2, '0')}T02:00:00Z`,
          `2027-04-${String((d % 28) + 1).padStart(2, '0')}T02:05:00Z`,
          {
            'spec.configRef.name': c.metadata.name,
          },
        ),
      ),
    );
    const series = backupConfigSeries(configs, schedules, backups, NOW);
    expect(series.filter((s) => s.name === 'kopia_backupconfig_snapshots').every((s) => s.value === 60)).toBe(true);
    expect(series.filter((s) => s.name === 'kopia_backupconfig_schedule_interval_seconds').every((s) => s.value === 86_400)).toBe(true);
    // Its cost is measured by `make bench` (group metrics), not asserted here: timed tests flake under load.
  });

  it('has no series for a config that is gone, even while its Backups remain', () => {
    const sonarr = config({ 'metadata.name': 'sonarr' });
    const ok = backup('Succeeded', '2027-06-07T03:00:00Z', '2027-06-07T03:05:00Z');
    const series = backupConfigSeries([sonarr], [schedule()], [ok], NOW);
    expect(series.filter((s) => s.labels.name === 'jellyfin')).toEqual([]);
    expect(series.length).toBeGreaterThan(0);
  });
});

const restore = (edits: Record<string, unknown> = {}): RestoreObject => withFields(validObjects.Restore(), edits) as RestoreObject;
const RESTORE = { namespace: 'media', name: 'jellyfin-config' };

describe('Restore series', () => {
  it('sets the current phase to 1 and the four others to 0', () => {
    const series = restoreSeries([restore({ status: { phase: 'Restoring', startTime: '2027-06-07T11:00:00Z' } })]);
    const phases = series.filter((s) => s.name === 'kopia_restore_phase').map((s) => [s.labels.phase, s.value]);
    expect(Object.fromEntries(phases)).toEqual({ Pending: 0, Resolving: 0, Restoring: 1, Completed: 0, Failed: 0 });
    expect(valueOf(series, 'kopia_restore_start_timestamp_seconds', RESTORE)).toBe(unix('2027-06-07T11:00:00Z'));
    expect(valueOf(series, 'kopia_restore_duration_seconds', RESTORE)).toBeUndefined();
  });

  it('tells the duration once finished, Completed or Failed', () => {
    for (const phase of ['Completed', 'Failed']) {
      const series = restoreSeries([
        restore({ status: { phase, startTime: '2027-06-07T11:00:00Z', completionTime: '2027-06-07T11:10:00Z' } }),
      ]);
      expect(valueOf(series, 'kopia_restore_phase', { ...RESTORE, phase })).toBe(1);
      expect(valueOf(series, 'kopia_restore_duration_seconds', RESTORE)).toBe(600);
    }
  });

  it('counts a Restore the operator has not seen yet as Pending, and has nothing for one that is gone', () => {
    expect(valueOf(restoreSeries([restore()]), 'kopia_restore_phase', { ...RESTORE, phase: 'Pending' })).toBe(1);
    expect(restoreSeries([])).toEqual([]);
  });
});

const repoStatus = {
  conditions: [ready('True', 'Verified'), { ...ready('True', 'DeletionsPaused'), type: 'DeletionsPaused' }],
  snapshotCount: 42,
  lastCheckTime: '2027-06-07T11:30:00Z',
  lastConnectTime: '2027-06-07T10:00:00Z',
  deletions: { waiting: 7, count: 30 },
  catalog: { lastSyncTime: '2027-06-07T11:00:00Z', snapshots: 40, incomplete: 1, uploadBytes: 5120 },
};

describe('Repository and ClusterRepository series', () => {
  it('exports readiness, counts and times of a Repository', () => {
    const repo = withFields(validObjects.Repository(), { status: repoStatus }) as unknown as RepositoryObject;
    const labels = { kind: 'Repository', namespace: 'media', name: 'nas' };
    const series = repositorySeries('Repository', [repo]);
    expect(valueOf(series, 'kopia_repository_ready', { ...labels, reason: 'Verified' })).toBe(1);
    expect(valueOf(series, 'kopia_repository_snapshots', labels)).toBe(42);
    // Verified is when it last connected; a failed check moves lastCheckTime only.
    expect(valueOf(series, 'kopia_repository_last_verify_timestamp_seconds', labels)).toBe(unix('2027-06-07T10:00:00Z'));
    expect(valueOf(series, 'kopia_repository_deletions_paused', labels)).toBe(1);
    expect(valueOf(series, 'kopia_repository_deletions_waiting', labels)).toBe(7);
    expect(valueOf(series, 'kopia_repository_catalog_last_sync_timestamp_seconds', labels)).toBe(unix('2027-06-07T11:00:00Z'));
    expect(valueOf(series, 'kopia_repository_catalog_snapshots', labels)).toBe(40);
    expect(valueOf(series, 'kopia_catalog_upload_bytes', labels)).toBe(5120);
  });

  it('gives a ClusterRepository namespace "" and an unreachable one 0 with its reason', () => {
    const repo = withFields(validObjects.ClusterRepository(), {
      status: { conditions: [ready('False', 'Unreachable', 'dial tcp: connection refused')], deletions: { waiting: 0 } },
    }) as unknown as RepositoryObject;
    const labels = { kind: 'ClusterRepository', namespace: '', name: 'shared' };
    const series = repositorySeries('ClusterRepository', [repo]);
    expect(valueOf(series, 'kopia_repository_ready', { ...labels, reason: 'Unreachable' })).toBe(0);
    expect(valueOf(series, 'kopia_repository_deletions_paused', labels)).toBe(0);
    expect(valueOf(series, 'kopia_repository_deletions_waiting', labels)).toBe(0);
    // Never verified, never listed: no made-up times or counts.
    expect(valueOf(series, 'kopia_repository_last_verify_timestamp_seconds', labels)).toBeUndefined();
    expect(valueOf(series, 'kopia_repository_snapshots', labels)).toBeUndefined();
    expect(valueOf(series, 'kopia_repository_catalog_snapshots', labels)).toBeUndefined();
  });
});

const maintenance = (edits: Record<string, unknown> = {}): MaintenanceObject =>
  withFields(validObjects.Maintenance(), {
    status: {
      owner: 'maintenance@cluster-1',
      lastQuick: { startTime: '2027-06-07T10:00:00Z', endTime: '2027-06-07T10:01:00Z', result: 'Succeeded' },
      lastFull: { startTime: '2027-06-06T02:00:00Z', endTime: '2027-06-06T02:20:00Z', result: 'Succeeded' },
      lastSuccessfulQuickTime: '2027-06-07T10:01:00Z',
      lastSuccessfulFullTime: '2027-06-06T02:20:00Z',
      nextQuickTime: '2027-06-07T11:00:00Z',
      nextFullTime: '2027-06-08T02:00:00Z',
      indexBlobs: { count: 120, warningThreshold: 1000 },
    },
    ...edits,
  }) as MaintenanceObject;
const NAS = { namespace: 'media', name: 'nas' };

describe('Maintenance series', () => {
  it('exports last successes and next runs by mode, index blobs and the threshold', () => {
    const series = maintenanceSeries([maintenance()], 'maintenance@cluster-1');
    expect(valueOf(series, 'kopia_maintenance_last_success_timestamp_seconds', { ...NAS, mode: 'quick' })).toBe(
      unix('2027-06-07T10:01:00Z'),
    );
    expect(valueOf(series, 'kopia_maintenance_last_success_timestamp_seconds', { ...NAS, mode: 'full' })).toBe(
      unix('2027-06-06T02:20:00Z'),
    );
    expect(valueOf(series, 'kopia_maintenance_next_run_timestamp_seconds', { ...NAS, mode: 'quick' })).toBe(unix('2027-06-07T11:00:00Z'));
    expect(valueOf(series, 'kopia_maintenance_next_run_timestamp_seconds', { ...NAS, mode: 'full' })).toBe(unix('2027-06-08T02:00:00Z'));
    expect(valueOf(series, 'kopia_maintenance_owner_mismatch', NAS)).toBe(0);
    expect(valueOf(series, 'kopia_maintenance_index_blobs', NAS)).toBe(120);
    expect(valueOf(series, 'kopia_maintenance_index_blobs_threshold', NAS)).toBe(1000);
    expect(
      valueOf(
        maintenanceSeries([maintenance({ 'spec.indexBlobWarningThreshold': 300 })], 'maintenance@cluster-1'),
        'kopia_maintenance_index_blobs_threshold',
        NAS,
      ),
    ).toBe(300);
  });

  it('has no next run while suspended (even when an older status still names one)', () => {
    const series = maintenanceSeries([maintenance({ 'spec.suspend': true })], 'maintenance@cluster-1');
    expect(series.filter((s) => s.name === 'kopia_maintenance_next_run_timestamp_seconds')).toEqual([]);
    expect(valueOf(series, 'kopia_maintenance_last_success_timestamp_seconds', { ...NAS, mode: 'full' })).toBe(
      unix('2027-06-06T02:20:00Z'),
    );
  });

  it('is owner-mismatched when kopia reported another owner at our last run, by the default owner or spec.owner', () => {
    const other = {
      'status.owner': 'admin@laptop',
      'status.lastQuick': { startTime: '2027-06-07T11:00:00Z', endTime: '2027-06-07T11:00:10Z', result: 'Failed' },
    };
    expect(valueOf(maintenanceSeries([maintenance(other)], 'maintenance@cluster-1'), 'kopia_maintenance_owner_mismatch', NAS)).toBe(1);
    expect(
      valueOf(
        maintenanceSeries([maintenance({ ...other, 'spec.owner': 'admin@laptop' })], 'maintenance@cluster-1'),
        'kopia_maintenance_owner_mismatch',
        NAS,
      ),
    ).toBe(0);
    // Our own run failed for another reason: the owner is still ours.
    const failedOurs = { 'status.lastQuick': other['status.lastQuick'] };
    expect(valueOf(maintenanceSeries([maintenance(failedOurs)], 'maintenance@cluster-1'), 'kopia_maintenance_owner_mismatch', NAS)).toBe(0);
    // spec.owner changed: the next run takes the new owner; nothing is wrong yet.
    expect(
      valueOf(
        maintenanceSeries([maintenance({ 'spec.owner': 'backup@nas' })], 'maintenance@cluster-1'),
        'kopia_maintenance_owner_mismatch',
        NAS,
      ),
    ).toBe(0);
  });
});

describe('labels', () => {
  const secretish = 'password=hunter2 at s3://key:secret@bucket';
  const all = (): Series[] => [
    ...backupConfigSeries(
      [config({ 'status.conditions': [ready('False', secretish, secretish)] })],
      [schedule()],
      [
        backup('Succeeded', '2027-06-06T03:00:00Z', '2027-06-06T03:01:00Z'),
        backup('Failed', '2027-06-07T03:00:00Z', '2027-06-07T03:01:00Z', { 'status.message': secretish }),
      ],
      NOW,
    ),
    ...restoreSeries([
      restore({
        status: {
          phase: 'Failed',
          startTime: '2027-06-07T11:00:00Z',
          completionTime: '2027-06-07T11:10:00Z',
          message: secretish,
          conditions: [ready('False', 'SnapshotMissing', secretish)],
        },
      }),
    ]),
    ...repositorySeries('Repository', [
      withFields(validObjects.Repository(), {
        status: { ...repoStatus, conditions: [ready('False', 'WrongPassword', secretish)], catalog: { lastError: secretish } },
      }) as unknown as RepositoryObject,
    ]),
    ...repositorySeries('ClusterRepository', [
      withFields(validObjects.ClusterRepository(), { status: repoStatus }) as unknown as RepositoryObject,
    ]),
    ...maintenanceSeries([maintenance({ 'status.lastQuick.error': secretish })], 'maintenance@cluster-1'),
  ];

  it('are exactly the catalogue’s labels of each metric, and every metric is an object metric', () => {
    const series = all();
    for (const s of series) {
      const def = METRICS.find((m) => m.name === s.name);
      expect(def?.scope).toBe('object');
      expect(Object.keys(s.labels).sort()).toEqual([...def!.labels].sort());
    }
    // Every operator object metric is produced by these fixtures.
    const produced = new Set(series.map((s) => s.name));
    const expected = METRICS.filter((m) => m.scope === 'object' && m.process === 'operator').map((m) => m.name);
    expect(expected.filter((n) => !produced.has(n))).toEqual([]);
  });

  it('never carry messages or anything but a PascalCase Ready reason', () => {
    const series = all();
    expect(JSON.stringify(series)).not.toContain('hunter2');
    expect(JSON.stringify(series)).not.toContain('secret');
    const reasons = new Set(series.filter((s) => 'reason' in s.labels).map((s) => s.labels.reason));
    expect([...reasons].sort()).toEqual(['Unknown', 'Verified', 'WrongPassword']);
    const names = new Set(['media', 'jellyfin', 'jellyfin-config', 'nas', 'shared', '']);
    for (const s of series)
      for (const [key, value] of Object.entries(s.labels)) {
        if (key === 'namespace' || key === 'name') expect(names).toContain(value);
        else if (key === 'kind') expect(['Repository', 'ClusterRepository']).toContain(value);
        else if (key === 'phase') expect(['Pending', 'Resolving', 'Restoring', 'Completed', 'Failed']).toContain(value);
        else if (key === 'mode') expect(['quick', 'full']).toContain(value);
        else expect(key).toBe('reason');
      }
  });
});
