// The mover's edit against a real repository: many deletions in one kopia call with some
// ids already gone, and pin changes (which kopia saves under new snapshot ids).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EditRequest, MoverSuccess } from '../../operator/mover/mover-contract.js';
import { ensureTestBinaries } from '../support/control-plane.js';
import { runMover } from '../support/run-mover.js';
import { FILESYSTEM_REPOSITORY, kopiaCalls, PlainKopia, type KopiaListed } from './plain-kopia.js';

const PASSWORD = 'edit test password';
let kopiaBinDir: string;
let scratch: string;
let data: string;
beforeAll(() => {
  kopiaBinDir = ensureTestBinaries(['kopia']);
  scratch = mkdtempSync(join(tmpdir(), 'mover-edit-'));
  data = join(scratch, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'file'), 'content');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** 20 snapshots of media@cluster-a:/data and 10 of admin@setup:<data>, none expiring. */
async function repositoryWithHistory(): Promise<{ kopia: PlainKopia; media: KopiaListed[]; admin: KopiaListed[] }> {
  const kopia = await new PlainKopia(join(kopiaBinDir, 'kopia'), mkdtempSync(join(scratch, 'k-')), PASSWORD).create();
  await kopia.k('policy', 'set', '--global', '--keep-latest=100000');
  await kopia.k('snapshot', 'create', ...Array<string>(20).fill(data), '--override-source=media@cluster-a:/data', '--no-auto-maintenance');
  await kopia.k('snapshot', 'create', ...Array<string>(10).fill(data), '--no-auto-maintenance');
  const all = (await kopia.snapshots()).sort((a, b) => a.startTime.localeCompare(b.startTime));
  return { kopia, media: all.filter((s) => s.source.userName === 'media'), admin: all.filter((s) => s.source.userName === 'admin') };
}

const editRequest = (edits: Pick<EditRequest, 'delete' | 'pin' | 'unpin'>): EditRequest => ({
  operation: 'edit',
  repository: FILESYSTEM_REPOSITORY,
  identity: { username: 'kopia-operator', hostname: 'edit' },
  ...edits,
});

it("kopia's own delete saves nothing when one id is missing (why the mover filters first)", async () => {
  const { kopia, media } = await repositoryWithHistory();
  const out = await kopia.run('snapshot', 'delete', media[0].id, 'deadbeefdeadbeefdeadbeefdeadbeef', '--delete', '--no-auto-maintenance');
  expect(out.code).not.toBe(0);
  expect((await kopia.snapshots()).map((s) => s.id)).toContain(media[0].id);
  // and without --delete it is a dry run
  await kopia.k('snapshot', 'delete', media[0].id, '--no-auto-maintenance');
  expect((await kopia.snapshots()).map((s) => s.id)).toContain(media[0].id);
});

it('deletes 15 requested ids in one kopia call, 3 of them already gone, and changes pins', async () => {
  const { kopia, media, admin } = await repositoryWithHistory();
  // Two requested ids were deleted by someone else before; one never existed.
  await kopia.k('snapshot', 'delete', media[0].id, media[1].id, '--delete', '--no-auto-maintenance');
  const toDelete = [...media.slice(0, 10).map((s) => s.id), ...admin.slice(0, 4).map((s) => s.id), 'feedfacefeedfacefeedfacefeedface'];
  expect(toDelete).toHaveLength(15);
  // Pinned before: one with the operator's pin (to unpin), one already as wanted.
  await kopia.k('snapshot', 'pin', media[15].id, media[16].id, '--add=kopia-operator', '--no-auto-maintenance');
  const pinnedBefore = (await kopia.snapshots()).filter((s) => s.pins?.includes('kopia-operator'));
  const [unpinTarget, alreadyPinned] = [media[15], media[16]].map((old) => pinnedBefore.find((s) => s.startTime === old.startTime)!);

  const request = editRequest({
    delete: toDelete,
    pin: [media[12].id, admin[8].id, alreadyPinned.id, media[5].id /* being deleted */],
    unpin: [unpinTarget.id, media[18].id /* not pinned */],
  });
  const run = await runMover(request, { kopiaBinDir, repositoryDir: kopia.repoDir, env: { KOPIA_PASSWORD: PASSWORD } });
  expect(run.result).toMatchObject({ ok: true, operation: 'edit', edited: { deleted: 12, alreadyGone: 3, pinned: 2, unpinned: 1 } });
  expect(run.code).toBe(0);

  const deletes = kopiaCalls(run.log, 'snapshot', 'delete');
  expect(deletes).toHaveLength(1);
  expect(deletes[0].filter((a) => /^[0-9a-f]{32}$/.test(a)).sort()).toEqual(
    toDelete.filter((id) => id !== 'feedfacefeedfacefeedfacefeedface' && id !== media[0].id && id !== media[1].id).sort(),
  );
  expect(deletes[0]).toEqual(expect.arrayContaining(['--delete', '--no-auto-maintenance']));
  expect(kopiaCalls(run.log, 'snapshot', 'pin')).toHaveLength(2);

  const after = await kopia.snapshots();
  const ids = new Set(after.map((s) => s.id));
  for (const id of toDelete) expect(ids.has(id)).toBe(false);
  expect(after).toHaveLength(30 - 2 - 12);

  // kopia saved each re-pinned snapshot under a new id; the result says which.
  const newIDs = (run.result as MoverSuccess).edited!.newIDs!;
  expect(Object.keys(newIDs).sort()).toEqual([media[12].id, admin[8].id, unpinTarget.id].sort());
  for (const [old, now] of Object.entries(newIDs)) {
    expect(ids.has(old)).toBe(false);
    const snapshot = after.find((s) => s.id === now)!;
    expect(snapshot.pins?.includes('kopia-operator') ?? false).toBe(old !== unpinTarget.id);
  }
  expect(after.find((s) => s.id === alreadyPinned.id)?.pins).toEqual(['kopia-operator']);

  // The same request again finds everything done: nothing is called to delete or pin.
  const again = await runMover(request, { kopiaBinDir, repositoryDir: kopia.repoDir, env: { KOPIA_PASSWORD: PASSWORD } });
  expect(again.result).toMatchObject({ ok: true, edited: { deleted: 0, alreadyGone: 15, pinned: 0, unpinned: 0 } });
  expect(kopiaCalls(again.log, 'snapshot', 'delete')).toEqual([]);
  expect(kopiaCalls(again.log, 'snapshot', 'pin')).toEqual([]);
  expect(await kopia.snapshots()).toHaveLength(16);
});

it('refuses ids that are not snapshot ids before touching the repository', async () => {
  const { kopia, media } = await repositoryWithHistory();
  const run = await runMover(editRequest({ delete: [media[0].id, '--all-snapshots-for-source'], pin: [], unpin: [] }), {
    kopiaBinDir,
    repositoryDir: kopia.repoDir,
    env: { KOPIA_PASSWORD: PASSWORD },
  });
  expect(run.code).not.toBe(0);
  expect(run.result).toMatchObject({ ok: false, errorClass: 'InvalidRequest' });
  expect(kopiaCalls(run.log, 'repository')).toEqual([]);
  expect(await kopia.snapshots()).toHaveLength(30);
});
