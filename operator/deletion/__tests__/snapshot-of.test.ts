import { repositoryKeyOf, snapshotOf } from '../snapshot-deletion-operator.js';

type B = Parameters<typeof snapshotOf>[0];
const backup = (o: Partial<B>): B =>
  ({ apiVersion: 'kopia.io/v1alpha1', kind: 'Backup', metadata: { name: 'b', namespace: 'tenant' }, spec: {}, ...o }) as B;

describe('the snapshot a Backup stands for', () => {
  it('is what the operator recorded in status: spec.snapshot is a tenant claim and names nothing to delete', () => {
    const claim = { snapshot: { repository: { kind: 'ClusterRepository' as const, name: 'shared' }, id: 'kvictim' } };
    const adopted = backup({ spec: claim as never });
    expect(snapshotOf(adopted)).toBeUndefined();
    expect(repositoryKeyOf(adopted)).toBeUndefined();
    const recorded = backup({
      spec: claim as never,
      status: { snapshot: { id: 'kmine' }, repository: { kind: 'ClusterRepository', name: 'shared' } },
    });
    expect(snapshotOf(recorded)).toBe('kmine');
    expect(repositoryKeyOf(recorded)).toBe('ClusterRepository/shared');
  });
});
