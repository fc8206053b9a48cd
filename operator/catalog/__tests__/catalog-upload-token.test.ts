// The catalog Job's upload token: referenced from the Job, held by a Secret the Job owns.
import { randomBytes } from 'node:crypto';
import { buildMoverJob } from '../../jobs/job-builder.js';
import { uploadTokenSecret, uploadTokenUse } from '../catalog-upload-token.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const uploadId = 'a'.repeat(32);
const token = randomBytes(32).toString('hex');

const job = buildMoverJob({
  name: 'kopia-catalog-nas',
  namespace: 'media',
  owner: { apiVersion: 'kopia.io/v1alpha1', kind: 'Repository', name: 'nas', uid: 'u-1', controller: true },
  ownerLabels: { kind: 'Repository', name: 'nas', namespace: 'media' },
  image: 'kopia-operator:1.0',
  request: {
    operation: 'catalog',
    repository: { backend: { filesystem: { path: '/', volume: { persistentVolumeClaim: { claimName: 'nas' } } } } },
    identity: { username: 'kopia-operator', hostname: 'catalog.media' },
    upload: { url: `http://10.0.0.5:8082/v1/catalog/${uploadId}` },
  },
  secrets: [uploadTokenUse(uploadId)],
  activeDeadlineSeconds: 1800,
});

it('gives the mover its token by secretKeyRef: no value in the Job', () => {
  const env = (job.spec as any).template.spec.containers[0].env;
  expect(env.find((e: any) => e.name === 'KOPIA_CATALOG_TOKEN')).toEqual({
    name: 'KOPIA_CATALOG_TOKEN',
    valueFrom: { secretKeyRef: { name: `kopia-catalog-upload-${uploadId}`, key: 'token' } },
  });
  expect(JSON.stringify(job)).not.toContain(token);
});

it('keeps the token in a Secret owned by the Job (deleted with it), in the Job namespace', () => {
  const secret = uploadTokenSecret({ uploadId, token, job: { name: 'kopia-catalog-nas', namespace: 'media', uid: 'job-uid' } }) as any;
  expect(secret.metadata).toMatchObject({ name: `kopia-catalog-upload-${uploadId}`, namespace: 'media' });
  expect(secret.metadata.ownerReferences).toEqual([
    { apiVersion: 'batch/v1', kind: 'Job', name: 'kopia-catalog-nas', uid: 'job-uid', controller: true },
  ]);
  expect(Buffer.from(secret.data.token, 'base64').toString('utf8')).toBe(token);
});
