// Clients that act as a ServiceAccount (a real token from the TokenRequest API), with the
// operator's RBAC from manifests/, so a missing permission fails a test instead of being
// hidden by the admin certificate.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { isAlreadyExists, KubeClient, type KubeObject } from '../../operator/kube/kube-client.js';
import { ClusterRoleBindings, ClusterRoles, ServiceAccounts } from '../../operator/kube/resources.js';
import { repoRoot } from './paths.js';

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** The rules of a ClusterRole in manifests/operator/rbac.yaml. */
export function manifestClusterRoleRules(name: string): PolicyRule[] {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, 'manifests/operator/rbac.yaml'), 'utf8')).map((d) => d.toJS() as KubeObject);
  const role = docs.find((d) => d.kind === 'ClusterRole' && d.metadata.name === name);
  if (!role) throw new Error(`manifests/operator/rbac.yaml has no ClusterRole ${name}`);
  return (role as unknown as { rules: PolicyRule[] }).rules;
}

/** A client authenticated with a fresh token of namespace/name (created if missing). */
export async function serviceAccountClient(admin: KubeClient, namespace: string, name: string): Promise<KubeClient> {
  try {
    await admin.create(ServiceAccounts, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
  }
  const review = await admin.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
    },
  );
  const adminConfig = new KubeConfig();
  adminConfig.loadFromFile(process.env.KOPIA_TEST_KUBECONFIG!);
  const cluster = adminConfig.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name, token: review.status.token }],
    contexts: [{ name, cluster: cluster.name, user: name }],
    currentContext: name,
  });
  return KubeClient.fromKubeConfig(kc);
}

/**
 * A cluster-wide role for one ServiceAccount with the given rules, bound to it; update()
 * changes the rules (the API server's authorizer follows within moments).
 */
export async function grantClusterRole(
  admin: KubeClient,
  roleName: string,
  subject: { namespace: string; name: string },
  rules: PolicyRule[],
): Promise<{ update(rules: PolicyRule[]): Promise<void>; remove(): Promise<void> }> {
  const role = (r: PolicyRule[]) =>
    ({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: roleName }, rules: r }) as unknown as KubeObject;
  await admin.create(ClusterRoles, role(rules));
  await admin.create(ClusterRoleBindings, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: roleName },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName },
    subjects: [{ kind: 'ServiceAccount', ...subject }],
  } as KubeObject);
  return {
    async update(next) {
      const current = await admin.get(ClusterRoles, undefined, roleName);
      await admin.replace(ClusterRoles, { ...role(next), metadata: { name: roleName, resourceVersion: current.metadata.resourceVersion } });
    },
    async remove() {
      await admin.delete(ClusterRoleBindings, undefined, roleName);
      await admin.delete(ClusterRoles, undefined, roleName);
    },
  };
}
