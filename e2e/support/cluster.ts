// Helpers for control-plane tests: a client for the shared test world and a fresh
// namespace per test file, deleted afterwards.
import { randomBytes } from 'node:crypto';
import { KubeClient, type KubeObject, type ResourceType } from '../../operator/kube/kube-client.js';
import { Events, Namespaces } from '../../operator/kube/resources.js';
import { until } from './test-world.js';

export { until };

/* eslint-disable @typescript-eslint/no-explicit-any -- status and events are read structurally */
export type Obj = KubeObject & { spec?: any; status?: any };

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

/** The object's condition of the given type, if any. */
export function conditionOf(obj: Obj, type = 'Ready'): any {
  return (obj.status?.conditions ?? []).find((c: any) => c.type === type);
}

/** Waits until the Ready condition has this status and reason; returns the object then. */
export async function waitForReady(
  client: KubeClient,
  type: ResourceType,
  namespace: string | undefined,
  name: string,
  expect: { status: string; reason: string },
  timeoutMs = 90000,
): Promise<Obj> {
  let last: any;
  try {
    await until(
      `${type.plural}/${name} Ready=${expect.status} (${expect.reason})`,
      async () => {
        last = conditionOf(await client.get<Obj>(type, namespace, name));
        return last?.status === expect.status && last?.reason === expect.reason;
      },
      timeoutMs,
      200,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}; last Ready: ${JSON.stringify(last)}`);
  }
  return client.get<Obj>(type, namespace, name);
}

/** Events about the named object in a namespace ("default" holds those of cluster-scoped objects). */
export async function eventsAbout(client: KubeClient, namespace: string, name: string): Promise<any[]> {
  return (await client.list<Obj>(Events, namespace, { fieldSelector: `involvedObject.name=${name}` })).items;
}
