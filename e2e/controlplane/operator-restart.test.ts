// Stopping the operator in the middle of a verification loses nothing and duplicates
// nothing: the next operator adopts the running Job by its deterministic name.
import type { KubeObject } from '../../operator/kube/kube-client.js';
import { Jobs, KopiaRepositories, PersistentVolumeClaims, Secrets } from '../../operator/kube/resources.js';
import { Informer } from '../../operator/runtime/informer.js';
import { until, useTestNamespace } from '../support/cluster.js';
import { claimObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = KubeObject & { spec?: any; status?: any };
const t = useTestNamespace('restart');

it('a new operator finishes the verification the stopped one started, with one Job in all', async () => {
  const jobUids = new Set<string>();
  // Verify Jobs only: once the repository is Ready, its catalog Job runs too.
  const jobs = new Informer<Obj>(t.client, Jobs, { namespace: t.ns, labelSelector: 'kopia.io/operation=verify' }).on((_t, j) =>
    jobUids.add(j.metadata.uid!),
  );
  await jobs.start();
  await t.client.create(Secrets, secretObject({ name: 'pw', namespace: t.ns, stringData: { KOPIA_PASSWORD: 'restart password' } }));
  await t.client.create(PersistentVolumeClaims, claimObject({ name: 'nas', namespace: t.ns }));
  const first = await startTestOperator(t.ns);
  await t.client.create(KopiaRepositories, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Repository',
    metadata: { name: 'nas', namespace: t.ns },
    spec: {
      backend: { filesystem: { path: '/', volume: { persistentVolumeClaim: { claimName: 'nas' } } } },
      passwordSecretRef: { name: 'pw', key: 'KOPIA_PASSWORD' },
      create: { enabled: true },
    },
  } as Obj);
  await until('the first operator to start a verify Job', async () => jobUids.size > 0, 30000, 20);
  first.stop();

  const second = await startTestOperator(t.ns);
  try {
    await until(
      'the Repository to be verified by the second operator',
      async () =>
        ((await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas')).status?.conditions ?? []).some(
          (c: any) => c.type === 'Ready' && c.status === 'True',
        ),
      90000,
      200,
    );
    await until('the verify Job to be removed', async () => !(await t.client.getOrUndefined(Jobs, t.ns, 'kopia-verify-nas')));
    expect(jobUids.size).toBe(1);
    const repo = await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas');
    expect(repo.status.conditions.find((c: any) => c.type === 'Ready').message).toContain('created by this verification');
  } finally {
    second.stop();
    jobs.stop();
  }
});
