// kstatus' verdict on one of our objects, computed in the order sigs.k8s.io/cli-utils'
// pkg/kstatus/status.Compute follows for a custom resource (read at 5895ad6, Oct 2025):
// a deletionTimestamp is Terminating; a status.observedGeneration other than
// metadata.generation is InProgress (LatestGenerationNotObserved); then, in the conditions'
// order, the first Reconciling=True is InProgress and the first Stalled=True is Failed; then
// Ready: True is Current, False or Unknown InProgress; no Ready at all is Current.
// Flux's health checks and `kubectl wait` tooling read the same verdict; tests assert on it.
import type { Condition } from '../../generated/types.js';

export type KstatusVerdict = 'Current' | 'InProgress' | 'Failed' | 'Terminating';

export interface KstatusObject {
  metadata: { generation?: number; deletionTimestamp?: string };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

export function kstatusOf(o: KstatusObject): { status: KstatusVerdict; reason?: string } {
  if (o.metadata.deletionTimestamp) return { status: 'Terminating' };
  const observed = o.status?.observedGeneration;
  if (o.metadata.generation !== undefined && observed !== undefined && observed !== o.metadata.generation)
    return { status: 'InProgress', reason: 'LatestGenerationNotObserved' };
  const conditions = o.status?.conditions ?? [];
  for (const c of conditions) {
    if (c.type === 'Reconciling' && c.status === 'True') return { status: 'InProgress', reason: c.reason };
    if (c.type === 'Stalled' && c.status === 'True') return { status: 'Failed', reason: c.reason };
  }
  const ready = conditions.find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return { status: 'Current' };
  if (ready) return { status: 'InProgress', reason: ready.reason };
  return { status: 'Current' };
}

/**
 * What our own rule adds to kstatus' (runtime/kstatus.ts): Ready, Reconciling and Stalled all
 * present, at most one of Reconciling/Stalled True and only while Ready is not, each with the
 * generation the pass acted on (metadata.generation). Returns the broken promises, none when kept.
 */
export function kstatusRuleBreaks(o: KstatusObject): string[] {
  const conditions = o.status?.conditions ?? [];
  const get = (type: string) => conditions.find((c) => c.type === type);
  const [ready, reconciling, stalled] = [get('Ready'), get('Reconciling'), get('Stalled')];
  const breaks: string[] = [];
  if (!ready || !reconciling || !stalled) return ['Ready, Reconciling and Stalled are not all present'];
  if (reconciling.status === 'True' && stalled.status === 'True') breaks.push('Reconciling and Stalled both True');
  if (ready.status === 'True' && (reconciling.status !== 'False' || stalled.status !== 'False'))
    breaks.push('Ready=True with Reconciling or Stalled not False');
  if (ready.status !== 'True' && reconciling.status !== 'True' && stalled.status !== 'True')
    breaks.push('Ready not True, and neither Reconciling nor Stalled says why');
  for (const c of [ready, reconciling, stalled])
    if (c.observedGeneration !== o.metadata.generation) breaks.push(`${c.type} observedGeneration ${c.observedGeneration}`);
  return breaks;
}
