// kopia deletes a snapshot by writing a tombstone for its manifest entry, and another
// client's manifest compaction running at the same moment can undo that: a client that
// loaded the manifests before the tombstone writes the entry back as live, while a second
// one, which saw the tombstone but not that rewrite, compacts the tombstone away (kopia
// 0.23.1, repo/manifest auto-compaction, which every writer runs past 16 manifest contents).
// Seen with 40 movers on one repository: retention deleted three snapshots, and a listing
// two seconds later had them back. So a mover that deleted looks again, from a listing that
// sees other clients' writes, once those compactions have had time to land, and deletes
// again what came back.
import type { Logger } from '../runtime/logger.js';
import { listCacheOffCommand, snapshotDeleteCommand } from './kopia-command.js';
import type { KopiaSnapshot } from './kopia-json.js';
import type { KopiaSession } from './kopia-session.js';
import type { MoverRequest } from './mover-contract.js';
import { parseKopiaTime } from './retention.js';

/** How long after its last deletion a mover looks again: a compaction that began before it ends well within this. */
export const DELETION_SETTLE_MS = 3000;
/** Rounds of look-and-delete-again before the mover gives up and says so. */
export const DELETION_CHECK_ROUNDS = 4;

/**
 * Of the snapshots retention was predicted to expire at this run (`predicted`), those a later
 * listing still holds with no reason to stay and no pin: its deletions undone. At most
 * `budget`, oldest first, as retention would. Only predicted ids: a snapshot retention kept
 * is never named because some later listing lacks its reason (kopia lists every snapshot
 * without reasons when it cannot read the policy) — and should the listing carry no reason
 * even for the newest complete snapshot (`newest`, which always has one), nothing is named.
 */
export function undoneExpiries(predicted: readonly string[], listing: readonly KopiaSnapshot[], budget: number, newest: string): string[] {
  if (!listing.find((s) => s.id === newest)?.retentionReason?.length) return [];
  const wanted = new Set(predicted);
  return listing
    .filter((s) => wanted.has(s.id) && !s.retentionReason?.length && !s.pins?.length)
    .sort((a, b) => (parseKopiaTime(a.startTime) < parseKopiaTime(b.startTime) ? -1 : 1))
    .slice(0, Math.max(0, budget))
    .map((s) => s.id);
}

/** Of the ids deleted by name, those the listing still holds. */
export function stillListed(deleted: readonly string[], listing: readonly KopiaSnapshot[]): string[] {
  const listed = new Set(listing.map((s) => s.id));
  return deleted.filter((id) => listed.has(id));
}

export interface DeletionCheck {
  operation: MoverRequest['operation'];
  /** A fresh listing of what the deletions touched. */
  list: () => Promise<KopiaSnapshot[]>;
  /** From a listing: the ids to delete again (empty: the deletions stuck). */
  undone: (listing: KopiaSnapshot[]) => string[];
  sleep?: (ms: number) => Promise<void>;
  settleMs?: number;
  rounds?: number;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface DeletionCheckResult {
  /** The last listing taken (undefined: none could be). */
  listing?: KopiaSnapshot[];
  /** Ids deleted again by a command that succeeded. */
  deletedAgain: string[];
  /** Ids the last listing still holds; undefined when no listing could be taken (unknown). */
  stillUndone?: string[];
  /** Why the check stopped early, if it did. */
  error?: string;
}

/**
 * Looks again after the mover's deletions and deletes again what came back, until a listing
 * taken `settleMs` after the last deletion shows none undone. Never throws: what was
 * deleted before still stands, and the caller counts from the result.
 */
export async function confirmDeletions(kopia: KopiaSession, log: Logger, check: DeletionCheck): Promise<DeletionCheckResult> {
  const sleep = check.sleep ?? realSleep;
  const settleMs = check.settleMs ?? DELETION_SETTLE_MS;
  const rounds = check.rounds ?? DELETION_CHECK_ROUNDS;
  const deletedAgain: string[] = [];
  let listing: KopiaSnapshot[] | undefined;
  try {
    // The next listings must see other clients' writes (kopia caches index listings for 30 s).
    await kopia.runOrFail(check.operation, listCacheOffCommand());
    for (let round = 0; ; round++) {
      await sleep(settleMs);
      listing = await check.list();
      const undone = check.undone(listing);
      if (undone.length === 0) return { listing, deletedAgain, stillUndone: [] };
      if (round === rounds) {
        log.error('snapshot deletions keep being undone by concurrent manifest compactions; giving up for this run', { ids: undone });
        return { listing, deletedAgain, stillUndone: undone };
      }
      log.warn('snapshot deletions were undone by a concurrent manifest compaction; deleting again', { ids: undone, round: round + 1 });
      await kopia.runOrFail(check.operation, snapshotDeleteCommand(undone));
      deletedAgain.push(...undone);
    }
  } catch (e) {
    const error = (e as Error).message;
    log.warn('cannot check that snapshot deletions stuck', { error });
    return { listing, deletedAgain, stillUndone: listing ? check.undone(listing) : undefined, error };
  }
}
