// make deploy's apply script against the real API server: every manifest applies, twice.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { KubeObject } from '../../operator/kube/kube-client.js';
import { testClient } from '../support/cluster.js';
import { tsNode } from '../support/paths.js';

const run = promisify(execFile);

it('applies manifests/ idempotently with the operator Deployment and least-privilege RBAC', async () => {
  const [node, ...args] = tsNode();
  const env = { ...process.env, KUBECONFIG: process.env.KOPIA_TEST_KUBECONFIG! };
  const first = await run(node, [...args, 'scripts/apply.ts', 'manifests'], { env });
  expect(first.stdout).toContain('applied Deployment kopia-system/kopia-operator');
  expect(first.stdout).toContain('applied CustomResourceDefinition restores.kopia.io');
  await run(node, [...args, 'scripts/apply.ts', 'manifests'], { env });
  const client = await testClient();
  const deployment = await client.request<KubeObject & { spec: { template: { spec: { serviceAccountName: string } } } }>(
    'GET',
    '/apis/apps/v1/namespaces/kopia-system/deployments/kopia-operator',
  );
  expect(deployment.spec.template.spec.serviceAccountName).toBe('kopia-operator');
  const role = await client.request<{ rules: { resources: string[]; verbs: string[] }[] }>(
    'GET',
    '/apis/rbac.authorization.k8s.io/v1/clusterroles/kopia-operator',
  );
  const secrets = role.rules.find((r) => r.resources.includes('secrets'))!;
  // delete: only for its copies of a ClusterRepository's keys in namespaces that may no longer hold them (issue 14);
  // never deletecollection, never more than these.
  expect([...secrets.verbs].sort()).toEqual(['create', 'delete', 'get', 'list', 'update', 'watch']);
  expect(role.rules.some((r) => r.resources.includes('pods/log') || r.resources.includes('pods/exec'))).toBe(false);
  client.close();
}, 120_000);
