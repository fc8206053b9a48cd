import type { KubeClient } from '../../kube/kube-client.js';
import type { Informer } from '../../runtime/informer.js';
import { MoverJobs, type JobObject } from '../mover-job.js';

/** MoverJobs.result reads only cached Pods: a list is enough (pure logic, no API server). */
function jobsWithPod(terminated: Record<string, unknown> | undefined, podMessage?: string): { jobs: MoverJobs; job: JobObject } {
  const job: JobObject = {
    metadata: { name: 'kopia-maintenance-nas', namespace: 'media', uid: 'j1' },
    status: {
      conditions: [
        { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
      ],
    },
  };
  const pod: JobObject = {
    metadata: { name: 'p', namespace: 'media', labels: { 'job-name': job.metadata.name! }, creationTimestamp: '2026-11-27T00:00:00Z' },
    status: { message: podMessage, containerStatuses: [{ state: terminated ? { terminated } : {} }] },
  };
  const informer = (items: JobObject[]) => ({ list: () => items, get: () => undefined }) as unknown as Informer<JobObject>;
  return { jobs: new MoverJobs({} as KubeClient, informer([job]), informer([pod])), job };
}

describe('a mover Job’s result', () => {
  it('is the termination message when the mover wrote one', () => {
    const { jobs, job } = jobsWithPod({
      exitCode: 1,
      reason: 'Error',
      message: '{"ok":false,"operation":"maintenance","errorClass":"Unreachable","message":"x"}',
    });
    expect(jobs.result(job)).toMatchObject({ ok: false, errorClass: 'Unreachable' });
  });

  it('names the container’s reason when it was killed before answering (OOMKilled)', () => {
    const { jobs, job } = jobsWithPod({ exitCode: 137, reason: 'OOMKilled' });
    expect(jobs.result(job)).toMatchObject({
      ok: false,
      errorClass: 'Other',
      message: expect.stringContaining('OOMKilled (exit code 137)'),
    });
  });

  it('falls back to the Pod’s, then the Job’s failure for a plain crash', () => {
    expect(jobsWithPod({ exitCode: 1, reason: 'Error' }, 'image not readable').jobs.result(jobsWithPod(undefined).job)).toMatchObject({
      message: 'image not readable',
    });
    const { jobs, job } = jobsWithPod({ exitCode: 1, reason: 'Error' });
    expect(jobs.result(job)).toMatchObject({ message: expect.stringContaining('BackoffLimitExceeded') });
  });
});
