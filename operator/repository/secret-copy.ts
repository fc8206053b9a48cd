// A ClusterRepository's Secrets live in namespaces of their own, but a Pod reads Secrets
// of its own namespace only. So where a mover for it runs (the operator's namespace for
// verification, a tenant's namespace for its backups and restores) the operator keeps one
// copy Secret with just the keys the mover needs, owned by the ClusterRepository.
import { isAlreadyExists, type KubeClient, type KubeObject, type OwnerReference } from '../kube/kube-client.js';
import { Secrets } from '../kube/resources.js';
import { boundedName, LABELS, MANAGED_BY, shortHash } from '../jobs/job-builder.js';
import { copyKey, usesFromCopy, type SecretKeyUse } from '../jobs/repository-access.js';
import type { SecretKeys } from '../runtime/secret-keys.js';

/** On a copy Secret: a hash of the versions of the Secrets it was copied from. */
const SOURCE_VERSION_ANNOTATION = 'kopia.io/source-version';

export function clusterSecretCopyName(repositoryName: string): string {
  return boundedName('kopia-clusterrepo', repositoryName);
}

/**
 * Makes sure namespace holds the copy of a ClusterRepository's keys, and returns the uses
 * as a Job there reads them. Writes only when the sources changed (their versions are
 * recorded on the copy), so a quiet cluster sees no reads of Secret values and no writes.
 */
export async function ensureSecretCopy(
  client: KubeClient,
  secrets: SecretKeys,
  namespace: string,
  repository: { name: string; owner: OwnerReference },
  uses: SecretKeyUse[],
): Promise<SecretKeyUse[]> {
  const name = clusterSecretCopyName(repository.name);
  const sourceVersion = shortHash(
    uses
      .map(
        (u) =>
          `${copyKey(u)}=${u.secret.namespace}/${u.secret.name}/${u.key}@${secrets.get(u.secret.namespace!, u.secret.name)?.metadata.resourceVersion}`,
      )
      .sort()
      .join(','),
    16,
  );
  const existing = secrets.get(namespace, name);
  if (existing?.metadata.annotations?.[SOURCE_VERSION_ANNOTATION] === sourceVersion) return usesFromCopy(uses, name);
  const data: Record<string, string> = {};
  for (const u of uses) {
    const value = (await secrets.read(u.secret.namespace!, u.secret.name))?.data?.[u.key];
    if (value !== undefined) data[copyKey(u)] = value;
  }
  const metadata = {
    name,
    namespace,
    labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.ownerKind]: 'ClusterRepository', [LABELS.ownerName]: repository.name },
    annotations: { [SOURCE_VERSION_ANNOTATION]: sourceVersion },
    ownerReferences: [repository.owner],
  };
  const body = { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata, data } as KubeObject;
  if (!existing) {
    try {
      await client.create(Secrets, body);
      return usesFromCopy(uses, name);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
  }
  await client.replace(Secrets, body);
  return usesFromCopy(uses, name);
}
