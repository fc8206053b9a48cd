// The mover's result as its termination message. terminationMessage() keeps only ok and
// operation from a success that does not fit 4 KiB; a backup must never lose its snapshot
// id that way, so the one unbounded part of a success, the file error examples, goes first.
import { redactSecrets } from '../runtime/logger.js';
import { TERMINATION_MESSAGE_LIMIT, terminationMessage, type MoverResult } from './mover-contract.js';

export function resultMessage(result: MoverResult, secretValues: string[]): string {
  if (!result.ok || !result.fileErrors) return terminationMessage(result, secretValues);
  const fits = (r: MoverResult) => redactSecrets(JSON.stringify(r), secretValues).length <= TERMINATION_MESSAGE_LIMIT;
  let examples = result.fileErrors.examples;
  while (examples.length > 0 && !fits({ ...result, fileErrors: { ...result.fileErrors, examples } })) examples = examples.slice(0, -1);
  return terminationMessage({ ...result, fileErrors: { ...result.fileErrors, examples } }, secretValues);
}
