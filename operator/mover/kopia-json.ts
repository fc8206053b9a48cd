// kopia's JSON output, typed as far as the mover reads it, and trimmed into the contract's
// shapes. Pure. Field names are those kopia 0.23 prints (snapshot/manifest.go, fs/entry.go,
// cli/command_snapshot_list.go, snapshot/policy/*.go), which differ from the contract's:
// source {userName, host}, `incomplete`, `retentionReason`, and tags keyed `tag:<key>`.
import type { CatalogSnapshot } from './mover-contract.js';

export interface KopiaSource {
  host: string;
  userName: string;
  path: string;
}

/** rootEntry.summ: the totals kopia keeps with every directory snapshot. */
export interface KopiaDirSummary {
  size?: number;
  files?: number;
  symlinks?: number;
  dirs?: number;
  incomplete?: string;
  numFailed?: number;
  numIgnoredErrors?: number;
  /** kopia keeps the first 10 failed entries. */
  errors?: { path: string; error: string }[];
}

export interface KopiaSnapshot {
  id: string;
  source: KopiaSource;
  description?: string;
  startTime: string;
  endTime?: string;
  /** Why the snapshot is not complete (checkpoint, canceled, limit reached). */
  incomplete?: string;
  rootEntry?: { obj?: string; summ?: KopiaDirSummary };
  /** User tags carry kopia's `tag:` prefix. */
  tags?: Record<string, string>;
  pins?: string[];
  /** Only in `snapshot list --json`: why the current policy keeps it. */
  retentionReason?: string[];
}

export interface KopiaRetention {
  keepLatest?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepAnnual?: number;
  ignoreIdenticalSnapshots?: boolean;
}

/** A policy as `policy export` / `policy show --json` print it (the parts the mover sets). */
export interface KopiaPolicy {
  retention?: KopiaRetention;
  files?: { ignore?: string[]; oneFileSystem?: boolean; ignoreCacheDirs?: boolean };
  compression?: { compressorName?: string };
  [other: string]: unknown;
}

/** kopia prefixes user tags with this in the manifest (cli/command_snapshot_create.go). */
const USER_TAG_PREFIX = 'tag:';

function isSnapshot(v: unknown): v is KopiaSnapshot {
  const m = v as KopiaSnapshot;
  return (
    typeof m === 'object' &&
    m !== null &&
    typeof m.id === 'string' &&
    typeof m.startTime === 'string' &&
    typeof m.source?.path === 'string' &&
    typeof m.source.userName === 'string' &&
    typeof m.source.host === 'string'
  );
}

/** `snapshot list --json`: a JSON array of manifests. */
export function parseSnapshotList(stdout: string): KopiaSnapshot[] {
  const parsed: unknown = JSON.parse(stdout.trim() || '[]');
  if (!Array.isArray(parsed)) throw new Error('kopia snapshot list did not print a JSON array');
  const bad = parsed.findIndex((m) => !isSnapshot(m));
  if (bad >= 0) throw new Error(`kopia snapshot list printed an entry without id, source or startTime (#${bad})`);
  return parsed as KopiaSnapshot[];
}

/**
 * `snapshot create --json` prints the saved manifest on one line per source, also when it
 * then exits 1 for file errors. Nothing printed (or nothing parsable) means no manifest.
 */
export function parseCreatedSnapshot(stdout: string): KopiaSnapshot | undefined {
  const lines = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'));
  for (const line of lines.reverse()) {
    try {
      const parsed: unknown = JSON.parse(line);
      if (isSnapshot(parsed)) return parsed;
    } catch {
      // a partial line: keep looking
    }
  }
  return undefined;
}

/** `policy export`: policies keyed by target (`user@host:/path`, `(global)`). */
export function parsePolicyExport(stdout: string): Record<string, KopiaPolicy> {
  const parsed: unknown = JSON.parse(stdout.trim() || '{}');
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('kopia policy export did not print a JSON object');
  return parsed as Record<string, KopiaPolicy>;
}

/** `policy show --json`: the effective policy of one target. */
export function parseEffectivePolicy(stdout: string): KopiaPolicy {
  const parsed: unknown = JSON.parse(stdout);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('kopia policy show did not print a JSON object');
  return parsed as KopiaPolicy;
}

export function isSameSource(s: KopiaSnapshot, source: { username: string; hostname: string; path: string }): boolean {
  return s.source.userName === source.username && s.source.host === source.hostname && s.source.path === source.path;
}

/** Tags as the user gave them: kopia's `tag:` prefix removed; anything else kept as is. */
export function userTags(tags: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!tags || Object.keys(tags).length === 0) return undefined;
  return Object.fromEntries(Object.entries(tags).map(([k, v]) => [k.startsWith(USER_TAG_PREFIX) ? k.slice(USER_TAG_PREFIX.length) : k, v]));
}

export function snapshotStats(s: KopiaSnapshot): CatalogSnapshot['stats'] {
  const summ = s.rootEntry?.summ;
  if (!summ) return {};
  return {
    totalBytes: summ.size ?? 0,
    files: summ.files ?? 0,
    dirs: summ.dirs ?? 0,
    errors: summ.numFailed ?? 0,
    ignoredErrors: summ.numIgnoredErrors ?? 0,
  };
}

/** One manifest trimmed to what the catalog mirror needs; empty optional fields left out. */
export function toCatalogSnapshot(s: KopiaSnapshot): CatalogSnapshot {
  const out: CatalogSnapshot = {
    id: s.id,
    source: { username: s.source.userName, hostname: s.source.host, path: s.source.path },
    startTime: s.startTime,
    stats: snapshotStats(s),
  };
  if (s.endTime) out.endTime = s.endTime;
  if (s.incomplete) out.incompleteReason = s.incomplete;
  if (s.rootEntry?.obj) out.rootID = s.rootEntry.obj;
  const tags = userTags(s.tags);
  if (tags) out.tags = tags;
  if (s.retentionReason?.length) out.retentionReasons = s.retentionReason;
  if (s.pins?.length) out.pins = s.pins;
  return out;
}

/** Caps that keep a result inside the 4 KiB termination message. */
export const FILE_ERROR_EXAMPLES = 5;
const FILE_ERROR_EXAMPLE_LENGTH = 200;

/** Files kopia could not read (fatal errors), with a few examples; undefined when none. */
export function fileErrorsOf(s: KopiaSnapshot): { count: number; examples: string[] } | undefined {
  const summ = s.rootEntry?.summ;
  const count = summ?.numFailed ?? 0;
  if (count === 0) return undefined;
  const examples = (summ?.errors ?? [])
    .slice(0, FILE_ERROR_EXAMPLES)
    .map((e) => `${e.path}: ${e.error}`.slice(0, FILE_ERROR_EXAMPLE_LENGTH));
  return { count, examples };
}
