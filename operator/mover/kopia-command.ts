// Builds kopia command lines. Pure: no I/O, no secrets (kopia reads those from the
// environment: KOPIA_PASSWORD, AWS_*, B2_*, AZURE_STORAGE_*, KOPIA_WEBDAV_*), so an argv
// can be logged whole.
import type { Backend, RepositoryCache, RepositoryCreate } from '../../generated/types.js';
import { MOVER_PATHS, SECRET_FILES } from './mover-contract.js';

const secretFile = (rel: string) => `${MOVER_PATHS.secrets}/${rel}`;

/** kopia's global flags for every command: the scratch config and logs. */
export function globalFlags(): string[] {
  return [`--config-file=${MOVER_PATHS.config}`, `--log-dir=${MOVER_PATHS.logs}`];
}

function withTrailingSlash(prefix: string | undefined): string | undefined {
  if (!prefix) return undefined;
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

function joinPath(base: string, sub: string | undefined): string {
  const s = (sub ?? '/').replace(/^\/+/, '');
  return s ? `${base}/${s}` : base;
}

/** The storage subcommand and its flags, e.g. ["s3", "--bucket=b", ...]. */
export function storageArgs(backend: Backend): string[] {
  const opt = (flag: string, value: string | number | undefined) => (value === undefined || value === '' ? [] : [`--${flag}=${value}`]);
  if (backend.filesystem) return ['filesystem', `--path=${joinPath(MOVER_PATHS.repository, backend.filesystem.path)}`];
  if (backend.s3) {
    const s3 = backend.s3;
    return [
      's3',
      `--bucket=${s3.bucket}`,
      ...opt('prefix', withTrailingSlash(s3.prefix)),
      ...opt('endpoint', s3.endpoint),
      ...opt('region', s3.region),
      ...(s3.tls?.disabled ? ['--disable-tls'] : []),
      ...(s3.tls?.insecureSkipVerify ? ['--disable-tls-verification'] : []),
      ...(s3.tls?.caBundleSecretRef ? [`--root-ca-pem-path=${secretFile(SECRET_FILES.caBundle)}`] : []),
    ];
  }
  if (backend.b2) return ['b2', `--bucket=${backend.b2.bucket}`, ...opt('prefix', withTrailingSlash(backend.b2.prefix))];
  if (backend.azure) {
    return [
      'azure',
      `--container=${backend.azure.container}`,
      ...opt('prefix', withTrailingSlash(backend.azure.prefix)),
      ...opt('storage-domain', backend.azure.storageDomain),
    ];
  }
  if (backend.gcs) {
    return [
      'gcs',
      `--bucket=${backend.gcs.bucket}`,
      ...opt('prefix', withTrailingSlash(backend.gcs.prefix)),
      `--credentials-file=${secretFile(SECRET_FILES.gcsCredentials)}`,
    ];
  }
  if (backend.sftp) {
    const s = backend.sftp;
    return [
      'sftp',
      `--host=${s.host}`,
      `--port=${s.port ?? 22}`,
      `--username=${s.username}`,
      `--path=${s.path}`,
      `--known-hosts=${secretFile(SECRET_FILES.knownHosts)}`,
      ...(s.credentialsSecretRef ? [`--keyfile=${secretFile(SECRET_FILES.sftpKey)}`] : []),
    ];
  }
  if (backend.webdav) return ['webdav', `--url=${backend.webdav.url}`];
  if (backend.rclone) {
    return ['rclone', `--remote-path=${backend.rclone.remotePath}`, `--rclone-args=--config=${secretFile(SECRET_FILES.rcloneConfig)}`];
  }
  throw new Error('no backend is set');
}

export interface ConnectOptions {
  username: string;
  hostname: string;
  cache?: RepositoryCache;
}

function cacheFlags(cache: RepositoryCache | undefined): string[] {
  return [
    `--cache-directory=${MOVER_PATHS.cache}`,
    ...(cache?.contentCacheSizeMB !== undefined ? [`--content-cache-size-mb=${cache.contentCacheSizeMB}`] : []),
    ...(cache?.metadataCacheSizeMB !== undefined ? [`--metadata-cache-size-mb=${cache.metadataCacheSizeMB}`] : []),
  ];
}

/** What connect and create share: pinned identity, scratch config, password never persisted. */
function sessionFlags(opts: ConnectOptions): string[] {
  return [
    ...globalFlags(),
    `--override-username=${opts.username}`,
    `--override-hostname=${opts.hostname}`,
    '--no-persist-credentials',
    '--no-check-for-updates',
    ...cacheFlags(opts.cache),
  ];
}

/** `kopia repository connect`. */
export function connectCommand(backend: Backend, opts: ConnectOptions): string[] {
  return ['repository', 'connect', ...storageArgs(backend), ...sessionFlags(opts)];
}

/** `kopia repository create`, with the format options the user opted into. */
export function createCommand(backend: Backend, create: RepositoryCreate, opts: ConnectOptions): string[] {
  return [
    'repository',
    'create',
    ...storageArgs(backend),
    ...sessionFlags(opts),
    ...(create.encryption ? [`--encryption=${create.encryption}`] : []),
    ...(create.hash ? [`--block-hash=${create.hash}`] : []),
    ...(create.splitter ? [`--object-splitter=${create.splitter}`] : []),
  ];
}

export function statusCommand(): string[] {
  return ['repository', 'status', '--json', ...globalFlags()];
}

export function snapshotCountCommand(): string[] {
  return ['snapshot', 'list', '--all', '--json', ...globalFlags()];
}
