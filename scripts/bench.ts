// make bench: measures what exists so far against the design's targets and writes the
// numbers to bench/results/latest.json. Targets for backups, catalog mirroring and the
// populator get their benchmarks with the issues that build them.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient, type KubeObject } from '../operator/kube/kube-client.js';
import { KopiaRepositories, Namespaces, PersistentVolumeClaims, Secrets } from '../operator/kube/resources.js';
import { freePort, startGuarded, type GuardedProcess } from '../e2e/support/processes.js';
import { createValidator } from '../operator/validation/validator.js';
import { validObjects } from '../operator/test-support/kopia-objects.js';
import { claimObject, secretObject } from '../e2e/support/objects.js';
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

/** The guarded process is a sh; the operator is its child. */
function operatorPid(p: GuardedProcess): number {
  const children = readFileSync(`/proc/${p.child.pid}/task/${p.child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  for (const pid of children) if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dist/operator/main.js')) return pid;
  throw new Error('operator process not found');
}

/** Writes other than the leader-election Lease renewals (which every controller makes). */
const writesOf = (calls: Record<string, number>) =>
  Object.entries(calls)
    .filter(([k]) => /^(POST|PUT|PATCH|DELETE) /.test(k) && !k.endsWith(' leases'))
    .reduce((sum, [, n]) => sum + n, 0);
const leaseRenewals = (calls: Record<string, number>) => calls['PUT leases'] ?? 0;

async function main(): Promise<void> {
  benchValidation();
  let t = Date.now();
  const world = await startTestWorld();
  results.controlPlaneStartSeconds = (Date.now() - t) / 1000;
  say(`test world (control plane, CRDs, node agent) up in ${results.controlPlaneStartSeconds} s (target: warm start under 15 s)`);
  const client = await KubeClient.fromFile(world.controlPlane.kubeconfig);
  const ns = 'bench';
  await client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as Obj);
  await client.create(Secrets, secretObject({ name: 'pw', namespace: ns, stringData: { KOPIA_PASSWORD: 'bench password' } }));
  // One claim per repository: a filesystem path that does not exist is Unreachable, and
  // the operator never creates storage locations it was not told to.
  for (let i = 0; i < REPOSITORIES; i++) {
    await client.create(PersistentVolumeClaims, claimObject({ name: `repo-${i}`, namespace: ns }));
  }
  // The operator as it ships: its own process, compiled (make bench builds dist/ first).
  const port = await freePort();
  const operator = startGuarded(
    'operator',
    process.execPath,
    [join(repoRoot, 'dist/operator/main.js')],
    join(world.controlPlane.dir, 'logs/operator.log'),
    {
      ...process.env,
      KUBECONFIG: world.controlPlane.kubeconfig,
      POD_NAMESPACE: ns,
      MOVER_IMAGE: 'kopia-operator:bench',
      HEALTH_PORT: String(port),
      LOG_LEVEL: 'warn',
    },
  );
  const metrics = async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const calls: Record<string, number> = {};
    for (const m of text.matchAll(/verb="([A-Z]+)",resource="([^"]+)"\} (\d+)/g)) calls[`${m[1]} ${m[2]}`] = Number(m[3]);
    return calls;
  };
  await until('the operator to be ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 60000, 200);

  t = Date.now();
  for (let i = 0; i < REPOSITORIES; i++) {
    await client.create(KopiaRepositories, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'Repository',
      metadata: { name: `r${i}`, namespace: ns },
      spec: {
        backend: { filesystem: { path: '/', volume: { persistentVolumeClaim: { claimName: `repo-${i}` } } } },
        passwordSecretRef: { name: 'pw', key: 'KOPIA_PASSWORD' },
        create: { enabled: true },
      },
    } as Obj);
  }
  const readyCount = async () =>
    (await client.list<Obj>(KopiaRepositories, ns)).items.filter((r) =>
      (r.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
    ).length;
  await until(`${REPOSITORIES} repositories Ready`, async () => (await readyCount()) === REPOSITORIES, 600000, 500);
  results.repositoriesVerified = {
    count: REPOSITORIES,
    seconds: (Date.now() - t) / 1000,
    note: 'each verification is a Job running the mover and kopia create/connect/status',
  };
  say(`${REPOSITORIES} filesystem repositories created and verified in ${(Date.now() - t) / 1000} s`);

  await new Promise((r) => setTimeout(r, 3000));
  const before = await metrics();
  await new Promise((r) => setTimeout(r, REST_WINDOW_MS));
  const after = await metrics();
  const restWrites = writesOf(after) - writesOf(before);
  const restRequests = Object.values(after).reduce((a, b) => a + b, 0) - Object.values(before).reduce((a, b) => a + b, 0);
  const renewals = leaseRenewals(after) - leaseRenewals(before);
  results.atRest = {
    windowSeconds: REST_WINDOW_MS / 1000,
    apiWrites: restWrites,
    leaseRenewals: renewals,
    apiRequests: restRequests,
    target: 'zero writes per minute at rest (leader-election renewals counted apart)',
  };
  say(
    `at rest for ${REST_WINDOW_MS / 1000} s: ${restWrites} API writes besides ${renewals} Lease renewals; ${restRequests} requests in all (target: 0 writes)`,
  );
  const rssMB = Math.round(Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${operatorPid(operator)}/status`, 'utf8'))![1]) / 1024);
  results.operatorMemory = { rssMB, repositories: REPOSITORIES, target: 'operator resident memory under 150 MB' };
  say(`operator resident memory: ${rssMB} MB (target: under 150 MB)`);

  await operator.stop();
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
