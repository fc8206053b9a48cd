// Builds mover Jobs. Pure: the same inputs give the same Job (no timestamps, no random
// names), so a re-applied Job is unchanged and a spec hash tells when it is stale.
import { createHash } from 'node:crypto';
import type { FilesystemBackend, MoverOptions } from '../../generated/types.js';
import type { KubeObject, OwnerReference } from '../kube/kube-client.js';
import { MOVER_PATHS, MOVER_REQUEST_ENV, type MoverRequest } from '../mover/mover-contract.js';
import { DEFAULT_MOVER_ID } from './mover-privileges.js';
import type { SecretKeyUse } from './repository-access.js';

export const LABELS = {
  name: 'app.kubernetes.io/name',
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'app.kubernetes.io/component',
  operation: 'kopia.io/operation',
  ownerKind: 'kopia.io/owner-kind',
  ownerName: 'kopia.io/owner-name',
  ownerNamespace: 'kopia.io/owner-namespace',
} as const;
export const SPEC_HASH_ANNOTATION = 'kopia.io/spec-hash';
export const MANAGED_BY = 'kopia-operator';
export const MOVER_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY},${LABELS.component}=mover`;

export function shortHash(text: string, length = 8): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** A DNS-label name from prefix and name; long names are cut and made unique with a hash. */
export function boundedName(prefix: string, name: string, max = 63): string {
  const full = `${prefix}-${name}`;
  if (full.length <= max) return full;
  return `${full.slice(0, max - 9).replace(/[-.]+$/, '')}-${shortHash(full)}`;
}

/** A label value (at most 63 characters); long values become a hash. */
export function labelValue(value: string): string {
  return value.length <= 63 ? value : `h-${shortHash(value, 16)}`;
}

export interface MoverJobInput {
  name: string;
  namespace: string;
  owner: OwnerReference;
  /** Owner identity for labels, so Jobs and Pods map back to their owner without an index. */
  ownerLabels: { kind: string; name: string; namespace?: string };
  image: string;
  request: MoverRequest;
  secrets: SecretKeyUse[];
  filesystem?: FilesystemBackend;
  mover?: MoverOptions;
  activeDeadlineSeconds: number;
  /**
   * The claim holding the data (backup: read-only source; restore: target). It is mounted at
   * MOVER_PATHS.data and nowhere else: a path from a tenant's object could stand over the mover's code.
   */
  data?: { claimName: string; readOnly: boolean };
  /** Run on this node (a ReadWriteOnce claim in use is reachable only there). */
  nodeName?: string;
  /** A claim that keeps kopia's cache between runs (mover.cache.storageClassName); else an emptyDir. */
  cacheClaim?: string;
  /** Capabilities beyond none (a root restore giving files their owners back: CHOWN, FOWNER, DAC_OVERRIDE). */
  addCapabilities?: string[];
}

function repositoryVolume(fs: FilesystemBackend): Record<string, unknown> {
  const v = fs.volume;
  if (v.persistentVolumeClaim) return { persistentVolumeClaim: { claimName: v.persistentVolumeClaim.claimName } };
  if (v.nfs) return { nfs: { server: v.nfs.server, path: v.nfs.path } };
  if (v.hostPath) return { hostPath: { path: v.hostPath.path, type: 'Directory' } };
  throw new Error('filesystem backend has no volume');
}

function secretsVolume(uses: SecretKeyUse[]): Record<string, unknown> | undefined {
  const files = uses.filter((u) => 'file' in u.as);
  if (files.length === 0) return undefined;
  const bySecret = new Map<string, { key: string; path: string }[]>();
  for (const u of files) {
    const items = bySecret.get(u.secret.name) ?? [];
    items.push({ key: u.key, path: (u.as as { file: string }).file });
    bySecret.set(u.secret.name, items);
  }
  return {
    projected: {
      defaultMode: 0o440,
      sources: [...bySecret.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, items]) => ({ secret: { name, items } })),
    },
  };
}

export function buildMoverJob(input: MoverJobInput): KubeObject {
  const sc = input.mover?.securityContext ?? {};
  const uid = sc.runAsUser ?? DEFAULT_MOVER_ID;
  const gid = sc.runAsGroup ?? DEFAULT_MOVER_ID;
  const fsGroup = sc.fsGroup ?? DEFAULT_MOVER_ID;
  const labels: Record<string, string> = {
    [LABELS.name]: 'kopia-operator',
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.component]: 'mover',
    [LABELS.operation]: input.request.operation,
    [LABELS.ownerKind]: input.ownerLabels.kind,
    [LABELS.ownerName]: labelValue(input.ownerLabels.name),
    ...(input.ownerLabels.namespace ? { [LABELS.ownerNamespace]: input.ownerLabels.namespace } : {}),
  };
  const env: Record<string, unknown>[] = [
    { name: MOVER_REQUEST_ENV, value: JSON.stringify(input.request) },
    { name: 'KOPIA_CHECK_FOR_UPDATES', value: 'false' },
    { name: 'HOME', value: MOVER_PATHS.scratch },
    ...input.secrets
      .filter((u) => 'env' in u.as)
      .map((u) => ({
        name: (u.as as { env: string }).env,
        valueFrom: { secretKeyRef: { name: u.secret.name, key: u.key, ...(u.optional ? { optional: true } : {}) } },
      })),
  ];
  const volumes: Record<string, unknown>[] = [
    { name: 'scratch', emptyDir: {} },
    input.cacheClaim
      ? { name: 'cache', persistentVolumeClaim: { claimName: input.cacheClaim } }
      : { name: 'cache', emptyDir: input.mover?.cache?.capacity ? { sizeLimit: input.mover.cache.capacity } : {} },
    { name: 'tmp', emptyDir: {} },
  ];
  const mounts: Record<string, unknown>[] = [
    { name: 'scratch', mountPath: MOVER_PATHS.scratch },
    { name: 'cache', mountPath: MOVER_PATHS.cache },
    { name: 'tmp', mountPath: '/tmp' },
  ];
  const secretVol = secretsVolume(input.secrets);
  if (secretVol) {
    volumes.push({ name: 'secrets', ...secretVol });
    mounts.push({ name: 'secrets', mountPath: MOVER_PATHS.secrets, readOnly: true });
  }
  if (input.filesystem) {
    volumes.push({ name: 'repository', ...repositoryVolume(input.filesystem) });
    mounts.push({ name: 'repository', mountPath: MOVER_PATHS.repository });
  }
  if (input.data) {
    volumes.push({ name: 'data', persistentVolumeClaim: { claimName: input.data.claimName, readOnly: input.data.readOnly } });
    mounts.push({ name: 'data', mountPath: MOVER_PATHS.data, readOnly: input.data.readOnly });
  }
  const nodeSelector = { ...input.mover?.nodeSelector };
  // Pinned by the node's name: its kubernetes.io/hostname label differs from the name on many clusters.
  const affinity = input.nodeName
    ? {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [input.nodeName] }] }],
          },
        },
      }
    : undefined;
  const podSpec = {
    restartPolicy: 'Never',
    // A mover talks to the repository, never to the Kubernetes API: no token to steal.
    automountServiceAccountToken: false,
    securityContext: {
      runAsUser: uid,
      runAsGroup: gid,
      fsGroup,
      ...(uid !== 0 ? { runAsNonRoot: true } : {}),
      seccompProfile: { type: 'RuntimeDefault' },
    },
    ...(Object.keys(nodeSelector).length ? { nodeSelector } : {}),
    ...(affinity ? { affinity } : {}),
    ...(input.mover?.priorityClassName ? { priorityClassName: input.mover.priorityClassName } : {}),
    containers: [
      {
        name: 'mover',
        image: input.image,
        imagePullPolicy: 'IfNotPresent',
        env,
        volumeMounts: mounts,
        resources: input.mover?.resources ?? { requests: { cpu: '100m', memory: '128Mi' } },
        terminationMessagePolicy: 'FallbackToLogsOnError',
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'], ...(input.addCapabilities?.length ? { add: input.addCapabilities } : {}) },
        },
      },
    ],
    volumes,
  };
  const specHash = shortHash(JSON.stringify({ podSpec, deadline: input.activeDeadlineSeconds }), 16);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: input.name,
      namespace: input.namespace,
      labels,
      annotations: { [SPEC_HASH_ANNOTATION]: specHash },
      ownerReferences: [input.owner],
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: input.activeDeadlineSeconds,
      ttlSecondsAfterFinished: 86400,
      template: { metadata: { labels }, spec: podSpec },
    },
  };
}
