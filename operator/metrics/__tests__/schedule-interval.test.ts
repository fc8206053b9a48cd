import { longestGapMs, ScheduleIntervals } from '../schedule-interval.js';

const HOUR = 3_600_000;
const at = (iso: string) => new Date(iso);

describe('the longest gap between cron times (schedule interval)', () => {
  it('is 24 h for a daily cron in a week without a daylight-saving change', () => {
    expect(longestGapMs([{ cron: '30 2 * * *', timeZone: 'Europe/Berlin' }], at('2027-06-07T12:00:00Z'))).toBe(24 * HOUR);
  });

  it('is 25 h for a daily 02:30 in Berlin over the autumn change (02:30 runs in its first pass, then an hour later by UTC)', () => {
    // 2027-10-31: 03:00 CEST becomes 02:00 CET.
    expect(longestGapMs([{ cron: '30 2 * * *', timeZone: 'Europe/Berlin' }], at('2027-10-27T12:00:00Z'))).toBe(25 * HOUR);
  });

  it('stays 24 h over the spring change: the skipped 02:30 runs at 03:00 CEST, the gaps around it are shorter', () => {
    // 2027-03-28: 02:00 CET becomes 03:00 CEST; the gaps are 23.5 h, 23.5 h and 24 h elsewhere.
    expect(longestGapMs([{ cron: '30 2 * * *', timeZone: 'Europe/Berlin' }], at('2027-03-24T12:00:00Z'))).toBe(24 * HOUR);
    // Only the days around the change in the window: both gaps are 23.5 h.
    expect(longestGapMs([{ cron: '30 2 * * *', timeZone: 'Europe/Berlin' }], at('2027-03-27T00:00:00Z'))).toBeGreaterThanOrEqual(
      23.5 * HOUR,
    );
  });

  it('honours the time zone: 03:00 in New York has a 23 h gap on the spring change (the longest stays a day) and 25 h on the autumn one', () => {
    expect(longestGapMs([{ cron: '0 3 * * *', timeZone: 'America/New_York' }], at('2027-03-10T12:00:00Z'))).toBe(24 * HOUR);
    expect(longestGapMs([{ cron: '0 3 * * *', timeZone: 'America/New_York' }], at('2027-11-03T12:00:00Z'))).toBe(25 * HOUR);
  });

  it("finds a weekday cron's weekend (Friday to Monday), wherever the 8-day window starts", () => {
    for (const start of ['2027-06-07T12:00:00Z', '2027-06-10T04:00:00Z', '2027-06-12T12:00:00Z'])
      expect(longestGapMs([{ cron: '0 3 * * 1-5' }], at(start))).toBe(72 * HOUR);
  });

  // Their cost (a minute cron must not be listed run by run) is measured by make bench, group metrics.
  it('finds the night of a working-hours cron and the weekend of a minute cron', () => {
    expect(longestGapMs([{ cron: '*/5 9-17 * * *' }], at('2027-06-07T12:00:00Z'))).toBe(15 * HOUR + 5 * 60_000);
    expect(longestGapMs([{ cron: '* * * * 1-5', timeZone: 'Europe/Berlin' }], at('2027-06-07T12:00:00Z'))).toBe(48 * HOUR + 60_000);
    expect(longestGapMs([{ cron: '* * * * *' }], at('2027-06-07T12:00:00Z'))).toBe(60_000);
  });

  it('lists the runs of a cron whose gaps are all under an hour: the hourly probes alone would see only one of them', () => {
    // Gaps 5, 45 and 10 minutes; probes at hh:00:30 fall into the 5-minute one every hour.
    expect(longestGapMs([{ cron: '0,5,50 * * * *' }], at('2027-06-07T12:00:00Z'))).toBe(45 * 60_000);
  });

  it('takes the schedules of a config together: a nightly and a midday run leave the longest stretch between them', () => {
    expect(longestGapMs([{ cron: '0 2 * * *' }, { cron: '0 12 * * *' }], at('2027-06-07T12:00:00Z'))).toBe(14 * HOUR);
  });

  it('is unknown for a cron it cannot read or one that never runs again', () => {
    expect(longestGapMs([{ cron: 'not a cron' }], at('2027-06-07T12:00:00Z'))).toBeUndefined();
    expect(longestGapMs([{ cron: '0 3 * * *', timeZone: 'Mars/Olympus' }], at('2027-06-07T12:00:00Z'))).toBeUndefined();
    expect(longestGapMs([{ cron: '0 3 30 2 *' }], at('2027-06-07T12:00:00Z'))).toBeUndefined();
  });
});

describe('ScheduleIntervals: remembered per schedule, computed within a budget per scrape', () => {
  const now = at('2027-06-07T12:00:00Z');
  const open = { spent: () => false };
  const spent = { spent: () => true };

  it('computes nothing new once the budget is spent, and serves what it knows', () => {
    const intervals = new ScheduleIntervals();
    expect(intervals.intervalMs([{ cron: '0 2 * * *' }], now, spent)).toBeUndefined();
    expect(intervals.intervalMs([{ cron: '0 2 * * *' }], now, open)).toBe(24 * HOUR);
    expect(intervals.intervalMs([{ cron: '0 2 * * *' }], now, spent)).toBe(24 * HOUR);
    // One schedule of the config not known yet: no interval this scrape (never a longer or shorter guess).
    expect(intervals.intervalMs([{ cron: '0 2 * * *' }, { cron: '0 * * * *' }], now, spent)).toBeUndefined();
    // Both known: the shorter of their own longest gaps.
    expect(intervals.intervalMs([{ cron: '0 2 * * *' }, { cron: '0 * * * *' }], now, open)).toBe(HOUR);
  });

  it('spreads 300 distinct minute crons (a tenant’s many time zones) over scrapes: at most the budget each', () => {
    const intervals = new ScheduleIntervals();
    const zones = Intl.supportedValuesOf('timeZone').slice(0, 300);
    const configs = zones.map((timeZone) => [{ cron: '* * * * 1-5', timeZone }]);
    const knownAfterEachScrape: number[] = [];
    while ((knownAfterEachScrape.at(-1) ?? 0) < configs.length && knownAfterEachScrape.length < 100) {
      // A budget of ten new computations per scrape, counted instead of timed.
      let asked = 0;
      const budget = { spent: () => asked++ >= 10 };
      knownAfterEachScrape.push(configs.filter((schedules) => intervals.intervalMs(schedules, now, budget) !== undefined).length);
    }
    // Ten more each scrape, never more: the rest wait for later scrapes.
    expect(knownAfterEachScrape).toEqual(Array.from({ length: 30 }, (_, i) => 10 * (i + 1)));
  });

  it('forgets an entry after an hour, or when asked about an earlier time', () => {
    const intervals = new ScheduleIntervals();
    const nightly = [{ cron: '30 2 * * *', timeZone: 'Europe/Berlin' }];
    expect(intervals.intervalMs(nightly, at('2027-10-20T12:00:00Z'), open)).toBe(24 * HOUR);
    // The week of the autumn change, an hour later by the clock of this test: computed again.
    expect(intervals.intervalMs(nightly, at('2027-10-27T12:00:00Z'), open)).toBe(25 * HOUR);
    expect(intervals.intervalMs(nightly, at('2027-10-20T12:00:00Z'), open)).toBe(24 * HOUR);
  });
});
