import type { CatalogSnapshot } from '../../mover/mover-contract.js';
import { discoveredName, discoveredStatus, planMirror, type MirroredBackup, type MirrorInput } from '../catalog-plan.js';

const now = new Date('2026-11-27T12:00:00Z');
const uniqueID = 'ab'.repeat(32);
const snap = (id: string, o: Partial<CatalogSnapshot> = {}): CatalogSnapshot => ({
  id,
  source: { username: 'app', hostname: 'media', path: '/data' },
  startTime: '2026-11-27T10:00:00Z',
  endTime: '2026-11-27T10:00:05Z',
  rootID: `r${id}`,
  stats: { totalBytes: 10, files: 1, dirs: 1, errors: 0 },
  retentionReasons: ['latest-1'],
  ...o,
});
const input = (o: Partial<MirrorInput>): MirrorInput => ({
  repository: { kind: 'Repository', name: 'nas', namespace: 'media', uniqueID },
  snapshots: [],
  backups: [],
  namespaceOfIdentity: () => undefined,
  mayUseNamespace: () => true,
  listedAt: now,
  now,
  ...o,
});
const mirrored = (s: CatalogSnapshot, o: Partial<MirroredBackup> = {}): MirroredBackup => ({
  metadata: {
    name: discoveredName(s),
    namespace: 'media',
    labels: { 'kopia.io/snapshot-id': s.id, 'kopia.io/repository-id': uniqueID.slice(0, 32) },
  },
  spec: { snapshot: { id: s.id } },
  status: discoveredStatus(s, { kind: 'Repository', name: 'nas' }, now),
  ...o,
});

describe('the catalog mirror', () => {
  it('creates a Discovered Backup per complete snapshot, in the namespace of the config that makes its identity', () => {
    const plan = planMirror(
      input({
        snapshots: [
          snap('k1'),
          snap('k2', { incompleteReason: 'checkpoint' }),
          snap('k3', { source: { username: 'other', hostname: 'x', path: '/' } }),
        ],
        namespaceOfIdentity: (id) => (id.username === 'app' ? 'apps' : undefined),
      }),
    );
    expect(plan.create.map((b) => [b.metadata.namespace, b.metadata.labels!['kopia.io/snapshot-id']])).toEqual([
      ['apps', 'k1'],
      ['media', 'k3'], // no config: the repository's namespace
    ]);
    expect(plan.incomplete).toBe(1);
    expect(plan.create[0].spec.snapshot).toMatchObject({ id: 'k1', repository: { kind: 'Repository', name: 'nas' } });
    expect(plan.create[0].status).toMatchObject({
      phase: 'Succeeded',
      origin: 'Discovered',
      completionTime: '2026-11-27T10:00:05Z',
      retentionReasons: ['latest-1'],
    });
  });

  it('changes nothing when nothing changed (zero writes on re-sync)', () => {
    const s = [snap('k1'), snap('k2')];
    expect(planMirror(input({ snapshots: s, backups: s.map((x) => mirrored(x)) }))).toEqual({
      create: [],
      update: [],
      remove: [],
      unassigned: 0,
      incomplete: 0,
    });
  });

  it('updates retention reasons and pins as kopia reports them', () => {
    const s = snap('k1');
    const plan = planMirror(
      input({ snapshots: [{ ...s, retentionReasons: ['latest-2'], pins: ['kopia-operator'] }], backups: [mirrored(s)] }),
    );
    expect(plan.update).toHaveLength(1);
    expect(plan.update[0].status).toMatchObject({ retentionReasons: ['latest-2'], pinned: true });
  });

  it('removes objects whose snapshot kopia no longer keeps — only if they finished before the listing began', () => {
    const gone = mirrored(snap('k1'));
    const justMade = mirrored(snap('k2'), { status: { phase: 'Succeeded', completionTime: '2026-11-27T12:00:01Z' } });
    const running = mirrored(snap('k3'), { status: { phase: 'Running' } });
    const plan = planMirror(input({ snapshots: [], backups: [gone, justMade, running] }));
    expect(plan.remove).toEqual([{ namespace: 'media', name: gone.metadata.name }]);
  });

  it('puts a ClusterRepository snapshot without a config into the namespace its hostname names, if allowed', () => {
    const repository = { kind: 'ClusterRepository' as const, name: 'shared', uniqueID };
    const plan = planMirror(
      input({
        repository,
        snapshots: [snap('k1'), snap('k2', { source: { username: 'app', hostname: 'secret-ns', path: '/data' } })],
        mayUseNamespace: (ns) => ns === 'media',
      }),
    );
    expect(plan.create.map((b) => b.metadata.namespace)).toEqual(['media']);
    expect(plan.unassigned).toBe(1);
  });

  it('names discovered objects validly and stably', () => {
    expect(
      discoveredName(snap('f3a9c2d1e0b4a5c6d7e8f9a0b1c2d3e4', { source: { username: 'Jelly_Fin', hostname: 'Media.Home', path: '/' } })),
    ).toBe('jelly-fin-media-home-f3a9c2d1e0b4');
  });

  it('mirrors 10,000 snapshots completely, each under its own name', () => {
    const many = Array.from({ length: 10_000 }, (_, i) =>
      snap(`k${i.toString(16).padStart(8, '0')}`, { source: { username: `app${i % 500}`, hostname: 'media', path: '/data' } }),
    );
    const plan = planMirror(input({ snapshots: many }));
    expect(plan.create).toHaveLength(10_000);
    expect(new Set(plan.create.map((b) => b.metadata.name)).size).toBe(10_000);
  });
});
