// The node agent's snapshot side: the snapshot controller and the CSI snapshotter, for its
// own driver only. A VolumeSnapshot of one of its claims becomes a copy of the volume's
// directory in a snapshot store (the "storage"), a VolumeSnapshotContent bound to it and
// readyToUse; the provisioner restores claims from that store; deleting a VolumeSnapshot
// whose class says Delete removes the content and the stored copy. Finalizers (upstream's
// names, upstream's purposes) keep a VolumeSnapshot until its content and data are gone and
// while a claim is still being restored from it. API: e2e/support/snapshot-crds/.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { isAlreadyExists, type KubeClient, type KubeObject, type ResourceType } from '../../operator/kube/kube-client.js';
import { Informer } from '../../operator/runtime/informer.js';
import { WorkQueue } from '../../operator/runtime/work-queue.js';
import type { EventRecorder, EventType } from '../../operator/runtime/events.js';
import { PersistentVolumeClaims, VolumeSnapshots } from '../../operator/kube/resources.js';
import { bytesQuantity, copyVolumeTree, quantityBytes } from './volume-data.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- snapshot objects are handled structurally */
type Obj = KubeObject & { spec?: any; status?: any };

export const SNAPSHOT_API_GROUP = 'snapshot.storage.k8s.io';
const snapshotApi = (plural: string, namespaced: boolean): ResourceType => ({
  group: SNAPSHOT_API_GROUP,
  version: 'v1',
  plural,
  namespaced,
});
export { VolumeSnapshots };
export const VolumeSnapshotContents = snapshotApi('volumesnapshotcontents', false);
export const VolumeSnapshotClasses = snapshotApi('volumesnapshotclasses', false);
export const DEFAULT_SNAPSHOT_CLASS_ANNOTATION = 'snapshot.storage.kubernetes.io/is-default-class';
export const SNAPSHOT_BOUND_FINALIZER = 'snapshot.storage.kubernetes.io/volumesnapshot-bound-protection';
export const SNAPSHOT_AS_SOURCE_FINALIZER = 'snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection';
export const CONTENT_FINALIZER = 'snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection';
const SNAPSHOT_FINALIZERS = [SNAPSHOT_BOUND_FINALIZER, SNAPSHOT_AS_SOURCE_FINALIZER];

/** Where the store keeps the data of the snapshot with this handle. */
export function snapshotDataPath(storeDir: string, handle: string): string {
  return join(storeDir, handle);
}

/** What the store knows of a snapshot besides its data. */
interface SnapshotInfo {
  restoreSize: number;
  /** Nanoseconds since the epoch, as VolumeSnapshotContent status has it. */
  creationTime: number;
  sourceVolume: string;
}

export interface SnapshotterOptions {
  driver: string;
  className: string;
  /** The snapshot store: one directory per snapshot handle. */
  storeDir: string;
  pvcs: Informer<Obj>;
  pvs: Informer<Obj>;
  events: EventRecorder;
  /** Called when a VolumeSnapshot changes, for claims being restored from it. */
  onSnapshotChange: (snapshot: Obj) => void;
  log: (line: string) => void;
}

/** Whether a claim's data source (dataSourceRef or dataSource) is a VolumeSnapshot, and which. */
export function snapshotSourceOf(pvc: Obj): { name: string; namespace?: string } | undefined {
  const ref = pvc.spec?.dataSourceRef ?? pvc.spec?.dataSource;
  return ref?.kind === 'VolumeSnapshot' && ref.apiGroup === SNAPSHOT_API_GROUP ? ref : undefined;
}

const nowIso = () => new Date().toISOString();

export class HostPathSnapshotter {
  readonly snapshots: Informer<Obj>;
  readonly contents: Informer<Obj>;
  private readonly queue: WorkQueue;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: SnapshotterOptions,
  ) {
    const onError = (key: string, e: unknown) => opts.log(`${key}: ${e instanceof Error ? e.message : String(e)}`);
    this.queue = new WorkQueue((key) => this.sync(key), { concurrency: 4, onError });
    this.snapshots = new Informer<Obj>(client, VolumeSnapshots, { resyncMs: 5000 });
    this.contents = new Informer<Obj>(client, VolumeSnapshotContents, { resyncMs: 5000 });
    this.snapshots.on((_e, vs) => {
      this.queue.add(`vs/${vs.metadata.namespace}/${vs.metadata.name}`);
      opts.onSnapshotChange(vs);
    });
    this.contents.on((_e, content) => {
      this.queue.add(`vsc/${content.metadata.name}`);
      const ref = content.spec?.volumeSnapshotRef;
      if (ref?.name && ref.namespace) this.queue.add(`vs/${ref.namespace}/${ref.name}`);
    });
  }

  async start(): Promise<void> {
    mkdirSync(this.opts.storeDir, { recursive: true });
    chmodSync(this.opts.storeDir, 0o700);
    try {
      await this.client.create(VolumeSnapshotClasses, {
        apiVersion: `${SNAPSHOT_API_GROUP}/v1`,
        kind: 'VolumeSnapshotClass',
        metadata: { name: this.opts.className, annotations: { [DEFAULT_SNAPSHOT_CLASS_ANNOTATION]: 'true' } },
        driver: this.opts.driver,
        deletionPolicy: 'Delete',
      } as KubeObject);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
    await Promise.all([this.snapshots.start(), this.contents.start()]);
  }

  stop(): void {
    this.snapshots.stop();
    this.contents.stop();
    this.queue.stop();
  }

  /** A claim changed: snapshots taken of it, or holding off deletion for it, look again. */
  claimChanged(pvc: Obj): void {
    const ns = pvc.metadata.namespace;
    const restoredFrom = snapshotSourceOf(pvc);
    if (restoredFrom) this.queue.add(`vs/${ns}/${restoredFrom.name}`);
    for (const vs of this.snapshots.list()) {
      if (vs.metadata.namespace === ns && vs.spec?.source?.persistentVolumeClaimName === pvc.metadata.name)
        this.queue.add(`vs/${ns}/${vs.metadata.name}`);
    }
  }

  /**
   * The directory to provision a claim from, as the external-provisioner checks a
   * VolumeSnapshot data source; or why the claim must wait.
   */
  async restoreSource(pvc: Obj): Promise<{ path: string } | { problem: string }> {
    const ref = snapshotSourceOf(pvc)!;
    const ns = pvc.metadata.namespace!;
    if (ref.namespace && ref.namespace !== ns)
      return { problem: `cross-namespace data sources are not supported (${ref.namespace}/${ref.name})` };
    const vs = await this.client.getOrUndefined<Obj>(VolumeSnapshots, ns, ref.name);
    if (!vs) return { problem: `volumesnapshot "${ref.name}" not found` };
    if (vs.metadata.deletionTimestamp) return { problem: `volumesnapshot "${ref.name}" is being deleted` };
    if (!vs.status?.readyToUse || !vs.status.boundVolumeSnapshotContentName)
      return { problem: `volumesnapshot "${ref.name}" is not ready to use yet` };
    const content = await this.client.getOrUndefined<Obj>(VolumeSnapshotContents, undefined, vs.status.boundVolumeSnapshotContentName);
    if (!content || content.spec.volumeSnapshotRef?.uid !== vs.metadata.uid)
      return { problem: `the VolumeSnapshotContent of volumesnapshot "${ref.name}" is missing or bound elsewhere` };
    if (content.spec.driver !== this.opts.driver)
      return { problem: `volumesnapshot "${ref.name}" was taken by driver ${content.spec.driver}, not ${this.opts.driver}` };
    const handle: string | undefined = content.status?.snapshotHandle;
    const path = handle && snapshotDataPath(this.opts.storeDir, handle);
    if (!path || !existsSync(path))
      return { problem: `the snapshot ${handle ?? '(no handle)'} of volumesnapshot "${ref.name}" does not exist` };
    const requested = quantityBytes(pvc.spec.resources?.requests?.storage ?? '0');
    const restoreSize: number = content.status.restoreSize ?? 0;
    if (requested < restoreSize)
      return {
        problem: `requested volume size ${requested} is less than the size ${restoreSize} of volumesnapshot "${ref.name}"`,
      };
    const mode = pvc.spec.volumeMode ?? 'Filesystem';
    if (content.spec.sourceVolumeMode && content.spec.sourceVolumeMode !== mode)
      return { problem: `volumesnapshot "${ref.name}" is of a ${content.spec.sourceVolumeMode} volume; the claim asks for ${mode}` };
    return { path };
  }

  private async sync(key: string): Promise<void> {
    const [kind, ...rest] = key.split('/');
    if (kind === 'vsc') return this.syncContent(rest[0]);
    const vs = this.snapshots.get(rest.join('/'));
    if (!vs) return;
    if (vs.metadata.deletionTimestamp) return this.finalizeSnapshot(vs);
    if (vs.spec?.source?.volumeSnapshotContentName) return this.bindPreProvisioned(vs);
    return this.takeSnapshot(vs);
  }

  // ---- dynamic snapshots: spec.source.persistentVolumeClaimName ----------------------

  private async takeSnapshot(vs: Obj): Promise<void> {
    const ns = vs.metadata.namespace!;
    const boundName: string | undefined = vs.status?.boundVolumeSnapshotContentName;
    if (boundName) {
      const content = await this.content(boundName);
      if (!content) return this.fail(vs, `VolumeSnapshotContent ${boundName} is missing`);
      if (content.spec.driver !== this.opts.driver) return;
      return this.complete(vs, content);
    }
    const claimName: string = vs.spec.source.persistentVolumeClaimName;
    const claim =
      this.opts.pvcs.get(`${ns}/${claimName}`) ?? (await this.client.getOrUndefined<Obj>(PersistentVolumeClaims, ns, claimName));
    if (!claim) return this.fail(vs, `cannot take a snapshot: persistentvolumeclaim "${claimName}" not found`);
    const className: string | undefined = vs.spec.volumeSnapshotClassName;
    if (!className) return this.setDefaultClass(vs, claim);
    const cls = await this.client.getOrUndefined<Obj>(VolumeSnapshotClasses, undefined, className);
    if (!cls) return this.fail(vs, `VolumeSnapshotClass "${className}" not found`);
    if ((cls as any).driver !== this.opts.driver) return; // another driver's snapshotter takes it
    if (claim.metadata.deletionTimestamp)
      return this.fail(vs, `cannot take a snapshot: persistentvolumeclaim "${claimName}" is being deleted`);
    if (claim.status?.phase !== 'Bound' || !claim.spec.volumeName)
      return this.fail(vs, `cannot take a snapshot: persistentvolumeclaim "${claimName}" is not bound to a volume yet`);
    const pv = this.opts.pvs.get(claim.spec.volumeName);
    if (!pv || pv.metadata.annotations?.['pv.kubernetes.io/provisioned-by'] !== this.opts.driver)
      return this.fail(
        vs,
        `cannot take a snapshot: the volume of persistentvolumeclaim "${claimName}" is not one of driver ${this.opts.driver}`,
      );

    // Finalizers before the content exists, so a deletion from now on still cleans it up.
    await this.addFinalizers(VolumeSnapshots, vs, SNAPSHOT_FINALIZERS);
    const contentName = `snapcontent-${vs.metadata.uid}`;
    let content: Obj;
    try {
      content = await this.client.create<Obj>(VolumeSnapshotContents, {
        apiVersion: `${SNAPSHOT_API_GROUP}/v1`,
        kind: 'VolumeSnapshotContent',
        metadata: { name: contentName, finalizers: [CONTENT_FINALIZER] },
        spec: {
          driver: this.opts.driver,
          deletionPolicy: (cls as any).deletionPolicy,
          volumeSnapshotClassName: className,
          source: { volumeHandle: pv.metadata.name },
          sourceVolumeMode: pv.spec.volumeMode ?? 'Filesystem',
          volumeSnapshotRef: {
            apiVersion: `${SNAPSHOT_API_GROUP}/v1`,
            kind: 'VolumeSnapshot',
            name: vs.metadata.name,
            namespace: ns,
            uid: vs.metadata.uid,
          },
        },
      } as Obj);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      content = await this.client.get<Obj>(VolumeSnapshotContents, undefined, contentName);
    }
    // Bound but not ready, as the real controller reports it while the storage works.
    await this.patchStatus(VolumeSnapshots, vs, { boundVolumeSnapshotContentName: contentName, readyToUse: false, error: null });
    await this.event(vs, 'Normal', 'CreatingSnapshot', `Waiting for a snapshot ${ns}/${vs.metadata.name} to be created by the CSI driver.`);
    return this.complete(vs, content);
  }

  private async setDefaultClass(vs: Obj, claim: Obj): Promise<void> {
    const pv = claim.spec.volumeName ? this.opts.pvs.get(claim.spec.volumeName) : undefined;
    const driver =
      pv?.metadata.annotations?.['pv.kubernetes.io/provisioned-by'] ??
      claim.metadata.annotations?.['volume.kubernetes.io/storage-provisioner'];
    if (driver !== this.opts.driver) return;
    const classes = (await this.client.list<Obj>(VolumeSnapshotClasses)).items.filter(
      (c: any) => c.driver === driver && c.metadata.annotations?.[DEFAULT_SNAPSHOT_CLASS_ANNOTATION] === 'true',
    );
    if (classes.length !== 1)
      return this.fail(
        vs,
        `cannot take a snapshot: ${classes.length} default VolumeSnapshotClasses for driver ${driver}, need exactly one`,
      );
    await this.client.patch(VolumeSnapshots, vs.metadata.namespace, vs.metadata.name!, {
      spec: { volumeSnapshotClassName: classes[0].metadata.name },
    });
  }

  /** The CSI snapshotter's part (cut the snapshot, report it on the content) and the controller's (report it on the VolumeSnapshot). */
  private async complete(vs: Obj, content: Obj): Promise<void> {
    if (!content.status?.readyToUse) {
      const pv = this.opts.pvs.get(content.spec.source.volumeHandle);
      const path: string | undefined = pv?.spec.hostPath?.path;
      if (!pv || !path) return this.fail(vs, `cannot take a snapshot: volume ${content.spec.source.volumeHandle} not found`);
      const handle = content.metadata.name!;
      const info = await this.cut(handle, path, {
        restoreSize: quantityBytes(pv.spec.capacity?.storage ?? '0'),
        creationTime: Date.now() * 1e6,
        sourceVolume: pv.metadata.name!,
      });
      content = await this.patchStatus(VolumeSnapshotContents, content, {
        snapshotHandle: handle,
        creationTime: info.creationTime,
        restoreSize: info.restoreSize,
        readyToUse: true,
        error: null,
      });
      await this.event(
        vs,
        'Normal',
        'SnapshotCreated',
        `Snapshot ${vs.metadata.namespace}/${vs.metadata.name} was successfully created by the CSI driver.`,
      );
    }
    await this.reportReady(vs, content);
  }

  /** Copies the volume into the store (the copy's start is the snapshot's point in time). */
  private async cut(handle: string, volumePath: string, info: SnapshotInfo): Promise<SnapshotInfo> {
    const data = snapshotDataPath(this.opts.storeDir, handle);
    const infoFile = `${data}.json`;
    if (existsSync(data) && existsSync(infoFile)) return JSON.parse(readFileSync(infoFile, 'utf8')) as SnapshotInfo;
    // The info first: the data directory appears (renamed into place) only once complete.
    writeFileSync(infoFile, JSON.stringify(info));
    await copyVolumeTree(volumePath, data);
    this.opts.log(`snapshot ${handle} of ${info.sourceVolume} stored`);
    return info;
  }

  private async reportReady(vs: Obj, content: Obj): Promise<void> {
    const st = vs.status ?? {};
    if (st.readyToUse && !st.error && st.boundVolumeSnapshotContentName === content.metadata.name) return;
    await this.patchStatus(VolumeSnapshots, vs, {
      boundVolumeSnapshotContentName: content.metadata.name,
      readyToUse: true,
      creationTime: new Date(Math.round(content.status.creationTime / 1e6)).toISOString(),
      restoreSize: bytesQuantity(content.status.restoreSize ?? 0),
      error: null,
    });
    await this.event(vs, 'Normal', 'SnapshotReady', `Snapshot ${vs.metadata.namespace}/${vs.metadata.name} is ready to use.`);
  }

  // ---- pre-provisioned snapshots: spec.source.volumeSnapshotContentName ------------------

  private async bindPreProvisioned(vs: Obj): Promise<void> {
    const ns = vs.metadata.namespace!;
    const name: string = vs.spec.source.volumeSnapshotContentName;
    let content = await this.content(name);
    if (!content) return this.fail(vs, `VolumeSnapshotContent "${name}" not found`);
    if (content.spec.driver !== this.opts.driver) return;
    const ref = content.spec.volumeSnapshotRef ?? {};
    if (ref.name !== vs.metadata.name || ref.namespace !== ns)
      return this.fail(vs, `VolumeSnapshotContent "${name}" is meant for VolumeSnapshot ${ref.namespace}/${ref.name}`);
    if (ref.uid && ref.uid !== vs.metadata.uid) return this.fail(vs, `VolumeSnapshotContent "${name}" is bound to another VolumeSnapshot`);
    await this.addFinalizers(VolumeSnapshots, vs, SNAPSHOT_FINALIZERS);
    if (!ref.uid || !content.metadata.finalizers?.includes(CONTENT_FINALIZER)) {
      content = await this.client.patch<Obj>(VolumeSnapshotContents, undefined, name, {
        metadata: {
          resourceVersion: content.metadata.resourceVersion,
          finalizers: [...new Set([...(content.metadata.finalizers ?? []), CONTENT_FINALIZER])],
        },
        spec: { volumeSnapshotRef: { ...ref, uid: vs.metadata.uid } },
      });
    }
    if (!content.status?.readyToUse) {
      const handle: string = content.spec.source.snapshotHandle;
      const data = snapshotDataPath(this.opts.storeDir, handle);
      if (!handle || !existsSync(data)) return this.fail(vs, `the snapshot ${handle} of VolumeSnapshotContent "${name}" does not exist`);
      const info = existsSync(`${data}.json`)
        ? (JSON.parse(readFileSync(`${data}.json`, 'utf8')) as SnapshotInfo)
        : { restoreSize: 0, creationTime: Date.now() * 1e6 };
      content = await this.patchStatus(VolumeSnapshotContents, content, {
        snapshotHandle: handle,
        creationTime: info.creationTime,
        restoreSize: info.restoreSize,
        readyToUse: true,
        error: null,
      });
    }
    await this.reportReady(vs, content);
  }

  // ---- deletion ------------------------------------------------------------------------

  private async finalizeSnapshot(vs: Obj): Promise<void> {
    const ours = (vs.metadata.finalizers ?? []).filter((f) => SNAPSHOT_FINALIZERS.includes(f));
    if (ours.length === 0) return;
    const ns = vs.metadata.namespace;
    const restoring = this.opts.pvcs
      .list()
      .filter((p) => p.metadata.namespace === ns && p.status?.phase !== 'Bound' && snapshotSourceOf(p)?.name === vs.metadata.name);
    if (restoring.length > 0) {
      const names = restoring.map((p) => p.metadata.name).join(', ');
      await this.event(vs, 'Normal', 'SnapshotDeletePending', `Kept while claims are being restored from it: ${names}`);
      return;
    }
    // Named deterministically, so an informer that has not seen the binding yet misses nothing.
    const contentName: string =
      vs.status?.boundVolumeSnapshotContentName ?? vs.spec.source.volumeSnapshotContentName ?? `snapcontent-${vs.metadata.uid}`;
    const content = await this.content(contentName);
    if (content && content.spec.volumeSnapshotRef?.uid === vs.metadata.uid && content.spec.deletionPolicy === 'Delete') {
      if (!content.metadata.deletionTimestamp) await this.client.delete(VolumeSnapshotContents, undefined, contentName);
      return; // once the content (and the stored data) is gone, its event brings the snapshot back here
    }
    await this.client.patch(VolumeSnapshots, ns, vs.metadata.name!, {
      metadata: {
        resourceVersion: vs.metadata.resourceVersion,
        finalizers: (vs.metadata.finalizers ?? []).filter((f) => !SNAPSHOT_FINALIZERS.includes(f)),
      },
    });
  }

  private async syncContent(name: string): Promise<void> {
    const content = this.contents.get(name);
    if (!content || content.spec.driver !== this.opts.driver) return;
    const policy: string = content.spec.deletionPolicy;
    if (content.metadata.deletionTimestamp) {
      if (!content.metadata.finalizers?.includes(CONTENT_FINALIZER)) return;
      const handle: string | undefined = content.status?.snapshotHandle ?? content.spec.source?.snapshotHandle;
      if (policy === 'Delete' && handle) {
        const data = snapshotDataPath(this.opts.storeDir, handle);
        rmSync(data, { recursive: true, force: true });
        rmSync(`${data}.json`, { force: true });
        this.opts.log(`snapshot ${handle} deleted`);
      }
      await this.client.patch(VolumeSnapshotContents, undefined, name, {
        metadata: {
          resourceVersion: content.metadata.resourceVersion,
          finalizers: content.metadata.finalizers.filter((f) => f !== CONTENT_FINALIZER),
        },
      });
      return;
    }
    // A content whose VolumeSnapshot went without us (its finalizers removed by hand) is
    // deleted as its policy says, as the real controller does.
    const ref = content.spec.volumeSnapshotRef;
    if (policy !== 'Delete' || !ref?.uid) return;
    const vs =
      this.snapshots.get(`${ref.namespace}/${ref.name}`) ??
      (await this.client.getOrUndefined<Obj>(VolumeSnapshots, ref.namespace, ref.name));
    if (!vs || vs.metadata.uid !== ref.uid) {
      this.opts.log(`deleting ${name}: its VolumeSnapshot ${ref.namespace}/${ref.name} is gone`);
      await this.client.delete(VolumeSnapshotContents, undefined, name);
    }
  }

  // ---- helpers -------------------------------------------------------------------------

  /** The content from the cache, else from the API (the cache may not have seen it yet). */
  private async content(name: string): Promise<Obj | undefined> {
    return this.contents.get(name) ?? (await this.client.getOrUndefined<Obj>(VolumeSnapshotContents, undefined, name));
  }

  private async addFinalizers(type: ResourceType, obj: Obj, finalizers: string[]): Promise<void> {
    const current = obj.metadata.finalizers ?? [];
    if (finalizers.every((f) => current.includes(f))) return;
    const updated = await this.client.patch<Obj>(type, obj.metadata.namespace, obj.metadata.name!, {
      metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers: [...new Set([...current, ...finalizers])] },
    });
    obj.metadata = updated.metadata;
  }

  private async patchStatus(type: ResourceType, obj: Obj, status: Record<string, unknown>): Promise<Obj> {
    return this.client.patch<Obj>(type, obj.metadata.namespace, obj.metadata.name!, { status }, 'merge', 'status');
  }

  /** Reports a problem on the VolumeSnapshot (status.error and a Warning), once per distinct message. */
  private async fail(vs: Obj, message: string): Promise<void> {
    if (vs.status?.error?.message === message) return;
    await this.patchStatus(VolumeSnapshots, vs, { readyToUse: false, error: { message, time: nowIso() } });
    await this.event(vs, 'Warning', 'SnapshotCreationFailed', message);
  }

  private event(obj: Obj, type: EventType, reason: string, message: string): Promise<void> {
    return this.opts.events.record({ ...obj, apiVersion: `${SNAPSHOT_API_GROUP}/v1`, kind: 'VolumeSnapshot' }, type, reason, message);
  }
}
