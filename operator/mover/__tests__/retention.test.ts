// The retention model that predicts what a snapshot run will expire (the breaker's count).
// The kopia tier checks it against kopia's own reasons; these pin down the rule's details.
import { expiredBySnapshotAt, expiredNow, parseKopiaTime, retentionReasons, type RetentionCandidate } from '../retention.js';

const at = (id: string, startTime: string, extra: Partial<RetentionCandidate> = {}): RetentionCandidate => ({
  id,
  startTime,
  endTime: startTime,
  incomplete: false,
  pinned: false,
  ...extra,
});
const only = (p: Record<string, number>) => ({
  keepLatest: 0,
  keepHourly: 0,
  keepDaily: 0,
  keepWeekly: 0,
  keepMonthly: 0,
  keepAnnual: 0,
  ...p,
});

describe('kopia times', () => {
  it('keep nanoseconds, so snapshots in one millisecond still sort', () => {
    expect(parseKopiaTime('2026-11-27T14:58:36.581108623Z') - parseKopiaTime('2026-11-27T14:58:36.581108Z')).toBe(623n);
    expect(parseKopiaTime('2026-11-27T14:58:36Z')).toBe(BigInt(Date.parse('2026-11-27T14:58:36Z')) * 1_000_000n);
    expect(() => parseKopiaTime('yesterday')).toThrow();
  });
});

describe('retention reasons', () => {
  it("under kopia's default policy, the only snapshot is kept for every period, listed in kopia's order", () => {
    const defaults = { keepLatest: 10, keepHourly: 48, keepDaily: 7, keepWeekly: 4, keepMonthly: 24, keepAnnual: 3 };
    expect(retentionReasons([at('a', '2026-11-27T14:58:36Z')], defaults).get('a')).toEqual([
      'latest-1',
      'hourly-1',
      'daily-1',
      'weekly-1',
      'monthly-1',
      'annual-1',
    ]);
  });

  it('keeps the newest keepLatest and expires the rest, unless pinned', () => {
    const snaps = ['10', '11', '12', '13', '14'].map((m, i) => at(`s${i}`, `2026-11-27T10:${m}:00Z`, { pinned: i === 0 }));
    expect(expiredNow(snaps, only({ keepLatest: 3 }))).toEqual(['s1']);
  });

  it('keeps everything when every keep value is 0 or unset', () => {
    const snaps = ['10', '11', '12'].map((m, i) => at(`s${i}`, `2026-11-27T10:${m}:00Z`));
    expect(expiredNow(snaps, only({}))).toEqual([]);
    expect(expiredNow(snaps, {})).toEqual([]);
  });

  it('keeps the newest snapshot of each of the last keepHourly hours', () => {
    const snaps = [
      at('a', '2026-11-27T10:10:00Z'),
      at('b', '2026-11-27T10:40:00Z'),
      at('c', '2026-11-27T11:05:00Z'),
      at('d', '2026-11-27T11:30:00Z'),
      at('e', '2026-11-27T12:10:00Z'),
    ];
    const reasons = retentionReasons(snaps, only({ keepHourly: 2 }));
    expect(Object.fromEntries(reasons)).toEqual({ e: ['hourly-1'], d: ['hourly-2'], c: [], b: [], a: [] });
  });

  it('drops periods older than the cutoff counted from the newest complete snapshot', () => {
    const snaps = [at('old', '2026-11-20T10:00:00Z'), at('new', '2026-11-27T10:00:00Z')];
    expect(expiredNow(snaps, only({ keepDaily: 3 }))).toEqual(['old']);
    expect(expiredNow(snaps, only({ keepDaily: 8 }))).toEqual([]);
  });

  it('keeps incomplete snapshots newer than the newest complete one while young or among the first 3', () => {
    const snaps = [
      at('stale-incomplete', '2026-11-27T01:00:00Z', { incomplete: true }),
      at('complete', '2026-11-27T02:00:00Z'),
      at('i1', '2026-11-27T03:00:00Z', { incomplete: true }),
      at('i2', '2026-11-27T09:00:00Z', { incomplete: true }),
      at('i3', '2026-11-27T09:30:00Z', { incomplete: true }),
      at('i4', '2026-11-27T10:00:00Z', { incomplete: true }),
    ];
    const reasons = retentionReasons(snaps, only({ keepLatest: 1 }));
    // i4, i3, i2: the first three; i1 is 7 h older than the newest and fourth: not kept; one
    // older than the newest complete snapshot never is.
    expect(Object.fromEntries(reasons)).toEqual({
      i4: ['incomplete'],
      i3: ['incomplete'],
      i2: ['incomplete'],
      i1: [],
      complete: ['latest-1'],
      'stale-incomplete': [],
    });
  });

  it('counts only complete snapshots towards keepLatest', () => {
    const snaps = [
      at('c1', '2026-11-27T08:00:00Z'),
      at('inc', '2026-11-27T09:00:00Z', { incomplete: true }),
      at('c2', '2026-11-27T10:00:00Z'),
    ];
    const reasons = retentionReasons(snaps, only({ keepLatest: 2 }));
    expect(reasons.get('c1')).toEqual(['latest-2']);
    expect(reasons.get('inc')).toEqual([]); // older than a complete snapshot: expired
  });

  it("shares period ids across kinds, as kopia does (the month '2026-03' hides ISO week '2026-03')", () => {
    const snaps = [at('january', '2026-01-14T12:00:00Z'), at('march', '2026-03-20T12:00:00Z')];
    const reasons = retentionReasons(snaps, only({ keepMonthly: 10, keepWeekly: 20 }));
    expect(reasons.get('march')).toEqual(['weekly-1', 'monthly-1']);
    expect(reasons.get('january')).toEqual(['monthly-2']);
  });
});

describe('what the next snapshot expires', () => {
  it('counts the new snapshot towards keepLatest', () => {
    const snaps = ['10', '11', '12'].map((m, i) => at(`s${i}`, `2026-11-27T10:${m}:00Z`));
    const policy = only({ keepLatest: 3 });
    expect(expiredNow(snaps, policy)).toEqual([]);
    expect(expiredBySnapshotAt(snaps, policy, new Date('2026-11-27T10:20:00Z'))).toEqual(['s0']);
  });

  it('takes over the current hour from an older snapshot in it', () => {
    const snaps = [at('earlier-hour', '2026-11-27T09:30:00Z'), at('this-hour', '2026-11-27T10:05:00Z')];
    const policy = only({ keepHourly: 2 });
    expect(expiredNow(snaps, policy)).toEqual([]);
    expect(expiredBySnapshotAt(snaps, policy, new Date('2026-11-27T10:20:00Z'))).toEqual(['this-hour']);
  });

  it('is nothing for a source without snapshots', () => {
    expect(expiredBySnapshotAt([], only({ keepLatest: 1 }), new Date())).toEqual([]);
  });
});
