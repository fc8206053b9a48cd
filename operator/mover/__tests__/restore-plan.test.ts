import { classifyRestoreError } from '../kopia-errors.js';
import {
  effectiveCapabilities,
  hasCapability,
  isContainedPath,
  ownersDecision,
  parseAsideManifest,
  parseRestoreSummary,
  restoreRequestProblem,
} from '../restore-plan.js';
import type { RestoreRequest } from '../mover-contract.js';

const request = (over: Partial<RestoreRequest['options']> = {}, snapshotID = '0123456789abcdef0123456789abcdef'): RestoreRequest =>
  ({
    operation: 'restore',
    snapshotID,
    options: { deleteExtra: false, parallel: 8, ignorePermissionErrors: true, restoreOwners: false, ...over },
  }) as RestoreRequest;

describe('restore request', () => {
  it('accepts a well-formed request', () => expect(restoreRequestProblem(request())).toBeUndefined());
  it.each([
    [request({}, 'not-an-id'), /not a snapshot id/],
    [request({ parallel: 0 }), /parallel must be an integer from 1 to 256/],
    [request({ parallel: 1.5 }), /parallel/],
    [request({ deleteExtra: 'yes' as unknown as boolean }), /options.deleteExtra must be true or false/],
  ])('refuses %#', (req, message) => expect(restoreRequestProblem(req)).toMatch(message));
});

describe("kopia's restore summary", () => {
  it('reads the counts from the last summary line', () => {
    const stderr =
      'Restoring to local filesystem (/data) with parallelism=8...\n' +
      'Restored 7 files, 4 directories and 3 symbolic links (8.7 MB), deleted directories 1, deleted files 2, deleted symbolic links 3, ignored 2 errors.\n';
    expect(parseRestoreSummary(stderr)).toEqual({ files: 7, dirs: 4, symlinks: 3, deleted: 6, ignoredErrors: 2 });
  });
  it('is undefined without one', () => expect(parseRestoreSummary('ERROR something')).toBeUndefined());
});

describe('owners', () => {
  it('are given back only when asked and possible; refused only when errors are not tolerated', () => {
    expect(ownersDecision(false, true, false)).toBe('skip');
    expect(ownersDecision(true, true, false)).toBe('restore');
    expect(ownersDecision(true, false, true)).toBe('skip');
    expect(ownersDecision(true, false, false)).toBe('refuse');
  });
  it('CAP_CHOWN is read from the effective set', () => {
    const root = effectiveCapabilities('Name:\tnode\nCapEff:\t000001ffffffffff\n');
    const nobody = effectiveCapabilities('CapEff:\t0000000000000000\n');
    expect(hasCapability(root, 0)).toBe(true);
    expect(hasCapability(nobody, 0)).toBe(false);
    expect(hasCapability(effectiveCapabilities('no such line'), 0)).toBe(false);
  });
});

describe('the aside manifest', () => {
  it('takes only paths that stay inside the volume', () => {
    expect(isContainedPath('a/b')).toBe(true);
    for (const bad of ['', '/etc', 'a/../..', './a', 'a//b', 'a\0b']) expect(isContainedPath(bad)).toBe(false);
    const kind = 'kopia-operator/restore-aside/v1';
    expect(parseAsideManifest(JSON.stringify({ kind, entries: ['x/y'] }))).toEqual({ kind, entries: ['x/y'] });
    expect(parseAsideManifest(JSON.stringify({ kind, entries: ['../x'] }))).toBeUndefined();
    expect(parseAsideManifest(JSON.stringify({ kind: 'other', entries: [] }))).toBeUndefined();
    expect(parseAsideManifest('not json')).toBeUndefined();
  });
});

describe('restore failures', () => {
  it('permission denied on the volume is the volume’s problem, on the repository it is Unreachable', () => {
    expect(classifyRestoreError('ERROR open /data/app.db: permission denied', '/data').errorClass).toBe('Other');
    expect(classifyRestoreError('ERROR open /repository/kopia.repository.f: permission denied', '/data').errorClass).toBe('Unreachable');
    expect(classifyRestoreError('ERROR open /database/x: permission denied', '/data').errorClass).toBe('Unreachable');
    expect(classifyRestoreError('invalid repository password', '/data').errorClass).toBe('WrongPassword');
  });
});
