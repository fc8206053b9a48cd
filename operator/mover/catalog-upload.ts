// The catalog upload's wire format, shared by the mover (which encodes) and the operator's
// intake (which decodes). Pure: no I/O.
//
//   body    = gzip(NDJSON): one CatalogSnapshot as JSON per line, each line ending in "\n"
//   request = POST <upload url>, header `authorization: Bearer <upload token>`,
//             content-type application/x-ndjson, content-encoding gzip
//
// The token is random, made by the operator for this one upload and handed to the mover
// through a Secret (ADR 0005); nothing on the wire is derived from the repository password.
import { StringDecoder } from 'node:string_decoder';
import { createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import type { CatalogSnapshot } from './mover-contract.js';

export const CATALOG_CONTENT_TYPE = 'application/x-ndjson';
export const CATALOG_CONTENT_ENCODING = 'gzip';
/**
 * The most a decoded catalog may hold: a guard against a small body inflating without end.
 * A trimmed snapshot is ~0.3-0.5 KiB, so this is room for several hundred thousand.
 */
export const CATALOG_MAX_DECODED_BYTES = 256 * 1024 * 1024;

export function encodeCatalog(snapshots: readonly CatalogSnapshot[]): Buffer {
  // One string per line joined once: 10,000+ entries stay a single pass and a single gzip.
  const lines = snapshots.map((s) => `${JSON.stringify(s)}\n`);
  return gzipSync(Buffer.from(lines.join(''), 'utf8'));
}

/** The body passed the intake's limit: answered 413, not 400. */
export class UploadTooLarge extends Error {}

function isCatalogSnapshot(v: unknown): v is CatalogSnapshot {
  const s = v as CatalogSnapshot;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.id === 'string' &&
    s.id !== '' &&
    typeof s.startTime === 'string' &&
    typeof s.source === 'object' &&
    s.source !== null &&
    typeof s.source.username === 'string' &&
    typeof s.source.hostname === 'string' &&
    typeof s.source.path === 'string' &&
    typeof s.stats === 'object' &&
    s.stats !== null
  );
}

function parseLine(json: string, line: number): CatalogSnapshot {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new Error(`catalog line ${line} is not JSON: ${(e as Error).message}`);
  }
  if (!isCatalogSnapshot(parsed)) throw new Error(`catalog line ${line} is not a snapshot (id, source, startTime and stats are required)`);
  return parsed;
}

/**
 * The snapshots of a body made by encodeCatalog. Throws on a body that is not gzip, grows
 * past maxDecodedBytes, or holds a line that is not a CatalogSnapshot (naming the line):
 * a catalog is taken whole or not at all.
 */
export function decodeCatalog(body: Buffer, maxDecodedBytes = CATALOG_MAX_DECODED_BYTES): CatalogSnapshot[] {
  const text = gunzipSync(body, { maxOutputLength: maxDecodedBytes }).toString('utf8');
  const out: CatalogSnapshot[] = [];
  let start = 0;
  let line = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    line++;
    const json = text.slice(start, end);
    start = end + 1;
    if (json.trim() !== '') out.push(parseLine(json, line));
  }
  return out;
}

/** What the operator keeps of a snapshot: what the mirror and Restores read (no tags). */
export type MirroredSnapshot = Omit<CatalogSnapshot, 'tags'>;

function trimmed(s: CatalogSnapshot): MirroredSnapshot {
  const out: MirroredSnapshot = {
    id: s.id,
    source: { username: s.source.username, hostname: s.source.hostname, path: s.source.path },
    startTime: s.startTime,
    stats: s.stats,
  };
  if (s.endTime !== undefined) out.endTime = s.endTime;
  if (s.incompleteReason !== undefined) out.incompleteReason = s.incompleteReason;
  if (s.rootID !== undefined) out.rootID = s.rootID;
  if (s.retentionReasons?.length) out.retentionReasons = s.retentionReasons;
  if (s.pins?.length) out.pins = s.pins;
  return out;
}

/** Waits for a stream to drain or close, leaving no listener behind (a long body waits thousands of times). */
function drainedOrClosed(stream: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done).off('close', done);
      resolve();
    };
    stream.on('drain', done).on('close', done);
  });
}

/**
 * Decodes a body as it arrives — inflating and parsing it a chunk at a time, keeping each
 * snapshot trimmed — so neither the body nor its text is ever held whole (30,000 snapshots
 * are ~25 MB of text). Throws as decodeCatalog does, and UploadTooLarge as soon as the body
 * passes maxBodyBytes or inflates past maxDecodedBytes: nothing more of it is read.
 */
export async function decodeCatalogStream(
  body: AsyncIterable<Buffer>,
  limits: { maxBodyBytes: number; maxDecodedBytes?: number },
): Promise<MirroredSnapshot[]> {
  const maxDecoded = limits.maxDecodedBytes ?? CATALOG_MAX_DECODED_BYTES;
  const gunzip = createGunzip();
  const feeding = (async () => {
    let size = 0;
    for await (const chunk of body) {
      size += chunk.length;
      if (size > limits.maxBodyBytes) throw new UploadTooLarge(`upload larger than ${limits.maxBodyBytes} bytes`);
      if (!gunzip.write(chunk)) await drainedOrClosed(gunzip);
      if (gunzip.destroyed) return; // the reader gave up (a bad line): stop taking the body
    }
    gunzip.end();
  })().catch((e: unknown) => {
    gunzip.destroy(e as Error);
    throw e;
  });
  const text = new StringDecoder('utf8');
  const snapshots: MirroredSnapshot[] = [];
  let partial = '';
  let line = 0;
  let decoded = 0;
  const take = (json: string) => {
    line++;
    if (json.trim() !== '') snapshots.push(trimmed(parseLine(json, line)));
  };
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      decoded += chunk.length;
      if (decoded > maxDecoded) throw new UploadTooLarge(`catalog larger than ${maxDecoded} bytes decoded`);
      const lines = (partial + text.write(chunk)).split('\n');
      partial = lines.pop()!;
      for (const json of lines) take(json);
    }
    take(partial + text.end());
  } catch (e) {
    gunzip.destroy();
    await feeding.catch(() => undefined);
    throw e;
  }
  await feeding;
  return snapshots;
}
