// Deletions another kopia client's concurrent manifest compaction undid are made again. The
// undoing itself was seen with real kopia (deletion-breaker control-plane test: three of 40
// backups reported nothing expired, and their snapshots were back); here the mover's answer
// to it is driven with a scripted kopia, one listing per look.
import { jest } from '@jest/globals';
import type { KopiaSnapshot } from '../kopia-json.js';
import type { KopiaSession } from '../kopia-session.js';
import { confirmDeletions, stillListed, undoneExpiries } from '../deletion-check.js';
import type { Logger } from '../../runtime/logger.js';

const logged: string[] = [];
const log = { warn: (m: string) => logged.push(m), error: (m: string) => logged.push(m), info: () => undefined } as unknown as Logger;

/** kopia manifest ids are 32 hex digits. */
const id = (n: number) => n.toString(16).padStart(32, '0');
const D1 = id(1);
const D2 = id(2);
const D3 = id(3);
const D4 = id(4);
const KEEP = id(5);
const NEW = id(6);
const OTHER = id(7);

const snap = (id: string, day: number, extra: Partial<KopiaSnapshot> = {}): KopiaSnapshot =>
  ({
    id,
    source: { userName: 'app', host: 'ns', path: '/data' },
    startTime: `2026-11-${String(day).padStart(2, '0')}T12:00:00Z`,
    ...extra,
  }) as KopiaSnapshot;

describe('undoneExpiries', () => {
  const predicted = [D1, D2, D3, D4];
  const listing = [
    snap(D4, 4, { retentionReason: ['daily-2'] }),
    snap(D2, 2),
    snap(D1, 1),
    snap(D3, 3, { pins: [KEEP] }),
    snap(NEW, 5, { retentionReason: ['daily-1'] }),
    snap(OTHER, 0),
  ];

  it('names what retention was predicted to expire, has no reason to stay and is not pinned, oldest first', () => {
    expect(undoneExpiries(predicted, listing, Infinity, NEW)).toEqual([D1, D2]);
  });

  it('never names more than the budget (the prediction and the breaker) still allows', () => {
    expect(undoneExpiries(predicted, listing, 1, NEW)).toEqual([D1]);
    expect(undoneExpiries(predicted, listing, 0, NEW)).toEqual([]);
    expect(undoneExpiries(predicted, listing, -2, NEW)).toEqual([]);
  });

  it('never names a snapshot retention was not predicted to expire, though a listing gives it no reason', () => {
    expect(undoneExpiries([], listing, Infinity, NEW)).toEqual([]);
    expect(undoneExpiries([D2], listing, Infinity, NEW)).toEqual([D2]);
  });

  it('names nothing from a listing without reasons (kopia could not read the policy): the newest snapshot has none either', () => {
    const noReasons = listing.map((s) => ({ ...s, retentionReason: undefined }));
    expect(undoneExpiries(predicted, noReasons, Infinity, NEW)).toEqual([]);
    expect(undoneExpiries(predicted, listing, Infinity, 'f'.repeat(32))).toEqual([]);
  });
});

it('stillListed keeps the deleted ids a listing still holds', () => {
  expect(stillListed(['a', 'b', 'c'], [snap('b', 1), snap('x', 2)])).toEqual(['b']);
});

/** A kopia that answers each look with the next scripted listing and records every call. */
function scriptedKopia(listings: KopiaSnapshot[][]) {
  const calls: string[][] = [];
  const looks = [...listings];
  const kopia = {
    runOrFail: jest.fn(async (_op: string, args: string[]) => {
      calls.push(args);
      return '';
    }),
  } as unknown as KopiaSession;
  const list = async () => {
    calls.push(['look']);
    return looks.length > 1 ? looks.shift()! : looks[0];
  };
  return { kopia, calls, list };
}

describe('confirmDeletions', () => {
  const sleeps: number[] = [];
  const sleep = async (ms: number) => void sleeps.push(ms);
  beforeEach(() => {
    sleeps.length = 0;
    logged.length = 0;
  });

  it('turns kopia’s list cache off, waits, looks, and deletes again what came back until a look finds it gone', async () => {
    const back = [snap(D1, 1), snap(D2, 2), snap(KEEP, 3, { retentionReason: ['daily-1'] })];
    const gone = [snap(KEEP, 3, { retentionReason: ['daily-1'] })];
    const { kopia, calls, list } = scriptedKopia([back, back, gone]);
    const out = await confirmDeletions(kopia, log, {
      operation: 'backup',
      list,
      undone: (l) => undoneExpiries([D1, D2], l, 5, KEEP),
      sleep,
      settleMs: 3000,
    });
    expect(out).toEqual({ listing: gone, deletedAgain: [D1, D2, D1, D2], stillUndone: [] });
    expect(calls.map((c) => c.slice(0, 3).join(' '))).toEqual([
      'cache set --max-list-cache-duration=0s',
      'look',
      `snapshot delete ${D1}`,
      'look',
      `snapshot delete ${D1}`,
      'look',
    ]);
    expect(calls[2]).toEqual(expect.arrayContaining([D1, D2, '--delete']));
    expect(sleeps).toEqual([3000, 3000, 3000]);
    expect(logged).toEqual([
      'snapshot deletions were undone by a concurrent manifest compaction; deleting again',
      'snapshot deletions were undone by a concurrent manifest compaction; deleting again',
    ]);
  });

  it('deletes nothing when the first look finds the deletions held', async () => {
    const { kopia, calls, list } = scriptedKopia([[snap(KEEP, 3)]]);
    const out = await confirmDeletions(kopia, log, { operation: 'edit', list, undone: (l) => stillListed([D1], l), sleep });
    expect(out.deletedAgain).toEqual([]);
    expect(calls.filter((c) => c[0] === 'snapshot')).toEqual([]);
  });

  it('gives up after its rounds and names what is still back', async () => {
    const { kopia, calls, list } = scriptedKopia([[snap(D1, 1)]]);
    const out = await confirmDeletions(kopia, log, { operation: 'edit', list, undone: (l) => stillListed([D1], l), sleep, rounds: 2 });
    expect(out).toMatchObject({ deletedAgain: [D1, D1], stillUndone: [D1] });
    expect(calls.filter((c) => c[0] === 'snapshot')).toHaveLength(2);
    expect(logged.at(-1)).toMatch(/keep being undone/);
  });

  it('never throws: a failed look reports what it last saw and what it deleted again', async () => {
    const { kopia, calls, list } = scriptedKopia([[snap(D1, 1)]]);
    let looks = 0;
    const failingSecondLook = async () => {
      if (++looks === 2) throw new Error('storage unavailable');
      return list();
    };
    const out = await confirmDeletions(kopia, log, {
      operation: 'edit',
      list: failingSecondLook,
      undone: (l) => stillListed([D1], l),
      sleep,
    });
    expect(out).toMatchObject({ deletedAgain: [D1], stillUndone: [D1], error: 'storage unavailable' });
    expect(calls.filter((c) => c[0] === 'snapshot')).toHaveLength(1);
  });

  it('reports the outcome unknown when not even the first look could be taken', async () => {
    const { kopia } = scriptedKopia([[]]);
    const out = await confirmDeletions(kopia, log, {
      operation: 'edit',
      list: async () => {
        throw new Error('storage unavailable');
      },
      undone: (l) => stillListed([D1], l),
      sleep,
    });
    expect(out).toEqual({ listing: undefined, deletedAgain: [], stillUndone: undefined, error: 'storage unavailable' });
  });
});
