import { CronTimes } from '../cron-times.js';

const HOUR = 3_600_000;
const utc = (runs: Date[]) => runs.map((d) => d.toISOString().slice(0, 16));

describe('CronTimes', () => {
  type Case = { name: string; given: [string, string, string]; expect: string[] };
  // Given [cron, zone, a day start in UTC]: the runs over the next 4 hours, in UTC.
  const cases: Case[] = [
    {
      name: 'Berlin spring-forward: 02:00 and 02:30 are skipped and run once, at 03:00 CEST, with 03:00 itself',
      given: ['*/30 * * * *', 'Europe/Berlin', '2026-03-28T23:00:00Z'],
      expect: [
        ...['2026-03-28T23:30', '2026-03-29T00:00', '2026-03-29T00:30', '2026-03-29T01:00'],
        ...['2026-03-29T01:30', '2026-03-29T02:00', '2026-03-29T02:30', '2026-03-29T03:00'],
      ],
    },
    {
      name: 'Berlin fall-back: the repeated 02:00-02:59 runs in its first pass only',
      given: ['*/30 * * * *', 'Europe/Berlin', '2026-10-24T23:00:00Z'],
      // 02:00 CET is 01:00 UTC: not a run.
      expect: ['2026-10-24T23:30', '2026-10-25T00:00', '2026-10-25T00:30', '2026-10-25T02:00', '2026-10-25T02:30', '2026-10-25T03:00'],
    },
    {
      name: 'New York fall-back: a list with the repeated 01:30 runs it once',
      given: ['30 1,2 * * *', 'America/New_York', '2026-11-01T04:00:00Z'],
      expect: ['2026-11-01T05:30', '2026-11-01T07:30'],
    },
    {
      name: 'UTC has no gap or repeat',
      given: ['0 */2 * * *', 'UTC', '2026-03-29T00:00:00Z'],
      expect: ['2026-03-29T02:00', '2026-03-29T04:00'],
    },
  ];
  it.each(cases)('$name', ({ given: [cron, zone, from], expect: runs }) => {
    const times = new CronTimes(cron, zone);
    const start = new Date(from);
    const forward = times.nextRuns(100, start).filter((d) => d.getTime() <= start.getTime() + 4 * HOUR);
    expect(utc(forward)).toEqual(runs);
    // Walking back from the end finds the same runs.
    const backward = times.previousRuns(runs.length, new Date(forward[forward.length - 1].getTime() + 1));
    expect(utc(backward.reverse())).toEqual(runs);
  });

  it('walks back from inside the second pass of a repeated hour to the last run of the first pass', () => {
    const times = new CronTimes('*/15 * * * *', 'Europe/Berlin');
    // 02:20 CET, the second pass: 02:00-02:45 ran in the first pass (CEST), an hour of real time ago and less.
    expect(times.previousRun(new Date('2026-10-25T01:20:00Z'))?.toISOString()).toBe('2026-10-25T00:45:00.000Z');
    expect(times.nextRun(new Date('2026-10-25T01:20:00Z'))?.toISOString()).toBe('2026-10-25T02:00:00.000Z');
  });

  it('stays cheap for a cron every minute across a repeated hour', () => {
    const times = new CronTimes('* * * * *', 'America/New_York');
    const started = process.hrtime.bigint();
    for (let i = 0; i < 120; i++) {
      const at = new Date(Date.parse('2026-11-01T05:00:00Z') + i * 60_000);
      times.previousRun(at);
      times.nextRun(at);
    }
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2000);
  });

  it('throws on a pattern croner cannot read', () => {
    expect(() => new CronTimes('61 3 * * *', 'UTC')).toThrow(/minute/);
  });
});
