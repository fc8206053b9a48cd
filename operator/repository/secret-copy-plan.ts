// Where copies of a ClusterRepository's keys may be (secret-copy.ts): in the operator's own
// namespace (verification, repository-wide Jobs), and in a tenant namespace only while that
// namespace is allowed and something in it still names the repository — a consumer:
// - a BackupConfig whose spec.repository names it (its Backups' Jobs read the copy);
// - a Backup that may still run a Job (not finished, not a mirrored snapshot) recorded against it;
// - a Restore whose source names it (a snapshot source, its BackupConfig's, its Backup's) or
//   whose answers do (status.resolved, status.claims), unless it restored into a claim already;
// (A Maintenance is none: a ClusterRepository is maintained from the operator's namespace
// only, which keeps its copy anyway; a tenant's Maintenance of it runs nothing.)
// Every other copy is deleted: a namespace that left allowedNamespaces keeps no key of it. Pure.
import type { AllowedNamespaces, RepositoryReference } from '../../generated/types.js';
import type { KubeObject } from '../kube/kube-client.js';
import { isNamespaceAllowed } from './tenancy.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- consumers are read structurally */
type Obj = KubeObject & { spec?: any; status?: any };

export interface ConsumerObjects {
  configs: Obj[];
  backups: Obj[];
  restores: Obj[];
  maintenances: Obj[];
}

const clusterRepositoryName = (ref: RepositoryReference | undefined): string[] =>
  ref?.kind === 'ClusterRepository' && ref.name ? [ref.name] : [];

/** The ClusterRepositories one object names, as a consumer (see above). */
export function clusterRepositoriesNamedBy(
  kind: 'BackupConfig' | 'Backup' | 'Restore' | 'Maintenance',
  obj: Obj,
  lookup: {
    configRepository(namespace: string, name: string): RepositoryReference | undefined;
    backupRepository(namespace: string, name: string): RepositoryReference | undefined;
  },
  /** Also when it has finished (to wake the repository as it finishes: it may have been the last consumer). */
  evenFinished = false,
): string[] {
  const ns = obj.metadata.namespace!;
  switch (kind) {
    case 'BackupConfig':
      return clusterRepositoryName(obj.spec?.repository);
    case 'Maintenance':
      return []; // only the operator's namespace maintains a ClusterRepository, and it always keeps its copy
    case 'Backup': {
      const finished = !evenFinished && (obj.status?.phase === 'Succeeded' || obj.status?.phase === 'Failed');
      return obj.spec?.snapshot || finished ? [] : clusterRepositoryName(obj.status?.repository);
    }
    case 'Restore': {
      // A restore into an existing claim that has ended runs nothing more; a populator Restore may answer a new claim.
      const ended = obj.status?.phase === 'Completed' || obj.status?.phase === 'Failed';
      if (obj.spec?.target?.pvc && ended && !evenFinished) return [];
      const source = obj.spec?.source ?? {};
      const refs: (RepositoryReference | undefined)[] = [
        source.snapshot?.repository,
        source.fromConfig ? lookup.configRepository(ns, source.fromConfig.name) : undefined,
        source.backupRef ? lookup.backupRepository(ns, source.backupRef.name) : undefined,
        obj.status?.resolved?.repository,
        ...(obj.status?.claims ?? []).map((c: { repository?: RepositoryReference }) => c.repository),
      ];
      return [...new Set(refs.flatMap(clusterRepositoryName))];
    }
  }
}

export type ConsumerLookup = Parameters<typeof clusterRepositoriesNamedBy>[2];

/** Namespace → the ClusterRepositories something there names (lookup: by key from a cache; default: a scan). */
export function consumersByNamespace(objects: ConsumerObjects, lookup?: ConsumerLookup): Map<string, Set<string>> {
  lookup ??= {
    configRepository: (ns, name) => objects.configs.find((c) => c.metadata.namespace === ns && c.metadata.name === name)?.spec?.repository,
    backupRepository: (ns, name) =>
      objects.backups.find((b) => b.metadata.namespace === ns && b.metadata.name === name)?.status?.repository,
  };
  const byNamespace = new Map<string, Set<string>>();
  const add = (kind: Parameters<typeof clusterRepositoriesNamedBy>[0], list: Obj[]) => {
    for (const obj of list) {
      if (obj.metadata.deletionTimestamp) continue;
      for (const name of clusterRepositoriesNamedBy(kind, obj, lookup!)) {
        const ns = obj.metadata.namespace!;
        if (!byNamespace.has(ns)) byNamespace.set(ns, new Set());
        byNamespace.get(ns)!.add(name);
      }
    }
  };
  add('BackupConfig', objects.configs);
  add('Backup', objects.backups);
  add('Restore', objects.restores);
  add('Maintenance', objects.maintenances);
  return byNamespace;
}

export type CopyDecision = { namespace: string; keep: true } | { namespace: string; keep: false; why: string };

/** For each namespace that holds a copy of the repository's keys: keep it (refreshed), or delete it and why. */
export function planSecretCopies(input: {
  repository: string;
  allowed: AllowedNamespaces;
  operatorNamespace: string;
  /** Namespaces that hold a copy now. */
  copies: string[];
  namespaceLabels: (namespace: string) => Record<string, string> | undefined;
  consumers: Map<string, Set<string>>;
}): CopyDecision[] {
  return input.copies.map((namespace): CopyDecision => {
    if (namespace === input.operatorNamespace) return { namespace, keep: true };
    const labels = input.namespaceLabels(namespace);
    if (!labels || !isNamespaceAllowed(input.allowed, namespace, labels))
      return { namespace, keep: false, why: `namespace ${namespace} is not in spec.allowedNamespaces` };
    if (!input.consumers.get(namespace)?.has(input.repository))
      return { namespace, keep: false, why: `nothing in namespace ${namespace} uses it any more` };
    return { namespace, keep: true };
  });
}
