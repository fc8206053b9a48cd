// KubeClient against a small fake API server on 127.0.0.1 (plain HTTP): timeouts, idle
// watches, stream decoding, credential refresh and the metadata-only Accept headers. The
// real API server's side of these is in e2e/controlplane/kube-client.test.ts.
import { KubeConfig } from '@kubernetes/client-node';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { ApiError, KubeClient, RequestTimeoutError, WatchIdleError, type KubeClientOptions } from '../kube-client.js';
import { authHeaders } from '../credentials.js';
import { Deadline } from '../deadline.js';
import { WatchLines } from '../watch-lines.js';

const ConfigMaps = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };

interface FakeApi {
  url: string;
  /** Every request's method, path (with query) and headers, in arrival order. */
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

async function fakeApi(handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<FakeApi> {
  const seen: FakeApi['seen'] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

function kubeConfig(server: string, user: Record<string, unknown> = { name: 'u', token: 'static-token' }): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server, skipTLSVerify: true }],
    users: [{ name: 'u', ...user }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
};

/** Rejects when `work` has not settled within ms, so a hang fails the test with a message instead of jest's timeout. */
function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer!: NodeJS.Timeout;
  const guard = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms)));
  return Promise.race([work, guard]).finally(() => clearTimeout(timer));
}

describe('watch stream decoding', () => {
  it('joins a UTF-8 character split across chunks', () => {
    const bytes = Buffer.from('{"name":"é€😀"}\n{"n":2}\n');
    const lines = new WatchLines();
    const out: string[] = [];
    // One byte at a time: every multi-byte character is split.
    for (const b of bytes) out.push(...lines.push(Uint8Array.of(b)));
    expect(out).toEqual(['{"name":"é€😀"}', '{"n":2}']);
  });

  it('keeps an unfinished line until its newline arrives', () => {
    const lines = new WatchLines();
    expect(lines.push(Buffer.from('{"a":'))).toEqual([]);
    expect(lines.push(Buffer.from('1}\n\n{"b"'))).toEqual(['{"a":1}']);
    expect(lines.push(Buffer.from(':2}\n'))).toEqual(['{"b":2}']);
  });
});

describe('deadline', () => {
  it('aborts with its own error once the time passes, and extend() moves it', async () => {
    const deadline = new Deadline(60, () => new Error('too slow'));
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 40));
    deadline.extend();
    await new Promise<void>((r) => deadline.signal.addEventListener('abort', () => r()));
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(deadline.expired?.message).toBe('too slow');
    expect(deadline.signal.reason).toBe(deadline.expired);
  });

  it("passes the caller's abort on as is and lets go of the caller's signal", () => {
    const caller = new AbortController();
    const deadline = new Deadline(10_000, () => new Error('too slow'), caller.signal);
    caller.abort(new Error('caller gave up'));
    expect(deadline.signal.reason).toEqual(new Error('caller gave up'));
    expect(deadline.expired).toBeUndefined();
    deadline.dispose();
  });
});

describe('authentication headers', () => {
  it('takes the headers client-node set, and turns basic auth into a header', () => {
    expect(authHeaders({ headers: { Authorization: 'Bearer t', 'Impersonate-Group': ['a', 'b'] } })).toEqual({
      Authorization: 'Bearer t',
      'Impersonate-Group': 'a, b',
    });
    expect(authHeaders({ auth: 'user:pass' })).toEqual({ Authorization: `Basic ${Buffer.from('user:pass').toString('base64')}` });
  });
});

describe('KubeClient against a fake API server', () => {
  let api: FakeApi | undefined;
  let client: KubeClient | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    client?.close();
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    api = client = dir = undefined;
  });

  const clientFor = async (a: FakeApi, options: KubeClientOptions = {}, user?: Record<string, unknown>) =>
    (client = await KubeClient.fromKubeConfig(kubeConfig(a.url, user), options));

  it('tells an observer each request by verb, resource and HTTP code, 0 when no answer came', async () => {
    api = await fakeApi((req, res) => {
      if (req.url!.includes('/missing')) json(res, 404, { reason: 'NotFound', code: 404 });
      else if (req.url!.includes('/silent')) return;
      else if (req.url!.includes('watch=true')) res.writeHead(200).end();
      else json(res, 200, { metadata: { name: 'cm' } });
    });
    const c = await clientFor(api, { requestTimeoutMs: 150 });
    const seen: string[] = [];
    c.observeRequests((verb, resource, code) => seen.push(`${verb} ${resource} ${code}`));
    await c.get(ConfigMaps, 'ns', 'cm');
    await c.getOrUndefined(ConfigMaps, 'ns', 'missing');
    await c.get(ConfigMaps, 'ns', 'silent').catch(() => undefined);
    await c.watch(ConfigMaps, 'ns', '1', () => undefined);
    expect(seen).toEqual(['GET configmaps 200', 'GET configmaps 404', 'GET configmaps 0', 'WATCH configmaps 200']);
    expect(c.calls).toEqual({ 'GET configmaps': 3, 'WATCH configmaps': 1 });
  });

  describe('timeouts', () => {
    // Requests are accepted and never answered.
    const silent = () => fakeApi(() => undefined);

    it("rejects a request that gets no answer within the client's timeout, naming method, path and timeout", async () => {
      api = await silent();
      const c = await clientFor(api, { requestTimeoutMs: 200 });
      const started = Date.now();
      const error = await within(5000, c.get(ConfigMaps, 'ns', 'cm')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RequestTimeoutError);
      expect((error as Error).message).toBe('GET /api/v1/namespaces/ns/configmaps/cm: no complete response within 200 ms');
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    });

    it('lets one call set its own timeout', async () => {
      api = await silent();
      const c = await clientFor(api, { requestTimeoutMs: 60_000 });
      const error = await within(5000, c.list(ConfigMaps, 'ns', {}, { timeoutMs: 150 })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RequestTimeoutError);
      expect(error).toMatchObject({ method: 'GET', path: '/api/v1/namespaces/ns/configmaps', timeoutMs: 150 });
    });

    it('times out after 30 s when nobody chose a timeout', async () => {
      api = await silent();
      const c = await clientFor(api);
      jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
      try {
        const outcome = c.get(ConfigMaps, 'ns', 'cm').then(
          () => 'answered',
          (e: unknown) => e,
        );
        for (let turn = 0; turn < 10_000 && api.seen.length === 0; turn++) await new Promise((r) => setImmediate(r));
        expect(api.seen).toHaveLength(1);
        await jest.advanceTimersByTimeAsync(29_999);
        expect(await settledSoon(outcome)).toBe('pending');
        await jest.advanceTimersByTimeAsync(1);
        expect(await settledSoon(outcome)).toMatchObject({ name: 'RequestTimeoutError', timeoutMs: 30_000 });
      } finally {
        jest.useRealTimers();
      }
    });

    it('times out a response whose body stops half way', async () => {
      api = await fakeApi((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write('{"items": [');
      });
      const c = await clientFor(api, { requestTimeoutMs: 200 });
      await expect(within(5000, c.list(ConfigMaps, 'ns'))).rejects.toBeInstanceOf(RequestTimeoutError);
    });

    it("combines the timeout with the caller's abort signal", async () => {
      api = await silent();
      const c = await clientFor(api, { requestTimeoutMs: 60_000 });
      const caller = new AbortController();
      const pending = c.request('GET', '/version', { signal: caller.signal });
      await until(() => api!.seen.length === 1);
      caller.abort();
      const error = await within(2000, pending).catch((e: unknown) => e);
      expect((error as Error).name).toBe('AbortError');
    });

    it('does not apply the request timeout to watches', async () => {
      let sent = 0;
      api = await fakeApi((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        const timer = setInterval(() => {
          res.write(JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(++sent) } } }) + '\n');
          if (sent === 8) {
            clearInterval(timer);
            res.end();
          }
        }, 50);
      });
      const c = await clientFor(api, { requestTimeoutMs: 150, watchIdleTimeoutMs: 300 });
      const versions: string[] = [];
      await within(
        5000,
        c.watch(ConfigMaps, 'ns', '1', (e) => versions.push(e.object.metadata.resourceVersion!)),
      );
      expect(versions).toEqual(['1', '2', '3', '4', '5', '6', '7', '8']);
    });
  });

  describe('idle watches', () => {
    it('abandons a watch that stops receiving while its connection stays open', async () => {
      api = await fakeApi((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '5' } } }) + '\n');
        // ...and nothing more, socket left open: a half-open connection as the client sees it.
      });
      const c = await clientFor(api, { watchIdleTimeoutMs: 60_000 });
      const names: string[] = [];
      const started = Date.now();
      const error = await within(
        5000,
        c.watch(ConfigMaps, 'ns', '1', (e) => names.push(e.object.metadata.name!), { idleTimeoutMs: 250 }),
      ).catch((e: unknown) => e);
      expect(names).toEqual(['a']);
      expect(error).toBeInstanceOf(WatchIdleError);
      expect((error as Error).message).toBe('watch /api/v1/namespaces/ns/configmaps: nothing received for 250 ms; abandoned');
      expect(Date.now() - started).toBeGreaterThanOrEqual(240);
    });

    it('abandons a watch whose response never starts', async () => {
      api = await fakeApi(() => undefined);
      const c = await clientFor(api, { watchIdleTimeoutMs: 200 });
      await expect(
        within(
          5000,
          c.watch(ConfigMaps, undefined, '1', () => undefined),
        ),
      ).rejects.toBeInstanceOf(WatchIdleError);
    });

    it("ends quietly when the caller's signal aborts", async () => {
      api = await fakeApi((_req, res) => res.writeHead(200).flushHeaders());
      const c = await clientFor(api, { watchIdleTimeoutMs: 60_000 });
      const caller = new AbortController();
      const watching = c.watch(ConfigMaps, undefined, '1', () => undefined, { signal: caller.signal });
      await until(() => api!.seen.length === 1);
      caller.abort();
      await expect(within(2000, watching)).resolves.toBeUndefined();
    });
  });

  it('decodes watch events whose multi-byte characters straddle network chunks', async () => {
    const line = Buffer.from(
      JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'cm', annotations: { note: 'déjà vu €5 😀' } } } }) + '\n',
    );
    const cut = line.indexOf(Buffer.from('€')) + 1; // inside the three bytes of '€'
    api = await fakeApi((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(line.subarray(0, cut));
      // A pause, so the two halves leave as separate TCP segments and arrive as separate chunks.
      setTimeout(() => res.end(line.subarray(cut)), 50);
    });
    const c = await clientFor(api);
    const notes: string[] = [];
    await within(
      5000,
      c.watch(ConfigMaps, 'ns', '1', (e) => notes.push(e.object.metadata.annotations!.note)),
    );
    expect(notes).toEqual(['déjà vu €5 😀']);
  });

  describe('metadata only', () => {
    it('asks for PartialObjectMetadataList when listing and PartialObjectMetadata when watching', async () => {
      api = await fakeApi((req, res) => {
        if (req.url!.includes('watch=true')) res.writeHead(200).end();
        else json(res, 200, { items: [], metadata: { resourceVersion: '7' } });
      });
      const c = await clientFor(api);
      await c.list(ConfigMaps, 'ns', {}, { metadataOnly: true });
      await c.watch(ConfigMaps, 'ns', '7', () => undefined, { metadataOnly: true });
      await c.list(ConfigMaps, 'ns');
      expect(api.seen.map((r) => r.headers.accept)).toEqual([
        'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json',
        'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json',
        'application/json',
      ]);
    });
  });

  describe('credentials', () => {
    // An exec credential plugin that prints the token in $TOKEN_FILE, already expired, so
    // client-node runs it again whenever it is asked; it counts its runs in $RUNS_FILE.
    function execPlugin(token: string): { user: Record<string, unknown>; rotate(token: string): void; runs(): number } {
      dir = mkdtempSync(join(tmpdir(), 'kube-client-test-'));
      const tokenFile = join(dir, 'token');
      const runsFile = join(dir, 'runs');
      const script = join(dir, 'plugin.sh');
      writeFileSync(tokenFile, token);
      writeFileSync(runsFile, '');
      writeFileSync(
        script,
        `#!/bin/sh
echo run >> "$RUNS_FILE"
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"2000-01-01T00:00:00Z"}}' "$(cat "$TOKEN_FILE")"
`,
      );
      chmodSync(script, 0o755);
      const env = [
        { name: 'TOKEN_FILE', value: tokenFile },
        { name: 'RUNS_FILE', value: runsFile },
      ];
      return {
        user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: script, env } },
        rotate: (t) => writeFileSync(tokenFile, t),
        runs: () => readFileSync(runsFile, 'utf8').split('\n').filter(Boolean).length,
      };
    }

    // Answers /version for the one token it currently accepts, 401 otherwise.
    async function apiAccepting(token: { current: string }): Promise<FakeApi> {
      return fakeApi((req, res) => {
        if (req.headers.authorization === `Bearer ${token.current}`) json(res, 200, { gitVersion: 'v0.0.0-fake' });
        else json(res, 401, { kind: 'Status', status: 'Failure', reason: 'Unauthorized', message: 'Unauthorized', code: 401 });
      });
    }

    it('sends a rotated token once the cached credentials have aged', async () => {
      const plugin = execPlugin('token-one');
      api = await fakeApi((_req, res) => json(res, 200, {}));
      const c = await clientFor(api, { credentialsMaxAgeMs: 0 }, plugin.user);
      await c.request('GET', '/version');
      plugin.rotate('token-two');
      await c.request('GET', '/version');
      expect(api.seen.map((r) => r.headers.authorization)).toEqual(['Bearer token-one', 'Bearer token-two']);
    });

    it('on 401 asks for fresh credentials and retries once', async () => {
      const token = { current: 'token-one' };
      const plugin = execPlugin(token.current);
      api = await apiAccepting(token);
      const c = await clientFor(api, { credentialsMaxAgeMs: 60_000 }, plugin.user);
      await c.request('GET', '/version');
      token.current = 'token-two';
      plugin.rotate('token-two');
      await expect(c.request('GET', '/version')).resolves.toEqual({ gitVersion: 'v0.0.0-fake' });
      expect(api.seen.map((r) => r.headers.authorization)).toEqual(['Bearer token-one', 'Bearer token-one', 'Bearer token-two']);
    });

    it('gives up after one retry, without the token in the error', async () => {
      const token = { current: 'accepted' };
      const plugin = execPlugin('rejected-token');
      api = await apiAccepting(token);
      const c = await clientFor(api, { credentialsMaxAgeMs: 60_000 }, plugin.user);
      const error = await c.request('GET', '/version').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ApiError);
      expect((error as ApiError).status).toBe(401);
      expect((error as Error).message).not.toContain('rejected-token');
      expect(api.seen).toHaveLength(2);
    });

    it('shares one credential lookup among concurrent requests', async () => {
      const plugin = execPlugin('token-one');
      api = await fakeApi((_req, res) => json(res, 200, {}));
      const c = await clientFor(api, { credentialsMaxAgeMs: 0 }, plugin.user);
      const runsAtStart = plugin.runs();
      await Promise.all(Array.from({ length: 8 }, () => c.request('GET', '/version')));
      expect(plugin.runs() - runsAtStart).toBe(1);
    });

    it('after a 401 on a watch, the next watch asks for fresh credentials', async () => {
      const token = { current: 'token-one' };
      const plugin = execPlugin(token.current);
      api = await fakeApi((req, res) => {
        if (req.headers.authorization !== `Bearer ${token.current}`) json(res, 401, { reason: 'Unauthorized', code: 401 });
        else res.writeHead(200).end();
      });
      const c = await clientFor(api, { credentialsMaxAgeMs: 60_000 }, plugin.user);
      token.current = 'token-two';
      plugin.rotate('token-two');
      await expect(c.watch(ConfigMaps, 'ns', '1', () => undefined)).rejects.toMatchObject({ status: 401 });
      await expect(c.watch(ConfigMaps, 'ns', '1', () => undefined)).resolves.toBeUndefined();
      expect(api.seen.map((r) => r.headers.authorization)).toEqual(['Bearer token-one', 'Bearer token-two']);
    });
  });
});

/** The promise's value if it settles within a few turns of the event loop (no timers: they may be fake), 'pending' otherwise. */
async function settledSoon<T>(promise: Promise<T>): Promise<T | 'pending'> {
  let result: { value: T } | undefined;
  void promise.then((value) => (result = { value }));
  for (let turn = 0; turn < 100 && !result; turn++) await new Promise((r) => setImmediate(r));
  return result ? result.value : 'pending';
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
