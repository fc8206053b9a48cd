// Predicts what a `kopia snapshot create` will expire, without deleting anything. kopia has
// no dry run for that: `snapshot expire` without --delete only logs a count (human text)
// and does not count the snapshot about to be made, which itself takes the newest "latest"
// slot and the current hour/day/week/month/year. So the mover evaluates kopia 0.23's
// retention rule (snapshot/policy/retention_policy.go, ComputeRetentionReasons) over the
// source's snapshots plus one new snapshot now. Pure.
//
// The rule, as kopia applies it per source after saving a snapshot:
// - snapshots are sorted newest first (start time, then end time);
// - each complete snapshot at position i (positions count incomplete ones too) is kept as
//   "latest" while fewer than keepLatest were kept, and per period (annual, monthly,
//   weekly, daily, hourly) when it is the newest of a period not yet claimed, fewer than
//   keep<Period> periods were claimed, and it started after the period's cutoff (the newest
//   complete start minus keep<Period> periods);
// - period ids share one set across kinds (kopia's quirk: "2026-11" can be a month and a
//   week), and are formatted in UTC except the ISO week, which kopia takes in local time,
//   as it does the cutoff arithmetic;
// - when every keep value is 0 or unset, all are kept as latest;
// - incomplete snapshots newer than the newest complete one are kept while younger than
//   4 hours or among the first 3;
// - a snapshot with no reason is deleted unless it is pinned.
//
// Exact up to one approximation: the new snapshot's start time is taken as the moment of
// prediction, so a period boundary crossed in the seconds before kopia starts the snapshot
// can shift one period slot.
import type { KopiaRetention } from './kopia-json.js';

export interface RetentionCandidate {
  id: string;
  /** RFC 3339 with up to nanoseconds, as kopia prints. */
  startTime: string;
  endTime?: string;
  incomplete: boolean;
  pinned: boolean;
}

const NS_PER_MS = 1_000_000n;
const NS_PER_HOUR = 3_600_000_000_000n;
const INCOMPLETE_YOUNGER_THAN = 4n * NS_PER_HOUR;
const INCOMPLETE_MINIMUM = 3;

/** Nanoseconds since the epoch (kopia's timestamps are nanosecond-precise; ties matter for order). */
export function parseKopiaTime(text: string): bigint {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) throw new Error(`not an RFC 3339 time: ${text}`);
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) throw new Error(`not an RFC 3339 time: ${text}`);
  return BigInt(ms) * NS_PER_MS + BigInt((m[2] ?? '').padEnd(9, '0').slice(0, 9));
}

function toDate(ns: bigint): Date {
  const remainder = ((ns % NS_PER_MS) + NS_PER_MS) % NS_PER_MS;
  return new Date(Number((ns - remainder) / NS_PER_MS));
}

/** Go's time.AddDate in local time: calendar fields moved together, then normalised. */
function addDate(ns: bigint, years: number, months: number, days: number): bigint {
  const remainder = ((ns % NS_PER_MS) + NS_PER_MS) % NS_PER_MS;
  const d = toDate(ns);
  d.setFullYear(d.getFullYear() + years, d.getMonth() + months, d.getDate() + days);
  return BigInt(d.getTime()) * NS_PER_MS + remainder;
}

/** ISO 8601 year and week of the local calendar day, as Go's Time.ISOWeek. */
function isoWeek(ns: bigint): [number, number] {
  const local = toDate(ns);
  const day = new Date(Date.UTC(local.getFullYear(), local.getMonth(), local.getDate()));
  const weekday = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - weekday); // the Thursday of this week decides its year
  const year = day.getUTCFullYear();
  const week = Math.floor((day.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 / 7) + 1;
  return [year, week];
}

type Period = 'annual' | 'monthly' | 'weekly' | 'daily' | 'hourly';
const PERIODS: { kind: Period; keep: keyof KopiaRetention }[] = [
  { kind: 'annual', keep: 'keepAnnual' },
  { kind: 'monthly', keep: 'keepMonthly' },
  { kind: 'weekly', keep: 'keepWeekly' },
  { kind: 'daily', keep: 'keepDaily' },
  { kind: 'hourly', keep: 'keepHourly' },
];

function periodID(kind: Period, ns: bigint): string {
  const utc = toDate(ns).toISOString(); // 2026-11-27T14:58:36.581Z
  switch (kind) {
    case 'annual':
      return utc.slice(0, 4);
    case 'monthly':
      return utc.slice(0, 7);
    case 'daily':
      return utc.slice(0, 10);
    case 'hourly':
      return `${utc.slice(0, 10)} ${utc.slice(11, 13)}`;
    case 'weekly': {
      const [year, week] = isoWeek(ns);
      return `${String(year).padStart(4, '0')}-${String(week).padStart(2, '0')}`;
    }
  }
}

function cutoff(kind: Period, newestComplete: bigint, n: number): bigint {
  switch (kind) {
    case 'annual':
      return addDate(newestComplete, -n, 0, 0);
    case 'monthly':
      return addDate(newestComplete, 0, -n, 0);
    case 'weekly':
      return addDate(newestComplete, 0, 0, -7 * n);
    case 'daily':
      return addDate(newestComplete, 0, 0, -n);
    case 'hourly':
      return newestComplete - BigInt(n) * NS_PER_HOUR;
  }
}

/** kopia lists a snapshot's reasons in this order (SortRetentionTags). */
const REASON_ORDER = ['latest', 'hourly', 'daily', 'weekly', 'monthly', 'annual'];

/** Why kopia's policy keeps each snapshot (kopia's `retentionReason`), by id; [] = not kept. */
export function retentionReasons(snapshots: RetentionCandidate[], policy: KopiaRetention): Map<string, string[]> {
  const reasons = new Map<string, string[]>();
  if (snapshots.length === 0) return reasons;
  const timed = snapshots.map((s) => ({ ...s, start: parseKopiaTime(s.startTime), end: s.endTime ? parseKopiaTime(s.endTime) : 0n }));
  timed.sort((a, b) => (a.start !== b.start ? (b.start > a.start ? 1 : -1) : a.end !== b.end ? (b.end > a.end ? 1 : -1) : 0));
  const newest = timed[0].start;
  const newestComplete = timed.filter((s) => !s.incomplete).reduce((max, s) => (s.start > max ? s.start : max), -1n << 80n);

  const allZero = ['keepLatest', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepAnnual'].every(
    (k) => (policy[k as keyof KopiaRetention] ?? 0) === 0,
  );
  const keepLatest = allZero ? Number.MAX_SAFE_INTEGER : policy.keepLatest;
  const claimed = new Set<string>();
  const counts = new Map<string, number>();
  const claim = (kind: string, id: string, max: number | undefined, out: string[]) => {
    if (max === undefined || claimed.has(id)) return;
    const n = counts.get(kind) ?? 0;
    if (n >= max) return;
    claimed.add(id);
    counts.set(kind, n + 1);
    out.push(`${kind}-${n + 1}`);
  };

  timed.forEach((s, i) => {
    const out: string[] = [];
    if (!s.incomplete) {
      claim('latest', String(i), keepLatest, out);
      for (const p of PERIODS) {
        const max = policy[p.keep] as number | undefined;
        if (max === undefined || s.start < cutoff(p.kind, newestComplete, max)) continue;
        claim(p.kind, periodID(p.kind, s.start), max, out);
      }
    }
    reasons.set(
      s.id,
      out.sort((a, b) => REASON_ORDER.indexOf(a.split('-')[0]) - REASON_ORDER.indexOf(b.split('-')[0])),
    );
  });

  for (let i = 0; i < timed.length && timed[i].incomplete; i++) {
    if (newest - timed[i].start < INCOMPLETE_YOUNGER_THAN || i < INCOMPLETE_MINIMUM) reasons.get(timed[i].id)!.push('incomplete');
    else break;
  }
  return reasons;
}

/** The ids kopia's retention would delete now: no reason to keep, and not pinned. */
export function expiredNow(snapshots: RetentionCandidate[], policy: KopiaRetention): string[] {
  const reasons = retentionReasons(snapshots, policy);
  return snapshots.filter((s) => !s.pinned && reasons.get(s.id)!.length === 0).map((s) => s.id);
}

/** The existing ids a snapshot created at `now` would make kopia delete right after saving it. */
export function expiredBySnapshotAt(existing: RetentionCandidate[], policy: KopiaRetention, now: Date): string[] {
  const time = now.toISOString();
  const next: RetentionCandidate = { id: '\0next', startTime: time, endTime: time, incomplete: false, pinned: false };
  return expiredNow([...existing, next], policy).filter((id) => id !== next.id);
}
