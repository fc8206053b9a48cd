// The restore operation's decisions and kopia's restore output, apart from any I/O. Pure.
import { isSnapshotID } from './kopia-command.js';
import type { KopiaSnapshot } from './kopia-json.js';
import type { RestoreRequest } from './mover-contract.js';

/** More workers than this only queue up on the same volume and repository. */
export const MAX_RESTORE_PARALLEL = 256;

/** The request's problem, or undefined when it can be run. */
export function restoreRequestProblem(req: RestoreRequest): string | undefined {
  if (typeof req.snapshotID !== 'string' || !isSnapshotID(req.snapshotID)) return `not a snapshot id: ${JSON.stringify(req.snapshotID)}`;
  const o = req.options;
  if (typeof o !== 'object' || o === null) return 'options are missing';
  for (const key of ['deleteExtra', 'ignorePermissionErrors', 'restoreOwners'] as const)
    if (typeof o[key] !== 'boolean') return `options.${key} must be true or false`;
  if (!Number.isInteger(o.parallel) || o.parallel < 1 || o.parallel > MAX_RESTORE_PARALLEL)
    return `options.parallel must be an integer from 1 to ${MAX_RESTORE_PARALLEL}: ${JSON.stringify(o.parallel)}`;
  return undefined;
}

/**
 * The snapshot to restore: the pinned id, or — when a pin change saved it again under a
 * new id — the complete snapshot with the same start time and root object (the same
 * snapshot: kopia's manifest is rewritten, its content is not).
 */
export function findPinnedSnapshot(list: KopiaSnapshot[], req: Pick<RestoreRequest, 'snapshotID' | 'sameAs'>): KopiaSnapshot | undefined {
  const exact = list.find((s) => s.id === req.snapshotID);
  if (exact || !req.sameAs) return exact;
  const { startTime, rootID } = req.sameAs;
  const at = Date.parse(startTime);
  return list.find((s) => !s.incomplete && s.rootEntry?.obj === rootID && Date.parse(s.startTime) === at);
}

/** What kopia prints after a restore that ran through (cli/command_restore.go printRestoreStats). */
export interface RestoreSummary {
  files: number;
  dirs: number;
  symlinks: number;
  deleted: number;
  ignoredErrors: number;
}

/**
 * kopia 0.23 has no JSON output for restores, only this log line on stderr:
 * "Restored 7 files, 4 directories and 3 symbolic links (8.7 MB), deleted files 1, ignored 2 errors."
 * Its counts are exact (the size is rounded, so bytes come from the snapshot). undefined when absent.
 */
export function parseRestoreSummary(stderr: string): RestoreSummary | undefined {
  const line = stderr
    .split('\n')
    .reverse()
    .find((l) => /Restored \d+ files, \d+ directories and \d+ symbolic links/.test(l));
  if (!line) return undefined;
  const [, files, dirs, symlinks] = /Restored (\d+) files, (\d+) directories and (\d+) symbolic links/.exec(line)!;
  const count = (re: RegExp) => Number(re.exec(line)?.[1] ?? 0);
  return {
    files: Number(files),
    dirs: Number(dirs),
    symlinks: Number(symlinks),
    deleted: count(/deleted directories (\d+)/) + count(/deleted files (\d+)/) + count(/deleted symbolic links (\d+)/),
    ignoredErrors: count(/ignored (\d+) errors/),
  };
}

/** Counts for the result: kopia's own where it printed them, else the snapshot's totals. */
export function restoredCounts(
  snapshot: KopiaSnapshot,
  summary: RestoreSummary | undefined,
): { files: number; dirs: number; bytes: number } {
  const summ = snapshot.rootEntry?.summ;
  return { files: summary?.files ?? summ?.files ?? 0, dirs: summary?.dirs ?? summ?.dirs ?? 0, bytes: summ?.size ?? 0 };
}

export const CAP_CHOWN = 0;

/** The effective capability set from /proc/self/status ("CapEff:\t000001ffffffffff"). */
export function effectiveCapabilities(procStatus: string): bigint | undefined {
  const hex = /^CapEff:\s*([0-9a-f]+)\s*$/im.exec(procStatus)?.[1];
  return hex === undefined ? undefined : BigInt(`0x${hex}`);
}

export function hasCapability(caps: bigint | undefined, cap: number): boolean {
  return caps !== undefined && (caps & (1n << BigInt(cap))) !== 0n;
}

/**
 * Owners are given back only when asked for and the mover can: chown needs CAP_CHOWN, and
 * the volume must allow it (NFS with root squash does not). When it cannot, owners are
 * skipped and the result says so; a request that does not tolerate permission errors is
 * refused instead, before anything is written (every chown would be one).
 */
export function ownersDecision(restoreOwners: boolean, canChown: boolean, ignorePermissionErrors: boolean): 'restore' | 'skip' | 'refuse' {
  if (!restoreOwners) return 'skip';
  if (canChown) return 'restore';
  return ignorePermissionErrors ? 'skip' : 'refuse';
}

/**
 * What the mover writes beside the entries it set aside in the volume, so that a run killed
 * before putting them back leaves enough for the next run to do it.
 */
export interface AsideManifest {
  kind: typeof ASIDE_KIND;
  /** entries[i] is where the entry now named `i` in the aside directory came from, relative to the volume. */
  entries: string[];
}

export const ASIDE_KIND = 'kopia-operator/restore-aside/v1';

/** A relative path that stays below the directory it is joined to. */
export function isContainedPath(rel: string): boolean {
  if (rel === '' || rel.startsWith('/') || rel.includes('\0')) return false;
  return rel.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** The manifest when the text is one the mover wrote (with only contained paths), else undefined. */
export function parseAsideManifest(text: string): AsideManifest | undefined {
  try {
    const m = JSON.parse(text) as AsideManifest;
    if (m?.kind !== ASIDE_KIND || !Array.isArray(m.entries)) return undefined;
    return m.entries.every((e) => typeof e === 'string' && isContainedPath(e)) ? m : undefined;
  } catch {
    return undefined;
  }
}
