// A namespace tenant as the attack tests need one: a ServiceAccount (real token) bound in
// its own namespace only to manifests/operator/user-roles.yaml's kopia-io-edit (every
// namespaced kopia.io kind) and to claims and pods. What it writes is what any tenant
// could write; a test that acts through this client cannot reach further than RBAC lets it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { isAlreadyExists, type KubeClient, type KubeObject, type ResourceType } from '../../operator/kube/kube-client.js';
import { ClusterRoles } from '../../operator/kube/resources.js';
import { repoRoot } from './paths.js';
import { serviceAccountClient } from './service-accounts.js';

const Roles: ResourceType = { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', namespaced: true };
const RoleBindings: ResourceType = { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', namespaced: true };

async function createIfMissing(client: KubeClient, type: ResourceType, body: KubeObject): Promise<void> {
  try {
    await client.create(type, body);
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
  }
}

/** The ClusterRoles of manifests/operator/user-roles.yaml, created in the test world if missing. */
async function ensureUserRoles(admin: KubeClient): Promise<void> {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, 'manifests/operator/user-roles.yaml'), 'utf8')).map(
    (d) => d.toJS() as KubeObject,
  );
  for (const role of docs) await createIfMissing(admin, ClusterRoles, role);
}

/**
 * A client of ServiceAccount `name` in `namespace` that may write that namespace's kopia.io
 * objects, PersistentVolumeClaims and Pods, and nothing else (no Secrets, nothing in other
 * namespaces, nothing cluster-scoped).
 */
export async function tenantClient(admin: KubeClient, namespace: string, name = 'tenant'): Promise<KubeClient> {
  await ensureUserRoles(admin);
  await createIfMissing(admin, Roles, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: `${name}-workloads`, namespace },
    rules: [
      {
        apiGroups: [''],
        resources: ['persistentvolumeclaims', 'pods'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
    ],
  } as unknown as KubeObject);
  const bind = (bindingName: string, roleRef: { kind: string; name: string }) =>
    createIfMissing(admin, RoleBindings, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: bindingName, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', ...roleRef },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    } as unknown as KubeObject);
  await bind(`${name}-kopia-io-edit`, { kind: 'ClusterRole', name: 'kopia-io-edit' });
  await bind(`${name}-workloads`, { kind: 'Role', name: `${name}-workloads` });
  return serviceAccountClient(admin, namespace, name);
}
