// The operator's intake for what a mover cannot say in a 4 KiB termination message: the
// snapshot catalog (10,000 snapshots are ~8 MB of kopia JSON; see ADR 0005). A catalog
// Job POSTs gzip'd NDJSON to http://<leader pod IP>:<port>/v1/catalog/<upload id>. Only
// uploads the operator is waiting for are taken, and only with a signature made with the
// repository password — which the operator can check and nobody without the password can
// make. Uploads live in memory until the Job is collected: a restarted operator simply
// runs the catalog Job again. The body is decoded as it streams in, and only the fields
// the mirror and Restores read are kept: 30,000 snapshots never sit in memory as one body,
// one text and full objects at once.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeCatalogStream, verifyCatalogDigest, type MirroredSnapshot } from '../mover/catalog-upload.js';
import { CATALOG_SIGNATURE_HEADER } from '../mover/mover-contract.js';
import type { Logger } from '../runtime/logger.js';

const PATH_PREFIX = '/v1/catalog/';
const MAX_UPLOAD_BYTES = 256 * 1024 * 1024;

interface Expected {
  /** The repository password, read when the upload arrives (never kept). */
  password: () => Promise<string | undefined>;
  /** Called once the upload is verified and stored. */
  onReceived: () => void;
}

export interface IntakeOptions {
  /** 0 picks a free port. */
  port: number;
  /** The address to listen on (default 0.0.0.0). */
  host?: string;
  /** The address movers reach this process at (the pod IP); default host. */
  advertiseHost?: string;
}

export class CatalogIntake {
  private server?: http.Server;
  private readonly expected = new Map<string, Expected>();
  private readonly received = new Map<string, MirroredSnapshot[]>();
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

  expect(uploadId: string, expected: Expected): void {
    this.expected.set(uploadId, expected);
  }

  /** The verified catalog of a run; undefined when it never arrived (or this process restarted). */
  get(uploadId: string): MirroredSnapshot[] | undefined {
    return this.received.get(uploadId);
  }

  /** Drops what is kept for a run, once it is mirrored (or given up). */
  forget(uploadId: string): void {
    this.expected.delete(uploadId);
    this.received.delete(uploadId);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://intake').pathname;
    const uploadId = path.startsWith(PATH_PREFIX) ? path.slice(PATH_PREFIX.length) : '';
    const expected = this.expected.get(uploadId);
    if (req.method !== 'POST' || !expected) return void res.writeHead(404).end('no such upload expected\n');
    try {
      // Decoded before it is verified (the digest is known only at the end); kept only once verified.
      const { sha256, snapshots } = await decodeCatalogStream(req, { maxBodyBytes: MAX_UPLOAD_BYTES });
      const password = await expected.password();
      const signature = req.headers[CATALOG_SIGNATURE_HEADER];
      if (password === undefined || !verifyCatalogDigest(password, path, sha256, typeof signature === 'string' ? signature : undefined)) {
        this.log.warn('catalog upload refused: bad signature', { uploadId });
        return void res.writeHead(401).end('signature does not match\n');
      }
      this.received.set(uploadId, snapshots);
      res.writeHead(204).end();
      expected.onReceived();
    } catch (e) {
      this.log.warn('catalog upload refused', { uploadId, error: (e as Error).message });
      if (!res.headersSent) res.writeHead(400).end(`${(e as Error).message}\n`);
    }
  }
}
