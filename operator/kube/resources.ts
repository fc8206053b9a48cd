// The resource types the operator, populator and test world use, in one place.
import type { ResourceType } from './kube-client.js';

const core = (plural: string, namespaced = true): ResourceType => ({ group: '', version: 'v1', plural, namespaced });

export const Pods = core('pods');
export const Secrets = core('secrets');
export const ConfigMaps = core('configmaps');
export const Events = core('events');
export const Namespaces = core('namespaces', false);
export const Nodes = core('nodes', false);
export const PersistentVolumeClaims = core('persistentvolumeclaims');
export const PersistentVolumes = core('persistentvolumes', false);
export const ServiceAccounts = core('serviceaccounts');
export const Jobs: ResourceType = { group: 'batch', version: 'v1', plural: 'jobs', namespaced: true };
export const Leases: ResourceType = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespaced: true };
export const ClusterRoles: ResourceType = { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', namespaced: false };
export const ClusterRoleBindings: ResourceType = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  plural: 'clusterrolebindings',
  namespaced: false,
};
export const StorageClasses: ResourceType = { group: 'storage.k8s.io', version: 'v1', plural: 'storageclasses', namespaced: false };
export const VolumeSnapshots: ResourceType = {
  group: 'snapshot.storage.k8s.io',
  version: 'v1',
  plural: 'volumesnapshots',
  namespaced: true,
};
export const CustomResourceDefinitions: ResourceType = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  plural: 'customresourcedefinitions',
  namespaced: false,
};

const kopia = (plural: string, namespaced = true): ResourceType => ({ group: 'kopia.io', version: 'v1alpha1', plural, namespaced });
export const KopiaRepositories = kopia('repositories');
export const KopiaClusterRepositories = kopia('clusterrepositories', false);
export const KopiaBackupConfigs = kopia('backupconfigs');
export const KopiaBackupSchedules = kopia('backupschedules');
export const KopiaBackups = kopia('backups');
export const KopiaRestores = kopia('restores');
export const KopiaMaintenances = kopia('maintenances');

/** The kopia.io resource type of each kind. */
export const kopiaResourceOf: Record<string, ResourceType> = {
  Repository: KopiaRepositories,
  ClusterRepository: KopiaClusterRepositories,
  BackupConfig: KopiaBackupConfigs,
  BackupSchedule: KopiaBackupSchedules,
  Backup: KopiaBackups,
  Restore: KopiaRestores,
  Maintenance: KopiaMaintenances,
};
