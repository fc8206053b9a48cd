// make deploy / make undeploy (docs/adr/0012-install.md).
//
//   deploy.ts deploy   --base <dir> --image <ref>   kustomize build of <dir> with the image set
//                                                   through `images:`, server-side apply, prune
//   deploy.ts undeploy --base <dir>                 delete what the install owns, CRDs kept
//
// The build (kustomize.ts: $KUSTOMIZE, kustomize on PATH, or kubectl kustomize) runs on a
// temporary overlay whose only resource is <dir>. What a deploy applied is recorded in the
// kopia-operator-install ConfigMap in the install's namespace; the next deploy prunes what it lists and the new build lacks. The decisions
// (order, what is never deleted) are in install-plan.ts.
import { parseArgs } from 'node:util';
import { ApiError, isNotFound, KubeClient, resourcePath, type KubeObject, type ResourceType } from '../operator/kube/kube-client.js';
import { ConfigMaps } from '../operator/kube/resources.js';
import {
  FIELD_MANAGER,
  INVENTORY_NAME,
  appliedByDeploy,
  applyOrder,
  describe,
  entryOf,
  installNamespace,
  inventoryConfigMap,
  inventoryDuringDeploy,
  parseInventory,
  prunePlan,
  undeployPlan,
  type DeletePlan,
  type InventoryEntry,
} from './install-plan.js';
import { kustomizeBuild as build } from './kustomize.js';

/** Resource paths from API discovery, waiting for a group a CRD just added. */
class Discovery {
  private readonly cache = new Map<string, { name: string; kind: string; namespaced: boolean }[]>();
  constructor(private readonly client: KubeClient) {}

  async type(e: InventoryEntry, waitForIt: boolean): Promise<ResourceType | undefined> {
    const path = e.group ? `/apis/${e.group}/${e.version}` : `/api/${e.version}`;
    for (let attempt = 0; ; attempt++) {
      try {
        let resources = this.cache.get(path);
        if (!resources || !resources.some((r) => r.kind === e.kind)) {
          resources = (await this.client.request<{ resources: { name: string; kind: string; namespaced: boolean }[] }>('GET', path))
            .resources;
          this.cache.set(path, resources);
        }
        const r = resources.find((x) => x.kind === e.kind && !x.name.includes('/'));
        if (r) return { group: e.group, version: e.version, plural: r.name, namespaced: r.namespaced };
      } catch (err) {
        if (!isNotFound(err)) throw err; // a group not served (yet)
      }
      if (!waitForIt || attempt >= 60) return undefined;
      await new Promise((res) => setTimeout(res, 500));
    }
  }
}

async function readInventory(client: KubeClient, namespace: string): Promise<InventoryEntry[] | undefined> {
  const cm = await client.getOrUndefined<KubeObject & { data?: Record<string, string> }>(ConfigMaps, namespace, INVENTORY_NAME);
  return cm ? parseInventory(cm.data) : undefined;
}

async function writeInventory(client: KubeClient, namespace: string, entries: InventoryEntry[]): Promise<void> {
  await client.request('PATCH', resourcePath(ConfigMaps, namespace, INVENTORY_NAME), {
    body: JSON.stringify(inventoryConfigMap(namespace, entries)),
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: FIELD_MANAGER, force: true },
  });
}

async function waitEstablished(client: KubeClient, name: string): Promise<void> {
  const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`;
  for (let attempt = 0; attempt < 120; attempt++) {
    const crd = await client.request<{ status?: { conditions?: { type: string; status: string }[] } }>('GET', path);
    if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new Error(`CustomResourceDefinition ${name} was not Established within 30 s`);
}

/** Deletes the plan's objects (each only if it is still the object recorded); reports what it left. */
async function carryOut(client: KubeClient, discovery: Discovery, plan: DeletePlan, verb: string): Promise<number> {
  let removed = 0;
  for (const e of plan.remove) {
    const type = await discovery.type(e, false);
    if (!type) continue; // its API is gone, and so is it
    let uid = e.uid;
    if (!uid) {
      // Recorded before it was applied (a deploy that stopped), or no inventory at all: delete
      // it only if make deploy applied it, and only that very object.
      const live = await client.getOrUndefined<KubeObject>(type, e.namespace, e.name);
      if (!live) continue;
      if (!appliedByDeploy(live)) {
        console.log(`left in place ${describe(e)}: make deploy did not apply it (no fields of ${FIELD_MANAGER})`);
        continue;
      }
      uid = live.metadata.uid;
    }
    try {
      if (await client.delete(type, e.namespace, e.name, { propagationPolicy: 'Background', uid })) {
        console.log(`${verb} ${describe(e)}`);
        removed++;
      }
    } catch (err) {
      // 409: the uid precondition failed: someone else's object now has the name; not ours to delete.
      if (!(err instanceof ApiError && err.status === 409)) throw err;
      console.log(`left in place ${describe(e)}: it was re-created by someone else since the last deploy`);
    }
  }
  for (const { entry, reason } of plan.leave) console.log(`left in place ${describe(entry)}: ${reason}`);
  return removed;
}

async function deploy(client: KubeClient, base: string, image: string): Promise<void> {
  const objects = applyOrder(build(base, image));
  const namespace = installNamespace(objects);
  const discovery = new Discovery(client);
  const applyOne = async (obj: KubeObject): Promise<InventoryEntry> => {
    const type = await discovery.type(entryOf(obj), true);
    if (!type) throw new Error(`the cluster does not serve ${obj.kind} in ${obj.apiVersion}`);
    const result = await client.request<KubeObject>('PATCH', resourcePath(type, obj.metadata.namespace, obj.metadata.name), {
      body: JSON.stringify(obj),
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: FIELD_MANAGER, force: true },
    });
    console.log(`applied ${describe(entryOf(obj))}`);
    if (obj.kind === 'CustomResourceDefinition') await waitEstablished(client, obj.metadata.name!);
    return entryOf(result);
  };

  // The CRDs and the Namespace first: the inventory lives in the Namespace.
  const applied: InventoryEntry[] = [];
  const first = objects.filter((o) => o.kind === 'CustomResourceDefinition' || o.kind === 'Namespace');
  for (const obj of first) applied.push(await applyOne(obj));
  const last = (await readInventory(client, namespace)) ?? [];
  await writeInventory(client, namespace, inventoryDuringDeploy(last, objects.map(entryOf)));
  for (const obj of objects.filter((o) => !first.includes(o))) applied.push(await applyOne(obj));

  const pruned = await carryOut(client, discovery, prunePlan(last, applied), 'pruned');
  if (pruned === 0) console.log('pruned nothing');
  await writeInventory(client, namespace, applied);
}

async function undeploy(client: KubeClient, base: string): Promise<void> {
  const built = build(base);
  const namespace = installNamespace(built);
  const inventory = await readInventory(client, namespace);
  // Installed before the inventory existed (or by hand): what the build would install is the install.
  const owned = inventory ?? built.map(entryOf);
  const removed = await carryOut(client, new Discovery(client), undeployPlan(owned), 'removed');
  if (inventory) await client.delete(ConfigMaps, namespace, INVENTORY_NAME);
  console.log(removed === 0 ? 'nothing to remove' : `removed ${removed} objects; the CRDs and the users' kopia.io objects are kept`);
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { base: { type: 'string', default: 'manifests' }, image: { type: 'string' } },
  });
  const client = await KubeClient.fromDefault();
  try {
    if (positionals[0] === 'deploy') {
      if (!values.image) throw new Error('deploy needs --image (make deploy IMG=...)');
      await deploy(client, values.base, values.image);
    } else if (positionals[0] === 'undeploy') {
      await undeploy(client, values.base);
    } else {
      throw new Error('usage: deploy.ts deploy --base <dir> --image <ref> | undeploy --base <dir>');
    }
  } finally {
    client.close();
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(`${process.argv[2] ?? 'deploy'}: ${e.message}`);
    process.exit(1);
  },
);
