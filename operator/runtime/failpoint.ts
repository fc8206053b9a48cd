// A failpoint for fault tests of the real processes: after a named step, the process says it
// got there and holds that piece of work until told to go on, so a test can SIGKILL the
// process (or another one) at exactly that point rather than racing for it. Off unless
// KOPIA_FAILPOINT_AFTER names a step; never set in the shipped manifests.
//   KOPIA_FAILPOINT_AFTER=createPrime KOPIA_FAILPOINT_DIR=/tmp/fp
//   → after the first createPrime: writes /tmp/fp/reached, then waits for /tmp/fp/resume.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from './logger.js';

export interface Failpoint {
  /** Resolves at once, except the first time `step` is the configured one: then after the resume file appears. */
  after(step: string): Promise<void>;
}

export const noFailpoint: Failpoint = { after: async () => undefined };

export function failpointFromEnv(env: NodeJS.ProcessEnv, log: Logger): Failpoint {
  const step = env.KOPIA_FAILPOINT_AFTER;
  const dir = env.KOPIA_FAILPOINT_DIR;
  if (!step) return noFailpoint;
  if (!dir) throw new Error('KOPIA_FAILPOINT_AFTER needs KOPIA_FAILPOINT_DIR');
  let fired = false;
  log.warn('failpoint armed: a test is about to interrupt this process', { step });
  return {
    async after(done: string) {
      if (fired || done !== step) return;
      fired = true;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'reached'), `${step}\n`);
      log.warn('failpoint reached; holding until resumed', { step });
      while (!existsSync(join(dir, 'resume'))) await new Promise((r) => setTimeout(r, 100));
    },
  };
}
