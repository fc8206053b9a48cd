// `make deploy` and `make undeploy` as a user runs them, against the real API server: the
// kustomize build of manifests/ with IMG set through `images:`, server-side apply, prune of
// what the last deploy owned and the new build does not (never a CRD), and an undeploy that
// keeps the CRDs and so the users' kopia.io objects.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isNotFound, type KubeObject } from '../../operator/kube/kube-client.js';
import { KopiaRepositories, Secrets } from '../../operator/kube/resources.js';
import { useTestNamespace } from '../support/cluster.js';
import { ensureTestBinaries } from '../support/control-plane.js';
import { repoRoot } from '../support/paths.js';

const run = promisify(execFile);
const IMG = 'registry.example/team/kopia-operator:9.8.7';

/**
 * `make <target> VAR=...` in the checkout, on the test world's cluster. `-o` keeps make from
 * reinstalling node_modules under the running tests when package-lock.json is newer.
 */
async function make(target: string, ...vars: string[]): Promise<string> {
  // The kustomize scripts/build-test-binaries.sh builds: CI machines need not have kubectl.
  const kustomize = `${ensureTestBinaries(['kustomize'])}/kustomize build`;
  const env = { ...process.env, KUBECONFIG: process.env.KOPIA_TEST_KUBECONFIG!, KUSTOMIZE: kustomize };
  const { stdout, stderr } = await run('make', ['-o', 'node_modules/.package-lock.json', target, ...vars], {
    cwd: repoRoot,
    env,
    maxBuffer: 16 << 20,
  });
  return stdout + stderr;
}

const paths = {
  operator: '/apis/apps/v1/namespaces/kopia-system/deployments/kopia-operator',
  populator: '/apis/apps/v1/namespaces/kopia-system/deployments/kopia-populator',
  operatorMetrics: '/api/v1/namespaces/kopia-system/services/kopia-operator-metrics',
  populatorMetrics: '/api/v1/namespaces/kopia-system/services/kopia-populator-metrics',
  operatorBudget: '/apis/policy/v1/namespaces/kopia-system/poddisruptionbudgets/kopia-operator',
  populatorBudget: '/apis/policy/v1/namespaces/kopia-system/poddisruptionbudgets/kopia-populator',
  intakePolicy: '/apis/networking.k8s.io/v1/namespaces/kopia-system/networkpolicies/kopia-operator-intake',
  operatorRole: '/apis/rbac.authorization.k8s.io/v1/clusterroles/kopia-operator',
  populatorRole: '/apis/rbac.authorization.k8s.io/v1/clusterroles/kopia-populator',
  namespace: '/api/v1/namespaces/kopia-system',
  restoresCrd: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/restores.kopia.io',
  repositoriesCrd: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/repositories.kopia.io',
};

type Deployment = KubeObject & { spec: { template: { spec: { containers: { name: string; image: string }[] } } } };

describe('make deploy / make undeploy', () => {
  const t = useTestNamespace('deploy');

  const get = <T = KubeObject>(path: string) => t.client.request<T>('GET', path);
  const exists = async (path: string) => {
    try {
      const obj = await get<KubeObject & { metadata: { deletionTimestamp?: string } }>(path);
      return !obj.metadata.deletionTimestamp;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  };

  it('installs the kustomize build with IMG set through images:, and a second deploy changes nothing', async () => {
    const first = await make('deploy', `IMG=${IMG}`);
    for (const name of ['operator', 'populator'] as const) {
      const d = await get<Deployment>(paths[name]);
      expect(d.spec.template.spec.containers.map((c) => c.image)).toEqual([IMG]);
    }
    for (const path of [paths.operatorMetrics, paths.populatorMetrics, paths.operatorBudget, paths.populatorBudget, paths.intakePolicy]) {
      expect(await exists(path)).toBe(true);
    }
    expect(first).toContain('applied Deployment kopia-system/kopia-operator');
    expect(first).toContain('applied CustomResourceDefinition restores.kopia.io');
    const role = await get<{ rules: { resources: string[]; verbs: string[] }[] }>(paths.operatorRole);
    const secrets = role.rules.find((r) => r.resources.includes('secrets'))!;
    // delete: only for its copies of a ClusterRepository's keys in namespaces that may no longer hold them (issue 14);
    // never deletecollection, never more than these.
    expect([...secrets.verbs].sort()).toEqual(['create', 'delete', 'get', 'list', 'update', 'watch']);
    expect(role.rules.some((r) => r.resources.includes('pods/log') || r.resources.includes('pods/exec'))).toBe(false);

    const versions = async () =>
      Object.fromEntries(await Promise.all(Object.entries(paths).map(async ([k, p]) => [k, (await get(p)).metadata.resourceVersion])));
    const before = await versions();
    const second = await make('deploy', `IMG=${IMG}`);
    expect(await versions()).toEqual(before); // server-side apply of the same objects writes nothing
    expect(second).toMatch(/pruned nothing/);
  }, 180_000);

  it('prunes what the last deploy owned and the new build lacks, but never a CRD', async () => {
    const base = mkdtempSync(join(tmpdir(), 'kopia-deploy-base-'));
    try {
      cpSync(join(repoRoot, 'manifests'), base, { recursive: true });
      const drop = (file: string, entry: string) => {
        const path = join(base, file);
        const text = readFileSync(path, 'utf8');
        const line = new RegExp(`^\\s*- ${entry.replace(/\./g, '\\.')}\\n`, 'm');
        expect(text).toMatch(line);
        writeFileSync(path, text.replace(line, ''));
      };
      drop('populator/kustomization.yaml', 'metrics-service.yaml');
      drop('crds/kustomization.yaml', 'restores.kopia.io.yaml');

      const out = await make('deploy', `IMG=${IMG}`, `BASE=${base}`);
      expect(out).toContain('pruned Service kopia-system/kopia-populator-metrics');
      expect(await exists(paths.populatorMetrics)).toBe(false);
      expect(await exists(paths.restoresCrd)).toBe(true); // left out of the build, never deleted
      expect(out).toContain('left in place CustomResourceDefinition restores.kopia.io');
      expect(await exists(paths.operatorMetrics)).toBe(true);

      // The full base again brings the Service back: upgrade is deploy again.
      await make('deploy', `IMG=${IMG}`);
      expect(await exists(paths.populatorMetrics)).toBe(true);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 240_000);

  it('undeploy removes the install and keeps the CRDs, a user’s Repository and kopia-system’s Secrets', async () => {
    await t.client.create(KopiaRepositories, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Repository',
      metadata: { name: 'kept', namespace: t.ns },
      spec: {
        backend: { filesystem: { path: '/', volume: { persistentVolumeClaim: { claimName: 'repo' } } } },
        passwordSecretRef: { name: 'p', key: 'k' },
      },
    } as unknown as KubeObject);
    // A ClusterRepository's password lives in kopia-system (API.md): losing it loses the repository.
    await t.client.create(Secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'kopia-repo', namespace: 'kopia-system' },
      stringData: { KOPIA_PASSWORD: 'correct horse battery staple' },
    } as unknown as KubeObject);

    const out = await make('undeploy');
    for (const path of [
      paths.operator,
      paths.populator,
      paths.operatorMetrics,
      paths.intakePolicy,
      paths.operatorBudget,
      paths.operatorRole,
      paths.populatorRole,
      '/api/v1/namespaces/kopia-system/configmaps/kopia-operator-install',
    ]) {
      expect(await exists(path)).toBe(false);
    }
    expect(out).toContain('left in place CustomResourceDefinition restores.kopia.io');
    expect(out).toContain('left in place Namespace kopia-system');
    expect(await exists(paths.restoresCrd)).toBe(true);
    expect(await exists(paths.repositoriesCrd)).toBe(true);
    expect(await exists(paths.namespace)).toBe(true);
    expect((await t.client.get(Secrets, 'kopia-system', 'kopia-repo')).metadata.name).toBe('kopia-repo');
    expect((await t.client.get(KopiaRepositories, t.ns, 'kept')).metadata.name).toBe('kept');

    // A second undeploy finds nothing of the install left.
    expect(await make('undeploy')).toContain('nothing to remove');
    await t.client.delete(Secrets, 'kopia-system', 'kopia-repo');
  }, 180_000);

  it('undeploy with no inventory leaves same-named objects make deploy never applied (another install’s RBAC)', async () => {
    // Another install (an overlay in another namespace, Helm, GitOps) owns cluster-wide RBAC of
    // the same names; this cluster has no inventory in kopia-system.
    const clusterRole = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'kopia-operator' },
      rules: [{ apiGroups: ['kopia.io'], resources: ['*'], verbs: ['get'] }],
    };
    await t.client.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { body: JSON.stringify(clusterRole) });
    try {
      const out = await make('undeploy');
      expect(out).toContain('left in place ClusterRole kopia-operator: make deploy did not apply it');
      expect(await exists(paths.operatorRole)).toBe(true);
    } finally {
      await t.client.request('DELETE', paths.operatorRole);
    }
  }, 180_000);
});
