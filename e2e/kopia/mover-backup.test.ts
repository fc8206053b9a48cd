// The mover's backup against real filesystem repositories with the real kopia binary:
// identity, tags, policy and pins as kopia itself shows them, a restore with plain kopia
// identical to the source, file errors of a non-root mover, and the mass-deletion breaker.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MOVER_PATHS, type BackupRequest, type MoverSuccess } from '../../operator/mover/mover-contract.js';
import { ensureTestBinaries } from '../support/control-plane.js';
import { runMover } from '../support/run-mover.js';
import { FILESYSTEM_REPOSITORY, inventory, kopiaCalls, makeVariedTree, PlainKopia, type KopiaListed } from './plain-kopia.js';

const PASSWORD = 'backup test password';
let kopiaBinDir: string;
let scratch: string;
beforeAll(() => {
  kopiaBinDir = ensureTestBinaries(['kopia']);
  scratch = mkdtempSync(join(tmpdir(), 'mover-backup-'));
  chmodSync(scratch, 0o755);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function chownTree(path: string, id: number): void {
  chownSync(path, id, id);
  if (statSync(path).isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n), id);
}

const newRepository = () => new PlainKopia(join(kopiaBinDir, 'kopia'), mkdtempSync(join(scratch, 'k-')), PASSWORD).create();

function request(overrides: Partial<BackupRequest> = {}): BackupRequest {
  return {
    operation: 'backup',
    repository: FILESYSTEM_REPOSITORY,
    identity: { username: 'media', hostname: 'cluster-a', path: '/data' },
    policy: {},
    tags: {},
    ...overrides,
  };
}

const ZERO = { keepLatest: 0, keepHourly: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepAnnual: 0 };

describe('a backup of a varied tree', () => {
  let kopia: PlainKopia;
  let data: string;
  let result: MoverSuccess;
  let log: string;

  beforeAll(async () => {
    kopia = await newRepository();
    data = mkdtempSync(join(scratch, 'data-'));
    makeVariedTree(data);
    writeFileSync(join(data, 'scratch.tmp'), 'ignored by the policy');
    mkdirSync(join(data, 'cache'));
    writeFileSync(join(data, 'cache/blob'), 'ignored by the policy');
    const run = await runMover(
      request({
        policy: {
          retention: { keepLatest: 5, keepDaily: 3 },
          compression: 'zstd',
          ignore: ['*.tmp', '/cache/'],
          oneFileSystem: true,
          ignoreCacheDirs: true,
        },
        tags: { app: 'media', 'kopia.io/backup': 'media-manual-1' },
        pin: true,
      }),
      { kopiaBinDir, repositoryDir: kopia.repoDir, env: { KOPIA_PASSWORD: PASSWORD }, mounts: { [MOVER_PATHS.data]: data } },
    );
    expect(run.result).toMatchObject({ ok: true });
    expect(run.code).toBe(0);
    result = run.result as MoverSuccess;
    log = run.log;
  });

  it('reports the snapshot: id, root, times, stats and retention reasons', () => {
    expect(result.snapshot).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      rootID: expect.stringMatching(/^k[0-9a-f]+$/),
      startTime: expect.any(String),
      endTime: expect.any(String),
      stats: { totalBytes: expect.any(Number), files: 7, dirs: 4, errors: 0, ignoredErrors: 0 },
      retentionReasons: ['latest-1', 'hourly-1', 'daily-1', 'weekly-1', 'monthly-1', 'annual-1'],
    });
    expect(result.snapshot!.stats.totalBytes).toBeGreaterThan(8 * 1024 * 1024);
    expect(Date.parse(result.snapshot!.endTime!)).toBeGreaterThanOrEqual(Date.parse(result.snapshot!.startTime));
    expect(result.mover).toEqual({ uid: 0, gid: 0 });
    expect(result.fileErrors).toBeUndefined();
  });

  it('is in kopia under the pinned identity, with the tags, the mover uid/gid and the pin', async () => {
    const [snapshot] = (await kopia.snapshots()).filter((s) => s.id === result.snapshot!.id);
    expect(snapshot.source).toEqual({ userName: 'media', host: 'cluster-a', path: '/data' });
    expect(snapshot.tags).toEqual({
      'tag:app': 'media',
      'tag:kopia.io/backup': 'media-manual-1',
      'tag:mover-uid': '0',
      'tag:mover-gid': '0',
    });
    expect(snapshot.pins).toEqual(['kopia-operator']);
  });

  it("sets the source's Kopia-native policy, visible with kopia policy show", async () => {
    const effective = await kopia.json<Record<string, Record<string, unknown>>>('policy', 'show', 'media@cluster-a:/data', '--json');
    expect(effective.retention).toMatchObject({ keepLatest: 5, keepDaily: 3, ignoreIdenticalSnapshots: false });
    expect(effective.compression).toEqual({ compressorName: 'zstd' });
    expect(effective.files).toMatchObject({ ignore: ['*.tmp', '/cache/'], oneFileSystem: true, ignoreCacheDirs: true });
  });

  it('kept the password out of its log, arguments and result', () => {
    expect(log).toContain('snapshot');
    expect(log).not.toContain(PASSWORD);
    expect(JSON.stringify(result)).not.toContain(PASSWORD);
  });

  it('ran no automatic maintenance: every writer command said so', () => {
    const writers = [...kopiaCalls(log, 'policy', 'set'), ...kopiaCalls(log, 'snapshot', 'create')];
    expect(writers).toHaveLength(2);
    for (const argv of writers) expect(argv).toContain('--no-auto-maintenance');
  });

  it('restores with plain kopia byte- and mode-identical, without what the policy ignores', async () => {
    const restored = join(scratch, 'restored');
    await kopia.k('snapshot', 'restore', result.snapshot!.id, restored);
    const expected = inventory(data);
    for (const ignored of ['scratch.tmp', 'cache', 'cache/blob']) delete expected[ignored];
    expect(inventory(restored)).toEqual(expected);
  });

  it('replaces the policy on the next backup: the ignore list exactly, unset fields inherited again', async () => {
    const before = (await kopia.snapshots()).length;
    const run = await runMover(request({ policy: { retention: { keepLatest: 5, keepDaily: 3 }, ignore: ['new/'] } }), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: { KOPIA_PASSWORD: PASSWORD },
      mounts: { [MOVER_PATHS.data]: data },
    });
    expect(run.result).toMatchObject({ ok: true, snapshot: { retentionReasons: expect.arrayContaining(['latest-1']) } });
    const defined = (await kopia.policies())['media@cluster-a:/data'] as { files: object; compression: object; retention: object };
    expect(defined.files).toEqual({ ignore: ['new/'] });
    expect(defined.compression).toEqual({});
    expect(defined.retention).toEqual({ keepLatest: 5, keepDaily: 3, ignoreIdenticalSnapshots: false });
    expect(await kopia.snapshots()).toHaveLength(before + 1);
  });

  it('does not write the policy when it is already as requested', async () => {
    const run = await runMover(request({ policy: { retention: { keepLatest: 5, keepDaily: 3 }, ignore: ['new/'] } }), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: { KOPIA_PASSWORD: PASSWORD },
      mounts: { [MOVER_PATHS.data]: data },
    });
    expect(run.result).toMatchObject({ ok: true });
    expect(kopiaCalls(run.log, 'policy', 'set')).toEqual([]);
  });
});

describe('a non-root mover meeting a file only root may read', () => {
  it('saves the snapshot anyway and reports it with the file errors (kopia exits 1 after saving)', async () => {
    const kopia = await newRepository();
    const data = mkdtempSync(join(scratch, 'data-'));
    chmodSync(data, 0o755);
    writeFileSync(join(data, 'readable.txt'), 'for everyone');
    mkdirSync(join(data, 'app'), { mode: 0o755 });
    writeFileSync(join(data, 'app/secret.db'), 'root only');
    chmodSync(join(data, 'app/secret.db'), 0o600);
    chownSync(join(data, 'app/secret.db'), 0, 0);
    // The repository belongs to the mover's user, as an fsGroup-owned volume would.
    const chownTree = (p: string) => {
      chownSync(p, 65534, 65534);
      if (statSync(p).isDirectory()) for (const n of readdirSync(p)) chownTree(join(p, n));
    };
    chownTree(kopia.repoDir);

    const run = await runMover(request({ tags: { app: 'db' } }), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: { KOPIA_PASSWORD: PASSWORD },
      mounts: { [MOVER_PATHS.data]: data },
      runAs: { uid: 65534, gid: 65534 },
    });
    expect(run.log).toContain('fatal error');
    expect(run.result).toMatchObject({
      ok: true,
      snapshot: { id: expect.stringMatching(/^[0-9a-f]{32}$/), stats: { files: 1, errors: 1 } },
      fileErrors: { count: 1, examples: [expect.stringMatching(/^app\/secret\.db: .*permission denied/)] },
      mover: { uid: 65534, gid: 65534 },
    });
    expect(run.code).toBe(0);
    const saved = (await kopia.snapshots()).find((s) => s.id === (run.result as MoverSuccess).snapshot!.id)!;
    expect(saved.tags).toMatchObject({ 'tag:app': 'db', 'tag:mover-uid': '65534', 'tag:mover-gid': '65534' });
    expect(saved.rootEntry!.summ!.numFailed).toBe(1);
  });

  // The data is read at the fixed /data, whatever the identity's path (which no longer
  // decides a mount): kopia saving nothing is shown with a volume the mover cannot read.
  it('fails, exiting non-zero, when kopia saved nothing (the data volume cannot be read)', async () => {
    const kopia = await newRepository();
    chownTree(kopia.repoDir, 65534);
    const data = mkdtempSync(join(scratch, 'data-'));
    writeFileSync(join(data, 'secret'), 'root only');
    chmodSync(data, 0o700);
    const run = await runMover(request(), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: { KOPIA_PASSWORD: PASSWORD },
      mounts: { [MOVER_PATHS.data]: data },
      runAs: { uid: 65534, gid: 65534 },
    });
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({ ok: false, operation: 'backup' });
    expect(await kopia.snapshots()).toEqual([]);
  });
});

// A tenant chooses identity.path; were the volume mounted there, /app or /usr/local/bin
// would stand over the image's code and tools. kopia reads /data and files it as the source.
describe('an identity path other than the data mount (/app)', () => {
  it('is filed, policed and listed under that path; nothing is filed under /data', async () => {
    const kopia = await newRepository();
    const data = mkdtempSync(join(scratch, 'data-'));
    mkdirSync(join(data, 'dist/operator/mover'), { recursive: true });
    writeFileSync(join(data, 'dist/operator/mover/main.js'), "console.log('a tenant file')\n");
    writeFileSync(join(data, 'build.log'), 'ignored by the policy');
    const app = { username: 'media', hostname: 'cluster-a', path: '/app' };
    const backupOnce = async () => {
      const run = await runMover(request({ identity: app, policy: { retention: { keepLatest: 2 }, ignore: ['*.log'] } }), {
        kopiaBinDir,
        repositoryDir: kopia.repoDir,
        env: { KOPIA_PASSWORD: PASSWORD },
        mounts: { [MOVER_PATHS.data]: data },
      });
      expect(run.result).toMatchObject({ ok: true });
      return run.result as MoverSuccess;
    };
    const results = [];
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(data, 'version'), String(i));
      results.push(await backupOnce());
      await new Promise((r) => setTimeout(r, 1100)); // distinct start times (whole seconds)
    }
    // Retention (keepLatest 2, set on media@cluster-a:/app) expired the first at the third.
    expect(results[2].expired).toBe(1);
    const listed = await kopia.snapshots();
    expect(listed.map((s) => s.source)).toEqual([
      { userName: 'media', host: 'cluster-a', path: '/app' },
      { userName: 'media', host: 'cluster-a', path: '/app' },
    ]);
    expect(listed.map((s) => s.id).sort()).toEqual([results[1].snapshot!.id, results[2].snapshot!.id].sort());
    expect(Object.keys(await kopia.policies()).sort()).toEqual(['(global)', 'media@cluster-a:/app']);
    const restored = join(scratch, 'restored-app');
    await kopia.k('snapshot', 'restore', results[2].snapshot!.id, restored);
    const expected = inventory(data);
    delete expected['build.log'];
    expect(inventory(restored)).toEqual(expected);
  });
});

// A user clones under /root or into mktemp -d (mode 0700) and runs the tests from there: the
// mover's uid cannot enter the directory it is started from, as no container can see the host's.
it('runs a non-root mover started from a directory only root can enter', async () => {
  const kopia = await newRepository();
  chownTree(kopia.repoDir, 65534);
  const data = mkdtempSync(join(scratch, 'data-'));
  chmodSync(data, 0o755);
  writeFileSync(join(data, 'readable.txt'), 'for everyone');
  const privateDir = mkdtempSync(join(scratch, 'private-'));
  chmodSync(privateDir, 0o700);
  const checkout = join(privateDir, 'checkout');
  mkdirSync(checkout, { mode: 0o755 });
  const cwd = process.cwd();
  process.chdir(checkout);
  let run: Awaited<ReturnType<typeof runMover>>;
  try {
    run = await runMover(request(), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: { KOPIA_PASSWORD: PASSWORD },
      mounts: { [MOVER_PATHS.data]: data },
      runAs: { uid: 65534, gid: 65534 },
    });
  } finally {
    process.chdir(cwd);
  }
  expect(run.log).not.toContain('EACCES');
  expect(run.result).toMatchObject({ ok: true, snapshot: { stats: { files: 1, errors: 0 } }, mover: { uid: 65534, gid: 65534 } });
  expect(run.code).toBe(0);
});

it('backs up nothing and sets no policy in a repository other than the one verified before', async () => {
  const kopia = await newRepository();
  const data = mkdtempSync(join(scratch, 'data-'));
  const run = await runMover(
    request({ repository: { ...FILESYSTEM_REPOSITORY, expectedUniqueID: '0'.repeat(64) }, policy: { retention: { keepLatest: 1 } } }),
    { kopiaBinDir, repositoryDir: kopia.repoDir, env: { KOPIA_PASSWORD: PASSWORD }, mounts: { [MOVER_PATHS.data]: data } },
  );
  expect(run.code).not.toBe(0);
  expect(run.result).toMatchObject({ ok: false, operation: 'backup', errorClass: 'RepositoryChanged' });
  expect(await kopia.snapshots()).toEqual([]);
  expect(Object.keys(await kopia.policies())).toEqual(['(global)']);
});

describe('the mass-deletion breaker', () => {
  /** Six snapshots of media@cluster-b:/data, kept by a source policy of keepLatest 10, the oldest pinned. */
  async function sourceWithHistory(definePolicy: boolean): Promise<{ kopia: PlainKopia; data: string; ids: string[] }> {
    const kopia = await newRepository();
    const data = mkdtempSync(join(scratch, 'data-'));
    writeFileSync(join(data, 'file'), 'content');
    const source = 'media@cluster-b:/data';
    if (definePolicy)
      await kopia.k(
        'policy',
        'set',
        source,
        '--keep-latest=10',
        '--keep-hourly=0',
        '--keep-daily=0',
        '--keep-weekly=0',
        '--keep-monthly=0',
        '--keep-annual=0',
      );
    await kopia.k('snapshot', 'create', ...Array(6).fill(data), `--override-source=${source}`, '--no-auto-maintenance');
    // --override-source marks the source's scheduling manual, which is a policy of its own.
    if (!definePolicy) await kopia.k('policy', 'delete', source);
    const sorted = (await kopia.snapshots()).sort((a, b) => a.startTime.localeCompare(b.startTime));
    expect(sorted).toHaveLength(6);
    return { kopia, data, ids: sorted.map((s) => s.id) };
  }

  const breakerRequest = (expireLimit: number, keepLatest: number) =>
    request({
      identity: { username: 'media', hostname: 'cluster-b', path: '/data' },
      policy: { retention: { ...ZERO, keepLatest } },
      expireLimit,
    });

  it('stops a backup whose new policy would expire more than the limit: nothing snapshotted, policy as before', async () => {
    const { kopia, data, ids } = await sourceWithHistory(true);
    await kopia.k('snapshot', 'pin', ids[0], '--add=keep-forever');
    const before = { snapshots: (await kopia.snapshots()).map((s) => s.id).sort(), policies: await kopia.policies() };

    // keepLatest 2 with the new snapshot: the newest existing one stays, the pinned one stays, 4 go.
    const run = await runMover(breakerRequest(3, 2), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: { KOPIA_PASSWORD: PASSWORD },
      mounts: { [MOVER_PATHS.data]: data },
    });
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({
      ok: false,
      errorClass: 'ExpireLimitExceeded',
      wouldExpire: 4,
      message: expect.stringContaining('policy is as it was'),
    });
    expect((await kopia.snapshots()).map((s) => s.id).sort()).toEqual(before.snapshots);
    expect(await kopia.policies()).toEqual(before.policies);
    expect(kopiaCalls(run.log, 'snapshot', 'create')).toEqual([]);
    expect(kopiaCalls(run.log, 'snapshot', 'expire')).toEqual([]);
  });

  it('lets it run at the limit, and kopia then expires exactly the predicted snapshots', async () => {
    const { kopia, data } = await sourceWithHistory(true);
    const run = await runMover(breakerRequest(5, 2), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: { KOPIA_PASSWORD: PASSWORD },
      mounts: { [MOVER_PATHS.data]: data },
    });
    expect(run.result).toMatchObject({ ok: true, snapshot: { retentionReasons: ['latest-1'] }, expired: 5 });
    const remaining: KopiaListed[] = await kopia.snapshots();
    // 6 + 1 new - 5 expired
    expect(remaining).toHaveLength(2);
    expect(remaining.map((s) => s.id)).toContain((run.result as MoverSuccess).snapshot!.id);
  });

  it('removes the policy it set when the source had none before', async () => {
    const { kopia, data } = await sourceWithHistory(false);
    const before = await kopia.policies();
    expect(before['media@cluster-b:/data']).toBeUndefined();
    const run = await runMover(breakerRequest(0, 1), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: { KOPIA_PASSWORD: PASSWORD },
      mounts: { [MOVER_PATHS.data]: data },
    });
    expect(run.result).toMatchObject({ ok: false, errorClass: 'ExpireLimitExceeded', wouldExpire: 6 });
    expect(await kopia.policies()).toEqual(before);
    expect(await kopia.snapshots()).toHaveLength(6);
  });

  it('lets a backup that expires nothing run with a limit of 0', async () => {
    const { kopia, data } = await sourceWithHistory(true);
    const run = await runMover(breakerRequest(0, 10), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: { KOPIA_PASSWORD: PASSWORD },
      mounts: { [MOVER_PATHS.data]: data },
    });
    expect(run.result).toMatchObject({ ok: true, expired: 0 });
    expect(await kopia.snapshots()).toHaveLength(7);
  });
});
