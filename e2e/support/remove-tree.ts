// Removes a test's scratch tree. A mover the test world started (a kopia process of a Job
// whose namespace is being deleted) may still write into it for a moment after the test
// ends, and rmdir then meets a file created after the listing (ENOTEMPTY); Node's rm
// retries that with backoff. Leftovers must never fail a suite that passed.
import { rmSync } from 'node:fs';

export function removeTree(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 250 });
}
