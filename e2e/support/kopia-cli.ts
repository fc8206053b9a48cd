// Plain kopia, as a user outside the cluster runs it, against a repository the tests also
// give to the operator: to check what the operator made, and to make snapshots it did not.
// Also an inventory of a directory tree, to compare a restore with its source.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class KopiaCli {
  private readonly dir = mkdtempSync(join(tmpdir(), 'kopia-cli-'));

  constructor(
    private readonly kopia: string,
    private readonly password: string,
  ) {}

  /** A client connected to the filesystem repository at path, as username@hostname. */
  static async connect(binDir: string, path: string, password: string, who = { username: 'user', hostname: 'outside' }): Promise<KopiaCli> {
    const cli = new KopiaCli(join(binDir, 'kopia'), password);
    await cli.run(
      'repository',
      'connect',
      'filesystem',
      `--path=${path}`,
      `--override-username=${who.username}`,
      `--override-hostname=${who.hostname}`,
    );
    return cli;
  }

  async run(...args: string[]): Promise<string> {
    const { stdout } = await run(this.kopia, args, {
      maxBuffer: 256 * 1024 * 1024,
      env: {
        PATH: process.env.PATH,
        KOPIA_PASSWORD: this.password,
        KOPIA_CHECK_FOR_UPDATES: 'false',
        KOPIA_CONFIG_PATH: join(this.dir, 'repository.config'),
        KOPIA_CACHE_DIRECTORY: join(this.dir, 'cache'),
        KOPIA_LOG_DIR: join(this.dir, 'logs'),
      },
    });
    return stdout;
  }

  async snapshots(): Promise<{ id: string; source: { userName: string; host: string; path: string }; pins?: string[] }[]> {
    return JSON.parse(await this.run('snapshot', 'list', '--all', '--json'));
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  uid?: number;
  gid?: number;
  sha256?: string;
  target?: string;
}

/** Every entry below root: type, mode, content hash, link target (and owners when asked). */
export function inventory(root: string, opts: { owners?: boolean } = {}, rel = ''): Record<string, TreeEntry> {
  const out: Record<string, TreeEntry> = {};
  for (const name of readdirSync(join(root, rel)).sort()) {
    const path = join(rel, name);
    const st = lstatSync(join(root, path));
    const owners = opts.owners ? { uid: st.uid, gid: st.gid } : {};
    if (st.isSymbolicLink()) out[path] = { type: 'symlink', mode: 0, target: readlinkSync(join(root, path)), ...owners };
    else if (st.isDirectory()) {
      out[path] = { type: 'dir', mode: st.mode & 0o7777, ...owners };
      Object.assign(out, inventory(root, opts, path));
    } else
      out[path] = {
        type: 'file',
        mode: st.mode & 0o7777,
        sha256: createHash('sha256')
          .update(readFileSync(join(root, path)))
          .digest('hex'),
        ...owners,
      };
  }
  return out;
}
