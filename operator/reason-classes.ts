// What each reason means for kstatus when it stands on a Ready condition that is not True:
// 'progressing' — the operator works toward the spec, or waits for something that comes by
// itself (a Job, a dependency becoming Ready, a claim): Reconciling=True. A referenced object
// that does not exist yet (Secret, Repository, BackupConfig, Backup, claim) is waited for:
// GitOps tools apply objects in any order within a wave, an external secret store writes its
// Secret later, and Flux's health check fails at once on a Stalled object;
// 'stalled' — it will not get better without a change by someone (a failure, a bad spec, a
// refused reference, a repository that cannot be reached or opened): Stalled=True.
// A new reason without a class does not compile (and reason-classes.test.ts fails).
// Reasons that only ever say Ready=True, or only name Events, are classed by what they would
// mean; on a Ready=True condition the class is not read.
import type { MoverFailure } from './mover/mover-contract.js';
import { PopulatorReason } from './populator/populator-reasons.js';
import type { ReasonName } from './reasons.js';

export type ReasonClass = 'progressing' | 'stalled';

type PopulatorReasonName = (typeof PopulatorReason)[keyof typeof PopulatorReason];
/** The mover's error classes become reasons as they are (Other and InvalidRequest are mapped, classed all the same). */
type MoverErrorReason = MoverFailure['errorClass'];

export const REASON_CLASS: Record<ReasonName | PopulatorReasonName | MoverErrorReason, ReasonClass> = {
  // shared
  InvalidSpec: 'stalled',
  SecretNotFound: 'progressing',
  // repository verification
  Verifying: 'progressing',
  Verified: 'progressing',
  Connected: 'progressing',
  RepositoryCreated: 'progressing',
  NotInitialized: 'stalled',
  WrongPassword: 'stalled',
  // The rule: an unreachable repository is Stalled, not silently Progressing (it is re-verified all the same).
  Unreachable: 'stalled',
  VerificationFailed: 'stalled',
  RepositoryMissing: 'stalled',
  RepositoryChanged: 'stalled',
  RepositoryReinitialized: 'progressing',
  PrivilegedMoverNotAllowed: 'stalled',
  // tenancy
  AllNamespaces: 'progressing',
  NamespacesListed: 'progressing',
  NamespaceSelector: 'progressing',
  // consumers of a repository: a missing or refused reference needs a change; a dependency
  // that exists but is not Ready yet comes by itself (and says Stalled itself if it will not)
  RepositoryNotFound: 'progressing',
  RepositoryNotAllowed: 'stalled',
  MaintenanceNotAllowed: 'stalled',
  HostnamesContested: 'stalled',
  SecretCopyDeleted: 'progressing',
  RepositoryNotReady: 'progressing',
  IdentityNotAllowed: 'stalled',
  SourceNotFound: 'progressing',
  Ready: 'progressing',
  // schedules
  Scheduling: 'progressing',
  Suspended: 'progressing',
  InvalidSchedule: 'stalled',
  InvalidTimeZone: 'stalled',
  BackupScheduled: 'progressing',
  ConcurrentRunSkipped: 'progressing',
  StartingDeadlineMissed: 'progressing',
  BackupsReplaced: 'progressing',
  FailedBackupsPruned: 'progressing',
  BackupsFailing: 'stalled',
  BackupsRecovered: 'progressing',
  // backups
  ConfigNotFound: 'progressing',
  ConfigNotReady: 'progressing',
  IdentityBusy: 'progressing',
  PreparingSource: 'progressing',
  SourceCopyFailed: 'stalled',
  RepositoryNotUsable: 'stalled',
  BackupStarted: 'progressing',
  BackupRunning: 'progressing',
  BackupSucceeded: 'progressing',
  // Succeeded with unreadable files: final, and never Ready.
  FileErrors: 'stalled',
  BackupFailed: 'stalled',
  // A Pending Backup waits for the mass-deletion budget to cover its expiries; a Failed one is Stalled by its phase.
  ExpireLimitExceeded: 'progressing',
  SnapshotMirrored: 'progressing',
  SnapshotGone: 'stalled',
  CatalogSynced: 'progressing',
  CatalogUploadRefused: 'stalled',
  UploadFailed: 'stalled',
  Other: 'stalled',
  InvalidRequest: 'stalled',
  // restores
  BackupNotFound: 'progressing',
  BackupNotReady: 'progressing',
  ListingSnapshots: 'progressing',
  NoListing: 'stalled',
  Resolved: 'progressing',
  NoSnapshotEmptyVolume: 'progressing',
  SnapshotMissing: 'stalled',
  SnapshotNotFound: 'stalled',
  TooManyClaims: 'progressing',
  WaitingForClaim: 'progressing',
  ClaimNotFound: 'progressing',
  // Someone has to stop the pod or allow restoring while in use.
  ClaimInUse: 'stalled',
  Restoring: 'progressing',
  BindingVolume: 'progressing',
  RestoreCompleted: 'progressing',
  RestoreFailed: 'stalled',
  OwnersNotRestored: 'progressing',
  // snapshot deletion and the mass-deletion breaker: a paused deletion waits for the budget window
  DeletionsPaused: 'progressing',
  DeletionsAllowed: 'progressing',
  SnapshotDeletionFailed: 'stalled',
  SnapshotKept: 'progressing',
  // maintenance
  Conflict: 'stalled',
  MaintenanceRunning: 'progressing',
  MaintenanceStarted: 'progressing',
  MaintenanceSucceeded: 'progressing',
  // The last run failed and none runs: someone should look (the next cron time tries again).
  MaintenanceFailed: 'stalled',
  OwnedByOther: 'stalled',
  MaintenanceTakenOver: 'progressing',
  MaintenanceOwnerSet: 'progressing',
  MaintenanceStale: 'stalled',
  MaintenanceCurrent: 'progressing',
  TooManyIndexBlobs: 'stalled',
  IndexBlobsWithinLimit: 'progressing',
  DefaultMaintenanceCreated: 'progressing',
  DefaultMaintenanceRemoved: 'progressing',
};

/** A reason's class; one this table does not know is Stalled, so a slip is loud rather than an endless Progressing. */
export function reasonClass(reason: string): ReasonClass {
  return Object.hasOwn(REASON_CLASS, reason) ? REASON_CLASS[reason as keyof typeof REASON_CLASS] : 'stalled';
}
