// Condition and Event reasons, in one place. PascalCase, stable: users alert on them.
export const Reason = {
  // shared
  InvalidSpec: 'InvalidSpec',
  SecretNotFound: 'SecretNotFound',
  // repository verification (the mover's error classes are reasons too)
  Verifying: 'Verifying',
  Verified: 'Verified',
  Connected: 'Connected',
  RepositoryCreated: 'RepositoryCreated',
  NotInitialized: 'NotInitialized',
  WrongPassword: 'WrongPassword',
  Unreachable: 'Unreachable',
  VerificationFailed: 'VerificationFailed',
  /** The repository verified before is gone from its storage; nothing was created. */
  RepositoryMissing: 'RepositoryMissing',
  /** Another repository (another unique ID) stands where the verified one was. */
  RepositoryChanged: 'RepositoryChanged',
  /** The user asked (kopia.io/reinitialize) to forget the known unique ID, once. */
  RepositoryReinitialized: 'RepositoryReinitialized',
  // the mover permission model
  PrivilegedMoverNotAllowed: 'PrivilegedMoverNotAllowed',
  // tenancy
  AllNamespaces: 'AllNamespaces',
  NamespacesListed: 'NamespacesListed',
  NamespaceSelector: 'NamespaceSelector',
  // consumers of a repository
  RepositoryNotFound: 'RepositoryNotFound',
  RepositoryNotAllowed: 'RepositoryNotAllowed',
  /** A Maintenance outside the operator's namespace names a ClusterRepository (the platform maintains those). */
  MaintenanceNotAllowed: 'MaintenanceNotAllowed',
  /** A ClusterRepository's hostname recorded by Backups of another namespace than its namesake: no one's until identityHostnames decides. */
  HostnamesContested: 'HostnamesContested',
  /** A copy of a ClusterRepository's keys left a namespace that is no longer allowed or no longer uses it. */
  SecretCopyDeleted: 'SecretCopyDeleted',
  RepositoryNotReady: 'RepositoryNotReady',
  /** On a ClusterRepository the identity (its hostname) belongs to another namespace: nothing runs under it. */
  IdentityNotAllowed: 'IdentityNotAllowed',
  SourceNotFound: 'SourceNotFound',
  Ready: 'Ready',
  // schedules
  /** BackupSchedule Ready=True: runs are made at the cron times. */
  Scheduling: 'Scheduling',
  /** BackupSchedule Ready=True while spec.suspend is set: healthy, making no runs. */
  Suspended: 'Suspended',
  InvalidSchedule: 'InvalidSchedule',
  InvalidTimeZone: 'InvalidTimeZone',
  BackupScheduled: 'BackupScheduled',
  /** A due run was not made: a Backup of the schedule was still Pending or Running (concurrencyPolicy Forbid). */
  ConcurrentRunSkipped: 'ConcurrentRunSkipped',
  /** A due run was not made: it came later than startingDeadlineSeconds allows. */
  StartingDeadlineMissed: 'StartingDeadlineMissed',
  /** Active Backups of the schedule deleted for a new run (concurrencyPolicy Replace). */
  BackupsReplaced: 'BackupsReplaced',
  FailedBackupsPruned: 'FailedBackupsPruned',
  BackupsFailing: 'BackupsFailing',
  BackupsRecovered: 'BackupsRecovered',
  // backups
  ConfigNotFound: 'ConfigNotFound',
  ConfigNotReady: 'ConfigNotReady',
  /** Another backup of the same identity is running: kopia must never snapshot one source twice at once. */
  IdentityBusy: 'IdentityBusy',
  /** The temporary copy of the claim (VolumeSnapshot or clone) is being made. */
  PreparingSource: 'PreparingSource',
  SourceCopyFailed: 'SourceCopyFailed',
  /** A ClusterRepository on a claim can be reached only from the claim's namespace. */
  RepositoryNotUsable: 'RepositoryNotUsable',
  BackupStarted: 'BackupStarted',
  BackupRunning: 'BackupRunning',
  BackupSucceeded: 'BackupSucceeded',
  /** The snapshot was saved, but kopia could not read some files. */
  FileErrors: 'FileErrors',
  BackupFailed: 'BackupFailed',
  ExpireLimitExceeded: 'ExpireLimitExceeded',
  /** A Backup mirroring a snapshot found in the repository (origin Discovered). */
  SnapshotMirrored: 'SnapshotMirrored',
  /** Two complete listings lacked the Backup's snapshot: kopia no longer keeps it, and the object is being removed. */
  SnapshotGone: 'SnapshotGone',
  CatalogSynced: 'CatalogSynced',
  /** The intake refused requests for a listing's upload (no token, a second request, too large, not a catalog). */
  CatalogUploadRefused: 'CatalogUploadRefused',
  // restores
  BackupNotFound: 'BackupNotFound',
  BackupNotReady: 'BackupNotReady',
  /** The Restore waits for a listing of the repository made after it was created: kopia's answer now. */
  ListingSnapshots: 'ListingSnapshots',
  NoListing: 'NoListing',
  Resolved: 'Resolved',
  /** Kopia answered and no snapshot exists; onMissingSnapshot: Continue — an empty volume. */
  NoSnapshotEmptyVolume: 'NoSnapshotEmptyVolume',
  /** Kopia answered and no snapshot exists; onMissingSnapshot: Fail. */
  SnapshotMissing: 'SnapshotMissing',
  /** The snapshot asked for is not listed while the identity has others (or it was named by id). */
  SnapshotNotFound: 'SnapshotNotFound',
  /** More claims wait for an answer than a Restore's status holds. */
  TooManyClaims: 'TooManyClaims',
  WaitingForClaim: 'WaitingForClaim',
  ClaimNotFound: 'ClaimNotFound',
  ClaimInUse: 'ClaimInUse',
  Restoring: 'Restoring',
  RestoreCompleted: 'RestoreCompleted',
  RestoreFailed: 'RestoreFailed',
  /** Files came back, but owned by the mover's user (a non-root mover cannot chown). */
  OwnersNotRestored: 'OwnersNotRestored',
  // snapshot deletion and the mass-deletion breaker
  DeletionsPaused: 'DeletionsPaused',
  DeletionsAllowed: 'DeletionsAllowed',
  SnapshotDeletionFailed: 'SnapshotDeletionFailed',
  /** A Backup went away without its snapshot being deleted (never lose data when in doubt). */
  SnapshotKept: 'SnapshotKept',
  // maintenance
  /** Another Maintenance already maintains the repository. */
  Conflict: 'Conflict',
  MaintenanceRunning: 'MaintenanceRunning',
  MaintenanceStarted: 'MaintenanceStarted',
  MaintenanceSucceeded: 'MaintenanceSucceeded',
  MaintenanceFailed: 'MaintenanceFailed',
  /** kopia reports another maintenance owner and takeoverPolicy is Never. */
  OwnedByOther: 'OwnedByOther',
  /** Maintenance was taken over from another owner (takeoverPolicy Force). */
  MaintenanceTakenOver: 'MaintenanceTakenOver',
  /** The owner was set for the first time, or moved from the operator's own identity. */
  MaintenanceOwnerSet: 'MaintenanceOwnerSet',
  MaintenanceStale: 'MaintenanceStale',
  MaintenanceCurrent: 'MaintenanceCurrent',
  TooManyIndexBlobs: 'TooManyIndexBlobs',
  IndexBlobsWithinLimit: 'IndexBlobsWithinLimit',
  DefaultMaintenanceCreated: 'DefaultMaintenanceCreated',
  DefaultMaintenanceRemoved: 'DefaultMaintenanceRemoved',
} as const;

export type ReasonName = (typeof Reason)[keyof typeof Reason];

export const ConditionType = {
  Ready: 'Ready',
  /** kstatus: True while the operator works toward the spec (verifying, running, waiting for what comes by itself). */
  Reconciling: 'Reconciling',
  /** kstatus: True when it will not get better without a change (a failure, a bad spec, a missing or refused reference). */
  Stalled: 'Stalled',
  Connected: 'Connected',
  Tenancy: 'Tenancy',
  /** Backup: the snapshot misses files kopia could not read. */
  FileErrors: 'FileErrors',
  /** Maintenance: the second full cron time (plus jitter) after the last successful full run has passed. */
  Stale: 'Stale',
  /** Maintenance: more index blobs than spec.indexBlobWarningThreshold after the last run. */
  TooManyIndexBlobs: 'TooManyIndexBlobs',
  /** Repository: snapshot deletions or retention expiries wait behind the mass-deletion breaker. */
  DeletionsPaused: 'DeletionsPaused',
} as const;
