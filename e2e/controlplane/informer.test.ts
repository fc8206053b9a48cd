// The informer against the real API server, through a relay that can freeze or drop its
// connections: a watch that goes silent or breaks is resumed from the last resourceVersion
// without relisting; and metadata-only informers cache Secrets without their data.
import { KubeConfig } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { KubeClient, WatchIdleError, type KubeObject } from '../../operator/kube/kube-client.js';
import { ConfigMaps, Secrets } from '../../operator/kube/resources.js';
import { Informer } from '../../operator/runtime/informer.js';
import { until, useTestNamespace } from '../support/cluster.js';
import { secretObject } from '../support/objects.js';
import { startRelay, type FreezableRelay } from '../support/tcp-proxy.js';

const t = useTestNamespace('informer');

/** A client whose every connection goes through a fresh relay to the test API server. */
async function relayedClient(): Promise<{ client: KubeClient; relay: FreezableRelay }> {
  const doc = parse(readFileSync(process.env.KOPIA_TEST_KUBECONFIG!, 'utf8')) as { clusters: { cluster: { server: string } }[] };
  const api = new URL(doc.clusters[0].cluster.server);
  const relay = await startRelay({ host: api.hostname, port: Number(api.port) });
  doc.clusters[0].cluster.server = `https://127.0.0.1:${relay.port}`;
  const kc = new KubeConfig();
  kc.loadFromString(JSON.stringify(doc));
  return { client: await KubeClient.fromKubeConfig(kc), relay };
}

const configMap = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: t.ns } });

describe('informer watch recovery', () => {
  let client: KubeClient;
  let relay: FreezableRelay;
  let informer: Informer<KubeObject>;
  beforeEach(async () => ({ client, relay } = await relayedClient()));
  afterEach(async () => {
    informer.stop();
    client.close();
    await relay.close();
  });

  it('resumes a watch gone silent (half-open connection) from its last resourceVersion, without relisting', async () => {
    const errors: unknown[] = [];
    informer = new Informer<KubeObject>(client, ConfigMaps, {
      namespace: t.ns,
      watchIdleTimeoutMs: 2000,
      backoff: { initialMs: 100 },
      onError: (e) => errors.push(e),
    });
    await informer.start();
    await t.client.create(ConfigMaps, configMap('before-freeze'));
    await until('the watch delivers before-freeze', async () => !!informer.get(`${t.ns}/before-freeze`));

    relay.freezeOpenConnections();
    await t.client.create(ConfigMaps, configMap('during-freeze'));
    await until('a new watch delivers during-freeze', async () => !!informer.get(`${t.ns}/during-freeze`), 30_000);

    expect(errors.some((e) => e instanceof WatchIdleError)).toBe(true);
    expect(client.calls['GET configmaps']).toBe(1);
    expect(client.calls['WATCH configmaps']).toBeGreaterThanOrEqual(2);
  });

  it('resumes a watch whose connection was dropped from its last resourceVersion, without relisting', async () => {
    const errors: unknown[] = [];
    informer = new Informer<KubeObject>(client, ConfigMaps, {
      namespace: t.ns,
      backoff: { initialMs: 100 },
      onError: (e) => errors.push(e),
    });
    await informer.start();
    await t.client.create(ConfigMaps, configMap('before-drop'));
    await until('the watch delivers before-drop', async () => !!informer.get(`${t.ns}/before-drop`));

    relay.dropOpenConnections();
    await t.client.create(ConfigMaps, configMap('after-drop'));
    await t.client.delete(ConfigMaps, t.ns, 'before-drop');
    await until(
      'the resumed watch delivers the changes',
      async () => !informer.get(`${t.ns}/before-drop`) && !!informer.get(`${t.ns}/after-drop`),
    );

    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(client.calls['GET configmaps']).toBe(1);
    expect(client.calls['WATCH configmaps']).toBeGreaterThanOrEqual(2);
  });
});

describe('metadata-only informer', () => {
  let informer: Informer<KubeObject>;
  afterEach(() => informer.stop());

  it('caches Secrets as metadata, from the list and from the watch', async () => {
    const labelled = (name: string) => ({
      ...secretObject({ name, namespace: t.ns, stringData: { token: 'secret-value' } }),
      metadata: { name, namespace: t.ns, labels: { cache: 'meta' } },
    });
    await t.client.create(Secrets, labelled('listed'));
    informer = new Informer<KubeObject>(t.client, Secrets, { namespace: t.ns, labelSelector: 'cache=meta', metadataOnly: true });
    await informer.start();
    await t.client.create(Secrets, labelled('watched'));
    await until('the watch delivers the second Secret', async () => !!informer.get(`${t.ns}/watched`));

    const cached = informer.list();
    expect(cached.map((s) => s.metadata.name).sort()).toEqual(['listed', 'watched']);
    for (const secret of cached) {
      expect(secret.metadata.labels).toEqual({ cache: 'meta' });
      expect(secret).not.toHaveProperty('data');
      expect(secret).not.toHaveProperty('type');
    }
  });
});

describe('the cache', () => {
  let informer: Informer<KubeObject>;
  afterEach(() => informer.stop());

  it('holds objects without managedFields, from the list and from the watch (the server has them)', async () => {
    const labelled = (name: string): KubeObject => ({ ...configMap(name), metadata: { name, namespace: t.ns, labels: { cache: 'lean' } } });
    await t.client.create(ConfigMaps, labelled('lean-listed'));
    informer = new Informer<KubeObject>(t.client, ConfigMaps, { namespace: t.ns, labelSelector: 'cache=lean' });
    await informer.start();
    await t.client.create(ConfigMaps, labelled('lean-watched'));
    await until('the watch delivers lean-watched', async () => !!informer.get(`${t.ns}/lean-watched`));

    const fromServer = await t.client.get<KubeObject>(ConfigMaps, t.ns, 'lean-watched');
    expect(fromServer.metadata.managedFields?.length).toBeGreaterThan(0);
    for (const cached of informer.list()) expect(cached.metadata).not.toHaveProperty('managedFields');
  });
});
