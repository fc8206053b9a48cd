// What the operator tells a mover Job and what the mover answers. The request travels in
// the KOPIA_MOVER_REQUEST environment variable and holds no secret: secrets arrive as
// environment variables and files from Secret references. The answer is the container's
// termination message (at most 4 KiB of JSON).
import type { Backend, Identity, RepositoryCache, RepositoryCreate } from '../../generated/types.js';
import { redactSecrets } from '../runtime/logger.js';

export const MOVER_REQUEST_ENV = 'KOPIA_MOVER_REQUEST';
export const TERMINATION_MESSAGE_LIMIT = 4096;

/** Fixed paths inside every mover container. */
export const MOVER_PATHS = {
  repository: '/repository',
  secrets: '/etc/kopia-secrets',
  scratch: '/kopia',
  config: '/kopia/config/repository.config',
  logs: '/kopia/logs',
  cache: '/cache',
  data: '/data',
} as const;

/** Files a backend needs, mounted from Secrets under MOVER_PATHS.secrets. */
export const SECRET_FILES = {
  caBundle: 'ca-bundle/ca.pem',
  knownHosts: 'sftp/known_hosts',
  sftpKey: 'sftp/id_key',
  gcsCredentials: 'gcs/credentials.json',
  rcloneConfig: 'rclone/rclone.conf',
} as const;

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

export type MoverRequest = VerifyRequest;

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
}

export interface MoverFailure {
  ok: false;
  operation: MoverRequest['operation'] | 'unknown';
  errorClass: KopiaErrorClass | RepositoryIdentityError | 'InvalidRequest';
  message: string;
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
      if (typeof parsed === 'object' && parsed !== null && typeof parsed.ok === 'boolean') return parsed;
    } catch {
      // not our JSON: fall through with the raw text
    }
  }
  const firstLine = (message ?? '').split('\n').find((l) => l.trim()) ?? 'the mover ended without a result';
  return { ok: false, operation: 'unknown', errorClass: 'Other', message: firstLine.slice(0, 512) };
}
