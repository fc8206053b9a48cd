import type { KubeObject } from '../../operator/kube/kube-client.js';
import {
  applyOrder,
  imageOverride,
  installNamespace,
  inventoryDuringDeploy,
  appliedByDeploy,
  prunePlan,
  undeployPlan,
  type InventoryEntry,
} from '../install-plan.js';

const entry = (group: string, kind: string, name: string, namespace?: string): InventoryEntry => ({
  group,
  version: 'v1',
  kind,
  name,
  ...(namespace ? { namespace } : {}),
});
const crd = entry('apiextensions.k8s.io', 'CustomResourceDefinition', 'restores.kopia.io');
const ns = entry('', 'Namespace', 'kopia-system');
const deployment = entry('apps', 'Deployment', 'kopia-operator', 'kopia-system');
const service = entry('', 'Service', 'kopia-populator-metrics', 'kopia-system');
const role = entry('rbac.authorization.k8s.io', 'ClusterRole', 'kopia-operator');

describe('imageOverride', () => {
  it.each([
    ['registry.example:5000/team/kopia-operator:1.2.3', { newName: 'registry.example:5000/team/kopia-operator', newTag: '1.2.3' }],
    ['kopia-operator', { newName: 'kopia-operator' }],
    ['r.example/k@sha256:abc', { newName: 'r.example/k', digest: 'sha256:abc' }],
    ['r.example/k:1@sha256:abc', { newName: 'r.example/k', newTag: '1', digest: 'sha256:abc' }],
  ])('%s', (image, expected) => {
    expect(imageOverride(image)).toEqual({ name: 'kopia-operator', ...expected });
  });

  it('refuses what is not an image reference', () => {
    expect(() => imageOverride('kopia-operator:')).toThrow(/not an image reference/);
    expect(() => imageOverride('')).toThrow(/not an image reference/);
  });
});

describe('prunePlan', () => {
  it('deletes what the last deploy applied and this one does not, namespaced objects first', () => {
    const plan = prunePlan([role, deployment, service], [deployment]);
    expect(plan.remove).toEqual([service, role]);
    expect(plan.leave).toEqual([]);
  });

  it('never deletes a CRD, a Namespace, a Secret, a claim or a kopia.io object', () => {
    const kept = [
      crd,
      ns,
      entry('', 'Secret', 'kopia-repo', 'kopia-system'),
      entry('', 'PersistentVolumeClaim', 'data', 'kopia-system'),
      entry('kopia.io', 'ClusterRepository', 'shared'),
    ];
    const plan = prunePlan(kept, []);
    expect(plan.remove).toEqual([]);
    expect(plan.leave.map((l) => l.entry)).toEqual(kept);
    expect(plan.leave[0].reason).toMatch(/deletes every object of its kind/);
  });

  it('deletes only the kinds the base installs: anything else an overlay adds is left in place', () => {
    // A VolumeSnapshot with deletionPolicy Delete would take its stored snapshot with it.
    const snapshot = entry('snapshot.storage.k8s.io', 'VolumeSnapshot', 'before-upgrade', 'kopia-system');
    const plan = prunePlan([snapshot, entry('batch', 'CronJob', 'extra', 'kopia-system')], []);
    expect(plan.remove).toEqual([]);
    expect(plan.leave.map((l) => l.reason)).toEqual([
      expect.stringMatching(/only the kinds its base installs/),
      expect.stringMatching(/only the kinds its base installs/),
    ]);
  });

  it('matches objects across API versions: a kind moved to a new version is not pruned', () => {
    expect(prunePlan([deployment], [{ ...deployment, version: 'v2' }]).remove).toEqual([]);
  });
});

describe('undeployPlan', () => {
  it('removes everything but what holds data', () => {
    const plan = undeployPlan([crd, ns, role, deployment]);
    expect(plan.remove).toEqual([deployment, role]);
    expect(plan.leave.map((l) => l.entry)).toEqual([crd, ns]);
  });
});

describe('appliedByDeploy', () => {
  const live = (managers: string[]) =>
    ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'm', uid: 'u1', managedFields: managers.map((manager) => ({ manager, operation: 'Apply' })) },
    }) as KubeObject;
  it('is true only for an object make deploy applied (its field manager), so a same-named object of someone else is never deleted', () => {
    expect(appliedByDeploy(live(['kopia-operator-deploy', 'kube-controller-manager']))).toBe(true);
    expect(appliedByDeploy(live(['kubectl-client-side-apply']))).toBe(false);
    expect(appliedByDeploy(live([]))).toBe(false);
    expect(appliedByDeploy(undefined)).toBe(false);
  });
});

describe('inventoryDuringDeploy', () => {
  it('holds the last deploy and this one, keeping the recorded uids', () => {
    const last = [{ ...deployment, uid: 'u1' }, service];
    expect(inventoryDuringDeploy(last, [deployment, role])).toEqual([{ ...deployment, uid: 'u1' }, service, role]);
  });
});

describe('applyOrder and installNamespace', () => {
  const obj = (apiVersion: string, kind: string, name: string) => ({ apiVersion, kind, metadata: { name } }) as KubeObject;

  it('applies CRDs, then the Namespace, then the rest in build order', () => {
    const objects = [
      obj('v1', 'ServiceAccount', 'a'),
      obj('v1', 'Namespace', 'n'),
      obj('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'c'),
      obj('v1', 'Service', 'b'),
    ];
    expect(applyOrder(objects).map((o) => o.metadata.name)).toEqual(['c', 'n', 'a', 'b']);
  });

  it('needs exactly one Namespace in the build', () => {
    expect(installNamespace([obj('v1', 'Namespace', 'kopia-system')])).toBe('kopia-system');
    expect(() => installNamespace([])).toThrow(/exactly one Namespace/);
  });
});
