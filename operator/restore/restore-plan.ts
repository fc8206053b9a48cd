// Which snapshot a Restore means, and whose answer it is. Pure.
// - A source is answered from kopia's listing of the repository, taken after the thing
//   being restored into was asked for (the Restore for target.pvc, each claim for
//   target.populator), so it is kopia's answer now, not a stale mirror.
// - "None" — the identity has no complete snapshot at all — is the only answer that
//   onMissingSnapshot: Continue may turn into an empty volume. Every other miss (an id not
//   listed, an offset past the oldest, an asOf before the first snapshot, a Backup whose
//   snapshot retention removed) names what was asked and what exists, and fails.
// - target.populator: each claim (by UID) gets its own answer, kept for that claim's
//   retries and restarts only; a claim made later is answered anew.
import type { ClaimResolution, Identity, RestoreStatus } from '../../generated/types.js';
import type { CatalogSnapshot } from '../mover/mover-contract.js';
import { identityString } from '../backupconfig/backupconfig-identity.js';
import { Reason } from '../reasons.js';

/** The listing a Restore resolves against: trimmed to what choosing needs. */
export type ListedSnapshot = Pick<CatalogSnapshot, 'id' | 'source' | 'startTime' | 'endTime' | 'incompleteReason' | 'rootID'>;

export interface SnapshotChoice {
  id?: string;
  /** With id: the same snapshot saved again under another id (a pin change) is found by its start time and root object. */
  sameAs?: { startTime: string; rootID: string };
  /** The newest snapshot taken at or before this time. */
  asOf?: string;
  /** 0 is the newest snapshot, 1 the one before it, ... */
  offset?: number;
}

export type SnapshotAnswer =
  | { kind: 'found'; snapshot: ListedSnapshot }
  /** The identity has no complete snapshot in the listing. */
  | { kind: 'none' }
  /** The identity has snapshots, or an exact one was named, but not what was asked for. */
  | { kind: 'notFound'; message: string };

const sameIdentity = (s: ListedSnapshot, id: Required<Identity>) =>
  s.source.username === id.username && s.source.hostname === id.hostname && s.source.path === id.path;

/** The complete snapshots of an identity, newest first. */
export function snapshotsOf(listing: ListedSnapshot[], identity: Required<Identity>): ListedSnapshot[] {
  return listing
    .filter((s) => !s.incompleteReason && sameIdentity(s, identity))
    .sort((a, b) => Date.parse(b.startTime) - Date.parse(a.startTime) || b.id.localeCompare(a.id));
}

/** What exists of an identity, for a message: count, newest and oldest times. */
export function describeHistory(snapshots: ListedSnapshot[], identity: Required<Identity>): string {
  const who = identityString(identity);
  if (snapshots.length === 0) return `kopia lists no snapshot of ${who}`;
  const newest = snapshots[0].startTime;
  const oldest = snapshots[snapshots.length - 1].startTime;
  return snapshots.length === 1
    ? `kopia lists 1 snapshot of ${who}, taken ${newest}`
    : `kopia lists ${snapshots.length} snapshots of ${who}, the newest taken ${newest}, the oldest ${oldest}`;
}

/**
 * The snapshot a choice means in the listing. A named snapshot (an id, or a Backup's)
 * that is not listed is never "none": it existed, so its absence is an error.
 */
export function answerChoice(listing: ListedSnapshot[], identity: Required<Identity>, choice: SnapshotChoice): SnapshotAnswer {
  const candidates = snapshotsOf(listing, identity);
  const what = describeChoice(identity, choice);
  const history = describeHistory(candidates, identity);
  let found: ListedSnapshot | undefined;
  if (choice.id) {
    const sameAs = choice.sameAs;
    found =
      candidates.find((s) => s.id === choice.id) ??
      (sameAs ? candidates.find((s) => s.rootID === sameAs.rootID && Date.parse(s.startTime) === Date.parse(sameAs.startTime)) : undefined);
  } else if (choice.asOf) {
    const limit = Date.parse(choice.asOf);
    found = candidates.find((s) => Date.parse(s.startTime) <= limit);
  } else found = candidates[choice.offset ?? 0];
  if (found) return { kind: 'found', snapshot: found };
  if (choice.id) {
    // Another identity's snapshot reads exactly like a missing one: on a shared repository,
    // whose snapshot an id is (or that it exists at all) is not this namespace's to learn.
    const listed = listing.find((s) => s.id === choice.id && sameIdentity(s, identity));
    const why = listed?.incompleteReason
      ? `it is incomplete (${listed.incompleteReason}) and cannot be restored`
      : `it is not in the repository as a snapshot of ${identityString(identity)} (deleted, expired by retention, or never one of it)`;
    return { kind: 'notFound', message: `${what}: ${why}; ${history}` };
  }
  if (candidates.length === 0) return { kind: 'none' };
  return { kind: 'notFound', message: `no ${what}; ${history}` };
}

/** The old name kept for callers that only want the snapshot. */
export function chooseSnapshot(
  listing: ListedSnapshot[],
  identity: Required<Identity>,
  choice: SnapshotChoice,
): ListedSnapshot | undefined {
  const answer = answerChoice(listing, identity, choice);
  return answer.kind === 'found' ? answer.snapshot : undefined;
}

export function describeChoice(identity: Required<Identity>, choice: SnapshotChoice): string {
  const who = identityString(identity);
  if (choice.id) return `snapshot ${choice.id} of ${who}`;
  if (choice.asOf) return `snapshot of ${who} taken at or before ${choice.asOf}`;
  return choice.offset ? `snapshot ${choice.offset} before the newest of ${who}` : `snapshot of ${who} (the newest)`;
}

/**
 * May a listing answer for something asked at `since`? Only one that began strictly after
 * it: both times come from the API server and have whole seconds, so a listing begun in
 * the same second may have begun before.
 */
export function listingIsAfter(listedAt: Date, since: Date): boolean {
  return listedAt.getTime() > since.getTime();
}

// ---- target.populator: one answer per claim -------------------------------------------------

/** Answers of claims that are gone are kept as history, the newest this many. */
export const CLAIM_HISTORY = 8;
/** Answers kept at most (the schema's maxItems): claims beyond it wait for room. */
export const MAX_CLAIM_ANSWERS = 32;

/** What the populator needs to know of a claim naming the Restore. */
export interface ClaimView {
  name: string;
  uid: string;
  creationTimestamp: string;
  /** Bound or being deleted: it needs no answer now. */
  settled: boolean;
}

export const answerOf = (status: RestoreStatus | undefined, claimUID: string): ClaimResolution | undefined =>
  status?.claims?.find((c) => c.claimUID === claimUID);

/** Claims that need an answer, oldest first. */
export function claimsToResolve(status: RestoreStatus | undefined, claims: ClaimView[]): ClaimView[] {
  return claims
    .filter((c) => !c.settled && !answerOf(status, c.uid))
    .sort((a, b) => a.creationTimestamp.localeCompare(b.creationTimestamp) || a.name.localeCompare(b.name));
}

/**
 * The answers to keep: every one of a claim still waiting to be filled, and of the others
 * (bound, being deleted, gone) the newest CLAIM_HISTORY — in the order they were given.
 */
export function keptAnswers(answers: ClaimResolution[], unsettledUIDs: Set<string>): ClaimResolution[] {
  const done = answers.filter((a) => !unsettledUIDs.has(a.claimUID));
  const dropped = new Set(done.slice(0, Math.max(0, done.length - CLAIM_HISTORY)).map((a) => a.claimUID));
  return answers.filter((a) => !dropped.has(a.claimUID));
}

/** The snapshot a claim's answer names, as the restore Job needs it. */
export interface PinnedSnapshot {
  snapshotID: string;
  snapshotTime?: string;
  rootID?: string;
}

// ---- resolutions and what they become ---------------------------------------------------------

export type Resolved = NonNullable<RestoreStatus['resolved']>;

/** How resolving a source against a listing ended. */
export type Resolution =
  | { state: 'resolved'; resolved: Resolved; message: string; listedAt: string }
  /** Kopia answered and the identity has no snapshot at all. */
  | { state: 'missing'; resolved: Resolved; message: string; listedAt: string }
  | { state: 'wait'; reason: string; message: string; phase: 'Pending' | 'Resolving' }
  /** listedAt: when the failure came from a listing (not, say, a failed Backup). */
  | { state: 'failed'; reason: string; message: string; listedAt?: string };

export type Answered = Exclude<Resolution, { state: 'wait' }>;

/**
 * One claim's answer. "missing" becomes an empty volume only under onMissingSnapshot:
 * Continue; under Fail it is a failure like any other miss.
 */
export function claimAnswer(
  claim: Pick<ClaimView, 'name' | 'uid'>,
  r: Answered,
  onMissingSnapshot: 'Fail' | 'Continue',
  at: string,
): ClaimResolution {
  const base = { claimName: claim.name, claimUID: claim.uid, ...(r.listedAt ? { listedAt: r.listedAt } : {}) };
  switch (r.state) {
    case 'resolved':
      return { ...base, ...r.resolved, resolvedAt: r.resolved.resolvedAt ?? at };
    case 'missing':
      if (onMissingSnapshot === 'Continue') return { ...base, ...r.resolved, resolvedAt: r.resolved.resolvedAt ?? at };
      return { ...base, resolvedAt: at, failed: { reason: Reason.SnapshotMissing, message: `${r.message} (onMissingSnapshot is Fail)` } };
    case 'failed':
      return { ...base, resolvedAt: at, failed: { reason: r.reason, message: r.message } };
  }
}

/** The claim answer as the Restore's top-level `resolved` shows it (no claim fields, no failure). */
export function resolvedOf(answer: ClaimResolution): Resolved | undefined {
  if (answer.failed) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- the rest is the resolved snapshot
  const { claimName, claimUID, listedAt, failed, ...resolved } = answer;
  return resolved;
}

/** The snapshot a resolution pins, for the restore Job (undefined: an empty volume). */
export function pinnedSnapshot(r: Resolved | ClaimResolution | undefined): PinnedSnapshot | undefined {
  if (!r?.snapshotID) return undefined;
  return { snapshotID: r.snapshotID, snapshotTime: r.snapshotTime, rootID: r.rootID };
}

/**
 * What kopia_restores_total counts for a status write: an ending when the phase becomes
 * Completed or Failed from another phase, with the Ready condition's reason; undefined
 * otherwise. A status that had ended already never counts again, so a later pass or a
 * restarted operator does not recount it.
 */
export function restoreEnding(
  before: RestoreStatus,
  after: RestoreStatus,
): { outcome: 'Completed' | 'Failed'; reason: string } | undefined {
  if (after.phase !== 'Completed' && after.phase !== 'Failed') return undefined;
  if (before.phase === after.phase) return undefined;
  const reason = after.conditions?.find((c) => c.type === 'Ready')?.reason ?? 'Unknown';
  return { outcome: after.phase, reason };
}
