// The catalog wire format: what the mover sends and the operator's intake accepts.
import { gzipSync } from 'node:zlib';
import { decodeCatalog, decodeCatalogStream, encodeCatalog, UploadTooLarge } from '../catalog-upload.js';
import type { CatalogSnapshot } from '../mover-contract.js';

function generated(n: number): CatalogSnapshot[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i.toString(16).padStart(32, '0'),
    source: { username: `app-${i % 37}`, hostname: 'cluster-a', path: '/data' },
    startTime: new Date(Date.UTC(2026, 0, 1) + i * 3_600_000).toISOString(),
    endTime: new Date(Date.UTC(2026, 0, 1) + i * 3_600_000 + 42_000).toISOString(),
    rootID: `k${i.toString(16).padStart(32, 'a')}`,
    stats: { totalBytes: i * 1000, files: i, dirs: 3, errors: 0, ignoredErrors: 0 },
    tags: { app: `app-${i % 37}`, 'mover-uid': '65534', 'mover-gid': '65534' },
    retentionReasons: i % 3 === 0 ? ['latest-1', 'daily-2'] : [],
    ...(i % 1000 === 0 ? { incompleteReason: 'checkpoint' } : {}),
    ...(i % 500 === 0 ? { pins: ['kopia-operator'] } : {}),
  }));
}

describe('encode and decode', () => {
  it('round-trips 12,000 snapshots as gzip NDJSON, one snapshot per line', () => {
    const snapshots = generated(12_000);
    const body = encodeCatalog(snapshots);
    expect(decodeCatalog(body)).toEqual(snapshots);
    // Compressed well below the raw size (~4 MB): repeated field names and sources.
    expect(body.length).toBeLessThan(1024 * 1024);
    expect(body.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
  });

  it('encodes an empty catalog, which decodes to no snapshots', () => {
    expect(decodeCatalog(encodeCatalog([]))).toEqual([]);
  });

  it('keeps characters outside ASCII in paths and tags', () => {
    const [s] = generated(1);
    const odd = { ...s, source: { ...s.source, path: '/data/Ünïcødé 😀\nline' }, tags: { ключ: 'значение' } };
    expect(decodeCatalog(encodeCatalog([odd]))).toEqual([odd]);
  });

  it('refuses a line that is not JSON or not a snapshot, naming it', () => {
    const good = JSON.stringify(generated(1)[0]);
    expect(() => decodeCatalog(gzipSync(`${good}\n{"id":\n`))).toThrow('line 2 is not JSON');
    expect(() => decodeCatalog(gzipSync(`${good}\n{"id":"x"}\n`))).toThrow('line 2 is not a snapshot');
  });

  it('refuses a body that is not gzip', () => {
    expect(() => decodeCatalog(Buffer.from('{"id":"x"}\n'))).toThrow();
  });

  it('refuses a body that inflates past the limit', () => {
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(() => decodeCatalog(bomb, 1024 * 1024)).toThrow();
  });
});

describe('decoding as the body streams in (the intake)', () => {
  async function* chunks(body: Buffer, size = 4096): AsyncIterable<Buffer> {
    for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
  }
  const limits = { maxBodyBytes: 64 * 1024 * 1024 };

  it('gives the snapshots trimmed to what the mirror keeps', async () => {
    const snapshots = generated(12_000);
    const body = encodeCatalog(snapshots);
    const decoded = await decodeCatalogStream(chunks(body), limits);
    expect(decoded).toEqual(
      snapshots.map(({ tags: _tags, ...s }) => ({
        ...s,
        ...(s.retentionReasons?.length ? {} : { retentionReasons: undefined }),
      })),
    );
  });

  it('refuses a bad line by its number, a body past its limit and one that inflates past the limit', async () => {
    const good = JSON.stringify(generated(1)[0]);
    await expect(decodeCatalogStream(chunks(gzipSync(`${good}\n{"id":"x"}\n`), 7), limits)).rejects.toThrow('line 2 is not a snapshot');
    const body = encodeCatalog(generated(2000));
    await expect(decodeCatalogStream(chunks(body), { maxBodyBytes: body.length - 1 })).rejects.toThrow(UploadTooLarge);
    await expect(decodeCatalogStream(chunks(body), { maxBodyBytes: body.length - 1 })).rejects.toThrow('upload larger than');
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20));
    await expect(decodeCatalogStream(chunks(bomb), { ...limits, maxDecodedBytes: 1024 * 1024 })).rejects.toThrow(UploadTooLarge);
    await expect(decodeCatalogStream(chunks(Buffer.from('{"id":"x"}\n')), limits)).rejects.toThrow();
  });
});
