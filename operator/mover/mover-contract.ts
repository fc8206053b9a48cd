// What the operator tells a mover Job and what the mover answers. The request travels in
// the KOPIA_MOVER_REQUEST environment variable and holds no secret: secrets arrive as
// environment variables and files from Secret references. The answer is the container's
// termination message (at most 4 KiB of JSON).
import type { Backend, Identity, RepositoryCache, RepositoryCreate, Retention, SnapshotPolicy } from '../../generated/types.js';
import { posix } from 'node:path';
import { redactSecrets } from '../runtime/logger.js';
import { REASON_CLASS } from '../reason-classes.js';

export const MOVER_REQUEST_ENV = 'KOPIA_MOVER_REQUEST';
export const TERMINATION_MESSAGE_LIMIT = 4096;

/**
 * Fixed paths inside every mover container. `data` is where a backup's source claim and a
 * restore's target claim are mounted, whatever the identity's path: no tool or code of the
 * image lives under it, so a tenant's files can never stand in for the mover's own.
 */
export const MOVER_PATHS = {
  repository: '/repository',
  secrets: '/etc/kopia-secrets',
  scratch: '/kopia',
  config: '/kopia/config/repository.config',
  logs: '/kopia/logs',
  cache: '/cache',
  // The claim sits one level below the writable scratch volume, never at the root: kopia's
  // restore ends each directory by removing `<dir>.kopia-entry` beside it, and on a
  // read-only root filesystem that unlink fails (EROFS) even when nothing is there.
  data: '/kopia/data',
} as const;

/** Files a backend needs, mounted from Secrets under MOVER_PATHS.secrets. */
export const SECRET_FILES = {
  caBundle: 'ca-bundle/ca.pem',
  knownHosts: 'sftp/known_hosts',
  sftpKey: 'sftp/id_key',
  gcsCredentials: 'gcs/credentials.json',
  rcloneConfig: 'rclone/rclone.conf',
} as const;

/**
 * An identity path as kopia files it: absolute and cleaned (kopia makes `snapshot create
 * <path>` canonical, so "/data/" and "/data" are one source). The one place both the
 * operator and the mover make paths canonical, so they always name the same source.
 */
export function canonicalPath(path: string): string {
  if (!path.startsWith('/')) throw new Error(`identity path must be absolute: ${path}`);
  return posix.resolve(path);
}

export function canonicalIdentity<T extends { path: string }>(identity: T): T {
  return { ...identity, path: canonicalPath(identity.path) };
}

export type KopiaErrorClass = 'NotInitialized' | 'WrongPassword' | 'Unreachable' | 'Other';
/**
 * Failures the mover itself decides: the repository verified before (its unique ID is
 * known) is gone from its storage, or another repository stands in its place.
 */
export type RepositoryIdentityError = 'RepositoryMissing' | 'RepositoryChanged';

export interface MoverRepository {
  backend: Backend;
  create?: RepositoryCreate;
  cache?: RepositoryCache;
  /**
   * The unique ID this repository was verified with before. When set, every operation
   * checks it after connecting, and "not initialized" is an error: nothing is created.
   */
  expectedUniqueID?: string;
}

export interface VerifyRequest {
  operation: 'verify';
  repository: MoverRepository;
  identity: Required<Pick<Identity, 'username' | 'hostname'>>;
}

/** Where a mover sends what does not fit a termination message: the operator's intake. */
export interface CatalogUpload {
  /** http://<operator pod IP>:<port>/v1/catalog/<upload id>; the leader that started the Job listens there. */
  url: string;
}

/**
 * The environment variable holding the upload's token: random, made by the operator for
 * this one upload, delivered from a Secret the Job owns (never a literal in the Job spec),
 * sent as `authorization: Bearer <token>`. Nothing the intake checks comes from the
 * repository password (ADR 0005).
 */
export const CATALOG_TOKEN_ENV = 'KOPIA_CATALOG_TOKEN';
/** The key of the upload token in its Secret. */
export const CATALOG_TOKEN_KEY = 'token';

/** One snapshot as the catalog mirror needs it (kopia's manifest, trimmed). */
export interface CatalogSnapshot {
  id: string;
  source: { username: string; hostname: string; path: string };
  startTime: string;
  endTime?: string;
  /** Set for checkpoints and interrupted snapshots: never offered as restorable. */
  incompleteReason?: string;
  rootID?: string;
  stats: { totalBytes?: number; files?: number; dirs?: number; errors?: number; ignoredErrors?: number };
  tags?: Record<string, string>;
  retentionReasons?: string[];
  pins?: string[];
}

/** The Kopia-native policy set on the source before every snapshot. */
export interface BackupPolicy {
  retention?: Retention;
  compression?: SnapshotPolicy['compression'];
  ignore?: string[];
  oneFileSystem?: boolean;
  ignoreCacheDirs?: boolean;
}

export interface BackupRequest {
  operation: 'backup';
  repository: MoverRepository;
  /** The pinned source identity; the data is mounted at MOVER_PATHS.data and filed under identity.path. */
  identity: Required<Identity>;
  policy: BackupPolicy;
  tags: Record<string, string>;
  pin?: boolean;
  /**
   * The share of the mass-deletion budget reserved for this backup: when the retention
   * policy would expire more snapshots than this at this backup, nothing is snapshotted or
   * expired (the failure says how many it would expire).
   */
  expireLimit?: number;
}

export interface CatalogRequest {
  operation: 'catalog';
  repository: MoverRepository;
  identity: Required<Pick<Identity, 'username' | 'hostname'>>;
  upload: CatalogUpload;
}

/**
 * At most this many ids in pin + unpin of one edit: kopia saves a snapshot whose pins change
 * under a new ID, and every such change is reported (edited.newIDs) in the 4 KiB message.
 */
export const EDIT_PIN_LIMIT = 40;

/** Deletions and pin changes for one repository, in one kopia session (batched). */
export interface EditRequest {
  operation: 'edit';
  repository: MoverRepository;
  identity: Required<Pick<Identity, 'username' | 'hostname'>>;
  delete: string[];
  /** Snapshot ids to pin and unpin (the operator's pin); at most EDIT_PIN_LIMIT together. */
  pin: string[];
  unpin: string[];
}

/** Restores one pinned snapshot into the volume mounted at MOVER_PATHS.data. */
export interface RestoreRequest {
  operation: 'restore';
  repository: MoverRepository;
  /** The connection identity (not the snapshot's source). */
  identity: Required<Pick<Identity, 'username' | 'hostname'>>;
  snapshotID: string;
  /**
   * The pinned snapshot's start time and root object: a pin change saves the manifest
   * under a new id, and this finds the same snapshot under it.
   */
  sameAs?: { startTime: string; rootID: string };
  options: {
    /** Remove files in the target that the snapshot does not have. */
    deleteExtra: boolean;
    parallel: number;
    /**
     * Errors setting modes, owners or times do not fail the restore. kopia 0.23 drops them
     * without counting them, so restored.errors cannot include them.
     */
    ignorePermissionErrors: boolean;
    /** Give files back their recorded owners (needs a mover with CHOWN/FOWNER). */
    restoreOwners: boolean;
  };
}

/**
 * One maintenance run (quick or full) under one owner. kopia lets only the repository's
 * maintenance owner (user@host) run maintenance, so the mover connects as the owner.
 */
export interface MaintenanceRequest {
  operation: 'maintenance';
  repository: MoverRepository;
  /** The owner identity; the mover connects as it. */
  identity: Required<Pick<Identity, 'username' | 'hostname'>>;
  mode: 'quick' | 'full';
  /** Another owner holds maintenance: take it over (takeoverPolicy Force) instead of failing with OwnedByOther. */
  takeover: boolean;
  /**
   * Owners (user@host) the operator itself leaves behind, such as the verify identity that
   * created the repository: they are replaced by identity without counting as a takeover.
   */
  adoptableOwners: string[];
}

export type MoverRequest = VerifyRequest | BackupRequest | CatalogRequest | EditRequest | RestoreRequest | MaintenanceRequest;

export interface RepositoryFacts {
  uniqueID: string;
  format: { formatVersion?: number; hash?: string; encryption?: string; splitter?: string; ecc?: string };
  snapshotCount: number;
}

export interface MoverSuccess {
  ok: true;
  operation: MoverRequest['operation'];
  created?: boolean;
  repository?: RepositoryFacts;
  /** backup: the snapshot saved (also when kopia reported file errors after saving it). */
  snapshot?: Omit<CatalogSnapshot, 'source' | 'tags' | 'pins'>;
  /** backup: files kopia could not read; the snapshot exists but is not complete. */
  fileErrors?: { count: number; examples: string[] };
  /** backup: snapshots of the source that retention expired when this one was saved. */
  expired?: number;
  /** backup: who the mover ran as (also recorded as snapshot tags). */
  mover?: { uid: number; gid: number };
  /** catalog: what was uploaded. */
  catalog?: { snapshots: number; sources: number };
  /**
   * edit: snapshots deleted now, and those already gone before; pins added and removed now
   * (a snapshot already in the wanted state, or gone, is not counted). kopia rewrites a
   * snapshot whose pins change under a new ID: newIDs maps each old id to its new one.
   */
  edited?: {
    deleted: number;
    alreadyGone: number;
    pinned: number;
    unpinned: number;
    newIDs?: Record<string, string>;
    /** Deleted, but still listed when the mover last looked (undone by a concurrent manifest compaction): not gone. */
    stillPresent?: string[];
  };
  /** restore: what was written, and whether files got their recorded owners back. */
  restored?: {
    files: number;
    dirs: number;
    bytes: number;
    errors: number;
    ownersRestored: boolean;
    /** The id restored when it was not the one asked for (the same snapshot, saved again by a pin change). */
    snapshotID?: string;
  };
  /** maintenance: the run, as kopia recorded it. */
  maintenance?: MaintenanceOutcome;
}

export interface MaintenanceOutcome {
  mode: 'quick' | 'full';
  /** The owner after the run (the request's identity). */
  owner: string;
  /** Set when ownership changed in this run: who held it before (adopted or taken over). */
  previousOwner?: string;
  /** true when previousOwner was another owner, taken over on request (not one of adoptableOwners). */
  tookOver: boolean;
  startTime: string;
  endTime: string;
  /** Bytes of blobs deleted, where kopia reports them (full runs). */
  reclaimedBytes?: number;
  /** Index blobs in the repository after the run. */
  indexBlobs: number;
}

/**
 * Failures the mover decides beside kopia's own classes. SnapshotNotFound: a restore's
 * snapshot id names no snapshot in the repository (retrying cannot bring it back).
 * OwnedByOther: maintenance belongs to another owner and takeover was not asked for;
 * nothing was run or changed.
 */
export type MoverErrorClass = 'ExpireLimitExceeded' | 'UploadFailed' | 'SnapshotNotFound' | 'OwnedByOther';

export interface MoverFailure {
  ok: false;
  operation: MoverRequest['operation'] | 'unknown';
  errorClass: KopiaErrorClass | RepositoryIdentityError | MoverErrorClass | 'InvalidRequest';
  message: string;
  /** ExpireLimitExceeded: how many snapshots the retention policy would have expired. */
  wouldExpire?: number;
  /**
   * OwnedByOther: who owns maintenance, when that owner last ran it (any kind, as the
   * repository records it; absent if never), and the index blob count now.
   */
  maintenanceOwner?: { owner: string; lastRunTime?: string; indexBlobs?: number };
}

export type MoverResult = MoverSuccess | MoverFailure;

/** The result as a termination message: JSON, at most 4 KiB, secrets redacted. */
export function terminationMessage(result: MoverResult, secretValues: string[]): string {
  const text = redactSecrets(JSON.stringify(result), secretValues);
  if (text.length <= TERMINATION_MESSAGE_LIMIT) return text;
  if (!result.ok) return redactSecrets(JSON.stringify({ ...result, message: result.message.slice(0, 1024) }), secretValues);
  return JSON.stringify({ ok: true, operation: result.operation, truncated: true });
}

/** Parses a termination message; anything else (a crash, a kill) is reported as Other. */
export function parseMoverResult(message: string | undefined): MoverResult {
  if (message) {
    try {
      const parsed = JSON.parse(message) as MoverResult;
      if (typeof parsed === 'object' && parsed !== null && typeof parsed.ok === 'boolean') {
        // Counts feed the shared deletion ledger and status: a negative one is no mover's answer.
        if (hasNegativeNumber(parsed))
          return { ok: false, operation: 'unknown', errorClass: 'Other', message: 'the mover result holds a negative count: not taken' };
        // The error class becomes a condition reason and a metric label: only the classes movers write.
        if (!parsed.ok && !Object.hasOwn(REASON_CLASS, parsed.errorClass)) return { ...parsed, errorClass: 'Other' };
        return parsed;
      }
    } catch {
      // not our JSON: fall through with the raw text
    }
  }
  const firstLine = (message ?? '').split('\n').find((l) => l.trim()) ?? 'the mover ended without a result';
  return { ok: false, operation: 'unknown', errorClass: 'Other', message: firstLine.slice(0, 512) };
}

function hasNegativeNumber(value: unknown): boolean {
  if (typeof value === 'number') return !Number.isFinite(value) || value < 0;
  if (Array.isArray(value)) return value.some(hasNegativeNumber);
  if (value && typeof value === 'object') return Object.values(value).some(hasNegativeNumber);
  return false;
}
