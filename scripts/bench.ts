// make bench: measures what exists so far against the design's targets and writes the
// numbers to bench/results/latest.json. Targets for backups, catalog mirroring and the
// populator get their benchmarks with the issues that build them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient, type KubeObject } from '../operator/kube/kube-client.js';
import { KopiaRepositories, Namespaces, PersistentVolumeClaims, Secrets } from '../operator/kube/resources.js';
import { startManager } from '../operator/manager.js';
import { createLogger } from '../operator/runtime/logger.js';
import { createValidator } from '../operator/validation/validator.js';
import { validObjects } from '../operator/test-support/kopia-objects.js';
import { STORAGE_CLASS } from '../e2e/support/node-agent.js';
import { repoRoot } from '../e2e/support/paths.js';
import { startTestWorld, until } from '../e2e/support/test-world.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = KubeObject & { spec?: any; status?: any };
const REPOSITORIES = Number(process.env.BENCH_REPOSITORIES ?? 20);
const REST_WINDOW_MS = Number(process.env.BENCH_REST_MS ?? 30000);
const results: Record<string, unknown> = { date: new Date().toISOString(), node: process.version };
const say = (line: string) => console.log(`[bench] ${line}`);

function benchValidation(): void {
  const validator = createValidator();
  const objects = Object.values(validObjects).map((f) => f());
  const n = 20000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) validator.validate(objects[i % objects.length]);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  results.validation = { objects: n, ms: Math.round(ms), perSecond: Math.round((n / ms) * 1000) };
  say(`offline validation: ${Math.round((n / ms) * 1000)} objects/s`);
}

const writesOf = (calls: Record<string, number>) => (calls.POST ?? 0) + (calls.PUT ?? 0) + (calls.PATCH ?? 0) + (calls.DELETE ?? 0);

async function main(): Promise<void> {
  benchValidation();
  let t = Date.now();
  const world = await startTestWorld();
  results.controlPlaneStartSeconds = (Date.now() - t) / 1000;
  say(`test world (control plane, CRDs, node agent) up in ${results.controlPlaneStartSeconds} s (target: warm start under 15 s)`);
  const client = await KubeClient.fromFile(world.controlPlane.kubeconfig);
  const ns = 'bench';
  await client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as Obj);
  await client.create(Secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pw', namespace: ns }, stringData: { KOPIA_PASSWORD: 'bench password' } } as Obj);
  await client.create(PersistentVolumeClaims, {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'repos', namespace: ns },
    spec: { accessModes: ['ReadWriteMany'], storageClassName: STORAGE_CLASS, resources: { requests: { storage: '10Gi' } } },
  } as Obj);
  const operatorClient = await KubeClient.fromFile(world.controlPlane.kubeconfig);
  const rssBefore = process.memoryUsage().rss;
  const manager = await startManager({ client: operatorClient, log: createLogger('bench-operator', 'error'), namespace: ns, moverImage: 'kopia-operator:bench' });

  t = Date.now();
  for (let i = 0; i < REPOSITORIES; i++) {
    await client.create(KopiaRepositories, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Repository',
      metadata: { name: `r${i}`, namespace: ns },
      spec: { backend: { filesystem: { path: `/r${i}`, volume: { persistentVolumeClaim: { claimName: 'repos' } } } }, passwordSecretRef: { name: 'pw', key: 'KOPIA_PASSWORD' }, create: { enabled: true } },
    } as Obj);
  }
  const readyCount = async () =>
    (await client.list<Obj>(KopiaRepositories, ns)).items.filter((r) => (r.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')).length;
  await until(`${REPOSITORIES} repositories Ready`, async () => (await readyCount()) === REPOSITORIES, 600000, 500);
  results.repositoriesVerified = { count: REPOSITORIES, seconds: (Date.now() - t) / 1000, note: 'each verification is a Job running the mover and kopia create/connect/status' };
  say(`${REPOSITORIES} filesystem repositories created and verified in ${(Date.now() - t) / 1000} s`);

  await manager.whenIdle();
  await new Promise((r) => setTimeout(r, 2000));
  const before = { ...operatorClient.calls };
  await new Promise((r) => setTimeout(r, REST_WINDOW_MS));
  const after = { ...operatorClient.calls };
  const restWrites = writesOf(after) - writesOf(before);
  const restRequests = Object.values(after).reduce((a, b) => a + b, 0) - Object.values(before).reduce((a, b) => a + b, 0);
  results.atRest = { windowSeconds: REST_WINDOW_MS / 1000, apiWrites: restWrites, apiRequests: restRequests, target: 'zero writes per minute at rest' };
  say(`at rest for ${REST_WINDOW_MS / 1000} s: ${restWrites} API writes, ${restRequests} requests in all (target: 0 writes)`);
  results.operatorMemory = {
    rssMB: Math.round(process.memoryUsage().rss / 1e6),
    rssGrowthMB: Math.round((process.memoryUsage().rss - rssBefore) / 1e6),
    note: 'resident memory of the bench process, which runs the operator in-process (target: operator under 150 MB)',
  };
  say(`resident memory with the operator running: ${Math.round(process.memoryUsage().rss / 1e6)} MB`);

  manager.stop();
  operatorClient.close();
  client.close();
  await world.stop();
  const dir = join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  say(`results written to bench/results/latest.json`);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(`[bench] failed: ${e.message}`);
    process.exit(1);
  },
);
