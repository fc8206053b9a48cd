// make run: the operator against a real local control plane. Starts etcd, kube-apiserver,
// kube-controller-manager and the node agent, runs the operator as its own process (with
// leader election), then applies a small demo — a Secret, a claim for the repository, a
// filesystem Repository with create enabled and a BackupConfig — and shows what the
// operator made of them. Keeps running until Ctrl-C (or exits after the demo with --once).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient, type KubeObject } from '../operator/kube/kube-client.js';
import { Events, KopiaBackupConfigs, KopiaRepositories, Namespaces, PersistentVolumeClaims, Secrets } from '../operator/kube/resources.js';
import { claimObject, secretObject } from '../e2e/support/objects.js';
import { repoRoot, tsNode } from '../e2e/support/paths.js';
import { startGuarded } from '../e2e/support/processes.js';
import { startTestWorld, until } from '../e2e/support/test-world.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = KubeObject & { spec?: any; status?: any };
const once = process.argv.includes('--once');
const say = (line: string) => console.log(`[make run] ${line}`);
const NS = 'demo';

async function main(): Promise<number> {
  const world = await startTestWorld(say);
  const { kubeconfig, dir } = world.controlPlane;
  const client = await KubeClient.fromFile(kubeconfig);
  for (const name of ['kopia-system', NS])
    await client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as Obj);
  const [node, ...nodeArgs] = tsNode();
  const operator = startGuarded('operator', node, [...nodeArgs, join(repoRoot, 'operator/main.ts')], join(dir, 'logs/operator.log'), {
    ...process.env,
    KUBECONFIG: kubeconfig,
    POD_NAMESPACE: 'kopia-system',
    MOVER_IMAGE: 'kopia-operator:dev',
    HEALTH_PORT: '0',
  });
  say(`operator started (log: ${join(dir, 'logs/operator.log')})`);

  const demo = [
    {
      type: Secrets,
      obj: secretObject({ name: 'kopia-repo', namespace: NS, stringData: { KOPIA_PASSWORD: 'demo password, not for production' } }),
    },
    {
      type: PersistentVolumeClaims,
      obj: claimObject({ name: 'kopia-nas', namespace: NS, storage: '5Gi' }),
    },
    {
      type: PersistentVolumeClaims,
      obj: claimObject({ name: 'app-data', namespace: NS }),
    },
    {
      type: KopiaRepositories,
      obj: {
        apiVersion: 'kopia.io/v1alpha1',
        kind: 'Repository',
        metadata: { name: 'nas', namespace: NS },
        spec: {
          backend: { filesystem: { path: '/', volume: { persistentVolumeClaim: { claimName: 'kopia-nas' } } } },
          passwordSecretRef: { name: 'kopia-repo', key: 'KOPIA_PASSWORD' },
          create: { enabled: true },
        },
      },
    },
    {
      type: KopiaBackupConfigs,
      obj: {
        apiVersion: 'kopia.io/v1alpha1',
        kind: 'BackupConfig',
        metadata: { name: 'app', namespace: NS },
        spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' } },
      },
    },
  ];
  for (const { type, obj } of demo) {
    await client.create(type, obj as Obj);
    say(`applied ${obj.kind} ${NS}/${obj.metadata.name}`);
  }
  const ready = (o: Obj) => (o.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
  await until(
    'Repository demo/nas to be verified',
    async () => ready(await client.get<Obj>(KopiaRepositories, NS, 'nas'))?.status === 'True',
    120000,
    250,
  );
  await until(
    'BackupConfig demo/app to be Ready',
    async () => ready(await client.get<Obj>(KopiaBackupConfigs, NS, 'app'))?.status === 'True',
    60000,
    250,
  );
  const repo = await client.get<Obj>(KopiaRepositories, NS, 'nas');
  const config = await client.get<Obj>(KopiaBackupConfigs, NS, 'app');
  say(`Repository ${NS}/nas: Ready=${ready(repo).status} (${ready(repo).reason}) — ${ready(repo).message}`);
  say(`  uniqueID ${repo.status.uniqueID}, encryption ${repo.status.format.encryption}, ${repo.status.snapshotCount} snapshots`);
  say(`BackupConfig ${NS}/app: Ready=${ready(config).status} — ${ready(config).message}; identity ${config.status.identityString}`);
  const events = await client.list<Obj>(Events, NS);
  for (const e of events.items.filter((x: any) => x.source?.component === 'kopia-operator'))
    say(`  event ${(e as any).type} ${(e as any).reason}: ${(e as any).message}`);
  say('backups, restores and the volume populator arrive with their own issues; this run shows the repository side.');
  writeFileSync(join(dir, 'KUBECONFIG'), kubeconfig);
  say(`kubectl works against it: export KUBECONFIG=${kubeconfig}`);
  client.close();
  if (once) {
    await operator.stop();
    await world.stop();
    return 0;
  }
  say('running; Ctrl-C stops everything and removes the data directory');
  await new Promise<void>((resolve) => {
    process.on('SIGINT', resolve);
    process.on('SIGTERM', resolve);
  });
  await operator.stop();
  await world.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`[make run] failed: ${e.message}`);
    process.exit(1);
  },
);
