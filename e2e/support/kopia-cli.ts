// Plain kopia, as a user outside the cluster runs it, against a repository the tests also
// give to the operator: to check what the operator made, and to make snapshots it did not.
// Also an inventory of a directory tree, to compare a restore with its source.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_MOVER_ID } from '../../operator/jobs/mover-privileges.js';

const run = promisify(execFile);

/** Where the repository appears to plain kopia (in its own mount namespace; /run is a tmpfs). */
const REPOSITORY_MOUNT = '/run/kopia-cli/repository';

export class KopiaCli {
  private readonly dir = mkdtempSync(join(tmpdir(), 'kopia-cli-'));

  private constructor(
    private readonly kopia: string,
    private readonly password: string,
    private readonly repository: string,
  ) {}

  /**
   * A client connected to the filesystem repository at path, as username@hostname. It runs
   * as the movers' uid, as a second client sharing the volume must (kopia makes 0700
   * directories: what root wrote there, the movers could not read).
   */
  static async connect(binDir: string, path: string, password: string, who = { username: 'user', hostname: 'outside' }): Promise<KopiaCli> {
    const cli = new KopiaCli(join(binDir, 'kopia'), password, path);
    await cli.run(
      'repository',
      'connect',
      'filesystem',
      `--path=${REPOSITORY_MOUNT}`,
      `--override-username=${who.username}`,
      `--override-hostname=${who.hostname}`,
    );
    return cli;
  }

  /**
   * Runs kopia as the movers' uid, with the repository bind-mounted where that uid can
   * reach it (it lives under the test world's private directory); other paths it reads or
   * writes must be open to that uid.
   */
  run(...args: string[]): Promise<string> {
    return this.exec(args, false);
  }

  /** Restores a snapshot as root, so files get back the owners recorded in it. */
  async restoreAsRoot(snapshotID: string, target: string): Promise<void> {
    await this.exec(['snapshot', 'restore', snapshotID, target], true);
  }

  private async exec(args: string[], asRoot: boolean): Promise<string> {
    chmodSync(this.dir, 0o777);
    const id = String(DEFAULT_MOVER_ID);
    const as = asRoot ? '' : `setpriv --reuid ${id} --regid ${id} --clear-groups -- `;
    const script = `mkdir -p ${REPOSITORY_MOUNT} && mount --bind "$KOPIA_CLI_REPOSITORY" ${REPOSITORY_MOUNT} && exec ${as}"$@"`;
    const argv = ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'kopia-cli', this.kopia, ...args];
    const { stdout } = await run('unshare', argv, {
      maxBuffer: 256 * 1024 * 1024,
      env: {
        PATH: process.env.PATH,
        KOPIA_PASSWORD: this.password,
        KOPIA_CLI_REPOSITORY: this.repository,
        KOPIA_CHECK_FOR_UPDATES: 'false',
        KOPIA_CONFIG_PATH: join(this.dir, 'repository.config'),
        // Root's cache and logs apart: what root writes there, the movers' uid could not read.
        KOPIA_CACHE_DIRECTORY: join(this.dir, asRoot ? 'root-cache' : 'cache'),
        KOPIA_LOG_DIR: join(this.dir, asRoot ? 'root-logs' : 'logs'),
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
  /** special: a FIFO, socket or device, recorded without opening it (opening a FIFO blocks). */
  type: 'file' | 'dir' | 'symlink' | 'special';
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
    } else if (!st.isFile()) out[path] = { type: 'special', mode: st.mode & 0o7777, ...owners };
    else
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
