// The edit operation: deletions and pin changes for one repository in one mover run, each
// kind of change one kopia call however many snapshots it touches.
import type { Logger } from '../runtime/logger.js';
import { isSnapshotID, OPERATOR_PIN, snapshotDeleteCommand, snapshotListAllCommand, snapshotPinCommand } from './kopia-command.js';
import { parseSnapshotList, type KopiaSnapshot } from './kopia-json.js';
import { confirmDeletions, stillListed } from './deletion-check.js';
import { connect, invalidRequest, type KopiaSession } from './kopia-session.js';
import { EDIT_PIN_LIMIT, type EditRequest, type MoverSuccess } from './mover-contract.js';

const unique = (ids: string[] | undefined) => [...new Set(ids ?? [])];

/** What stays the same when kopia rewrites a manifest to change its pins. */
const snapshotKey = (s: KopiaSnapshot) =>
  JSON.stringify([s.source.userName, s.source.host, s.source.path, s.startTime, s.endTime, s.rootEntry?.obj]);

/**
 * The old manifests of pin changes that a listing still holds beside their replacement (same
 * snapshot, new id): only those are deleted again, never a manifest kopia kept under its id.
 */
function replacedStillListed(replaced: string[], before: Map<string, KopiaSnapshot>, listing: KopiaSnapshot[]): string[] {
  const ids = new Set(listing.map((s) => s.id));
  const replacements = new Set(listing.filter((s) => !replaced.includes(s.id)).map(snapshotKey));
  return replaced.filter((id) => ids.has(id) && replacements.has(snapshotKey(before.get(id)!)));
}

export async function edit(kopia: KopiaSession, log: Logger, req: EditRequest): Promise<MoverSuccess> {
  const wantDeleted = unique(req.delete);
  const wantPinned = unique(req.pin);
  const wantUnpinned = unique(req.unpin);
  const bad = [...wantDeleted, ...wantPinned, ...wantUnpinned].find((id) => typeof id !== 'string' || !isSnapshotID(id));
  if (bad !== undefined) throw invalidRequest('edit', `not a snapshot id: ${JSON.stringify(bad)}`);
  if (wantPinned.length + wantUnpinned.length > EDIT_PIN_LIMIT)
    throw invalidRequest('edit', `${wantPinned.length + wantUnpinned.length} pin changes in one edit; at most ${EDIT_PIN_LIMIT}`);
  const both = wantPinned.find((id) => wantUnpinned.includes(id));
  if (both) throw invalidRequest('edit', `snapshot ${both} is both to pin and to unpin`);

  await connect(kopia, log, req);
  const before = new Map(parseSnapshotList(await kopia.runOrFail('edit', snapshotListAllCommand())).map((s) => [s.id, s]));

  // kopia's delete stops at the first id it cannot find and then saves nothing: only ids
  // that exist go in, all in one call.
  const toDelete = wantDeleted.filter((id) => before.has(id));
  if (toDelete.length > 0) await kopia.runOrFail('edit', snapshotDeleteCommand(toDelete));
  const remaining = (id: string) => before.has(id) && !toDelete.includes(id);
  const pinned = (id: string) => before.get(id)!.pins?.includes(OPERATOR_PIN) ?? false;
  const toPin = wantPinned.filter((id) => remaining(id) && !pinned(id));
  const toUnpin = wantUnpinned.filter((id) => remaining(id) && pinned(id));
  if (toPin.length > 0) await kopia.runOrFail('edit', snapshotPinCommand(toPin, 'add'));
  if (toUnpin.length > 0) await kopia.runOrFail('edit', snapshotPinCommand(toUnpin, 'remove'));

  // A deletion another client's manifest compaction undid is made again (deletion-check.ts),
  // and so is the old manifest a pin change replaces (kopia deletes it the same way).
  const replaced = [...toPin, ...toUnpin];
  const checked =
    toDelete.length + replaced.length > 0
      ? await confirmDeletions(kopia, log, {
          operation: 'edit',
          list: async () => parseSnapshotList(await kopia.runOrFail('edit', snapshotListAllCommand())),
          undone: (listing) => [...stillListed(toDelete, listing), ...replacedStillListed(replaced, before, listing)],
        })
      : undefined;
  // Unknown (no listing could be taken): every deletion counts as not confirmed; the next edit finds them gone or deletes again.
  const unconfirmed = checked ? (checked.stillUndone ?? toDelete).filter((id) => toDelete.includes(id)) : [];

  let newIDs: Record<string, string> | undefined;
  if (replaced.length > 0) {
    const listing = checked?.listing ?? parseSnapshotList(await kopia.runOrFail('edit', snapshotListAllCommand()));
    // A replaced manifest still listed beside its replacement is not the new one.
    const after = new Map(listing.filter((s) => !replaced.includes(s.id)).map((s) => [snapshotKey(s), s.id]));
    const listed = new Set(listing.map((s) => s.id));
    newIDs = {};
    for (const id of replaced) {
      const now = after.get(snapshotKey(before.get(id)!)) ?? (listed.has(id) ? id : undefined);
      if (now) newIDs[id] = now;
      else log.warn('cannot find the snapshot after changing its pin', { id });
    }
  }
  return {
    ok: true,
    operation: 'edit',
    edited: {
      deleted: toDelete.length,
      ...(unconfirmed.length ? { stillPresent: unconfirmed } : {}),
      alreadyGone: wantDeleted.length - toDelete.length,
      pinned: toPin.length,
      unpinned: toUnpin.length,
      ...(newIDs ? { newIDs } : {}),
    },
  };
}
