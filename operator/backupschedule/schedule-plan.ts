// Decisions for a BackupSchedule. Pure: the operator passes in the schedule, the Backups it
// made and `now`, and gets back what to do and what the status becomes. When a cron runs in
// its time zone is CronTimes' (runtime/cron-times.ts): a local time that a spring-forward
// skips runs right after the gap, a local time that a fall-back repeats runs once, for every
// cron.
import { createHash } from 'node:crypto';
import type { BackupScheduleSpec, BackupScheduleStatus, SkippedRun } from '../../generated/types.js';
import { SCHEDULE_LABEL } from '../backup/backup-operator.js';
import type { KubeObject } from '../kube/kube-client.js';
import { Reason } from '../reasons.js';
import type { ConditionStatus } from '../runtime/conditions.js';
import { setReady } from '../runtime/kstatus.js';
import { CronTimes } from '../runtime/cron-times.js';
import { parseDuration } from '../repository/repository-verification.js';

export { SCHEDULE_LABEL };
/** The cron time a Backup was made for, on every Backup a schedule makes (RFC 3339, UTC). */
export const SCHEDULED_TIME_ANNOTATION = 'kopia.io/scheduled-time';
export const DEFAULT_FAILED_HISTORY_LIMIT = 3;
/**
 * A run this late or less is on time whatever startingDeadlineSeconds says: a wake-up is
 * late by a pass or a queue of due schedules, and Kubernetes warns about deadlines below it.
 */
export const DEADLINE_FLOOR_SECONDS = 10;
/** Missed runs are counted up to this many (for the message only). */
const MISSED_COUNT_CAP = 100;

export const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** What the plan needs to know about one Backup of the schedule. */
export interface ScheduledBackup {
  name: string;
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  creationTime?: string;
  completionTime?: string;
  scheduledTime?: string;
  deleting?: boolean;
}

export type ParsedSchedule = { ok: true; cron: CronTimes; jitterMs: number } | { ok: false; reason: string; message: string };

export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** The schedule's cron in its time zone and its jitter, or why they cannot be used. */
export function parseSchedule(spec: BackupScheduleSpec, namespace: string, name: string): ParsedSchedule {
  const timeZone = spec.timeZone ?? 'UTC';
  if (!isTimeZone(timeZone))
    return { ok: false, reason: Reason.InvalidTimeZone, message: `unknown IANA time zone ${JSON.stringify(timeZone)}` };
  let cron: CronTimes;
  try {
    cron = new CronTimes(spec.cron, timeZone);
  } catch (e) {
    return { ok: false, reason: Reason.InvalidSchedule, message: `cron ${JSON.stringify(spec.cron)}: ${(e as Error).message}` };
  }
  if (!cron.nextRun(new Date(0)))
    return { ok: false, reason: Reason.InvalidSchedule, message: `cron ${JSON.stringify(spec.cron)} matches no date` };
  let jitter: number;
  try {
    jitter = jitterMs(namespace, name, spec.jitter);
  } catch (e) {
    return { ok: false, reason: Reason.InvalidSpec, message: (e as Error).message };
  }
  return { ok: true, cron, jitterMs: jitter };
}

/**
 * This schedule's fixed delay, in whole seconds below the jitter bound. It comes from a
 * hash of namespace/name, so every replica and every restart agrees on it.
 */
export function jitterMs(namespace: string, name: string, jitter: string | undefined): number {
  if (!jitter) return 0;
  const seconds = Math.floor(parseDuration(jitter) / 1000);
  if (seconds < 1) return 0;
  const fraction = createHash('sha256').update(`${namespace}/${name}`).digest().readUIntBE(0, 6) / 2 ** 48;
  return Math.floor(fraction * seconds) * 1000;
}

/** `<schedule>-<yyyymmddhhmm in UTC>`, at most 63 characters (UTC: a repeated local hour still gives two names). */
export function backupName(schedule: string, slot: Date): string {
  const stamp = iso(slot).replace(/[-:T]/g, '').slice(0, 12);
  const name = `${schedule}-${stamp}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(schedule).digest('hex').slice(0, 8);
  const head = schedule.slice(0, 63 - stamp.length - hash.length - 2).replace(/[^a-z0-9]+$/, '');
  return `${head}-${hash}-${stamp}`;
}

/** The Backup a run creates. No owner reference: deleting the schedule must leave its Backups (they mirror snapshots). */
export function desiredBackup(schedule: { namespace: string; name: string; configName: string }, slot: Date): KubeObject {
  return {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: {
      name: backupName(schedule.name, slot),
      namespace: schedule.namespace,
      labels: { [SCHEDULE_LABEL]: schedule.name },
      annotations: { [SCHEDULED_TIME_ANNOTATION]: iso(slot) },
    },
    spec: { configRef: { name: schedule.configName } },
  };
}

export const isActive = (b: ScheduledBackup) => !b.deleting && (b.phase === undefined || b.phase === 'Pending' || b.phase === 'Running');

const time = (t: string | undefined) => (t ? Date.parse(t) : NaN);
/** The latest of some RFC 3339 times; unparsable ones are ignored. */
function latest(times: (string | undefined)[]): string | undefined {
  let best: string | undefined;
  for (const t of times) if (!Number.isNaN(time(t)) && (best === undefined || time(t) > time(best))) best = t;
  return best;
}

/** The cron time of the last run made or skipped; the creation time when there is none yet (fresh). */
export function lastHandledSlot(
  status: BackupScheduleStatus | undefined,
  backups: ScheduledBackup[],
  creationTime: Date,
): { anchor: Date; fresh: boolean } {
  const last = latest([status?.lastScheduleTime, status?.lastSkipped?.scheduleTime, ...backups.map((b) => b.scheduledTime)]);
  return last ? { anchor: new Date(last), fresh: false } : { anchor: creationTime, fresh: true };
}

export type RunDecision =
  | { action: 'none' }
  /** Make the run: delete `replace` (concurrencyPolicy Replace) first. */
  | { action: 'create'; slot: Date; name: string; replace: string[]; missed: number }
  /** The run's Backup is there already (a status write was lost): record it. */
  | { action: 'exists'; slot: Date; name: string }
  | { action: 'skip'; slot: Date; reason: string; message: string }
  /** A run missed while no operator ran, waiting for its turn after the restart (restart plus jitter). */
  | { action: 'wait'; slot: Date; until: Date };

export interface SchedulePlan {
  ready: { status: ConditionStatus; reason: string; message: string };
  run: RunDecision;
  /** Failed Backups beyond the history limit, oldest first. */
  prune: string[];
  /** When the next run starts (jitter included); none while suspended or not Ready. */
  next?: Date;
  /** From `now` until `next`. */
  requeueAfterMs?: number;
}

export interface ScheduleInput {
  namespace: string;
  name: string;
  creationTime: Date;
  generation: number;
  spec: BackupScheduleSpec;
  status?: BackupScheduleStatus;
  backups: ScheduledBackup[];
  configExists: boolean;
  now: Date;
  /**
   * When this operator began making runs (it took the lead). A run whose time came before
   * was missed while no operator ran: it is a catch-up, made at this time plus the
   * schedule's jitter, so a restart does not start every missed run at once.
   */
  reconcilingSince?: Date;
}

/** Failed Backups to delete: all but the newest `limit`. Succeeded ones are Kopia retention's to decide. */
export function failedToPrune(backups: ScheduledBackup[], limit = DEFAULT_FAILED_HISTORY_LIMIT): string[] {
  const failed = backups
    .filter((b) => b.phase === 'Failed' && !b.deleting)
    .sort((a, b) => time(b.completionTime ?? b.creationTime) - time(a.completionTime ?? a.creationTime) || b.name.localeCompare(a.name));
  return failed
    .slice(limit)
    .map((b) => b.name)
    .reverse();
}

/** Cron times strictly between from and to (capped). */
function countSlots(cron: CronTimes, from: Date, to: Date): number {
  let n = 0;
  for (let s = cron.nextRun(from); s && s < to && n < MISSED_COUNT_CAP; s = cron.nextRun(s)) n++;
  return n;
}

/**
 * The one run due now, if any: the most recent cron time (plus jitter) not after now and
 * after the last handled one — at most one, however many were missed while nobody looked.
 */
export function dueSlot(
  cron: CronTimes,
  jitter: number,
  handled: { anchor: Date; fresh: boolean },
  runOnCreate: boolean,
  now: Date,
): { slot: Date; due: Date; missed: number; onCreate?: true } | undefined {
  const slot = cron.previousRun(new Date(now.getTime() - jitter + 1));
  if (slot && slot > handled.anchor) {
    const missed = countSlots(cron, handled.anchor, slot) + (handled.fresh && runOnCreate ? 1 : 0);
    return { slot, due: new Date(slot.getTime() + jitter), missed };
  }
  // runOnCreate: the creation itself is the first run's time, without jitter ("right away").
  if (handled.fresh && runOnCreate && handled.anchor <= now)
    return { slot: handled.anchor, due: handled.anchor, missed: 0, onCreate: true };
  return undefined;
}

function decideRun(input: ScheduleInput, cron: CronTimes, jitter: number): RunDecision {
  const { spec, now, backups } = input;
  const handled = lastHandledSlot(input.status, backups, input.creationTime);
  const due = dueSlot(cron, jitter, handled, spec.runOnCreate ?? false, now);
  if (!due) return { action: 'none' };
  const name = backupName(input.name, due.slot);
  if (backups.some((b) => b.name === name)) return { action: 'exists', slot: due.slot, name };
  // A run whose time came before this operator began is a catch-up: as late as the restart
  // found it, and started at the restart plus the jitter, spread like the regular runs.
  const since = input.reconcilingSince;
  // runOnCreate's run is never one: it is "right away" even when the schedule was applied
  // with (or just before) the operator that makes it.
  const catchUp = since !== undefined && due.due < since && !due.onCreate;
  const lateMs = (catchUp ? since : now).getTime() - due.due.getTime();
  const deadline = spec.startingDeadlineSeconds;
  if (deadline !== undefined && lateMs > Math.max(deadline, DEADLINE_FLOOR_SECONDS) * 1000) {
    const floor = deadline < DEADLINE_FLOOR_SECONDS ? ` (a deadline counts as at least ${DEADLINE_FLOOR_SECONDS}s)` : '';
    const message = `skipped the run of ${iso(due.slot)}: ${Math.round(lateMs / 100) / 10}s late, past startingDeadlineSeconds ${deadline}${floor}`;
    return { action: 'skip', slot: due.slot, reason: Reason.StartingDeadlineMissed, message };
  }
  if (catchUp && now.getTime() < since.getTime() + jitter)
    return { action: 'wait', slot: due.slot, until: new Date(since.getTime() + jitter) };
  const active = backups.filter(isActive).map((b) => b.name);
  const policy = spec.concurrencyPolicy ?? 'Forbid';
  if (active.length && policy === 'Forbid') {
    const message = `skipped the run of ${iso(due.slot)}: Backup ${active.join(', ')} is still Pending or Running (concurrencyPolicy Forbid)`;
    return { action: 'skip', slot: due.slot, reason: Reason.ConcurrentRunSkipped, message };
  }
  return { action: 'create', slot: due.slot, name, replace: policy === 'Replace' ? active : [], missed: due.missed };
}

function readiness(input: ScheduleInput, parsed: ParsedSchedule): SchedulePlan['ready'] {
  if (!parsed.ok) return { status: 'False', reason: parsed.reason, message: parsed.message };
  const ns = input.namespace;
  if (!input.configExists)
    return { status: 'False', reason: Reason.ConfigNotFound, message: `BackupConfig ${ns}/${input.spec.configRef.name} not found` };
  if (input.spec.suspend) return { status: 'True', reason: Reason.Suspended, message: 'suspended: no runs are made' };
  const jitter = input.spec.jitter ? ` with jitter below ${input.spec.jitter}` : '';
  return {
    status: 'True',
    reason: Reason.Scheduling,
    message: `backs up ${input.spec.configRef.name} at "${input.spec.cron}" in ${input.spec.timeZone ?? 'UTC'}${jitter}`,
  };
}

/**
 * The Backups this schedule made. A deleted schedule's Backups stay (no owner reference) and
 * keep its label, so a new schedule of the same name sees them too: those created before it
 * are its predecessor's — not its runs, failures or history.
 */
export function ownBackups(backups: ScheduledBackup[], creationTime: Date): ScheduledBackup[] {
  return backups.filter((b) => !(time(b.creationTime) < creationTime.getTime()));
}

export function planSchedule(scheduleInput: ScheduleInput): SchedulePlan {
  const input = { ...scheduleInput, backups: ownBackups(scheduleInput.backups, scheduleInput.creationTime) };
  const parsed = parseSchedule(input.spec, input.namespace, input.name);
  const ready = readiness(input, parsed);
  const prune = failedToPrune(input.backups, input.spec.failedBackupsHistoryLimit);
  if (!parsed.ok || ready.reason !== Reason.Scheduling) return { ready, run: { action: 'none' }, prune };
  const run = decideRun(input, parsed.cron, parsed.jitterMs);
  const handled =
    run.action === 'none' || run.action === 'wait' ? lastHandledSlot(input.status, input.backups, input.creationTime).anchor : run.slot;
  // The first cron time after the handled one whose start (plus jitter) is still ahead, or a waiting catch-up's turn if sooner.
  const from = Math.max(handled.getTime(), input.now.getTime() - parsed.jitterMs);
  const slot = parsed.cron.nextRun(new Date(from));
  const regular = slot ? new Date(slot.getTime() + parsed.jitterMs) : undefined;
  const next = run.action === 'wait' && !(regular && regular < run.until) ? run.until : regular;
  return { ready, run, prune, next, requeueAfterMs: wakeUpDelay(next, input.now) };
}

/** How long from `at` until the next run starts. The operator measures it when its pass returns, not from the pass's start. */
export function wakeUpDelay(next: Date | undefined, at: Date): number | undefined {
  return next ? Math.max(1, next.getTime() - at.getTime()) : undefined;
}

/**
 * Backups of this schedule that failed since the last success. The count is carried in
 * status with the time of the latest failure counted, so Failed Backups pruned by the
 * history limit keep counting; a newer success starts it over.
 */
export function failureStreak(
  before: Pick<BackupScheduleStatus, 'consecutiveFailures' | 'lastSuccessTime' | 'lastFailureTime'> | undefined,
  backups: ScheduledBackup[],
): Pick<BackupScheduleStatus, 'consecutiveFailures' | 'lastSuccessTime' | 'lastFailureTime'> {
  const finishedAt = (b: ScheduledBackup) => b.completionTime ?? b.creationTime;
  const lastSuccessTime = latest([before?.lastSuccessTime, ...backups.filter((b) => b.phase === 'Succeeded').map(finishedAt)]);
  const failures = backups.filter((b) => b.phase === 'Failed').map(finishedAt);
  const sinceSuccess = failures.filter((t) => !(time(t) <= time(lastSuccessTime)));
  let consecutiveFailures = sinceSuccess.length;
  if (lastSuccessTime === before?.lastSuccessTime) {
    const uncounted = sinceSuccess.filter((t) => !(time(t) <= time(before?.lastFailureTime)));
    consecutiveFailures = Math.max(consecutiveFailures, (before?.consecutiveFailures ?? 0) + uncounted.length);
  }
  const lastFailureTime = latest([before?.lastFailureTime, ...failures]);
  return {
    consecutiveFailures,
    ...(lastSuccessTime ? { lastSuccessTime } : {}),
    ...(lastFailureTime ? { lastFailureTime } : {}),
  };
}

/** The status after this pass: what was run or skipped, the Backups still active, the failure streak, Ready. */
export function scheduleStatus(scheduleInput: ScheduleInput, plan: SchedulePlan, after: { deleted: string[] }): BackupScheduleStatus {
  const input = { ...scheduleInput, backups: ownBackups(scheduleInput.backups, scheduleInput.creationTime) };
  const before = input.status ?? {};
  const { run } = plan;
  const made = run.action === 'create' || run.action === 'exists' ? run : undefined;
  const active = input.backups
    .filter((b) => isActive(b) && !after.deleted.includes(b.name))
    .map((b) => b.name)
    .concat(run.action === 'create' && !input.backups.some((b) => b.name === run.name) ? [run.name] : []);
  const lastSkipped: SkippedRun | undefined =
    run.action === 'skip' ? { scheduleTime: iso(run.slot), reason: run.reason, message: run.message } : before.lastSkipped;
  const status: BackupScheduleStatus = {
    observedGeneration: input.generation,
    conditions: setReady(before.conditions, plan.ready, input.generation, input.now),
    ...(made ? { lastScheduleTime: iso(made.slot), lastBackup: made.name } : pick(before, 'lastScheduleTime', 'lastBackup')),
    ...(plan.next ? { nextScheduleTime: iso(plan.next) } : {}),
    ...failureStreak(before, input.backups),
    active: [...new Set(active)].sort().slice(0, 100),
    ...(lastSkipped ? { lastSkipped } : {}),
  };
  return status;
}

function pick<T extends object, K extends keyof T>(obj: T, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}
