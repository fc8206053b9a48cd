// The objects the kind suite's namespaces share, as a user writes them: the repository
// Secret, a claim on the cluster's storage class, and a Repository on the in-cluster S3.
import { world } from './kubectl.js';

export const repositorySecret = (namespace: string, password: string) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'kopia-repo', namespace },
  stringData: { KOPIA_PASSWORD: password, AWS_ACCESS_KEY_ID: 'e2e', AWS_SECRET_ACCESS_KEY: 'e2e-secret' },
});

export const claim = (namespace: string, name: string, storage: string, extra: object = {}) => ({
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: { name, namespace },
  spec: { accessModes: ['ReadWriteOnce'], storageClassName: world.storageClass, resources: { requests: { storage } }, ...extra },
});

/** Repository `s3` of `namespace`, under its own prefix, with kopia-repo's keys. */
export const s3Repository = (namespace: string) => ({
  apiVersion: 'kopia.io/v1alpha1',
  kind: 'Repository',
  metadata: { name: 's3', namespace },
  spec: {
    backend: {
      s3: {
        bucket: world.s3Bucket,
        prefix: `${namespace}/`,
        endpoint: world.s3Endpoint,
        tls: { disabled: true },
        credentialsSecretRef: { name: 'kopia-repo' },
      },
    },
    passwordSecretRef: { name: 'kopia-repo', key: 'KOPIA_PASSWORD' },
    create: { enabled: true },
  },
});
