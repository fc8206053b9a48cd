// When a five-field cron runs in an IANA time zone, with one daylight-saving rule for every
// cron, whatever its fields (single values, lists, ranges, steps):
//   - a local time that a spring-forward skips runs once, right after the gap (02:30 in
//     Berlin on the last Sunday of March runs at 03:00 CEST); the skipped times and the
//     first time after the gap share that one run;
//   - a local time that a fall-back repeats runs once, in its first pass.
// croner's own DST handling applies this only to "fixed-time" crons (a single hour and
// minute; with fixedTimeRule "no-wildcard" also lists and ranges, never steps) and treats
// the rest as intervals, which skip gap times and run repeated ones twice. So croner only
// matches the fields here, on the local wall clock written as if it were UTC (no DST there);
// the wall-clock time is turned into the instant it runs by the rule above.
import { Cron } from 'croner';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Longer than any daylight-saving shift (at most 2 hours anywhere). */
const LONGEST_SHIFT = 3 * HOUR;

const clocks = new Map<string, Intl.DateTimeFormat>();
/** A formatter per zone, kept: making one costs far more than using it. */
function clockOf(timeZone: string): Intl.DateTimeFormat {
  let clock = clocks.get(timeZone);
  if (!clock) {
    clock = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    clocks.set(timeZone, clock);
  }
  return clock;
}

export class CronTimes {
  private readonly fields: Cron;
  private readonly clock: Intl.DateTimeFormat;

  /** Throws croner's message for a pattern it cannot read, RangeError for an unknown time zone. */
  constructor(pattern: string, timeZone: string) {
    this.clock = clockOf(timeZone);
    // utcOffset 0: the fields are matched on the wall clock, with plain arithmetic.
    this.fields = new Cron(pattern, { utcOffset: 0, mode: '5-part' });
  }

  /** The first run strictly after `after`, or null when the cron has no later date. */
  nextRun(after: Date): Date | null {
    // Every local time the clock has not shown yet runs later; every one it has, ran already.
    const match = this.fields.nextRun(new Date(this.latestWallClock(after.getTime())));
    return match && new Date(this.runsAt(match.getTime()));
  }

  /** The last run strictly before `before`, or null when there is none. */
  previousRun(before: Date): Date | null {
    const [match] = this.fields.previousRuns(1, new Date(this.latestWallClock(before.getTime() - 1) + 1));
    return match ? new Date(this.runsAt(match.getTime())) : null;
  }

  /** The next `n` runs after `after`. */
  nextRuns(n: number, after: Date): Date[] {
    const runs: Date[] = [];
    for (let run = this.nextRun(after); run && runs.length < n; run = this.nextRun(run)) runs.push(run);
    return runs;
  }

  /** The `n` runs before `before`, latest first. */
  previousRuns(n: number, before: Date): Date[] {
    const runs: Date[] = [];
    for (let run = this.previousRun(before); run && runs.length < n; run = this.previousRun(run)) runs.push(run);
    return runs;
  }

  /** The instant a local wall-clock time (written as UTC milliseconds) runs at, by the rule above. */
  private runsAt(wall: number): number {
    // The offsets in force a day either side: the instant is wall minus one of them.
    const offsets = new Set([this.offset(wall - DAY), this.offset(wall + DAY)]);
    const occurrences = [...offsets].map((o) => wall - o).filter((t) => this.wallClock(t) === wall);
    if (occurrences.length) return Math.min(...occurrences);
    // In a gap: the first instant whose local time is past it (the gap's end), to the second.
    let lo = Math.floor((wall - Math.max(...offsets)) / 1000);
    let hi = Math.ceil((wall - Math.min(...offsets)) / 1000);
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.wallClock(mid * 1000) > wall) hi = mid;
      else lo = mid;
    }
    return hi * 1000;
  }

  /**
   * The latest local time the clock has shown up to an instant: its reading then or, within
   * the hours after a fall-back, its reading just before the clock went back.
   */
  private latestWallClock(instant: number): number {
    const now = this.wallClock(instant);
    const earlier = instant - LONGEST_SHIFT;
    if (this.offset(earlier) <= now - instant) return now;
    // The clock went back in (earlier, instant]: find when, to the second.
    let lo = Math.floor(earlier / 1000);
    let hi = Math.floor(instant / 1000);
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.offset(mid * 1000) === now - instant) hi = mid;
      else lo = mid;
    }
    return Math.max(now, this.wallClock(hi * 1000 - 1));
  }

  /** The zone's local time at an instant, written as if it were a UTC time (milliseconds). */
  private wallClock(instant: number): number {
    const p: Record<string, number> = {};
    for (const part of this.clock.formatToParts(new Date(instant))) if (part.type !== 'literal') p[part.type] = Number(part.value);
    const utc = new Date(0);
    utc.setUTCFullYear(p.year, p.month - 1, p.day);
    utc.setUTCHours(p.hour, p.minute, p.second, ((instant % 1000) + 1000) % 1000);
    return utc.getTime();
  }

  /** Local time minus UTC at an instant. */
  private offset(instant: number): number {
    return this.wallClock(instant) - instant;
  }
}
