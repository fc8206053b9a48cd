// Attacks on the operator's catalog intake, against the real HTTP server on 127.0.0.1: a
// forged request, an oversize body, a second request for one upload id, an unknown id and a
// request signed the old way (an HMAC keyed with the repository password). What the server
// read is measured on its own sockets (bytesRead), not guessed from timings.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { jest } from '@jest/globals';
import winston from 'winston';
import { encodeCatalog } from '../../mover/catalog-upload.js';
import type { CatalogSnapshot } from '../../mover/mover-contract.js';
import { CatalogIntake } from '../catalog-intake.js';

const LIMIT = 1024 * 1024;
/** What a refused request may have had read of it: its head and what one socket read brings (64 KiB). */
const READ_BEFORE_REFUSAL = 128 * 1024;
const PASSWORD = 'the repository password';
const quietLog = winston.createLogger({ silent: true });

function generated(n: number, from = 0): CatalogSnapshot[] {
  return Array.from({ length: n }, (_, j) => {
    const i = from + j;
    return {
      id: i.toString(16).padStart(32, '0'),
      source: { username: `app-${i % 37}`, hostname: 'cluster-a', path: '/data' },
      startTime: new Date(Date.UTC(2026, 0, 1) + i * 3_600_000).toISOString(),
      rootID: `k${i.toString(16).padStart(32, 'a')}`,
      stats: { totalBytes: i * 1000, files: i, dirs: 3, errors: 0 },
    };
  });
}

let intake: CatalogIntake;
/** Every connection the intake's server accepted, in order. */
let sockets: Socket[];

beforeEach(async () => {
  sockets = [];
  const createServer = http.createServer.bind(http);
  jest
    .spyOn(http, 'createServer')
    .mockImplementationOnce(((...args: Parameters<typeof http.createServer>) =>
      createServer(...args).on('connection', (s: Socket) => sockets.push(s))) as typeof http.createServer);
  const options = { port: 0, host: '127.0.0.1', maxUploadBytes: LIMIT };
  intake = new CatalogIntake(options, quietLog);
  await intake.start();
});
afterEach(() => {
  intake.stop();
  jest.restoreAllMocks();
});

/** Bytes the intake read from connection i (its request head and whatever of the body it took). */
async function serverRead(i: number): Promise<number> {
  const s = sockets[i];
  if (!s.destroyed) await new Promise((r) => setTimeout(r, 200));
  return s.bytesRead;
}

interface Answer {
  status?: number;
  text?: string;
  /** The connection failed (reset) before an answer came. */
  error?: string;
}

/**
 * POSTs body to the intake on a connection of its own. chunked: no content-length, written a
 * piece at a time; `hold` keeps the last piece back until it resolves.
 */
function post(
  url: string,
  headers: Record<string, string>,
  body: Buffer,
  opts: { chunked?: boolean; hold?: Promise<void> } = {},
): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.request(url, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/x-ndjson',
        'content-encoding': 'gzip',
        ...headers,
        ...(opts.chunked ? {} : { 'content-length': String(body.length) }),
      },
    });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', (e) => {
      if (!answered) resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message });
    });
    void (async () => {
      const piece = 64 * 1024;
      const last = opts.hold ? body.length - piece : body.length;
      for (let i = 0; i < last && !req.destroyed; i += piece) {
        if (!req.write(body.subarray(i, Math.min(i + piece, last))))
          await new Promise<void>((resolve) => {
            const done = () => {
              req.off('drain', done).off('close', done);
              resolve();
            };
            req.on('drain', done).on('close', done);
          });
      }
      if (opts.hold) {
        await opts.hold;
        if (!req.destroyed) req.write(body.subarray(last));
      }
      if (!req.destroyed) req.end();
    })();
  });
}

interface Credentials {
  id: string;
  headers: (path: string, body: Buffer) => Record<string, string>;
}
/** An upload the operator expects, and what its mover (holding the token from its Secret) sends. */
function register(onReceived: () => void = () => undefined): Credentials {
  const id = randomBytes(16).toString('hex');
  const token = randomBytes(32).toString('hex');
  intake.expect(id, { token, onReceived });
  return { id, headers: () => ({ authorization: `Bearer ${token}` }) };
}

/** The signature the mover made before this fix: HMAC-SHA256 keyed with the repository password. */
function passwordHmac(path: string, body: Buffer): string {
  return createHmac('sha256', PASSWORD)
    .update(`${path}\n${createHash('sha256').update(body).digest('hex')}`)
    .digest('hex');
}

const pathOf = (id: string) => `/v1/catalog/${id}`;

it('takes the upload of an expected id with its credentials', async () => {
  let received = 0;
  const up = register(() => received++);
  const body = encodeCatalog(generated(500));
  const answer = await post(intake.url(up.id), up.headers(pathOf(up.id), body), body);
  expect(answer.status).toBe(204);
  expect(intake.get(up.id)).toHaveLength(500);
  expect(received).toBe(1);
});

it("tells the size of an upload's body as it came (gzip bytes), for the repository's status and metrics", async () => {
  const up = register();
  const body = encodeCatalog(generated(500));
  expect((await post(intake.url(up.id), up.headers(pathOf(up.id), body), body)).status).toBe(204);
  expect(intake.size(up.id)).toBe(body.length);
  intake.forget(up.id);
  expect(intake.size(up.id)).toBeUndefined();
});

it('refuses a request without the upload token before reading its body, and the real upload still goes through', async () => {
  const up = register();
  const forged = randomBytes(4 * LIMIT);
  const answer = await post(intake.url(up.id), {}, forged);
  expect(answer.status ?? answer.error).toBe(401);
  expect(await serverRead(0)).toBeLessThan(READ_BEFORE_REFUSAL);
  expect(intake.get(up.id)).toBeUndefined();

  const body = encodeCatalog(generated(3));
  expect((await post(intake.url(up.id), up.headers(pathOf(up.id), body), body)).status).toBe(204);
  expect(intake.get(up.id)).toHaveLength(3);
});

it('refuses a request signed with an HMAC keyed by the repository password (the old scheme), so nothing on the wire tests a password guess', async () => {
  const up = register();
  const body = encodeCatalog(generated(3));
  const answer = await post(intake.url(up.id), { 'x-kopia-catalog-signature': passwordHmac(pathOf(up.id), body) }, body);
  expect(answer.status).toBe(401);
  expect(intake.get(up.id)).toBeUndefined();
});

it('cuts a streamed body off at the limit (413) without reading the rest, and says so for the listing', async () => {
  const up = register();
  // A valid catalog, stored without compression: ~13 MB, well past the 1 MiB limit.
  const text = generated(40_000)
    .map((s) => `${JSON.stringify(s)}\n`)
    .join('');
  const body = gzipSync(text, { level: 0 });
  expect(body.length).toBeGreaterThan(LIMIT * 8);
  const answer = await post(intake.url(up.id), up.headers(pathOf(up.id), body), body, { chunked: true });
  // The intake answers 413 and closes; a client still writing may see the reset first.
  if (answer.status !== undefined) expect(answer.status).toBe(413);
  const read = await serverRead(0);
  expect(read).toBeGreaterThan(LIMIT);
  expect(read).toBeLessThan(LIMIT + READ_BEFORE_REFUSAL);
  expect(intake.get(up.id)).toBeUndefined();
  expect(intake.refusals(up.id)).toEqual([expect.stringMatching(/413.*larger than the limit of 1 MiB/)]);
});

it('refuses a body whose declared length passes the limit before reading any of it', async () => {
  const up = register();
  const body = gzipSync(randomBytes(LIMIT * 4), { level: 0 });
  const answer = await post(intake.url(up.id), up.headers(pathOf(up.id), body), body);
  if (answer.status !== undefined) expect(answer.status).toBe(413);
  expect(await serverRead(0)).toBeLessThan(READ_BEFORE_REFUSAL);
  expect(intake.get(up.id)).toBeUndefined();
});

it('takes one request per upload id: a concurrent second one and a replay after it completed get 409 before their body is read', async () => {
  let received = 0;
  const up = register(() => received++);
  const body = encodeCatalog(generated(12_000));
  const other = encodeCatalog(generated(12_000, 50_000));
  let release!: () => void;
  const hold = new Promise<void>((r) => (release = r));
  const first = post(intake.url(up.id), up.headers(pathOf(up.id), body), body, { chunked: true, hold });
  // The first request is under way (its connection is open, the intake is reading it).
  while (sockets.length < 1) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100));
  const second = await post(intake.url(up.id), up.headers(pathOf(up.id), other), other);
  expect(second.status).toBe(409);
  expect(await serverRead(1)).toBeLessThan(READ_BEFORE_REFUSAL);
  release();
  expect((await first).status).toBe(204);
  expect(intake.get(up.id)?.[0].id).toBe(generated(1)[0].id);

  const replay = await post(intake.url(up.id), up.headers(pathOf(up.id), other), other);
  expect(replay.status).toBe(409);
  expect(await serverRead(2)).toBeLessThan(READ_BEFORE_REFUSAL);
  expect(intake.get(up.id)?.[0].id).toBe(generated(1)[0].id);
  expect(received).toBe(1);
});

it('refuses an unknown upload id before reading the body', async () => {
  const body = randomBytes(4 * LIMIT);
  const answer = await post(intake.url('0123456789abcdef0123456789abcdef'), { authorization: `Bearer ${'00'.repeat(32)}` }, body);
  expect(answer.status ?? answer.error).toBe(404);
  expect(await serverRead(0)).toBeLessThan(READ_BEFORE_REFUSAL);
});

it('refuses malformed content with an answer that says what is wrong, recorded for the listing', async () => {
  const notGzip = register();
  const plain = Buffer.from('{"id":"x"}\n');
  const a = await post(intake.url(notGzip.id), notGzip.headers(pathOf(notGzip.id), plain), plain);
  expect(a.status).toBe(400);
  expect(a.text).toMatch(/not gzip|incorrect header check/);
  expect(intake.refusals(notGzip.id)).toEqual([expect.stringMatching(/^400/)]);

  const badLine = register();
  const body = gzipSync(`${JSON.stringify(generated(1)[0])}\n{"id":"x"}\n`);
  const b = await post(intake.url(badLine.id), badLine.headers(pathOf(badLine.id), body), body);
  expect(b.status).toBe(400);
  expect(b.text).toContain('line 2 is not a snapshot');
  expect(intake.get(badLine.id)).toBeUndefined();
});
