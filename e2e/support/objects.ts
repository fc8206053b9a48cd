// Core objects for tests, the demo and the benchmarks, as factories with overrides.
import type { KubeObject } from '../../operator/kube/kube-client.js';
import { STORAGE_CLASS } from './node-agent.js';

export function claimObject(o: { name: string; namespace: string; storageClassName?: string; storage?: string }): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: o.name, namespace: o.namespace },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: o.storageClassName ?? STORAGE_CLASS,
      resources: { requests: { storage: o.storage ?? '1Gi' } },
    },
  };
}

export function secretObject(o: { name: string; namespace: string; stringData: Record<string, string> }): KubeObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: o.name, namespace: o.namespace }, stringData: o.stringData };
}

/** A filesystem Repository on a claim (or another volume), password in `<name>-password`. */
export function repositoryObject(o: {
  name: string;
  namespace: string;
  claimName?: string;
  volume?: Record<string, unknown>;
  create?: boolean;
  spec?: Record<string, unknown>;
}): KubeObject {
  return {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Repository',
    metadata: { name: o.name, namespace: o.namespace },
    spec: {
      backend: { filesystem: { path: '/', volume: o.volume ?? { persistentVolumeClaim: { claimName: o.claimName ?? o.name } } } },
      passwordSecretRef: { name: `${o.name}-password`, key: 'KOPIA_PASSWORD' },
      create: { enabled: o.create ?? true },
      ...o.spec,
    },
  };
}

/**
 * A filesystem ClusterRepository in a node directory (it outlives namespaces), created on
 * first verification, its password in `passwordSecret` (key KOPIA_PASSWORD) of `namespace`.
 */
export function clusterRepositoryObject(o: {
  name: string;
  nodeDir: string;
  namespace: string;
  passwordSecret: string;
  allowed: string[];
  spec?: Record<string, unknown>;
}): KubeObject {
  return {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'ClusterRepository',
    metadata: { name: o.name },
    spec: {
      backend: { filesystem: { path: '/', volume: { hostPath: { path: o.nodeDir } } } },
      passwordSecretRef: { name: o.passwordSecret, namespace: o.namespace, key: 'KOPIA_PASSWORD' },
      create: { enabled: true },
      allowedNamespaces: { names: o.allowed },
      ...o.spec,
    },
  } as KubeObject;
}
