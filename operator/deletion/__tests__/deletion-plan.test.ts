import type { DeletionStatus } from '../../../generated/types.js';
import { applyRelease, breakerOf, forget, reserve, settle, unreserved, waitingMessage, windowEndsInMs } from '../deletion-plan.js';

const now = new Date('2026-11-27T12:00:00Z');
const breaker = breakerOf({ maxDeletions: 10, window: '1h' });
const repo = { kind: 'Repository', name: 'nas', namespace: 'media' };

/** Reservations made one after another, each on the state the previous one wrote (what the optimistic lock enforces). */
function reserveAll(
  state: DeletionStatus | undefined,
  needs: { holder: string; need: number; exact: boolean }[],
  releaseRequest?: string,
): { state: DeletionStatus; granted: Record<string, number | undefined> } {
  const granted: Record<string, number | undefined> = {};
  let s = state;
  for (const n of needs) {
    const r = reserve({ breaker, state: s, ...n, releaseRequest, now });
    granted[n.holder] = r.granted;
    s = r.state;
  }
  return { state: s!, granted };
}

describe('the mass-deletion breaker', () => {
  it('lets an edit batch through up to the limit within the window, and holds one beyond it whole', () => {
    const ok = reserve({ breaker, state: undefined, holder: 'edit/r', need: 10, exact: true, releaseRequest: undefined, now });
    expect(ok).toMatchObject({
      granted: 10,
      state: { windowStart: '2026-11-27T12:00:00Z', count: 0, reserved: [{ holder: 'edit/r', count: 10 }] },
    });
    const held = reserve({ breaker, state: undefined, holder: 'edit/r', need: 15, exact: true, releaseRequest: undefined, now });
    expect(held.granted).toBeUndefined();
    expect(held.state).toMatchObject({ waiting: 15, held: [{ holder: 'edit/r', count: 15 }] });
    expect(waitingMessage(held.state, breaker, repo)).toContain(
      'kubectl annotate --overwrite -n media repository/nas kopia.io/release-deletions="$(date -u +%FT%TZ)"',
    );
  });

  it('never hands out more than the budget to backups reserving one after another, whatever each estimates', () => {
    const { state, granted } = reserveAll({ windowStart: '2026-11-27T11:30:00Z', count: 2 }, [
      { holder: 'Backup/a', need: 5, exact: false },
      { holder: 'Backup/b', need: 5, exact: false },
      { holder: 'Backup/c', need: 5, exact: false },
    ]);
    expect(granted).toEqual({ 'Backup/a': 5, 'Backup/b': 3, 'Backup/c': 0 });
    expect(unreserved(state, breaker)).toBe(0);
    // A reservation is held until collected: a reconcile that runs again gets the same one, not a second.
    expect(reserve({ breaker, state, holder: 'Backup/b', need: 5, exact: false, releaseRequest: undefined, now }).granted).toBe(3);
  });

  it('a retention change on 40 configs (7 expiries each) lets one through and holds 39, whose total the message names', () => {
    const needs = Array.from({ length: 40 }, (_, i) => ({ holder: `Backup/${i}`, need: 7, exact: true }));
    const { state, granted } = reserveAll(undefined, needs);
    expect(Object.values(granted).filter((g) => g !== undefined)).toEqual([7]);
    expect(state.waiting).toBe(39 * 7);
    expect(waitingMessage(state, breaker, repo)).toMatch(/^273 snapshot deletion\(s\) wait \(39 backup\(s\) or deletion batch\(es\)\)/);
  });

  it('turns a reservation into the actual count when the Job is collected, once', () => {
    const { state } = reserveAll(undefined, [{ holder: 'Backup/a', need: 7, exact: true }]);
    const settled = settle({ breaker, state, holder: 'Backup/a', actual: 6, now });
    expect(settled).toMatchObject({ count: 6 });
    expect(settled.reserved).toBeUndefined();
    expect(settle({ breaker, state: settled, holder: 'Backup/a', actual: 6, now })).toEqual(settled);
    expect(unreserved(settled, breaker)).toBe(4);
  });

  it('counts the reservation of a holder that went away uncollected as spent, and drops what it waited for', () => {
    const { state } = reserveAll(undefined, [
      { holder: 'Backup/a', need: 4, exact: true },
      { holder: 'Backup/b', need: 9, exact: true },
    ]);
    expect(forget(state, ['Backup/a', 'Backup/b'])).toMatchObject({ count: 4, waiting: 0 });
  });

  it('a release lets through what waited when it was acted on, once, and not what comes later', () => {
    const held = reserveAll({ windowStart: '2026-11-27T11:30:00Z', count: 10 }, [
      { holder: 'Backup/a', need: 7, exact: true },
      { holder: 'edit/r', need: 5, exact: true },
    ]);
    expect(held.granted).toEqual({ 'Backup/a': undefined, 'edit/r': undefined });

    const after = reserveAll(
      held.state,
      [
        { holder: 'Backup/late', need: 1, exact: false }, // started while the release is pending: the budget as usual (none)
        { holder: 'Backup/later', need: 3, exact: true },
        { holder: 'Backup/a', need: 7, exact: true },
        { holder: 'edit/r', need: 5, exact: true },
      ],
      't1',
    );
    expect(after.granted).toEqual({ 'Backup/late': 0, 'Backup/later': undefined, 'Backup/a': 7, 'edit/r': 5 });
    expect(after.state).toMatchObject({ releaseHandled: 't1', held: [{ holder: 'Backup/later', count: 3 }] });

    // Once through, a's next Job is under the budget again; the same release value lets nothing else through.
    const done = settle({ breaker, state: after.state, holder: 'Backup/a', actual: 7, now });
    const again = reserveAll(done, [{ holder: 'Backup/a', need: 1, exact: true }], 't1');
    expect(again.granted['Backup/a']).toBeUndefined();
    expect(applyRelease(done, 't1')).toBe(done);
  });

  it('a released holder whose need grew beyond what was released waits again, for a new release', () => {
    const held = reserveAll({ windowStart: '2026-11-27T11:30:00Z', count: 10 }, [{ holder: 'Backup/a', need: 7, exact: true }]);
    const grown = reserveAll(held.state, [{ holder: 'Backup/a', need: 8, exact: true }], 't1');
    expect(grown.granted['Backup/a']).toBeUndefined();
    expect(grown.state).toMatchObject({ held: [{ holder: 'Backup/a', count: 8 }] });
    expect(grown.state.released).toBeUndefined();
  });

  it('counts deletions within the window and starts over after it; reservations carry over', () => {
    const used = { windowStart: '2026-11-27T11:30:00Z', count: 9, reserved: [{ holder: 'Backup/x', count: 1 }] };
    expect(
      reserve({ breaker, state: used, holder: 'edit/r', need: 1, exact: true, releaseRequest: undefined, now }).granted,
    ).toBeUndefined();
    const old = { ...used, windowStart: '2026-11-27T10:00:00Z' };
    const fresh = reserve({ breaker, state: old, holder: 'edit/r', need: 9, exact: true, releaseRequest: undefined, now });
    expect(fresh).toMatchObject({ granted: 9, state: { windowStart: '2026-11-27T12:00:00Z', count: 0 } });
    expect(unreserved(fresh.state, breaker)).toBe(0);
  });

  it('wakes what waits when the window ends', () => {
    const held = reserveAll({ windowStart: '2026-11-27T11:30:00Z', count: 10 }, [{ holder: 'Backup/a', need: 1, exact: true }]);
    expect(windowEndsInMs(held.state, breaker, now)).toBe(30 * 60_000);
    expect(windowEndsInMs({ windowStart: '2026-11-27T11:30:00Z', count: 10 }, breaker, now)).toBeUndefined();
  });
});
