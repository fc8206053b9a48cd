// Where the project's own programs are, for the node agent and harness.
import { join, resolve } from 'node:path';

export const repoRoot = resolve(new URL('../..', import.meta.url).pathname);

/** node with the tsx loader, so programs run from source with no build step. */
export function tsNode(): string[] {
  return [process.execPath, '--import', import.meta.resolve('tsx')];
}

/** The entrypoint of the kopia-operator image: the mover. */
export function moverEntrypoint(): string[] {
  return [...tsNode(), join(repoRoot, 'operator/mover/main.ts')];
}
