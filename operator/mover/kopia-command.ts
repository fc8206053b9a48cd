// Builds kopia command lines. Pure: no I/O, no secrets (kopia reads those from the
// environment: KOPIA_PASSWORD, AWS_*, B2_*, AZURE_STORAGE_*, KOPIA_WEBDAV_*), so an argv
// can be logged whole.
import type { Backend, RepositoryCache, RepositoryCreate } from '../../generated/types.js';
import type { KopiaPolicy, KopiaRetention } from './kopia-json.js';
import { canonicalPath, MOVER_PATHS, SECRET_FILES, type BackupPolicy } from './mover-contract.js';

const secretFile = (rel: string) => `${MOVER_PATHS.secrets}/${rel}`;

/** kopia's global flags for every command: the scratch config and logs. */
export function globalFlags(): string[] {
  return [`--config-file=${MOVER_PATHS.config}`, `--log-dir=${MOVER_PATHS.logs}`];
}

/**
 * Flags for commands that write to the repository. kopia runs automatic maintenance at the
 * end of every writer command when this client's user@host owns maintenance; the mover must
 * not (maintenance has one owner: the Maintenance kind). kopia 0.23 has no environment
 * variable for it, only the hidden global flag `--[no-]auto-maintenance` (cli/app.go).
 */
export function writerFlags(): string[] {
  return [...globalFlags(), '--no-auto-maintenance'];
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

/**
 * A source as kopia names it: `user@host:/path`. The path is made canonical as kopia does
 * for `snapshot create <path>` (absolute, cleaned); the user@host:path form is not cleaned by
 * kopia, so both must agree here.
 */
export function sourceOf(identity: { username: string; hostname: string; path: string }): string {
  return `${identity.username}@${identity.hostname}:${canonicalPath(identity.path)}`;
}

export { canonicalPath };

/** Every policy this client can see, keyed by target: read to learn what is defined on a source. */
export function policyExportCommand(): string[] {
  return ['policy', 'export', ...globalFlags()];
}

/** The effective policy of a source (its own merged over its parents'). */
export function policyShowCommand(source: string): string[] {
  return ['policy', 'show', source, '--json', ...globalFlags()];
}

const RETENTION_FLAGS: [keyof KopiaRetention & keyof NonNullable<BackupPolicy['retention']>, string][] = [
  ['keepLatest', 'keep-latest'],
  ['keepHourly', 'keep-hourly'],
  ['keepDaily', 'keep-daily'],
  ['keepWeekly', 'keep-weekly'],
  ['keepMonthly', 'keep-monthly'],
  ['keepAnnual', 'keep-annual'],
];

const flagValue = (v: number | boolean | string | undefined) => (v === undefined ? 'inherit' : String(v));

/**
 * The `policy set` flags that turn the policy defined on a source into the one requested;
 * [] when it already is. What the request leaves unset is reset to `inherit` (the parent
 * policies decide), so a field removed from the spec is removed from the policy.
 * The ignore list is replaced exactly with adds and removes in one call: kopia's
 * --clear-ignore ignores every --add-ignore given with it (applyPolicyStringList).
 * Identical snapshots are always saved: one backup is exactly one snapshot.
 */
export function policyChanges(wanted: BackupPolicy, defined: KopiaPolicy | undefined): string[] {
  const flags: string[] = [];
  for (const [field, flag] of RETENTION_FLAGS) {
    const want = wanted.retention?.[field];
    if (want !== defined?.retention?.[field]) flags.push(`--${flag}=${flagValue(want)}`);
  }
  if (defined?.retention?.ignoreIdenticalSnapshots !== false) flags.push('--ignore-identical-snapshots=false');
  if (wanted.compression !== defined?.compression?.compressorName) flags.push(`--compression=${flagValue(wanted.compression)}`);
  const want = new Set(wanted.ignore ?? []);
  const have = new Set(defined?.files?.ignore ?? []);
  for (const rule of want) if (!have.has(rule)) flags.push(`--add-ignore=${rule}`);
  for (const rule of have) if (!want.has(rule)) flags.push(`--remove-ignore=${rule}`);
  if (wanted.oneFileSystem !== defined?.files?.oneFileSystem) flags.push(`--one-file-system=${flagValue(wanted.oneFileSystem)}`);
  if (wanted.ignoreCacheDirs !== defined?.files?.ignoreCacheDirs) flags.push(`--ignore-cache-dirs=${flagValue(wanted.ignoreCacheDirs)}`);
  return flags;
}

export function policySetCommand(source: string, changes: string[]): string[] {
  return ['policy', 'set', source, ...changes, ...writerFlags()];
}

/** Puts back a policy exported before (the file holds `{"<source>": policy}`). */
export function policyImportCommand(source: string, file: string): string[] {
  return ['policy', 'import', source, `--from-file=${file}`, ...writerFlags()];
}

/** Removes the policy defined on a source (kopia exits 0 when there is none). */
export function policyDeleteCommand(source: string): string[] {
  return ['policy', 'delete', source, ...writerFlags()];
}

/**
 * The snapshots of one source, with kopia's retention reasons under the source's current
 * policy. kopia also lists snapshots of the path's parents: callers filter to the source.
 * Incomplete snapshots are included in --json output (`--incomplete` only affects text).
 */
export function snapshotListCommand(source: string): string[] {
  return ['snapshot', 'list', source, '--json', ...globalFlags()];
}

/**
 * Makes every later kopia call of this connection list the repository's index afresh (kopia
 * caches that listing for 30 s per connection, hiding other clients' writes). A writer's
 * flags: kopia 0.23 may run automatic maintenance after `cache set` otherwise.
 */
export function listCacheOffCommand(): string[] {
  return ['cache', 'set', '--max-list-cache-duration=0s', ...writerFlags()];
}

/** Every snapshot of every source, incomplete ones included. */
export function snapshotListAllCommand(): string[] {
  return ['snapshot', 'list', '--all', '--json', ...globalFlags()];
}

/** The pin the operator puts on snapshots it must keep. */
export const OPERATOR_PIN = 'kopia-operator';

/**
 * `snapshot create` of the data volume, filed as the pinned source. The volume is always
 * at MOVER_PATHS.data, whatever the identity's path: a tenant chooses that path, and a
 * claim mounted there could stand over the mover's own code or tools. kopia files the
 * snapshot, and looks up its policy (retention, ignore rules) and previous snapshots,
 * under --override-source instead of the path it reads.
 * A pin is given at creation (`--pin`), not with `snapshot pin` afterwards: kopia rewrites
 * a manifest under a new ID when its pins change, and the retention applied right after
 * saving must already see the pin.
 * `startTime`: the snapshot's recorded start (kopia's --start-time, whole seconds), so that
 * the retention kopia applies after saving it is the one the mover predicted for that time.
 */
export function snapshotCreateCommand(
  source: { username: string; hostname: string; path: string },
  tags: Record<string, string>,
  pin: boolean,
  startTime?: Date,
): string[] {
  for (const key of Object.keys(tags)) {
    // kopia splits `key:value` at the first colon and refuses an empty key.
    if (!key || key.includes(':')) throw new Error(`invalid tag key ${JSON.stringify(key)}: must be non-empty without ':'`);
  }
  return [
    'snapshot',
    'create',
    MOVER_PATHS.data,
    `--override-source=${sourceOf(source)}`,
    '--json',
    ...Object.entries(tags).map(([k, v]) => `--tags=${k}:${v}`),
    ...(pin ? [`--pin=${OPERATOR_PIN}`] : []),
    ...(startTime ? [`--start-time=${kopiaTimestamp(startTime)}`] : []),
    ...writerFlags(),
  ];
}

/** kopia's --start-time format (Go's "2006-01-02 15:04:05 MST"), in UTC. */
export function kopiaTimestamp(t: Date): string {
  return `${t.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** kopia's snapshot manifest ids are hex; anything else could be read as a flag or a root object id. */
export function isSnapshotID(id: string): boolean {
  return /^[0-9a-f]{8,64}$/.test(id);
}

function checkIDs(ids: string[]): void {
  if (ids.length === 0) throw new Error('no snapshot ids given');
  const bad = ids.find((id) => !isSnapshotID(id));
  if (bad !== undefined) throw new Error(`not a snapshot id: ${JSON.stringify(bad)}`);
}

/** One `snapshot delete` for many manifest ids; `--delete` makes it real (without it: a dry run). */
export function snapshotDeleteCommand(ids: string[]): string[] {
  checkIDs(ids);
  return ['snapshot', 'delete', ...ids, '--delete', ...writerFlags()];
}

/** Adds or removes the operator's pin on many snapshots in one call. */
export function snapshotPinCommand(ids: string[], change: 'add' | 'remove'): string[] {
  checkIDs(ids);
  return ['snapshot', 'pin', ...ids, `--${change}=${OPERATOR_PIN}`, ...writerFlags()];
}

export interface RestoreFlags {
  parallel: number;
  deleteExtra: boolean;
  ignorePermissionErrors: boolean;
  /** Leave owners as the mover makes them (kopia's --skip-owners). */
  skipOwners: boolean;
}

/**
 * `snapshot restore` of one snapshot manifest into the data volume. Every behaviour is
 * spelled out rather than left to kopia 0.23's defaults (overwrite-* true,
 * ignore-permission-errors true, parallel 8): what differs is overwritten, what is extra is
 * kept unless deleteExtra, and no error but those of setting modes, owners and times is
 * ignored. Files are flushed: a restore reported complete must survive a node crash.
 * A reader command: no automatic maintenance runs.
 */
export function snapshotRestoreCommand(id: string, flags: RestoreFlags): string[] {
  checkIDs([id]);
  if (!Number.isInteger(flags.parallel) || flags.parallel < 1) throw new Error(`parallel must be a positive integer: ${flags.parallel}`);
  const bool = (value: boolean, flag: string) => (value ? `--${flag}` : `--no-${flag}`);
  return [
    'snapshot',
    'restore',
    id,
    MOVER_PATHS.data,
    '--mode=local',
    '--overwrite-files',
    '--overwrite-directories',
    '--overwrite-symlinks',
    '--no-skip-existing',
    '--no-ignore-errors',
    '--flush-files',
    `--parallel=${flags.parallel}`,
    bool(flags.deleteExtra, 'delete-extra'),
    bool(flags.ignorePermissionErrors, 'ignore-permission-errors'),
    bool(flags.skipOwners, 'skip-owners'),
    '--no-progress',
    ...globalFlags(),
  ];
}

/**
 * `maintenance info --json`: the owner (user@host), the parameters and kopia's run history
 * (schedule.runs: per task, newest first, at most 50 each). A reader command.
 */
export function maintenanceInfoCommand(): string[] {
  return ['maintenance', 'info', '--json', ...globalFlags()];
}

/** kopia names a maintenance owner user@host (ClientOptions.UsernameAtHost). */
export function isMaintenanceOwner(owner: string): boolean {
  return /^[^@\s]+@[^@\s]+$/.test(owner);
}

/**
 * Makes owner the repository's maintenance owner. kopia 0.23 stores --owner as given, except
 * the word `me` (the connected user@host): the owner is always named, so nothing depends on
 * which identity this client happens to be connected as. kopia runs no automatic
 * maintenance after `maintenance` commands (direct write actions); the flag is passed anyway,
 * as on every writer.
 */
export function maintenanceSetOwnerCommand(owner: string): string[] {
  if (!isMaintenanceOwner(owner)) throw new Error(`not a maintenance owner (user@host): ${JSON.stringify(owner)}`);
  return ['maintenance', 'set', `--owner=${owner}`, ...writerFlags()];
}

/**
 * One manual maintenance run. A manual run ignores the schedule (quick and full run whenever
 * asked; only the owner may run them). The mode and the safety level are spelled out:
 * `--safety=none` would delete data other clients may still be writing, so it is never used.
 * With --safety=full a full run still holds back what is too young: contents unreferenced for
 * less than 24 h, and pack deletion within 1 h of a content rewrite (which a full run does
 * first), so data of snapshots deleted just before is reclaimed by later runs, not this one.
 */
export function maintenanceRunCommand(mode: 'quick' | 'full'): string[] {
  if (mode !== 'quick' && mode !== 'full') throw new Error(`unknown maintenance mode ${JSON.stringify(mode)}`);
  return ['maintenance', 'run', mode === 'full' ? '--full' : '--no-full', '--safety=full', ...writerFlags()];
}

/**
 * The active index blobs (`index list --json`, superseded ones left out): the ones every
 * client loads, and those kopia counts for its "too many index blobs" warning.
 */
export function indexListCommand(): string[] {
  return ['index', 'list', '--json', ...globalFlags()];
}
