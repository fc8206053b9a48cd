// Maintenance windows keep the schedules' daylight-saving rule (runtime/cron-times.ts, whose
// own tests and backupschedule/__tests__/schedule-dst.test.ts cover every cron shape): a
// local time a fall-back repeats runs once, one a spring-forward skips runs right after the gap.
import { parseWindows } from '../maintenance-plan.js';

describe('maintenance windows across daylight saving', () => {
  type Case = { name: string; given: { cron: string; timeZone: string; after: string }; expect: string };
  const cases: Case[] = [
    {
      name: 'Berlin fall-back: after 02:00 CEST a list "0 2,14" runs next at 14:00 CET, not at 02:00 CET',
      given: { cron: '0 2,14 * * *', timeZone: 'Europe/Berlin', after: '2026-10-25T00:00:00Z' },
      expect: '2026-10-25T13:00:00.000Z',
    },
    {
      name: 'Berlin spring-forward: "0,30 2" runs right after the gap, at 03:00 CEST',
      given: { cron: '0,30 2 * * *', timeZone: 'Europe/Berlin', after: '2026-03-28T12:00:00Z' },
      expect: '2026-03-29T01:00:00.000Z',
    },
    {
      name: 'New York fall-back: a step "*/30" runs 01:30 EDT, then 02:00 EST',
      given: { cron: '*/30 * * * *', timeZone: 'America/New_York', after: '2026-11-01T05:30:00Z' },
      expect: '2026-11-01T07:00:00.000Z',
    },
  ];
  it.each(cases)('$name', ({ given, expect: next }) => {
    const windows = parseWindows(
      { repository: { name: 'nas' }, timeZone: given.timeZone, quick: { cron: given.cron }, full: { cron: given.cron } },
      'media',
      'nas',
    );
    if (!windows.ok) throw new Error(windows.message);
    expect(windows.quick.cron.nextRun(new Date(given.after))?.toISOString()).toBe(next);
    expect(windows.full.cron.nextRun(new Date(given.after))?.toISOString()).toBe(next);
  });
});
