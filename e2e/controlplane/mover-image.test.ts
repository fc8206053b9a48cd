// The mover image defaults to the pod's own: the real operator and populator processes, run
// without MOVER_IMAGE and with POD_NAME naming a Pod in the API server (as the downward API
// gives them), start mover Jobs with the image of their own container in that Pod, so the
// Deployment's one image setting also sets the movers'.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MOVER_SELECTOR } from '../../operator/jobs/job-builder.js';
import { Jobs, KopiaRepositories, PersistentVolumeClaims, Pods, Secrets } from '../../operator/kube/resources.js';
import { until, useTestNamespace, type Obj } from '../support/cluster.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { repoRoot, tsNode } from '../support/paths.js';
import { populatorIdentity, populatorKubeconfig, startPopulatorProcess, type PopulatorProcess } from '../support/populator.js';
import { grantClusterRole, manifestClusterRoleRules, serviceAccountClient } from '../support/service-accounts.js';
import { resolveMoverImage } from '../../operator/runtime/mover-image.js';
import { freePort, startGuarded, type GuardedProcess } from '../support/processes.js';

const t = useTestNamespace('mover-image');
const OWN_IMAGE = 'registry.example/kopia-operator:from-own-pod';

/** A Pod object like the Deployment's, bound to a node no agent runs: only read, never run. */
async function ownPod(name: string, container: string): Promise<void> {
  await t.client.create(Pods, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: t.ns },
    spec: {
      nodeName: 'no-such-node',
      containers: [
        { name: 'sidecar', image: 'registry.example/sidecar:1' },
        { name: container, image: OWN_IMAGE },
      ],
    },
  });
}

/** process.env without MOVER_IMAGE: the processes must find the image themselves. */
function envWithoutOverride(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.MOVER_IMAGE;
  return env;
}

const running: Array<GuardedProcess | PopulatorProcess['guarded']> = [];
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  for (const cleanup of cleanups) await cleanup();
});

it("the operator's mover Jobs run the image of the operator's own container when MOVER_IMAGE is unset", async () => {
  await ownPod('kopia-operator-self', 'operator');
  const [node, ...args] = tsNode();
  const operator = startGuarded(
    'operator-mover-image',
    node,
    [...args, join(repoRoot, 'operator/main.ts')],
    join(process.env.KOPIA_TEST_DIR!, 'logs', `operator-${t.ns}.log`),
    {
      ...envWithoutOverride(),
      KUBECONFIG: process.env.KOPIA_TEST_KUBECONFIG!,
      POD_NAMESPACE: t.ns,
      POD_NAME: 'kopia-operator-self',
      HEALTH_PORT: String(await freePort()),
      INTAKE_PORT: '0',
      LEADER_ELECTION: 'false',
    },
  );
  running.push(operator);
  await t.client.create(Secrets, secretObject({ name: 'nas-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: 'pw' } }));
  await t.client.create(PersistentVolumeClaims, claimObject({ name: 'nas', namespace: t.ns }));
  await t.client.create(KopiaRepositories, repositoryObject({ name: 'nas', namespace: t.ns }));
  let job: Obj | undefined;
  await until(
    "the Repository's verification Job",
    async () => !!(job = (await t.client.list<Obj>(Jobs, t.ns, { labelSelector: MOVER_SELECTOR })).items[0]),
    90_000,
  );
  expect(job!.spec.template.spec.containers.map((c: { image: string }) => c.image)).toEqual([OWN_IMAGE]);

  // The operator's ServiceAccount, with the manifests' ClusterRole only, may read its own Pod.
  const grant = await grantClusterRole(
    t.client,
    `kopia-operator-${t.ns}`,
    { namespace: t.ns, name: 'kopia-operator' },
    manifestClusterRoleRules('kopia-operator'),
  );
  cleanups.push(() => grant.remove());
  const asOperator = await serviceAccountClient(t.client, t.ns, 'kopia-operator');
  cleanups.push(async () => asOperator.close());
  await expect(resolveMoverImage(asOperator, { POD_NAME: 'kopia-operator-self' }, t.ns, 'operator')).resolves.toEqual({
    image: OWN_IMAGE,
    source: 'pod',
  });
});

it('the populator takes the image of its own container when MOVER_IMAGE is unset', async () => {
  await ownPod('kopia-populator-self', 'populator');
  // As its ServiceAccount with the manifests' rules: reading its own Pod needs no more.
  const identity = await populatorIdentity(t.client, t.ns);
  cleanups.push(() => identity.remove());
  const populator = await startPopulatorProcess({
    name: 'kopia-populator-self',
    kubeconfig: await populatorKubeconfig(t.client, t.ns, join(process.env.KOPIA_TEST_DIR!, `populator-${t.ns}.kubeconfig`)),
    namespace: t.ns,
    env: { MOVER_IMAGE: '', LEADER_ELECTION: 'false' },
  });
  running.push(populator.guarded);
  const logFile = join(process.env.KOPIA_TEST_DIR!, 'logs', `populator-${t.ns}-kopia-populator-self.log`);
  let chosen: { image: string; from: string } | undefined;
  await until(
    'the populator to log its mover image',
    async () =>
      !!(chosen = readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((line) => line.includes('"mover image"'))
        .map((line) => JSON.parse(line) as { image: string; from: string })[0]),
    60_000,
  );
  expect(chosen).toMatchObject({ image: OWN_IMAGE, from: 'pod' });
  await until('the populator to be Ready', async () => (await populator.status('/readyz')) === 200, 60_000);
});
