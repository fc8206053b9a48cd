import type { Backend } from '../../../generated/types.js';
import { boundedName, buildMoverJob, type MoverJobInput } from '../job-builder.js';
import { copyKey, secretKeyUses, usesFromCopy } from '../repository-access.js';
import { MOVER_PATHS } from '../../mover/mover-contract.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const backend: Backend = {
  s3: { bucket: 'backups', credentialsSecretRef: { name: 'creds' }, tls: { caBundleSecretRef: { name: 'ca', key: 'ca.crt' } } },
};

function input(overrides: Partial<MoverJobInput> = {}): MoverJobInput {
  return {
    name: 'kopia-verify-nas',
    namespace: 'media',
    owner: { apiVersion: 'kopia.io/v1alpha1', kind: 'Repository', name: 'nas', uid: 'u-1', controller: true },
    ownerLabels: { kind: 'Repository', name: 'nas', namespace: 'media' },
    image: 'kopia-operator:1.0',
    request: { operation: 'verify', repository: { backend }, identity: { username: 'u', hostname: 'h' } },
    secrets: secretKeyUses({ passwordSecretRef: { name: 'pw', key: 'KOPIA_PASSWORD' }, backend }),
    activeDeadlineSeconds: 600,
    ...overrides,
  };
}

describe('secret key uses', () => {
  it('lists each key a backend needs, as env or file', () => {
    const uses = secretKeyUses({ passwordSecretRef: { name: 'pw', key: 'KOPIA_PASSWORD' }, backend });
    expect(uses.map((u) => [u.secret.name, u.key, u.as, u.optional])).toEqual([
      ['pw', 'KOPIA_PASSWORD', { env: 'KOPIA_PASSWORD' }, false],
      ['creds', 'AWS_ACCESS_KEY_ID', { env: 'AWS_ACCESS_KEY_ID' }, false],
      ['creds', 'AWS_SECRET_ACCESS_KEY', { env: 'AWS_SECRET_ACCESS_KEY' }, false],
      ['creds', 'AWS_SESSION_TOKEN', { env: 'AWS_SESSION_TOKEN' }, true],
      ['ca', 'ca.crt', { file: 'ca-bundle/ca.pem' }, false],
    ]);
  });

  it('maps WebDAV keys onto kopia environment names', () => {
    const uses = secretKeyUses({
      passwordSecretRef: { name: 'pw', key: 'p' },
      backend: { webdav: { url: 'https://d', credentialsSecretRef: { name: 'dav' } } },
    });
    expect(uses.slice(1).map((u) => [u.key, u.as])).toEqual([
      ['WEBDAV_USERNAME', { env: 'KOPIA_WEBDAV_USERNAME' }],
      ['WEBDAV_PASSWORD', { env: 'KOPIA_WEBDAV_PASSWORD' }],
    ]);
  });

  it('reads the same uses from one copy Secret for a ClusterRepository', () => {
    const uses = usesFromCopy(
      secretKeyUses({ passwordSecretRef: { name: 'pw', namespace: 'kopia-system', key: 'pass' }, backend }),
      'copy',
    );
    expect(new Set(uses.map((u) => u.secret.name))).toEqual(new Set(['copy']));
    expect(uses.map((u) => u.key)).toEqual([
      'KOPIA_PASSWORD',
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_SESSION_TOKEN',
      copyKey(uses[4]),
    ]);
  });
});

describe('mover Job', () => {
  it('references secrets and never contains their values', () => {
    const job = buildMoverJob(input()) as any;
    const c = job.spec.template.spec.containers[0];
    expect(c.env.find((e: any) => e.name === 'KOPIA_PASSWORD')).toEqual({
      name: 'KOPIA_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'pw', key: 'KOPIA_PASSWORD' } },
    });
    expect(c.env.find((e: any) => e.name === 'AWS_SESSION_TOKEN').valueFrom.secretKeyRef.optional).toBe(true);
    const secretsVolume = job.spec.template.spec.volumes.find((v: any) => v.name === 'secrets');
    expect(secretsVolume.projected.sources).toEqual([{ secret: { name: 'ca', items: [{ key: 'ca.crt', path: 'ca-bundle/ca.pem' }] } }]);
  });

  it('runs as non-root with no privilege escalation by default', () => {
    const pod = (buildMoverJob(input()) as any).spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534, runAsNonRoot: true });
    expect(pod.containers[0].securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('honours the mover settings', () => {
    const pod = (
      buildMoverJob(
        input({
          mover: { securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 }, resources: { limits: { memory: '1Gi' } } },
        }),
      ) as any
    ).spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsUser: 1000, fsGroup: 1000 });
    expect(pod.containers[0].resources).toEqual({ limits: { memory: '1Gi' } });
  });

  it('pins to a node by its name (matchFields), not by the hostname label, which may differ from it', () => {
    const pod = (
      buildMoverJob(input({ nodeName: 'ip-10-0-3-7.eu-west-1.compute.internal', mover: { nodeSelector: { disk: 'ssd' } } })) as any
    ).spec.template.spec;
    expect(pod.affinity).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['ip-10-0-3-7.eu-west-1.compute.internal'] }] },
          ],
        },
      },
    });
    // The user's own selector stays as given; nothing is added to it.
    expect(pod.nodeSelector).toEqual({ disk: 'ssd' });
    const unpinned = (buildMoverJob(input()) as any).spec.template.spec;
    expect(unpinned.affinity).toBeUndefined();
    expect(unpinned.nodeSelector).toBeUndefined();
  });

  it('mounts the filesystem backend volume at /repository', () => {
    const job = buildMoverJob(input({ filesystem: { path: '/', volume: { persistentVolumeClaim: { claimName: 'nas' } } } })) as any;
    expect(job.spec.template.spec.volumes).toContainEqual({ name: 'repository', persistentVolumeClaim: { claimName: 'nas' } });
    expect(job.spec.template.spec.containers[0].volumeMounts).toContainEqual({ name: 'repository', mountPath: '/repository' });
  });

  it('mounts no service-account token: a mover has no business with the Kubernetes API', () => {
    expect((buildMoverJob(input()) as any).spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it('mounts the data claim at the fixed data path only, whatever the identity path of the request', () => {
    const request: MoverJobInput['request'] = {
      operation: 'backup',
      repository: { backend },
      identity: { username: 'app', hostname: 'media', path: '/app' },
      policy: {},
      tags: {},
    };
    const pod = (buildMoverJob(input({ request, data: { claimName: 'app-data', readOnly: true } })) as any).spec.template.spec;
    expect(pod.volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: 'app-data', readOnly: true } });
    expect(pod.containers[0].volumeMounts.filter((m: any) => m.name === 'data')).toEqual([
      { name: 'data', mountPath: MOVER_PATHS.data, readOnly: true },
    ]);
    expect(pod.containers[0].volumeMounts.map((m: any) => m.mountPath)).not.toContain('/app');
  });

  it('mounts the data claim directly below a writable volume, listed after it: kopia unlinks `<target>.kopia-entry` beside its target', () => {
    // On a read-only root filesystem a claim at /data made every restore fail with
    // "unlinkat //data.kopia-entry: read-only file system" (seen in the kind suite).
    const pod = (buildMoverJob(input({ data: { claimName: 'app-data', readOnly: false } })) as any).spec.template.spec;
    const mounts: { name: string; mountPath: string }[] = pod.containers[0].volumeMounts;
    const parent = MOVER_PATHS.data.slice(0, MOVER_PATHS.data.lastIndexOf('/'));
    const holder = mounts.findIndex((m) => m.mountPath === parent);
    expect(holder).toBeGreaterThanOrEqual(0);
    expect(pod.volumes.find((v: any) => v.name === mounts[holder].name)).toHaveProperty('emptyDir');
    expect(holder).toBeLessThan(mounts.findIndex((m) => m.name === 'data'));
  });

  it('is deterministic: the same input gives the same Job and spec hash', () => {
    expect(buildMoverJob(input())).toEqual(buildMoverJob(input()));
    const a = buildMoverJob(input()).metadata.annotations!['kopia.io/spec-hash'];
    const b = buildMoverJob(input({ image: 'kopia-operator:1.1' })).metadata.annotations!['kopia.io/spec-hash'];
    expect(a).not.toBe(b);
  });

  it('fails once and is owned by its repository', () => {
    const job = buildMoverJob(input()) as any;
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Repository', name: 'nas', controller: true })]);
    expect(job.spec.template.spec.containers[0].terminationMessagePolicy).toBe('FallbackToLogsOnError');
  });
});

describe('bounded names', () => {
  it('keeps short names and hashes long ones to 63 characters', () => {
    expect(boundedName('kopia-verify', 'nas')).toBe('kopia-verify-nas');
    const long = boundedName('kopia-verify', 'x'.repeat(80));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).not.toBe(boundedName('kopia-verify', `${'x'.repeat(79)}y`));
  });
});
