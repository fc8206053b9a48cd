// What the benchmarks of `make bench` share: a test world (control plane, CRDs, node
// agent) with the compiled operator as its own process, the operator's API request
// counters (/metrics) and resident memory, windows at rest, informers that time what the
// operator does, and plain kopia run as the movers' uid against a repository on a claim.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { KubeClient, type KubeObject, type ResourceType } from '../operator/kube/kube-client.js';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaBackupSchedules,
  KopiaRepositories,
  Namespaces,
  PersistentVolumeClaims,
  PersistentVolumes,
  Secrets,
  ServiceAccounts,
} from '../operator/kube/resources.js';
import { DEFAULT_MOVER_ID } from '../operator/jobs/mover-privileges.js';
import { Informer, type InformerHandler } from '../operator/runtime/informer.js';
import { freePort, startGuarded, type GuardedProcess } from '../e2e/support/processes.js';
import { claimObject, repositoryObject, secretObject } from '../e2e/support/objects.js';
import { repoRoot } from '../e2e/support/paths.js';
import { POPULATOR_SERVICE_ACCOUNT, populatorKubeconfig, populatorManifestRules } from '../e2e/support/populator.js';
import { grantClusterRole } from '../e2e/support/service-accounts.js';
import { startTestWorld, until, type TestWorld } from '../e2e/support/test-world.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- status is read structurally */
export type Obj = KubeObject & { spec?: any; status?: any };
export type Calls = Record<string, number>;
export { until };

export const say = (line: string) => console.log(`[bench] ${line}`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Seconds with two decimals. */
export const secs = (ms: number) => Math.round(ms / 10) / 100;
export const REST_WINDOW_MS = Number(process.env.BENCH_REST_MS ?? 30000);

const isWrite = (key: string) => /^(POST|PUT|PATCH|DELETE) /.test(key);
const isLease = (key: string) => key.endsWith(' leases');

/** kopia_api_requests_total from /metrics text as "VERB resource" counts, summed over the HTTP codes. */
export function apiCallsOf(metricsText: string): Calls {
  const calls: Calls = {};
  for (const m of metricsText.matchAll(/^kopia_api_requests_total\{([^}]*)\} (\d+)$/gm)) {
    const label = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(m[1])?.[1];
    const key = `${label('verb')} ${label('resource')}`;
    calls[key] = (calls[key] ?? 0) + Number(m[2]);
  }
  return calls;
}

/** Calls made between two readings of /metrics, only those that changed. */
export function callsBetween(before: Calls, after: Calls): Calls {
  const out: Calls = {};
  for (const [k, n] of Object.entries(after)) if (n - (before[k] ?? 0) > 0) out[k] = n - (before[k] ?? 0);
  return out;
}

const sum = (calls: Calls, pick: (key: string) => boolean) =>
  Object.entries(calls)
    .filter(([k]) => pick(k))
    .reduce((n, [, v]) => n + v, 0);

export interface WindowSummary {
  windowSeconds: number;
  apiRequests: number;
  requestsPerMinute: number;
  /** Writes other than the leader-election Lease renewals (which every controller makes). */
  apiWrites: number;
  leaseRenewals: number;
  calls: Calls;
}

export function summarize(before: Calls, after: Calls, ms: number): WindowSummary {
  const calls = callsBetween(before, after);
  const apiRequests = sum(calls, () => true);
  return {
    windowSeconds: secs(ms),
    apiRequests,
    requestsPerMinute: Math.round((apiRequests * 60000) / ms),
    apiWrites: sum(calls, (k) => isWrite(k) && !isLease(k)),
    leaseRenewals: calls['PUT leases'] ?? 0,
    calls,
  };
}

/** CPU seconds used between two readings of BenchWorld.cpu(), rounded. */
export function cpuBetween(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((k) => [k, Math.round((after[k] - (before[k] ?? 0)) * 10) / 10]));
}

/** Runs fn over items with at most n in flight. */
export async function inParallel<T>(items: T[], n: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

export const isReady = (o: Obj | undefined) =>
  !!o && (o.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');

export interface Memory {
  rssMB: number;
  peakMB: number;
  anonMB: number;
  fileMB: number;
}

export interface BenchWorld {
  world: TestWorld;
  client: KubeClient;
  /** The operator's namespace (its Lease), also the benchmark's namespace. */
  ns: string;
  startSeconds: number;
  metrics(): Promise<Calls>;
  /** The operator's resident memory now and at its peak, in MB; anonymous (heaps) and file-backed (the node binary) apart. */
  memory(): Memory;
  /** The operator's memory once ready, before the benchmark made anything. */
  idleMemory: Memory;
  /** CPU seconds used so far by each part of the world, the operator and this process (for what dominates a span). */
  cpu(): Record<string, number>;
  /** A bound claim's directory on the node. */
  volumeDir(ns: string, claim: string): Promise<string>;
  /** An informer of the bench's own, stopped with the world. */
  watch<T extends Obj>(
    type: ResourceType,
    opts?: { namespace?: string; labelSelector?: string },
    handler?: InformerHandler<T>,
  ): Promise<Informer<T>>;
  /** Waits until nothing happens (no Job, no request but Lease renewals), then measures a window at rest. */
  rest(ms?: number): Promise<WindowSummary>;
  stop(): Promise<void>;
}

export const BENCH_PASSWORD = 'bench password';

/** A Ready filesystem Repository on a claim of its own, password in the Secret `<name>-password`. */
export async function readyRepository(bw: BenchWorld, name: string, spec: Record<string, unknown> = {}): Promise<void> {
  const { client, ns } = bw;
  await client.create(Secrets, secretObject({ name: `${name}-password`, namespace: ns, stringData: { KOPIA_PASSWORD: BENCH_PASSWORD } }));
  await client.create(PersistentVolumeClaims, claimObject({ name, namespace: ns }));
  await client.create(KopiaRepositories, repositoryObject({ name, namespace: ns, spec }));
  await until(`Repository ${name} Ready`, async () => isReady(await client.get<Obj>(KopiaRepositories, ns, name)), 120000, 250);
}

/** A guarded process is a sh; what it runs (its command line naming script) is its child. */
export function childPid(p: GuardedProcess, script: string): number {
  const children = readFileSync(`/proc/${p.child.pid}/task/${p.child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  for (const pid of children) if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(script)) return pid;
  throw new Error(`process of ${script} not found`);
}

/** A test world, a namespace, and the operator as it ships: its own process, compiled (make bench builds dist/ first). */
export async function startBenchWorld(ns: string, operatorEntry = deploymentScript(OPERATOR_MANIFEST)): Promise<BenchWorld> {
  const t = Date.now();
  const world = await startTestWorld();
  const startSeconds = secs(Date.now() - t);
  const client = await KubeClient.fromFile(world.controlPlane.kubeconfig);
  const informers: Informer<Obj>[] = [];
  let operator: GuardedProcess | undefined;
  const stop = async () => {
    for (const i of informers) i.stop();
    await operator?.stop();
    client.close();
    await world.stop();
  };
  try {
    await client.create(Namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as Obj);
    const port = await freePort();
    operator = startGuarded(
      'operator',
      process.execPath,
      [...deploymentNodeFlags(OPERATOR_MANIFEST), join(repoRoot, operatorEntry)],
      join(world.controlPlane.dir, 'logs/operator.log'),
      {
        ...process.env,
        KUBECONFIG: world.controlPlane.kubeconfig,
        POD_NAMESPACE: ns,
        MOVER_IMAGE: 'kopia-operator:bench',
        HEALTH_PORT: String(port),
        INTAKE_PORT: String(await freePort()),
        LOG_LEVEL: 'warn',
      },
    );
    await until('the operator to be ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 60000, 200);
    const pid = childPid(operator, operatorEntry);
    const metrics = async () => apiCallsOf(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    const memory = (): Memory => {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const mb = (field: string) => Math.round(Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024);
      return { rssMB: mb('VmRSS'), peakMB: mb('VmHWM'), anonMB: mb('RssAnon'), fileMB: mb('RssFile') };
    };
    const idleMemory = memory();
    const cpu = () => {
      const out: Record<string, number> = {
        operator: 0,
        'kube-apiserver': 0,
        etcd: 0,
        'kube-controller-manager': 0,
        'node-agent': 0,
        movers: 0,
      };
      const dir = world.controlPlane.dir;
      for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
        try {
          const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
          const isOperator = Number(entry) === pid;
          if (!isOperator && !cmd.includes(dir)) continue;
          const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
          const f = stat
            .slice(stat.lastIndexOf(')') + 2)
            .split(' ')
            .map(Number);
          const name = isOperator
            ? 'operator'
            : cmd.includes('node-agent-main')
              ? 'node-agent'
              : ['kube-apiserver', 'kube-controller-manager', 'etcd'].find((n) => cmd.split('\0')[0].endsWith(n));
          if (!name || cmd.startsWith('sh\0')) continue; // the guards
          out[name] += (f[11] + f[12]) / 100;
          // The movers are the node agent's children: their CPU is added to it when they are reaped.
          if (name === 'node-agent') out.movers += (f[13] + f[14]) / 100;
        } catch {
          // ended while we looked
        }
      }
      const self = process.cpuUsage();
      out.bench = (self.user + self.system) / 1e6;
      return out;
    };
    return {
      world,
      client,
      ns,
      startSeconds,
      metrics,
      memory,
      idleMemory,
      cpu,
      async volumeDir(namespace, claim) {
        await until(
          `claim ${claim} to bind`,
          async () => (await client.get<Obj>(PersistentVolumeClaims, namespace, claim)).status?.phase === 'Bound',
          60000,
          200,
        );
        const pvc = await client.get<Obj>(PersistentVolumeClaims, namespace, claim);
        return (await client.get<Obj>(PersistentVolumes, undefined, pvc.spec.volumeName)).spec.hostPath.path;
      },
      async watch<T extends Obj>(
        type: ResourceType,
        opts: { namespace?: string; labelSelector?: string } = {},
        handler?: InformerHandler<T>,
      ) {
        const informer = new Informer<T>(client, type, opts);
        if (handler) informer.on(handler);
        informers.push(informer as unknown as Informer<Obj>);
        await informer.start();
        return informer;
      },
      async rest(ms = REST_WINDOW_MS) {
        // Settled: no mover Job anywhere (a running Job makes no request, but its end will)
        // and no request but the Lease renewals, for three seconds in a row.
        let last = await metrics();
        for (let quiet = 0; quiet < 3; ) {
          await sleep(1000);
          const now = await metrics();
          const calls = callsBetween(last, now);
          const jobs = (await client.list<Obj>(Jobs, undefined)).items.length;
          quiet = jobs === 0 && Object.keys(calls).every((k) => k === 'PUT leases' || k === 'GET leases') ? quiet + 1 : 0;
          last = now;
        }
        const before = await metrics();
        await sleep(ms);
        return summarize(before, await metrics(), ms);
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

const run = promisify(execFile);

/** Where the repository and data directories appear to plain kopia (in its own mount namespace; /run is a tmpfs). */
export const PLAIN_MOUNTS = { repository: '/run/kopia-bench/repository', data: '/run/kopia-bench/data' };

/**
 * Plain kopia as a user outside the cluster runs it, with a configuration and cache of its
 * own (a new PlainKopia is a fresh cache). It runs as the movers' uid with the repository
 * (and a data directory) bind-mounted, as e2e/support/kopia-cli.ts does: the directories
 * live under the test world's private directory, and what root wrote there the movers
 * could not read.
 */
export class PlainKopia {
  private readonly dir = mkdtempSync(join(tmpdir(), 'kopia-bench-'));

  constructor(
    private readonly kopiaBinDir: string,
    private readonly password: string,
    private readonly mounts: { repository: string; data?: string },
  ) {
    chmodSync(this.dir, 0o777);
  }

  /** Runs kopia with args; returns its stdout and how long it took. */
  async run(...args: string[]): Promise<{ stdout: string; ms: number }> {
    const id = String(DEFAULT_MOVER_ID);
    const binds = [`mkdir -p ${PLAIN_MOUNTS.repository} && mount --bind "$BENCH_REPOSITORY" ${PLAIN_MOUNTS.repository}`];
    if (this.mounts.data) binds.push(`mkdir -p ${PLAIN_MOUNTS.data} && mount --bind "$BENCH_DATA" ${PLAIN_MOUNTS.data}`);
    const script = `${binds.join(' && ')} && exec setpriv --reuid ${id} --regid ${id} --clear-groups -- "$@"`;
    const argv = ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'kopia-bench', join(this.kopiaBinDir, 'kopia'), ...args];
    const started = process.hrtime.bigint();
    const { stdout } = await run('unshare', argv, {
      maxBuffer: 512 * 1024 * 1024,
      env: {
        PATH: process.env.PATH,
        KOPIA_PASSWORD: this.password,
        BENCH_REPOSITORY: this.mounts.repository,
        BENCH_DATA: this.mounts.data ?? '',
        KOPIA_CHECK_FOR_UPDATES: 'false',
        KOPIA_CONFIG_PATH: join(this.dir, 'repository.config'),
        KOPIA_CACHE_DIRECTORY: join(this.dir, 'cache'),
        KOPIA_LOG_DIR: join(this.dir, 'logs'),
      },
    });
    return { stdout, ms: Number(process.hrtime.bigint() - started) / 1e6 };
  }

  /** Creates a filesystem repository at the mounted repository directory (and stays connected to it). */
  create(who = { username: 'bench', hostname: 'outside' }) {
    return this.run('repository', 'create', 'filesystem', `--path=${PLAIN_MOUNTS.repository}`, ...overrides(who));
  }

  connect(who = { username: 'bench', hostname: 'outside' }) {
    return this.run('repository', 'connect', 'filesystem', `--path=${PLAIN_MOUNTS.repository}`, ...overrides(who));
  }

  async snapshots(): Promise<
    { id: string; source: { userName: string; host: string; path: string }; startTime: string; endTime: string }[]
  > {
    return JSON.parse((await this.run('snapshot', 'list', '--all', '--json')).stdout);
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const overrides = (who: { username: string; hostname: string }) => [
  `--override-username=${who.username}`,
  `--override-hostname=${who.hostname}`,
];

/** kopia's RFC 3339 times carry nanoseconds: the difference in seconds. */
export function kopiaSeconds(start: string, end: string): number {
  const ns = (t: string) => {
    const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t);
    if (!m) return Date.parse(t) * 1e6;
    return Date.parse(`${m[1]}${m[3]}`) * 1e6 + Number((m[2] ?? '').padEnd(9, '0').slice(0, 9));
  };
  return Math.round((ns(end) - ns(start)) / 1e7) / 100;
}

/** The mover's JSON log lines of one Pod (the node agent keeps them under pods/<uid>/logs); undefined without a log. */
export function moverLogEntries(bw: BenchWorld, podUID: string): { t: number; message: string; argv?: string[] }[] | undefined {
  const file = join(bw.world.agentDataDir, 'pods', podUID, 'logs', 'mover.log');
  if (!existsSync(file)) return undefined;
  return readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((line) => {
      try {
        const e = JSON.parse(line);
        return e.timestamp ? [{ t: Date.parse(e.timestamp), message: String(e.message), argv: e.argv as string[] | undefined }] : [];
      } catch {
        return [];
      }
    });
}

const OPERATOR_MANIFEST = 'manifests/operator/deployment.yaml';

/** The script a shipped Deployment runs (its command's last word), relative to the checkout (the image's /app). */
export function deploymentScript(manifest: string): string {
  const command = deploymentCommand(manifest);
  const script = command[command.length - 1];
  if (!script.startsWith('/app/')) throw new Error(`${manifest}: the command's script ${script} is not under /app`);
  return script.slice('/app/'.length);
}

function deploymentCommand(manifest: string): string[] {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, manifest), 'utf8')).map((d) => d.toJS() as Obj);
  const deployment = docs.find((d) => d.kind === 'Deployment');
  const command = deployment?.spec?.template?.spec?.containers?.[0]?.command as string[] | undefined;
  if (!command || command[0] !== 'node') throw new Error(`${manifest}: no Deployment whose command starts with node`);
  return command;
}

/**
 * The node flags a shipped Deployment runs its process with (its command between `node` and
 * the script), so the bench measures the process as deployed.
 */
export function deploymentNodeFlags(manifest: string): string[] {
  return deploymentCommand(manifest)
    .slice(1)
    .filter((arg) => arg.startsWith('--'));
}

/** `n` BackupConfigs on claim app-data of Repository nas, each with a daily schedule at `cron` (app-0000, ...). */
export async function createConfigsAndSchedules(client: KubeClient, ns: string, n: number, cron: string): Promise<void> {
  const names = Array.from({ length: n }, (_, i) => `app-${String(i).padStart(4, '0')}`);
  await inParallel(names, 16, async (name) => {
    await client.create(KopiaBackupConfigs, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'BackupConfig',
      metadata: { name, namespace: ns },
      spec: { repository: { name: 'nas' }, source: { pvc: 'app-data' }, copyMethod: 'Direct' },
    } as Obj);
    await client.create(KopiaBackupSchedules, {
      apiVersion: 'kopia.io/v1alpha1',
      kind: 'BackupSchedule',
      metadata: { name, namespace: ns },
      spec: { configRef: { name }, cron, timeZone: 'UTC', jitter: '30m' },
    } as Obj);
  });
}

/**
 * The populator as the Deployment runs it: `script` with the Deployment's node flags, its own
 * process, its ServiceAccount's token; returns once it leads.
 */
export async function startDeployedPopulator(
  bw: BenchWorld,
  opts: { script: string; logFile: string; podName: string; logLevel: string },
): Promise<{ process: GuardedProcess; pid: number; port: number }> {
  const { client, ns } = bw;
  await client.create(ServiceAccounts, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: POPULATOR_SERVICE_ACCOUNT, namespace: ns },
  } as Obj);
  await grantClusterRole(client, `kopia-populator-${ns}`, { namespace: ns, name: POPULATOR_SERVICE_ACCOUNT }, [
    ...populatorManifestRules('ClusterRole', 'kopia-populator'),
    ...populatorManifestRules('Role', 'kopia-populator-leader-election'),
  ]);
  // populatorKubeconfig takes the API server's address from the admin kubeconfig the tests name.
  process.env.KOPIA_TEST_KUBECONFIG = bw.world.controlPlane.kubeconfig;
  const kubeconfig = await populatorKubeconfig(client, ns, join(bw.world.controlPlane.dir, 'populator.kubeconfig'));
  const port = await freePort();
  const populator = startGuarded(
    'populator',
    process.execPath,
    [...deploymentNodeFlags('manifests/populator/deployment.yaml'), join(repoRoot, opts.script)],
    opts.logFile,
    {
      PATH: process.env.PATH,
      KUBECONFIG: kubeconfig,
      POD_NAMESPACE: ns,
      POD_NAME: opts.podName,
      MOVER_IMAGE: 'kopia-operator:bench',
      HEALTH_PORT: String(port),
      LOG_LEVEL: opts.logLevel,
    },
  );
  await until(
    'the populator to lead',
    async () => /kopia_leader\{lease="kopia-populator"\} 1/.test(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()),
    60000,
    200,
  );
  return { process: populator, pid: childPid(populator, opts.script), port };
}
