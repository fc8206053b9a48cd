// Real storage servers for the kopia tier, on loopback: S3 (gofakes3, built from its Go
// module), WebDAV and SFTP (Debian's rclone). Each runs guarded, so it dies with the run.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startGuarded, type GuardedProcess } from './processes.js';

export interface StorageServer {
  port: number;
  dir: string;
  process: GuardedProcess;
  stop(): Promise<void>;
}

async function waitForPort(port: number, proc: GuardedProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (open) return;
    if (proc.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`storage server ${proc.name} did not listen on ${port}: ${readFileSync(logFile, 'utf8').slice(-1000)}`);
}

async function start(name: string, command: string, args: (port: number, dir: string) => string[]): Promise<StorageServer> {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const port = await freePort();
  const logFile = join(dir, 'server.log');
  const proc = startGuarded(name, command, args(port, dir), logFile);
  await waitForPort(port, proc, logFile);
  return {
    port,
    dir,
    process: proc,
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function requireRclone(): void {
  try {
    execFileSync('rclone', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error('rclone is not installed: apt-get install rclone (.ci/run does this)');
  }
}

/**
 * S3 with path-style buckets. gofakes3 does not check credentials, and its fs backend
 * answered "bucket does not exist" to kopia's listings, so it keeps objects in memory.
 */
export function startS3(binDir: string, bucket: string): Promise<StorageServer> {
  return start('gofakes3', join(binDir, 'gofakes3'), (port) => [
    '-backend',
    'memory',
    '-host',
    `127.0.0.1:${port}`,
    '-initialbucket',
    bucket,
    '-quiet',
  ]);
}

export function startWebDAV(user: string, pass: string): Promise<StorageServer> {
  requireRclone();
  return start('rclone-webdav', 'rclone', (port, dir) => {
    // kopia's WebDAV storage does not create its root collection.
    mkdirSync(join(dir, 'data/repo'), { recursive: true });
    return ['serve', 'webdav', join(dir, 'data'), '--addr', `127.0.0.1:${port}`, '--user', user, '--pass', pass, '--config', '/dev/null'];
  });
}

export interface SftpServer extends StorageServer {
  username: string;
  repoPath: string;
  clientKey: string;
  knownHosts: string;
}

/**
 * SFTP from a real OpenSSH sshd (Debian's openssh-server) with key authentication and a
 * fixed host key, so known_hosts is verified. (rclone's sftp server lacks the statvfs
 * extension that `kopia repository status` needs.)
 */
export async function startSFTP(): Promise<SftpServer> {
  const keys = mkdtempSync(join(tmpdir(), 'sftp-keys-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keys, 'host'), '-C', 'host']);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keys, 'client'), '-C', 'client']);
  writeFileSync(join(keys, 'authorized_keys'), readFileSync(join(keys, 'client.pub')), { mode: 0o600 });
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const server = await start('sshd', '/usr/sbin/sshd', (port, dir) => {
    mkdirSync(join(dir, 'data'), { recursive: true });
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `ListenAddress 127.0.0.1:${port}`,
        `HostKey ${join(keys, 'host')}`,
        `AuthorizedKeysFile ${join(keys, 'authorized_keys')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'Subsystem sftp internal-sftp',
      ].join('\n') + '\n',
    );
    return ['-D', '-e', '-f', config];
  });
  const hostPub = readFileSync(join(keys, 'host.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const clientKey = readFileSync(join(keys, 'client'), 'utf8');
  return {
    ...server,
    stop: async () => {
      await server.stop();
      rmSync(keys, { recursive: true, force: true });
    },
    username: process.env.USER ?? 'root',
    repoPath: join(server.dir, 'data'),
    clientKey,
    knownHosts: `[127.0.0.1]:${server.port} ${hostPub}\n`,
  };
}
