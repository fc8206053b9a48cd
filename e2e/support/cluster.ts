// Helpers for control-plane tests: a client for the shared test world and a fresh
// namespace per test file, deleted afterwards.
import { randomBytes } from 'node:crypto';
import { KubeClient, type KubeObject } from '../../operator/kube/kube-client.js';
import { Namespaces } from '../../operator/kube/resources.js';

export { until } from './test-world.js';

export async function testClient(): Promise<KubeClient> {
  const kubeconfig = process.env.KOPIA_TEST_KUBECONFIG;
  if (!kubeconfig) throw new Error('KOPIA_TEST_KUBECONFIG is not set: run the control-plane tier through jest (make test)');
  return KubeClient.fromFile(kubeconfig);
}

export async function createNamespace(client: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubeObject);
  return name;
}

export async function deleteNamespace(client: KubeClient, name: string): Promise<void> {
  await client.delete(Namespaces, undefined, name);
}

/**
 * A client and a fresh namespace for one test file: created before its tests, deleted
 * after them. Read them as `t.client` and `t.ns` inside tests and hooks.
 */
export function useTestNamespace(prefix: string): { readonly client: KubeClient; readonly ns: string } {
  const state = {} as { client: KubeClient; ns: string };
  beforeAll(async () => {
    state.client = await testClient();
    state.ns = await createNamespace(state.client, prefix);
  });
  afterAll(async () => {
    await deleteNamespace(state.client, state.ns);
    state.client.close();
  });
  return state;
}
