// Plain kopia beside the mover in kopia-tier tests: a filesystem repository the tests
// create, fill and inspect with the real binary, and a tree of varied files to back up.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MoverRepository } from '../../operator/mover/mover-contract.js';
import { inventory as treeInventory } from '../support/kopia-cli.js';

export interface KopiaResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The mover's view of a filesystem repository mounted at /repository. */
export const FILESYSTEM_REPOSITORY: MoverRepository = { backend: { filesystem: { path: '/', volume: { hostPath: { path: '/unused' } } } } };

export class PlainKopia {
  readonly repoDir: string;

  constructor(
    private readonly kopiaBin: string,
    private readonly dir: string,
    readonly password: string,
  ) {
    this.repoDir = join(dir, 'repo');
    mkdirSync(this.repoDir, { recursive: true });
  }

  private env(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      TZ: process.env.TZ,
      KOPIA_PASSWORD: this.password,
      KOPIA_CHECK_FOR_UPDATES: 'false',
      KOPIA_CONFIG_PATH: join(this.dir, 'config/repository.config'),
      KOPIA_CACHE_DIRECTORY: join(this.dir, 'cache'),
      KOPIA_LOG_DIR: join(this.dir, 'logs'),
    };
  }

  run(...args: string[]): Promise<KopiaResult> {
    return new Promise((resolve) => {
      execFile(this.kopiaBin, args, { env: this.env(), maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Runs kopia; a failure fails the test with kopia's own words. */
  async k(...args: string[]): Promise<string> {
    const out = await this.run(...args);
    if (out.code !== 0) throw new Error(`kopia ${args.join(' ')} exited ${out.code}: ${out.stderr.split('\n').slice(-5).join('\n')}`);
    return out.stdout;
  }

  /** Creates the repository (connected as admin@setup; the mover connects with its own identity). */
  async create(): Promise<this> {
    await this.k('repository', 'create', 'filesystem', `--path=${this.repoDir}`, '--override-username=admin', '--override-hostname=setup');
    return this;
  }

  async json<T>(...args: string[]): Promise<T> {
    return JSON.parse(await this.k(...args)) as T;
  }

  /** Every snapshot manifest, as `snapshot list --all --json` prints it. */
  snapshots(): Promise<KopiaListed[]> {
    return this.json<KopiaListed[]>('snapshot', 'list', '--all', '--json');
  }

  /** Policies defined, keyed by target. */
  policies(): Promise<Record<string, Record<string, unknown>>> {
    return this.json('policy', 'export');
  }
}

export interface KopiaListed {
  id: string;
  source: { userName: string; host: string; path: string };
  startTime: string;
  endTime: string;
  incomplete?: string;
  tags?: Record<string, string>;
  pins?: string[];
  retentionReason?: string[];
  rootEntry?: { obj: string; summ?: { files: number; dirs: number; size: number; numFailed: number } };
}

/** Nested directories, symlinks (to a file, a directory, nowhere), an empty file, a larger one, several modes. */
export function makeVariedTree(root: string): void {
  mkdirSync(join(root, 'nested/deeper/deepest'), { recursive: true });
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'small.txt'), 'hello kopia\n');
  writeFileSync(join(root, 'nested/deeper/deepest/data.bin'), randomBytes(300_000));
  writeFileSync(join(root, 'big.bin'), randomBytes(8 * 1024 * 1024));
  writeFileSync(join(root, 'script.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(root, 'script.sh'), 0o750);
  writeFileSync(join(root, 'nested/private'), 'owner only');
  chmodSync(join(root, 'nested/private'), 0o600);
  writeFileSync(join(root, 'nested/read-only'), 'read only');
  chmodSync(join(root, 'nested/read-only'), 0o444);
  chmodSync(join(root, 'nested/deeper'), 0o700);
  symlinkSync('small.txt', join(root, 'link-to-small'));
  symlinkSync('nested/deeper', join(root, 'link-to-dir'));
  symlinkSync('/nonexistent/target', join(root, 'dangling'));
}

/** Every entry under root with its type, mode, owners and content hash (symlinks not followed). */
export const inventory = (root: string) => treeInventory(root, { owners: true });

/** The mover's argv lines for one kopia subcommand, from its JSON log. */
export function kopiaCalls(log: string, ...subcommand: string[]): string[][] {
  return log
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as { message?: string; argv?: string[] };
      } catch {
        return {};
      }
    })
    .filter((l) => l.message === 'kopia' && subcommand.every((s, i) => l.argv?.[i] === s))
    .map((l) => l.argv!);
}
