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
 * Of the snapshots there before retention ran (`beforeIDs`), those the listing still holds
 * although kopia's policy gives them no reason to stay: retention's deletions undone. At
 * most `budget` (what the deletion breaker still allows), oldest first, as retention would.
 */
export function undoneExpiries(beforeIDs: readonly string[], listing: readonly KopiaSnapshot[], budget: number): string[] {
  const before = new Set(beforeIDs);
  return listing
    .filter((s) => before.has(s.id) && !s.retentionReason?.length && !s.pins?.length)
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

/**
 * Looks again after the mover's deletions and deletes again what came back, until a listing
 * taken `settleMs` after the last deletion shows none undone. Returns that listing and what
 * is still undone after the last round (logged as an error; the caller reports the count
 * from the listing, so nothing is claimed deleted that is not).
 */
export async function confirmDeletions(
  kopia: KopiaSession,
  log: Logger,
  check: DeletionCheck,
): Promise<{ listing: KopiaSnapshot[]; deletedAgain: number; stillUndone: string[] }> {
  const sleep = check.sleep ?? realSleep;
  const settleMs = check.settleMs ?? DELETION_SETTLE_MS;
  const rounds = check.rounds ?? DELETION_CHECK_ROUNDS;
  // The next listings must see other clients' writes (kopia caches index listings for 30 s).
  await kopia.runOrFail(check.operation, listCacheOffCommand());
  let deletedAgain = 0;
  for (let round = 0; ; round++) {
    await sleep(settleMs);
    const listing = await check.list();
    const undone = check.undone(listing);
    if (undone.length === 0) return { listing, deletedAgain, stillUndone: [] };
    if (round === rounds) {
      log.error('snapshot deletions keep being undone by concurrent manifest compactions; giving up for this run', { ids: undone });
      return { listing, deletedAgain, stillUndone: undone };
    }
    log.warn('snapshot deletions were undone by a concurrent manifest compaction; deleting again', { ids: undone, round: round + 1 });
    await kopia.runOrFail(check.operation, snapshotDeleteCommand(undone));
    deletedAgain += undone.length;
  }
}
