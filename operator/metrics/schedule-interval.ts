// How long a config may go without a run: the longest gap between consecutive cron times of
// a BackupSchedule, over the next 8 days (a weekday-only cron's weekend gap is
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

/**
 * Each schedule's own longest gap, kept per (cron, time zone) for an hour, computed within a
 * time budget per scrape. A scrape runs on the leader's event loop, which also renews its
 * Lease, and tenants choose the crons: at ~30 ms for a sub-hourly cron, a few hundred
 * distinct schedules computed at once would hold the loop for seconds (lost lease, timed-out
 * scrapes). So at most `budgetMs` of new computation is done per scrape; a config whose
 * schedules are not all known yet gets no interval this scrape (its staleness alert waits a
 * scrape or two; it never fires early). Entries expire on lookup; the map is capped.
 */
export class ScheduleIntervals {
  private readonly gaps = new Map<string, { gapMs: number | undefined; from: number; until: number }>();

  constructor(
    private readonly rememberMs = HOUR,
    private readonly maxEntries = 10_000,
  ) {}

  /** A budget for one scrape: new computations stop once it is spent. */
  budget(ms: number): { spent(): boolean } {
    const deadline = performance.now() + ms;
    return { spent: () => performance.now() > deadline };
  }

  /**
   * The config's interval: the shortest of its schedules' own longest gaps. The schedules
   * together never leave a longer gap than any one of them, so this bound can only make a
   * staleness alert later, never earlier. Undefined when none runs, or when one is unknown
   * and the budget is spent.
   */
  intervalMs(schedules: readonly CronSchedule[], now: Date, budget: { spent(): boolean }): number | undefined {
    let shortest: number | undefined;
    for (const schedule of schedules) {
      const key = `${schedule.cron}\u0000${schedule.timeZone ?? 'UTC'}`;
      let entry = this.gaps.get(key);
      if (entry && (entry.until <= now.getTime() || entry.from > now.getTime())) {
        this.gaps.delete(key);
        entry = undefined;
      }
      if (!entry) {
        if (budget.spent()) return undefined;
        entry = { gapMs: longestGapMs([schedule], now), from: now.getTime(), until: now.getTime() + this.rememberMs };
        if (this.gaps.size >= this.maxEntries) this.gaps.delete(this.gaps.keys().next().value!);
        this.gaps.set(key, entry);
      }
      if (entry.gapMs !== undefined) shortest = Math.min(shortest ?? Infinity, entry.gapMs);
    }
    return shortest;
  }
}

function earliest(times: (number | undefined)[]): number | undefined {
  const known = times.filter((t): t is number => t !== undefined);
  return known.length ? Math.min(...known) : undefined;
}

function latest(times: (number | undefined)[]): number | undefined {
  const known = times.filter((t): t is number => t !== undefined);
  return known.length ? Math.max(...known) : undefined;
}
