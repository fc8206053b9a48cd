// How long a config may go without a run: the longest gap between consecutive cron times of
// its BackupSchedules together, over the next 8 days (a weekday-only cron's weekend gap is
// in every such window), on the project's own cron clock (time zone and daylight saving:
// a daily 02:30 in Berlin has a 25 h gap on the autumn change).
//
// Listing every run is too slow for a minute cron at scrape time (~80 µs a run, 11,520 runs
// in 8 days), so the gaps are found by probing instead: the run before and the run after a
// point are consecutive, and a gap longer than the probes' spacing holds a probe. The spacing
// grows with the longest gap found (a daily cron takes about nine probes). When no gap is
// longer than PROBE_MS, the runs of the next day are listed one by one.
import { CronTimes } from '../runtime/cron-times.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
export const INTERVAL_HORIZON_MS = 8 * DAY;
const PROBE_MS = HOUR;
/** Sub-hourly crons: their runs over this long are listed (a day's pattern, and then some). */
const DENSE_SCAN_MS = 25 * HOUR;
/** A result is kept this long per set of schedules: the 8-day window barely moves meanwhile. */
const REMEMBER_MS = 10 * MINUTE;

export interface CronSchedule {
  cron: string;
  /** IANA zone; unset is UTC, as the schedule operator reads it. */
  timeZone?: string;
}

/** The longest gap in milliseconds, or undefined when the schedules make fewer than two runs (or none can be read). */
export function longestGapMs(schedules: readonly CronSchedule[], now: Date): number | undefined {
  const crons = schedules.flatMap((s) => {
    try {
      return [new CronTimes(s.cron, s.timeZone ?? 'UTC')];
    } catch {
      return []; // the schedule itself is not Ready (InvalidSchedule, InvalidTimeZone) and makes no runs
    }
  });
  if (!crons.length) return undefined;
  const next = (after: number) => earliest(crons.map((c) => c.nextRun(new Date(after))?.getTime()));
  const previous = (before: number) => latest(crons.map((c) => c.previousRun(new Date(before))?.getTime()));

  // A cron that never runs again (30 February) answers only after a long search: ask once.
  if (next(now.getTime()) === undefined) return undefined;
  let longest: number | undefined;
  // The first probe falls between whole minutes, the later ones half a second before whole
  // seconds: never on a run (runs are at whole minutes, or whole seconds after a spring-forward
  // gap), whose neighbours are not consecutive. After a probe found the gap (before, after),
  // the next probe comes `step` after `after`: every later gap longer than step holds a probe,
  // and step never exceeds the longest gap found, so the longest (if over PROBE_MS) is found.
  const end = now.getTime() + INTERVAL_HORIZON_MS;
  let probe = Math.floor(now.getTime() / MINUTE) * MINUTE + MINUTE / 2;
  while (probe <= end) {
    const before = previous(probe);
    const after = next(probe);
    if (after === undefined) break;
    if (before !== undefined) longest = Math.max(longest ?? 0, after - before);
    probe = after + Math.max(longest ?? 0, PROBE_MS) - 500;
  }
  if (longest !== undefined && longest > PROBE_MS) return longest;

  // Every gap is an hour or less (or the probes saw no run before them): list the runs.
  const denseEnd = now.getTime() + DENSE_SCAN_MS;
  let run = next(now.getTime());
  while (run !== undefined && run <= denseEnd) {
    const following = next(run);
    if (following === undefined) break;
    longest = Math.max(longest ?? 0, following - run);
    run = following;
  }
  return longest;
}

const remembered = new Map<string, { gapMs: number | undefined; until: number }>();

/** longestGapMs, kept for a few minutes per set of schedules (scrapes come every 15-60 s). */
export function rememberedLongestGapMs(schedules: readonly CronSchedule[], now: Date): number | undefined {
  const key = JSON.stringify(schedules.map((s) => [s.cron, s.timeZone ?? 'UTC']).sort());
  const t = now.getTime();
  for (const [k, v] of remembered) if (v.until <= t || v.until - REMEMBER_MS > t) remembered.delete(k);
  const hit = remembered.get(key);
  if (hit) return hit.gapMs;
  const gapMs = longestGapMs(schedules, now);
  remembered.set(key, { gapMs, until: t + REMEMBER_MS });
  return gapMs;
}

function earliest(times: (number | undefined)[]): number | undefined {
  const known = times.filter((t): t is number => t !== undefined);
  return known.length ? Math.min(...known) : undefined;
}

function latest(times: (number | undefined)[]): number | undefined {
  const known = times.filter((t): t is number => t !== undefined);
  return known.length ? Math.max(...known) : undefined;
}
