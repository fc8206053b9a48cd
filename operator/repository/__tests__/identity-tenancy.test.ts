import type { ClusterRepositorySpec } from '../../../generated/types.js';
import {
  contestedHostnames,
  hostnameOwner,
  hostnamesOf,
  identityVerdict,
  snapshotVerdict,
  type TenancyRepository,
} from '../identity-tenancy.js';

const spec = (o: Partial<ClusterRepositorySpec> = {}): ClusterRepositorySpec => ({
  backend: { filesystem: { path: '/', volume: { nfs: { server: 'nas', path: '/k' } } } } as never,
  passwordSecretRef: { name: 'repo', namespace: 'kopia-system', key: 'KOPIA_PASSWORD' },
  allowedNamespaces: { names: ['media', 'home'] },
  ...o,
});
const shared = (o: Partial<ClusterRepositorySpec> = {}): TenancyRepository => ({
  kind: 'ClusterRepository',
  name: 'shared',
  spec: spec(o),
});
const id = (hostname: string) => ({ username: 'app', hostname, path: '/data' });

describe('whose an identity is on a shared repository (rule 1)', () => {
  it.each([
    { given: { ns: 'media', hostname: 'media' }, expect: true },
    { given: { ns: 'media', hostname: 'home' }, expect: false }, // another tenant's: its retention would expire their history
    { given: { ns: 'media', hostname: 'Media' }, expect: false }, // kopia hostnames are case-sensitive: not media's
    { given: { ns: 'media', hostname: 'laptop' }, expect: false }, // nobody's until the ClusterRepository gives it away
  ])('ClusterRepository: $given.ns using hostname $given.hostname → $expect', ({ given, expect: ok }) => {
    expect(identityVerdict(shared(), given.ns, id(given.hostname)).ok).toBe(ok);
  });

  it('refuses with IdentityNotAllowed and says which hostnames the namespace may use', () => {
    const verdict = identityVerdict(shared({ identityHostnames: [{ namespace: 'media', hostname: 'nas-old' }] }), 'media', id('home'));
    expect(verdict).toEqual({
      ok: false,
      reason: 'IdentityNotAllowed',
      message:
        "the identity's hostname home does not belong to namespace media: on ClusterRepository shared it may use hostname media or nas-old (spec.identityHostnames gives hostnames to namespaces)",
    });
  });

  it('gives a mapped hostname to its namespace only — a namespace name mapped away is no longer that namespace’s', () => {
    const repo = shared({
      identityHostnames: [
        { namespace: 'media', hostname: 'laptop' },
        { namespace: 'home', hostname: 'attic' },
      ],
    });
    expect(identityVerdict(repo, 'media', id('laptop')).ok).toBe(true);
    expect(identityVerdict(repo, 'home', id('laptop')).ok).toBe(false);
    const away = { identityHostnames: [{ namespace: 'media', hostname: 'home' }] };
    expect(hostnameOwner(away, 'home')).toBe('media');
    expect(hostnamesOf(away, 'home')).toEqual([]);
    expect(identityVerdict(shared(away), 'home', id('home'))).toMatchObject({ ok: false, reason: 'IdentityNotAllowed' });
  });

  it('refuses an unknown identity (nothing recorded) on a ClusterRepository', () => {
    expect(identityVerdict(shared(), 'media', undefined)).toMatchObject({ ok: false, reason: 'IdentityNotAllowed' });
  });

  it("a namespaced Repository is its namespace's own: every identity in it is", () => {
    const repo: TenancyRepository = { kind: 'Repository', name: 'nas', spec: spec() as never };
    expect(identityVerdict(repo, 'media', id('home')).ok).toBe(true);
    expect(snapshotVerdict(repo, 'media', {}, id('anything')).ok).toBe(true);
  });
});

describe('who may act on a snapshot (rule 2)', () => {
  it('only a namespace the ClusterRepository allows now, and only on its own identity', () => {
    expect(snapshotVerdict(shared(), 'media', {}, id('media')).ok).toBe(true);
    expect(snapshotVerdict(shared(), 'media', {}, id('home'))).toMatchObject({ ok: false, reason: 'IdentityNotAllowed' });
    // Not allowed (any more): refused whatever the identity, even its own hostname.
    expect(snapshotVerdict(shared(), 'outsider', {}, id('outsider'))).toMatchObject({ ok: false, reason: 'RepositoryNotAllowed' });
    const bySelector = shared({ allowedNamespaces: { selector: { matchLabels: { backups: 'shared' } } } });
    expect(snapshotVerdict(bySelector, 'media', { backups: 'shared' }, id('media')).ok).toBe(true);
    expect(snapshotVerdict(bySelector, 'media', {}, id('media')).ok).toBe(false);
  });
});

describe('contested hostnames: history recorded before identities were tied to namespaces', () => {
  const recorded = (namespace: string, hostname: string, repository = 'shared') => ({
    metadata: { namespace },
    status: { repository: { kind: 'ClusterRepository', name: repository }, snapshot: { identity: { hostname } } },
  });

  it("a hostname recorded by another namespace's Backups is contested; one recorded by its namesake, or given by an entry, is not", () => {
    const backups = [
      recorded('app', 'prod'), // app's BackupConfig used hostname prod before this version
      recorded('app2', 'prod'),
      recorded('prod', 'prod'),
      recorded('media', 'media'),
      recorded('home', 'laptop'),
      recorded('app', 'prod', 'other-repository'),
      { metadata: { namespace: 'app' }, spec: { snapshot: { id: 'k1' } } }, // no status: a tenant's claim, not evidence
    ];
    expect(contestedHostnames(spec(), 'shared', backups)).toEqual([
      { hostname: 'laptop', recordedIn: ['home'] },
      { hostname: 'prod', recordedIn: ['app', 'app2', 'prod'] },
    ]);
    expect(contestedHostnames(spec({ identityHostnames: [{ namespace: 'app', hostname: 'prod' }] }), 'shared', backups)).toEqual([
      { hostname: 'laptop', recordedIn: ['home'] },
    ]);
  });

  it("a contested hostname is no one's, not even its namesake's, until identityHostnames decides", () => {
    const repo: TenancyRepository = { ...shared(), status: { contestedHostnames: [{ hostname: 'media', recordedIn: ['app'] }] } };
    const verdict = identityVerdict(repo, 'media', id('media'));
    expect(verdict).toMatchObject({
      ok: false,
      reason: 'IdentityNotAllowed',
      message: expect.stringContaining('hostname media is contested'),
    });
    expect(identityVerdict(repo, 'app', id('media')).ok).toBe(false);
    expect(hostnameOwner(spec(), 'media', repo.status!.contestedHostnames)).toBeUndefined();
    expect(hostnamesOf(spec(), 'media', repo.status!.contestedHostnames)).toEqual([]);
    const decided: TenancyRepository = { ...repo, spec: spec({ identityHostnames: [{ namespace: 'app', hostname: 'media' }] }) };
    expect(identityVerdict(decided, 'app', id('media')).ok).toBe(true);
  });
});
