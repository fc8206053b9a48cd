// The cost of one scrape's BackupConfig series, in-process: a scrape runs on the leader's
// event loop, which also renews its Lease. 500 configs with 60 Backups each (30,000) and
// 500 schedules over 60 distinct crons; the first scrape computes each cron's interval,
// later ones reuse it. Measured here, never asserted in a test (timed tests flake under load).
import {
  backupConfigSeries,
  INTERVAL_BUDGET_MS,
  type BackupConfigObject,
  type BackupObject,
  type BackupScheduleObject,
} from '../operator/metrics/object-metrics.js';
import { longestGapMs, ScheduleIntervals } from '../operator/metrics/schedule-interval.js';
import { say } from './bench-support.js';

const CONFIGS = Number(process.env.BENCH_METRICS_CONFIGS ?? 500);
const BACKUPS_PER_CONFIG = Number(process.env.BENCH_METRICS_BACKUPS ?? 60);
const now = new Date('2027-05-01T12:00:00Z');
const day = (d: number) => `2027-04-${String((d % 28) + 1).padStart(2, '0')}`;

export function benchMetricsScrape(): Record<string, unknown> {
  const configs = Array.from({ length: CONFIGS }, (_, i) => ({
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name: `app-${i}`, namespace: 'bench', generation: 1 },
    spec: { repository: { name: 'nas' }, source: { pvc: `app-${i}` } },
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: '', lastTransitionTime: '2027-04-01T00:00:00Z' }],
      identity: { username: `app-${i}`, hostname: 'bench', path: '/data' },
    },
  })) as unknown as BackupConfigObject[];
  const schedules = configs.map((c, i) => ({
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupSchedule',
    metadata: { name: c.metadata.name, namespace: 'bench' },
    spec: { configRef: { name: c.metadata.name }, cron: `${i % 60} 2 * * *`, timeZone: 'Europe/Berlin' },
  })) as unknown as BackupScheduleObject[];
  const backups = configs.flatMap((c, i) =>
    Array.from({ length: BACKUPS_PER_CONFIG }, (_, d) => ({
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: { name: `${c.metadata.name}-${d}`, namespace: 'bench' },
      spec: { configRef: { name: c.metadata.name } },
      status: {
        phase: 'Succeeded',
        origin: 'Scheduled',
        startTime: `${day(d)}T02:00:00Z`,
        completionTime: `${day(d)}T02:05:00Z`,
        snapshot: { id: `k${i}x${d}`, identity: { username: c.metadata.name, hostname: 'bench', path: '/data' } },
        stats: { totalBytes: 1000, files: 10 },
      },
    })),
  ) as unknown as BackupObject[];
  const t0 = performance.now();
  const series = backupConfigSeries(configs, schedules, backups, now);
  const firstMs = performance.now() - t0;
  const nextRuns: number[] = [];
  for (let k = 1; k <= 5; k++) {
    const t = performance.now();
    backupConfigSeries(configs, schedules, backups, new Date(now.getTime() + k * 30_000));
    nextRuns.push(performance.now() - t);
  }
  const nextMs = nextRuns.sort((a, b) => a - b)[2];
  // A minute cron on weekdays: its interval must come from probes, not from listing 11,520 runs.
  const t1 = performance.now();
  longestGapMs([{ cron: '* * * * 1-5', timeZone: 'Europe/Berlin' }], now);
  const minuteCronMs = performance.now() - t1;
  // A tenant's worst: 300 schedules of one config, each a minute cron in another time
  // zone. One scrape may spend only the budget on new intervals; the rest come in later scrapes.
  const zones = Intl.supportedValuesOf('timeZone').slice(0, 300);
  const hostile = zones.map((timeZone, i) => ({
    ...schedules[0],
    metadata: { name: `hostile-${i}`, namespace: 'bench' },
    spec: { configRef: { name: configs[0].metadata.name }, cron: '* * * * *', timeZone },
  })) as unknown as BackupScheduleObject[];
  const fresh = new ScheduleIntervals();
  const hostileScrapesMs: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t = performance.now();
    backupConfigSeries(configs.slice(0, 1), hostile, [], new Date(now.getTime() + k * 30_000), fresh);
    hostileScrapesMs.push(Math.round(performance.now() - t));
  }
  const result = {
    configs: CONFIGS,
    backups: backups.length,
    schedules: schedules.length,
    series: series.length,
    firstScrapeMs: Math.round(firstMs),
    nextScrapeMedianMs: Math.round(nextMs),
    weekdayMinuteCronIntervalMs: Math.round(minuteCronMs),
    hostile300ZonesScrapesMs: hostileScrapesMs,
    intervalBudgetMs: INTERVAL_BUDGET_MS,
    target: 'a scrape well under the 2 s lease retry period',
  };
  say(
    `metrics: ${CONFIGS} configs, ${backups.length} Backups: first scrape ${result.firstScrapeMs} ms, then ${result.nextScrapeMedianMs} ms (median of 5)`,
  );
  return result;
}
