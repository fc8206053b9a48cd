// Ready with kstatus' abnormal-true pair beside it, for every kind through this one helper, so
// Flux health checks, Argo CD and `kubectl wait --for=condition=Ready` read our objects without
// extra config (sigs.k8s.io/cli-utils/pkg/kstatus/status: Reconciling=True is InProgress,
// Stalled=True is Failed, otherwise Ready decides).
//
// The rule, the same everywhere: all three are always present and carry observedGeneration.
// Ready=True: Reconciling and Stalled are False. Ready False or Unknown: the reason's class
// (reason-classes.ts) makes one of them True with Ready's reason and message; a terminal
// failure (phase Failed) is Stalled whatever its reason.
import type { Condition } from '../../generated/types.js';
import { reasonClass } from '../reason-classes.js';
import { ConditionType } from '../reasons.js';
import { setCondition, type ConditionStatus } from './conditions.js';

export interface ReadyInput {
  status: ConditionStatus;
  reason: string;
  message: string;
}

const NOT_RECONCILING = 'no work toward the spec is under way';
const NOT_STALLED = 'not stalled';

export function setReady(
  conditions: Condition[] | undefined,
  ready: ReadyInput,
  observedGeneration: number | undefined,
  now: Date,
  opts: { failed?: boolean } = {},
): Condition[] {
  const stalled = ready.status !== 'True' && (opts.failed || reasonClass(ready.reason) === 'stalled');
  const reconciling = ready.status !== 'True' && !stalled;
  const set = (list: Condition[] | undefined, type: string, on: boolean, off: string) =>
    setCondition(
      list,
      { type, status: on ? 'True' : 'False', reason: ready.reason, message: on ? ready.message : off },
      observedGeneration,
      now,
    );
  let list = setCondition(conditions, { type: ConditionType.Ready, ...ready }, observedGeneration, now);
  list = set(list, ConditionType.Reconciling, reconciling, NOT_RECONCILING);
  return set(list, ConditionType.Stalled, stalled, NOT_STALLED);
}

/**
 * Conditions written before Reconciling and Stalled existed (an object finished by an older
 * operator, never passed again) get both, derived from its Ready as it stands, once; Ready
 * itself is kept. Undefined when nothing is missing, so a pass at rest writes nothing.
 */
export function backfillKstatus(conditions: Condition[] | undefined, now: Date, opts: { failed?: boolean } = {}): Condition[] | undefined {
  const ready = conditions?.find((c) => c.type === ConditionType.Ready);
  if (!ready || conditions!.some((c) => c.type === ConditionType.Reconciling || c.type === ConditionType.Stalled)) return undefined;
  return setReady(conditions, ready, ready.observedGeneration, now, opts);
}
