// Decisions of `make deploy` and `make undeploy` (scripts/deploy.ts), as pure functions:
// the image override, the order objects are applied in, the inventory of what an install
// owns, and what prune and undeploy delete and what they leave in place
// (docs/adr/0012-install.md).
import type { KubeObject } from '../operator/kube/kube-client.js';

/** The image name the base's Deployments use; `images:` replaces it. */
export const BASE_IMAGE_NAME = 'kopia-operator';
/** The ConfigMap (in the install's namespace) listing what the last deploy applied. */
export const INVENTORY_NAME = 'kopia-operator-install';
export const FIELD_MANAGER = 'kopia-operator-deploy';

/** One object an install owns. The uid guards deletes: an object re-created by someone else is not ours. */
export interface InventoryEntry {
  group: string;
  version: string;
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
}

/** A kustomize `images:` entry setting the base's image to a full reference (name[:tag][@digest]). */
export function imageOverride(image: string): { name: string; newName: string; newTag?: string; digest?: string } {
  const [nameAndTag, digest] = image.split('@');
  const lastSlash = nameAndTag.lastIndexOf('/');
  const colon = nameAndTag.indexOf(':', lastSlash + 1);
  const newName = colon < 0 ? nameAndTag : nameAndTag.slice(0, colon);
  const newTag = colon < 0 ? undefined : nameAndTag.slice(colon + 1);
  if (!newName || newTag === '' || digest === '') throw new Error(`IMG=${image} is not an image reference (name[:tag][@sha256:...])`);
  return { name: BASE_IMAGE_NAME, newName, ...(newTag ? { newTag } : {}), ...(digest ? { digest } : {}) };
}

export function entryOf(obj: KubeObject): InventoryEntry {
  const apiVersion = obj.apiVersion ?? '';
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return {
    group,
    version,
    kind: obj.kind ?? '',
    ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
    name: obj.metadata.name ?? '',
    ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
  };
}

/** Identity across versions: a Deployment is the same object in apps/v1 and a later apps/v2. */
export function keyOf(e: InventoryEntry): string {
  return `${e.group}/${e.kind}/${e.namespace ?? ''}/${e.name}`;
}

export function describe(e: InventoryEntry): string {
  return `${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name}`;
}

/** What prune and undeploy may delete: the kinds the base installs besides CRDs and its Namespace. */
const REMOVABLE_KINDS = new Set([
  '/ServiceAccount',
  '/Service',
  '/ConfigMap',
  'apps/Deployment',
  'rbac.authorization.k8s.io/Role',
  'rbac.authorization.k8s.io/RoleBinding',
  'rbac.authorization.k8s.io/ClusterRole',
  'rbac.authorization.k8s.io/ClusterRoleBinding',
  'policy/PodDisruptionBudget',
  'networking.k8s.io/NetworkPolicy',
  'monitoring.coreos.com/ServiceMonitor',
  'monitoring.coreos.com/PrometheusRule',
]);

/**
 * Why prune and undeploy leave this object in place, whatever the build says: it holds users'
 * data, or it is of a kind the base does not install (an overlay's VolumeSnapshot with
 * deletionPolicy Delete would take its stored snapshot along).
 */
export function keepReason(e: InventoryEntry): string | undefined {
  if (e.group === 'apiextensions.k8s.io' && e.kind === 'CustomResourceDefinition')
    return "deleting a CRD deletes every object of its kind (the users' Repositories, BackupConfigs, Backups...)";
  if (e.group === '' && e.kind === 'Namespace')
    return "deleting a namespace deletes everything in it (ClusterRepositories' password and key Secrets live in kopia-system)";
  if (e.group === '' && ['Secret', 'PersistentVolumeClaim', 'PersistentVolume'].includes(e.kind)) return 'it may hold users’ data';
  if (e.group === 'kopia.io') return 'it is a kopia.io object (users’ configuration and the catalog of their snapshots)';
  if (!REMOVABLE_KINDS.has(`${e.group}/${e.kind}`)) return `make deploy removes only the kinds its base installs, not ${e.kind}`;
  return undefined;
}

/**
 * Whether `make deploy` applied this live object (its field manager holds fields of it). An
 * entry recorded without a uid (a deploy that stopped before applying it, or an undeploy with no
 * inventory) is deleted only then, so a same-named object someone else made is never taken.
 */
export function appliedByDeploy(live: KubeObject | undefined): boolean {
  const fields = live?.metadata?.managedFields as { manager?: string }[] | undefined;
  return !!fields?.some((f) => f.manager === FIELD_MANAGER);
}

/** CRDs first (objects of them may follow), then Namespaces, then everything else, each in build order. */
export function applyOrder<T extends KubeObject>(objects: T[]): T[] {
  const rank = (o: T) => (o.kind === 'CustomResourceDefinition' ? 0 : o.kind === 'Namespace' ? 1 : 2);
  return objects
    .map((o, i) => ({ o, i }))
    .sort((a, b) => rank(a.o) - rank(b.o) || a.i - b.i)
    .map((x) => x.o);
}

/** The one Namespace the build creates: where the inventory lives. */
export function installNamespace(objects: KubeObject[]): string {
  const namespaces = objects.filter((o) => o.kind === 'Namespace' && (o.apiVersion ?? '') === 'v1').map((o) => o.metadata.name!);
  if (namespaces.length !== 1)
    throw new Error(
      `the build must create exactly one Namespace (the install's, where its inventory is kept); it creates ${namespaces.length}`,
    );
  return namespaces[0];
}

/**
 * What the inventory says while a deploy is under way: every object of the last deploy and
 * of this one, so a deploy that stops half way still knows what to prune next time.
 */
export function inventoryDuringDeploy(last: InventoryEntry[], next: InventoryEntry[]): InventoryEntry[] {
  const byKey = new Map(last.map((e) => [keyOf(e), e]));
  for (const e of next) if (!byKey.has(keyOf(e))) byKey.set(keyOf(e), e);
  return [...byKey.values()];
}

export interface DeletePlan {
  /** Deleted, in this order: namespaced objects (the workloads) before the cluster-wide RBAC they run with. */
  remove: InventoryEntry[];
  leave: { entry: InventoryEntry; reason: string }[];
}

function deletePlan(candidates: InventoryEntry[]): DeletePlan {
  const remove: InventoryEntry[] = [];
  const leave: DeletePlan['leave'] = [];
  for (const entry of candidates) {
    const reason = keepReason(entry);
    if (reason) leave.push({ entry, reason });
    else remove.push(entry);
  }
  const rank = (e: InventoryEntry) => (e.namespace ? 0 : 1);
  return {
    remove: remove
      .map((e, i) => ({ e, i }))
      .sort((a, b) => rank(a.e) - rank(b.e) || a.i - b.i)
      .map((x) => x.e),
    leave,
  };
}

/** Prune: what the last deploy owned and this one does not apply. */
export function prunePlan(last: InventoryEntry[], applied: InventoryEntry[]): DeletePlan {
  const now = new Set(applied.map(keyOf));
  return deletePlan(last.filter((e) => !now.has(keyOf(e))));
}

/** Undeploy: everything the install owns, except what holds users' data. */
export function undeployPlan(inventory: InventoryEntry[]): DeletePlan {
  return deletePlan(inventory);
}

export function parseInventory(data: Record<string, string> | undefined): InventoryEntry[] {
  if (!data?.objects) return [];
  const parsed = JSON.parse(data.objects) as unknown;
  if (!Array.isArray(parsed)) throw new Error(`the ${INVENTORY_NAME} ConfigMap's objects is not a list`);
  return parsed as InventoryEntry[];
}

export function inventoryConfigMap(namespace: string, entries: InventoryEntry[]): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: INVENTORY_NAME,
      namespace,
      labels: { 'app.kubernetes.io/name': 'kopia-operator', 'app.kubernetes.io/managed-by': FIELD_MANAGER },
    },
    data: { objects: JSON.stringify(entries) },
  } as KubeObject;
}
