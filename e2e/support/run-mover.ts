// Runs the real mover the way a Job container does, without a cluster: in a private mount
// namespace with its scratch, cache, repository and secret files bind-mounted at the fixed
// paths, secrets in the environment, the request in KOPIA_MOVER_REQUEST.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  MOVER_PATHS,
  MOVER_REQUEST_ENV,
  parseMoverResult,
  type MoverRequest,
  type MoverResult,
} from '../../operator/mover/mover-contract.js';
import { moverEntrypoint } from './paths.js';

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
  const mounts: [string, string][] = [
    [scratch, MOVER_PATHS.scratch],
    [cache, MOVER_PATHS.cache],
    [secrets, MOVER_PATHS.secrets],
    [termination, '/dev/termination-log'],
  ];
  if (opts.repositoryDir) mounts.push([opts.repositoryDir, MOVER_PATHS.repository]);
  const script = [
    'set -e',
    ...mounts.flatMap(([src, dst], i) => [
      `[ -e "${dst}" ] || ${i === 3 ? 'touch' : 'mkdir -p'} "${dst}"`,
      `mount --bind "${src}" "${dst}"`,
    ]),
    'exec "$@"',
  ].join('\n');
  const argv = moverEntrypoint();
  chmodSync(work, 0o755);
  const env = { PATH: `${opts.kopiaBinDir}:/usr/bin:/bin`, HOME: '/tmp', [MOVER_REQUEST_ENV]: JSON.stringify(request), ...opts.env };
  return new Promise((resolve) => {
    const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'mover', ...argv], {
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
