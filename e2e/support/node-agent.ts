// The local node agent: stands in for scheduler, kubelet, a hostPath CSI driver (its
// provisioner, clones and snapshots) and the snapshot controller, and nothing more. It
// registers a Ready Node, binds pending Pods to it, runs their containers as local
// processes (each in a private mount namespace with its volumes bind-mounted at their
// mountPaths, with the capabilities the runtime would give them), and writes real pod
// status. The job controller, garbage collector and PV binder in kube-controller-manager
// then behave exactly as in a cluster.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  linkSync,
  copyFileSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  lstatSync,
} from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { Informer } from '../../operator/runtime/informer.js';
import { WorkQueue } from '../../operator/runtime/work-queue.js';
import { ApiEventRecorder, type EventRecorder, type EventType } from '../../operator/runtime/events.js';
import { createLogger } from '../../operator/runtime/logger.js';
import { HostPathSnapshotter, snapshotSourceOf } from './snapshot-controller.js';
import { copyVolumeTree, quantityBytes } from './volume-data.js';
import { isAlreadyExists, type KubeClient, type KubeObject } from '../../operator/kube/kube-client.js';
import {
  ConfigMaps,
  Nodes,
  PersistentVolumeClaims,
  PersistentVolumes,
  Pods,
  Secrets,
  StorageClasses,
} from '../../operator/kube/resources.js';

export const PROVISIONER = 'kopia.io/test-hostpath';
export const STORAGE_CLASS = 'kopia-test-hostpath';
export const STORAGE_CLASS_WFFC = 'kopia-test-hostpath-wffc';
/** The default VolumeSnapshotClass, for the agent's driver. */
export const SNAPSHOT_CLASS = 'kopia-test-hostpath-snapclass';
const SELECTED_NODE = 'volume.kubernetes.io/selected-node';
/** Where containers find kopia (bind-mounted; /run is a tmpfs, so the mount point leaves no trace). */
const CONTAINER_TOOLS_DIR = '/run/kopia-node-agent/bin';
/** Where the kopia-operator image's files (the checkout) appear in its containers. */
export const CONTAINER_IMAGE_DIR = '/run/kopia-node-agent/image';
/** Files of the image a non-root mover must read (beside the directories leading to them). */
const IMAGE_FILES = [
  'package.json',
  'operator',
  'operator/mover',
  'operator/mover/main.ts',
  'node_modules',
  'node_modules/tsx/package.json',
];

/* eslint-disable @typescript-eslint/no-explicit-any -- pod specs are handled structurally */
type Obj = KubeObject & { spec?: any; status?: any };

export interface NodeAgentOptions {
  nodeName?: string;
  /**
   * The node's kubernetes.io/hostname label; by default not its name, as on many clusters,
   * so that anything pinning pods by that label instead of the name fails here too.
   */
  hostnameLabel?: string;
  /** Where volumes, pod scratch space and logs live. */
  dataDir: string;
  /** Directory holding the kopia binary; copied where non-root containers can run it. */
  kopiaBinDir: string;
  /** The directory whose files make up the kopia-operator image (the checkout). */
  imageRoot: string;
  /** argv of the image's entrypoint (the mover), with paths under CONTAINER_IMAGE_DIR. */
  imageEntrypoint: string[];
  /** Image repositories (last path segment, no tag) the agent will run. */
  images?: string[];
  /** Bind pending pods to this node (false: run only pods already bound to it). */
  scheduler?: boolean;
  /** Provision volumes for claims of its storage classes. */
  provisioner?: boolean;
  log?: (line: string) => void;
}

/** A pod whose containers the agent runs (or is about to): from its start until its last container ends. */
interface RunningPod {
  /** Its work-queue key, namespace/name. */
  key: string;
  /** The containers' processes: each leads a process group holding all the container's processes. */
  children: Set<ChildProcess>;
  /** Being deleted (or the agent stopping): no container starts or restarts any more. */
  killed: boolean;
  /** When the agent sent SIGTERM, and when it SIGKILLs what is left (the grace period's end). */
  terminatingSince?: number;
  killAt?: number;
  killTimer?: NodeJS.Timeout;
  /** Ends a wait between container restarts at once. */
  wake?: () => void;
}

/** The default terminationGracePeriodSeconds of a pod. */
const DEFAULT_GRACE_SECONDS = 30;

/** Signals every process of a container (its process group); one that is gone already is no error. */
function signalContainer(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: nothing of it is left
  }
}

/** A claim's data source (dataSourceRef or dataSource) if it is another claim: a clone. */
function cloneSourceOf(pvc: Obj): { name: string; namespace?: string } | undefined {
  const ref = pvc.spec?.dataSourceRef ?? pvc.spec?.dataSource;
  return ref?.kind === 'PersistentVolumeClaim' && !ref.apiGroup ? ref : undefined;
}

function imageName(image: string): string {
  const noDigest = image.split('@')[0];
  const lastSegment = noDigest.split('/').pop() ?? noDigest;
  return lastSegment.split(':')[0];
}

const now = () => new Date().toISOString();

/** What containerd and CRI-O give a container unless told otherwise. */
export const DEFAULT_CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
];
/** Linux capabilities by number (0 to 40). */
const KNOWN_CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
];

/**
 * A container's capability set as containerd computes it from its securityContext: the
 * defaults; everything if add has ALL; nothing if drop has ALL; then each added, then each
 * dropped. Undefined for a privileged container (no limit). Names may carry "CAP_".
 */
export function containerCapabilities(sc: {
  privileged?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
}): string[] | undefined {
  if (sc.privileged) return undefined;
  const normal = (c: string) => c.toUpperCase().replace(/^CAP_/, '');
  const add = (sc.capabilities?.add ?? []).map(normal);
  const drop = (sc.capabilities?.drop ?? []).map(normal);
  const unknown = [...add, ...drop].find((c) => c !== 'ALL' && !KNOWN_CAPABILITIES.includes(c));
  if (unknown) throw new Error(`unknown capability "${unknown}"`);
  let caps = new Set(DEFAULT_CAPABILITIES);
  if (add.includes('ALL')) caps = new Set(KNOWN_CAPABILITIES);
  if (drop.includes('ALL')) caps.clear();
  for (const c of add) if (c !== 'ALL') caps.add(c);
  for (const c of drop) caps.delete(c);
  return KNOWN_CAPABILITIES.filter((c) => caps.has(c));
}

/**
 * setpriv options that give the exec'd program the process credentials the runtime would:
 * uid, gid and groups; the bounding set limited to the container's capabilities and no
 * inheritable ones, so root keeps exactly those and a non-root user has none in effect
 * (containerd and CRI-O set no ambient capabilities: Kubernetes issue 56374); no_new_privs
 * for allowPrivilegeEscalation: false.
 */
export function setprivOptions(
  sc: { runAsUser?: number; runAsGroup?: number; privileged?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: any },
  fsGroup: number | undefined,
): string[] {
  const options: string[] = [];
  const caps = containerCapabilities(sc);
  if (caps) options.push('--inh-caps', '-all', '--bounding-set', ['-all', ...caps.map((c) => `+${c.toLowerCase()}`)].join(','));
  if (sc.allowPrivilegeEscalation === false) options.push('--nnp');
  if (sc.runAsUser !== undefined && sc.runAsUser !== 0) {
    options.push('--reuid', String(sc.runAsUser), '--regid', String(sc.runAsGroup ?? sc.runAsUser));
    options.push(...(fsGroup !== undefined ? ['--groups', String(fsGroup)] : ['--clear-groups']));
  }
  return options;
}

/**
 * Why a non-root container could not run the image's code, if it could not. The checkout
 * is bind-mounted at CONTAINER_IMAGE_DIR, so where it lives (a 0700 temporary directory)
 * does not matter; its own files must be readable by others. Never a reason to run as root.
 */
export function imageUnreadableReason(imageRoot: string, files: string[]): string | undefined {
  for (const rel of ['.', ...files]) {
    const path = join(imageRoot, rel);
    let mode: number;
    try {
      mode = statSync(path).mode;
    } catch (e) {
      return `${path}: ${(e as Error).message}`;
    }
    const needed = rel === '.' || statSync(path).isDirectory() ? 0o005 : 0o004;
    if ((mode & needed) !== needed)
      return `${path} has mode ${(mode & 0o777).toString(8)}; other users need ${needed === 0o005 ? 'r-x' : 'r--'}`;
  }
  return undefined;
}

/** A required node selector term's requirement, as kube-scheduler reads it. */
function requirementMatches(r: { key: string; operator: string; values?: string[] }, value: string | undefined): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt':
      return value !== undefined && (r.operator === 'Gt' ? Number(value) > Number(values[0]) : Number(value) < Number(values[0]));
    default:
      return false;
  }
}

/** Whether the pod's nodeSelector and required node affinity admit this node (name and labels), as kube-scheduler decides. */
export function podFitsNode(pod: Obj, node: { name: string; labels: Record<string, string> }): boolean {
  for (const [k, v] of Object.entries<string>(pod.spec?.nodeSelector ?? {})) if (node.labels[k] !== v) return false;
  const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (!required) return true;
  // The terms are ORed, a term's requirements ANDed; a term with none matches no node.
  return (required.nodeSelectorTerms ?? []).some((term: any) => {
    const expressions: any[] = term.matchExpressions ?? [];
    const fields: any[] = term.matchFields ?? [];
    if (expressions.length + fields.length === 0) return false;
    return (
      expressions.every((r) => requirementMatches(r, node.labels[r.key])) &&
      fields.every((r) => r.key === 'metadata.name' && requirementMatches(r, node.name))
    );
  });
}

export class NodeAgent {
  readonly nodeName: string;
  private readonly nodeLabels: Record<string, string>;
  private readonly pods: Informer<Obj>;
  private readonly pvcs: Informer<Obj>;
  private readonly pvs: Informer<Obj>;
  private readonly podQueue: WorkQueue;
  private readonly volumeQueue: WorkQueue;
  private readonly running = new Map<string, RunningPod>();
  private readonly finished = new Set<string>();
  private readonly toolsDir: string;
  private readonly images: Set<string>;
  private readonly log: (line: string) => void;
  private readonly events: EventRecorder;
  /** Snapshots of its driver's volumes: present where the agent provisions. */
  private readonly snapshotter?: HostPathSnapshotter;
  private imageProblem?: string;
  /** stop() was called: pods keep their last status (a restarted agent reports them). */
  private stopping = false;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: NodeAgentOptions,
  ) {
    this.nodeName = opts.nodeName ?? 'local-node';
    this.nodeLabels = { 'kubernetes.io/hostname': opts.hostnameLabel ?? `${this.nodeName}.lan`, 'kubernetes.io/os': 'linux' };
    this.images = new Set(opts.images ?? ['kopia-operator']);
    this.log = opts.log ?? (() => undefined);
    this.toolsDir = join(opts.dataDir, 'bin');
    const onError = (key: string, e: unknown) => this.log(`${key}: ${e instanceof Error ? e.message : String(e)}`);
    this.podQueue = new WorkQueue((k) => this.syncPod(k), { concurrency: 8, onError });
    this.volumeQueue = new WorkQueue((k) => this.syncVolume(k), { concurrency: 4, onError });
    this.pods = new Informer<Obj>(client, Pods, { resyncMs: 5000 });
    this.pvcs = new Informer<Obj>(client, PersistentVolumeClaims, { resyncMs: 5000 });
    this.pvs = new Informer<Obj>(client, PersistentVolumes, { resyncMs: 5000 });
    this.pods.on((_e, pod) => this.podQueue.add(`${pod.metadata.namespace}/${pod.metadata.name}`));
    this.events = new ApiEventRecorder(client, PROVISIONER, createLogger('node-agent', 'warn'));
    if (opts.provisioner !== false) {
      this.snapshotter = new HostPathSnapshotter(client, {
        driver: PROVISIONER,
        className: SNAPSHOT_CLASS,
        storeDir: this.snapshotsDir,
        pvcs: this.pvcs,
        pvs: this.pvs,
        events: new ApiEventRecorder(client, 'snapshot-controller', createLogger('node-agent', 'warn')),
        onSnapshotChange: (vs) => this.pendingClaimsFrom(vs.metadata.namespace!, (p) => snapshotSourceOf(p)?.name === vs.metadata.name),
        log: this.log,
      });
    }
    this.pvcs.on((_e, pvc) => {
      if (this.opts.provisioner !== false) {
        this.volumeQueue.add(`pvc/${pvc.metadata.namespace}/${pvc.metadata.name}`);
        // Clones of this claim may wait for it to exist or bind.
        this.pendingClaimsFrom(pvc.metadata.namespace!, (p) => cloneSourceOf(p)?.name === pvc.metadata.name);
        this.snapshotter?.claimChanged(pvc);
      }
      // A claim that binds may unblock pods waiting to be scheduled.
      for (const pod of this.pods.list()) {
        if (pod.metadata.namespace === pvc.metadata.namespace && !pod.spec?.nodeName)
          this.podQueue.add(`${pod.metadata.namespace}/${pod.metadata.name}`);
      }
    });
    this.pvs.on((_e, pv) => {
      if (this.opts.provisioner !== false) this.volumeQueue.add(`pv/${pv.metadata.name}`);
    });
  }

  get volumesDir(): string {
    return join(this.opts.dataDir, 'volumes');
  }

  /** The snapshot store: the data of each snapshot, by handle (snapshotDataPath). */
  get snapshotsDir(): string {
    return join(this.opts.dataDir, 'snapshots');
  }

  /** The directory holding a pod's container logs (there is no kubelet log endpoint). */
  podLogDir(uid: string): string {
    return join(this.opts.dataDir, 'pods', uid, 'logs');
  }

  async start(): Promise<void> {
    this.imageProblem = imageUnreadableReason(this.opts.imageRoot, IMAGE_FILES);
    if (this.imageProblem) this.log(`non-root containers will fail: ${this.imageProblem}`);
    mkdirSync(this.toolsDir, { recursive: true });
    mkdirSync(this.volumesDir, { recursive: true });
    chmodSync(this.opts.dataDir, 0o755);
    chmodSync(this.toolsDir, 0o755);
    chmodSync(this.volumesDir, 0o755);
    const kopia = join(this.toolsDir, 'kopia');
    if (!existsSync(kopia)) {
      try {
        linkSync(join(this.opts.kopiaBinDir, 'kopia'), kopia);
      } catch {
        copyFileSync(join(this.opts.kopiaBinDir, 'kopia'), kopia);
      }
      chmodSync(kopia, 0o755);
    }
    await this.registerNode();
    if (this.opts.provisioner !== false) await this.ensureStorageClasses();
    await Promise.all([this.pvs.start(), this.pvcs.start()]);
    await this.snapshotter?.start();
    await this.pods.start();
  }

  async stop(): Promise<void> {
    this.pods.stop();
    this.pvcs.stop();
    this.pvs.stop();
    this.snapshotter?.stop();
    this.podQueue.stop();
    this.volumeQueue.stop();
    this.stopping = true;
    for (const r of this.running.values()) {
      r.killed = true;
      clearTimeout(r.killTimer);
      for (const c of r.children) signalContainer(c, 'SIGKILL');
    }
  }

  private async registerNode(): Promise<void> {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: this.nodeName, labels: this.nodeLabels },
    };
    try {
      await this.client.create(Nodes, node as KubeObject);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
    await this.client.patch(
      Nodes,
      undefined,
      this.nodeName,
      {
        status: {
          capacity: { cpu: '2', memory: '24Gi', pods: '110' },
          allocatable: { cpu: '2', memory: '24Gi', pods: '110' },
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'node agent is running',
              lastHeartbeatTime: now(),
              lastTransitionTime: now(),
            },
          ],
          addresses: [
            { type: 'InternalIP', address: '127.0.0.1' },
            { type: 'Hostname', address: this.nodeName },
          ],
          nodeInfo: {
            kubeletVersion: 'node-agent',
            operatingSystem: 'linux',
            architecture: 'amd64',
            containerRuntimeVersion: 'local-process://1',
            kernelVersion: '',
            osImage: '',
            kubeProxyVersion: '',
            machineID: '',
            systemUUID: '',
            bootID: '',
          },
        },
      },
      'strategic',
      'status',
    );
  }

  private async ensureStorageClasses(): Promise<void> {
    for (const [name, mode, isDefault] of [
      [STORAGE_CLASS, 'Immediate', true],
      [STORAGE_CLASS_WFFC, 'WaitForFirstConsumer', false],
    ] as const) {
      try {
        await this.client.create(StorageClasses, {
          apiVersion: 'storage.k8s.io/v1',
          kind: 'StorageClass',
          metadata: { name, annotations: isDefault ? { 'storageclass.kubernetes.io/is-default-class': 'true' } : {} },
          provisioner: PROVISIONER,
          reclaimPolicy: 'Delete',
          volumeBindingMode: mode,
        } as KubeObject);
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
    }
  }

  // ---- provisioner -------------------------------------------------------------------

  private async syncVolume(key: string): Promise<void> {
    const [kind, ...rest] = key.split('/');
    if (kind === 'pvc') return this.provision(rest.join('/'));
    const pv = this.pvs.get(rest[0]);
    if (!pv || pv.metadata.annotations?.['pv.kubernetes.io/provisioned-by'] !== PROVISIONER) return;
    if (pv.status?.phase === 'Released' && pv.spec.persistentVolumeReclaimPolicy === 'Delete') {
      rmSync(pv.spec.hostPath.path, { recursive: true, force: true });
      await this.client.delete(PersistentVolumes, undefined, pv.metadata.name!);
      this.log(`deleted released volume ${pv.metadata.name}`);
    }
  }

  private async provision(key: string): Promise<void> {
    const pvc = this.pvcs.get(key);
    if (!pvc || pvc.spec.volumeName || pvc.metadata.deletionTimestamp) return;
    const ann = pvc.metadata.annotations ?? {};
    const provisioner = ann['volume.kubernetes.io/storage-provisioner'] ?? ann['volume.beta.kubernetes.io/storage-provisioner'];
    if (provisioner !== PROVISIONER) return;
    // Like the CSI external-provisioner: a claim filled by a volume populator is not ours.
    const cloneOf = cloneSourceOf(pvc);
    const restoreOf = snapshotSourceOf(pvc);
    if ((pvc.spec.dataSourceRef ?? pvc.spec.dataSource) && !cloneOf && !restoreOf) return;
    const sc = await this.client.getOrUndefined<Obj>(StorageClasses, undefined, pvc.spec.storageClassName);
    if (!sc) return;
    if (sc.volumeBindingMode === 'WaitForFirstConsumer' && ann[SELECTED_NODE] !== this.nodeName) return;
    const name = `pvc-${pvc.metadata.uid}`;
    if (this.pvs.get(name)) return; // provisioned; the binder has yet to bind it
    const path = join(this.volumesDir, name);
    if (cloneOf || restoreOf) {
      const source = cloneOf
        ? this.cloneSource(pvc, cloneOf)
        : ((await this.snapshotter?.restoreSource(pvc)) ?? { problem: 'this node agent does not take snapshots' });
      if ('problem' in source) {
        // The claim stays Pending; a change of its source brings it back here.
        await this.claimEvent(
          pvc,
          'Warning',
          'ProvisioningFailed',
          `failed to provision volume with StorageClass "${sc.metadata.name}": ${source.problem}`,
        );
        return;
      }
      // The storage's own copy, as a CSI driver clones or restores a volume.
      await copyVolumeTree(source.path, path);
    } else {
      mkdirSync(path, { recursive: true });
      chmodSync(path, 0o777);
    }
    const pv = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name, annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER } },
      spec: {
        capacity: { storage: pvc.spec.resources?.requests?.storage ?? '1Gi' },
        accessModes: pvc.spec.accessModes ?? ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: sc.reclaimPolicy ?? 'Delete',
        storageClassName: pvc.spec.storageClassName,
        volumeMode: pvc.spec.volumeMode ?? 'Filesystem',
        hostPath: { path, type: 'DirectoryOrCreate' },
        claimRef: {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          namespace: pvc.metadata.namespace,
          name: pvc.metadata.name,
          uid: pvc.metadata.uid,
        },
        nodeAffinity: {
          required: {
            nodeSelectorTerms: [
              {
                matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [this.nodeLabels['kubernetes.io/hostname']] }],
              },
            ],
          },
        },
      },
    };
    try {
      await this.client.create(PersistentVolumes, pv as KubeObject);
      this.log(
        `provisioned ${name} for ${key}${cloneOf ? ` as a clone of ${cloneOf.name}` : restoreOf ? ` from snapshot ${restoreOf.name}` : ''}`,
      );
      await this.claimEvent(pvc, 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${name}`);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
  }

  /** The source volume's directory for a clone, as the external-provisioner checks a claim data source; or why the clone must wait. */
  private cloneSource(pvc: Obj, ref: { name: string; namespace?: string }): { path: string } | { problem: string } {
    const ns = pvc.metadata.namespace!;
    if (ref.namespace && ref.namespace !== ns)
      return { problem: `cross-namespace data sources are not supported (${ref.namespace}/${ref.name})` };
    const source = this.pvcs.get(`${ns}/${ref.name}`);
    if (!source) return { problem: `source persistentvolumeclaim "${ref.name}" not found` };
    if (source.metadata.deletionTimestamp) return { problem: `source persistentvolumeclaim "${ref.name}" is being deleted` };
    const pv = source.spec.volumeName ? this.pvs.get(source.spec.volumeName) : undefined;
    if (source.status?.phase !== 'Bound' || !pv)
      return { problem: `source persistentvolumeclaim "${ref.name}" is not bound to a volume yet` };
    if (pv.metadata.annotations?.['pv.kubernetes.io/provisioned-by'] !== PROVISIONER || !pv.spec.hostPath?.path)
      return { problem: `the volume of source persistentvolumeclaim "${ref.name}" is not one of driver ${PROVISIONER}` };
    const mode = pvc.spec.volumeMode ?? 'Filesystem';
    if ((source.spec.volumeMode ?? 'Filesystem') !== mode)
      return {
        problem: `source persistentvolumeclaim "${ref.name}" has volume mode ${source.spec.volumeMode}; the claim asks for ${mode}`,
      };
    const requested = quantityBytes(pvc.spec.resources?.requests?.storage ?? '0');
    const sourceSize = quantityBytes(source.status?.capacity?.storage ?? pv.spec.capacity?.storage ?? '0');
    if (requested < sourceSize)
      return {
        problem: `requested volume size ${requested} is less than the size ${sourceSize} of source persistentvolumeclaim "${ref.name}"`,
      };
    return { path: pv.spec.hostPath.path };
  }

  /** Queues the agent's pending claims in a namespace whose data source matches. */
  private pendingClaimsFrom(namespace: string, matches: (pvc: Obj) => boolean): void {
    for (const p of this.pvcs.list()) {
      if (p.metadata.namespace === namespace && !p.spec?.volumeName && matches(p))
        this.volumeQueue.add(`pvc/${namespace}/${p.metadata.name}`);
    }
  }

  private claimEvent(pvc: Obj, type: EventType, reason: string, message: string): Promise<void> {
    return this.events.record({ ...pvc, apiVersion: 'v1', kind: 'PersistentVolumeClaim' }, type, reason, message);
  }

  // ---- scheduler and kubelet -------------------------------------------------------

  private async syncPod(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const pod = this.pods.get(key);
    if (!pod) {
      // Removed without waiting for this node (a forced deletion): its containers still end.
      for (const r of this.running.values()) if (r.key === key) this.terminate(r, 0);
      return;
    }
    const uid = pod.metadata.uid!;
    if (pod.metadata.deletionTimestamp) {
      const r = this.running.get(uid);
      if (r) {
        const grace: number | undefined = (pod.metadata as any).deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds;
        this.terminate(r, grace ?? DEFAULT_GRACE_SECONDS);
        // The pod's end queues it again; this only guards against a missed one.
        return { requeueAfterMs: 1000 };
      }
      // What the kubelet does once containers are gone: finish the graceful deletion.
      if (!pod.spec.nodeName || pod.spec.nodeName === this.nodeName) {
        await this.client.delete(Pods, pod.metadata.namespace, pod.metadata.name!, { gracePeriodSeconds: 0, uid });
      }
      return;
    }
    if (!pod.spec.nodeName) return this.opts.scheduler === false ? undefined : this.schedule(pod);
    if (pod.spec.nodeName !== this.nodeName) return;
    if (this.running.has(uid) || this.finished.has(uid)) return;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') {
      this.finished.add(uid);
      return;
    }
    if (pod.status?.phase === 'Running') {
      // Running without a process here: the agent restarted underneath it.
      this.finished.add(uid);
      await this.setPodStatus(pod, {
        phase: 'Failed',
        reason: 'NodeAgentRestarted',
        message: 'the node agent restarted while the pod ran',
      });
      return;
    }
    // The pod runs beside the queue, not in it: a pod that runs for hours must hold neither
    // its own key (its deletion must be seen) nor one of the queue's workers.
    const state: RunningPod = { key, children: new Set(), killed: false };
    this.running.set(uid, state);
    void this.runPod(pod, state)
      .catch((e) => {
        this.log(`${key}: ${e instanceof Error ? e.message : String(e)}`);
        this.podQueue.addAfter(key, 1000);
      })
      .finally(() => {
        clearTimeout(state.killTimer);
        this.running.delete(uid);
        // A deleted pod's containers have ended: finish its deletion now.
        if (state.killed) this.podQueue.add(key);
      });
  }

  /**
   * What the kubelet does to a deleted pod's containers: SIGTERM to each now, SIGKILL to what
   * is left once the grace period has passed. A later, shorter grace period (a second delete)
   * brings the SIGKILL forward.
   */
  private terminate(r: RunningPod, graceSeconds: number): void {
    const since = (r.terminatingSince ??= Date.now());
    const killAt = since + graceSeconds * 1000;
    if (!r.killed) {
      r.killed = true;
      r.wake?.();
      this.log(`${r.key}: deleted; SIGTERM to its containers, SIGKILL in ${graceSeconds} s`);
      for (const c of r.children) signalContainer(c, 'SIGTERM');
    }
    if (r.killAt !== undefined && r.killAt <= killAt) return;
    clearTimeout(r.killTimer);
    r.killAt = killAt;
    r.killTimer = setTimeout(
      () => {
        if (r.children.size) this.log(`${r.key}: grace period over; SIGKILL to its containers`);
        for (const c of r.children) signalContainer(c, 'SIGKILL');
      },
      Math.max(0, killAt - Date.now()),
    );
  }

  private async schedule(pod: Obj): Promise<{ requeueAfterMs?: number } | void> {
    // The only node this scheduler knows is its own: a pod pinned elsewhere waits, as kube-scheduler leaves it.
    if (!podFitsNode(pod, { name: this.nodeName, labels: this.nodeLabels }))
      return this.unschedulable(pod, "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.");
    for (const vol of pod.spec.volumes ?? []) {
      if (!vol.persistentVolumeClaim) continue;
      const claimKey = `${pod.metadata.namespace}/${vol.persistentVolumeClaim.claimName}`;
      const pvc = this.pvcs.get(claimKey);
      if (!pvc) return this.unschedulable(pod, `persistentvolumeclaim "${vol.persistentVolumeClaim.claimName}" not found`);
      if (pvc.status?.phase === 'Bound') continue;
      const ann = pvc.metadata.annotations ?? {};
      const sc = pvc.spec.storageClassName
        ? await this.client.getOrUndefined<Obj>(StorageClasses, undefined, pvc.spec.storageClassName)
        : undefined;
      if (sc?.volumeBindingMode === 'WaitForFirstConsumer' && !ann[SELECTED_NODE] && !pvc.spec.volumeName) {
        await this.client.patch(PersistentVolumeClaims, pvc.metadata.namespace, pvc.metadata.name!, {
          metadata: { annotations: { [SELECTED_NODE]: this.nodeName } },
        });
      }
      return this.unschedulable(pod, `waiting for persistentvolumeclaim "${vol.persistentVolumeClaim.claimName}" to bind`);
    }
    await this.client.request('POST', `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/binding`, {
      body: {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name: pod.metadata.name },
        target: { apiVersion: 'v1', kind: 'Node', name: this.nodeName },
      },
    });
  }

  private async unschedulable(pod: Obj, message: string): Promise<{ requeueAfterMs: number }> {
    const current = (pod.status?.conditions ?? []).find((c: any) => c.type === 'PodScheduled');
    if (current?.message !== message) {
      await this.client.patch(
        Pods,
        pod.metadata.namespace,
        pod.metadata.name!,
        {
          status: { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: now() }] },
        },
        'strategic',
        'status',
      );
    }
    return { requeueAfterMs: 1000 };
  }

  private async setPodStatus(pod: Obj, status: Record<string, unknown>): Promise<void> {
    await this.client.patch(Pods, pod.metadata.namespace, pod.metadata.name!, { status }, 'strategic', 'status');
  }

  private async secretOrConfigMap(
    kind: 'secret' | 'configMap',
    namespace: string,
    name: string,
  ): Promise<Record<string, Buffer> | undefined> {
    const obj = await this.client.getOrUndefined<Obj>(kind === 'secret' ? Secrets : ConfigMaps, namespace, name);
    if (!obj) return undefined;
    const out: Record<string, Buffer> = {};
    const data = (obj as any).data ?? {};
    for (const [k, v] of Object.entries(data)) out[k] = kind === 'secret' ? Buffer.from(String(v), 'base64') : Buffer.from(String(v));
    for (const [k, v] of Object.entries((obj as any).binaryData ?? {})) out[k] = Buffer.from(String(v), 'base64');
    return out;
  }

  /** Host directories for the pod's volumes; throws a message for the pod when one cannot be set up. */
  private async prepareVolumes(pod: Obj, podDir: string): Promise<Map<string, string>> {
    const fsGroup: number | undefined = pod.spec.securityContext?.fsGroup;
    const paths = new Map<string, string>();
    for (const vol of pod.spec.volumes ?? []) {
      let path: string;
      if (vol.persistentVolumeClaim) {
        const pvc = this.pvcs.get(`${pod.metadata.namespace}/${vol.persistentVolumeClaim.claimName}`);
        const pv = pvc?.spec.volumeName ? this.pvs.get(pvc.spec.volumeName) : undefined;
        path = pv?.spec.hostPath?.path ?? pv?.spec.local?.path;
        if (!path) throw new Error(`volume ${vol.name}: claim ${vol.persistentVolumeClaim.claimName} has no host-path volume`);
        mkdirSync(path, { recursive: true });
        // As the kubelet's CSI mounter: a read-only volume's ownership is left alone.
        if (fsGroup !== undefined && !vol.persistentVolumeClaim.readOnly) this.applyFsGroup(path, fsGroup);
      } else if (vol.emptyDir) {
        path = join(podDir, 'volumes', vol.name);
        mkdirSync(path, { recursive: true });
        chmodSync(path, 0o777);
        if (fsGroup !== undefined) this.applyFsGroup(path, fsGroup);
      } else if (vol.secret || vol.configMap || vol.projected) {
        path = join(podDir, 'volumes', vol.name);
        mkdirSync(path, { recursive: true });
        chmodSync(path, 0o755);
        const sources: any[] = vol.projected
          ? (vol.projected.sources ?? [])
          : [vol.secret ? { secret: vol.secret } : { configMap: vol.configMap }];
        const defaultMode: number = (vol.projected ?? vol.secret ?? vol.configMap).defaultMode ?? 0o644;
        for (const source of sources) {
          if (!source.secret && !source.configMap) continue; // tokens and downward API: not provided here
          const kind = source.secret ? 'secret' : 'configMap';
          const src = source.secret ?? source.configMap;
          const name = src.secretName ?? src.name;
          const data = await this.secretOrConfigMap(kind, pod.metadata.namespace!, name);
          if (!data && !src.optional) throw new Error(`volume ${vol.name}: ${kind} "${name}" not found`);
          const items: { key: string; path: string; mode?: number }[] =
            src.items ?? Object.keys(data ?? {}).map((k) => ({ key: k, path: k }));
          for (const item of items) {
            if (!data?.[item.key]) {
              if (src.items && !src.optional) throw new Error(`volume ${vol.name}: ${kind} "${name}" has no key ${item.key}`);
              continue;
            }
            const file = join(path, item.path);
            mkdirSync(join(file, '..'), { recursive: true });
            writeFileSync(file, data[item.key]);
            chmodSync(file, item.mode ?? defaultMode);
            if (fsGroup !== undefined) chownSync(file, 0, fsGroup);
          }
        }
      } else if (vol.hostPath) {
        path = vol.hostPath.path;
      } else {
        throw new Error(`volume ${vol.name}: this volume type is not supported by the node agent`);
      }
      paths.set(vol.name, path);
    }
    return paths;
  }

  /** What the kubelet does for fsGroup: group-own the volume and make it group-writable. */
  private applyFsGroup(path: string, gid: number): void {
    const walk = (p: string) => {
      const st = lstatSync(p);
      if (st.isSymbolicLink()) return;
      chownSync(p, st.uid, gid);
      chmodSync(p, (st.mode & 0o7777) | (st.isDirectory() ? 0o2070 : 0o060));
      if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    };
    walk(path);
  }

  private async resolveEnv(pod: Obj, container: any): Promise<Record<string, string>> {
    const env: Record<string, string> = {
      PATH: `${CONTAINER_TOOLS_DIR}:/usr/local/bin:/usr/bin:/bin`,
      HOME: '/tmp',
      HOSTNAME: pod.metadata.name!,
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
    };
    const ns = pod.metadata.namespace!;
    for (const from of container.envFrom ?? []) {
      const kind = from.secretRef ? 'secret' : 'configMap';
      const ref = from.secretRef ?? from.configMapRef;
      const data = await this.secretOrConfigMap(kind, ns, ref.name);
      if (!data) {
        if (ref.optional) continue;
        throw new Error(`${kind} "${ref.name}" not found`);
      }
      for (const [k, v] of Object.entries(data)) env[`${from.prefix ?? ''}${k}`] = v.toString('utf8');
    }
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v) => env[v] ?? m);
      else if (e.valueFrom?.secretKeyRef || e.valueFrom?.configMapKeyRef) {
        const kind = e.valueFrom.secretKeyRef ? 'secret' : 'configMap';
        const ref = e.valueFrom.secretKeyRef ?? e.valueFrom.configMapKeyRef;
        const data = await this.secretOrConfigMap(kind, ns, ref.name);
        const value = data?.[ref.key];
        if (value === undefined) {
          if (ref.optional) continue;
          throw new Error(`couldn't find key ${ref.key} in ${kind} ${ns}/${ref.name}`);
        }
        env[e.name] = value.toString('utf8');
      } else if (e.valueFrom?.fieldRef) {
        const fields: Record<string, string | undefined> = {
          'metadata.name': pod.metadata.name,
          'metadata.namespace': ns,
          'metadata.uid': pod.metadata.uid,
          'spec.nodeName': this.nodeName,
          'spec.serviceAccountName': pod.spec.serviceAccountName,
          'status.podIP': '127.0.0.1',
          'status.hostIP': '127.0.0.1',
        };
        env[e.name] = fields[e.valueFrom.fieldRef.fieldPath] ?? '';
      }
    }
    return env;
  }

  private async runPod(pod: Obj, state: RunningPod): Promise<void> {
    const uid = pod.metadata.uid!;
    const containers: any[] = [...(pod.spec.initContainers ?? []).map((c: any) => ({ ...c, init: true })), ...pod.spec.containers];
    const refused = containers.find((c) => !this.images.has(imageName(c.image)));
    const nonRoot = containers.find((c) => ({ ...pod.spec.securityContext, ...c.securityContext }).runAsUser > 0);
    if (nonRoot && this.imageProblem) {
      // Running it as root instead would make every runAsUser test pass without meaning.
      this.finished.add(uid);
      await this.setPodStatus(pod, {
        phase: 'Failed',
        reason: 'ImageNotReadable',
        message: `container ${nonRoot.name} runs as a non-root user, who cannot read the image's code: ${this.imageProblem}`,
        startTime: now(),
      });
      return;
    }
    if (refused) {
      this.finished.add(uid);
      await this.setPodStatus(pod, {
        phase: 'Failed',
        reason: 'ImageNotSupported',
        message: `the node agent runs only ${[...this.images].join(', ')} images; container ${refused.name} uses ${refused.image}`,
        startTime: now(),
      });
      return;
    }
    const privileges = new Map<string, string[]>();
    try {
      for (const c of containers)
        privileges.set(c.name, setprivOptions({ ...pod.spec.securityContext, ...c.securityContext }, pod.spec.securityContext?.fsGroup));
    } catch (e) {
      // As the runtime refuses to create the container: the pod waits, and its spec cannot change.
      this.finished.add(uid);
      await this.setPodStatus(pod, {
        phase: 'Pending',
        containerStatuses: pod.spec.containers.map((c: any) => ({
          name: c.name,
          image: c.image,
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: 'CreateContainerError', message: (e as Error).message } },
        })),
      });
      return;
    }
    const podDir = join(this.opts.dataDir, 'pods', uid);
    mkdirSync(this.podLogDir(uid), { recursive: true });
    chmodSync(podDir, 0o755);
    let volumes: Map<string, string>;
    let envs: Record<string, string>[];
    try {
      volumes = await this.prepareVolumes(pod, podDir);
      envs = await Promise.all(containers.map((c) => this.resolveEnv(pod, c)));
    } catch (e) {
      // As the kubelet: the pod waits (and is retried) until its volumes and config exist.
      const message = e instanceof Error ? e.message : String(e);
      await this.setPodStatus(pod, {
        phase: 'Pending',
        containerStatuses: pod.spec.containers.map((c: any) => ({
          name: c.name,
          image: c.image,
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: 'CreateContainerConfigError', message } },
        })),
      });
      this.podQueue.addAfter(`${pod.metadata.namespace}/${pod.metadata.name}`, 1000);
      return;
    }
    const startTime = now();
    const statuses = new Map<string, any>();
    const initStatuses = new Map<string, any>();
    const writeStatus = (phase: string, extra: Record<string, unknown> = {}) =>
      this.setPodStatus(pod, {
        phase,
        startTime,
        hostIP: '127.0.0.1',
        podIP: '127.0.0.1',
        podIPs: [{ ip: '127.0.0.1' }],
        conditions: [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: startTime },
          { type: 'Initialized', status: 'True', lastTransitionTime: startTime },
          { type: 'ContainersReady', status: phase === 'Running' ? 'True' : 'False', lastTransitionTime: now() },
          { type: 'Ready', status: phase === 'Running' ? 'True' : 'False', lastTransitionTime: now() },
        ],
        initContainerStatuses: initStatuses.size ? [...initStatuses.values()] : undefined,
        containerStatuses: [...statuses.values()],
        ...extra,
      });
    try {
      const runOne = async (c: any, env: Record<string, string>): Promise<number> => {
        const target = c.init ? initStatuses : statuses;
        let restarts = 0;
        let code = 1;
        for (;;) {
          // Deleted before it (re)started: it does not start.
          if (state.killed) return code;
          const startedAt = now();
          target.set(c.name, {
            name: c.name,
            image: c.image,
            imageID: `local://${c.image}`,
            containerID: `local://${uid}/${c.name}`,
            ready: !c.init,
            started: true,
            restartCount: restarts,
            state: { running: { startedAt } },
          });
          if (!c.init) await writeStatus('Running');
          const ended = await this.runContainer(pod, c, privileges.get(c.name)!, env, volumes, podDir, state);
          code = ended.code;
          target.set(c.name, {
            ...target.get(c.name),
            ready: false,
            started: false,
            state: {
              terminated: {
                exitCode: code,
                reason: code === 0 ? 'Completed' : 'Error',
                message: ended.message || undefined,
                startedAt,
                finishedAt: now(),
                containerID: `local://${uid}/${c.name}`,
              },
            },
          });
          if (code === 0 || state.killed || pod.spec.restartPolicy !== 'OnFailure') return code;
          restarts++;
          await writeStatus('Running');
          await new Promise<void>((r) => {
            const timer = setTimeout(r, Math.min(10_000, 500 * 2 ** restarts));
            state.wake = () => {
              clearTimeout(timer);
              r();
            };
          });
        }
      };
      let failed = false;
      for (let i = 0; i < containers.length && !failed; i++) {
        if (!containers[i].init) break;
        failed = (await runOne(containers[i], envs[i])) !== 0;
      }
      if (!failed) {
        const codes = await Promise.all(containers.map((c, i) => (c.init ? Promise.resolve(0) : runOne(c, envs[i]))));
        failed = codes.some((c) => c !== 0);
      }
      this.finished.add(uid);
      // A deleted pod too ends in a terminal phase, from its containers' exit codes, as the
      // kubelet reports it before the pod object goes.
      if (!this.stopping) await writeStatus(failed ? 'Failed' : 'Succeeded');
    } finally {
      state.wake = undefined;
    }
  }

  /** Runs one container as a local process in a private mount namespace; returns exit code and termination message. */
  private runContainer(
    pod: Obj,
    c: any,
    privileges: string[],
    env: Record<string, string>,
    volumes: Map<string, string>,
    podDir: string,
    state: RunningPod,
  ): Promise<{ code: number; message: string }> {
    const uid = pod.metadata.uid!;
    const argv: string[] = c.command?.length ? [...c.command, ...(c.args ?? [])] : [...this.opts.imageEntrypoint, ...(c.args ?? [])];
    const termFile = join(podDir, `${c.name}.termination-log`);
    writeFileSync(termFile, '');
    chmodSync(termFile, 0o666);
    const lines = ['set -e'];
    const mountEnv: Record<string, string> = {};
    const termPath = c.terminationMessagePath ?? '/dev/termination-log';
    const binds: { src: string; dst: string; readOnly: boolean; file: boolean }[] = [
      { src: termFile, dst: termPath, readOnly: false, file: true },
      // The tools live under the agent's data dir, which a pod's /tmp mount could hide.
      { src: this.toolsDir, dst: CONTAINER_TOOLS_DIR, readOnly: true, file: false },
      // So is the image's own code, wherever the checkout lives.
      { src: this.opts.imageRoot, dst: CONTAINER_IMAGE_DIR, readOnly: true, file: false },
    ];
    for (const m of c.volumeMounts ?? []) {
      const host = volumes.get(m.name);
      if (!host) continue;
      const src = m.subPath ? join(host, m.subPath) : host;
      if (m.subPath) mkdirSync(src, { recursive: true });
      binds.push({ src, dst: m.mountPath, readOnly: !!m.readOnly, file: false });
    }
    // A mount over /tmp would hide sources that live under /tmp: mount those shadowing
    // others' sources last.
    const shadows = (b: { dst: string }) => binds.filter((o) => o.src === b.dst || o.src.startsWith(`${b.dst.replace(/\/$/, '')}/`)).length;
    binds.sort((a, b) => shadows(a) - shadows(b));
    binds.forEach((b, i) => {
      mountEnv[`__KO_SRC${i}`] = b.src;
      mountEnv[`__KO_DST${i}`] = b.dst;
      lines.push(
        b.file ? `[ -e "$__KO_DST${i}" ] || touch "$__KO_DST${i}"` : `mkdir -p "$__KO_DST${i}"`,
        `mount --bind "$__KO_SRC${i}" "$__KO_DST${i}"`,
      );
      if (b.readOnly) lines.push(`mount -o remount,bind,ro "$__KO_DST${i}"`);
    });
    lines.push(`unset ${Object.keys(mountEnv).join(' ')}`);
    // The image's working directory is /; the agent's own (maybe under a mounted-over /tmp) must not leak in.
    lines.push(`cd "${(c.workingDir ?? '/').replace(/"/g, '')}"`);
    // The mounts above need the agent's privileges; the program gets only the container's.
    lines.push(privileges.length ? `exec setpriv ${privileges.join(' ')} -- "$@"` : 'exec "$@"');
    const logFile = join(this.podLogDir(uid), `${c.name}.log`);
    const log = openSync(logFile, 'a');
    return new Promise((resolve) => {
      const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', lines.join('\n'), 'container', ...argv], {
        env: { ...env, ...mountEnv },
        stdio: ['ignore', log, log],
        // Its own process group (unshare, sh and setpriv exec the program in place): the
        // container's processes are signalled together, as a runtime signals a container.
        detached: true,
      });
      closeSync(log);
      state.children.add(child);
      // Deleted while it was being started: it gets the SIGTERM the others got.
      if (state.killed) signalContainer(child, 'SIGTERM');
      child.on('error', (e) => {
        state.children.delete(child);
        resolve({ code: 128, message: `cannot start container: ${e.message}` });
      });
      child.on('exit', (code, signal) => {
        state.children.delete(child);
        // Its main process ended: so does the container, whatever it left running.
        signalContainer(child, 'SIGKILL');
        const exitCode = code ?? (signal ? 128 + constants.signals[signal] : 1);
        let message = readFileSync(termFile, 'utf8').slice(0, 4096);
        if (!message && exitCode !== 0 && c.terminationMessagePolicy === 'FallbackToLogsOnError') {
          message = readFileSync(logFile, 'utf8').split('\n').slice(-80).join('\n').slice(-2048);
        }
        resolve({ code: exitCode, message });
      });
    });
  }
}
