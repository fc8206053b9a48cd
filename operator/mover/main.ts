// The mover: the entrypoint of every Job the operator runs. It drives the real kopia CLI
// and nothing else, reports a small JSON result through the termination message and exits
// non-zero on any error.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createLogger, redactSecrets } from '../runtime/logger.js';
import { classifyKopiaError } from './kopia-errors.js';
import { connectCommand, createCommand, snapshotCountCommand, statusCommand } from './kopia-command.js';
import {
  MOVER_PATHS,
  MOVER_REQUEST_ENV,
  terminationMessage,
  type MoverFailure,
  type MoverRequest,
  type MoverResult,
  type RepositoryFacts,
  type VerifyRequest,
} from './mover-contract.js';

const log = createLogger('mover');
const TERMINATION_LOG = process.env.KOPIA_MOVER_TERMINATION_LOG ?? '/dev/termination-log';
/** Values that must never reach a log line or the termination message. */
const SECRET_ENV = /PASSWORD|SECRET|TOKEN|KEY$|_KEY_ID$|ACCOUNT$/;
const secretValues = Object.entries(process.env)
  .filter(([k, v]) => SECRET_ENV.test(k) && v)
  .map(([, v]) => v!);

class KopiaFailure extends Error {
  constructor(readonly failure: MoverFailure) {
    super(failure.message);
  }
}

interface KopiaOutput {
  code: number;
  stdout: string;
  stderr: string;
}

function kopia(args: string[]): Promise<KopiaOutput> {
  log.info('kopia', { argv: args });
  return new Promise((resolve) => {
    const child = spawn('kopia', args, { env: { ...process.env, KOPIA_CHECK_FOR_UPDATES: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', (e) => resolve({ code: 127, stdout, stderr: `cannot run kopia: ${e.message}` }));
    child.on('close', (code) => {
      const clean = redactSecrets(stderr, secretValues);
      for (const line of clean.split('\n').filter(Boolean).slice(-20)) log.info('kopia output', { line });
      resolve({ code: code ?? 1, stdout, stderr: clean });
    });
  });
}

async function kopiaOrFail(operation: MoverRequest['operation'], args: string[]): Promise<string> {
  const out = await kopia(args);
  if (out.code !== 0) throw new KopiaFailure({ ok: false, operation, ...classifyKopiaError(out.stderr || out.stdout) });
  return out.stdout;
}

async function connect(req: VerifyRequest): Promise<boolean> {
  mkdirSync(dirname(MOVER_PATHS.config), { recursive: true });
  const opts = { ...req.identity, cache: req.repository.cache };
  const out = await kopia(connectCommand(req.repository.backend, opts));
  if (out.code === 0) return false;
  const failure = classifyKopiaError(out.stderr || out.stdout);
  // Create only when kopia said "not initialized" and the user opted in; never after any
  // other failure (a wrong password or an unreachable bucket must not become a new repository).
  if (failure.errorClass !== 'NotInitialized' || !req.repository.create?.enabled) {
    throw new KopiaFailure({ ok: false, operation: req.operation, ...failure });
  }
  log.info('repository not initialized and create.enabled is set: creating it');
  await kopiaOrFail(req.operation, createCommand(req.repository.backend, req.repository.create, opts));
  return true;
}

async function repositoryFacts(operation: MoverRequest['operation']): Promise<RepositoryFacts> {
  const status = JSON.parse(await kopiaOrFail(operation, statusCommand())) as {
    uniqueIDHex: string;
    contentFormat?: { version?: number; hash?: string; encryption?: string; ecc?: string };
    objectFormat?: { splitter?: string };
  };
  const snapshots = JSON.parse(await kopiaOrFail(operation, snapshotCountCommand())) as unknown[];
  return {
    uniqueID: status.uniqueIDHex,
    format: {
      formatVersion: status.contentFormat?.version,
      hash: status.contentFormat?.hash,
      encryption: status.contentFormat?.encryption,
      splitter: status.objectFormat?.splitter,
      ecc: status.contentFormat?.ecc || undefined,
    },
    snapshotCount: snapshots.length,
  };
}

async function verify(req: VerifyRequest): Promise<MoverResult> {
  const created = await connect(req);
  return { ok: true, operation: 'verify', created, repository: await repositoryFacts('verify') };
}

function parseRequest(): MoverRequest {
  const raw = process.env[MOVER_REQUEST_ENV];
  if (!raw)
    throw new KopiaFailure({ ok: false, operation: 'unknown', errorClass: 'InvalidRequest', message: `${MOVER_REQUEST_ENV} is not set` });
  try {
    return JSON.parse(raw) as MoverRequest;
  } catch (e) {
    throw new KopiaFailure({
      ok: false,
      operation: 'unknown',
      errorClass: 'InvalidRequest',
      message: `${MOVER_REQUEST_ENV} is not JSON: ${(e as Error).message}`,
    });
  }
}

async function main(): Promise<number> {
  let result: MoverResult;
  try {
    const req = parseRequest();
    log.info('mover starting', { operation: req.operation });
    switch (req.operation) {
      case 'verify':
        result = await verify(req);
        break;
      default:
        result = {
          ok: false,
          operation: 'unknown',
          errorClass: 'InvalidRequest',
          message: `unknown operation ${String((req as { operation: unknown }).operation)}`,
        };
    }
  } catch (e) {
    result =
      e instanceof KopiaFailure
        ? e.failure
        : { ok: false, operation: 'unknown', errorClass: 'Other', message: (e as Error).message.slice(0, 512) };
  }
  const message = terminationMessage(result, secretValues);
  try {
    writeFileSync(TERMINATION_LOG, message);
  } catch (e) {
    log.warn('cannot write the termination message', { error: (e as Error).message });
  }
  log.info('mover finished', { result: JSON.parse(message) });
  return result.ok ? 0 : 1;
}

main().then((code) => {
  process.exitCode = code;
});
