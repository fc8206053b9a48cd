// The mover against a real filesystem repository with the real kopia binary.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VerifyRequest } from '../../operator/mover/mover-contract.js';
import { ensureTestBinaries } from '../support/control-plane.js';
import { runMover } from '../support/run-mover.js';

let kopiaBinDir: string;
let scratch: string;
beforeAll(() => {
  kopiaBinDir = ensureTestBinaries(['kopia']);
  scratch = mkdtempSync(join(tmpdir(), 'mover-fs-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const newRepoDir = () => mkdtempSync(join(scratch, 'repo-'));

const PASSWORD = 'correct horse battery staple';

function verify(create: boolean): VerifyRequest {
  return {
    operation: 'verify',
    repository: { backend: { filesystem: { path: '/', volume: { hostPath: { path: '/unused' } } } }, create: { enabled: create } },
    identity: { username: 'verify', hostname: 'test' },
  };
}

it('reports NotInitialized for an empty location when create is not enabled, and writes nothing', async () => {
  const repo = newRepoDir();
  const run = await runMover(verify(false), { kopiaBinDir, repositoryDir: repo, env: { KOPIA_PASSWORD: PASSWORD } });
  expect(run.code).not.toBe(0);
  expect(run.result).toMatchObject({ ok: false, errorClass: 'NotInitialized', message: expect.stringContaining('not initialized') });
  // kopia's filesystem storage may leave its .shards layout marker; no repository is created.
  expect(readdirSync(repo).filter((f) => f !== '.shards')).toEqual([]);
});

it('creates the repository when create is enabled, then connects with the right password', async () => {
  const repo = newRepoDir();
  const created = await runMover(verify(true), { kopiaBinDir, repositoryDir: repo, env: { KOPIA_PASSWORD: PASSWORD } });
  expect(created.result).toMatchObject({ ok: true, created: true, repository: { snapshotCount: 0 } });
  expect(created.code).toBe(0);
  const uniqueID = created.result.ok ? created.result.repository!.uniqueID : '';
  expect(uniqueID).toMatch(/^[0-9a-f]{32,}$/);
  expect(readdirSync(repo)).toContain('kopia.repository.f');

  const again = await runMover(verify(true), { kopiaBinDir, repositoryDir: repo, env: { KOPIA_PASSWORD: PASSWORD } });
  expect(again.result).toMatchObject({
    ok: true,
    created: false,
    repository: { uniqueID, format: { encryption: expect.any(String), hash: expect.any(String) } },
  });
});

it('reports WrongPassword and never creates over an existing repository', async () => {
  const repo = newRepoDir();
  await runMover(verify(true), { kopiaBinDir, repositoryDir: repo, env: { KOPIA_PASSWORD: PASSWORD } });
  const before = readdirSync(repo).sort();
  const wrong = await runMover(verify(true), { kopiaBinDir, repositoryDir: repo, env: { KOPIA_PASSWORD: 'not the password' } });
  expect(wrong.code).not.toBe(0);
  expect(wrong.result).toMatchObject({ ok: false, errorClass: 'WrongPassword' });
  expect(readdirSync(repo).sort()).toEqual(before);
});

it('reports Unreachable for a storage path that does not exist, without creating it', async () => {
  const request = verify(true);
  request.repository.backend.filesystem!.path = '/does/not/exist';
  const repo = newRepoDir();
  const run = await runMover(request, { kopiaBinDir, repositoryDir: repo, env: { KOPIA_PASSWORD: PASSWORD } });
  expect(run.result).toMatchObject({ ok: false, errorClass: 'Unreachable' });
  expect(readdirSync(repo)).toEqual([]);
});

it('fails with InvalidRequest when the request is missing, exiting non-zero', async () => {
  const run = await runMover({ operation: 'nonsense' } as unknown as VerifyRequest, { kopiaBinDir, env: { KOPIA_PASSWORD: PASSWORD } });
  expect(run.code).not.toBe(0);
  expect(run.result).toMatchObject({ ok: false, errorClass: 'InvalidRequest' });
});

it('keeps the password out of its output, arguments and result', async () => {
  const repo = newRepoDir();
  const run = await runMover(verify(true), { kopiaBinDir, repositoryDir: repo, env: { KOPIA_PASSWORD: PASSWORD } });
  expect(run.log).toContain('kopia');
  expect(run.log).not.toContain(PASSWORD);
  expect(JSON.stringify(run.result)).not.toContain(PASSWORD);
  expect(run.log).toContain('--no-persist-credentials');
});

describe('a repository verified before (its unique ID is known)', () => {
  const expecting = (uniqueID: string): VerifyRequest => {
    const request = verify(true);
    request.repository.expectedUniqueID = uniqueID;
    return request;
  };

  it('is never re-created when its storage looks empty: RepositoryMissing, nothing written', async () => {
    const repo = newRepoDir();
    const run = await runMover(expecting('f'.repeat(64)), { kopiaBinDir, repositoryDir: repo, env: { KOPIA_PASSWORD: PASSWORD } });
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({ ok: false, errorClass: 'RepositoryMissing', message: expect.stringContaining('f'.repeat(64)) });
    expect(readdirSync(repo).filter((f) => f !== '.shards')).toEqual([]);
  });

  it('is reported as RepositoryChanged when another repository stands in its place', async () => {
    const repo = newRepoDir();
    const created = await runMover(verify(true), { kopiaBinDir, repositoryDir: repo, env: { KOPIA_PASSWORD: PASSWORD } });
    const actual = created.result.ok ? created.result.repository!.uniqueID : '';
    const run = await runMover(expecting('0'.repeat(64)), { kopiaBinDir, repositoryDir: repo, env: { KOPIA_PASSWORD: PASSWORD } });
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({ ok: false, errorClass: 'RepositoryChanged' });
    expect(run.result.ok ? '' : run.result.message).toContain(actual);
    const same = await runMover(expecting(actual), { kopiaBinDir, repositoryDir: repo, env: { KOPIA_PASSWORD: PASSWORD } });
    expect(same.result).toMatchObject({ ok: true, created: false, repository: { uniqueID: actual } });
  });
});

it('redacts values of mounted Secret files and URL credentials from its logs and result', async () => {
  // kopia echoes the WebDAV host it cannot resolve: make that host a secret file's value.
  const token = 'tok3n-from-a-secret-file';
  const request: VerifyRequest = {
    operation: 'verify',
    repository: { backend: { webdav: { url: `http://user:hunter2-password@${token}.invalid/dav` } } },
    identity: { username: 'verify', hostname: 'test' },
  };
  const run = await runMover(request, {
    kopiaBinDir,
    env: { KOPIA_PASSWORD: PASSWORD },
    secretFiles: { 'gcs/credentials.json': `${token}\n` },
  });
  expect(run.result).toMatchObject({ ok: false, errorClass: 'Unreachable' });
  expect(run.log).toContain('[redacted]');
  for (const text of [run.log, JSON.stringify(run.result)]) {
    expect(text).not.toContain(token);
    expect(text).not.toContain('hunter2-password');
  }
});
