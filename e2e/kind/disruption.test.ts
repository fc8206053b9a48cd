// The processes we ship die mid-work, as pods do: the operator's pods are deleted while a
// backup's mover runs, the populator's while a claim is being populated. Each ends right —
// one snapshot, a claim with the data — and nothing is left over.
import {
  apply,
  createNamespace,
  deleteNamespace,
  get,
  kubectl,
  leftovers,
  list,
  until,
  waitForPhase,
  waitForReady,
  world,
} from './support/kubectl.js';
import { claim, repositorySecret, s3Repository } from './support/objects.js';
import { inventory, restoreMover, runInClaim, seedScript } from './support/volume-data.js';

let ns: string;
let original: string;
const mine = async () => (await leftovers()).filter((l) => l.includes(` ${ns}/`));

/** Deletes every pod of one of our Deployments and waits for the Deployment to be available again. */
async function killAll(component: 'operator' | 'populator'): Promise<void> {
  const selector = `app.kubernetes.io/name=kopia-operator,app.kubernetes.io/component=${component}`;
  const before = (await list('pods', world.system, selector)).map((p) => p.metadata.name);
  expect(before.length).toBeGreaterThan(0);
  await kubectl(['delete', 'pods', '-n', world.system, '-l', selector, '--wait=false']);
  await until(
    `new ${component} pods to be ready`,
    async () => {
      const pods = await list('pods', world.system, selector);
      const fresh = pods.filter((p) => !before.includes(p.metadata.name));
      return (
        fresh.length > 0 &&
        fresh.every((p) =>
          (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'),
        )
      );
    },
    300_000,
  );
}

beforeAll(async () => {
  ns = await createNamespace('e2e-disrupt', { 'kopia.io/privileged-movers': 'true' });
  await apply(JSON.stringify(repositorySecret(ns, 'e2e disruption')));
  await apply(JSON.stringify(claim(ns, 'app-data', '2Gi')));
  // Large enough that the mover is still running when the pods are deleted.
  await runInClaim(ns, 'app-data', seedScript({ bigMiB: 400 }));
  original = await inventory(ns, 'app-data');
  await apply(
    [
      s3Repository(ns),
      {
        apiVersion: 'kopia.io/v1alpha1',
        kind: 'BackupConfig',
        metadata: { name: 'data', namespace: ns },
        spec: { repository: { name: 's3' }, source: { pvc: 'app-data' }, copyMethod: 'Direct' },
      },
    ]
      .map((m) => JSON.stringify(m))
      .join('\n---\n'),
  );
  await waitForReady('repository', ns, 's3', 300_000);
  await waitForReady('backupconfig', ns, 'data', 180_000);
}, 900_000);

afterAll(async () => {
  if (ns) await deleteNamespace(ns);
}, 600_000);

it('finishes a backup whose operator pods were deleted while its mover ran: one snapshot, nothing left', async () => {
  await apply(
    JSON.stringify({
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Backup',
      metadata: { name: 'during-restart', namespace: ns },
      spec: { configRef: { name: 'data' } },
    }),
  );
  await until(
    'the backup mover to be running',
    async () => {
      const pods = await list('pods', ns, 'app.kubernetes.io/managed-by=kopia-operator,kopia.io/operation=backup');
      return pods.some((p) => p.status?.phase === 'Running');
    },
    300_000,
  );
  await killAll('operator');
  const backup = await waitForPhase('backup', ns, 'during-restart', 'Succeeded', 900_000);
  expect(backup.status.stats).toMatchObject({ errors: 0 });
  // The new leader adopted the running Job instead of starting a second one.
  const backups = await list('backups', ns);
  expect(backups.map((b) => b.metadata.name)).toEqual(['during-restart']);
  await until(
    'no mover Job or pod left',
    async () => (await mine()).length === 0,
    180_000,
    async () => (await mine()).join('\n'),
  );
}, 1_500_000);

it('populates a claim whose populator pods were deleted mid-population: the data, and no prime claim left', async () => {
  await apply(
    JSON.stringify({
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Restore',
      metadata: { name: 'data', namespace: ns },
      spec: {
        source: { fromConfig: { name: 'data', offset: 0 } },
        target: { populator: {} },
        onMissingSnapshot: 'Fail',
        mover: restoreMover,
      },
    }),
  );
  await apply(JSON.stringify(claim(ns, 'restored', '2Gi', { dataSourceRef: { apiGroup: 'kopia.io', kind: 'Restore', name: 'data' } })));
  // The consumer waits for the claim; meanwhile the populator's pods go away mid-restore.
  const consumer = inventory(ns, 'restored');
  await until(
    'the restore mover to be running',
    async () => {
      const pods = await list('pods', ns, 'app.kubernetes.io/managed-by=kopia-operator,kopia.io/operation=restore');
      return pods.some((p) => p.status?.phase === 'Running');
    },
    600_000,
  );
  await killAll('populator');
  expect(await consumer).toEqual(original);
  const restored = await get('pvc', ns, 'restored');
  expect(restored.status.phase).toBe('Bound');
  await until(
    'no populate Job, pod or prime claim left',
    async () => (await mine()).length === 0,
    300_000,
    async () => (await mine()).join('\n'),
  );
}, 1_800_000);
