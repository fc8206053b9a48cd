// make run: the operator against a real local control plane. Starts etcd, kube-apiserver,
// kube-controller-manager and the node agent, runs the operator as its own process (with
// leader election, started again whenever it dies, as a Deployment would), then applies a
// small demo — a Secret, a claim for the repository, a filesystem Repository with create
// enabled, a BackupConfig and a BackupSchedule, then a Backup of some files — and shows what
// the operator made of them. Keeps running
// until Ctrl-C or SIGTERM, then stops everything and removes its data directory (or does
// that right after the demo with --once).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient, type KubeObject } from '../operator/kube/kube-client.js';
import {
  Events,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaBackupSchedules,
  KopiaMaintenances,
  KopiaRepositories,
  KopiaRestores,
  Namespaces,
  PersistentVolumeClaims,
  PersistentVolumes,
  Secrets,
} from '../operator/kube/resources.js';
import { conditionOf } from '../e2e/support/cluster.js';
import { claimObject, secretObject } from '../e2e/support/objects.js';
import { repoRoot, tsNode } from '../e2e/support/paths.js';
import { freePort, startGuarded, supervise, type Supervised } from '../e2e/support/processes.js';
import { startTestWorld, until, type TestWorld } from '../e2e/support/test-world.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = KubeObject & { spec?: any; status?: any };
const once = process.argv.includes('--once');
const say = (line: string) => console.log(`[make run] ${line}`);
const NS = 'demo';
/** The processes make run keeps running, as their Deployments would. */
type Running = { operator?: Supervised; populator?: Supervised };

/** Resolves on the first Ctrl-C or SIGTERM; from then on the run winds down. */
function stopRequested(): { requested: Promise<string>; readonly signal?: string } {
  const state: { requested: Promise<string>; signal?: string } = { requested: Promise.resolve('') };
  state.requested = new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.on(signal, () => {
        if (!state.signal) say(`${signal}: stopping everything`);
        state.signal ??= signal;
        resolve(signal);
      });
  });
  return state;
}

async function main(): Promise<number> {
  const stop = stopRequested();
  // The children are unref'd (so a crash of this process cannot be held up by them): keep
  // the event loop alive ourselves until we decide to end.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  let world: TestWorld | undefined;
  const running: Running = {};
  try {
    world = await startTestWorld(say);
    if (stop.signal) return 130;
    // Ctrl-C during the demo ends the run at once; the abandoned demo's calls then fail quietly.
    const demo = runDemo(world, running);
    demo.catch(() => undefined);
    await Promise.race([demo, stop.requested]);
    if (once || stop.signal) return stop.signal ? 130 : 0;
    say(`running (data in ${world.controlPlane.dir}); Ctrl-C stops everything and removes it`);
    await stop.requested;
    return 0;
  } finally {
    await running.populator?.stop();
    await running.operator?.stop();
    await world?.stop();
    clearInterval(keepAlive);
    if (world) say(`stopped; removed ${world.controlPlane.dir}`);
  }
}

const metricsUrl = (port: number) => `http://127.0.0.1:${port}/metrics`;

async function volumeDir(client: KubeClient, claim: string): Promise<string> {
  await until(`claim ${claim} to bind`, async () => (await client.get<Obj>(PersistentVolumeClaims, NS, claim)).status?.phase === 'Bound');
  const pvc = await client.get<Obj>(PersistentVolumeClaims, NS, claim);
  return (await client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path;
}

async function runDemo(world: TestWorld, running: Running): Promise<void> {
  const { kubeconfig, dir } = world.controlPlane;
  const client = await KubeClient.fromFile(kubeconfig);
  for (const name of ['kopia-system', NS])
    await client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as Obj);
  const [node, ...nodeArgs] = tsNode();
  // Fixed for the whole run (a restarted process listens on the same port), so the metrics URLs printed stay true.
  const operatorPort = await freePort();
  let populatorPort = await freePort();
  while (populatorPort === operatorPort) populatorPort = await freePort();
  const operatorLog = join(dir, 'logs/operator.log');
  running.operator = supervise(
    'operator',
    () =>
      startGuarded('operator', node, [...nodeArgs, join(repoRoot, 'operator/main.ts')], operatorLog, {
        ...process.env,
        KUBECONFIG: kubeconfig,
        POD_NAMESPACE: 'kopia-system',
        MOVER_IMAGE: 'kopia-operator:dev',
        HEALTH_PORT: String(operatorPort),
        INTAKE_PORT: '0', // catalog uploads: a free port on loopback, where the movers (local processes) reach it
      }),
    say,
  );
  say(`operator started (log: ${operatorLog}; metrics: ${metricsUrl(operatorPort)})`);
  // The populator beside it, as its own Deployment would run: claims naming a Restore are filled.
  const populatorLog = join(dir, 'logs/populator.log');
  running.populator = supervise(
    'populator',
    () =>
      startGuarded('populator', node, [...nodeArgs, join(repoRoot, 'operator/populator/main.ts')], populatorLog, {
        ...process.env,
        KUBECONFIG: kubeconfig,
        POD_NAMESPACE: 'kopia-system',
        MOVER_IMAGE: 'kopia-operator:dev',
        HEALTH_PORT: String(populatorPort),
      }),
    say,
  );
  say(`populator started (log: ${populatorLog}; metrics: ${metricsUrl(populatorPort)})`);

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
        spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' }, retention: { keepLatest: 10, keepDaily: 7 } },
      },
    },
    {
      type: KopiaBackupSchedules,
      obj: {
        apiVersion: 'kopia.io/v1alpha1',
        kind: 'BackupSchedule',
        metadata: { name: 'app-every-10-minutes', namespace: NS },
        spec: { configRef: { name: 'app' }, cron: '*/10 * * * *', jitter: '1m' },
      },
    },
  ];
  for (const { type, obj } of demo) {
    await client.create(type, obj as Obj);
    say(`applied ${obj.kind} ${NS}/${obj.metadata.name}`);
  }
  const ready = (o: Obj) => conditionOf(o);
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

  // The application's files, then a manual Backup of them (copyMethod Snapshot: a VolumeSnapshot and a temporary claim).
  const data = await volumeDir(client, 'app-data');
  mkdirSync(join(data, 'config'), { recursive: true });
  writeFileSync(join(data, 'config/settings.json'), '{"theme": "dark"}\n');
  writeFileSync(join(data, 'library.db'), randomBytes(256 * 1024));
  await client.create(KopiaBackups, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: { name: 'app-first', namespace: NS },
    spec: { configRef: { name: 'app' }, tags: { reason: 'demo' } },
  } as Obj);
  say(`applied Backup ${NS}/app-first`);
  let backup: Obj | undefined;
  await until(
    'Backup demo/app-first to finish',
    async () => ['Succeeded', 'Failed'].includes((backup = await client.get<Obj>(KopiaBackups, NS, 'app-first')).status?.phase),
    120000,
    250,
  );
  say(`Backup ${NS}/app-first: ${backup!.status.phase} — ${ready(backup!).message}`);
  say(
    `  snapshot ${backup!.status.snapshot?.id} of ${config.status.identityString}, retention ${JSON.stringify(backup!.status.retentionReasons)}`,
  );
  await until(
    'the catalog mirror to list it',
    async () => ((await client.get<Obj>(KopiaRepositories, NS, 'nas')).status.catalog?.snapshots ?? 0) >= 1,
    60000,
    250,
  );
  say(
    `catalog: ${(await client.get<Obj>(KopiaRepositories, NS, 'nas')).status.catalog.snapshots} snapshot(s) in the repository, mirrored as Backup objects`,
  );

  // A populated restore: a claim whose dataSourceRef names a Restore of the newest snapshot.
  await client.create(KopiaRestores, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Restore',
    metadata: { name: 'app-restored', namespace: NS },
    spec: { source: { fromConfig: { name: 'app' } }, target: { populator: {} } },
  } as Obj);
  const restoredClaim = claimObject({ name: 'app-data-restored', namespace: NS }) as Obj;
  restoredClaim.spec.dataSourceRef = { apiGroup: 'kopia.io', kind: 'Restore', name: 'app-restored' };
  await client.create(PersistentVolumeClaims, restoredClaim);
  say(`applied Restore ${NS}/app-restored and claim ${NS}/app-data-restored (dataSourceRef: the Restore)`);
  await until(
    'claim demo/app-data-restored to be populated and Bound',
    async () => (await client.get<Obj>(PersistentVolumeClaims, NS, 'app-data-restored')).status?.phase === 'Bound',
    180000,
    250,
  );
  const restore = await client.get<Obj>(KopiaRestores, NS, 'app-restored');
  const restoredDir = await volumeDir(client, 'app-data-restored');
  const same =
    readFileSync(join(restoredDir, 'config/settings.json'), 'utf8') === readFileSync(join(data, 'config/settings.json'), 'utf8') &&
    readFileSync(join(restoredDir, 'library.db')).equals(readFileSync(join(data, 'library.db')));
  say(`Restore ${NS}/app-restored: ${restore.status?.phase}, snapshot ${restore.status?.resolved?.snapshotID}`);
  say(`  claim ${NS}/app-data-restored Bound; its files ${same ? 'match' : 'DO NOT match'} the backed-up claim's`);
  if (!same) throw new Error('the populated claim does not hold the backed-up files');
  await until(
    'the default Maintenance demo/nas to run',
    async () => !!(await client.getOrUndefined<Obj>(KopiaMaintenances, NS, 'nas'))?.status?.lastQuick,
    120000,
    250,
  );
  const maintenance = await client.get<Obj>(KopiaMaintenances, NS, 'nas');
  say(
    `Maintenance ${NS}/nas (the repository's default): owner ${maintenance.status.owner}, quick run ${maintenance.status.lastQuick.result}, ` +
      `${maintenance.status.indexBlobs?.count ?? '?'} index blobs; next quick ${maintenance.status.nextQuickTime}, next full ${maintenance.status.nextFullTime}`,
  );

  const events = await client.list<Obj>(Events, NS);
  const ours = events.items.filter((x: any) => x.source?.component === 'kopia-operator' || x.source?.component === 'kopia-populator');
  for (const e of ours.sort((a: any, b: any) => (a.firstTimestamp ?? '').localeCompare(b.firstTimestamp ?? '')))
    say(`  event ${(e as any).type} ${(e as any).reason}: ${(e as any).message}`);
  say(
    'BackupSchedule demo/app-every-10-minutes makes a Backup every 10 minutes; Maintenance demo/nas runs quick maintenance every 6 hours and full daily.',
  );
  say('try: kubectl get kopia -n demo; kubectl get kbk -n demo -o wide; kubectl get pvc -n demo; kubectl describe kmaint nas -n demo');
  say(`operator metrics: ${metricsUrl(operatorPort)}`);
  say(`populator metrics: ${metricsUrl(populatorPort)}`);
  writeFileSync(join(dir, 'KUBECONFIG'), kubeconfig);
  say(`kubectl works against it: export KUBECONFIG=${kubeconfig}`);
  client.close();
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`[make run] failed: ${e.message}`);
    process.exit(1);
  },
);
