// Where the project's own programs are, for the node agent and harness.
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(new URL('../..', import.meta.url).pathname);

/** node with the tsx loader, so programs run from source with no build step. */
export function tsNode(): string[] {
  return [process.execPath, '--import', import.meta.resolve('tsx')];
}

/** The entrypoint of the kopia-operator image (the mover), with the checkout at imageDir. */
export function moverEntrypoint(imageDir = repoRoot): string[] {
  const loader = relative(repoRoot, fileURLToPath(import.meta.resolve('tsx')));
  return [process.execPath, '--import', join(imageDir, loader), join(imageDir, 'operator/mover/main.ts')];
}
