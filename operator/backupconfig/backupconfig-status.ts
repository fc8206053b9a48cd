// What a BackupConfig's status becomes after a pass. Pure: the operator passes in its verdict
// and the facts it gathered, and writes the result once.
import type { BackupConfigStatus } from '../../generated/types.js';
import { setReady } from '../runtime/kstatus.js';

/** Ready's status, reason and message, as the operator's evaluation found them. */
export type ConfigVerdict = ['True' | 'False', string, string];

export function configStatus(
  before: BackupConfigStatus | undefined,
  [status, reason, message]: ConfigVerdict,
  facts: Omit<BackupConfigStatus, 'conditions' | 'observedGeneration'>,
  generation: number,
  now: Date,
): BackupConfigStatus {
  return {
    ...before,
    ...facts,
    observedGeneration: generation,
    conditions: setReady(before?.conditions, { status, reason, message }, generation, now),
  };
}
