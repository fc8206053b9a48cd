// The generated CRDs on the real kube-apiserver: structural, established, and rejecting
// the same invalid corpus the offline validator rejects (the CEL rules run in the server).
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { ApiError, type KubeObject } from '../../operator/kube/kube-client.js';
import { CustomResourceDefinitions, kopiaResourceOf } from '../../operator/kube/resources.js';
import { invalidCases, invalidObject } from '../../operator/validation/__tests__/invalid-corpus.js';
import { validObjects, type KindName } from '../../operator/test-support/kopia-objects.js';
import { useTestNamespace } from '../support/cluster.js';

const t = useTestNamespace('crds');

function placed(obj: Record<string, unknown>): KubeObject {
  const o = structuredClone(obj) as KubeObject;
  if (o.kind === 'ClusterRepository') delete o.metadata.namespace;
  else o.metadata.namespace = t.ns;
  return o;
}

async function dryRunCreate(obj: Record<string, unknown>): Promise<ApiError | undefined> {
  const o = placed(obj);
  try {
    await t.client.create(kopiaResourceOf[o.kind!], o, { dryRun: 'All' });
    return undefined;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
}

it('every CRD is established and structural', async () => {
  for (const resource of Object.values(kopiaResourceOf)) {
    const crd = await t.client.get<KubeObject & { status: { conditions: { type: string; status: string }[] } }>(
      CustomResourceDefinitions,
      undefined,
      `${resource.plural}.kopia.io`,
    );
    const conditions = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
    expect(conditions).toMatchObject({ Established: 'True', NamesAccepted: 'True' });
    expect(conditions.NonStructuralSchema).toBeUndefined();
  }
});

it.each(Object.keys(validObjects) as KindName[])('the API server accepts a minimal %s', async (kind) => {
  expect(await dryRunCreate(validObjects[kind]() as unknown as Record<string, unknown>)).toBeUndefined();
});

it('the API server accepts every manifest of the API contract', async () => {
  const docs = parseAllDocuments(readFileSync('examples/api-contract.yaml', 'utf8'))
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((o): o is Record<string, unknown> => o?.apiVersion === 'kopia.io/v1alpha1');
  for (const doc of docs)
    expect({ kind: doc.kind, error: (await dryRunCreate(doc))?.message }).toEqual({ kind: doc.kind, error: undefined });
});

const serverCases = invalidCases.filter((c) => !c.offlineOnly);

it('checks most of the corpus in the server too', () => {
  expect(serverCases.length).toBeGreaterThanOrEqual(60);
});

it.each(serverCases.map((c) => [c.name, c] as const))('the API server rejects: %s', async (_name, c) => {
  const error = await dryRunCreate(invalidObject(c));
  expect(error?.status).toBe(422);
  expect(error?.message).toMatch(c.message);
  // The server names the field, in the same dotted form the offline validator uses.
  expect(error?.message).toContain(c.path.replace(/\[(\d+)\]/g, '[$1]'));
});
