// The operator's intake for what a mover cannot say in a 4 KiB termination message: the
// snapshot catalog (10,000 snapshots are ~8 MB of kopia JSON; see ADR 0005). A catalog
// Job POSTs gzip'd NDJSON to http://<leader pod IP>:<port>/v1/catalog/<upload id> with the
// upload's token, a random value the operator made for that one upload and gave the Job
// through a Secret. Everything that can be judged from the request head is judged before a
// byte of the body is read — an unknown id (404), a missing or wrong token (401), an id
// whose one request was already taken (409), a declared length past the limit (413) — and
// the connection is closed, so a refused body is never read. A body is read only for the
// one request with the right token, and only up to the limit. Uploads live in memory until
// the Job is collected: a restarted operator simply runs the catalog Job again. The body is
// decoded as it streams in, and only the fields the mirror and Restores read are kept.
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeCatalogStream, UploadTooLarge, type MirroredSnapshot } from '../mover/catalog-upload.js';
import type { Logger } from '../runtime/logger.js';

const PATH_PREFIX = '/v1/catalog/';
/**
 * The default limit of one upload's body (gzip bytes). A real listing of 30,000 snapshots
 * (the bench's repository: 500 sources) is 1.4 MB of gzip, 11 MB decoded: this is room for
 * about ten times that. A body may inflate to DECODED_PER_UPLOAD_BYTE times the limit (the
 * measured listing inflates 7.7 times) before it is refused as too large as well.
 */
export const DEFAULT_MAX_UPLOAD_BYTES = 16 * 1024 * 1024;
const DECODED_PER_UPLOAD_BYTE = 16;
/** Refusals kept per upload for its listing's status and Event; a flood adds only to a count. */
const REFUSALS_KEPT = 5;

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/** What an upload id expects; its token only as a digest, compared in constant time. */
interface Expected {
  tokenDigest: Buffer;
  /** Called once the upload is stored. */
  onReceived: () => void;
  /** Set by the first request with the token: every later request for the id is refused (409). */
  taken?: { state: 'receiving' | 'received' | 'refused'; refusal?: string };
  refusals: string[];
  moreRefusals: number;
}

/** A refusal: the status and what the listing's status and Event say about it (never a token). */
interface Refusal {
  status: number;
  message: string;
}

function sizeText(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return Number.isInteger(mib) ? `${mib} MiB` : `${bytes} bytes`;
}

export interface IntakeOptions {
  /** 0 picks a free port. */
  port: number;
  /** The address to listen on (default 0.0.0.0). */
  host?: string;
  /** The address movers reach this process at (the pod IP); default host. */
  advertiseHost?: string;
  /** The most one upload's body may hold (gzip bytes); default DEFAULT_MAX_UPLOAD_BYTES. */
  maxUploadBytes?: number;
}

export class CatalogIntake {
  private server?: http.Server;
  private readonly expected = new Map<string, Expected>();
  private readonly received = new Map<string, MirroredSnapshot[]>();
  /** Body bytes (gzip) of each received upload. */
  private readonly receivedBytes = new Map<string, number>();
  private base = '';

  constructor(
    private readonly options: IntakeOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host ?? '0.0.0.0', () => resolve());
    });
    this.server = server;
    const port = (server.address() as AddressInfo).port;
    this.base = `http://${this.options.advertiseHost ?? this.options.host ?? '127.0.0.1'}:${port}`;
  }

  stop(): void {
    this.server?.close();
    this.server?.closeAllConnections();
  }

  /** Where a mover uploads the catalog of this run. */
  url(uploadId: string): string {
    return `${this.base}${PATH_PREFIX}${uploadId}`;
  }

  /** Takes one upload under this id, from a request bearing this token (the Job's Secret holds it). */
  expect(uploadId: string, upload: { token: string; onReceived: () => void }): void {
    this.expected.set(uploadId, { tokenDigest: digest(upload.token), onReceived: upload.onReceived, refusals: [], moreRefusals: 0 });
  }

  /** What was refused for this upload id ("<status>: <why>"), for its listing's status and Event. */
  refusals(uploadId: string): string[] {
    const e = this.expected.get(uploadId);
    if (!e) return [];
    return e.moreRefusals ? [...e.refusals, `and ${e.moreRefusals} more request(s) refused`] : [...e.refusals];
  }

  /** The verified catalog of a run; undefined when it never arrived (or this process restarted). */
  get(uploadId: string): MirroredSnapshot[] | undefined {
    return this.received.get(uploadId);
  }

  /** The body size (gzip bytes) of a received catalog; undefined when none arrived. */
  size(uploadId: string): number | undefined {
    return this.receivedBytes.get(uploadId);
  }

  /** Drops what is kept for a run, once it is mirrored (or given up). */
  forget(uploadId: string): void {
    this.expected.delete(uploadId);
    this.received.delete(uploadId);
    this.receivedBytes.delete(uploadId);
  }

  private get maxUploadBytes(): number {
    return this.options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://intake').pathname;
    const uploadId = path.startsWith(PATH_PREFIX) ? path.slice(PATH_PREFIX.length) : '';
    const expected = this.expected.get(uploadId);
    if (req.method !== 'POST' || !expected) {
      this.log.warn('catalog upload refused: no such upload expected', { uploadId: uploadId.slice(0, 64) });
      return this.refuse(req, res, { status: 404, message: 'no such upload expected' });
    }
    const refusal = this.judgeHead(req, expected);
    if (refusal) return this.refuse(req, res, refusal, uploadId, expected);
    expected.taken = { state: 'receiving' };
    let snapshots: MirroredSnapshot[];
    let bodyBytes = 0;
    // Left undestroyed when decoding stops early, so the refusal can still be answered.
    const body = req.iterator({ destroyOnReturn: false });
    async function* counted(): AsyncGenerator<Buffer> {
      for await (const chunk of body) {
        bodyBytes += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
    }
    try {
      snapshots = await decodeCatalogStream(counted(), {
        maxBodyBytes: this.maxUploadBytes,
        maxDecodedBytes: this.maxUploadBytes * DECODED_PER_UPLOAD_BYTE,
      });
    } catch (e) {
      const tooLarge = e instanceof UploadTooLarge;
      return this.refuse(
        req,
        res,
        tooLarge
          ? { status: 413, message: `the upload was larger than the limit of ${sizeText(this.maxUploadBytes)} (${(e as Error).message})` }
          : { status: 400, message: `the upload is not a catalog: ${(e as Error).message}` },
        uploadId,
        expected,
      );
    }
    expected.taken = { state: 'received' };
    this.received.set(uploadId, snapshots);
    this.receivedBytes.set(uploadId, bodyBytes);
    res.writeHead(204).end();
    expected.onReceived();
  }

  /** What the request head alone refuses: a wrong token, an id already taken, a declared length past the limit. */
  private judgeHead(req: http.IncomingMessage, expected: Expected): Refusal | undefined {
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice('Bearer '.length) : '';
    if (!token || !timingSafeEqual(digest(token), expected.tokenDigest))
      return { status: 401, message: `a request without this upload's token was refused` };
    if (expected.taken)
      return {
        status: 409,
        message:
          expected.taken.state === 'refused'
            ? `a second request for this upload was refused; its first was refused (${expected.taken.refusal})`
            : `a second request for this upload was refused; its first was ${expected.taken.state === 'received' ? 'received' : 'still being received'}`,
      };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.maxUploadBytes)
      return {
        status: 413,
        message: `the upload was larger than the limit of ${sizeText(this.maxUploadBytes)} (${declared} bytes declared)`,
      };
    return undefined;
  }

  /**
   * Answers a refusal and closes the connection without reading more of the request: Node
   * would otherwise read a body left unread to keep the connection alive. Recorded for the
   * upload's listing when the request named an expected id.
   */
  private refuse(req: http.IncomingMessage, res: http.ServerResponse, refusal: Refusal, uploadId?: string, expected?: Expected): void {
    if (expected && uploadId !== undefined) {
      const text = `${refusal.status}: ${refusal.message}`;
      if (refusal.status !== 401) expected.taken ??= { state: 'refused', refusal: text };
      if (expected.taken?.state === 'receiving') expected.taken = { state: 'refused', refusal: text };
      if (expected.refusals.length < REFUSALS_KEPT) expected.refusals.push(text);
      else expected.moreRefusals++;
      this.log.warn('catalog upload refused', { uploadId, status: refusal.status, reason: refusal.message });
    }
    const socket = req.socket;
    if (res.headersSent || res.destroyed || !socket) return void socket?.destroy();
    res.once('finish', () => socket.destroy());
    res.writeHead(refusal.status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(`${refusal.message}\n`);
  }
}
