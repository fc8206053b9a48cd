// Runs kopia for one mover operation: every argv logged with secrets redacted, output
// collected as bytes (a 10,000-snapshot list is ~8 MB of JSON), failures turned into the
// contract's classes. connect() is the start of every operation.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../runtime/logger.js';
import { redactSecrets } from '../runtime/logger.js';
import { connectCommand, createCommand, snapshotCountCommand, statusCommand } from './kopia-command.js';
import { classifyKopiaError } from './kopia-errors.js';
import {
  MOVER_PATHS,
  MOVER_REQUEST_ENV,
  type MoverFailure,
  type MoverRepository,
  type MoverRequest,
  type RepositoryFacts,
} from './mover-contract.js';

export class KopiaFailure extends Error {
  constructor(readonly failure: MoverFailure) {
    super(failure.message);
  }
}

export interface KopiaOutput {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KopiaRepositoryStatus {
  uniqueIDHex: string;
  contentFormat?: { version?: number; hash?: string; encryption?: string; ecc?: string };
  objectFormat?: { splitter?: string };
}

type Operation = MoverRequest['operation'];

export class KopiaSession {
  constructor(
    private readonly log: Logger,
    private readonly secretValues: string[],
  ) {}

  redact(text: string): string {
    return redactSecrets(text, this.secretValues);
  }

  run(args: string[]): Promise<KopiaOutput> {
    this.log.info('kopia', { argv: args.map((a) => this.redact(a)) });
    // kopia needs no copy of the request (it can be large: an edit's id list).
    const env: NodeJS.ProcessEnv = { ...process.env, KOPIA_CHECK_FOR_UPDATES: 'false' };
    delete env[MOVER_REQUEST_ENV];
    return new Promise((resolve) => {
      const child = spawn('kopia', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', (e) => resolve({ code: 127, stdout: '', stderr: `cannot run kopia: ${e.message}` }));
      child.on('close', (code) => {
        const stderr = this.redact(Buffer.concat(err).toString('utf8'));
        for (const line of stderr.split('\n').filter(Boolean).slice(-20)) this.log.info('kopia output', { line });
        resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr });
      });
    });
  }

  /** Runs kopia and returns its stdout, or throws the failure classified from its output. */
  async runOrFail(operation: Operation, args: string[]): Promise<string> {
    const out = await this.run(args);
    if (out.code !== 0) throw new KopiaFailure({ ok: false, operation, ...classifyKopiaError(out.stderr || out.stdout) });
    return out.stdout;
  }
}

export interface ConnectTarget {
  operation: Operation;
  repository: MoverRepository;
  identity: { username: string; hostname: string };
}

/** Connects (creating only where allowed) and checks the repository is the one expected. */
export async function connect(
  kopia: KopiaSession,
  log: Logger,
  req: ConnectTarget,
): Promise<{ created: boolean; status: KopiaRepositoryStatus }> {
  mkdirSync(dirname(MOVER_PATHS.config), { recursive: true });
  const opts = { username: req.identity.username, hostname: req.identity.hostname, cache: req.repository.cache };
  const expected = req.repository.expectedUniqueID;
  const out = await kopia.run(connectCommand(req.repository.backend, opts));
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
    await kopia.runOrFail(req.operation, createCommand(req.repository.backend, req.repository.create, opts));
    created = true;
  }
  const status = JSON.parse(await kopia.runOrFail(req.operation, statusCommand())) as KopiaRepositoryStatus;
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

export async function repositoryFacts(kopia: KopiaSession, operation: Operation, status: KopiaRepositoryStatus): Promise<RepositoryFacts> {
  const snapshots = JSON.parse(await kopia.runOrFail(operation, snapshotCountCommand())) as unknown[];
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

export function invalidRequest(operation: Operation | 'unknown', message: string): KopiaFailure {
  return new KopiaFailure({ ok: false, operation, errorClass: 'InvalidRequest', message });
}
