// The maintenance operation's decisions and kopia's maintenance output, apart from any I/O.
// Pure. Shapes are those kopia 0.23.1 prints (cli/command_maintenance_info.go,
// repo/maintenance/maintenance_schedule.go, repo/maintenancestats/*.go).
import { isMaintenanceOwner } from './kopia-command.js';
import type { MaintenanceRequest } from './mover-contract.js';

/**
 * What to do about the maintenance owner found in the repository:
 * - run: it is the identity already;
 * - adopt: nobody owns it, or an owner the operator itself leaves behind (kopia makes the
 *   creator of a repository its owner: the operator's verify identity): claim it and run;
 * - takeover: another owner, and the request asks to take over: claim it and run;
 * - refuse: another owner, no takeover: nothing is run or changed.
 */
export type OwnerDecision = 'run' | 'adopt' | 'takeover' | 'refuse';

export function maintenanceOwnerDecision(owner: string, identity: string, adoptable: string[], takeover: boolean): OwnerDecision {
  if (owner === identity) return 'run';
  if (owner === '' || adoptable.includes(owner)) return 'adopt';
  return takeover ? 'takeover' : 'refuse';
}

/** The owner name kopia uses for a client: user@host. */
export function ownerName(identity: { username: string; hostname: string }): string {
  return `${identity.username}@${identity.hostname}`;
}

/** The request's problem, or undefined when it can be run. */
export function maintenanceRequestProblem(req: MaintenanceRequest): string | undefined {
  if (req.mode !== 'quick' && req.mode !== 'full') return `mode must be quick or full: ${JSON.stringify(req.mode)}`;
  if (typeof req.takeover !== 'boolean') return 'takeover must be true or false';
  const id = req.identity as Partial<MaintenanceRequest['identity']> | undefined;
  if (
    typeof id?.username !== 'string' ||
    typeof id.hostname !== 'string' ||
    !isMaintenanceOwner(ownerName(id as MaintenanceRequest['identity']))
  )
    return `identity must name a user and a host without '@' or spaces: ${JSON.stringify(id)}`;
  if (!Array.isArray(req.adoptableOwners) || req.adoptableOwners.some((o) => typeof o !== 'string'))
    return 'adoptableOwners must be a list of user@host';
  return undefined;
}

/** One task run in kopia's history (RunInfo). */
export interface KopiaMaintenanceRun {
  start: string;
  end: string;
  success?: boolean;
  error?: string;
  /** The task's statistics (maintenancestats.Extra): data is the stats object of that kind. */
  extra?: { kind?: string; data?: unknown }[];
}

/** `maintenance info --json`, as far as the mover reads it. */
export interface KopiaMaintenanceInfo {
  /** user@host; empty when the repository has none. */
  owner: string;
  /** Task type (snapshot-gc, full-delete-blobs, cleanup-logs, ...) to its runs, newest first. */
  runs: Record<string, KopiaMaintenanceRun[]>;
}

export function parseMaintenanceInfo(stdout: string): KopiaMaintenanceInfo {
  const parsed = JSON.parse(stdout) as { owner?: unknown; schedule?: { runs?: unknown } } | null;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('kopia maintenance info did not print a JSON object');
  const owner = parsed.owner ?? '';
  if (typeof owner !== 'string') throw new Error('kopia maintenance info printed an owner that is not a string');
  // A repository never maintained has `"runs": null`.
  const raw = parsed.schedule?.runs ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error('kopia maintenance info printed runs that are not an object');
  const runs: Record<string, KopiaMaintenanceRun[]> = {};
  for (const [task, list] of Object.entries(raw as Record<string, unknown>)) {
    if (!Array.isArray(list)) throw new Error(`kopia maintenance info printed runs of ${task} that are not a list`);
    runs[task] = (list as KopiaMaintenanceRun[]).filter((r) => typeof r?.start === 'string' && typeof r.end === 'string');
  }
  return { owner, runs };
}

/** Go's zero time, printed for a time never set. */
const isSet = (t: string) => !t.startsWith('0001-01-01');

/** ISO 8601 in milliseconds, as every other time the operator reports (kopia prints nanoseconds). */
const iso = (t: string) => new Date(t).toISOString();

/**
 * The end of the newest task run the repository records (any task, quick or full, failed or
 * not); undefined if it records none. kopia does not record who ran a task: the history is
 * the repository's, whoever owned maintenance then.
 */
export function lastRunTime(info: KopiaMaintenanceInfo): string | undefined {
  let newest: number | undefined;
  for (const run of Object.values(info.runs).flat()) {
    if (!isSet(run.end)) continue;
    const t = Date.parse(run.end);
    if (!Number.isNaN(t) && (newest === undefined || t > newest)) newest = t;
  }
  return newest === undefined ? undefined : new Date(newest).toISOString();
}

const runKey = (task: string, r: KopiaMaintenanceRun) => `${task}\n${r.start}\n${r.end}`;

/** The task runs recorded in `after` and not in `before`: those of the run in between. */
export function runsSince(before: KopiaMaintenanceInfo, after: KopiaMaintenanceInfo): { task: string; run: KopiaMaintenanceRun }[] {
  const seen = new Set(Object.entries(before.runs).flatMap(([task, list]) => list.map((r) => runKey(task, r))));
  return Object.entries(after.runs).flatMap(([task, list]) => list.filter((r) => !seen.has(runKey(task, r))).map((run) => ({ task, run })));
}

/** When the run's tasks started and ended, as kopia recorded them; undefined if none were recorded. */
export function runWindow(runs: { run: KopiaMaintenanceRun }[]): { startTime: string; endTime: string } | undefined {
  const starts = runs.map((r) => r.run.start).filter(isSet);
  const ends = runs.map((r) => r.run.end).filter(isSet);
  if (starts.length === 0 || ends.length === 0) return undefined;
  const min = starts.reduce((a, b) => (Date.parse(a) <= Date.parse(b) ? a : b));
  const max = ends.reduce((a, b) => (Date.parse(a) >= Date.parse(b) ? a : b));
  return { startTime: iso(min), endTime: iso(max) };
}

/**
 * The statistics of kopia's tasks that delete blobs, and the field holding the bytes deleted.
 * kopia counts them exactly (the summed lengths of the blobs it deleted), unlike the rounded
 * figures it prints.
 */
const DELETED_BYTES: Record<string, string> = {
  // quick-delete-blobs and full-delete-blobs: unreferenced pack blobs (the data of deleted snapshots, in time).
  deleteUnreferencedPacksStats: 'deletedTotalSize',
  // delete-superseded-epoch-indexes: index blobs replaced by compacted ones.
  cleanupSupersededIndexesStats: 'deletedTotalSize',
  // cleanup-logs: kopia's own log blobs beyond the log retention.
  cleanupLogsStats: 'deletedBlobSize',
};

/**
 * Bytes of blobs the run deleted, summed from the statistics kopia 0.23 records with each
 * task in the maintenance history; undefined when the run had no task that deletes blobs
 * (a quick run of an epoch-format repository only compacts and advances epochs).
 * Not the difference of `blob stats` totals: the run also writes blobs (indexes, logs, its
 * schedule), so a difference would understate what was deleted.
 */
export function reclaimedBytes(runs: { run: KopiaMaintenanceRun }[]): number | undefined {
  let total: number | undefined;
  for (const { run } of runs) {
    for (const extra of run.extra ?? []) {
      const field = extra.kind ? DELETED_BYTES[extra.kind] : undefined;
      if (!field) continue;
      const value = (extra.data as Record<string, unknown> | null | undefined)?.[field];
      total = (total ?? 0) + (typeof value === 'number' && Number.isFinite(value) ? value : 0);
    }
  }
  return total;
}

/** `index list --json`: one entry per active index blob. */
export function parseIndexList(stdout: string): number {
  const parsed: unknown = JSON.parse(stdout.trim() || '[]');
  if (!Array.isArray(parsed)) throw new Error('kopia index list did not print a JSON array');
  return parsed.length;
}

/** kopia's refusal to run maintenance for a client that is not the owner (maintenance.NotOwnedError). */
export function notOwnedBy(output: string): string | undefined {
  return /maintenance must be run by designated user: (\S*)/.exec(output)?.[1];
}

export function ownedByOtherMessage(owner: string, lastRun: string | undefined): string {
  return (
    `maintenance is owned by ${owner} (${lastRun ? `last run ${lastRun}` : 'no run recorded'}); ` +
    'takeover was not requested (takeoverPolicy Never): nothing was run or changed'
  );
}
