// How a catalog Job gets its upload token without the token ever being in its spec: a
// Secret named from the upload id, owned by the Job (the garbage collector deletes it with
// the Job), read by secretKeyRef into the mover's environment. Pure: the random values are
// made by the caller.
import type { KubeObject } from '../kube/kube-client.js';
import { boundedName, LABELS, MANAGED_BY } from '../jobs/job-builder.js';
import type { SecretKeyUse } from '../jobs/repository-access.js';
import { CATALOG_TOKEN_ENV, CATALOG_TOKEN_KEY } from '../mover/mover-contract.js';

export function uploadTokenSecretName(uploadId: string): string {
  return boundedName('kopia-catalog-upload', uploadId);
}

/** The Job's reference to its token: an environment variable from the Secret, no value. */
export function uploadTokenUse(uploadId: string): SecretKeyUse {
  return { secret: { name: uploadTokenSecretName(uploadId) }, key: CATALOG_TOKEN_KEY, optional: false, as: { env: CATALOG_TOKEN_ENV } };
}

/** The Secret holding the token, owned by the Job that reads it (made once the Job has a UID). */
export function uploadTokenSecret(input: {
  uploadId: string;
  token: string;
  job: { name: string; namespace: string; uid: string };
}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: uploadTokenSecretName(input.uploadId),
      namespace: input.job.namespace,
      labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.operation]: 'catalog' },
      // No blockOwnerDeletion: that would need the Job's finalizers subresource in the RBAC.
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: input.job.name, uid: input.job.uid, controller: true }],
    },
    data: { [CATALOG_TOKEN_KEY]: Buffer.from(input.token, 'utf8').toString('base64') },
  } as KubeObject;
}
