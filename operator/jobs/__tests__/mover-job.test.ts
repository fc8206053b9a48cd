import type { KubeClient } from '../../kube/kube-client.js';
import type { Informer } from '../../runtime/informer.js';
import { MoverJobs, POD_CACHE_GRACE_MS, type JobObject } from '../mover-job.js';

const FINISHED_AT = '2026-11-27T00:01:00Z';
const NOW = new Date(Date.parse(FINISHED_AT) + 1000);

/** A mover Job's template, as the API server keeps it. */
const TEMPLATE = {
  containers: [
    {
      name: 'mover',
      image: 'kopia-operator:1',
      command: ['node', '/app/dist/operator/mover/main.js'],
      env: [{ name: 'KOPIA_MOVER_REQUEST', value: '{"operation":"maintenance"}' }],
      volumeMounts: [{ name: 'scratch', mountPath: '/tmp' }],
    },
  ],
  volumes: [{ name: 'scratch', emptyDir: {} }],
};

function failedJob(): JobObject {
  return {
    metadata: { name: 'kopia-maintenance-nas', namespace: 'media', uid: 'j1' },
    spec: { template: { spec: TEMPLATE } },
    status: {
      failed: 1,
      conditions: [
        {
          type: 'Failed',
          status: 'True',
          reason: 'BackoffLimitExceeded',
          message: 'Job has reached the specified backoff limit',
          lastTransitionTime: FINISHED_AT,
        },
      ],
    },
  };
}

/** A Pod of the Job: created by it (its controller owner reference) unless `forged`, when it only carries its job-name label. */
function podOf(
  job: JobObject,
  o: { terminated?: Record<string, unknown>; message?: string; forged?: boolean; created?: string; name?: string; spec?: unknown },
): JobObject {
  return {
    spec: o.spec ?? job.spec?.template?.spec,
    metadata: {
      name: o.name ?? 'p',
      namespace: 'media',
      labels: { 'job-name': job.metadata.name! },
      creationTimestamp: o.created ?? '2026-11-27T00:00:00Z',
      ...(o.forged
        ? {}
        : {
            ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name!, uid: job.metadata.uid!, controller: true }],
          }),
    },
    status: { message: o.message, containerStatuses: [{ state: o.terminated ? { terminated: o.terminated } : {} }] },
  };
}

/** MoverJobs.result reads only cached Pods: a list is enough (pure logic, no API server). */
function moverJobs(jobs: JobObject[], pods: JobObject[]): MoverJobs {
  const informer = (items: JobObject[]) => ({ list: () => items, get: () => undefined }) as unknown as Informer<JobObject>;
  return new MoverJobs({} as KubeClient, informer(jobs), informer(pods));
}

function jobsWithPod(terminated: Record<string, unknown> | undefined, podMessage?: string): { jobs: MoverJobs; job: JobObject } {
  const job = failedJob();
  return { jobs: moverJobs([job], [podOf(job, { terminated, message: podMessage })]), job };
}

describe('a mover Job’s result', () => {
  it('is the termination message when the mover wrote one', () => {
    const { jobs, job } = jobsWithPod({
      exitCode: 1,
      reason: 'Error',
      message: '{"ok":false,"operation":"maintenance","errorClass":"Unreachable","message":"x"}',
    });
    expect(jobs.result(job, NOW)).toMatchObject({ ok: false, errorClass: 'Unreachable' });
  });

  it('names the container’s reason when it was killed before answering (OOMKilled)', () => {
    const { jobs, job } = jobsWithPod({ exitCode: 137, reason: 'OOMKilled' });
    expect(jobs.result(job, NOW)).toMatchObject({
      ok: false,
      errorClass: 'Other',
      message: expect.stringContaining('OOMKilled (exit code 137)'),
    });
  });

  it('falls back to the Pod’s, then the Job’s failure for a plain crash', () => {
    expect(jobsWithPod({ exitCode: 1, reason: 'Error' }, 'image not readable').jobs.result(jobsWithPod(undefined).job, NOW)).toMatchObject({
      message: 'image not readable',
    });
    const { jobs, job } = jobsWithPod({ exitCode: 1, reason: 'Error' });
    expect(jobs.result(job, NOW)).toMatchObject({ message: expect.stringContaining('BackoffLimitExceeded') });
  });
});

describe('whose Pod a result is read from', () => {
  const success = '{"ok":true,"operation":"restore","restored":{"files":4242,"dirs":1,"bytes":1,"errors":0,"ownersRestored":false}}';
  const failure = '{"ok":false,"operation":"restore","errorClass":"RepositoryMissing","message":"no repository"}';

  it('only the Pod the Job created: a newer Pod that merely carries its job-name label (anyone can make one) is not it', () => {
    const job = failedJob();
    const jobs = moverJobs(
      [job],
      [
        podOf(job, { name: 'real', terminated: { exitCode: 1, reason: 'Error', message: failure } }),
        podOf(job, {
          name: 'forged',
          forged: true,
          created: '2026-11-27T00:00:30Z',
          terminated: { exitCode: 0, reason: 'Completed', message: success },
        }),
      ],
    );
    expect(jobs.result(job, NOW)).toMatchObject({ ok: false, errorClass: 'RepositoryMissing' });
  });

  it('nor a Pod someone labelled like it and the Job controller adopted, unless it runs the template: then that is the failure', () => {
    const job = failedJob();
    const adopted = (spec: unknown) =>
      moverJobs([job], [podOf(job, { name: 'adopted', spec, terminated: { exitCode: 0, reason: 'Completed', message: success } })]).result(
        job,
        new Date(Date.parse(FINISHED_AT) + POD_CACHE_GRACE_MS + 1),
      );
    const refused = (why: string) => ({ ok: false, message: expect.stringContaining(`does not run the Job's template (${why})`) });
    const mover = TEMPLATE.containers[0];
    // Another command, another request, one more mount (over the mover's code), another volume: someone else's Pod.
    expect(adopted({ ...TEMPLATE, containers: [{ ...mover, command: ['sh', '-c', 'echo forged'] }] })).toMatchObject(
      refused('container mover differs in command'),
    );
    expect(adopted({ ...TEMPLATE, containers: [{ ...mover, env: [{ name: 'KOPIA_MOVER_REQUEST', value: '{}' }] }] })).toMatchObject(
      refused('container mover differs in env'),
    );
    expect(
      adopted({
        containers: [{ ...mover, volumeMounts: [...mover.volumeMounts, { name: 'code', mountPath: '/app' }] }],
        volumes: [...TEMPLATE.volumes, { name: 'code', persistentVolumeClaim: { claimName: 'mine' } }],
      }),
    ).toMatchObject(refused('container mover differs in volumeMounts (/app added)'));
    // Whatever the mount's name: a volume named like the API token's, over the mover's code, is still an addition.
    expect(
      adopted({
        containers: [{ ...mover, volumeMounts: [...mover.volumeMounts, { name: 'kube-api-access-x', mountPath: '/app' }] }],
        volumes: [...TEMPLATE.volumes, { name: 'kube-api-access-x', persistentVolumeClaim: { claimName: 'mine' } }],
      }),
    ).toMatchObject(refused('container mover differs in volumeMounts (/app added)'));
    // A hook or another place for the answer, or a sidecar that can reach the mover's processes, writes the answer for it.
    expect(adopted({ ...TEMPLATE, containers: [{ ...mover, lifecycle: { postStart: { exec: { command: ['sh'] } } } }] })).toMatchObject(
      refused('container mover differs in lifecycle'),
    );
    expect(adopted({ ...TEMPLATE, containers: [{ ...mover, terminationMessagePath: '/tmp/answer' }] })).toMatchObject(
      refused('container mover differs in terminationMessagePath'),
    );
    expect(adopted({ ...TEMPLATE, shareProcessNamespace: true })).toMatchObject(refused("the Pod's shareProcessNamespace differs"));
    expect(
      adopted({ ...TEMPLATE, ephemeralContainers: [{ name: 'debugger', image: 'busybox', targetContainerName: 'mover' }] }),
    ).toMatchObject(refused('ephemeral container debugger targets mover'));
    // Added environment that could change what the mover runs.
    expect(
      adopted({ ...TEMPLATE, containers: [{ ...mover, env: [...mover.env, { name: 'NODE_OPTIONS', value: '--require /data/x.js' }] }] }),
    ).toMatchObject(refused('container mover differs in env (NODE_OPTIONS added)'));
    expect(adopted({ ...TEMPLATE, containers: [{ ...mover, image: 'someone-else:1' }] })).toMatchObject(
      refused('container mover differs in image'),
    );
    expect(adopted({ ...TEMPLATE, volumes: [{ name: 'scratch', persistentVolumeClaim: { claimName: 'mine' } }] })).toMatchObject(
      refused('volume scratch differs'),
    );
    // An added container may not touch the mover's volumes (it could rewrite what the mover reads).
    expect(
      adopted({ ...TEMPLATE, initContainers: [{ name: 'first', image: 'busybox', volumeMounts: [{ name: 'scratch', mountPath: '/s' }] }] }),
    ).toMatchObject(refused("container first, not in the template, mounts the mover's volume scratch"));
    // The Pod the Job made is its template plus what admission adds: a token volume, a mesh's
    // sidecar with volumes of its own, a tightened security context; keys in any order.
    const made = {
      volumes: [...TEMPLATE.volumes, { name: 'kube-api-access-x1', projected: { sources: [] } }, { name: 'envoy', emptyDir: {} }],
      initContainers: [{ name: 'mesh-init', image: 'mesh' }],
      containers: [
        {
          volumeMounts: [...mover.volumeMounts, { name: 'kube-api-access-x1', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
          env: mover.env,
          command: mover.command,
          image: mover.image,
          name: mover.name,
          securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
        },
        { name: 'mesh-proxy', image: 'mesh', volumeMounts: [{ name: 'envoy', mountPath: '/etc/envoy' }] },
      ],
    };
    expect(adopted(made)).toMatchObject({ ok: true });
    // A cloud workload identity (IRSA) and a proxy added by admission, an image pinned to its digest: still the mover.
    const withIdentity = {
      ...TEMPLATE,
      volumes: [...TEMPLATE.volumes, { name: 'aws-iam-token', projected: { sources: [] } }],
      containers: [
        {
          ...mover,
          image: 'kopia-operator@sha256:0123',
          env: [
            ...mover.env,
            { name: 'AWS_ROLE_ARN', value: 'arn:aws:iam::1:role/backup' },
            { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token' },
            { name: 'HTTPS_PROXY', value: 'http://proxy:3128' },
          ],
          volumeMounts: [...mover.volumeMounts, { name: 'aws-iam-token', mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount' }],
        },
      ],
    };
    expect(adopted(withIdentity)).toMatchObject({ ok: true });
    // A platform's API-server proxy env (Gardener) and defaults a policy writes out are no change either.
    const kubernetesEnv = [...mover.env, { name: 'KUBERNETES_SERVICE_HOST', value: 'api.example' }];
    expect(
      adopted({ ...TEMPLATE, hostPID: false, dnsPolicy: 'ClusterFirst', containers: [{ ...mover, env: kubernetesEnv }] }),
    ).toMatchObject({
      ok: true,
    });
    // Another build of the image under a digest (its tag differs), or traffic sent elsewhere: not the mover.
    expect(adopted({ ...TEMPLATE, containers: [{ ...mover, image: 'kopia-operator:pr-999@sha256:0123' }] })).toMatchObject(
      refused('container mover differs in image'),
    );
    expect(adopted({ ...TEMPLATE, hostAliases: [{ ip: '10.0.0.9', hostnames: ['s3.example'] }] })).toMatchObject(
      refused("the Pod's hostAliases differs"),
    );
    expect(adopted({ ...TEMPLATE, dnsPolicy: 'None', dnsConfig: { nameservers: ['10.0.0.9'] } })).toMatchObject(
      refused("the Pod's dnsPolicy differs"),
    );
  });

  it('nor a Pod another Job (an earlier one of the same name) created', () => {
    const job = failedJob();
    const earlier = { ...failedJob(), metadata: { ...failedJob().metadata, uid: 'j0' } };
    const jobs = moverJobs(
      [job],
      [podOf(earlier, { created: '2026-11-27T00:00:30Z', terminated: { exitCode: 0, reason: 'Completed', message: success } })],
    );
    expect(jobs.result(job, NOW)).toBeUndefined();
  });

  it('a finished Job whose Pod is not in the cache yet has no result yet: not "ended without a result"', () => {
    const complete: JobObject = {
      metadata: { name: 'kopia-restore-x', namespace: 'media', uid: 'j2' },
      status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: FINISHED_AT }] },
    };
    const jobs = moverJobs([complete], []);
    expect(jobs.result(complete, NOW)).toBeUndefined();
    expect(jobs.result(failedJob(), NOW)).toBeUndefined();
    // A Pod gone for good (deleted by hand) does not stall the owner: after a while the Job's word is taken.
    const later = new Date(Date.parse(FINISHED_AT) + POD_CACHE_GRACE_MS + 1);
    expect(jobs.result(complete, later)).toMatchObject({ ok: false, message: 'the mover ended without a result' });
    expect(jobs.result(failedJob(), later)).toMatchObject({ ok: false, message: expect.stringContaining('BackoffLimitExceeded') });
  });

  it('a Job that failed without ever running a Pod has its result at once', () => {
    const deadline: JobObject = {
      metadata: { name: 'kopia-backup-x', namespace: 'media', uid: 'j3' },
      status: {
        conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'too long', lastTransitionTime: FINISHED_AT }],
      },
    };
    expect(moverJobs([deadline], []).result(deadline, NOW)).toMatchObject({ ok: false, message: 'DeadlineExceeded: too long' });
  });
});
