import { setCondition } from '../conditions.js';
import { deepEqual } from '../deep-equal.js';
import { WorkQueue } from '../work-queue.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await tick(5);
  }
}

describe('work queue', () => {
  it('merges repeated adds and never runs one key twice at once', async () => {
    let running = 0;
    let maxRunning = 0;
    const runs: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let aStarted!: () => void;
    const aRunning = new Promise<void>((r) => (aStarted = r));
    const q = new WorkQueue(async (key) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      runs.push(key);
      if (key === 'a') aStarted();
      await gate;
      running--;
    });
    q.add('a');
    q.add('a');
    q.add('b');
    await aRunning;
    q.add('a'); // while running: runs exactly once more afterwards
    q.add('a');
    release();
    await tick(20);
    await q.whenIdle();
    expect(runs.sort()).toEqual(['a', 'a', 'b']);
    expect(maxRunning).toBe(2);
  });

  it('reports each run as success, requeue or error with its duration, and the depth as it changes', async () => {
    const outcomes: string[] = [];
    const depths: number[] = [];
    let failed = false;
    const q = new WorkQueue(
      async (key) => {
        await tick(5);
        if (key === 'wait') return { requeueAfterMs: 60_000 };
        if (key === 'flaky' && !failed) {
          failed = true;
          throw new Error('transient');
        }
      },
      {
        concurrency: 1,
        paused: true,
        baseDelayMs: 1,
        onRunEnd: (key, result, seconds) => {
          expect(seconds).toBeGreaterThanOrEqual(0.004);
          outcomes.push(`${key} ${result}`);
        },
        onDepth: (depth) => depths.push(depth),
      },
    );
    q.add('ok');
    q.add('wait');
    q.add('flaky');
    expect(depths).toEqual([1, 2, 3]);
    q.resume();
    await until(() => outcomes.length === 4);
    expect(outcomes).toEqual(['ok success', 'wait requeue', 'flaky error', 'flaky success']);
    expect(depths.slice(3, 6)).toEqual([2, 1, 0]);
    expect(depths.at(-1)).toBe(0);
    q.stop();
  });

  it('retries a failing key with growing backoff, then forgets the failures on success', async () => {
    const times: number[] = [];
    const errors: number[] = [];
    const q = new WorkQueue(
      async () => {
        times.push(Date.now());
        if (times.length < 3) throw new Error('transient');
      },
      { baseDelayMs: 20, onError: (_k, _e, retry) => errors.push(retry) },
    );
    q.add('k');
    await tick(200);
    expect(times).toHaveLength(3);
    expect(errors).toEqual([20, 40]);
    expect(q.backoffFor('k')).toBe(20);
    q.stop();
  });

  it('requeues after the delay a reconcile asks for, and holds keys while paused', async () => {
    let count = 0;
    const q = new WorkQueue(
      async () => {
        count++;
        return count === 1 ? { requeueAfterMs: 30 } : undefined;
      },
      { paused: true },
    );
    q.add('k');
    await tick(10);
    expect(count).toBe(0);
    q.resume();
    await tick(80);
    expect(count).toBe(2);
    q.stop();
  });

  it('waits out delays beyond the timer limit (a 720h requeue is not a hot loop)', async () => {
    let count = 0;
    const q = new WorkQueue(async () => {
      count++;
      return { requeueAfterMs: 720 * 3_600_000 };
    });
    q.add('k');
    await tick(100);
    expect(count).toBe(1);
    q.stop();
  });
});

describe('conditions', () => {
  it('moves lastTransitionTime only when the status changes', () => {
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-01-02T00:00:00Z');
    const a = setCondition([], { type: 'Ready', status: 'False', reason: 'X', message: 'm' }, 1, t1);
    const b = setCondition(a, { type: 'Ready', status: 'False', reason: 'Y', message: 'n' }, 2, t2);
    const c = setCondition(b, { type: 'Ready', status: 'True', reason: 'Z', message: 'o' }, 2, t2);
    expect(b[0]).toMatchObject({ reason: 'Y', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 2 });
    expect(c[0].lastTransitionTime).toBe('2026-01-02T00:00:00Z');
    expect(c).toHaveLength(1);
  });
});

it('deepEqual ignores key order and undefined fields', () => {
  expect(deepEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined })).toBe(true);
  expect(deepEqual({ a: 1 }, { a: 2 })).toBe(false);
});
