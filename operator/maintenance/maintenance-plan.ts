// Decisions for a Maintenance. Pure: the operator passes in the object, what it observed
// (its Job, the other Maintenances of the repository, whether the repository can be used)
// and `now`, and gets back what to do and what the status becomes.
//   - one Maintenance acts per repository (kopia has no maintenance lock): the others get
//     Conflict and do nothing;
//   - one Job at a time per Maintenance, so quick and full never overlap;
//   - the first run is a quick one at once (it sets the owner), then the cron times plus a
//     fixed jitter; a due full run also handles a due quick one; missed times collapse
//     into one run;
//   - Stale once the second full cron time (plus jitter) after the last successful full run
//     (or the object's creation, before any) has passed — not when that run is
//     older than twice the full interval.
import { CronTimes as Cron } from '../runtime/cron-times.js'; // one DST rule for every cron shape
import type { MaintenanceRun, MaintenanceSpec, MaintenanceStatus, MaintenanceWindow } from '../../generated/types.js';
import type { MoverResult } from '../mover/mover-contract.js';
import { isTimeZone, iso, jitterMs } from '../backupschedule/schedule-plan.js';
import { ConditionType, Reason } from '../reasons.js';
import { setCondition, type ConditionInput } from '../runtime/conditions.js';
import { setReady } from '../runtime/kstatus.js';

export type MaintenanceMode = 'quick' | 'full';

/** One-shot manual run: a new value starts one (full, or quick when the value starts with "quick"). */
export const RUN_MAINTENANCE_ANNOTATION = 'kopia.io/run-maintenance';
/** On Maintenances the operator made for a repository, which a user-written one replaces. */
export const DEFAULT_MAINTENANCE_LABEL = 'kopia.io/default-maintenance';
/** On a maintenance Job: the cron times it handles and whether it was asked for (JSON of JobPurpose). */
export const JOB_PURPOSE_ANNOTATION = 'kopia.io/maintenance-purpose';

export const DEFAULT_QUICK: MaintenanceWindow = { cron: '0 */6 * * *', jitter: '30m' };
export const DEFAULT_FULL: MaintenanceWindow = { cron: '0 3 * * *', jitter: '1h' };
export const DEFAULT_INDEX_BLOB_WARNING_THRESHOLD = 1000;

/** Why a Job runs: the cron times it handles, or a manual request. */
export interface JobPurpose {
  mode: MaintenanceMode;
  quickSlot?: string;
  fullSlot?: string;
  manual?: string;
}

export interface Window {
  cron: Cron;
  jitterMs: number;
}

export type ParsedWindows = { ok: true; quick: Window; full: Window } | { ok: false; reason: string; message: string };

function parseWindow(
  mode: MaintenanceMode,
  window: MaintenanceWindow,
  timeZone: string,
  namespace: string,
  name: string,
): Window | { reason: string; message: string } {
  let cron: Cron;
  try {
    cron = new Cron(window.cron, timeZone);
  } catch (e) {
    return { reason: Reason.InvalidSchedule, message: `${mode}.cron ${JSON.stringify(window.cron)}: ${(e as Error).message}` };
  }
  if (cron.nextRuns(2, new Date(0)).length < 2)
    return { reason: Reason.InvalidSchedule, message: `${mode}.cron ${JSON.stringify(window.cron)} matches no dates` };
  try {
    return { cron, jitterMs: jitterMs(namespace, `${name}/${mode}`, window.jitter) };
  } catch (e) {
    return { reason: Reason.InvalidSpec, message: `${mode}.jitter: ${(e as Error).message}` };
  }
}

export function parseWindows(spec: MaintenanceSpec, namespace: string, name: string): ParsedWindows {
  const timeZone = spec.timeZone ?? 'UTC';
  if (!isTimeZone(timeZone))
    return { ok: false, reason: Reason.InvalidTimeZone, message: `unknown IANA time zone ${JSON.stringify(timeZone)}` };
  const quick = parseWindow('quick', spec.quick ?? DEFAULT_QUICK, timeZone, namespace, name);
  if (!('cron' in quick)) return { ok: false, ...quick };
  const full = parseWindow('full', spec.full ?? DEFAULT_FULL, timeZone, namespace, name);
  if (!('cron' in full)) return { ok: false, ...full };
  return { ok: true, quick, full };
}

/**
 * The latest cron time after `anchor` whose run time (cron time + jitter) has come, and the
 * next run time. Looked up from now, not walked from the anchor: missed times collapse into
 * the latest, whatever the downtime, in two cron evaluations.
 */
export function dueSlot(window: Window, anchor: Date, now: Date): { slot?: Date; nextRunAt: Date } {
  const lastRunTime = now.getTime() - window.jitterMs;
  const [latest] = window.cron.previousRuns(1, new Date(lastRunTime + 1));
  const slot = latest && latest > anchor ? latest : undefined;
  const next = window.cron.nextRun(new Date(lastRunTime));
  // nextRun is null only for patterns with a last date (none in 5-part cron): treat as far away.
  const nextRunAt = next ? new Date(next.getTime() + window.jitterMs) : new Date(now.getTime() + 365 * 24 * 3600_000);
  return { slot, nextRunAt };
}

export function manualMode(request: string): MaintenanceMode {
  return request.toLowerCase().startsWith('quick') ? 'quick' : 'full';
}

/** The user@host that runs maintenance, and the same split for kopia's --override-username/hostname. */
export function ownerIdentity(owner: string): { username: string; hostname: string } {
  const at = owner.indexOf('@');
  return { username: owner.slice(0, at), hostname: owner.slice(at + 1) };
}

export function defaultOwner(clusterName: string): string {
  return `maintenance@${clusterName}`;
}

/** What the plan needs to know about the Maintenance's Job. */
export interface ObservedJob {
  uid: string;
  finished: boolean;
  /** Its result is already in status (collectedJobUID). */
  collected: boolean;
  purpose?: JobPurpose;
}

export interface MaintenanceInput {
  spec: MaintenanceSpec;
  status: MaintenanceStatus;
  namespace: string;
  name: string;
  generation: number;
  creationTime: Date;
  now: Date;
  /** The owner this Maintenance runs as (spec.owner or the default). */
  owner: string;
  /** Another Maintenance acts for the same repository: its namespace/name. */
  conflictWith?: string;
  /** Why no Job can be started (repository not usable, mover not allowed, Secret missing). */
  blocked?: { reason: string; message: string };
  /** The kopia.io/run-maintenance annotation. */
  manualRequest?: string;
  job?: ObservedJob;
}

export type MaintenanceAction =
  | { action: 'idle' }
  | { action: 'wait' }
  | { action: 'start'; purpose: JobPurpose }
  | { action: 'collect' }
  | { action: 'remove' };

export interface MaintenancePlan {
  step: MaintenanceAction;
  status: MaintenanceStatus;
  requeueAfterMs?: number;
}

const time = (t: string | undefined) => (t ? Date.parse(t) : NaN);

/** The newest of the two run records. */
export function lastRun(status: MaintenanceStatus): (MaintenanceRun & { mode: MaintenanceMode }) | undefined {
  const runs = [
    status.lastQuick && { ...status.lastQuick, mode: 'quick' as const },
    status.lastFull && { ...status.lastFull, mode: 'full' as const },
  ].filter((r) => !!r);
  return runs.sort((a, b) => (time(b.endTime) || 0) - (time(a.endTime) || 0))[0];
}

export function planMaintenance(input: MaintenanceInput): MaintenancePlan {
  const { spec, now, job } = input;
  let status: MaintenanceStatus = { ...input.status, observedGeneration: input.generation };
  const windows = parseWindows(spec, input.namespace, input.name);
  const threshold = spec.indexBlobWarningThreshold ?? DEFAULT_INDEX_BLOB_WARNING_THRESHOLD;
  if (status.indexBlobs) status.indexBlobs = { ...status.indexBlobs, warningThreshold: threshold };

  // A Job already started is seen through, even by a Maintenance that now conflicts.
  if (job && !job.finished) return { step: { action: 'wait' }, status: withConditions(status, input, windows, { running: job.purpose }) };
  if (job && !job.collected) return { step: { action: 'collect' }, status };
  if (job) return { step: { action: 'remove' }, status: withConditions(status, input, windows) };

  if (input.conflictWith || input.blocked || !windows.ok) {
    status = { ...status, nextQuickTime: undefined, nextFullTime: undefined };
    return { step: { action: 'idle' }, status: withConditions(status, input, windows) };
  }

  const manual = input.manualRequest && input.manualRequest !== status.manualRunHandled ? input.manualRequest : undefined;
  if (manual) return start(status, input, windows, { mode: manualMode(manual), manual });

  if (spec.suspend) {
    status = { ...status, nextQuickTime: undefined, nextFullTime: undefined };
    // No runs to wait for; only Stale can change with the clock.
    const staleAt = staleSince(status, input, windows.full);
    return {
      step: { action: 'idle' },
      status: withConditions(status, input, windows),
      ...(Number.isFinite(staleAt) && staleAt > now.getTime() ? { requeueAfterMs: Math.max(1000, staleAt - now.getTime()) } : {}),
    };
  }
  const quick = dueSlot(windows.quick, new Date(time(status.lastQuickScheduleTime) || input.creationTime.getTime()), now);
  const full = dueSlot(windows.full, new Date(time(status.lastFullScheduleTime) || input.creationTime.getTime()), now);
  status = { ...status, nextQuickTime: iso(quick.nextRunAt), nextFullTime: iso(full.nextRunAt) };

  // The first run, at once, sets the owner (or finds another one).
  const neverRan = !status.lastQuick && !status.lastFull;
  if (full.slot)
    return start(status, input, windows, {
      mode: 'full',
      fullSlot: iso(full.slot),
      ...(quick.slot ? { quickSlot: iso(quick.slot) } : {}),
    });
  if (quick.slot) return start(status, input, windows, { mode: 'quick', quickSlot: iso(quick.slot) });
  if (neverRan) return start(status, input, windows, { mode: 'quick' });

  const staleAt = staleSince(status, input, windows.full);
  const wakes = [quick.nextRunAt.getTime(), full.nextRunAt.getTime(), ...(staleAt > now.getTime() ? [staleAt] : [])];
  return {
    step: { action: 'idle' },
    status: withConditions(status, input, windows),
    requeueAfterMs: Math.max(1000, Math.min(...wakes) - now.getTime()),
  };
}

/** The conditions for a status as it stands, with no Job running (after a result is collected). */
export function refreshConditions(input: MaintenanceInput): MaintenanceStatus['conditions'] {
  return withConditions(input.status, input, parseWindows(input.spec, input.namespace, input.name)).conditions;
}

function start(status: MaintenanceStatus, input: MaintenanceInput, windows: ParsedWindows, purpose: JobPurpose): MaintenancePlan {
  return { step: { action: 'start', purpose }, status: withConditions(status, input, windows, { running: purpose }) };
}

/**
 * When a maintenance at `since` stops being recent: the second full cron time after it, plus
 * jitter — the run after it did not succeed either. Counted in cron times, not as an age:
 * a cron's gaps vary (DST, weekdays, months), so no one interval fits a whole year.
 */
function staleAfter(full: Window, since: Date): { slot: Date; at: number } | undefined {
  const first = full.cron.nextRun(since);
  const slot = first && full.cron.nextRun(first);
  return slot ? { slot, at: slot.getTime() + full.jitterMs } : undefined;
}

/**
 * When the last successful full run (or the creation, before any) becomes stale; while the
 * full run for that second time is running, not yet: it is given its turn.
 */
function staleSince(status: MaintenanceStatus, input: MaintenanceInput, full: Window, running?: JobPurpose): number {
  const stale = staleAfter(full, new Date(time(status.lastSuccessfulFullTime) || input.creationTime.getTime()));
  if (!stale) return Infinity;
  return running?.mode === 'full' && running.fullSlot === iso(stale.slot) ? Infinity : stale.at;
}

/** Ready, Stale and TooManyIndexBlobs, from what is known now. */
function withConditions(
  status: MaintenanceStatus,
  input: MaintenanceInput,
  windows: ParsedWindows,
  opts: { running?: JobPurpose } = {},
): MaintenanceStatus {
  const set = (conditions: MaintenanceStatus['conditions'], c: ConditionInput) => setCondition(conditions, c, input.generation, input.now);
  let conditions = setReady(status.conditions, readyCondition(status, input, windows, opts.running), input.generation, input.now);

  if (windows.ok && !input.conflictWith) {
    const staleAt = staleSince(status, input, windows.full, opts.running);
    const ref = status.lastSuccessfulFullTime
      ? `the last successful full maintenance ended ${status.lastSuccessfulFullTime}`
      : `no full maintenance has succeeded since this Maintenance was created (${iso(input.creationTime)})`;
    const stale = input.now.getTime() >= staleAt;
    const message = stale
      ? `${ref}: two full maintenance times (plus jitter) have passed since without a success`
      : Number.isFinite(staleAt)
        ? `${ref}; stale after ${iso(new Date(staleAt))}, the second full maintenance time (plus jitter) since`
        : `${ref}; the full run for the second maintenance time since is running`;
    conditions = set(
      conditions,
      stale
        ? { type: ConditionType.Stale, status: 'True', reason: Reason.MaintenanceStale, message }
        : { type: ConditionType.Stale, status: 'False', reason: Reason.MaintenanceCurrent, message },
    );
  } else conditions = conditions?.filter((c) => c.type !== ConditionType.Stale);

  const blobs = status.indexBlobs;
  if (blobs?.count !== undefined) {
    const threshold = blobs.warningThreshold ?? DEFAULT_INDEX_BLOB_WARNING_THRESHOLD;
    conditions = set(
      conditions,
      blobs.count > threshold
        ? {
            type: ConditionType.TooManyIndexBlobs,
            status: 'True',
            reason: Reason.TooManyIndexBlobs,
            message: `${blobs.count} index blobs after the last run, more than ${threshold}: connects and listings slow down; check that full maintenance runs and succeeds`,
          }
        : {
            type: ConditionType.TooManyIndexBlobs,
            status: 'False',
            reason: Reason.IndexBlobsWithinLimit,
            message: `${blobs.count} index blobs after the last run (warning above ${threshold})`,
          },
    );
  }
  return { ...status, conditions };
}

function readyCondition(status: MaintenanceStatus, input: MaintenanceInput, windows: ParsedWindows, running?: JobPurpose): ConditionInput {
  const ready = (reason: string, message: string): ConditionInput => ({ type: ConditionType.Ready, status: 'True', reason, message });
  const notReady = (reason: string, message: string): ConditionInput => ({ type: ConditionType.Ready, status: 'False', reason, message });
  if (running)
    return ready(Reason.MaintenanceRunning, `${running.manual ? 'manual ' : ''}${running.mode} maintenance running as ${input.owner}`);
  if (input.conflictWith)
    return notReady(
      Reason.Conflict,
      `Maintenance ${input.conflictWith} already maintains this repository; kopia has no maintenance lock, so this one does nothing`,
    );
  if (input.blocked) return notReady(input.blocked.reason, input.blocked.message);
  if (!windows.ok) return notReady(windows.reason, windows.message);
  const last = lastRun(status);
  if (status.owner && status.owner !== input.owner && last?.result === 'Failed') {
    const when = status.ownerLastRunTime ? `last ran maintenance ${status.ownerLastRunTime}` : 'has no maintenance run recorded';
    const stale = ownerIsStale(status, windows, input.now) ? ' (stale: two full maintenance times have passed since)' : '';
    return notReady(
      Reason.OwnedByOther,
      `kopia reports maintenance owned by ${status.owner}, which ${when}${stale}; takeoverPolicy ${input.spec.takeoverPolicy ?? 'Never'}: ` +
        (input.spec.takeoverPolicy === 'Force'
          ? `taking over at the next run (annotate ${RUN_MAINTENANCE_ANNOTATION} to run now)`
          : 'nothing is run. Set takeoverPolicy: Force to take over'),
    );
  }
  if (last?.result === 'Failed')
    return notReady(Reason.MaintenanceFailed, `${last.mode} maintenance failed: ${last.error ?? 'unknown error'}`);
  if (input.spec.suspend) return ready(Reason.Suspended, 'spec.suspend is set: no scheduled runs (a manual run still runs)');
  const next = status.nextQuickTime && status.nextFullTime ? `; next quick ${status.nextQuickTime}, next full ${status.nextFullTime}` : '';
  const change = status.owner && status.owner !== input.owner ? ` (owner changes from ${status.owner} at the next run)` : '';
  return ready(Reason.Scheduling, `maintenance runs as ${input.owner}${change}${next}`);
}

/** Another owner whose last recorded run is stale by the same rule (two of our full times since), or who never ran. */
export function ownerIsStale(status: MaintenanceStatus, windows: ParsedWindows, now: Date): boolean {
  if (!windows.ok) return false;
  const last = time(status.ownerLastRunTime);
  if (Number.isNaN(last)) return true;
  const stale = staleAfter(windows.full, new Date(last));
  return !!stale && now.getTime() >= stale.at;
}

/** The status once a Job's result is in: the run record, owner, index blobs, handled times. */
export function statusFromResult(
  status: MaintenanceStatus,
  result: MoverResult,
  job: { uid: string; purpose?: JobPurpose; startTime?: string; endTime?: string },
  now: Date,
): MaintenanceStatus {
  const purpose = job.purpose ?? { mode: 'quick' };
  const next: MaintenanceStatus = { ...status, collectedJobUID: job.uid };
  if (purpose.quickSlot) next.lastQuickScheduleTime = purpose.quickSlot;
  if (purpose.fullSlot) next.lastFullScheduleTime = purpose.fullSlot;
  if (purpose.manual) next.manualRunHandled = purpose.manual;
  const key = purpose.mode === 'full' ? 'lastFull' : 'lastQuick';

  if (result.ok && result.maintenance) {
    const m = result.maintenance;
    next[key] = {
      startTime: m.startTime,
      endTime: m.endTime,
      result: 'Succeeded',
      durationSeconds: Math.max(0, Math.round((Date.parse(m.endTime) - Date.parse(m.startTime)) / 1000)),
      ...(m.reclaimedBytes !== undefined ? { reclaimedBytes: m.reclaimedBytes } : {}),
      ...(purpose.manual ? { manual: true } : {}),
    };
    if (purpose.mode === 'full') next.lastSuccessfulFullTime = m.endTime;
    else next.lastSuccessfulQuickTime = m.endTime;
    next.owner = m.owner;
    next.ownerLastRunTime = undefined;
    next.indexBlobs = { ...next.indexBlobs, count: m.indexBlobs };
    return next;
  }
  if (!result.ok && result.errorClass === 'OwnedByOther' && result.maintenanceOwner) {
    // Recorded as a failed attempt (nothing was run or changed), so the owner is known not to be ours.
    next.owner = result.maintenanceOwner.owner;
    next.ownerLastRunTime = result.maintenanceOwner.lastRunTime;
    if (result.maintenanceOwner.indexBlobs !== undefined)
      next.indexBlobs = { ...next.indexBlobs, count: result.maintenanceOwner.indexBlobs };
  }
  const endTime = job.endTime ?? iso(now);
  const startTime = job.startTime ?? endTime;
  next[key] = {
    startTime,
    endTime,
    result: 'Failed',
    durationSeconds: Math.max(0, Math.round((Date.parse(endTime) - Date.parse(startTime)) / 1000)),
    error: result.ok ? 'the mover reported no maintenance outcome' : `${result.errorClass}: ${result.message}`.slice(0, 4096),
    ...(purpose.manual ? { manual: true } : {}),
  };
  return next;
}

/**
 * Owners the mover may replace without a takeover: the operator's own verify identity
 * (kopia makes a repository's creator its maintenance owner) and the owner this object ran
 * as before its spec.owner changed (its last run succeeded as that owner).
 */
export function adoptableOwners(status: MaintenanceStatus, verifyIdentity: string): string[] {
  const previous = status.owner && lastRun(status)?.result === 'Succeeded' ? [status.owner] : [];
  return [...new Set([verifyIdentity, ...previous])];
}
