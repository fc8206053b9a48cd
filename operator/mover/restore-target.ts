// The data volume made safe for kopia's restore. kopia 0.23 follows symlinks it meets in
// the target (os.Stat and os.OpenFile in snapshot/restore/local_fs_output.go): a file
// restored where the volume holds a symlink is written through it, and a directory restored
// where the volume holds a symlink to a directory is filled, chmod-ed and chown-ed through
// it; --delete-extra removes only symlinks the snapshot does not name. What a volume holds
// is its app's choice, so a root mover could be led to overwrite anything it can reach
// (the repository, the secrets). Before kopia runs, every symlink and special file in the
// volume is renamed into an aside directory on the same volume (nothing followed or
// copied), so kopia meets only real files and directories. Afterwards each goes back where
// the snapshot put nothing (an extra kept), or is dropped where the snapshot's entry now
// stands (overwritten) — or all are dropped with deleteExtra, as kopia drops extras.
// A manifest in the aside directory lets the next run put back what a killed run could not.
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  fchownSync,
  lstatSync,
  lutimesSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  type Dirent,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { ASIDE_KIND, isContainedPath, parseAsideManifest, type AsideManifest } from './restore-plan.js';

/** Names the mover gives its own entries in the volume. */
export const ASIDE_PREFIX = '.kopia-restore-aside.';
const PROBE_PREFIX = '.kopia-restore-probe.';
const MANIFEST = 'manifest.json';

export interface Aside {
  dir: string;
  entries: string[];
}

export interface PutBackResult {
  /** Back where they were. */
  returned: number;
  /** Dropped: the snapshot's entry stands at their path now. */
  replaced: number;
  /** Left in the aside directory, with why. */
  failed: string[];
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;
const exists = (path: string) => lstatSync(path, { throwIfNoEntry: false }) !== undefined;

function searchable(dir: string): boolean {
  try {
    accessSync(dir, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Every symlink and special file below root (relative paths), no link followed. */
export function linksAndSpecials(root: string): string[] {
  const found: string[] = [];
  const dirs = [''];
  while (dirs.length > 0) {
    const rel = dirs.pop()!;
    const abs = rel ? join(root, rel) : root;
    let entries: Dirent[];
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch (e) {
      // Below a directory the mover cannot enter, kopia (the same process user) writes nothing.
      if ((errno(e) === 'EACCES' || errno(e) === 'EPERM') && !searchable(abs)) continue;
      throw new Error(`cannot list ${abs} to look for symlinks kopia would follow: ${(e as Error).message}`);
    }
    for (const d of entries) {
      const child = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) dirs.push(child);
      else if (!d.isFile()) found.push(child);
    }
  }
  return found;
}

/**
 * Runs a change of dir's entries keeping dir's times (the snapshot's, or an extra
 * directory's own); a directory the mover owns but may not write (0555) is opened for the
 * change and closed again, as kopia leaves read-only directories it restored.
 */
function changeIn(dir: string, change: () => void): void {
  const before = lstatSync(dir);
  if (!before.isDirectory()) throw new Error(`${dir} is not a directory`);
  try {
    change();
  } catch (e) {
    if (errno(e) !== 'EACCES' || before.uid !== process.getuid?.()) throw e;
    chmodSync(dir, (before.mode & 0o7777) | 0o300);
    try {
      change();
    } finally {
      chmodSync(dir, before.mode & 0o7777);
    }
  }
  try {
    lutimesSync(dir, before.atimeMs / 1000, before.mtimeMs / 1000);
  } catch {
    // only the owner (or CAP_FOWNER) may set times: best effort
  }
}

/** Whether every directory from root down to rel's parent is a real directory (no symlink). */
function realDirectoriesTo(root: string, rel: string): boolean {
  const parts = rel.split('/').slice(0, -1);
  let path = root;
  for (const part of ['', ...parts]) {
    path = part ? join(path, part) : path;
    if (!lstatSync(path, { throwIfNoEntry: false })?.isDirectory()) return false;
  }
  return true;
}

/**
 * Moves every symlink and special file out of kopia's way; undefined when there is none.
 * Fails (with everything moved put back) when one cannot be moved: kopia could follow it.
 */
export function setAside(root: string): Aside | undefined {
  const entries = linksAndSpecials(root);
  if (entries.length === 0) return undefined;
  let dir = '';
  changeIn(root, () => (dir = mkdtempSync(join(root, ASIDE_PREFIX))));
  const manifest: AsideManifest = { kind: ASIDE_KIND, entries };
  writeFileSync(join(dir, MANIFEST), JSON.stringify(manifest), { flag: 'wx', mode: 0o600 });
  const aside = { dir, entries };
  let moving = '';
  try {
    entries.forEach((rel, i) => {
      moving = rel;
      const from = join(root, rel);
      changeIn(dirname(from), () => renameSync(from, join(dir, String(i))));
    });
  } catch (e) {
    const back = putBack(root, aside);
    const stuck = back.failed.length > 0 ? `; still in ${dir}: ${back.failed.join(', ')}` : '';
    throw new Error(`cannot move ${moving} out of the restore's way (kopia would follow it): ${(e as Error).message}${stuck}`);
  }
  return aside;
}

/** Puts set-aside entries back where nothing was restored, drops those whose path is taken. */
export function putBack(root: string, aside: Aside): PutBackResult {
  const result: PutBackResult = { returned: 0, replaced: 0, failed: [] };
  aside.entries.forEach((rel, i) => {
    const from = join(aside.dir, String(i));
    if (!exists(from)) return; // never moved, or already back
    try {
      if (!isContainedPath(rel) || !realDirectoriesTo(root, rel)) throw new Error('its directory is gone or not a directory now');
      const to = join(root, rel);
      if (exists(to)) {
        unlinkSync(from);
        result.replaced++;
        return;
      }
      changeIn(dirname(to), () => renameSync(from, to));
      result.returned++;
    } catch (e) {
      result.failed.push(`${rel}: ${(e as Error).message}`.slice(0, 300));
    }
  });
  if (result.failed.length === 0) discard(root, aside);
  return result;
}

/** Drops the aside directory and all in it (deleteExtra: the extras go, as kopia's own would). */
export function discard(root: string, aside: Aside): void {
  if (!exists(aside.dir)) return; // kopia's --delete-extra removed it as an extra
  changeIn(root, () => rmSync(aside.dir, { recursive: true, force: true }));
}

/** Puts back what a run killed mid-restore left aside; directories without the mover's manifest are the app's. */
export function recoverLeftovers(root: string): PutBackResult & { dirs: string[] } {
  const total = { returned: 0, replaced: 0, failed: [] as string[], dirs: [] as string[] };
  for (const d of readdirSync(root, { withFileTypes: true })) {
    if (!d.isDirectory() || !d.name.startsWith(ASIDE_PREFIX)) continue;
    const dir = join(root, d.name);
    const file = join(dir, MANIFEST);
    const manifest = lstatSync(file, { throwIfNoEntry: false })?.isFile() ? parseAsideManifest(readFileSync(file, 'utf8')) : undefined;
    if (!manifest) continue;
    const r = putBack(root, { dir, entries: manifest.entries });
    total.dirs.push(d.name);
    total.returned += r.returned;
    total.replaced += r.replaced;
    total.failed.push(...r.failed);
  }
  return total;
}

/**
 * Whether the mover can give a file in the volume to another user: CAP_CHOWN alone is not
 * enough where the filesystem refuses (NFS with root squash). Tried on a file of its own.
 */
export function chownWorksIn(root: string): boolean {
  const path = join(root, `${PROBE_PREFIX}${randomBytes(6).toString('hex')}`);
  const uid = process.getuid?.() ?? 0;
  const other = uid === 65534 ? 65533 : 65534;
  let works = false;
  changeIn(root, () => {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch {
      return;
    }
    try {
      fchownSync(fd, other, other);
      works = true;
    } catch {
      // EPERM: not allowed here
    } finally {
      closeSync(fd);
      unlinkSync(path);
    }
  });
  return works;
}
