// KubeClient against the real API server: the kubeconfig's tls-server-name and proxy-url,
// credentials that change under a running client, request timeouts on a connection that
// went silent, and metadata-only lists.
import { KubeConfig } from '@kubernetes/client-node';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ConfigMaps, Secrets, ServiceAccounts } from '../../operator/kube/resources.js';
import { KubeClient, RequestTimeoutError, type KubeClientOptions, type KubeObject } from '../../operator/kube/kube-client.js';
import { until, useTestNamespace } from '../support/cluster.js';
import { secretObject } from '../support/objects.js';
import { startConnectProxy, startRelay, type ConnectProxy, type FreezableRelay } from '../support/tcp-proxy.js';

const t = useTestNamespace('kube-client');

interface KubeconfigDoc {
  clusters: { name: string; cluster: Record<string, unknown> }[];
  users: { name: string; user: Record<string, unknown> }[];
  contexts: unknown[];
}

/** The test world's admin kubeconfig, with cluster fields replaced (and the user, if given). */
function kubeconfigWith(cluster: Record<string, unknown>, user?: Record<string, unknown>): KubeConfig {
  const doc = parse(readFileSync(process.env.KOPIA_TEST_KUBECONFIG!, 'utf8')) as KubeconfigDoc;
  Object.assign(doc.clusters[0].cluster, cluster);
  if (user) doc.users[0].user = user;
  const kc = new KubeConfig();
  kc.loadFromString(JSON.stringify(doc));
  return kc;
}

const apiServer = () => new URL(kubeconfigWith({}).getCurrentCluster()!.server);

const clients: KubeClient[] = [];
async function clientFor(kc: KubeConfig, options: KubeClientOptions = {}): Promise<KubeClient> {
  const client = await KubeClient.fromKubeConfig(kc, options);
  clients.push(client);
  return client;
}
afterEach(() => clients.splice(0).forEach((c) => c.close()));

const version = (client: KubeClient) => client.request<{ gitVersion: string }>('GET', '/version');

describe('tls-server-name', () => {
  // The serving certificate names IP:127.0.0.1, DNS:localhost and DNS:kubernetes.default.svc.
  let relay: FreezableRelay;
  beforeAll(async () => {
    const api = apiServer();
    relay = await startRelay({ host: api.hostname, port: Number(api.port) }, '127.0.0.2');
  });
  afterAll(() => relay.close());

  it('verifies the certificate against tls-server-name when the server address is not in it', async () => {
    const server = `https://${relay.host}:${relay.port}`;
    await expect(version(await clientFor(kubeconfigWith({ server })))).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    const named = await clientFor(kubeconfigWith({ server, 'tls-server-name': 'kubernetes.default.svc' }));
    expect((await version(named)).gitVersion).toMatch(/^v1\./);
  });

  it('refuses a certificate that does not name tls-server-name, even though it names the address', async () => {
    const client = await clientFor(kubeconfigWith({ 'tls-server-name': 'wrong.example' }));
    const error = await version(client).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect((error as Error).message).toContain('wrong.example');
  });
});

describe('proxy-url', () => {
  let proxy: ConnectProxy;
  beforeAll(async () => {
    const api = apiServer();
    proxy = await startConnectProxy({ host: api.hostname, port: Number(api.port) });
  });
  afterAll(() => proxy.close());

  it('tunnels requests and watches through the proxy, keeping a tunnel alive for the next request', async () => {
    // A server name only the proxy can reach: connecting directly fails to resolve it.
    const authority = `kubernetes.default.svc:${apiServer().port}`;
    const client = await clientFor(kubeconfigWith({ server: `https://${authority}`, 'proxy-url': proxy.url }));
    await version(client);
    const list = await client.list(ConfigMaps, t.ns);
    expect(proxy.tunnels).toEqual([authority]);

    const names: string[] = [];
    const stop = new AbortController();
    const watching = client.watch(ConfigMaps, t.ns, list.metadata.resourceVersion, (e) => names.push(e.object.metadata.name!), {
      signal: stop.signal,
    });
    await t.client.create(ConfigMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'via-proxy', namespace: t.ns } });
    await until('the watch through the proxy sees the ConfigMap', async () => names.includes('via-proxy'));
    stop.abort();
    await watching;
    expect(proxy.tunnels.length).toBeGreaterThanOrEqual(1);
    expect(new Set(proxy.tunnels)).toEqual(new Set([authority]));
  });
});

describe('credentials that change while the client runs', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'kube-client-cp-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function serviceAccountToken(name: string): Promise<string> {
    await t.client.create(ServiceAccounts, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: t.ns } });
    const review = await t.client.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${t.ns}/serviceaccounts/${name}/token`,
      {
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } },
      },
    );
    return review.status.token;
  }

  /**
   * A kubeconfig whose user is an exec credential plugin printing the token in a file,
   * marked as already expired so client-node runs the plugin whenever it is asked.
   */
  function execKubeconfig(token: string): { kc: KubeConfig; rotate(token: string): void } {
    const tokenFile = join(dir, 'token');
    const plugin = join(dir, 'credential-plugin.sh');
    writeFileSync(tokenFile, token, { mode: 0o600 });
    writeFileSync(
      plugin,
      `#!/bin/sh
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"2000-01-01T00:00:00Z"}}' "$(cat "$TOKEN_FILE")"
`,
    );
    chmodSync(plugin, 0o755);
    const exec = { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, env: [{ name: 'TOKEN_FILE', value: tokenFile }] };
    return { kc: kubeconfigWith({}, { exec }), rotate: (next) => writeFileSync(tokenFile, next) };
  }

  const whoAmI = async (client: KubeClient) =>
    (
      await client.request<{ status: { userInfo: { username: string } } }>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      })
    ).status.userInfo.username;

  it('picks up a new token from the exec plugin once the cached one has aged', async () => {
    const [alice, bob] = [await serviceAccountToken('alice'), await serviceAccountToken('bob')];
    const plugin = execKubeconfig(alice);
    const client = await clientFor(plugin.kc, { credentialsMaxAgeMs: 500 });
    expect(await whoAmI(client)).toBe(`system:serviceaccount:${t.ns}:alice`);
    plugin.rotate(bob);
    await until('requests are made as bob', async () => (await whoAmI(client)) === `system:serviceaccount:${t.ns}:bob`, 15_000);
  });

  it('when the API server rejects the cached token, fetches a new one and retries', async () => {
    const [carol, dave] = [await serviceAccountToken('carol'), await serviceAccountToken('dave')];
    const plugin = execKubeconfig(carol);
    // Cached far longer than the test: only the 401 can make the client ask again.
    const client = await clientFor(plugin.kc, { credentialsMaxAgeMs: 3_600_000 });
    expect(await whoAmI(client)).toBe(`system:serviceaccount:${t.ns}:carol`);
    plugin.rotate(dave);
    // Deleting its ServiceAccount invalidates carol's token.
    await t.client.delete(ServiceAccounts, t.ns, 'carol');
    // The API server may go on accepting a token it has just validated for a few seconds.
    await until('requests are made as dave', async () => (await whoAmI(client)) === `system:serviceaccount:${t.ns}:dave`, 40_000);
  });
});

describe('request timeouts', () => {
  it('rejects a request on a connection that went silent, and the next request works', async () => {
    const api = apiServer();
    const relay = await startRelay({ host: api.hostname, port: Number(api.port) });
    try {
      const client = await clientFor(kubeconfigWith({ server: `https://127.0.0.1:${relay.port}` }), { requestTimeoutMs: 1000 });
      await version(client); // leaves one kept-alive connection for the next request
      expect(relay.connections).toBe(1);
      relay.freezeOpenConnections();
      const started = Date.now();
      const error = await client.get(ConfigMaps, t.ns, 'anything').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RequestTimeoutError);
      expect((error as Error).message).toBe(`GET /api/v1/namespaces/${t.ns}/configmaps/anything: no complete response within 1000 ms`);
      expect(Date.now() - started).toBeGreaterThanOrEqual(990);
      // The timed-out connection was dropped; a new one is not frozen.
      expect((await version(client)).gitVersion).toMatch(/^v1\./);
      expect(relay.connections).toBe(2);
    } finally {
      await relay.close();
    }
  });
});

describe('metadata-only lists and watches', () => {
  it('lists nothing as an empty list (the server sends "items": null)', async () => {
    const none = await t.client.list<KubeObject>(Secrets, t.ns, { labelSelector: 'app=nothing' }, { metadataOnly: true });
    expect(none.items).toEqual([]);
  });

  it('returns Secrets without their data', async () => {
    await t.client.create(Secrets, {
      ...secretObject({ name: 'meta-only', namespace: t.ns, stringData: { password: 'not-to-be-cached' } }),
      metadata: { name: 'meta-only', namespace: t.ns, labels: { app: 'meta' } },
    });
    const full = await t.client.list<KubeObject>(Secrets, t.ns, { labelSelector: 'app=meta' });
    expect(full.items[0].data).toBeDefined();

    const partial = await t.client.list<KubeObject>(Secrets, t.ns, { labelSelector: 'app=meta' }, { metadataOnly: true });
    expect(partial.items).toHaveLength(1);
    expect(partial.items[0].metadata).toMatchObject({ name: 'meta-only', labels: { app: 'meta' } });
    expect(partial.items[0].metadata.resourceVersion).toBeTruthy();
    expect(partial.items[0]).not.toHaveProperty('data');
    expect(JSON.stringify(partial)).not.toContain(Buffer.from('not-to-be-cached').toString('base64'));

    const events: KubeObject[] = [];
    const stop = new AbortController();
    const watching = t.client.watch<KubeObject>(Secrets, t.ns, partial.metadata.resourceVersion, (e) => events.push(e.object), {
      signal: stop.signal,
      labelSelector: 'app=meta',
      metadataOnly: true,
    });
    await t.client.patch(Secrets, t.ns, 'meta-only', { stringData: { password: 'changed' } });
    await until('the watch delivers the change', async () => events.length > 0);
    stop.abort();
    await watching;
    expect(events[0]).toMatchObject({ kind: 'PartialObjectMetadata', metadata: { name: 'meta-only' } });
    expect(events[0]).not.toHaveProperty('data');
  });
});
