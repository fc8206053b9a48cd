// The real kopia binary (built from its Go module) against a real filesystem repository:
// what goes in comes back out, byte for byte and mode for mode.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureTestBinaries } from '../support/control-plane.js';
import { inventory } from '../support/kopia-cli.js';

const run = promisify(execFile);
let kopia: string;
let dir: string;

beforeAll(() => {
  kopia = join(ensureTestBinaries(['kopia']), 'kopia');
  dir = mkdtempSync(join(tmpdir(), 'kopia-roundtrip-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kopiaEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    KOPIA_PASSWORD: 'round-trip-password',
    KOPIA_CHECK_FOR_UPDATES: 'false',
    KOPIA_CONFIG_PATH: join(dir, 'config/repository.config'),
    KOPIA_CACHE_DIRECTORY: join(dir, 'cache'),
    KOPIA_LOG_DIR: join(dir, 'logs'),
  };
}

async function k(...args: string[]): Promise<string> {
  const { stdout } = await run(kopia, args, { env: kopiaEnv(), maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

it('snapshots and restores a tree of mixed files identically', async () => {
  const src = join(dir, 'source');
  mkdirSync(join(src, 'nested/deeper/deepest'), { recursive: true });
  writeFileSync(join(src, 'empty'), '');
  writeFileSync(join(src, 'small.txt'), 'hello kopia\n');
  writeFileSync(join(src, 'nested/deeper/deepest/data.bin'), randomBytes(300_000));
  writeFileSync(join(src, 'big.bin'), randomBytes(50 * 1024 * 1024));
  writeFileSync(join(src, 'script.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(src, 'script.sh'), 0o750);
  writeFileSync(join(src, 'nested/private'), 'secret-ish');
  chmodSync(join(src, 'nested/private'), 0o600);
  chmodSync(join(src, 'nested/deeper'), 0o700);
  symlinkSync('small.txt', join(src, 'link-to-small'));
  symlinkSync('nested/deeper', join(src, 'link-to-dir'));
  symlinkSync('/nonexistent/target', join(src, 'dangling'));

  await k(
    'repository',
    'create',
    'filesystem',
    '--path',
    join(dir, 'repo'),
    '--override-username',
    'test',
    '--override-hostname',
    'roundtrip',
  );
  const created = JSON.parse(await k('snapshot', 'create', src, '--json', '--no-auto-maintenance')) as {
    id: string;
    rootEntry: { summ: { files: number; symlinks: number; dirs: number; size: number; numFailed: number } };
  };
  expect(created.id).toMatch(/^[0-9a-f]+$/);
  expect(created.rootEntry.summ).toMatchObject({ files: 6, symlinks: 3, dirs: 4, numFailed: 0 });
  expect(created.rootEntry.summ.size).toBeGreaterThan(50 * 1024 * 1024);

  const listed = JSON.parse(await k('snapshot', 'list', src, '--json')) as {
    id: string;
    source: { userName: string; host: string; path: string };
  }[];
  expect(listed.map((s) => s.id)).toEqual([created.id]);
  expect(listed[0].source).toEqual({ userName: 'test', host: 'roundtrip', path: src });

  const dst = join(dir, 'restored');
  await k('snapshot', 'restore', created.id, dst);
  expect(inventory(dst)).toEqual(inventory(src));
}, 180_000);
