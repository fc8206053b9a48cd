// The mover: the entrypoint of every Job the operator runs. It drives the real kopia CLI
// and nothing else, reports a small JSON result through the termination message and exits
// non-zero on any error.
import { writeFileSync } from 'node:fs';
import { createLogger } from '../runtime/logger.js';
import { backup } from './backup.js';
import { catalog } from './catalog.js';
import { edit } from './edit.js';
import { connect, invalidRequest, KopiaFailure, KopiaSession, repositoryFacts } from './kopia-session.js';
import { maintenance } from './maintenance.js';
import { MOVER_PATHS, MOVER_REQUEST_ENV, type MoverRequest, type MoverResult, type VerifyRequest } from './mover-contract.js';
import { restore } from './restore.js';
import { resultMessage } from './result-message.js';
import { secretEnvValues, secretFileValues } from './secret-values.js';

const log = createLogger('mover');
const TERMINATION_LOG = process.env.KOPIA_MOVER_TERMINATION_LOG ?? '/dev/termination-log';
/** Values that must never reach a log line or the termination message. */
const secretValues = [...secretEnvValues(process.env), ...secretFileValues(MOVER_PATHS.secrets)];
const kopia = new KopiaSession(log, secretValues);

async function verify(req: VerifyRequest): Promise<MoverResult> {
  const { created, status } = await connect(kopia, log, req);
  return { ok: true, operation: 'verify', created, repository: await repositoryFacts(kopia, 'verify', status) };
}

function parseRequest(): MoverRequest {
  const raw = process.env[MOVER_REQUEST_ENV];
  if (!raw) throw invalidRequest('unknown', `${MOVER_REQUEST_ENV} is not set`);
  try {
    return JSON.parse(raw) as MoverRequest;
  } catch (e) {
    throw invalidRequest('unknown', `${MOVER_REQUEST_ENV} is not JSON: ${(e as Error).message}`);
  }
}

async function run(req: MoverRequest): Promise<MoverResult> {
  switch (req.operation) {
    case 'verify':
      return verify(req);
    case 'backup':
      return backup(kopia, log, req);
    case 'catalog':
      return catalog(kopia, log, req);
    case 'edit':
      return edit(kopia, log, req);
    case 'restore':
      return restore(kopia, log, req);
    case 'maintenance':
      return maintenance(kopia, log, req);
    default:
      throw invalidRequest('unknown', `unknown operation ${String((req as { operation: unknown }).operation)}`);
  }
}

async function main(): Promise<number> {
  let result: MoverResult;
  let operation: MoverResult['operation'] = 'unknown';
  try {
    const req = parseRequest();
    if (['verify', 'backup', 'catalog', 'edit', 'restore', 'maintenance'].includes(req.operation)) operation = req.operation;
    log.info('mover starting', { operation: req.operation });
    result = await run(req);
  } catch (e) {
    result =
      e instanceof KopiaFailure ? e.failure : { ok: false, operation, errorClass: 'Other', message: (e as Error).message.slice(0, 512) };
  }
  const message = resultMessage(result, secretValues);
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
