// Parsing kopia 0.23's JSON, with output captured from the real binary as fixtures.
import {
  fileErrorsOf,
  isSameSource,
  parseCreatedSnapshot,
  parsePolicyExport,
  parseSnapshotList,
  toCatalogSnapshot,
  userTags,
} from '../kopia-json.js';

/** `snapshot create --json` as a non-root mover met an unreadable 0600 file (kopia then exited 1). */
const createdWithFileError =
  '{"id":"a7dff7dfd7db6a49244c95c1946bb818","source":{"host":"h","userName":"u","path":"/tmp/kx/src"},"description":"","startTime":"2026-11-27T14:58:34.150792553Z","endTime":"2026-11-27T14:58:34.154035136Z","rootEntry":{"name":"src","type":"d","mode":"0755","mtime":"2026-11-27T14:58:04.020359168Z","obj":"k10e5b8c7671329e2a434e7e218eef11d","summ":{"size":3,"files":1,"symlinks":0,"dirs":2,"maxTime":"2026-11-27T14:58:20.171783021Z","numFailed":1,"errors":[{"path":"a/private","error":"unable to open file: unable to open local file: open /tmp/kx/src/a/private: permission denied"}]}},"tags":{"tag:a":"b","tag:mover-uid":"65534"},"pins":["kopia-operator"]}\n';

/** `snapshot list <source> --json`: a complete snapshot and an incomplete one. */
const listed = `[
 {"id":"247501bc686c29c13d482d57ffeefa0d","source":{"host":"h","userName":"u","path":"/tmp/kx/src"},"description":"","startTime":"2026-11-27T14:58:36.581108623Z","endTime":"2026-11-27T14:58:36.583672421Z","stats":{"totalSize":10,"fileCount":1,"dirCount":2,"errorCount":0},"rootEntry":{"name":"src","type":"d","mode":"0755","obj":"k352e6b4356e25da7eba34c40988395db","summ":{"size":10,"files":2,"symlinks":0,"dirs":2,"numFailed":0}},"pins":["x"],"retentionReason":["latest-1","hourly-1","daily-1","weekly-1","monthly-1","annual-1"]},
 {"id":"f44fc36e961c8bcdeb3d694a7861074c","source":{"host":"h","userName":"u","path":"/tmp/kx/src"},"description":"","startTime":"2026-11-27T14:58:36.937320899Z","endTime":"2026-11-27T14:58:36.942205272Z","incomplete":"limit reached","rootEntry":{"name":"src","type":"d","mode":"0755","obj":"k3084cf4e643f6a920b8d27ff035964ec","summ":{"size":10,"files":2,"symlinks":0,"dirs":2,"incomplete":"limit reached","numFailed":0}},"retentionReason":["incomplete"]}
]
`;

describe('snapshot create output', () => {
  it('yields the saved manifest even when kopia then failed for file errors', () => {
    const saved = parseCreatedSnapshot(createdWithFileError)!;
    expect(saved.id).toBe('a7dff7dfd7db6a49244c95c1946bb818');
    expect(fileErrorsOf(saved)).toEqual({
      count: 1,
      examples: ['a/private: unable to open file: unable to open local file: open /tmp/kx/src/a/private: permission denied'],
    });
  });

  it('yields nothing when kopia printed no manifest', () => {
    expect(parseCreatedSnapshot('')).toBeUndefined();
    expect(parseCreatedSnapshot('{"id":')).toBeUndefined();
  });

  it('reports no file errors for a clean snapshot, and caps examples and their length', () => {
    const clean = parseSnapshotList(listed)[0];
    expect(fileErrorsOf(clean)).toBeUndefined();
    const many = {
      ...clean,
      rootEntry: {
        summ: { numFailed: 12, errors: Array.from({ length: 10 }, (_, i) => ({ path: `f${i}`, error: 'x'.repeat(500) })) },
      },
    };
    const errors = fileErrorsOf(many)!;
    expect(errors.count).toBe(12);
    expect(errors.examples).toHaveLength(5);
    expect(Math.max(...errors.examples.map((e) => e.length))).toBeLessThanOrEqual(200);
  });
});

describe('snapshot list output', () => {
  it('parses manifests and trims them to catalog entries with the contract names', () => {
    const [complete, incomplete] = parseSnapshotList(listed).map(toCatalogSnapshot);
    expect(complete).toEqual({
      id: '247501bc686c29c13d482d57ffeefa0d',
      source: { username: 'u', hostname: 'h', path: '/tmp/kx/src' },
      startTime: '2026-11-27T14:58:36.581108623Z',
      endTime: '2026-11-27T14:58:36.583672421Z',
      rootID: 'k352e6b4356e25da7eba34c40988395db',
      stats: { totalBytes: 10, files: 2, dirs: 2, errors: 0, ignoredErrors: 0 },
      retentionReasons: ['latest-1', 'hourly-1', 'daily-1', 'weekly-1', 'monthly-1', 'annual-1'],
      pins: ['x'],
    });
    expect(incomplete).toMatchObject({ incompleteReason: 'limit reached', retentionReasons: ['incomplete'] });
    expect(incomplete.pins).toBeUndefined();
  });

  it('takes an empty list', () => {
    expect(parseSnapshotList('[]\n')).toEqual([]);
    expect(parseSnapshotList('')).toEqual([]);
  });

  it('refuses what is not a list of manifests', () => {
    expect(() => parseSnapshotList('{}')).toThrow('array');
    expect(() => parseSnapshotList('[{"id":"x"}]')).toThrow('#0');
  });

  it('matches the exact source (kopia also lists snapshots of parent paths)', () => {
    const [s] = parseSnapshotList(listed);
    expect(isSameSource(s, { username: 'u', hostname: 'h', path: '/tmp/kx/src' })).toBe(true);
    expect(isSameSource(s, { username: 'u', hostname: 'h', path: '/tmp/kx/src/sub' })).toBe(false);
  });
});

describe('tags', () => {
  it("drops kopia's tag: prefix from user tags", () => {
    expect(userTags({ 'tag:app': 'media', 'tag:mover-uid': '65534', other: 'kept' })).toEqual({
      app: 'media',
      'mover-uid': '65534',
      other: 'kept',
    });
    expect(userTags({})).toBeUndefined();
    expect(toCatalogSnapshot(parseCreatedSnapshot(createdWithFileError)!).tags).toEqual({ a: 'b', 'mover-uid': '65534' });
  });
});

describe('policy export', () => {
  it('is keyed by target', () => {
    const exported = parsePolicyExport(
      '{"(global)":{"retention":{"keepLatest":10}},"u@h:/data":{"retention":{"keepLatest":3},"files":{"ignore":["x"]}}}\n',
    );
    expect(exported['u@h:/data']).toEqual({ retention: { keepLatest: 3 }, files: { ignore: ['x'] } });
    expect(() => parsePolicyExport('[]')).toThrow();
  });
});
