// The Restore's status for the populator's part, as a pure function of the step taken and
// what was observed. The operator resolves and pins each claim's answer (status.claims) and leaves a
// target.populator Restore at Pending/WaitingForClaim; from there the populator writes
// Restoring while the Job runs, the Job's result, Completed once the claim is bound to the
// volume (not when the files are in: a claim still Pending has nothing to use), Failed when
// the Job failed (it is retried), and Pending again when the claim went away mid-way.
import type { RestoreStatus } from '../../generated/types.js';
import type { MoverResult } from '../mover/mover-contract.js';
import { Reason } from '../reasons.js';
import type { ConditionInput } from '../runtime/conditions.js';
import { setReady } from '../runtime/kstatus.js';
import {
  hasFinalizer,
  POPULATED_FROM,
  populateJobName,
  primeClaimName,
  restoreName,
  restoreSucceeded,
  statusFollowsAnotherClaim,
  type PopulationObserved,
  type PopulationStep,
} from './populator-plan.js';
import { PopulatorReason } from './populator-reasons.js';
import { resolvedOf } from '../restore/restore-plan.js';

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The status to write before the step is taken; undefined leaves the Restore's status alone. */
export function restoreStatusFor(step: PopulationStep, o: PopulationObserved): RestoreStatus | undefined {
  const restore = o.restore;
  const answer = o.answer;
  if (!restore?.status || !answer || answer.failed || !restore.spec.target?.populator) return undefined;
  const claim = o.claim.metadata.name!;
  const status = restore.status;
  const generation = restore.metadata.generation ?? 1;
  // Another claim's restore in flight keeps the status; this claim's shows in its Events.
  if (statusFollowsAnotherClaim(restore, claim)) return undefined;
  const ready = (s: RestoreStatus, input: Omit<ConditionInput, 'type'>): RestoreStatus => ({
    ...s,
    observedGeneration: generation,
    // A failed Job is retried, but the Restore says Failed meanwhile: Stalled, never a silent progress.
    conditions: setReady(s.conditions, input, generation, o.now, { failed: s.phase === 'Failed' }),
  });
  // The top-level answer and target are this claim's while its population is in view.
  const base: RestoreStatus = { ...status, target: { pvc: claim }, resolved: resolvedOf(answer) };

  if (o.claim.metadata.deletionTimestamp) {
    if (!hasFinalizer(o.claim) || status.target?.pvc !== claim || (status.phase !== 'Restoring' && status.phase !== 'Failed'))
      return undefined;
    const message = `claim ${claim} was deleted before it was populated; ready for a claim whose dataSourceRef names this Restore`;
    return ready(
      { ...status, phase: 'Pending', jobName: undefined, startTime: undefined, target: undefined, message },
      {
        status: 'False',
        reason: Reason.WaitingForClaim,
        message,
      },
    );
  }

  if (o.claim.status?.phase === 'Bound' && hasFinalizer(o.claim)) {
    const populatedFrom = `${o.claim.metadata.namespace}/${restoreName(o.claim)}`;
    if (o.claimVolume?.metadata.annotations?.[POPULATED_FROM] !== populatedFrom) return undefined;
    return completed(base, o, ready);
  }

  const jobName = populateJobName(o.claim.metadata.uid!);
  const prime = primeClaimName(o.claim.metadata.uid!);
  const jobRunning = !!o.job && !o.job.metadata.deletionTimestamp && step.action === 'wait' && !o.jobResult;
  if (step.action === 'startJob' || jobRunning) {
    // A retry of the same claim's population (after a failed Job) keeps the first attempt's
    // start: a population failing again and again must age toward KopiaRestoreStuck.
    const again = (status.phase === 'Restoring' || status.phase === 'Failed') && status.jobName === jobName && status.startTime;
    const message = `mover Job ${jobName} restores snapshot ${answer.snapshotID} into prime claim ${prime} for claim ${claim}`;
    return ready(
      { ...base, phase: 'Restoring', jobName, startTime: again ? status.startTime : iso(o.now), completionTime: undefined, message },
      { status: 'False', reason: Reason.Restoring, message },
    );
  }
  if (step.action === 'collectJob') return collected(base, step.result, o, ready);
  if (step.action === 'markPopulated' && answer.empty) {
    const message = `no snapshot to restore (onMissingSnapshot: Continue); handing an empty volume to claim ${claim}`;
    return ready({ ...base, phase: 'Restoring', message }, { status: 'False', reason: PopulatorReason.BindingVolume, message });
  }
  return undefined;
}

type Ready = (s: RestoreStatus, input: Omit<ConditionInput, 'type'>) => RestoreStatus;

function collected(status: RestoreStatus, result: MoverResult, o: PopulationObserved, ready: Ready): RestoreStatus {
  const claim = o.claim.metadata.name!;
  const jobUID = o.job!.metadata.uid!;
  if (!restoreSucceeded(result) || !result.ok) {
    const reason =
      result.ok || result.errorClass === 'Other' || result.errorClass === 'InvalidRequest' ? Reason.RestoreFailed : result.errorClass;
    const why = result.ok ? 'the mover reported success without restore counts' : result.message;
    const message = `${why}; claim ${claim} stays Pending and the restore is retried`;
    return ready(
      { ...status, phase: 'Failed', collectedJobUID: jobUID, completionTime: iso(o.now), message },
      { status: 'False', reason, message },
    );
  }
  const r = result.restored!;
  const message = `restored ${r.files} files, ${r.bytes} bytes from snapshot ${status.resolved?.snapshotID}; handing the volume to claim ${claim}`;
  return ready(
    {
      ...status,
      phase: 'Restoring',
      collectedJobUID: jobUID,
      progress: { restoredFiles: r.files, restoredDirs: r.dirs, restoredBytes: r.bytes, errors: r.errors },
      ownersRestored: r.ownersRestored,
      message,
    },
    { status: 'False', reason: PopulatorReason.BindingVolume, message },
  );
}

function completed(status: RestoreStatus, o: PopulationObserved, ready: Ready): RestoreStatus {
  const claim = o.claim.metadata.name!;
  const volume = o.claim.spec.volumeName;
  const done: RestoreStatus = {
    ...status,
    phase: 'Completed',
    completionTime: status.phase === 'Completed' && status.completionTime ? status.completionTime : iso(o.now),
  };
  if (status.resolved?.empty) {
    const message = `claim ${claim} is bound to an empty volume ${volume}: kopia lists no snapshot (onMissingSnapshot: Continue)`;
    return ready({ ...done, message }, { status: 'True', reason: Reason.RestoreCompleted, message });
  }
  const p = status.progress ?? {};
  const counts = `${p.restoredFiles ?? 0} files, ${p.restoredBytes ?? 0} bytes from snapshot ${status.resolved?.snapshotID}`;
  if (status.ownersRestored === false) {
    const message = `claim ${claim} is bound to ${volume} with ${counts}; files belong to the mover's user, not their recorded owners (only a root mover, spec.mover.securityContext.runAsUser: 0, gives owners back)`;
    return ready({ ...done, message }, { status: 'True', reason: Reason.OwnersNotRestored, message });
  }
  const message = `claim ${claim} is bound to ${volume} with ${counts}, owners included`;
  return ready({ ...done, message }, { status: 'True', reason: Reason.RestoreCompleted, message });
}
