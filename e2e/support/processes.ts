// Child processes that cannot outlive the test run. Each runs under a tiny sh guard that
// holds the parent's pipe: when the parent exits for any reason (even SIGKILL) the pipe
// closes and the guard terminates its child, so an interrupted run leaves nothing behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import net from 'node:net';

const GUARD = [
  // Ctrl-C reaches every process of the terminal's group: the guard must outlive it, so
  // that the parent (which handles the signal) still stops the child through it.
  "trap '' INT",
  'exec 3<&0',
  '"$@" </dev/null 3<&- & c=$!',
  '(read _ <&3; kill -TERM $c 2>/dev/null; i=0; while kill -0 $c 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -KILL $c 2>/dev/null) & w=$!',
  'wait $c; s=$?; kill $w 2>/dev/null; exit $s',
].join('\n');

export interface GuardedProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export function startGuarded(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
): GuardedProcess {
  const log = openSync(logFile, 'a');
  const child = spawn('sh', ['-c', GUARD, 'guard', command, ...args], { stdio: ['pipe', log, log], env });
  closeSync(log);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Do not let an idle guard keep the parent alive.
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return {
    name,
    child,
    exited,
    async stop() {
      if (child.exitCode !== null) return;
      child.stdin?.end();
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 8000));
      child.ref(); // keep the parent alive until the child is gone
      if ((await Promise.race([exited, timeout])) === 'timeout') child.kill('SIGKILL');
    },
  };
}

export interface Supervised {
  /** The process running now (a new one after each restart). */
  readonly current: GuardedProcess;
  readonly restarts: number;
  stop(): Promise<void>;
}

/**
 * Keeps a process running as a Deployment would: started again whenever it exits, after a
 * back-off that grows from 1 s to 30 s and resets once a run lasted a minute.
 */
export function supervise(name: string, start: () => GuardedProcess, log: (line: string) => void): Supervised {
  let current = start();
  let restarts = 0;
  let stopping = false;
  let wake: (() => void) | undefined;
  void (async () => {
    let delayMs = 1000;
    for (;;) {
      const startedAt = Date.now();
      const code = await current.exited;
      if (stopping) return;
      if (Date.now() - startedAt > 60_000) delayMs = 1000;
      log(`${name} exited (code ${code}); starting it again in ${delayMs / 1000} s`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, delayMs);
      });
      if (stopping) return;
      delayMs = Math.min(30_000, delayMs * 2);
      current = start();
      restarts++;
    }
  })();
  return {
    get current() {
      return current;
    },
    get restarts() {
      return restarts;
    },
    async stop() {
      stopping = true;
      wake?.();
      await current.stop();
    },
  };
}

/** Process ids whose command line mentions marker (to prove nothing was left running). */
export async function processesMentioning(marker: string): Promise<number[]> {
  const { readdirSync, readFileSync } = await import('node:fs');
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes(marker) && Number(entry) !== process.pid) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => res(port));
    });
  });
}
