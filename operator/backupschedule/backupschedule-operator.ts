// BackupSchedule: *when* to back up. Each due run creates one Backup, named from the
// schedule and the run's cron time so a run is made once however often this reconciles.
// The schedule wakes itself at its next time; changes of the schedule, its BackupConfig
// and its Backups (found by label) wake it too. Decisions are in schedule-plan.ts.
import type { Backup, BackupSchedule, BackupScheduleStatus } from '../../generated/types.js';
import { isAlreadyExists, type KubeObject } from '../kube/kube-client.js';
import { KopiaBackupConfigs, KopiaBackups, KopiaBackupSchedules } from '../kube/resources.js';
import { ConditionType, Reason } from '../reasons.js';
import { findCondition } from '../runtime/conditions.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import {
  DEFAULT_FAILED_HISTORY_LIMIT,
  desiredBackup,
  iso,
  planSchedule,
  scheduleStatus,
  SCHEDULE_LABEL,
  SCHEDULED_TIME_ANNOTATION,
  type ScheduleInput,
  type SchedulePlan,
  type ScheduledBackup,
  wakeUpDelay,
} from './schedule-plan.js';

type ScheduleObject = KubeObject & BackupSchedule;
type BackupObject = KubeObject & Backup;

export class BackupScheduleOperator extends KindOperator {
  readonly kind = 'BackupSchedule';
  private schedules!: Informer<ScheduleObject>;
  private configs!: Informer<KubeObject>;
  private backups!: Informer<BackupObject>;
  /** When this replica began making runs (it took the lead): runs whose time came before are catch-ups. */
  private reconcilingSince?: Date;

  constructor(ctx: OperatorContext) {
    super(ctx);
  }

  override run(): void {
    this.reconcilingSince ??= this.ctx.now();
    super.run();
  }

  protected override async init(): Promise<void> {
    await this.watchResource('kopia.io', 'v1alpha1', 'backupschedules', async (e) => this.enqueue(e.object as unknown as KubeObject));
    this.schedules = this.ctx.informers.get<ScheduleObject>(KopiaBackupSchedules);
    this.configs = this.watchRelated<KubeObject>(KopiaBackupConfigs, (c) =>
      this.schedules
        .list()
        .filter((s) => s.metadata.namespace === c.metadata.namespace && s.spec.configRef.name === c.metadata.name)
        .map((s) => `${s.metadata.namespace}/${s.metadata.name}`),
    );
    // The Backup operator's informer, shared: a Backup wakes the schedule named by its label.
    this.backups = this.watchRelated<BackupObject>(KopiaBackups, (b) => {
      const schedule = b.metadata.labels?.[SCHEDULE_LABEL];
      return schedule ? [`${b.metadata.namespace}/${schedule}`] : [];
    });
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const cached = this.schedules.get(key);
    if (!cached || cached.metadata.deletionTimestamp) return;
    const schedule = this.written.latest(cached);
    const input = this.observe(schedule);
    const plan = planSchedule(input);
    const deleted = await this.act(schedule, input, plan);
    const status = scheduleStatus(input, plan, { deleted });
    await this.announce(schedule, input.status, status);
    if ((await writeStatus(this.ctx.client, KopiaBackupSchedules, schedule, status, this.written)) === 'conflict')
      return { requeueAfterMs: 200 };
    // Measured now, when the pass returns: the queue's timer starts now, and a wake-up late by
    // the pass's own length would make every run late by it.
    const requeueAfterMs = wakeUpDelay(plan.next, this.ctx.now());
    return requeueAfterMs !== undefined ? { requeueAfterMs } : undefined;
  }

  /** What the plan decides from: the schedule, its Backups, whether its BackupConfig exists, and the time. */
  private observe(schedule: ScheduleObject): ScheduleInput {
    const ns = schedule.metadata.namespace!;
    const name = schedule.metadata.name!;
    const backups: ScheduledBackup[] = this.backups
      .list()
      .filter((b) => b.metadata.namespace === ns && b.metadata.labels?.[SCHEDULE_LABEL] === name)
      .map((b) => ({
        name: b.metadata.name!,
        phase: b.status?.phase,
        creationTime: b.metadata.creationTimestamp,
        completionTime: b.status?.completionTime,
        scheduledTime: b.metadata.annotations?.[SCHEDULED_TIME_ANNOTATION],
        deleting: !!b.metadata.deletionTimestamp,
      }));
    return {
      namespace: ns,
      name,
      creationTime: new Date(schedule.metadata.creationTimestamp ?? 0),
      generation: schedule.metadata.generation ?? 1,
      spec: schedule.spec,
      status: schedule.status,
      backups,
      configExists: !!this.configs.get(`${ns}/${schedule.spec.configRef.name}`),
      now: this.ctx.now(),
      reconcilingSince: this.reconcilingSince,
    };
  }

  /** Prunes failed history, then makes, replaces or skips the due run. Returns the Backups deleted. */
  private async act(schedule: ScheduleObject, input: ScheduleInput, plan: SchedulePlan): Promise<string[]> {
    const ns = input.namespace;
    const deleted: string[] = [];
    const pruned: string[] = [];
    for (const name of plan.prune) {
      if (await this.ctx.client.delete(KopiaBackups, ns, name)) pruned.push(name);
      deleted.push(name);
    }
    if (pruned.length) {
      const limit = input.spec.failedBackupsHistoryLimit ?? DEFAULT_FAILED_HISTORY_LIMIT;
      await this.ctx.events.record(
        schedule,
        'Normal',
        Reason.FailedBackupsPruned,
        `deleted ${pruned.join(', ')}: failedBackupsHistoryLimit is ${limit}`,
      );
    }
    const { run } = plan;
    // A skipped time is kept in status (lastSkipped), so the next pass does not decide it again.
    if (run.action === 'skip') await this.ctx.events.record(schedule, 'Warning', run.reason, run.message);
    if (run.action !== 'create') return deleted;
    const replaced: string[] = [];
    for (const name of run.replace) {
      if (await this.ctx.client.delete(KopiaBackups, ns, name)) replaced.push(name);
      deleted.push(name);
    }
    if (replaced.length)
      await this.ctx.events.record(
        schedule,
        'Normal',
        Reason.BackupsReplaced,
        `deleted ${replaced.join(', ')} for the run of ${iso(run.slot)} (concurrencyPolicy Replace)`,
      );
    try {
      await this.ctx.client.create(
        KopiaBackups,
        desiredBackup({ namespace: ns, name: input.name, configName: input.spec.configRef.name }, run.slot),
      );
    } catch (e) {
      if (isAlreadyExists(e)) return deleted; // made by an earlier pass whose status write was lost
      throw e;
    }
    const missed = run.missed
      ? `; ${run.missed >= 100 ? '100 or more' : run.missed} earlier run(s) missed while the operator was not running`
      : '';
    await this.ctx.events.record(schedule, 'Normal', Reason.BackupScheduled, `created Backup ${run.name} for ${iso(run.slot)}${missed}`);
    return deleted;
  }

  /** Events for changes of Ready and of the failure streak. */
  private async announce(schedule: ScheduleObject, before: BackupScheduleStatus | undefined, after: BackupScheduleStatus): Promise<void> {
    const was = findCondition(before?.conditions, ConditionType.Ready);
    const is = findCondition(after.conditions, ConditionType.Ready)!;
    if (was?.reason !== is.reason || was?.status !== is.status)
      await this.ctx.events.record(schedule, is.status === 'True' ? 'Normal' : 'Warning', is.reason, is.message);
    const failures = after.consecutiveFailures ?? 0;
    const previously = before?.consecutiveFailures ?? 0;
    if (failures > previously)
      await this.ctx.events.record(schedule, 'Warning', Reason.BackupsFailing, `${failures} Backup(s) of this schedule failed in a row`);
    else if (failures === 0 && previously > 0)
      await this.ctx.events.record(schedule, 'Normal', Reason.BackupsRecovered, `a Backup succeeded after ${previously} failure(s)`);
  }
}
