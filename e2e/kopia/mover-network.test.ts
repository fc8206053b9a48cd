// The mover against real network storage servers: S3, WebDAV and SFTP.
import type { Backend } from '../../generated/types.js';
import { SECRET_FILES, type VerifyRequest } from '../../operator/mover/mover-contract.js';
import { ensureTestBinaries } from '../support/control-plane.js';
import { runMover, type MoverRunOptions } from '../support/run-mover.js';
import { startS3, startSFTP, startWebDAV, type SftpServer, type StorageServer } from '../support/storage-servers.js';

const PASSWORD = 'network repository password';
let binDir: string;
let s3: StorageServer;
let webdav: StorageServer;
let sftp: SftpServer;

beforeAll(async () => {
  binDir = ensureTestBinaries(['kopia', 's3']);
  [s3, webdav, sftp] = await Promise.all([startS3(binDir, 'backups'), startWebDAV('dav-user', 'dav-pass'), startSFTP()]);
});
afterAll(async () => {
  await Promise.all([s3?.stop(), webdav?.stop(), sftp?.stop()]);
});

function request(backend: Backend, create: boolean): VerifyRequest {
  return {
    operation: 'verify',
    repository: { backend, create: { enabled: create } },
    identity: { username: 'verify', hostname: 'network' },
  };
}

interface Case {
  name: string;
  backend: () => Backend;
  options: () => Omit<MoverRunOptions, 'kopiaBinDir'>;
  badCredentials?: () => Omit<MoverRunOptions, 'kopiaBinDir'>;
}

const cases: Case[] = [
  {
    name: 's3',
    backend: () => ({
      s3: {
        bucket: 'backups',
        prefix: 'cluster-a',
        endpoint: `127.0.0.1:${s3.port}`,
        tls: { disabled: true },
        credentialsSecretRef: { name: 'c' },
      },
    }),
    options: () => ({ env: { KOPIA_PASSWORD: PASSWORD, AWS_ACCESS_KEY_ID: 'access', AWS_SECRET_ACCESS_KEY: 'secret-key-value' } }),
  },
  {
    name: 'webdav',
    backend: () => ({ webdav: { url: `http://127.0.0.1:${webdav.port}/repo`, credentialsSecretRef: { name: 'c' } } }),
    options: () => ({ env: { KOPIA_PASSWORD: PASSWORD, KOPIA_WEBDAV_USERNAME: 'dav-user', KOPIA_WEBDAV_PASSWORD: 'dav-pass' } }),
    badCredentials: () => ({ env: { KOPIA_PASSWORD: PASSWORD, KOPIA_WEBDAV_USERNAME: 'dav-user', KOPIA_WEBDAV_PASSWORD: 'wrong' } }),
  },
  {
    name: 'sftp',
    backend: () => ({
      sftp: {
        host: '127.0.0.1',
        port: sftp.port,
        username: sftp.username,
        path: sftp.repoPath,
        credentialsSecretRef: { name: 'c' },
        knownHostsSecretRef: { name: 'k', key: 'known_hosts' },
      },
    }),
    options: () => ({
      env: { KOPIA_PASSWORD: PASSWORD },
      secretFiles: { [SECRET_FILES.sftpKey]: sftp.clientKey, [SECRET_FILES.knownHosts]: sftp.knownHosts },
    }),
    badCredentials: () => ({
      env: { KOPIA_PASSWORD: PASSWORD },
      secretFiles: {
        [SECRET_FILES.sftpKey]: sftp.clientKey,
        [SECRET_FILES.knownHosts]: `[127.0.0.1]:${sftp.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBVlKuJDaFBOiFtYGTqYtHG9ko1hl8XI3Y3SvCmI2xVQ\n`,
      },
    }),
  },
];

describe.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  it('is NotInitialized before create, then created, then verified with the same unique ID', async () => {
    const first = await runMover(request(c.backend(), false), { kopiaBinDir: binDir, ...c.options() });
    expect(first.result).toMatchObject({ ok: false, errorClass: 'NotInitialized' });
    const created = await runMover(request(c.backend(), true), { kopiaBinDir: binDir, ...c.options() });
    expect(created.result).toMatchObject({ ok: true, created: true });
    const again = await runMover(request(c.backend(), false), { kopiaBinDir: binDir, ...c.options() });
    expect(again.result).toMatchObject({ ok: true, created: false, repository: { snapshotCount: 0 } });
    expect(again.result.ok && again.result.repository?.uniqueID).toBe(created.result.ok && created.result.repository?.uniqueID);
  });

  it('reports WrongPassword for the wrong repository password', async () => {
    const opts = c.options();
    const run = await runMover(request(c.backend(), true), {
      kopiaBinDir: binDir,
      ...opts,
      env: { ...opts.env, KOPIA_PASSWORD: 'wrong password' },
    });
    expect(run.result).toMatchObject({ ok: false, errorClass: 'WrongPassword' });
  });

  if (c.badCredentials) {
    it('reports Unreachable for bad storage credentials or host key, and creates nothing', async () => {
      const run = await runMover(request(c.backend(), true), { kopiaBinDir: binDir, ...c.badCredentials!() });
      expect(run.code).not.toBe(0);
      expect(run.result).toMatchObject({ ok: false, errorClass: 'Unreachable' });
    });
  }
});
