// The mover's restore against a real filesystem repository with the real kopia binary: a
// varied tree backed up by plain kopia as root (owners recorded), restored as root with its
// owners and as a non-root user without, into a volume that already holds files (extras kept
// or deleted, symlinks never followed out of the volume), and the failures: an unknown
// snapshot, a wrong password, owners that cannot be given back.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MOVER_PATHS, type RestoreRequest } from '../../operator/mover/mover-contract.js';
import { ensureTestBinaries } from '../support/control-plane.js';
import type { TreeEntry } from '../support/kopia-cli.js';
import { runMover, type MoverRunOptions } from '../support/run-mover.js';
import { FILESYSTEM_REPOSITORY, inventory, kopiaCalls, makeVariedTree, PlainKopia } from './plain-kopia.js';

const PASSWORD = 'restore test password';
const NOBODY = 65534;
let kopiaBinDir: string;
let scratch: string;
let kopia: PlainKopia;
let source: string;
let snapshotID: string;
let expected: Record<string, TreeEntry>;

function chownTree(path: string, uid: number, gid: number): void {
  lchownSync(path, uid, gid);
  if (lstatSync(path).isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), uid, gid);
}

/** The varied tree, with entries owned by 1000 and 1001 and a setgid directory. */
function makeOwnedTree(root: string): void {
  makeVariedTree(root);
  mkdirSync(join(root, 'owned'));
  writeFileSync(join(root, 'owned/by-1000'), 'one thousand');
  writeFileSync(join(root, 'owned/by-1001'), 'one thousand and one');
  symlinkSync('by-1000', join(root, 'owned/link'));
  mkdirSync(join(root, 'owned/shared'));
  writeFileSync(join(root, 'owned/shared/file'), 'group work');
  chmodSync(join(root, 'owned/by-1000'), 0o640);
  chmodSync(join(root, 'owned/by-1001'), 0o600);
  chmodSync(join(root, 'owned/shared'), 0o2775);
  chmodSync(join(root, 'owned'), 0o750);
  chownSync(join(root, 'owned'), 1001, 1001);
  chownSync(join(root, 'owned/by-1000'), 1000, 1000);
  chownSync(join(root, 'owned/by-1001'), 1001, 1000);
  lchownSync(join(root, 'owned/link'), 1000, 1001);
  chownSync(join(root, 'owned/shared'), 1000, 1001);
  chownSync(join(root, 'owned/shared/file'), 1001, 1001);
  chownSync(join(root, 'small.txt'), 1000, 1000);
}

beforeAll(async () => {
  kopiaBinDir = ensureTestBinaries(['kopia']);
  scratch = mkdtempSync(join(tmpdir(), 'mover-restore-'));
  chmodSync(scratch, 0o755);
  kopia = await new PlainKopia(join(kopiaBinDir, 'kopia'), mkdtempSync(join(scratch, 'k-')), PASSWORD).create();
  source = mkdtempSync(join(scratch, 'source-'));
  chmodSync(source, 0o751);
  makeOwnedTree(source);
  // Plain kopia runs as root here, so the snapshot records every owner.
  await kopia.k('snapshot', 'create', source, '--override-source=app@cluster-a:/data', '--no-auto-maintenance');
  [{ id: snapshotID }] = await kopia.snapshots();
  expected = inventory(source);
  // The repository belongs to the non-root movers' user too, as an fsGroup-owned volume would.
  chownTree(kopia.repoDir, NOBODY, NOBODY);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function request(options: Partial<RestoreRequest['options']> = {}, overrides: Partial<RestoreRequest> = {}): RestoreRequest {
  return {
    operation: 'restore',
    repository: FILESYSTEM_REPOSITORY,
    identity: { username: 'kopia-operator', hostname: 'restore.media' },
    snapshotID,
    options: { deleteExtra: false, parallel: 4, ignorePermissionErrors: true, restoreOwners: true, ...options },
    ...overrides,
  };
}

const restore = (req: RestoreRequest, target: string, opts: Partial<MoverRunOptions> = {}) =>
  runMover(req, {
    kopiaBinDir,
    repositoryDir: kopia.repoDir,
    env: { KOPIA_PASSWORD: PASSWORD },
    mounts: { [MOVER_PATHS.data]: target },
    ...opts,
  });

function newTarget(uid = 0): string {
  const target = mkdtempSync(join(scratch, 'target-'));
  chownSync(target, uid, uid);
  return target;
}

/** What the snapshot holds, counted from the source: regular files, directories with the root, file bytes. */
function totals(): { files: number; dirs: number; bytes: number } {
  const entries = Object.entries(expected);
  const files = entries.filter(([, e]) => e.type === 'file');
  return {
    files: files.length,
    dirs: entries.filter(([, e]) => e.type === 'dir').length + 1,
    bytes: files.reduce((sum, [path]) => sum + statSync(join(source, path)).size, 0),
  };
}

const withoutOwners = (tree: Record<string, TreeEntry>) =>
  Object.fromEntries(Object.entries(tree).map(([path, { uid: _uid, gid: _gid, ...rest }]) => [path, rest]));

describe('into an empty volume', () => {
  it('as root with owners: byte-, mode- and owner-identical, and says owners were restored', async () => {
    const target = newTarget();
    const run = await restore(request(), target);
    expect(run.result).toEqual({ ok: true, operation: 'restore', restored: { ...totals(), errors: 0, ownersRestored: true } });
    expect(run.code).toBe(0);
    expect(inventory(target)).toEqual(expected);
    expect(statSync(target).mode & 0o7777).toBe(0o751);
    // kopia's defaults are spelled out; restore is a reader command (no maintenance flag needed).
    const [argv] = kopiaCalls(run.log, 'snapshot', 'restore');
    expect(argv).toEqual(
      expect.arrayContaining([
        snapshotID,
        MOVER_PATHS.data,
        '--parallel=4',
        '--no-skip-owners',
        '--ignore-permission-errors',
        '--no-delete-extra',
        '--overwrite-files',
      ]),
    );
    expect(run.log).not.toContain(PASSWORD);
  });

  it('as uid 65534 without owners: byte- and mode-identical, everything owned by the mover', async () => {
    const target = newTarget(NOBODY);
    const run = await restore(request({ restoreOwners: false }), target, { runAs: { uid: NOBODY, gid: NOBODY } });
    expect(run.result).toEqual({ ok: true, operation: 'restore', restored: { ...totals(), errors: 0, ownersRestored: false } });
    expect(run.code).toBe(0);
    const restored = inventory(target);
    expect(withoutOwners(restored)).toEqual(withoutOwners(expected));
    for (const [path, entry] of Object.entries(restored)) expect([path, entry.uid, entry.gid]).toEqual([path, NOBODY, NOBODY]);
    expect(kopiaCalls(run.log, 'snapshot', 'restore')[0]).toContain('--skip-owners');
  });

  it('as uid 65534 asked for owners: skips them and says so, never pretends', async () => {
    const target = newTarget(NOBODY);
    const run = await restore(request({ restoreOwners: true }), target, { runAs: { uid: NOBODY, gid: NOBODY } });
    expect(run.result).toMatchObject({ ok: true, restored: { ownersRestored: false, errors: 0 } });
    expect(withoutOwners(inventory(target))).toEqual(withoutOwners(expected));
    expect(Object.values(inventory(target)).every((e) => e.uid === NOBODY)).toBe(true);
    expect(run.log).toContain('owners requested but the mover cannot change them');
  });

  it('as uid 65534 asked for owners without tolerating permission errors: refuses before writing anything', async () => {
    const target = newTarget(NOBODY);
    const run = await restore(request({ restoreOwners: true, ignorePermissionErrors: false }), target, {
      runAs: { uid: NOBODY, gid: NOBODY },
    });
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({
      ok: false,
      operation: 'restore',
      errorClass: 'Other',
      message: expect.stringContaining('no CAP_CHOWN'),
    });
    expect(readdirSync(target)).toEqual([]);
    expect(kopiaCalls(run.log, 'snapshot', 'restore')).toEqual([]);
  });
});

describe('into a volume that already holds files', () => {
  let outside: string;

  /** A restored volume, then changed: a file rewritten, extras added, and symlinks that lead out of it where the snapshot has a file and a directory. */
  async function changedVolume(): Promise<string> {
    const target = newTarget();
    expect(await restore(request(), target)).toMatchObject({ code: 0 });
    writeFileSync(join(target, 'small.txt'), 'HELLO KOPIA\n');
    chmodSync(join(target, 'script.sh'), 0o777);
    writeFileSync(join(target, 'extra.txt'), 'mine');
    mkdirSync(join(target, 'extra-dir/inner'), { recursive: true });
    writeFileSync(join(target, 'extra-dir/inner/file'), 'also mine');
    symlinkSync('/etc/passwd', join(target, 'extra-dir/inner/link'));
    symlinkSync('../empty', join(target, 'nested/extra-link'));
    execFileSync('mkfifo', [join(target, 'nested/extra-fifo')]);
    // Where the snapshot has a file and a directory, symlinks out of the volume.
    rmSync(join(target, 'nested/private'));
    symlinkSync(join(outside, 'victim'), join(target, 'nested/private'));
    rmSync(join(target, 'nested/deeper'), { recursive: true });
    symlinkSync(join(outside, 'victim-dir'), join(target, 'nested/deeper'));
    return target;
  }

  const outsideUntouched = () => {
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('outside the volume');
    expect(statSync(join(outside, 'victim')).mode & 0o7777).toBe(0o644);
    expect(readdirSync(join(outside, 'victim-dir'))).toEqual([]);
    expect(statSync(join(outside, 'victim-dir')).mode & 0o7777).toBe(0o755);
  };

  beforeEach(() => {
    outside = mkdtempSync(join(scratch, 'outside-'));
    writeFileSync(join(outside, 'victim'), 'outside the volume');
    chmodSync(join(outside, 'victim'), 0o644);
    mkdirSync(join(outside, 'victim-dir'), { mode: 0o755 });
    chmodSync(join(outside, 'victim-dir'), 0o755);
  });

  it('plain kopia writes through such symlinks (why the mover moves them aside first)', async () => {
    const target = await changedVolume();
    await kopia.k('snapshot', 'restore', snapshotID, target);
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('owner only');
    expect(readdirSync(join(outside, 'victim-dir'))).toEqual(['deepest']);
  });

  it('deleteExtra false: what differs is overwritten, extras are kept, nothing outside is written', async () => {
    const target = await changedVolume();
    const run = await restore(request({ deleteExtra: false }), target);
    expect(run.result).toMatchObject({ ok: true, restored: { ...totals(), errors: 0, ownersRestored: true } });
    outsideUntouched();
    const restored = inventory(target);
    const extras = ['extra.txt', 'extra-dir', 'extra-dir/inner', 'extra-dir/inner/file', 'extra-dir/inner/link', 'nested/extra-link'];
    expect(Object.fromEntries(Object.entries(restored).filter(([p]) => !extras.includes(p) && p !== 'nested/extra-fifo'))).toEqual(
      expected,
    );
    expect(restored['extra.txt']).toMatchObject({ type: 'file' });
    expect(restored['extra-dir/inner/link']).toMatchObject({ type: 'symlink', target: '/etc/passwd' });
    expect(restored['nested/extra-link']).toMatchObject({ type: 'symlink', target: '../empty' });
    expect(lstatSync(join(target, 'nested/extra-fifo')).isFIFO()).toBe(true);
    expect(readdirSync(target).filter((n) => n.startsWith('.kopia-restore'))).toEqual([]);
    expect(run.log).toContain('set-aside entries settled');
  });

  it('deleteExtra true: the volume is the snapshot again, extras and only extras removed', async () => {
    const target = await changedVolume();
    const run = await restore(request({ deleteExtra: true }), target);
    expect(run.result).toMatchObject({ ok: true, restored: { ...totals(), errors: 0, ownersRestored: true } });
    expect(kopiaCalls(run.log, 'snapshot', 'restore')[0]).toContain('--delete-extra');
    outsideUntouched();
    expect(inventory(target)).toEqual(expected);
  });

  it('puts back what a restore killed before the end had set aside', async () => {
    const target = await changedVolume();
    // What a killed run leaves: the aside directory with its manifest, the entries in it.
    const aside = join(target, '.kopia-restore-aside.Killed');
    mkdirSync(aside, { mode: 0o700 });
    writeFileSync(join(aside, 'manifest.json'), JSON.stringify({ kind: 'kopia-operator/restore-aside/v1', entries: ['extra-dir/kept'] }));
    symlinkSync('inner/file', join(aside, '0'));
    const run = await restore(request({ deleteExtra: false }), target);
    expect(run.result).toMatchObject({ ok: true });
    expect(lstatSync(join(target, 'extra-dir/kept')).isSymbolicLink()).toBe(true);
    expect(readdirSync(target).filter((n) => n.startsWith('.kopia-restore'))).toEqual([]);
    outsideUntouched();
  });
});

describe('failures', () => {
  it('a snapshot id the repository does not have: SnapshotNotFound naming it, nothing written', async () => {
    const target = newTarget();
    const missing = 'deadbeefdeadbeefdeadbeefdeadbeef';
    const run = await restore(request({}, { snapshotID: missing }), target);
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({
      ok: false,
      operation: 'restore',
      errorClass: 'SnapshotNotFound',
      message: expect.stringContaining(missing),
    });
    expect(readdirSync(target)).toEqual([]);
    expect(kopiaCalls(run.log, 'snapshot', 'restore')).toEqual([]);
  });

  it('an id that is not a snapshot id: refused before connecting', async () => {
    const run = await restore(request({}, { snapshotID: '--delete-extra' }), newTarget());
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({ ok: false, errorClass: 'InvalidRequest' });
    expect(kopiaCalls(run.log, 'repository', 'connect')).toEqual([]);
  });

  it('a wrong password: WrongPassword, the volume untouched', async () => {
    const target = newTarget();
    writeFileSync(join(target, 'existing'), 'data');
    symlinkSync('existing', join(target, 'link'));
    const before = inventory(target);
    const run = await restore(request({ deleteExtra: true }), target, { env: { KOPIA_PASSWORD: 'not the password' } });
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({ ok: false, operation: 'restore', errorClass: 'WrongPassword' });
    expect(inventory(target)).toEqual(before);
  });

  it('a repository other than the one verified before: RepositoryChanged, nothing written', async () => {
    const target = newTarget();
    const run = await restore(request({}, { repository: { ...FILESYSTEM_REPOSITORY, expectedUniqueID: '0'.repeat(64) } }), target);
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({ ok: false, errorClass: 'RepositoryChanged' });
    expect(readdirSync(target)).toEqual([]);
  });

  it('a volume the mover may not write: a clear failure, not Unreachable', async () => {
    const target = newTarget();
    chmodSync(target, 0o755);
    const run = await restore(request({ restoreOwners: false }), target, { runAs: { uid: NOBODY, gid: NOBODY } });
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({ ok: false, errorClass: 'Other', message: expect.stringContaining('/data') });
  });
});

describe('a pin change after the Restore pinned the snapshot', () => {
  it('kopia saves the pinned snapshot under a new id; the mover finds it by start time and root object and says which id it restored', async () => {
    const small = mkdtempSync(join(scratch, 'pinned-'));
    writeFileSync(join(small, 'kept.txt'), 'pinned before the restore\n');
    await kopia.k('snapshot', 'create', small, '--override-source=app@cluster-a:/pinned', '--no-auto-maintenance');
    const before = (await kopia.snapshots()).find((s) => s.source.path === '/pinned')!;
    await kopia.k('snapshot', 'pin', '--add=keep', before.id, '--no-auto-maintenance');
    const after = (await kopia.snapshots()).find((s) => s.source.path === '/pinned')!;
    chownTree(kopia.repoDir, NOBODY, NOBODY);
    // What the issue reports: the same snapshot, another manifest id.
    expect(after.id).not.toBe(before.id);
    expect(after.startTime).toBe(before.startTime);

    const lost = newTarget();
    const byIdOnly = await restore(request({}, { snapshotID: before.id }), lost);
    expect(byIdOnly.result).toMatchObject({ ok: false, errorClass: 'SnapshotNotFound' });

    const target = newTarget();
    const sameAs = { startTime: before.startTime, rootID: before.rootEntry!.obj! };
    const run = await restore(request({}, { snapshotID: before.id, sameAs }), target);
    expect(run.result).toMatchObject({ ok: true, restored: { snapshotID: after.id, files: 1 } });
    expect(readFileSync(join(target, 'kept.txt'), 'utf8')).toBe('pinned before the restore\n');
  });
});
