// Registers the populator with the volume-data-source-validator: a VolumePopulator object
// naming kopia.io/Restore, so the validator does not call such claims' data source unknown.
// Only where its CRD is installed; without it claims are populated all the same.
import { isAlreadyExists, isNotFound, type KubeClient, type KubeObject, type ResourceType } from '../kube/kube-client.js';
import type { Logger } from '../runtime/logger.js';
import { DATA_SOURCE } from './populator-plan.js';

export const VolumePopulators: ResourceType = {
  group: 'populator.storage.k8s.io',
  version: 'v1beta1',
  plural: 'volumepopulators',
  namespaced: false,
};
export const VOLUME_POPULATOR_NAME = 'kopia-restore';

export type Registration = 'registered' | 'already registered' | 'no VolumePopulator API';

export async function registerVolumePopulator(client: KubeClient, log: Logger): Promise<Registration> {
  // Discovery rather than reading the CRD: every authenticated user may read it, so the
  // populator needs no permission on CustomResourceDefinitions.
  try {
    const api = await client.request<{ resources?: { name: string }[] }>(
      'GET',
      `/apis/${VolumePopulators.group}/${VolumePopulators.version}`,
    );
    if (!api.resources?.some((r) => r.name === VolumePopulators.plural)) return 'no VolumePopulator API';
  } catch (e) {
    if (isNotFound(e)) return 'no VolumePopulator API';
    throw e;
  }
  try {
    await client.create(VolumePopulators, {
      apiVersion: `${VolumePopulators.group}/${VolumePopulators.version}`,
      kind: 'VolumePopulator',
      metadata: { name: VOLUME_POPULATOR_NAME, labels: { 'app.kubernetes.io/managed-by': 'kopia-populator' } },
      sourceKind: { group: DATA_SOURCE.apiGroup, kind: DATA_SOURCE.kind },
    } as KubeObject);
    log.info('registered the VolumePopulator', { name: VOLUME_POPULATOR_NAME });
    return 'registered';
  } catch (e) {
    if (isAlreadyExists(e)) return 'already registered';
    throw e;
  }
}
