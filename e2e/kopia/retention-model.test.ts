// The breaker's retention model against kopia itself: snapshots placed across hours, days,
// weeks, months and years (snapshot create --start-time), incomplete and pinned ones among
// them, compared with the reasons kopia lists under several policies, and the model's
// prediction for one more snapshot compared with what kopia then really expires.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KopiaRetention } from '../../operator/mover/kopia-json.js';
import { expiredBySnapshotAt, retentionReasons, type RetentionCandidate } from '../../operator/mover/retention.js';
import { ensureTestBinaries } from '../support/control-plane.js';
import { PlainKopia, type KopiaListed } from './plain-kopia.js';

let kopia: PlainKopia;
let scratch: string;
let data: string;
let source: string;

/** kopia's --start-time layout: "2006-01-02 15:04:05 MST". */
const kopiaTime = (d: Date) => `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;

/** Deterministic spread: clusters within an hour and a day, and gaps of days to years. */
function startTimes(): Date[] {
  let seed = 20261127;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const times: Date[] = [];
  let t = Date.UTC(2023, 0, 3, 4, 5, 6);
  const gaps = [5 * 60_000, 40 * 60_000, 3 * 3_600_000, 26 * 3_600_000, 6 * 86_400_000, 33 * 86_400_000, 200 * 86_400_000];
  while (times.length < 36) {
    t += Math.floor(gaps[Math.floor(next() * gaps.length)] * (0.5 + next()));
    if (t > Date.UTC(2026, 10, 1)) break;
    times.push(new Date(t));
  }
  return times;
}

const snapshotsOfSource = async (): Promise<KopiaListed[]> =>
  (await kopia.json<KopiaListed[]>('snapshot', 'list', source, '--json')).filter((s) => s.source.path === data);

const candidates = (listed: KopiaListed[]): RetentionCandidate[] =>
  listed.map((s) => ({ id: s.id, startTime: s.startTime, endTime: s.endTime, incomplete: !!s.incomplete, pinned: !!s.pins?.length }));

async function setRetention(r: Required<Omit<KopiaRetention, 'ignoreIdenticalSnapshots'>>): Promise<void> {
  await kopia.k(
    'policy',
    'set',
    source,
    `--keep-latest=${r.keepLatest}`,
    `--keep-hourly=${r.keepHourly}`,
    `--keep-daily=${r.keepDaily}`,
    `--keep-weekly=${r.keepWeekly}`,
    `--keep-monthly=${r.keepMonthly}`,
    `--keep-annual=${r.keepAnnual}`,
  );
}

beforeAll(async () => {
  const bin = join(ensureTestBinaries(['kopia']), 'kopia');
  scratch = mkdtempSync(join(tmpdir(), 'retention-model-'));
  kopia = await new PlainKopia(bin, join(scratch, 'k'), 'retention model').create();
  data = join(scratch, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'file'), 'content');
  source = `admin@setup:${data}`;
  // Keep everything while the history is made: each create applies retention at once.
  await setRetention({ keepLatest: 100_000, keepHourly: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepAnnual: 0 });
  const times = startTimes();
  for (const t of times) await kopia.k('snapshot', 'create', data, `--start-time=${kopiaTime(t)}`, '--no-auto-maintenance');
  // Incomplete ones after the newest complete: an upload stopped by its limit (new data each time).
  for (const [i, minutes] of [10, 20, 300].entries()) {
    writeFileSync(join(data, `big-${i}`), randomBytes(3 * 1024 * 1024));
    const t = new Date(times[times.length - 1].getTime() + minutes * 60_000);
    await kopia.run('snapshot', 'create', data, '--upload-limit-mb=1', `--start-time=${kopiaTime(t)}`, '--no-auto-maintenance');
    rmSync(join(data, `big-${i}`));
  }
  const listed = await snapshotsOfSource();
  expect(listed.filter((s) => s.incomplete)).toHaveLength(3);
  expect(listed.length).toBeGreaterThan(25);
  // Pins on two complete snapshots in the middle.
  const complete = listed.filter((s) => !s.incomplete);
  await kopia.k('snapshot', 'pin', complete[5].id, complete[11].id, '--add=keep');
}, 120_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const policies: Record<string, Required<Omit<KopiaRetention, 'ignoreIdenticalSnapshots'>>> = {
  "kopia's defaults": { keepLatest: 10, keepHourly: 48, keepDaily: 7, keepWeekly: 4, keepMonthly: 24, keepAnnual: 3 },
  'a little of everything': { keepLatest: 3, keepHourly: 2, keepDaily: 5, keepWeekly: 2, keepMonthly: 3, keepAnnual: 1 },
  'hourly only': { keepLatest: 0, keepHourly: 4, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepAnnual: 0 },
  'weekly and latest': { keepLatest: 2, keepHourly: 0, keepDaily: 0, keepWeekly: 30, keepMonthly: 0, keepAnnual: 0 },
  'monthly and annual': { keepLatest: 1, keepHourly: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 12, keepAnnual: 5 },
  'nothing set': { keepLatest: 0, keepHourly: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepAnnual: 0 },
};

it.each(Object.entries(policies))('gives the reasons kopia lists under %s', async (name, policy) => {
  await setRetention(policy);
  const listed = await snapshotsOfSource();
  const modelled = retentionReasons(candidates(listed), policy);
  const kopiaSays = Object.fromEntries(listed.map((s) => [s.id, s.retentionReason ?? []]));
  expect(Object.fromEntries(modelled)).toEqual(kopiaSays);
  if (name === 'a little of everything') {
    // The history exercises every kind of reason, and leaves some snapshots without one.
    const kinds = new Set(Object.values(kopiaSays).flatMap((r) => r.map((x) => x.split('-')[0])));
    expect([...kinds].sort()).toEqual(['annual', 'daily', 'hourly', 'incomplete', 'latest', 'monthly', 'weekly']);
    expect(Object.values(kopiaSays).filter((r) => r.length === 0).length).toBeGreaterThan(5);
  }
});

it('predicts exactly what the next snapshot makes kopia expire', async () => {
  const policy = policies['a little of everything'];
  await setRetention(policy);
  const before = await snapshotsOfSource();
  const predicted = expiredBySnapshotAt(candidates(before), policy, new Date());
  expect(predicted.length).toBeGreaterThan(5);
  await kopia.k('snapshot', 'create', data, '--no-auto-maintenance');
  const after = new Set((await snapshotsOfSource()).map((s) => s.id));
  const expired = before.filter((s) => !after.has(s.id)).map((s) => s.id);
  expect(expired.sort()).toEqual(predicted.sort());
});
