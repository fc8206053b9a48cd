// Runs the real mover the way a Job container does, without a cluster: in a private mount
// namespace with its scratch, cache, repository and secret files bind-mounted at the fixed
// paths, secrets in the environment, the request in KOPIA_MOVER_REQUEST.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  MOVER_PATHS,
  MOVER_REQUEST_ENV,
  parseMoverResult,
  type MoverRequest,
  type MoverResult,
} from '../../operator/mover/mover-contract.js';
import { moverEntrypoint, repoRoot } from './paths.js';

/** Where a non-root run finds kopia and the mover's code, whatever the permissions above them. */
const TOOLS_DIR = '/run/kopia-mover-test/bin';
const IMAGE_DIR = '/run/kopia-mover-test/image';

export interface MoverRun {
  code: number;
  result: MoverResult;
  log: string;
  argv: string[];
}

export interface MoverRunOptions {
  kopiaBinDir: string;
  /** Host directory mounted at /repository (filesystem backend). */
  repositoryDir?: string;
  /** Files under /etc/kopia-secrets, by relative path. */
  secretFiles?: Record<string, string>;
  /** Secret environment (KOPIA_PASSWORD, AWS_*, ...). */
  env: Record<string, string>;
  /** Keep kopia's cache between runs by passing the same directory. */
  cacheDir?: string;
  /** More host directories, by container path: e.g. the data to back up at identity.path. */
  mounts?: Record<string, string>;
  /**
   * Run as this user, as a Job with securityContext.runAsUser does (setpriv, as the node
   * agent runs pods). The mover's own writable paths are handed to it; the repository and
   * data directories are the caller's to prepare.
   */
  runAs?: { uid: number; gid: number };
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), uid, gid);
}

export async function runMover(request: MoverRequest, opts: MoverRunOptions): Promise<MoverRun> {
  const work = mkdtempSync(join(tmpdir(), 'mover-run-'));
  const scratch = join(work, 'scratch');
  const cache = opts.cacheDir ?? join(work, 'cache');
  const secrets = join(work, 'secrets');
  const termination = join(work, 'termination-log');
  for (const d of [scratch, cache, secrets]) mkdirSync(d, { recursive: true });
  writeFileSync(termination, '');
  for (const [rel, content] of Object.entries(opts.secretFiles ?? {})) {
    mkdirSync(dirname(join(secrets, rel)), { recursive: true });
    writeFileSync(join(secrets, rel), content, { mode: 0o600 });
  }
  const mounts: { src: string; dst: string; file?: boolean; readOnly?: boolean }[] = [
    { src: scratch, dst: MOVER_PATHS.scratch },
    { src: cache, dst: MOVER_PATHS.cache },
    { src: secrets, dst: MOVER_PATHS.secrets },
    { src: termination, dst: '/dev/termination-log', file: true },
  ];
  if (opts.repositoryDir) mounts.push({ src: opts.repositoryDir, dst: MOVER_PATHS.repository });
  for (const [dst, src] of Object.entries(opts.mounts ?? {})) mounts.push({ src, dst });
  let argv = moverEntrypoint();
  let path = `${opts.kopiaBinDir}:/usr/bin:/bin`;
  if (opts.runAs) {
    const { uid, gid } = opts.runAs;
    for (const d of [scratch, cache, secrets, termination]) chownTree(d, uid, gid);
    // The kopia cache and the checkout may sit below directories only root can enter.
    mounts.push({ src: opts.kopiaBinDir, dst: TOOLS_DIR, readOnly: true }, { src: repoRoot, dst: IMAGE_DIR, readOnly: true });
    argv = moverEntrypoint(IMAGE_DIR);
    path = `${TOOLS_DIR}:/usr/bin:/bin`;
  }
  const script = [
    'set -e',
    ...mounts.flatMap(({ src, dst, file, readOnly }) => [
      `[ -e "${dst}" ] || ${file ? 'touch' : 'mkdir -p'} "${dst}"`,
      `mount --bind "${src}" "${dst}"`,
      ...(readOnly ? [`mount -o remount,bind,ro "${dst}"`] : []),
    ]),
    opts.runAs ? `exec setpriv --reuid ${opts.runAs.uid} --regid ${opts.runAs.gid} --clear-groups -- "$@"` : 'exec "$@"',
  ].join('\n');
  chmodSync(work, 0o755);
  const env = { PATH: path, HOME: '/tmp', [MOVER_REQUEST_ENV]: JSON.stringify(request), ...opts.env };
  return new Promise((resolve) => {
    const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'mover', ...argv], {
      // A container starts in its image's directory, never the caller's: the tests may run
      // from a checkout the mover's uid cannot enter (esbuild, under tsx, spawns in its cwd).
      cwd: '/',
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (c) => (log += c));
    child.stderr.on('data', (c) => (log += c));
    child.on('close', (code) => {
      const message = readFileSync(termination, 'utf8');
      rmSync(work, { recursive: true, force: true });
      resolve({ code: code ?? 1, result: parseMoverResult(message), log, argv });
    });
  });
}
