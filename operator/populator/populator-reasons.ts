// The populator's Event reasons, in one place. The stage names are lib-volume-populator's,
// so dashboards and alerts written for other populators read ours the same way; the
// Restore's condition reasons are shared with the operator (../reasons.ts).
export const PopulatorEvent = {
  /** The claim names a Restore that does not exist (yet: GitOps may apply it later). */
  DataSourceNotFound: 'PopulatorDataSourceNotFound',
  /** The claim or its Restore cannot be populated as asked (no target.populator, Block mode, no class…). */
  DataSourceInvalid: 'PopulatorDataSourceInvalid',
  /** The Restore has not pinned a snapshot yet; its own condition says why. */
  WaitingForRestore: 'PopulatorWaitingForRestore',
  /** The Restore failed before pinning anything (a missing snapshot with onMissingSnapshot: Fail). */
  RestoreFailed: 'PopulatorRestoreFailed',
  PVCPrimeCreated: 'PopulatorPVCPrimeCreated',
  PVCPrimeCreationError: 'PopulatorPVCPrimeCreationError',
  /**
   * No restore Job: the mover settings it would run with (spec.mover, the repository) are not
   * the ones the operator approved for this namespace, or the repository no longer allows it.
   */
  MoverNotApproved: 'PopulatorMoverNotApproved',
  /** The restore Job was started (or, for an empty volume, the prime claim is taken as it is). */
  Created: 'PopulatorCreated',
  /** The restore Job failed; it is deleted and started again after a backoff. */
  Failed: 'PopulatorFailed',
  /** The prime claim was deleted before its volume was handed over: its held PV is let go (or its finished Job dropped), the restore starts over. */
  PrimeLost: 'PopulatorPrimeLost',
  /** The volume is the claim's, with its reclaim policy put back. */
  Finished: 'PopulatorFinished',
} as const;

/** Restore condition reasons only the populator sets. */
export const PopulatorReason = {
  /** The files are in the prime volume; it is being handed to the claim. */
  BindingVolume: 'BindingVolume',
} as const;
