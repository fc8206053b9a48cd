// The edit operation: deletions and pin changes for one repository in one mover run, each
// kind of change one kopia call however many snapshots it touches.
import type { Logger } from '../runtime/logger.js';
import { isSnapshotID, OPERATOR_PIN, snapshotDeleteCommand, snapshotListAllCommand, snapshotPinCommand } from './kopia-command.js';
import { parseSnapshotList, type KopiaSnapshot } from './kopia-json.js';
import { confirmDeletions, DELETION_CHECK_ROUNDS, stillListed } from './deletion-check.js';
import { connect, invalidRequest, KopiaFailure, type KopiaSession } from './kopia-session.js';
import { EDIT_PIN_LIMIT, type EditRequest, type MoverSuccess } from './mover-contract.js';

const unique = (ids: string[] | undefined) => [...new Set(ids ?? [])];

/** What stays the same when kopia rewrites a manifest to change its pins. */
const snapshotKey = (s: KopiaSnapshot) =>
  JSON.stringify([s.source.userName, s.source.host, s.source.path, s.startTime, s.endTime, s.rootEntry?.obj]);

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

  // A deletion another client's manifest compaction undid is made again (deletion-check.ts).
  const deletedAgain =
    toDelete.length > 0
      ? await confirmDeletions(kopia, log, {
          operation: 'edit',
          list: async () => parseSnapshotList(await kopia.runOrFail('edit', snapshotListAllCommand())),
          undone: (listing) => stillListed(toDelete, listing),
        })
      : undefined;
  if (deletedAgain?.stillUndone.length)
    throw new KopiaFailure({
      ok: false,
      operation: 'edit',
      errorClass: 'Other',
      message: `${deletedAgain.stillUndone.length} deleted snapshot(s) came back after ${DELETION_CHECK_ROUNDS + 1} deletions (concurrent manifest compactions); the next edit tries again`,
    });

  let newIDs: Record<string, string> | undefined;
  if (toPin.length + toUnpin.length > 0) {
    const after = new Map(parseSnapshotList(await kopia.runOrFail('edit', snapshotListAllCommand())).map((s) => [snapshotKey(s), s.id]));
    newIDs = {};
    for (const id of [...toPin, ...toUnpin]) {
      const now = after.get(snapshotKey(before.get(id)!));
      if (now) newIDs[id] = now;
      else log.warn('cannot find the snapshot after changing its pin', { id });
    }
  }
  return {
    ok: true,
    operation: 'edit',
    edited: {
      deleted: toDelete.length,
      alreadyGone: wantDeleted.length - toDelete.length,
      pinned: toPin.length,
      unpinned: toUnpin.length,
      ...(newIDs ? { newIDs } : {}),
    },
  };
}
