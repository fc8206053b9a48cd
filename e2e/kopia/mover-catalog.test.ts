// The mover's catalog against a real repository of a few hundred snapshots across several
// sources, uploaded to a small HTTP server that checks the upload token and decodes the body
// with the functions the operator's intake uses.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sameSnapshot } from '../../operator/catalog/catalog-plan.js';
import { decodeCatalog } from '../../operator/mover/catalog-upload.js';
import type { CatalogRequest, CatalogSnapshot } from '../../operator/mover/mover-contract.js';
import { ensureTestBinaries } from '../support/control-plane.js';
import { runMover } from '../support/run-mover.js';
import { FILESYSTEM_REPOSITORY, PlainKopia, type KopiaListed } from './plain-kopia.js';

const PASSWORD = 'catalog test password';
/** The upload token, as the operator's Secret gives it to the mover. */
const TOKEN = randomBytes(32).toString('hex');
const moverEnv = { KOPIA_PASSWORD: PASSWORD, KOPIA_CATALOG_TOKEN: TOKEN };
let kopiaBinDir: string;
let scratch: string;
let kopia: PlainKopia;
let listed: KopiaListed[];

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  tokenValid: boolean;
  snapshots?: CatalogSnapshot[];
}

/** An intake stand-in: answers each POST with the next scripted status (the last repeats). */
async function intake(
  statuses: number[],
  port = 0,
): Promise<{ url: (id: string) => string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = new URL(req.url ?? '/', 'http://intake').pathname;
      const tokenValid = req.headers.authorization === `Bearer ${TOKEN}`;
      const status = statuses.length > 1 ? statuses.shift()! : statuses[0];
      received.push({
        path,
        headers: req.headers,
        body,
        tokenValid,
        snapshots: tokenValid && status === 204 ? decodeCatalog(body) : undefined,
      });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: (id) => `http://127.0.0.1:${bound}/v1/catalog/${id}`,
    received,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const request = (url: string): CatalogRequest => ({
  operation: 'catalog',
  repository: FILESYSTEM_REPOSITORY,
  identity: { username: 'kopia-operator', hostname: 'catalog' },
  upload: { url },
});

beforeAll(async () => {
  kopiaBinDir = ensureTestBinaries(['kopia']);
  scratch = mkdtempSync(join(tmpdir(), 'mover-catalog-'));
  kopia = await new PlainKopia(join(kopiaBinDir, 'kopia'), join(scratch, 'k'), PASSWORD).create();
  const data = join(scratch, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'file'), 'content');
  // Keep every snapshot: each create applies retention at once.
  await kopia.k('policy', 'set', '--global', '--keep-latest=100000');
  // Many snapshots per process: one `snapshot create` takes the same path many times.
  const many = Array<string>(100).fill(data);
  await kopia.k('snapshot', 'create', ...many, '--no-auto-maintenance');
  await kopia.k('snapshot', 'create', ...many, '--override-source=media@cluster-a:/data', '--no-auto-maintenance');
  await kopia.k('snapshot', 'create', ...many, '--override-source=db@cluster-b:/var/lib/db', '--no-auto-maintenance');
  await kopia.k(
    'snapshot',
    'create',
    data,
    '--override-source=media@cluster-a:/data',
    '--tags=app:media',
    '--pin=kopia-operator',
    '--no-auto-maintenance',
  );
  // An upload stopped by its limit leaves an incomplete snapshot.
  writeFileSync(join(data, 'big'), randomBytes(3 * 1024 * 1024));
  await kopia.run('snapshot', 'create', data, '--override-source=media@cluster-a:/data', '--upload-limit-mb=1', '--no-auto-maintenance');
  listed = await kopia.snapshots();
  expect(listed.length).toBe(302);
}, 120_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

it('uploads every snapshot with its token and as gzip NDJSON, retrying after a 503', async () => {
  const server = await intake([503, 204]);
  try {
    const run = await runMover(request(server.url('upload-1')), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: moverEnv,
    });
    expect(run.result).toEqual({ ok: true, operation: 'catalog', catalog: { snapshots: 302, sources: 3 } });
    expect(run.code).toBe(0);
    expect(server.received).toHaveLength(2);
    const [, accepted] = server.received;
    expect(accepted).toMatchObject({ path: '/v1/catalog/upload-1', tokenValid: true });
    expect(accepted.headers).toMatchObject({ 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' });

    const snapshots = accepted.snapshots!;
    expect(snapshots.map((s) => s.id).sort()).toEqual(listed.map((s) => s.id).sort());
    const sources = new Set(snapshots.map((s) => `${s.source.username}@${s.source.hostname}:${s.source.path}`));
    expect([...sources].sort()).toEqual([`admin@setup:${join(scratch, 'data')}`, 'db@cluster-b:/var/lib/db', 'media@cluster-a:/data']);
    const incomplete = snapshots.filter((s) => s.incompleteReason);
    expect(incomplete).toEqual([
      expect.objectContaining({ incompleteReason: 'limit reached', source: { username: 'media', hostname: 'cluster-a', path: '/data' } }),
    ]);
    // Pins travel; tags do not (the operator keeps none, and a tenant's 32 long tags per Backup could push the listing past the intake's limit).
    expect(snapshots.find((s) => s.pins?.length)).toMatchObject({ pins: ['kopia-operator'] });
    expect(snapshots.filter((s) => s.tags)).toEqual([]);
    const complete = snapshots.find((s) => !s.incompleteReason && s.source.username === 'db')!;
    expect(complete).toMatchObject({
      rootID: expect.stringMatching(/^k/),
      stats: { files: 1, dirs: 1, errors: 0 },
      retentionReasons: expect.any(Array),
    });
    expect(run.log).not.toContain(PASSWORD);
    expect(run.log).not.toContain(TOKEN);
  } finally {
    await server.close();
  }
});

it('sends nothing computable from the repository password: no password HMAC of the path and body, no password', async () => {
  const server = await intake([204]);
  try {
    const run = await runMover(request(server.url('upload-oracle')), { kopiaBinDir, repositoryDir: kopia.repoDir, env: moverEnv });
    expect(run.result).toMatchObject({ ok: true });
    const [sent] = server.received;
    const bodyHash = createHash('sha256').update(sent.body).digest('hex');
    // What an eavesdropper could test password guesses against: the old scheme's HMAC, in any casing or encoding.
    const hmac = createHmac('sha256', PASSWORD).update(`${sent.path}\n${bodyHash}`).digest();
    const derived = [hmac.toString('hex'), hmac.toString('base64'), PASSWORD, Buffer.from(PASSWORD).toString('base64')];
    const wire = JSON.stringify(sent.headers).toLowerCase() + sent.path;
    for (const value of derived) expect(wire).not.toContain(value.toLowerCase());
    expect(sent.body.includes(PASSWORD)).toBe(false);
    // The one credential on the wire is the random upload token.
    expect(sent.headers.authorization).toBe(`Bearer ${TOKEN}`);
  } finally {
    await server.close();
  }
});

it('refuses to run without its upload token rather than upload without one', async () => {
  const server = await intake([204]);
  try {
    const run = await runMover(request(server.url('upload-no-token')), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: { KOPIA_PASSWORD: PASSWORD },
    });
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({ ok: false, message: expect.stringContaining('KOPIA_CATALOG_TOKEN is not set') });
    expect(server.received).toEqual([]);
  } finally {
    await server.close();
  }
});

it('fails with UploadFailed at once when the intake answers 4xx', async () => {
  const server = await intake([401]);
  try {
    const started = Date.now();
    const run = await runMover(request(server.url('upload-2')), {
      kopiaBinDir,
      repositoryDir: kopia.repoDir,
      env: moverEnv,
    });
    expect(run.code).not.toBe(0);
    expect(run.result).toMatchObject({
      ok: false,
      operation: 'catalog',
      errorClass: 'UploadFailed',
      message: expect.stringContaining('HTTP 401'),
    });
    expect(server.received).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(20_000);
  } finally {
    await server.close();
  }
});

it('waits for an intake that is not listening yet', async () => {
  const probe = await intake([204]);
  const url = probe.url('upload-3');
  const port = Number(new URL(url).port);
  await probe.close();
  let late: Awaited<ReturnType<typeof intake>> | undefined;
  const starting = new Promise<void>((resolve) =>
    setTimeout(async () => {
      late = await intake([204], port);
      resolve();
    }, 5_000),
  );
  try {
    const run = await runMover(request(url), { kopiaBinDir, repositoryDir: kopia.repoDir, env: moverEnv });
    await starting;
    expect(run.result).toMatchObject({ ok: true, catalog: { snapshots: 302 } });
    expect(run.log).toContain('ECONNREFUSED');
    expect(late!.received).toEqual([expect.objectContaining({ tokenValid: true })]);
  } finally {
    await starting;
    await late?.close();
  }
});

it('lists a snapshot kopia re-saved to change its pins under a new id that sameSnapshot finds again (and no other)', async () => {
  const server = await intake([204]);
  const listOnce = async (id: string) => {
    const run = await runMover(request(server.url(id)), { kopiaBinDir, repositoryDir: kopia.repoDir, env: moverEnv });
    expect(run.result).toMatchObject({ ok: true });
    return server.received.at(-1)!.snapshots!;
  };
  try {
    const before = await listOnce('upload-pin-1');
    // db's snapshots all hold the same files: one root, told apart only by when they started.
    const db = before.filter((s) => s.source.username === 'db' && !s.incompleteReason);
    const target = db[7];
    await kopia.k('snapshot', 'pin', target.id, '--add=someone', '--no-auto-maintenance');
    const after = await listOnce('upload-pin-2');
    expect(after.map((s) => s.id)).not.toContain(target.id);
    const same = after.filter((s) => sameSnapshot(target, s));
    expect(same).toHaveLength(1);
    expect(same[0]).toMatchObject({ pins: ['someone'], startTime: target.startTime, rootID: target.rootID });
    expect(same[0].id).not.toBe(target.id);
    expect(db.filter((s) => s.rootID === target.rootID).length).toBeGreaterThan(1);
    expect(after.length).toBe(before.length);
  } finally {
    await server.close();
  }
});
