// The node agent as a CSI driver that clones and snapshots: copies really happen (content,
// modes, owners, links, timestamps), problems leave claims Pending with the reason in an
// Event or a VolumeSnapshot's status.error, and deletion leaves nothing behind.
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { KubeObject } from '../../operator/kube/kube-client.js';
import { CustomResourceDefinitions, Namespaces, PersistentVolumeClaims, PersistentVolumes } from '../../operator/kube/resources.js';
import { createNamespace, deleteNamespace, eventsAbout, until, useTestNamespace, type Obj } from '../support/cluster.js';
import { PROVISIONER, SNAPSHOT_CLASS, STORAGE_CLASS_WFFC } from '../support/node-agent.js';
import { claimObject } from '../support/objects.js';
import {
  DEFAULT_SNAPSHOT_CLASS_ANNOTATION,
  snapshotDataPath,
  VolumeSnapshotClasses,
  VolumeSnapshotContents,
  VolumeSnapshots,
} from '../support/snapshot-controller.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- objects are read structurally */

const t = useTestNamespace('snap');
const storeDir = () => join(process.env.KOPIA_TEST_AGENT_DATA!, 'snapshots');

/** Every entry under dir with what a faithful copy must reproduce. */
function describeTree(dir: string): Record<string, unknown> {
  const entries: Record<string, unknown> = {};
  const walk = (rel: string) => {
    const path = join(dir, rel);
    const st = lstatSync(path);
    const kind = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
    entries[rel] = {
      kind,
      mode: (st.mode & 0o7777).toString(8),
      uid: st.uid,
      gid: st.gid,
      mtimeMs: st.mtimeMs,
      links: st.nlink,
      content: kind === 'file' ? readFileSync(path).toString('base64') : undefined,
      target: kind === 'symlink' ? readlinkSync(path) : undefined,
    };
    if (kind === 'dir') for (const name of readdirSync(path).sort()) walk(rel === '.' ? name : join(rel, name));
  };
  walk('.');
  return entries;
}

/** Files of other owners and odd modes, a symlink, a hard link, and timestamps in the past. */
function fillVolume(dir: string): void {
  const at = (path: string, iso: string, link = false) => (link ? lutimesSync : utimesSync)(path, new Date(iso), new Date(iso));
  writeFileSync(join(dir, 'hello.txt'), 'hello\n');
  chmodSync(join(dir, 'hello.txt'), 0o640);
  chownSync(join(dir, 'hello.txt'), 1234, 2345);
  linkSync(join(dir, 'hello.txt'), join(dir, 'hello-again.txt'));
  writeFileSync(join(dir, 'secret.bin'), randomBytes(256 * 1024), { mode: 0o600 });
  chownSync(join(dir, 'secret.bin'), 1000, 1000);
  mkdirSync(join(dir, 'sub/deeper'), { recursive: true });
  writeFileSync(join(dir, 'sub/deeper/nested.txt'), 'nested\n', { mode: 0o444 });
  chmodSync(join(dir, 'sub/deeper'), 0o2775);
  chmodSync(join(dir, 'sub'), 0o750);
  chownSync(join(dir, 'sub'), 1234, 1234);
  symlinkSync('sub/deeper/nested.txt', join(dir, 'link'));
  lchownSync(join(dir, 'link'), 1234, 2345);
  at(join(dir, 'hello.txt'), '2001-02-03T04:05:06.789Z');
  at(join(dir, 'secret.bin'), '2002-03-04T05:06:07Z');
  at(join(dir, 'sub/deeper/nested.txt'), '2003-04-05T06:07:08Z');
  at(join(dir, 'link'), '2004-05-06T07:08:09Z', true);
  at(join(dir, 'sub/deeper'), '2005-06-07T08:09:10Z');
  at(join(dir, 'sub'), '2006-07-08T09:10:11Z');
  chownSync(dir, 1234, 1234);
  at(dir, '2007-08-09T10:11:12Z');
}

async function createClaim(name: string, o: { storage?: string; storageClassName?: string; dataSource?: Record<string, string> } = {}) {
  const claim = claimObject({ name, namespace: t.ns, storage: o.storage, storageClassName: o.storageClassName }) as Obj;
  if (o.dataSource) claim.spec.dataSource = o.dataSource;
  await t.client.create(PersistentVolumeClaims, claim);
}

/** Waits for the claim to bind; returns it and its volume's directory. */
async function boundClaim(name: string): Promise<{ claim: Obj; path: string }> {
  await until(`claim ${name} to bind`, async () => (await t.client.get<Obj>(PersistentVolumeClaims, t.ns, name)).status?.phase === 'Bound');
  const claim = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, name);
  const pv = await t.client.get<Obj>(PersistentVolumes, undefined, claim.spec.volumeName);
  return { claim, path: pv.spec.hostPath.path };
}

/** Waits for an Event about the named object with this reason whose message contains text. */
async function eventWith(name: string, reason: string, text: string): Promise<any> {
  let found: any;
  await until(`a ${reason} event about ${name} saying "${text}"`, async () => {
    found = (await eventsAbout(t.client, t.ns, name)).find((e) => e.reason === reason && e.message.includes(text));
    return !!found;
  });
  return found;
}

const fromSnapshot = (name: string) => ({ apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name });
const fromClaim = (name: string) => ({ kind: 'PersistentVolumeClaim', name });

function snapshotObject(name: string, source: Record<string, string>, volumeSnapshotClassName?: string): KubeObject {
  return {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: { name, namespace: t.ns },
    spec: { source, ...(volumeSnapshotClassName ? { volumeSnapshotClassName } : {}) },
  } as KubeObject;
}

async function readySnapshot(name: string): Promise<Obj> {
  let vs: Obj | undefined;
  await until(`volumesnapshot ${name} to be ready`, async () => {
    vs = await t.client.get<Obj>(VolumeSnapshots, t.ns, name);
    return vs.status?.readyToUse === true;
  });
  return vs!;
}

async function gone(what: string, get: () => Promise<unknown>): Promise<void> {
  await until(`${what} to be gone`, async () => (await get()) === undefined);
}

describe('clones on the node agent', () => {
  it('provisions a claim cloned from another as a copy of its volume: content, modes, owners, links, timestamps', async () => {
    await createClaim('origin');
    const origin = await boundClaim('origin');
    fillVolume(origin.path);
    const before = describeTree(origin.path);

    await createClaim('copy', { dataSource: fromClaim('origin') });
    const copy = await boundClaim('copy');
    expect(copy.path).not.toBe(origin.path);
    expect(describeTree(copy.path)).toEqual(before);
    await eventWith('copy', 'ProvisioningSucceeded', copy.claim.spec.volumeName);

    // A volume of its own: writing to the clone leaves the source as it was.
    writeFileSync(join(copy.path, 'hello.txt'), 'changed in the clone\n');
    writeFileSync(join(copy.path, 'new.txt'), 'only in the clone\n');
    expect(describeTree(origin.path)).toEqual(before);
  });

  it('keeps a clone Pending with ProvisioningFailed while its source is missing, and clones once it exists', async () => {
    await createClaim('early', { dataSource: fromClaim('later') });
    const failed = await eventWith('early', 'ProvisioningFailed', 'source persistentvolumeclaim "later" not found');
    expect(failed).toMatchObject({ type: 'Warning', involvedObject: { kind: 'PersistentVolumeClaim', name: 'early' } });
    expect((await t.client.get<Obj>(PersistentVolumeClaims, t.ns, 'early')).status.phase).toBe('Pending');

    await createClaim('later');
    const later = await boundClaim('later');
    const early = await boundClaim('early');
    // A copy of the (empty) source, its top directory's attributes and times included.
    expect(describeTree(early.path)).toEqual(describeTree(later.path));
  });

  it('keeps a clone of an unbound source Pending with ProvisioningFailed', async () => {
    await createClaim('unbound', { storageClassName: STORAGE_CLASS_WFFC });
    await createClaim('of-unbound', { dataSource: fromClaim('unbound') });
    await eventWith('of-unbound', 'ProvisioningFailed', 'source persistentvolumeclaim "unbound" is not bound to a volume yet');
    expect((await t.client.get<Obj>(PersistentVolumeClaims, t.ns, 'of-unbound')).status.phase).toBe('Pending');
  });

  it('refuses a clone smaller than its source, as the external-provisioner does', async () => {
    await createClaim('large', { storage: '2Gi' });
    await boundClaim('large');
    await createClaim('small', { storage: '1Gi', dataSource: fromClaim('large') });
    await eventWith('small', 'ProvisioningFailed', 'requested volume size 1073741824 is less than the size 2147483648');
  });
});

describe('the VolumeSnapshot API in the test world', () => {
  it('is installed with a default VolumeSnapshotClass for the agent’s driver', async () => {
    for (const plural of ['volumesnapshots', 'volumesnapshotcontents', 'volumesnapshotclasses']) {
      const crd = await t.client.get<Obj>(CustomResourceDefinitions, undefined, `${plural}.snapshot.storage.k8s.io`);
      expect(crd.spec.versions.map((v: any) => v.name)).toEqual(['v1']);
    }
    const cls = await t.client.get<Obj>(VolumeSnapshotClasses, undefined, SNAPSHOT_CLASS);
    expect(cls).toMatchObject({
      driver: PROVISIONER,
      deletionPolicy: 'Delete',
      metadata: { annotations: { [DEFAULT_SNAPSHOT_CLASS_ANNOTATION]: 'true' } },
    });
  });

  it('validates a VolumeSnapshot as upstream’s schema does: one source, immutable', async () => {
    const rejected = async (obj: KubeObject) => {
      const e = await t.client.create(VolumeSnapshots, obj).then(
        () => undefined,
        (err: unknown) => err as { status: number; message: string },
      );
      expect(e?.status).toBe(422);
      return e!.message;
    };
    await rejected(snapshotObject('two-sources', { persistentVolumeClaimName: 'a', volumeSnapshotContentName: 'b' }));
    await rejected(snapshotObject('no-source', {}));
    const emptyClass = snapshotObject('empty-class', { persistentVolumeClaimName: 'a' }) as Obj;
    emptyClass.spec.volumeSnapshotClassName = '';
    expect(await rejected(emptyClass)).toContain('must not be the empty string');
    await t.client.create(VolumeSnapshots, snapshotObject('fixed', { persistentVolumeClaimName: 'absent' }));
    await expect(
      t.client.patch(VolumeSnapshots, t.ns, 'fixed', { spec: { source: { persistentVolumeClaimName: 'other' } } }),
    ).rejects.toThrow(/spec.source is immutable/);
  });
});

describe('snapshots on the node agent', () => {
  it('takes a point-in-time copy, binds a content, reports it ready; restores it; deletes it with its data', async () => {
    await createClaim('photo');
    const photo = await boundClaim('photo');
    fillVolume(photo.path);
    const atSnapshot = describeTree(photo.path);
    const beforeCut = Date.now();

    await t.client.create(VolumeSnapshots, snapshotObject('shot', { persistentVolumeClaimName: 'photo' }));
    const vs = await readySnapshot('shot');
    expect(vs.spec.volumeSnapshotClassName).toBe(SNAPSHOT_CLASS);
    expect(vs.status).toMatchObject({ readyToUse: true, restoreSize: '1Gi' });
    expect(vs.status.error).toBeUndefined();
    expect(Date.parse(vs.status.creationTime)).toBeGreaterThanOrEqual(beforeCut - 1000);
    expect(Date.parse(vs.status.creationTime)).toBeLessThanOrEqual(Date.now());

    const contentName = vs.status.boundVolumeSnapshotContentName;
    const content = await t.client.get<Obj>(VolumeSnapshotContents, undefined, contentName);
    expect(content.spec).toMatchObject({
      driver: PROVISIONER,
      deletionPolicy: 'Delete',
      volumeSnapshotClassName: SNAPSHOT_CLASS,
      source: { volumeHandle: photo.claim.spec.volumeName },
      sourceVolumeMode: 'Filesystem',
      volumeSnapshotRef: { kind: 'VolumeSnapshot', name: 'shot', namespace: t.ns, uid: vs.metadata.uid },
    });
    expect(content.status).toMatchObject({ readyToUse: true, restoreSize: 2 ** 30 });
    expect(Math.round(content.status.creationTime / 1e6)).toBe(Date.parse(vs.status.creationTime));
    const stored = snapshotDataPath(storeDir(), content.status.snapshotHandle);
    expect(describeTree(stored)).toEqual(atSnapshot);

    // The source moves on; the snapshot keeps its point in time.
    writeFileSync(join(photo.path, 'hello.txt'), 'written after the snapshot\n');
    writeFileSync(join(photo.path, 'after.txt'), 'not in the snapshot\n');

    await createClaim('restored', { dataSource: fromSnapshot('shot') });
    const restored = await boundClaim('restored');
    expect(describeTree(restored.path)).toEqual(atSnapshot);
    await eventWith('restored', 'ProvisioningSucceeded', restored.claim.spec.volumeName);

    await t.client.delete(VolumeSnapshots, t.ns, 'shot');
    await gone('volumesnapshot shot', () => t.client.getOrUndefined(VolumeSnapshots, t.ns, 'shot'));
    await gone('its content', () => t.client.getOrUndefined(VolumeSnapshotContents, undefined, contentName));
    expect(existsSync(stored)).toBe(false);
    expect(existsSync(`${stored}.json`)).toBe(false);
    // The restored volume is a copy of its own.
    expect(describeTree(restored.path)).toEqual(atSnapshot);
  });

  it('reports status.error for a snapshot of a missing claim, and takes it once the claim exists', async () => {
    await t.client.create(VolumeSnapshots, snapshotObject('of-nothing', { persistentVolumeClaimName: 'not-yet' }, SNAPSHOT_CLASS));
    let vs: Obj | undefined;
    await until('the snapshot to report an error', async () => {
      vs = await t.client.get<Obj>(VolumeSnapshots, t.ns, 'of-nothing');
      return !!vs.status?.error;
    });
    expect(vs!.status).toMatchObject({ readyToUse: false, error: { message: expect.stringContaining('"not-yet" not found') } });
    expect(Date.parse(vs!.status.error.time)).not.toBeNaN();
    await eventWith('of-nothing', 'SnapshotCreationFailed', '"not-yet" not found');

    await createClaim('not-yet');
    const ready = await readySnapshot('of-nothing');
    expect(ready.status.error).toBeUndefined();
  });

  it('keeps a restore Pending with ProvisioningFailed until its snapshot exists and is ready', async () => {
    await createClaim('awaiting', { dataSource: fromSnapshot('future') });
    await eventWith('awaiting', 'ProvisioningFailed', 'volumesnapshot "future" not found');
    expect((await t.client.get<Obj>(PersistentVolumeClaims, t.ns, 'awaiting')).status.phase).toBe('Pending');

    await createClaim('future-source');
    const source = await boundClaim('future-source');
    writeFileSync(join(source.path, 'payload.txt'), 'restored later\n');
    await t.client.create(VolumeSnapshots, snapshotObject('future', { persistentVolumeClaimName: 'future-source' }));
    const awaiting = await boundClaim('awaiting');
    expect(readFileSync(join(awaiting.path, 'payload.txt'), 'utf8')).toBe('restored later\n');
  });

  it('keeps a deleted snapshot, its content and data while a claim is being restored from it', async () => {
    await createClaim('big', { storage: '2Gi' });
    await boundClaim('big');
    await t.client.create(VolumeSnapshots, snapshotObject('in-use', { persistentVolumeClaimName: 'big' }));
    const vs = await readySnapshot('in-use');
    const content = await t.client.get<Obj>(VolumeSnapshotContents, undefined, vs.status.boundVolumeSnapshotContentName);
    const stored = snapshotDataPath(storeDir(), content.status.snapshotHandle);
    // Too small for the snapshot: this restore stays Pending.
    await createClaim('stuck', { storage: '1Gi', dataSource: fromSnapshot('in-use') });
    await eventWith('stuck', 'ProvisioningFailed', 'is less than the size 2147483648 of volumesnapshot "in-use"');

    await t.client.delete(VolumeSnapshots, t.ns, 'in-use');
    await eventWith('in-use', 'SnapshotDeletePending', 'stuck');
    expect((await t.client.get<Obj>(VolumeSnapshots, t.ns, 'in-use')).metadata.deletionTimestamp).toBeDefined();
    expect(await t.client.getOrUndefined(VolumeSnapshotContents, undefined, content.metadata.name!)).toBeDefined();
    expect(existsSync(stored)).toBe(true);

    await t.client.delete(PersistentVolumeClaims, t.ns, 'stuck');
    await gone('volumesnapshot in-use', () => t.client.getOrUndefined(VolumeSnapshots, t.ns, 'in-use'));
    await gone('its content', () => t.client.getOrUndefined(VolumeSnapshotContents, undefined, content.metadata.name!));
    expect(existsSync(stored)).toBe(false);
  });

  it('retains a content and its data under a Retain class, and binds them again as a pre-provisioned snapshot', async () => {
    const className = `retain-${t.ns}`;
    await t.client.create(VolumeSnapshotClasses, {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshotClass',
      metadata: { name: className },
      driver: PROVISIONER,
      deletionPolicy: 'Retain',
    } as KubeObject);
    try {
      await createClaim('kept');
      const kept = await boundClaim('kept');
      fillVolume(kept.path);
      const atSnapshot = describeTree(kept.path);
      await t.client.create(VolumeSnapshots, snapshotObject('first', { persistentVolumeClaimName: 'kept' }, className));
      const first = await readySnapshot('first');
      const retainedName = first.status.boundVolumeSnapshotContentName;
      const handle = (await t.client.get<Obj>(VolumeSnapshotContents, undefined, retainedName)).status.snapshotHandle;
      await t.client.delete(VolumeSnapshots, t.ns, 'first');
      await gone('volumesnapshot first', () => t.client.getOrUndefined(VolumeSnapshots, t.ns, 'first'));
      expect((await t.client.get<Obj>(VolumeSnapshotContents, undefined, retainedName)).spec.deletionPolicy).toBe('Retain');
      expect(describeTree(snapshotDataPath(storeDir(), handle))).toEqual(atSnapshot);

      // An administrator imports the retained snapshot under a new content, to be deleted with it.
      const imported = `imported-${t.ns}`;
      await t.client.create(VolumeSnapshotContents, {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshotContent',
        metadata: { name: imported },
        spec: {
          driver: PROVISIONER,
          deletionPolicy: 'Delete',
          source: { snapshotHandle: handle },
          volumeSnapshotRef: { name: 'again', namespace: t.ns },
        },
      } as KubeObject);
      await t.client.delete(VolumeSnapshotContents, undefined, retainedName);
      await gone('the retained content', () => t.client.getOrUndefined(VolumeSnapshotContents, undefined, retainedName));
      expect(existsSync(snapshotDataPath(storeDir(), handle))).toBe(true);

      await t.client.create(VolumeSnapshots, snapshotObject('again', { volumeSnapshotContentName: imported }));
      const again = await readySnapshot('again');
      expect(again.status).toMatchObject({ boundVolumeSnapshotContentName: imported, restoreSize: '1Gi' });
      expect((await t.client.get<Obj>(VolumeSnapshotContents, undefined, imported)).spec.volumeSnapshotRef.uid).toBe(again.metadata.uid);
      await createClaim('from-import', { dataSource: fromSnapshot('again') });
      expect(describeTree((await boundClaim('from-import')).path)).toEqual(atSnapshot);

      await t.client.delete(VolumeSnapshots, t.ns, 'again');
      await gone('the imported content', () => t.client.getOrUndefined(VolumeSnapshotContents, undefined, imported));
      expect(existsSync(snapshotDataPath(storeDir(), handle))).toBe(false);
    } finally {
      await t.client.delete(VolumeSnapshotClasses, undefined, className);
    }
  });

  it('leaves no snapshot, content or stored data behind when their namespace is deleted', async () => {
    const ns = await createNamespace(t.client, 'snap-doomed');
    await t.client.create(PersistentVolumeClaims, claimObject({ name: 'data', namespace: ns }));
    await until('claim data to bind', async () => (await t.client.get<Obj>(PersistentVolumeClaims, ns, 'data')).status?.phase === 'Bound');
    await t.client.create(VolumeSnapshots, {
      ...snapshotObject('doomed', { persistentVolumeClaimName: 'data' }),
      metadata: { name: 'doomed', namespace: ns },
    });
    let vs: Obj | undefined;
    await until('volumesnapshot doomed to be ready', async () => {
      vs = await t.client.get<Obj>(VolumeSnapshots, ns, 'doomed');
      return vs.status?.readyToUse === true;
    });
    const contentName = vs!.status.boundVolumeSnapshotContentName;
    const stored = snapshotDataPath(
      storeDir(),
      (await t.client.get<Obj>(VolumeSnapshotContents, undefined, contentName)).status.snapshotHandle,
    );
    expect(existsSync(stored)).toBe(true);

    await deleteNamespace(t.client, ns);
    await gone(`namespace ${ns}`, () => t.client.getOrUndefined(Namespaces, undefined, ns));
    expect(await t.client.getOrUndefined(VolumeSnapshotContents, undefined, contentName)).toBeUndefined();
    expect(existsSync(stored)).toBe(false);
  });
});
