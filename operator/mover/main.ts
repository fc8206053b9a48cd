// The mover: the entrypoint of every Job the operator runs. It drives the real kopia CLI
// and nothing else, reports a small JSON result through the termination message and exits
// non-zero on any error.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createLogger, redactSecrets } from '../runtime/logger.js';
import { classifyKopiaError } from './kopia-errors.js';
import { secretEnvValues, secretFileValues } from './secret-values.js';
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
const secretValues = [...secretEnvValues(process.env), ...secretFileValues(MOVER_PATHS.secrets)];

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
  log.info('kopia', { argv: args.map((a) => redactSecrets(a, secretValues)) });
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

/** Connects (creating only where allowed) and checks the repository is the one expected. */
async function connect(req: VerifyRequest): Promise<{ created: boolean; status: KopiaRepositoryStatus }> {
  mkdirSync(dirname(MOVER_PATHS.config), { recursive: true });
  const opts = { ...req.identity, cache: req.repository.cache };
  const expected = req.repository.expectedUniqueID;
  const out = await kopia(connectCommand(req.repository.backend, opts));
  let created = false;
  if (out.code !== 0) {
    const failure = classifyKopiaError(out.stderr || out.stdout);
    // A repository verified before that now looks empty is a storage problem (an unmounted
    // share, a wiped or mistyped bucket), never a reason to start a new one.
    if (failure.errorClass === 'NotInitialized' && expected) {
      throw new KopiaFailure({
        ok: false,
        operation: req.operation,
        errorClass: 'RepositoryMissing',
        message: `no repository at the configured location, but repository ${expected} was verified there before; nothing was created (kopia: ${failure.message})`,
      });
    }
    // Create only when kopia said "not initialized" and the user opted in; never after any
    // other failure (a wrong password or an unreachable bucket must not become a new repository).
    if (failure.errorClass !== 'NotInitialized' || !req.repository.create?.enabled) {
      throw new KopiaFailure({ ok: false, operation: req.operation, ...failure });
    }
    log.info('repository not initialized and create.enabled is set: creating it');
    await kopiaOrFail(req.operation, createCommand(req.repository.backend, req.repository.create, opts));
    created = true;
  }
  const status = JSON.parse(await kopiaOrFail(req.operation, statusCommand())) as KopiaRepositoryStatus;
  if (expected && status.uniqueIDHex !== expected) {
    throw new KopiaFailure({
      ok: false,
      operation: req.operation,
      errorClass: 'RepositoryChanged',
      message: `the configured location holds repository ${status.uniqueIDHex}, not ${expected} verified there before`,
    });
  }
  return { created, status };
}

interface KopiaRepositoryStatus {
  uniqueIDHex: string;
  contentFormat?: { version?: number; hash?: string; encryption?: string; ecc?: string };
  objectFormat?: { splitter?: string };
}

async function repositoryFacts(operation: MoverRequest['operation'], status: KopiaRepositoryStatus): Promise<RepositoryFacts> {
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
  const { created, status } = await connect(req);
  return { ok: true, operation: 'verify', created, repository: await repositoryFacts('verify', status) };
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
