// A verified repository is never silently re-created or replaced, and a failed Job DELETE
// loses no verification result — on the real control plane, with real kopia, and with the
// operator acting under its own ServiceAccount and the RBAC from manifests/.
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeClient } from '../../operator/kube/kube-client.js';
import { Jobs, KopiaRepositories, PersistentVolumeClaims, PersistentVolumes, Secrets } from '../../operator/kube/resources.js';
import { createLogger } from '../../operator/runtime/logger.js';
import { startManager, type Manager } from '../../operator/manager.js';
import { eventsAbout, until, useTestNamespace, waitForReady, type Obj } from '../support/cluster.js';
import { claimObject, repositoryObject, secretObject } from '../support/objects.js';
import { TEST_MOVER_IMAGE } from '../support/operator.js';
import { grantClusterRole, manifestClusterRoleRules, serviceAccountClient, type PolicyRule } from '../support/service-accounts.js';

const t = useTestNamespace('safety');
const PASSWORD = 'safety password';
let operatorClient: KubeClient;
let manager: Manager;
let rbac: Awaited<ReturnType<typeof grantClusterRole>>;
const operatorRules = manifestClusterRoleRules('kopia-operator');
const withoutJobDelete: PolicyRule[] = operatorRules.map((r) =>
  r.resources.includes('jobs') ? { ...r, verbs: r.verbs.filter((v) => v !== 'delete') } : r,
);

beforeAll(async () => {
  operatorClient = await serviceAccountClient(t.client, t.ns, 'kopia-operator');
  rbac = await grantClusterRole(t.client, `kopia-operator-${t.ns}`, { namespace: t.ns, name: 'kopia-operator' }, operatorRules);
  manager = await startManager({
    client: operatorClient,
    log: createLogger('operator', 'error'),
    namespace: t.ns,
    moverImage: TEST_MOVER_IMAGE,
  });
});
afterAll(async () => {
  manager.stop();
  operatorClient.close();
  await rbac.remove();
});

async function repository(name: string, spec: Record<string, unknown> = {}): Promise<void> {
  await t.client.create(Secrets, secretObject({ name: `${name}-password`, namespace: t.ns, stringData: { KOPIA_PASSWORD: PASSWORD } }));
  await t.client.create(PersistentVolumeClaims, claimObject({ name, namespace: t.ns }));
  await t.client.create(KopiaRepositories, repositoryObject({ name, namespace: t.ns, spec }));
}

async function volumeDir(claimName: string): Promise<string> {
  const pvc = await t.client.get<Obj>(PersistentVolumeClaims, t.ns, claimName);
  const pv = await t.client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName);
  return pv.spec.hostPath.path;
}

function emptyDir(dir: string): void {
  for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
}

const reinitialize = (name: string, value: string) =>
  t.client.patch(KopiaRepositories, t.ns, name, { metadata: { annotations: { 'kopia.io/reinitialize': value } } });

describe('a repository verified before', () => {
  let firstID: string;
  let secondID: string;

  it('is not re-created when its storage looks empty: RepositoryMissing, a Warning Event naming it, nothing written', async () => {
    await repository('nas', { verifyInterval: '10s' });
    firstID = (await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' })).status.uniqueID;
    const dir = await volumeDir('nas');
    emptyDir(dir); // the share that did not mount, the wiped bucket

    const missing = await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'False', reason: 'RepositoryMissing' }, 60000);
    expect(missing.status.uniqueID).toBe(firstID);
    expect(readdirSync(dir)).not.toContain('kopia.repository.f');
    const warning = (await eventsAbout(t.client, t.ns, 'nas')).find((e) => e.reason === 'RepositoryMissing');
    expect(warning).toMatchObject({ type: 'Warning' });
    expect(warning.message).toContain(firstID);
  });

  it('is re-created only on an explicit, one-shot kopia.io/reinitialize request, recorded in an Event', async () => {
    await reinitialize('nas', '2026-11-27T10:00:00Z');
    await until(
      'a new repository',
      async () => {
        const repo = await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas');
        return repo.status.reinitializeHandled === '2026-11-27T10:00:00Z';
      },
      60000,
      200,
    );
    const repo = await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' });
    secondID = repo.status.uniqueID;
    expect(secondID).not.toBe(firstID);
    const event = (await eventsAbout(t.client, t.ns, 'nas')).find((e) => e.reason === 'RepositoryReinitialized');
    expect(event.message).toContain(firstID);
    expect(event.message).toContain(secondID);
    expect(readdirSync(await volumeDir('nas'))).toContain('kopia.repository.f');
  });

  it('reports another repository in its place as RepositoryChanged, until the user accepts it', async () => {
    await repository('other');
    const otherID = (await waitForReady(t.client, KopiaRepositories, t.ns, 'other', { status: 'True', reason: 'Verified' })).status
      .uniqueID;
    const dir = await volumeDir('nas');
    emptyDir(dir);
    cpSync(await volumeDir('other'), dir, { recursive: true });

    const changed = await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'False', reason: 'RepositoryChanged' }, 60000);
    expect(changed.status.uniqueID).toBe(secondID);
    const message = changed.status.conditions.find((c: { type: string }) => c.type === 'Ready').message;
    expect(message).toContain(otherID);
    expect(message).toContain(secondID);

    await reinitialize('nas', '2026-11-27T11:00:00Z');
    await until(
      'the other repository accepted',
      async () => (await t.client.get<Obj>(KopiaRepositories, t.ns, 'nas')).status.uniqueID === otherID,
      60000,
      200,
    );
    await waitForReady(t.client, KopiaRepositories, t.ns, 'nas', { status: 'True', reason: 'Verified' });
  });
});

it('keeps the verification result and keeps verifying when deleting its Job fails', async () => {
  await rbac.update(withoutJobDelete);
  await repository('nodelete', { verifyInterval: '10s' });
  const verified = await waitForReady(t.client, KopiaRepositories, t.ns, 'nodelete', { status: 'True', reason: 'Verified' });
  // The Job could not be deleted; the status names it as collected, so it is not collected twice.
  const job = await t.client.get<Obj>(Jobs, t.ns, 'kopia-verify-nodelete');
  expect(verified.status.collectedJobUID).toBe(job.metadata.uid);
  expect(verified.status.uniqueID).toMatch(/^[0-9a-f]{32,}$/);

  await rbac.update(operatorRules);
  await until(
    'the collected Job to be deleted',
    async () => (await t.client.getOrUndefined(Jobs, t.ns, 'kopia-verify-nodelete'))?.metadata.uid !== job.metadata.uid,
    60000,
    200,
  );
  await until(
    'the next periodic verification',
    async () => (await t.client.get<Obj>(KopiaRepositories, t.ns, 'nodelete')).status.lastCheckTime > verified.status.lastCheckTime,
    60000,
    250,
  );
});
