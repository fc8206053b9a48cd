// The per-repository mass-deletion breaker. A flapping GitOps tool once fanned out into
// hundreds of snapshot deletions in a peer project; here more than maxDeletions within
// window stop and wait for a person: the annotation kopia.io/release-deletions, set to a
// new value each time, lets what is waiting through once. Pure.
import type { DeletionBreaker, DeletionStatus } from '../../generated/types.js';
import { parseDuration } from '../repository/repository-verification.js';

export const RELEASE_DELETIONS_ANNOTATION = 'kopia.io/release-deletions';
export const SNAPSHOT_FINALIZER = 'kopia.io/snapshot-deletion';

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface Breaker {
  maxDeletions: number;
  windowMs: number;
}

export function breakerOf(spec: DeletionBreaker | undefined): Breaker {
  return { maxDeletions: spec?.maxDeletions ?? 10, windowMs: parseDuration(spec?.window ?? '1h') };
}

/** The state with an expired window started over. */
export function currentWindow(state: DeletionStatus | undefined, breaker: Breaker, now: Date): DeletionStatus {
  const start = state?.windowStart ? Date.parse(state.windowStart) : undefined;
  if (start !== undefined && now.getTime() - start < breaker.windowMs) return { ...state };
  return { ...state, windowStart: iso(now), count: 0 };
}

export type DeletionDecision =
  | { run: true; state: DeletionStatus; release?: string }
  | { run: false; state: DeletionStatus; message: string };

/** May `pending` deletions run now? A pending release request lets them all through. */
export function decideDeletions(args: {
  breaker: Breaker;
  state: DeletionStatus | undefined;
  pending: number;
  releaseRequest: string | undefined;
  now: Date;
}): DeletionDecision {
  const state = currentWindow(args.state, args.breaker, args.now);
  const release = args.releaseRequest && args.releaseRequest !== state.releaseHandled ? args.releaseRequest : undefined;
  if (release || (state.count ?? 0) + args.pending <= args.breaker.maxDeletions)
    return { run: true, state: { ...state, waiting: 0 }, release };
  const windowText = `${Math.round(args.breaker.windowMs / 60_000)} min`;
  return {
    run: false,
    state: { ...state, waiting: args.pending },
    message:
      `${args.pending} snapshot deletion(s) wait: with ${state.count ?? 0} already since ${state.windowStart}, that is more than ` +
      `${args.breaker.maxDeletions} within ${windowText}. Check them, then let them through with ` +
      `kubectl annotate --overwrite <repository> ${RELEASE_DELETIONS_ANNOTATION}="$(date -u +%FT%TZ)"`,
  };
}

/** How many snapshots retention may expire at the next backup before it trips the breaker (undefined: no limit now). */
export function expireBudget(args: {
  breaker: Breaker;
  state: DeletionStatus | undefined;
  releaseRequest: string | undefined;
  now: Date;
}): number | undefined {
  const state = currentWindow(args.state, args.breaker, args.now);
  if (args.releaseRequest && args.releaseRequest !== state.releaseHandled) return undefined;
  return Math.max(0, args.breaker.maxDeletions - (state.count ?? 0));
}
