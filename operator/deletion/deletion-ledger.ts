// Writes the mass-deletion ledger (deletion-plan.ts) of a repository object: one decision,
// the DeletionsPaused condition that follows from it, and a Warning Event when deletions
// start to wait. Always with the object's resourceVersion: on a conflict nothing was
// decided and the caller re-reads and decides again.
import type { DeletionStatus, RepositoryStatus } from '../../generated/types.js';
import { KopiaClusterRepositories, KopiaRepositories } from '../kube/resources.js';
import { ConditionType, Reason } from '../reasons.js';
import type { AnyRepository } from '../repository/repository-jobs.js';
import { findCondition, setCondition } from '../runtime/conditions.js';
import type { OperatorContext } from '../runtime/kind-operator.js';
import { writeStatus, type WrittenObjects } from '../runtime/status-writer.js';
import { breakerOf, waitingMessage, type Breaker } from './deletion-plan.js';

export const DELETIONS_PAUSED_CONDITION = ConditionType.DeletionsPaused;

export function repositoryRef(repo: AnyRepository): { kind: string; name: string; namespace?: string } {
  return { kind: repo.kind ?? 'Repository', name: repo.metadata.name!, namespace: repo.metadata.namespace };
}

/** The ledger's status and condition after a decision. Pure. */
export function withLedger(repo: AnyRepository, deletions: DeletionStatus, breaker: Breaker, now: Date): RepositoryStatus {
  const message = waitingMessage(deletions, breaker, repositoryRef(repo));
  return {
    ...repo.status,
    deletions,
    conditions: setCondition(
      repo.status?.conditions,
      message
        ? { type: DELETIONS_PAUSED_CONDITION, status: 'True', reason: Reason.DeletionsPaused, message }
        : { type: DELETIONS_PAUSED_CONDITION, status: 'False', reason: Reason.DeletionsAllowed, message: 'snapshot deletions run' },
      repo.metadata.generation,
      now,
    ),
  };
}

/**
 * Applies `decide` to the repository's ledger and writes it. Returns the decision, or
 * 'conflict' when the object moved on (nothing was decided).
 */
export async function updateLedger<T>(
  ctx: OperatorContext,
  written: WrittenObjects,
  repo: AnyRepository,
  decide: (state: DeletionStatus | undefined, breaker: Breaker) => { state: DeletionStatus; result: T },
): Promise<{ result: T } | 'conflict'> {
  const breaker = breakerOf(repo.spec.deletionBreaker);
  const now = ctx.now();
  const { state, result } = decide(repo.status?.deletions, breaker);
  const status = withLedger(repo, state, breaker, now);
  const type = repo.kind === 'ClusterRepository' ? KopiaClusterRepositories : KopiaRepositories;
  const outcome = await writeStatus(ctx.client, type, repo, status, written);
  if (outcome === 'conflict' || outcome === 'gone') return 'conflict';
  const was = findCondition(repo.status?.conditions, DELETIONS_PAUSED_CONDITION)?.status === 'True';
  const paused = findCondition(status.conditions, DELETIONS_PAUSED_CONDITION);
  if (outcome === 'written' && paused?.status === 'True' && !was)
    await ctx.events.record(repo, 'Warning', Reason.DeletionsPaused, paused.message);
  return { result };
}
