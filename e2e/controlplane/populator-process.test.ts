// The populator as a Deployment runs it: two replicas on the kopia-populator Lease, only
// the leader ever writes, and a standby takes over from a leader that died without letting
// go; the real process, SIGKILLed mid-way, finished by the next one; and its
// VolumePopulator registration where the volume-data-source-validator's API exists.
// Claims here restore "no snapshot exists" (an empty volume), so no mover runs.
import { readdirSync } from 'node:fs';
import type { KubeClient, KubeObject } from '../../operator/kube/kube-client.js';
import { join } from 'node:path';
import {
  CustomResourceDefinitions,
  Leases,
  KopiaBackupConfigs,
  KopiaRepositories,
  KopiaRestores,
  PersistentVolumeClaims,
  PersistentVolumes,
  Secrets,
} from '../../operator/kube/resources.js';
import { FINALIZER, HELD_RECLAIM_POLICY } from '../../operator/populator/populator-plan.js';
import { VOLUME_POPULATOR_NAME, VolumePopulators } from '../../operator/populator/volume-populator-registration.js';
import { until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { metricNamesOf } from '../../operator/metrics/metric-catalog.js';
import { sampleValue } from '../support/metrics-text.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';
import {
  POPULATOR_SERVICE_ACCOUNT,
  populatorIdentity,
  populatorKubeconfig,
  startPopulatorProcess,
  startTestPopulator,
  type PopulatorProcess,
  type TestPopulator,
} from '../support/populator.js';
import { serviceAccountClient } from '../support/service-accounts.js';

const t = useTestNamespace('populator-process');
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let identity: Awaited<ReturnType<typeof populatorIdentity>>;
const running: TestPopulator[] = [];
const TIMINGS = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };

async function emptyClaim(name: string): Promise<Obj> {
  const claim = claimObject({ name, namespace: t.ns }) as Obj;
  claim.spec.dataSourceRef = { apiGroup: 'kopia.io', kind: 'Restore', name: 'empty' };
  return t.client.create<Obj>(PersistentVolumeClaims, claim);
}

/** Bound to an empty volume, with the finalizer gone and the PV's policy back. */
async function populated(name: string): Promise<void> {
  await until(
    `claim ${name} populated`,
    async () => {
      const claim = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, name);
      if (claim.status?.phase !== 'Bound' || claim.metadata.finalizers?.includes(FINALIZER)) return false;
      if (await t.client.getOrUndefined(PersistentVolumeClaims, t.ns, `kopia-prime-${claim.metadata.uid}`)) return false;
      const pv = await t.client.get<Obj>(PersistentVolumes, undefined, claim.spec.volumeName);
      return !pv.metadata.annotations?.[HELD_RECLAIM_POLICY] && readdirSync(pv.spec.hostPath.path).length === 0;
    },
    60000,
    250,
  );
}

/** Calls that change something, other than keeping the Lease. */
const writes = (client: KubeClient) =>
  Object.entries(client.calls)
    .filter(([k]) => /^(POST|PUT|PATCH|DELETE) /.test(k) && !k.endsWith(' leases'))
    .reduce((n, [, v]) => n + v, 0);

beforeAll(async () => {
  operator = await startTestOperator(t.ns);
  identity = await populatorIdentity(t.client, t.ns);
  await t.client.create(Secrets, secretObject({ name: 'nas-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: 'replicas' } }));
  for (const claim of ['nas', 'app-data']) await t.client.create(PersistentVolumeClaims, claimObject({ name: claim, namespace: t.ns }));
  await t.client.create(KopiaRepositories, repositoryObject({ name: 'nas', namespace: t.ns }));
  await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' });
  await t.client.create(KopiaBackupConfigs, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name: 'app', namespace: t.ns },
    spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' }, copyMethod: 'Direct' },
  } as Obj);
  await t.client.create(KopiaRestores, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Restore',
    metadata: { name: 'empty', namespace: t.ns },
    spec: { source: { fromConfig: { name: 'app' } }, target: { populator: {} }, onMissingSnapshot: 'Continue' },
  } as Obj);
  // Each claim is answered on its own; before any, the Restore says a claim would start empty.
  await until('the Restore to say a claim would start empty', async () => {
    const r = await t.client.get<Obj>(KopiaRestores, t.ns, 'empty');
    return (r.status?.conditions ?? []).some((c: { message: string }) => c.message.includes('would start empty'));
  });
}, 120_000);

afterAll(async () => {
  for (const p of running) await p.stop({ release: true });
  await identity?.remove();
  operator?.stop();
});

it('two replicas: only the leader writes; a standby takes over from a leader that died holding the Lease', async () => {
  const clientB = await serviceAccountClient(t.client, t.ns, POPULATOR_SERVICE_ACCOUNT);
  try {
    const a = await startTestPopulator({ client: identity.client, namespace: t.ns, leaderElection: { identity: 'a', ...TIMINGS } });
    running.push(a);
    await until('replica a to lead', async () => !!a.elector?.isLeader);
    const b = await startTestPopulator({ client: clientB, namespace: t.ns, leaderElection: { identity: 'b', ...TIMINGS } });
    running.push(b);

    await emptyClaim('first');
    await populated('first');
    expect(b.elector?.isLeader).toBe(false);
    expect(writes(clientB)).toBe(0);

    // The leader dies without releasing the Lease: b waits it out, then populates.
    await a.stop({ release: false });
    await emptyClaim('second');
    await populated('second');
    expect(b.elector?.isLeader).toBe(true);
    expect(writes(clientB)).toBeGreaterThan(0);
  } finally {
    for (const p of running.splice(0)) await p.stop({ release: true });
    clientB.close();
  }
});

it('registers a VolumePopulator for kopia.io/Restore where the validator’s API exists', async () => {
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    // A *.k8s.io group needs this annotation; upstream's CRD points at its KEP.
    metadata: {
      name: 'volumepopulators.populator.storage.k8s.io',
      annotations: { 'api-approved.kubernetes.io': 'https://github.com/kubernetes/enhancements/pull/1495' },
    },
    spec: {
      group: 'populator.storage.k8s.io',
      scope: 'Cluster',
      names: { plural: 'volumepopulators', singular: 'volumepopulator', kind: 'VolumePopulator', listKind: 'VolumePopulatorList' },
      versions: [
        {
          name: 'v1beta1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                sourceKind: { type: 'object', properties: { group: { type: 'string' }, kind: { type: 'string' } } },
              },
            },
          },
        },
      ],
    },
  } as unknown as KubeObject;
  await t.client.create(CustomResourceDefinitions, crd);
  try {
    await until('the VolumePopulator API to be served', async () => {
      try {
        await t.client.request('GET', '/apis/populator.storage.k8s.io/v1beta1');
        return true;
      } catch {
        return false;
      }
    });
    const p = await startTestPopulator({ client: identity.client, namespace: t.ns });
    running.push(p);
    await until('the VolumePopulator', async () => !!(await t.client.getOrUndefined(VolumePopulators, undefined, VOLUME_POPULATOR_NAME)));
    const registered = await t.client.get<Obj>(VolumePopulators, undefined, VOLUME_POPULATOR_NAME);
    expect(registered.sourceKind).toEqual({ group: 'kopia.io', kind: 'Restore' });
  } finally {
    for (const p of running.splice(0)) await p.stop({ release: true });
    await t.client.delete(CustomResourceDefinitions, undefined, crd.metadata.name!);
  }
});

it('the process: Ready, leads and fills a claim; SIGKILLed mid-way, the next process finishes it; SIGTERM releases the Lease', async () => {
  const kubeconfig = await populatorKubeconfig(t.client, t.ns, join(process.env.KOPIA_TEST_DIR!, `populator-${t.ns}.kubeconfig`));
  const env = {
    LEADER_ELECTION_LEASE_DURATION: '3',
    LEADER_ELECTION_RENEW_DEADLINE: '2',
    LEADER_ELECTION_RETRY_PERIOD: '0.5',
  };
  const first = await startPopulatorProcess({ name: 'first', kubeconfig, namespace: t.ns, env });
  const second = { current: undefined as PopulatorProcess | undefined };
  try {
    await until(
      'the process to be Ready and lead',
      async () => (await first.status('/readyz')) === 200 && (await first.leading()),
      90_000,
      200,
    );
    await emptyClaim('by-process');
    await populated('by-process');
    // Its /metrics: every catalogue name of the populator, its reconciles, requests and the population
    // (counted once the step that released the volume has told its Event: a moment after the test sees it).
    const succeeded = { namespace: t.ns, outcome: 'Succeeded', reason: 'PopulatorFinished' };
    await until(
      'the population to be counted',
      async () => sampleValue(await first.metrics(), 'kopia_populations_total', succeeded) !== undefined,
    );
    const text = await first.metrics();
    for (const name of metricNamesOf('populator')) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(sampleValue(text, 'kopia_leader', { lease: 'kopia-populator' })).toBe(1);
    expect(sampleValue(text, 'kopia_build_info')).toBe(1);
    expect(sampleValue(text, 'kopia_reconcile_total', { kind: 'PersistentVolumeClaim', result: 'requeue' })).toBeGreaterThanOrEqual(1);
    expect(
      sampleValue(text, 'kopia_api_requests_total', { verb: 'PATCH', resource: 'persistentvolumes', code: '200' }),
    ).toBeGreaterThanOrEqual(1);
    expect(sampleValue(text, 'kopia_populations_total', succeeded)).toBe(1);
    expect(sampleValue(text, 'kopia_population_duration_seconds_count', { outcome: 'Succeeded' })).toBe(1);

    const claim = await emptyClaim('killed');
    await until(
      'the prime claim',
      async () => !!(await t.client.getOrUndefined(PersistentVolumeClaims, t.ns, `kopia-prime-${claim.metadata.uid}`)),
      30_000,
      10,
    );
    await first.kill();
    second.current = await startPopulatorProcess({ name: 'second', kubeconfig, namespace: t.ns, env });
    await populated('killed');
    expect(await second.current.leading()).toBe(true);

    await second.current.guarded.stop(); // SIGTERM
    const lease = await t.client.get<Obj>(Leases, t.ns, 'kopia-populator');
    expect(lease.spec.holderIdentity ?? '').toBe('');
  } finally {
    await first.guarded.stop();
    await second.current?.guarded.stop();
  }
});
