import type { CatalogSnapshot } from '../../mover/mover-contract.js';
import type { KubeObject } from '../../kube/kube-client.js';
import {
  backupJustSucceeded,
  catalogSyncSeconds,
  discoveredBackup,
  discoveredName,
  discoveredStatus,
  goneStatus,
  LISTING_STARTED_ANNOTATION,
  mirrorCandidate,
  nextListingAfterMs,
  planMirror,
  sameSnapshot,
  type MirroredBackup,
  type MirrorInput,
  type MirrorPlan,
} from '../catalog-plan.js';
import { kstatusOf, kstatusRuleBreaks } from '../../test-support/kstatus.js';
import { wantsSnapshotFinalizer } from '../../deletion/snapshot-finalizer.js';

const now = new Date('2026-11-27T12:00:00Z');
/** Listings in these tests start after the fixtures were mirrored (at now), unless a test says otherwise. */
const later = new Date('2026-11-27T12:05:00Z');
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
  ownerOf: () => 'media',
  refusal: () => undefined,
  listingStartedAt: later,
  absentBefore: new Set(),
  now,
  ...o,
});
/** The objects a plan makes, as the operator builds them. */
const made = (plan: MirrorPlan, repository: MirrorInput['repository'] = input({}).repository) =>
  plan.create.map((c) => discoveredBackup(c, repository, now));
/** Plans consecutive listings, each one's absences carried into the next, as the operator does. */
function listings(inputs: Partial<MirrorInput>[]): MirrorPlan[] {
  const plans: MirrorPlan[] = [];
  let absentBefore: ReadonlySet<string> = new Set();
  for (const i of inputs) {
    const plan = planMirror(input({ absentBefore, ...i }));
    absentBefore = new Set(plan.absent);
    plans.push(plan);
  }
  return plans;
}
const mirrored = (s: CatalogSnapshot, o: Partial<MirroredBackup> = {}): MirroredBackup => ({
  metadata: {
    name: discoveredName(s),
    uid: `uid-${s.id}`,
    resourceVersion: '7',
    namespace: 'media',
    labels: { 'kopia.io/snapshot-id': s.id, 'kopia.io/repository-id': uniqueID.slice(0, 32) },
  },
  spec: { snapshot: { id: s.id, repository: { kind: 'Repository', name: 'nas' } } },
  status: discoveredStatus(s, { kind: 'Repository', name: 'nas' }, now),
  ...o,
});
/** What the operator records of a snapshot it took: the repository object, the id and the identity. */
const recorded = (id: string) => ({
  origin: 'Manual' as const,
  repository: { kind: 'Repository' as const, name: 'nas' },
  snapshot: { id, identity: { username: 'app', hostname: 'media', path: '/data' } },
});

describe('the catalog mirror', () => {
  it('creates a Discovered Backup per complete snapshot, in the namespace owning its identity', () => {
    const plan = planMirror(
      input({
        snapshots: [
          snap('k1'),
          snap('k2', { incompleteReason: 'checkpoint' }),
          snap('k3', { source: { username: 'other', hostname: 'x', path: '/' } }),
        ],
        ownerOf: (id) => (id.username === 'app' ? 'apps' : 'media'),
      }),
    );
    expect(made(plan).map((b) => [b.metadata.namespace, b.metadata.labels!['kopia.io/snapshot-id']])).toEqual([
      ['apps', 'k1'],
      ['media', 'k3'],
    ]);
    expect(plan.incomplete).toBe(1);
    expect(made(plan)[0].spec.snapshot).toMatchObject({ id: 'k1', repository: { kind: 'Repository', name: 'nas' } });
    expect(made(plan)[0].status).toMatchObject({
      phase: 'Succeeded',
      origin: 'Discovered',
      completionTime: '2026-11-27T10:00:05Z',
      retentionReasons: ['latest-1'],
    });
    // A mirrored Backup is finished when made: kstatus Current, by the same rule as a run one.
    expect(kstatusOf(made(plan)[0])).toEqual({ status: 'Current' });
    expect(kstatusRuleBreaks({ metadata: { generation: 1 }, status: made(plan)[0].status })).toEqual([]);
  });

  it('changes nothing when nothing changed (zero writes on re-sync)', () => {
    const s = [snap('k1'), snap('k2')];
    expect(planMirror(input({ snapshots: s, backups: s.map((x) => mirrored(x)) }))).toEqual({
      create: [],
      update: [],
      remove: [],
      absent: [],
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

  it("corrects a recorded identity that is not the listed snapshot's: later checks (deletion, pins) judge whose it really is", () => {
    const s = snap('k1', { source: { username: 'app', hostname: 'home', path: '/data' } });
    // A status naming this namespace's identity with another's snapshot id (a forged mover answer).
    const forged = mirrored(s, { status: { ...discoveredStatus(s, { kind: 'Repository', name: 'nas' }, now), ...recorded('k1') } });
    const plan = planMirror(input({ snapshots: [s], backups: [forged] }));
    expect(plan.update).toHaveLength(1);
    expect(plan.update[0].status.snapshot?.identity).toEqual({ username: 'app', hostname: 'home', path: '/data' });
  });

  it('removes an object only when two consecutive listings, both started after it completed, lack its snapshot', () => {
    const gone = mirrored(snap('k1'));
    const [first, second] = listings([{ backups: [gone] }, { backups: [gone], listingStartedAt: new Date('2026-11-27T12:06:00Z') }]);
    expect(first.remove).toEqual([]);
    expect(first.absent).toEqual(['uid-k1']);
    expect(second.remove).toEqual([
      {
        namespace: 'media',
        name: gone.metadata.name,
        uid: 'uid-k1',
        resourceVersion: '7',
        goneStatus: goneStatus(gone, now),
      },
    ]);
    // What is written first: everything it recorded kept, Ready False SnapshotGone — Stalled, and the Backup
    // operator no longer wants the snapshot finalizer on it.
    const written = second.remove[0].goneStatus!;
    expect({ ...written, conditions: undefined }).toEqual({ ...gone.status, conditions: undefined });
    expect(written.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'SnapshotGone' });
    expect(written.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(/no longer keeps snapshot k1.*nothing is deleted/);
    expect(kstatusOf({ metadata: { generation: 1 }, status: written })).toEqual({ status: 'Failed', reason: 'SnapshotGone' });
  });

  it('finishes the removal of an object an earlier listing judged gone (SnapshotGone) at the next listing lacking it', () => {
    const judged = mirrored(snap('k1'));
    const marked = { ...judged, status: goneStatus(judged, now) };
    const [plan] = listings([{ backups: [marked] }]);
    expect(plan.remove).toEqual([
      { namespace: 'media', name: judged.metadata.name, uid: 'uid-k1', resourceVersion: '7', goneStatus: undefined },
    ]);
  });

  it('makes an object judged gone Ready again if a listing shows its snapshot after all (its removal never finished)', () => {
    const judged = mirrored(snap('k1'));
    const marked = { ...judged, status: goneStatus(judged, now) };
    const plan = planMirror(input({ snapshots: [snap('k1')], backups: [marked] }));
    expect(plan.remove).toEqual([]);
    expect(plan.update).toHaveLength(1);
    expect(plan.update[0].status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'SnapshotMirrored',
    });
    expect(kstatusOf({ metadata: { generation: 1 }, status: plan.update[0].status })).toEqual({ status: 'Current' });
  });

  it('starts over when the snapshot is listed again between two absences', () => {
    const flaky = mirrored(snap('k1'));
    const plans = listings([{ backups: [flaky] }, { backups: [flaky], snapshots: [snap('k1')] }, { backups: [flaky] }]);
    expect(plans.map((p) => p.remove)).toEqual([[], [], []]);
  });

  it('never judges by a listing that started before the Backup completed, on the same clock', () => {
    // Completed a second after the listing was asked for: the listing may well predate its snapshot.
    const justMade = mirrored(snap('k2'), { status: { ...recorded('k2'), phase: 'Succeeded', completionTime: '2026-11-27T12:00:01Z' } });
    const running = mirrored(snap('k3'), { status: { ...recorded('k3'), phase: 'Running' } });
    const noTime = mirrored(snap('k4'), { status: { ...recorded('k4'), phase: 'Succeeded' } });
    const plans = listings([
      { backups: [justMade, running, noTime], listingStartedAt: now },
      { backups: [justMade, running, noTime], listingStartedAt: now },
    ]);
    expect(plans.map((p) => [p.remove, p.absent])).toEqual([
      [[], []],
      [[], []],
    ]);
    // Two listings started after it completed, both without it: now it is gone.
    const later = listings([
      { backups: [justMade], listingStartedAt: new Date('2026-11-27T12:00:02Z') },
      { backups: [justMade], listingStartedAt: new Date('2026-11-27T12:00:03Z') },
    ]);
    expect(later[1].remove.map((r) => r.name)).toEqual([justMade.metadata.name]);
  });

  it('counts a completion time recorded to the second as the end of that second', () => {
    // completionTime 12:00:00Z may have been 12:00:00.900: a listing asked for at 12:00:00.500 may predate it.
    const b = mirrored(snap('k1'), { status: { ...recorded('k1'), phase: 'Succeeded', completionTime: '2026-11-27T12:00:00Z' } });
    const plans = listings([
      { backups: [b], listingStartedAt: new Date('2026-11-27T12:00:00.500Z') },
      { backups: [b], listingStartedAt: new Date('2026-11-27T12:00:00.999Z') },
    ]);
    expect(plans.map((p) => p.absent)).toEqual([[], []]);
    expect(listings([{ backups: [b], listingStartedAt: new Date('2026-11-27T12:00:01Z') }])[0].absent).toEqual(['uid-k1']);
  });

  it("judges a mirrored object by when the mirror recorded it (the operator's clock), not by kopia's completion time", () => {
    // kopia's clock (completionTime 10:00:05) is another machine's; the mirror recorded it at 12:00 on the operator's.
    const found = mirrored(snap('k1'));
    const plans = listings([
      { backups: [found], listingStartedAt: new Date('2026-11-27T11:00:00Z') },
      { backups: [found], listingStartedAt: new Date('2026-11-27T11:59:59Z') },
    ]);
    expect(plans.map((p) => [p.absent, p.remove])).toEqual([
      [[], []],
      [[], []],
    ]);
  });

  it('removes an object holding the snapshot finalizer as any other: SnapshotGone first, so the finalizer is no longer wanted', () => {
    const doomed = mirrored(snap('k1'), {
      metadata: { ...mirrored(snap('k1')).metadata, finalizers: ['example.com/keep', 'kopia.io/snapshot-deletion'] },
      spec: { snapshot: { id: 'k1' }, deletionPolicy: 'Delete' },
    });
    const [, second] = listings([{ backups: [doomed] }, { backups: [doomed] }]);
    expect(second.remove.map((r) => r.uid)).toEqual(['uid-k1']);
    // The Backup operator reads the written status: it drops the finalizer instead of putting it back, and the
    // deletion operator starts nothing, so the removal never becomes a snapshot deletion.
    expect(wantsSnapshotFinalizer({ ...doomed, status: second.remove[0].goneStatus })).toBe(false);
    expect(wantsSnapshotFinalizer(doomed)).toBe(true);
  });

  it('keeps an object another repository recorded (its repository-id label): this listing says nothing of its snapshot', () => {
    // A repository object re-pointed at another bucket, or re-made under the same name: its listings lack all
    // the old snapshots, which still exist where they were taken.
    const elsewhere = mirrored(snap('k1'), {
      metadata: { ...mirrored(snap('k1')).metadata, labels: { 'kopia.io/repository-id': 'cd'.repeat(16) } },
    });
    const unlabelled = mirrored(snap('k2'), { metadata: { ...mirrored(snap('k2')).metadata, labels: {} } });
    const plans = listings([{ backups: [elsewhere, unlabelled] }, { backups: [elsewhere, unlabelled] }]);
    expect(plans[1].remove.map((r) => r.uid)).toEqual(['uid-k2']);
  });

  it('moves every object of a snapshot kopia saved under a new id, even one shown already under the new id', () => {
    // The operator's Backup (Delete) and an adoption of the same snapshot; a plain kopia client pins it (new id k9).
    const s = snap('k1');
    const own = mirrored(s, {
      metadata: { ...mirrored(s).metadata, name: 'nightly-1', uid: 'uid-own', finalizers: ['kopia.io/snapshot-deletion'] },
      spec: { deletionPolicy: 'Delete' },
      status: { ...discoveredStatus(s, { kind: 'Repository', name: 'nas' }, now), ...recorded('k1'), phase: 'Succeeded' },
    });
    own.status!.snapshot = { ...discoveredStatus(s, { kind: 'Repository', name: 'nas' }, now).snapshot, ...recorded('k1').snapshot };
    const adopted = mirrored(s, { metadata: { ...mirrored(s).metadata, name: 'pinned-for-dr', uid: 'uid-adopted' } });
    const repinned = { ...s, id: 'k9', pins: ['legal-hold'] };
    const [first] = listings([{ snapshots: [repinned], backups: [own, adopted] }]);
    expect(first.update.map((u) => [u.name, u.snapshotID])).toEqual([
      ['nightly-1', 'k9'],
      ['pinned-for-dr', 'k9'],
    ]);
    expect(first.absent).toEqual([]);
    // Had only the adoption moved (as before), the operator's Backup would be judged gone with its snapshot alive.
    const adoptedMoved = { ...adopted, status: first.update[1].status };
    const [l2, l3] = listings([
      { snapshots: [repinned], backups: [own, adoptedMoved] },
      { snapshots: [repinned], backups: [own, adoptedMoved] },
    ]);
    expect([l2.absent, l3.remove]).toEqual([[], []]);
    expect(l2.update.map((u) => [u.name, u.snapshotID])).toEqual([['nightly-1', 'k9']]);
  });

  it('makes an object judged gone Ready again when its snapshot is listed, even if another namespace owns the identity now', () => {
    const judged = mirrored(snap('k1'));
    const marked = { ...judged, status: goneStatus(judged, now) };
    const plan = planMirror(input({ snapshots: [snap('k1')], backups: [marked], ownerOf: () => 'other' }));
    expect(plan.remove).toEqual([]);
    expect(plan.update.map((u) => [u.name, u.status.conditions?.find((c) => c.type === 'Ready')?.reason])).toEqual([
      [judged.metadata.name, 'SnapshotMirrored'],
    ]);
  });

  it('follows a snapshot kopia saved under a new id (a pin change): same object, new id in label and status', () => {
    const before = snap('k1');
    const repinned = { ...before, id: 'k9', pins: ['kopia-operator'] };
    const backup = mirrored(before);
    const [first, second] = listings([
      { snapshots: [repinned, snap('k2', { rootID: 'rk1' })], backups: [backup] },
      { snapshots: [repinned], backups: [backup] },
    ]);
    // k2 has the same content (rootID) but another start: a snapshot of its own, not k1 again.
    expect(made(first).map((b) => b.metadata.labels!['kopia.io/snapshot-id'])).toEqual(['k2']);
    expect(first.update).toEqual([
      {
        namespace: 'media',
        name: backup.metadata.name,
        snapshotID: 'k9',
        status: expect.objectContaining({ snapshot: expect.objectContaining({ id: 'k9', rootID: 'rk1' }), pinned: true }),
      },
    ]);
    expect([first.remove, first.absent, second.remove]).toEqual([[], [], []]);
  });

  it('records when kopia started each snapshot, so a re-saved one can be found again', () => {
    const s = snap('k1', { startTime: '2026-11-27T10:00:00.123456789Z' });
    const made = mirrored(s, {
      status: { phase: 'Succeeded', origin: 'Manual', snapshot: { id: 'k1', rootID: 'rk1', identity: s.source } },
    });
    const [plan] = listings([{ snapshots: [s], backups: [made] }]);
    expect(plan.update[0].status.snapshot).toEqual({
      id: 'k1',
      rootID: 'rk1',
      identity: s.source,
      startTime: '2026-11-27T10:00:00.123456789Z',
    });
  });

  it('sameSnapshot: the same source, start and root are the same snapshot, whatever its id', () => {
    const a = snap('k1');
    expect(sameSnapshot(a, snap('k2', { rootID: a.rootID }))).toBe(true);
    expect(sameSnapshot(a, { ...a, startTime: '2026-11-27T10:00:01Z' })).toBe(false);
    expect(sameSnapshot(a, { ...a, rootID: 'other' })).toBe(false);
    expect(sameSnapshot(a, { ...a, source: { ...a.source, path: '/other' } })).toBe(false);
    expect(sameSnapshot(a, { ...a, rootID: undefined })).toBe(false); // unknown is never the same
  });

  it('repairs a Discovered Backup whose status write failed after create: the full status, on the next sync', () => {
    const s = snap('k1');
    const bare = mirrored(s, { spec: { snapshot: { id: 'k1' }, deletionPolicy: 'Retain' }, status: undefined });
    const halfway = mirrored(snap('k2'), { spec: { snapshot: { id: 'k2' } }, status: { stats: { files: 1 } } });
    const [plan] = listings([{ snapshots: [s, snap('k2')], backups: [bare, halfway] }]);
    expect(plan.update).toEqual([
      { namespace: 'media', name: bare.metadata.name, status: discoveredStatus(s, { kind: 'Repository', name: 'nas' }, now) },
      { namespace: 'media', name: halfway.metadata.name, status: discoveredStatus(snap('k2'), { kind: 'Repository', name: 'nas' }, now) },
    ]);
    expect(plan.create).toEqual([]);
  });

  it('leaves a Backup the operator is taking to the Backup operator, even before it has a phase', () => {
    const s = snap('k1');
    const taking = mirrored(s, {
      spec: { configRef: { name: 'app' } },
      status: {
        repository: { kind: 'Repository', name: 'nas' },
        snapshot: { id: 'k1', identity: { username: 'app', hostname: 'media', path: '/data' } },
      },
    });
    const [plan] = listings([{ snapshots: [s], backups: [taking] }]);
    expect(plan.update.map((u) => [u.status.phase, u.status.origin])).toEqual([[undefined, undefined]]);
  });

  it('puts a ClusterRepository snapshot into the namespace owning its identity, and leaves one owned by none unassigned', () => {
    const repository = { kind: 'ClusterRepository' as const, name: 'shared', uniqueID };
    const plan = planMirror(
      input({
        repository,
        snapshots: [snap('k1'), snap('k2', { source: { username: 'app', hostname: 'secret-ns', path: '/data' } })],
        ownerOf: (id) => (id.hostname === 'media' ? 'media' : undefined),
      }),
    );
    expect(plan.create.map((c) => c.namespace)).toEqual(['media']);
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
    expect(new Set(made(plan).map((b) => b.metadata.name)).size).toBe(10_000);
  });

  it('lists a repository again after a backup succeeds — not at a resync or a restart that merely sees a succeeded one', () => {
    const taken = (phase: 'Running' | 'Succeeded'): MirroredBackup => ({
      metadata: { name: 'b', namespace: 'media' },
      spec: { configRef: { name: 'app' } },
      status: { phase },
    });
    expect(backupJustSucceeded('MODIFIED', taken('Succeeded'), taken('Running'))).toBe(true);
    expect(backupJustSucceeded('MODIFIED', taken('Succeeded'), taken('Succeeded'))).toBe(false);
    expect(backupJustSucceeded('RESYNC', taken('Succeeded'))).toBe(false);
    expect(backupJustSucceeded('ADDED', taken('Succeeded'))).toBe(false);
    expect(backupJustSucceeded('DELETED', taken('Succeeded'))).toBe(false);
    expect(backupJustSucceeded('MODIFIED', mirrored(snap('k1')), taken('Running'))).toBe(false);
  });
});

describe('the catalog mirror on a shared repository (issue 14: tenants act only on their own identities)', () => {
  const shared = { kind: 'ClusterRepository' as const, name: 'shared', uniqueID };
  const sharedRef = { kind: 'ClusterRepository' as const, name: 'shared' };
  /** "media" owns hostname media; "attacker" is allowed but owns nothing here; "outsider" is not allowed. */
  const tenancy: Partial<MirrorInput> = {
    repository: shared,
    ownerOf: (id) => (id.hostname === 'media' ? 'media' : undefined),
    refusal: (ns, id) =>
      ns === 'outsider'
        ? { reason: 'RepositoryNotAllowed', message: 'not allowed' }
        : id.hostname === ns
          ? undefined
          : { reason: 'IdentityNotAllowed', message: `hostname ${id.hostname} is not ${ns}'s` },
  };
  const victim = (s: CatalogSnapshot) =>
    mirrored(s, { status: discoveredStatus(s, sharedRef, now), spec: { snapshot: { id: s.id, repository: sharedRef } } });
  /** A tenant's Backup adopting snapshot id, with the mirror's labels forged. */
  const forged = (namespace: string, id: string): MirroredBackup => ({
    metadata: {
      name: 'shadow',
      namespace,
      uid: `uid-shadow-${namespace}`,
      resourceVersion: '1',
      labels: { 'kopia.io/snapshot-id': id, 'kopia.io/repository-id': uniqueID.slice(0, 32) },
    },
    spec: { snapshot: { id, repository: sharedRef }, deletionPolicy: 'Delete' },
  });

  it("refuses a tenant's adoption of another namespace's snapshot, forged labels and all: the victim's object is untouched", () => {
    const s = snap('k1');
    for (const [namespace, reason] of [
      ['attacker', 'IdentityNotAllowed'],
      ['outsider', 'RepositoryNotAllowed'],
    ]) {
      const [plan] = listings([{ ...tenancy, snapshots: [s], backups: [victim(s), forged(namespace, 'k1')] }]);
      expect(plan.update).toHaveLength(1);
      expect(plan.update[0]).toMatchObject({ namespace, name: 'shadow', refused: { reason } });
      expect(plan.update[0].status).toMatchObject({
        phase: 'Failed',
        conditions: [
          { type: 'Ready', status: 'False', reason },
          { type: 'Reconciling', status: 'False', reason },
          { type: 'Stalled', status: 'True', reason },
        ],
      });
      expect(kstatusOf({ metadata: { generation: 1 }, status: plan.update[0].status })).toEqual({ status: 'Failed', reason });
      expect(plan.update[0].status.snapshot).toBeUndefined();
      expect(plan.update[0].status.repository).toBeUndefined();
      expect(plan.create).toEqual([]);
    }
  });

  it('adopts a snapshot in the namespace owning its identity, and makes no second object for it', () => {
    const s = snap('k1');
    const [plan] = listings([{ ...tenancy, snapshots: [s], backups: [forged('media', 'k1')] }]);
    expect(plan.update).toEqual([{ namespace: 'media', name: 'shadow', status: discoveredStatus(s, sharedRef, now) }]);
    expect(plan.create).toEqual([]);
  });

  it('neither updates nor removes a Backup whose namespace does not own the identity its status names', () => {
    const s = snap('k1', { retentionReasons: ['latest-2'] });
    const stray = mirrored(snap('k1'), { metadata: { ...victim(s).metadata, namespace: 'attacker', uid: 'uid-stray' } });
    const gone = mirrored(snap('k9'), { metadata: { ...victim(snap('k9')).metadata, namespace: 'attacker', uid: 'uid-gone' } });
    const plans = listings([
      { ...tenancy, snapshots: [s], backups: [stray, gone] },
      { ...tenancy, snapshots: [s], backups: [stray, gone], listingStartedAt: new Date('2026-11-27T12:06:00Z') },
    ]);
    for (const plan of plans) {
      expect(plan.update).toEqual([]);
      expect(plan.remove).toEqual([]);
      expect(plan.absent).toEqual([]);
    }
    // The snapshot itself still gets its object where it belongs.
    expect(plans[0].create.map((c) => c.namespace)).toEqual(['media']);
  });

  it('makes no object for a snapshot another repository object (same uniqueID) shows in that namespace', () => {
    const plan = planMirror(input({ ...tenancy, snapshots: [snap('k1'), snap('k2')], shownElsewhere: new Set(['media/k1']) }));
    expect(plan.create.map((c) => c.snapshot.id)).toEqual(['k2']);
  });

  it("mirrorCandidate: a Backup is an object's by the status the operator wrote, or while unfinished by its spec; never by labels", () => {
    const nas = { kind: 'Repository', name: 'nas', namespace: 'media' };
    const s = snap('k1');
    expect(mirrorCandidate(mirrored(s), nas)).toBe(true);
    expect(mirrorCandidate(mirrored(s), { ...nas, namespace: 'other' })).toBe(false);
    expect(mirrorCandidate(mirrored(s), { kind: 'ClusterRepository', name: 'nas' })).toBe(false);
    // Labels alone: nothing.
    expect(mirrorCandidate({ ...mirrored(s), spec: {}, status: undefined }, nas)).toBe(false);
    // Unfinished: its spec names the object.
    expect(mirrorCandidate(forged('anywhere', 'k1'), { kind: 'ClusterRepository', name: 'shared' })).toBe(true);
    // Finished (refused or mirrored): the status decides, whatever the spec says.
    const refusedOne = { ...forged('anywhere', 'k1'), status: { phase: 'Failed' as const, origin: 'Discovered' as const } };
    expect(mirrorCandidate(refusedOne, { kind: 'ClusterRepository', name: 'shared' })).toBe(false);
  });
});

describe('how long a catalog sync took (kopia_catalog_sync_duration_seconds)', () => {
  const job = (annotations: Record<string, string> = {}, creationTimestamp = '2026-11-27T11:59:00Z'): KubeObject => ({
    metadata: { name: 'kopia-catalog-nas', creationTimestamp, annotations },
  });
  it.each([
    { given: job({ [LISTING_STARTED_ANNOTATION]: '2026-11-27T11:59:30.500Z' }), expect: 29.5 },
    // An older operator's Job: its creation on the API server's clock.
    { given: job(), expect: 60 },
    { given: job({ [LISTING_STARTED_ANNOTATION]: 'garbage' }, ''), expect: undefined },
    { given: job({ [LISTING_STARTED_ANNOTATION]: '2026-11-27T12:00:10Z' }), expect: 0 },
  ])('$expect s', ({ given, expect: expected }) => {
    expect(catalogSyncSeconds(given, now)).toBe(expected);
  });
});

describe('nextListingAfterMs', () => {
  it('lists again after the interval when the listing succeeded', () => {
    expect(nextListingAfterMs(15 * 60_000, false)).toBe(15 * 60_000);
    expect(nextListingAfterMs(10_000, false)).toBe(10_000);
  });
  it('retries a failed listing within a minute, never later than a shorter interval', () => {
    expect(nextListingAfterMs(15 * 60_000, true)).toBe(60_000);
    expect(nextListingAfterMs(10_000, true)).toBe(10_000);
  });
});
