// A long-lived world: user stories run one after another in one world, each leaving behind
// what a user leaves (an application running on the data it restored, a repository with a
// wrong password that keeps being verified, a tenant namespace deleted while its pod ran);
// then a fresh backup, mirror of a new repository's foreign snapshots and restore still
// finish in their normal time. A world like that once mirrored nothing in 120 s and backed
// up nothing in 300 s (each application pod held one of the node agent's pod workers).
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaRepositories,
  KopiaRestores,
  Namespaces,
  PersistentVolumeClaims,
  PersistentVolumes,
  Pods,
  Secrets,
} from '../../operator/kube/resources.js';
import { removeTree } from '../support/remove-tree.js';
import { createNamespace, until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { KopiaCli } from '../support/kopia-cli.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { startTestOperator } from '../support/operator.js';

const t = useTestNamespace('soak');
const PASSWORD = 'soak password';
/** As many stories as the world that stalled had served. */
const STORIES = 8;
/** What a backup, a mirror or a restore may take here on a busy machine; a fresh world needs a few seconds. */
const NORMAL_MS = 60000;
let operator: Awaited<ReturnType<typeof startTestOperator>>;
let scratch: string;

async function volumeDir(claimName: string): Promise<string> {
  await until(
    `claim ${claimName} to bind`,
    async () => (await t.client.get<Obj>(PersistentVolumeClaims, t.ns, claimName)).status?.phase === 'Bound',
  );
  const pvc = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, claimName);
  return (await t.client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path;
}

/** Runs a Backup of config app; returns how long it took. */
async function backup(name: string): Promise<number> {
  const started = Date.now();
  await t.client.create(KopiaBackups, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: { name, namespace: t.ns },
    spec: { configRef: { name: 'app' } },
  } as Obj);
  await until(
    `Backup ${name} to succeed`,
    async () => (await t.client.get<Obj>(KopiaBackups, t.ns, name)).status?.phase === 'Succeeded',
    NORMAL_MS,
    250,
  );
  return Date.now() - started;
}

/** Restores config app's latest snapshot into a new claim; returns how long it took. */
async function restore(name: string, claimName: string): Promise<number> {
  await t.client.create(PersistentVolumeClaims, claimObject({ name: claimName, namespace: t.ns }));
  const started = Date.now();
  await t.client.create(KopiaRestores, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Restore',
    metadata: { name, namespace: t.ns },
    spec: { source: { fromConfig: { name: 'app' } }, target: { pvc: { name: claimName } } },
  } as Obj);
  await until(
    `Restore ${name} to complete`,
    async () => (await t.client.get<Obj>(KopiaRestores, t.ns, name)).status?.phase === 'Completed',
    NORMAL_MS,
    250,
  );
  const took = Date.now() - started;
  expect(readFileSync(join(await volumeDir(claimName), 'state.txt'), 'utf8')).toBe('the application state\n');
  return took;
}

/** A user's application on a claim: it runs until someone deletes it. */
function application(name: string, namespace: string, claimName?: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { role: 'application' } },
    spec: {
      restartPolicy: 'Always',
      containers: [
        {
          name: 'app',
          image: 'kopia-operator:test',
          command: ['sh', '-c', 'sleep 3600'],
          volumeMounts: claimName ? [{ name: 'data', mountPath: '/data' }] : [],
        },
      ],
      volumes: claimName ? [{ name: 'data', persistentVolumeClaim: { claimName } }] : [],
    },
  };
}

async function running(namespace: string, name: string): Promise<void> {
  await until(`pod ${name} to run`, async () => (await t.client.get<Obj>(Pods, namespace, name)).status?.phase === 'Running');
}

beforeAll(async () => {
  operator = await startTestOperator(t.ns);
  scratch = mkdtempSync(join(tmpdir(), 'soak-test-'));
  chmodSync(scratch, 0o777); // plain kopia runs as the movers' uid (KopiaCli)
  for (const name of ['nas', 'fresh'])
    await t.client.create(Secrets, secretObject({ name: `${name}-password`, namespace: t.ns, stringData: { KOPIA_PASSWORD: PASSWORD } }));
  for (const claim of ['nas', 'app-data']) await t.client.create(PersistentVolumeClaims, claimObject({ name: claim, namespace: t.ns }));
  await t.client.create(KopiaRepositories, repositoryObject({ name: 'nas', namespace: t.ns }));
  await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' });
  writeFileSync(join(await volumeDir('app-data'), 'state.txt'), 'the application state\n');
  await t.client.create(KopiaBackupConfigs, {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name: 'app', namespace: t.ns },
    spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' }, copyMethod: 'Direct' },
  } as Obj);
  await waitForReady(t.client, KopiaBackupConfigs, t.ns, 'app', { status: 'True', reason: 'Ready' });
});
afterAll(async () => {
  await operator.stop();
  removeTree(scratch);
});

describe('a world that has served the user stories one after another', () => {
  const normal: { backup: number; restore: number } = { backup: 0, restore: 0 };

  it('serves them: backups, restores with their applications left running, a wrong password, a tenant gone', async () => {
    // A repository whose password is wrong, verified again and again while the rest goes on.
    await t.client.create(
      Secrets,
      secretObject({ name: 'wrong-password', namespace: t.ns, stringData: { KOPIA_PASSWORD: 'not the password' } }),
    );
    await t.client.create(
      KopiaRepositories,
      repositoryObject({ name: 'wrong', namespace: t.ns, claimName: 'nas', create: false, spec: { verifyInterval: '10s' } }),
    );
    await waitForReady(t.client, KopiaRepositories, t.ns, 'wrong', { status: 'False', reason: 'WrongPassword' });

    normal.backup = await backup('first');
    for (let story = 1; story <= STORIES; story++) {
      const restoreMs = await restore(`story-${story}`, `restored-${story}`);
      if (story === 1) normal.restore = restoreMs;
      // The user's application now runs on the restored data, and keeps running.
      await t.client.create(Pods, application(`app-${story}`, t.ns, `restored-${story}`));
      await running(t.ns, `app-${story}`);
    }

    // A tenant's namespace goes while its application still runs.
    const tenant = await createNamespace(t.client, 'soak-tenant');
    await t.client.create(Pods, application('app', tenant));
    await running(tenant, 'app');
    await t.client.delete(Namespaces, undefined, tenant);
    await until('the tenant namespace to be gone', async () => !(await t.client.getOrUndefined(Namespaces, undefined, tenant)), NORMAL_MS);
  }, 600000);

  it('still backs up, mirrors a new repository and restores in their normal time', async () => {
    const backupMs = await backup('fresh');

    await t.client.create(PersistentVolumeClaims, claimObject({ name: 'fresh', namespace: t.ns }));
    await t.client.create(
      KopiaRepositories,
      repositoryObject({ name: 'fresh', namespace: t.ns, spec: { catalog: { refreshInterval: '10s' } } }),
    );
    await waitForReady(t.client, KopiaRepositories, t.ns, 'fresh', { status: 'True', reason: 'Verified' }, NORMAL_MS);
    const docs = join(scratch, 'docs');
    mkdirSync(docs);
    writeFileSync(join(docs, 'a.txt'), 'from a laptop');
    const outside = await KopiaCli.connect(process.env.KOPIA_BIN_DIR!, await volumeDir('fresh'), PASSWORD, {
      username: 'laptop',
      hostname: 'home',
    });
    let mirrorMs: number;
    try {
      await outside.run('snapshot', 'create', docs, '--json');
      const started = Date.now();
      await until(
        "the laptop's snapshot as a Discovered Backup",
        async () =>
          (await t.client.list<Obj>(KopiaBackups, t.ns)).items.some(
            (b) => b.status?.origin === 'Discovered' && b.status?.snapshot?.identity?.username === 'laptop',
          ),
        NORMAL_MS,
        500,
      );
      mirrorMs = Date.now() - started;
    } finally {
      outside.close();
    }

    const restoreMs = await restore('fresh', 'restored-fresh');
    process.stderr.write(
      `[soak] first story: backup ${normal.backup} ms, restore ${normal.restore} ms; ` +
        `after ${STORIES} stories: backup ${backupMs} ms, mirror ${mirrorMs} ms, restore ${restoreMs} ms\n`,
    );
    // The stories' applications still run: nothing was won by ending them.
    const apps = (await t.client.list<Obj>(Pods, t.ns, { labelSelector: 'role=application' })).items;
    expect(apps.filter((p) => p.status?.phase === 'Running')).toHaveLength(STORIES);
  }, 300000);
});
