// The per-repository mass-deletion breaker. A flapping GitOps tool once fanned out into
// hundreds of snapshot deletions in a peer project; here every snapshot deletion counts:
// those of edit Jobs (Backups with deletionPolicy Delete) and those retention expires at a
// backup. More than maxDeletions within window stop and wait for a person: the annotation
// kopia.io/release-deletions, set to a new value, lets what waits at that moment through,
// once. Pure.
//
// The budget is a ledger in the repository's status.deletions, always written with the
// object's resourceVersion (a conflict means: re-read, decide again), so concurrent
// reconcilers never hand out the same budget twice:
//   count     deletions done within the window;
//   reserved  what each running Job may delete, written BEFORE the Job starts; when its
//             result is collected the reservation turns into its actual count;
//   held      what waits, with how many deletions it would make;
//   released  what a release request let through, each once.
import type { DeletionBreaker, DeletionHold, DeletionStatus } from '../../generated/types.js';
import { parseDuration } from '../repository/repository-verification.js';

export const RELEASE_DELETIONS_ANNOTATION = 'kopia.io/release-deletions';
export const SNAPSHOT_FINALIZER = 'kopia.io/snapshot-deletion';
/** Entries per list in status.deletions (the schema's maxItems). */
const MAX_ENTRIES = 10000;

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface Breaker {
  maxDeletions: number;
  windowMs: number;
}

export function breakerOf(spec: DeletionBreaker | undefined): Breaker {
  return { maxDeletions: spec?.maxDeletions ?? 10, windowMs: parseDuration(spec?.window ?? '1h') };
}

/** The ledger key of a backup's retention expiries (its UID: opaque on a repository shared by tenants). */
export const backupHolder = (uid: string) => `Backup/${uid}`;
/** The ledger key of a repository object's edit Job. */
export const editHolder = (repositoryUID: string) => `edit/${repositoryUID}`;

const sum = (entries: DeletionHold[] | undefined) => (entries ?? []).reduce((n, e) => n + e.count, 0);
const without = (entries: DeletionHold[] | undefined, holder: string) => (entries ?? []).filter((e) => e.holder !== holder);
const find = (entries: DeletionHold[] | undefined, holder: string) => (entries ?? []).find((e) => e.holder === holder);

/** The state with an expired window started over. Reservations and holds carry on: they are not deletions yet. */
export function currentWindow(state: DeletionStatus | undefined, breaker: Breaker, now: Date): DeletionStatus {
  const start = state?.windowStart ? Date.parse(state.windowStart) : undefined;
  if (start !== undefined && now.getTime() - start < breaker.windowMs) return { ...state };
  return { ...state, windowStart: iso(now), count: 0 };
}

/** Budget neither used within the window nor reserved by a running Job. */
export function unreserved(state: DeletionStatus, breaker: Breaker): number {
  return Math.max(0, breaker.maxDeletions - (state.count ?? 0) - sum(state.reserved));
}

/**
 * A release request not acted on yet lets through exactly what is held now: each holder
 * once, for the count it waited with. Later arrivals get the budget as usual.
 */
export function applyRelease(state: DeletionStatus, releaseRequest: string | undefined): DeletionStatus {
  if (!releaseRequest || releaseRequest === state.releaseHandled) return state;
  const released = [...(state.released ?? []), ...(state.held ?? [])].slice(-MAX_ENTRIES);
  return tidy({ ...state, released, held: [], releaseHandled: releaseRequest });
}

export type Reservation =
  /** The Job may delete up to `granted`; `released` when a release request let it through beyond the budget. */
  { granted: number; released: boolean; state: DeletionStatus } | { granted: undefined; state: DeletionStatus };

/**
 * Budget for one Job of `holder` that would delete `need` snapshots. `exact`: the need is
 * known (an edit batch, a backup told how much its retention expires): all of it or wait.
 * Otherwise the need is an estimate: the Job gets what is free up to it, possibly 0, and
 * stops by itself when it would expire more (then its need is known). Idempotent: a holder
 * with a reservation gets that reservation again.
 */
export function reserve(args: {
  breaker: Breaker;
  state: DeletionStatus | undefined;
  holder: string;
  need: number;
  exact: boolean;
  releaseRequest: string | undefined;
  now: Date;
}): Reservation {
  const { holder, need } = args;
  const state = applyRelease(currentWindow(args.state, args.breaker, args.now), args.releaseRequest);
  const mine = find(state.reserved, holder);
  if (mine) return { granted: mine.count, released: false, state };
  const free = unreserved(state, args.breaker);
  const release = find(state.released, holder);
  const grant = (granted: number, released: boolean): Reservation => ({
    granted,
    released,
    state: tidy({
      ...state,
      reserved: [...without(state.reserved, holder), { holder, count: granted }],
      held: without(state.held, holder),
      released: without(state.released, holder),
    }),
  });
  if (release && need <= Math.max(release.count, free)) return grant(need, need > free);
  if (!args.exact) return grant(Math.min(need, free), false);
  if (need <= free) return grant(need, false);
  // Waits: its release (for a smaller count) is used up; a new one is needed for this count.
  const held = [...without(state.held, holder), { holder, count: need }].slice(-MAX_ENTRIES);
  return { granted: undefined, state: tidy({ ...state, held, released: without(state.released, holder) }) };
}

/** A Job's result collected: its reservation becomes the deletions it made. Idempotent (no reservation: nothing to do). */
export function settle(args: {
  breaker: Breaker;
  state: DeletionStatus | undefined;
  holder: string;
  actual: number;
  now: Date;
}): DeletionStatus {
  const state = currentWindow(args.state, args.breaker, args.now);
  if (!find(state.reserved, args.holder)) return state;
  return tidy({ ...state, count: (state.count ?? 0) + args.actual, reserved: without(state.reserved, args.holder) });
}

/**
 * Holders that are gone or finished without their result being collected: what they held
 * or were released for is dropped; what they reserved counts as deleted (a Job may have
 * deleted it; the breaker errs towards stopping).
 */
export function forget(state: DeletionStatus, holders: Iterable<string>): DeletionStatus {
  let next = state;
  for (const holder of holders) {
    const reserved = find(next.reserved, holder)?.count ?? 0;
    next = {
      ...next,
      count: (next.count ?? 0) + reserved,
      reserved: without(next.reserved, holder),
      held: without(next.held, holder),
      released: without(next.released, holder),
    };
  }
  return tidy(next);
}

/** Every holder the ledger names. */
export function holdersOf(state: DeletionStatus | undefined): string[] {
  return [...new Set([...(state?.reserved ?? []), ...(state?.held ?? []), ...(state?.released ?? [])].map((e) => e.holder))];
}

/** Empty lists left out (so an idle ledger is written as it was), and the waiting total kept. */
function tidy(state: DeletionStatus): DeletionStatus {
  const next: DeletionStatus = { ...state, waiting: sum(state.held) };
  for (const k of ['reserved', 'held', 'released'] as const) if (!next[k]?.length) delete next[k];
  return next;
}

/** When the window ends and budget comes back (for a requeue), if anything waits. */
export function windowEndsInMs(state: DeletionStatus, breaker: Breaker, now: Date): number | undefined {
  if (!state.held?.length || !state.windowStart) return undefined;
  return Math.max(1000, Date.parse(state.windowStart) + breaker.windowMs - now.getTime());
}

/** The kubectl command that releases what waits on a repository object. */
export function releaseCommand(repository: { kind: string; name: string; namespace?: string }): string {
  const target =
    repository.kind === 'ClusterRepository'
      ? `clusterrepository/${repository.name}`
      : `-n ${repository.namespace} repository/${repository.name}`;
  return `kubectl annotate --overwrite ${target} ${RELEASE_DELETIONS_ANNOTATION}="$(date -u +%FT%TZ)"`;
}

/** Why deletions wait, for conditions and Events; undefined when nothing waits. */
export function waitingMessage(
  state: DeletionStatus,
  breaker: Breaker,
  repository: { kind: string; name: string; namespace?: string },
): string | undefined {
  if (!state.held?.length) return undefined;
  const windowText = `${Math.round(breaker.windowMs / 60_000)} min`;
  return (
    `${sum(state.held)} snapshot deletion(s) wait (${state.held.length} backup(s) or deletion batch(es)): with ${state.count ?? 0} done since ${state.windowStart} ` +
    `and ${sum(state.reserved)} reserved by running Jobs, that is more than ${breaker.maxDeletions} within ${windowText}. ` +
    `Check them, then let them through once with ${releaseCommand(repository)}`
  );
}
