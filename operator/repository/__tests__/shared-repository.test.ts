import type { KubeObject } from '../../kube/kube-client.js';
import { kopiaRepositoryOf, ledgerHolder } from '../shared-repository.js';

type Repo = KubeObject & { status?: { uniqueID?: string } };
const repo = (kind: string, name: string, creationTimestamp: string, uniqueID?: string, namespace?: string): Repo => ({
  apiVersion: 'kopia.io/v1alpha1',
  kind,
  metadata: { name, namespace, creationTimestamp, uid: `${kind}-${name}` },
  status: uniqueID ? { uniqueID } : {},
});

describe('objects reaching one kopia repository', () => {
  const admin = repo('ClusterRepository', 'shared', '2026-11-01T00:00:00Z', 'u1');
  const tenant = repo('Repository', 'nas', '2026-11-02T00:00:00Z', 'u1', 'media');
  const sameAge = repo('Repository', 'alias', '2026-11-01T00:00:00Z', 'u1', 'home');
  const other = repo('Repository', 'other', '2026-10-01T00:00:00Z', 'u2', 'media');
  const unverified = repo('Repository', 'new', '2026-10-01T00:00:00Z', undefined, 'media');
  const all = [tenant, other, unverified, sameAge, admin];

  it('share one ledger, on the oldest object with their uniqueID (a ClusterRepository first at the same age)', () => {
    expect(ledgerHolder(tenant, all)).toBe(admin);
    expect(ledgerHolder(sameAge, all)).toBe(admin);
    expect(ledgerHolder(admin, all)).toBe(admin);
    expect(ledgerHolder(other, all)).toBe(other);
  });

  it('a newer object cannot move the ledger; deleting the holder moves it to the next oldest', () => {
    const newer = repo('Repository', 'late', '2026-12-01T00:00:00Z', 'u1', 'media');
    expect(ledgerHolder(newer, [...all, newer])).toBe(admin);
    const leaving = { ...admin, metadata: { ...admin.metadata, deletionTimestamp: '2026-12-02T00:00:00Z' } };
    expect(ledgerHolder(tenant, [tenant, sameAge, leaving])).toBe(sameAge);
  });

  it('an object not verified yet stands alone', () => {
    expect(ledgerHolder(unverified, all)).toBe(unverified);
    expect(kopiaRepositoryOf(unverified)).toBe('Repository/media/new');
    expect(kopiaRepositoryOf(tenant)).toBe('uniqueID/u1');
  });
});
