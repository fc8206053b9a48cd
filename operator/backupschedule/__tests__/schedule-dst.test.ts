// The daylight-saving promise of a BackupSchedule, for every shape of cron: a local time that
// a spring-forward skips runs once, right after the gap; a local time that a fall-back repeats
// runs once, in its first pass. Each case drives planSchedule through the transition day the
// way the operator does (a pass at each planned wake-up, and at least every 30 minutes), then
// counts the Backups each local time of the day got. Where a local time runs is read from the
// zone's clock by brute force (every minute of the day formatted by Intl), not from the
// planner's own arithmetic.
import type { ScheduledBackup, ScheduleInput } from '../schedule-plan.js';
import { iso, planSchedule, scheduleStatus } from '../schedule-plan.js';

type Rule = 'spring-forward' | 'fall-back';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const pad = (n: number) => String(n).padStart(2, '0');

/** Each cron shape, the local times it names every day, and the Backups it makes on each transition day. */
const shapes: { cron: string; localTimes: string[]; backups: Record<Rule, number>; why: string }[] = [
  { cron: '0 2 * * *', localTimes: ['02:00'], backups: { 'spring-forward': 1, 'fall-back': 1 }, why: 'a single value' },
  { cron: '0 2,14 * * *', localTimes: ['02:00', '14:00'], backups: { 'spring-forward': 2, 'fall-back': 2 }, why: 'a list of hours' },
  {
    cron: '0,30 2 * * *',
    localTimes: ['02:00', '02:30'],
    // Both fall in the gap: one run right after it covers both.
    backups: { 'spring-forward': 1, 'fall-back': 2 },
    why: 'a list of minutes',
  },
  {
    cron: '0 1-3 * * *',
    localTimes: ['01:00', '02:00', '03:00'],
    // 02:00 is skipped and runs right after the gap, which is 03:00: one run for both.
    backups: { 'spring-forward': 2, 'fall-back': 3 },
    why: 'a range of hours',
  },
  {
    cron: '*/30 * * * *',
    localTimes: Array.from({ length: 48 }, (_, i) => `${pad(Math.floor(i / 2))}:${i % 2 ? '30' : '00'}`),
    // Spring: 02:00, 02:30 and 03:00 share the run at 03:00. Fall: the repeated 02:00 and 02:30 (Berlin) or 01:00 and 01:30 (New York) run once.
    backups: { 'spring-forward': 46, 'fall-back': 48 },
    why: 'a step',
  },
  {
    cron: '30 1,13 * * *',
    localTimes: ['01:30', '13:30'],
    backups: { 'spring-forward': 2, 'fall-back': 2 },
    why: 'a list, 01:30 repeated in New York',
  },
];
const zones = ['Europe/Berlin', 'America/New_York'];
const rules: Rule[] = ['spring-forward', 'fall-back'];
const years = [2025, 2026, 2027, 2028];

const formats = new Map<string, Intl.DateTimeFormat>();
/** The zone's clock at an instant: "YYYY-MM-DD HH:MM". */
function localTime(zone: string, ms: number): string {
  let format = formats.get(zone);
  if (!format) {
    const options = {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    };
    format = new Intl.DateTimeFormat('en-US', options as Intl.DateTimeFormatOptions);
    formats.set(zone, format);
  }
  const p = Object.fromEntries(format.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

const days = new Map<string, ReturnType<typeof readTransitionDay>>();
/** The local day of the zone's transition of this kind in this year, with every minute around it read off its clock (read once, for all shapes). */
function transitionDay(zone: string, year: number, rule: Rule) {
  const key = `${zone} ${year} ${rule}`;
  if (!days.has(key)) days.set(key, readTransitionDay(zone, year, rule));
  return days.get(key)!;
}

function readTransitionDay(zone: string, year: number, rule: Rule) {
  const offset = (ms: number) => Date.parse(`${localTime(zone, ms).replace(' ', 'T')}:00Z`) - ms;
  let at = Date.UTC(year, 0, 1);
  while (rule === 'spring-forward' ? offset(at + HOUR) <= offset(at) : offset(at + HOUR) >= offset(at)) at += HOUR;
  const day = localTime(zone, at + HOUR).slice(0, 10);
  const minutes: { ms: number; local: string }[] = [];
  for (let ms = at - 30 * HOUR; ms < at + 30 * HOUR; ms += MINUTE) minutes.push({ ms, local: localTime(zone, ms) });
  const start = minutes.find((m) => m.local.startsWith(day))!.ms;
  const end = minutes.find((m) => m.local.slice(0, 10) > day)!.ms;
  /** When the promise says a local time of the day runs: its first occurrence, or the first minute after the gap that skipped it. */
  const promisedRun = (hhmm: string) => {
    const wanted = `${day} ${hhmm}`;
    return (minutes.find((m) => m.local === wanted) ?? minutes.find((m) => m.local > wanted))!.ms;
  };
  return { day, start, end, promisedRun };
}

/** The operator's passes over [from, to) for a schedule created at `from`: the Backups they made. */
function simulate(cron: string, timeZone: string, from: number, to: number): ScheduledBackup[] {
  const backups: ScheduledBackup[] = [];
  let status: ScheduleInput['status'];
  for (let now = from; now < to; ) {
    const input: ScheduleInput = {
      namespace: 'media',
      name: 'dst',
      creationTime: new Date(from),
      generation: 1,
      spec: { configRef: { name: 'jellyfin' }, cron, timeZone },
      status,
      backups,
      configExists: true,
      now: new Date(now),
    };
    const plan = planSchedule(input);
    if (plan.run.action === 'create') {
      const at = iso(new Date(now));
      backups.push({ name: plan.run.name, phase: 'Succeeded', creationTime: at, completionTime: at, scheduledTime: iso(plan.run.slot) });
    }
    status = scheduleStatus(input, plan, { deleted: [] });
    now += Math.min(plan.requeueAfterMs ?? Infinity, 30 * MINUTE);
  }
  return backups;
}

const cases = zones.flatMap((zone) =>
  rules.flatMap((rule) => shapes.flatMap((shape) => years.map((year) => ({ zone, rule, year, ...shape, expected: shape.backups[rule] })))),
);

describe('daylight saving: skipped local times run right after the gap, repeated ones once, for every cron shape', () => {
  it.each(cases)('$zone $rule $year, "$cron" ($why): each local time runs once, $expected Backups that day', (c) => {
    const { day, start, end, promisedRun } = transitionDay(c.zone, c.year, c.rule);
    const backups = simulate(c.cron, c.zone, start - 3 * HOUR, end + 3 * HOUR);
    const made = backups.map((b) => Date.parse(b.scheduledTime!));

    const runsPerLocalTime = Object.fromEntries(c.localTimes.map((t) => [t, made.filter((m) => m === promisedRun(t)).length]));
    expect({ day, runsPerLocalTime }).toEqual({ day, runsPerLocalTime: Object.fromEntries(c.localTimes.map((t) => [t, 1])) });
    expect(made.filter((m) => m >= start && m < end).map((m) => localTime(c.zone, m))).toHaveLength(c.expected);
    // Each Backup was made at the time it is for (no jitter here), not a pass later.
    for (const b of backups) expect(b.creationTime).toBe(b.scheduledTime);
  });
});
