// Which snapshot a Restore means. Pure: given kopia's listing of the repository (taken
// after the Restore was created, so it is kopia's answer now, not a stale mirror) and the
// identity and choice the source names, the snapshot to pin — or "none exists", which is
// the only thing onMissingSnapshot: Continue may turn into an empty volume.
import type { Identity } from '../../generated/types.js';
import type { CatalogSnapshot } from '../mover/mover-contract.js';

/** The listing a Restore resolves against: trimmed to what choosing needs. */
export type ListedSnapshot = Pick<CatalogSnapshot, 'id' | 'source' | 'startTime' | 'endTime' | 'incompleteReason'>;

export interface SnapshotChoice {
  id?: string;
  /** The newest snapshot taken at or before this time. */
  asOf?: string;
  /** 0 is the newest snapshot, 1 the one before it, ... */
  offset?: number;
}

const sameIdentity = (s: ListedSnapshot, id: Required<Identity>) =>
  s.source.username === id.username && s.source.hostname === id.hostname && s.source.path === id.path;

/** The complete snapshots of an identity, newest first. */
export function snapshotsOf(listing: ListedSnapshot[], identity: Required<Identity>): ListedSnapshot[] {
  return listing
    .filter((s) => !s.incompleteReason && sameIdentity(s, identity))
    .sort((a, b) => Date.parse(b.startTime) - Date.parse(a.startTime) || b.id.localeCompare(a.id));
}

export function chooseSnapshot(
  listing: ListedSnapshot[],
  identity: Required<Identity>,
  choice: SnapshotChoice,
): ListedSnapshot | undefined {
  const candidates = snapshotsOf(listing, identity);
  if (choice.id) return candidates.find((s) => s.id === choice.id);
  if (choice.asOf) {
    const limit = Date.parse(choice.asOf);
    return candidates.find((s) => Date.parse(s.startTime) <= limit);
  }
  return candidates[choice.offset ?? 0];
}

export function describeChoice(identity: Required<Identity>, choice: SnapshotChoice): string {
  const who = `${identity.username}@${identity.hostname}:${identity.path}`;
  if (choice.id) return `snapshot ${choice.id} of ${who}`;
  if (choice.asOf) return `the newest snapshot of ${who} taken at or before ${choice.asOf}`;
  return choice.offset ? `snapshot ${choice.offset} before the newest of ${who}` : `the newest snapshot of ${who}`;
}
