import { breakerOf, decideDeletions, expireBudget } from '../deletion-plan.js';

const now = new Date('2026-11-27T12:00:00Z');
const breaker = breakerOf({ maxDeletions: 10, window: '1h' });

describe('the mass-deletion breaker', () => {
  it('lets deletions through up to the limit within the window', () => {
    expect(decideDeletions({ breaker, state: undefined, pending: 10, releaseRequest: undefined, now })).toMatchObject({
      run: true,
      state: { windowStart: '2026-11-27T12:00:00Z', count: 0, waiting: 0 },
    });
    const used = { windowStart: '2026-11-27T11:30:00Z', count: 8 };
    expect(decideDeletions({ breaker, state: used, pending: 2, releaseRequest: undefined, now }).run).toBe(true);
  });

  it('holds 15 at once at a limit of 10, saying how to release them', () => {
    const d = decideDeletions({ breaker, state: undefined, pending: 15, releaseRequest: undefined, now });
    expect(d.run).toBe(false);
    expect(d.state.waiting).toBe(15);
    expect(!d.run && d.message).toContain('kopia.io/release-deletions');
  });

  it('counts deletions within the window, and starts over after it', () => {
    const used = { windowStart: '2026-11-27T11:30:00Z', count: 9 };
    expect(decideDeletions({ breaker, state: used, pending: 2, releaseRequest: undefined, now }).run).toBe(false);
    const old = { windowStart: '2026-11-27T10:00:00Z', count: 9 };
    expect(decideDeletions({ breaker, state: old, pending: 2, releaseRequest: undefined, now })).toMatchObject({
      run: true,
      state: { count: 0 },
    });
  });

  it('a release request lets what waits through, once', () => {
    const held = { windowStart: '2026-11-27T11:30:00Z', count: 10 };
    const released = decideDeletions({ breaker, state: held, pending: 5, releaseRequest: 't1', now });
    expect(released).toMatchObject({ run: true, release: 't1' });
    const handled = { ...held, releaseHandled: 't1' };
    expect(decideDeletions({ breaker, state: handled, pending: 5, releaseRequest: 't1', now }).run).toBe(false);
  });

  it('gives retention the budget that is left', () => {
    expect(expireBudget({ breaker, state: { windowStart: '2026-11-27T11:30:00Z', count: 7 }, releaseRequest: undefined, now })).toBe(3);
    expect(expireBudget({ breaker, state: { windowStart: '2026-11-27T11:30:00Z', count: 12 }, releaseRequest: undefined, now })).toBe(0);
    expect(expireBudget({ breaker, state: { windowStart: '2026-11-27T11:30:00Z', count: 12 }, releaseRequest: 't2', now })).toBeUndefined();
  });
});
