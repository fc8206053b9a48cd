// The approval of a populator restore Job's mover settings (mover-approval.ts) and how the
// Restore's status carries it (restore-operator.ts withApproval).
import type { RestoreObject } from '../restore-job.js';
import { decideApproval, moverApprovalHash, restoreMoverInputs } from '../mover-approval.js';
import { withApproval } from '../restore-operator.js';

const NOW = new Date('2026-12-03T11:00:00Z');
const nas = { kind: 'Repository' as const, name: 'nas' };

function restore(mover?: object, generation = 3): RestoreObject {
  return {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Restore',
    metadata: { name: 'data', namespace: 'media', generation },
    spec: { source: { fromConfig: { name: 'app' } }, target: { populator: {} }, ...(mover ? { mover } : {}) },
  } as RestoreObject;
}

describe('moverApprovalHash', () => {
  it('is the same for the same settings however they are written', () => {
    const a = moverApprovalHash({ mover: { securityContext: { runAsUser: 1000, runAsGroup: 1000 } }, repository: nas });
    const b = moverApprovalHash({ repository: nas, mover: { securityContext: { runAsGroup: 1000, runAsUser: 1000 } } });
    expect(a).toBe(b);
    // A field removed by a merge patch (null) and one never written are the same mover.
    expect(moverApprovalHash({ mover: { securityContext: { runAsUser: null } } as never, repository: nas })).toBe(
      moverApprovalHash({ mover: { securityContext: {} }, repository: nas }),
    );
    expect(moverApprovalHash({ repository: nas })).toBe(moverApprovalHash({ mover: {}, repository: nas }));
  });

  it('changes with every setting the Job takes from a tenant, and with the repository', () => {
    const base = moverApprovalHash({ repository: nas });
    const others = [
      moverApprovalHash({ mover: { securityContext: { runAsUser: 0 } }, repository: nas }),
      moverApprovalHash({ mover: { securityContext: { fsGroup: 0 } }, repository: nas }),
      moverApprovalHash({ repository: { kind: 'ClusterRepository', name: 'nas' } }),
      moverApprovalHash({ repository: { kind: 'Repository', name: 'other' } }),
      moverApprovalHash({ repository: nas, filesystem: { path: '/', volume: { hostPath: { path: '/' } } } }),
    ];
    expect(new Set([base, ...others]).size).toBe(others.length + 1);
  });

  it('covers the volume of a namespaced Repository only: a ClusterRepository’s is its administrator’s', () => {
    const volume = { backend: { filesystem: { path: '/', volume: { nfs: { server: 'nas', path: '/x' } } } } };
    const ns = restoreMoverInputs(restore(), nas, { metadata: { name: 'nas', namespace: 'media' }, spec: volume } as never);
    expect(ns.filesystem?.volume.nfs).toBeDefined();
    const cluster = restoreMoverInputs(restore(), { kind: 'ClusterRepository', name: 'nas' }, {
      metadata: { name: 'nas' },
      spec: volume,
    } as never);
    expect(cluster.filesystem).toBeUndefined();
  });
});

describe('decideApproval', () => {
  const inputs = (r: RestoreObject) =>
    restoreMoverInputs(r, nas, { metadata: { name: 'nas', namespace: 'media' }, spec: { backend: {} } } as never);

  it('approves the default mover anywhere, with the hash of exactly its settings and the generation checked', () => {
    const r = restore();
    expect(decideApproval({ restore: r, inputs: inputs(r), namespaceAnnotations: {} })).toEqual({
      approval: { hash: moverApprovalHash(inputs(r)), generation: 3 },
    });
  });

  it('refuses root in a namespace not opted in, naming the setting, root’s capabilities and the way out', () => {
    const r = restore({ securityContext: { runAsUser: 0 } });
    const d = decideApproval({ restore: r, inputs: inputs(r), namespaceAnnotations: {} });
    expect(d).toMatchObject({ refused: { reason: 'PrivilegedMoverNotAllowed' } });
    const message = 'refused' in d ? d.refused.message : '';
    expect(message).toContain('spec.mover.securityContext.runAsUser: 0 (root)');
    expect(message).toContain('capability CHOWN');
    expect(message).toContain('kopia.io/privileged-movers');
  });

  it('approves root where the namespace opted in, and refuses again once the opt-in is withdrawn', () => {
    const r = restore({ securityContext: { runAsUser: 0 } });
    const optedIn = { 'kopia.io/privileged-movers': 'true' };
    expect(decideApproval({ restore: r, inputs: inputs(r), namespaceAnnotations: optedIn })).toHaveProperty('approval');
    expect(decideApproval({ restore: r, inputs: inputs(r), namespaceAnnotations: {} })).toHaveProperty('refused');
  });

  it('refuses when the repository the source names now is not allowed (or not known)', () => {
    const refusal = { reason: 'RepositoryNotAllowed', message: 'ClusterRepository shared does not allow namespace media' };
    expect(decideApproval({ restore: restore(), inputs: refusal, namespaceAnnotations: {} })).toEqual({ refused: refusal });
  });
});

describe('withApproval', () => {
  const refused = { refused: { reason: 'PrivilegedMoverNotAllowed', message: 'no root here' } };
  const approved = { approval: { hash: 'h', generation: 3 } };

  it('records an approval, and withdraws it on a refusal', () => {
    expect(withApproval({ phase: 'Pending' }, approved, true, 3, NOW).moverApproval).toEqual({ hash: 'h', generation: 3 });
    expect(withApproval({ moverApproval: { hash: 'h', generation: 2 } }, refused, false, 3, NOW).moverApproval).toBeUndefined();
  });

  it('a refusal is the Ready condition while a claim waits for its Job', () => {
    const s = withApproval({ phase: 'Pending' }, refused, true, 3, NOW);
    expect(s.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'False', reason: 'PrivilegedMoverNotAllowed', observedGeneration: 3 });
  });

  it('leaves the condition alone with no claim waiting, or while the populator’s running Job is in view', () => {
    expect(withApproval({ phase: 'Pending' }, refused, false, 3, NOW).conditions).toBeUndefined();
    expect(withApproval({ phase: 'Restoring' }, refused, true, 3, NOW).conditions).toBeUndefined();
  });
});
