// Runs the populator for control-plane tests: in the test process, acting as its own
// ServiceAccount with the RBAC from manifests/populator/, so a permission the manifests
// lack fails a test instead of being hidden by the admin certificate.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { KubeClient, KubeObject } from '../../operator/kube/kube-client.js';
import type { RetryPolicy } from '../../operator/populator/populator-plan.js';
import { startPopulatorCaches, type PopulatorManager } from '../../operator/populator/populator-manager.js';
import { LeaderElector } from '../../operator/runtime/leader-election.js';
import { createLogger } from '../../operator/runtime/logger.js';
import { TEST_MOVER_IMAGE } from './operator.js';
import { repoRoot, tsNode } from './paths.js';
import { freePort, processesMentioning, startGuarded, type GuardedProcess } from './processes.js';
import { grantClusterRole, serviceAccountClient, type PolicyRule } from './service-accounts.js';
import { scrapeMetrics } from './metrics-text.js';

export const POPULATOR_SERVICE_ACCOUNT = 'kopia-populator';

/** The rules of a role in manifests/populator/rbac.yaml. */
export function populatorManifestRules(kind: 'ClusterRole' | 'Role', name: string): PolicyRule[] {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, 'manifests/populator/rbac.yaml'), 'utf8')).map((d) => d.toJS() as KubeObject);
  const role = docs.find((d) => d.kind === kind && d.metadata.name === name);
  if (!role) throw new Error(`manifests/populator/rbac.yaml has no ${kind} ${name}`);
  return (role as unknown as { rules: PolicyRule[] }).rules;
}

/**
 * A client of the populator's ServiceAccount in namespace, granted the manifests' ClusterRole
 * and (cluster-wide here, for the test's own Lease) the leader-election Role's rules.
 */
export async function populatorIdentity(admin: KubeClient, namespace: string): Promise<{ client: KubeClient; remove(): Promise<void> }> {
  const rules = [
    ...populatorManifestRules('ClusterRole', 'kopia-populator'),
    ...populatorManifestRules('Role', 'kopia-populator-leader-election'),
  ];
  const client = await serviceAccountClient(admin, namespace, POPULATOR_SERVICE_ACCOUNT);
  const grant = await grantClusterRole(admin, `kopia-populator-${namespace}`, { namespace, name: POPULATOR_SERVICE_ACCOUNT }, rules);
  return {
    client,
    async remove() {
      client.close();
      await grant.remove();
    },
  };
}

export interface TestPopulator {
  manager: PopulatorManager;
  elector?: LeaderElector;
  /** Stops it as a crash would leave things: no cleanup, no release of the Lease unless asked. */
  stop(opts?: { release?: boolean }): Promise<void>;
}

export interface TestPopulatorOptions {
  /** The populator's own client (its ServiceAccount's). */
  client: KubeClient;
  /** The Lease's namespace (and the populator's). */
  namespace: string;
  retry?: RetryPolicy;
  /** Elect on the kopia-populator Lease first (as the process does); the identity names this replica. */
  leaderElection?: { identity: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
}

/** A populator in this process: caches, then (with leader election) the Lease, then reconciling. */
export async function startTestPopulator(opts: TestPopulatorOptions): Promise<TestPopulator> {
  const log = createLogger('populator', process.env.LOG_LEVEL ?? 'error');
  const manager = await startPopulatorCaches({
    client: opts.client,
    log,
    namespace: opts.namespace,
    moverImage: TEST_MOVER_IMAGE,
    retry: opts.retry,
  });
  let elector: LeaderElector | undefined;
  const start = () => manager.startReconciling();
  if (opts.leaderElection) {
    elector = new LeaderElector(opts.client, { namespace: opts.namespace, name: 'kopia-populator', ...opts.leaderElection }, log);
    // Not awaited: a standby waits here until it leads.
    elector.acquire(() => manager.stop()).then(start, () => undefined);
  } else start();
  return {
    manager,
    elector,
    async stop(stopOpts = {}) {
      manager.stop();
      await elector?.stop({ release: stopOpts.release ?? false });
    },
  };
}

/** A kubeconfig file with a fresh token of the populator's ServiceAccount, for a populator process. */
export async function populatorKubeconfig(admin: KubeClient, namespace: string, file: string): Promise<string> {
  const review = await admin.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${POPULATOR_SERVICE_ACCOUNT}/token`,
    { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } } },
  );
  const adminConfig = new KubeConfig();
  adminConfig.loadFromFile(process.env.KOPIA_TEST_KUBECONFIG!);
  const cluster = adminConfig.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: POPULATOR_SERVICE_ACCOUNT, token: review.status.token }],
    contexts: [{ name: POPULATOR_SERVICE_ACCOUNT, cluster: cluster.name, user: POPULATOR_SERVICE_ACCOUNT }],
    currentContext: POPULATOR_SERVICE_ACCOUNT,
  });
  writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
  return file;
}

export interface PopulatorProcess {
  name: string;
  port: number;
  guarded: GuardedProcess;
  /** HTTP status of one of its endpoints; 0 while it does not listen. */
  status(path: string): Promise<number>;
  leading(): Promise<boolean>;
  /** Its /metrics text. */
  metrics(): Promise<string>;
  /** SIGKILL to the populator itself (not its guard): no cleanup, no release of the Lease. */
  kill(): Promise<void>;
}

/** operator/populator/main.ts as its own process, as the Deployment runs it. */
export async function startPopulatorProcess(o: {
  name: string;
  kubeconfig: string;
  namespace: string;
  env?: Record<string, string>;
}): Promise<PopulatorProcess> {
  const port = await freePort();
  const [node, ...args] = tsNode();
  const entry = join(repoRoot, 'operator/populator/main.ts');
  const guarded = startGuarded(
    `populator-${o.name}`,
    node,
    [...args, entry],
    join(process.env.KOPIA_TEST_DIR!, 'logs', `populator-${o.namespace}-${o.name}.log`),
    {
      ...process.env,
      KUBECONFIG: o.kubeconfig,
      POD_NAMESPACE: o.namespace,
      POD_NAME: o.name,
      HEALTH_PORT: String(port),
      MOVER_IMAGE: TEST_MOVER_IMAGE,
      ...o.env,
    },
  );
  const status = (path: string) =>
    fetch(`http://127.0.0.1:${port}${path}`).then(
      (res) => res.status,
      () => 0,
    );
  return {
    name: o.name,
    port,
    guarded,
    status,
    async leading() {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
      return /kopia_leader\{lease="kopia-populator"\} 1/.test((await res?.text()) ?? '');
    },
    metrics: () => scrapeMetrics(port),
    async kill() {
      // The guard's child runs node with the entry point; the guard itself is a shell.
      const pids = (await processesMentioning(entry)).filter((pid) => {
        try {
          const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          const env = readFileSync(`/proc/${pid}/environ`, 'utf8');
          return cmd.startsWith(process.execPath) && env.includes(`POD_NAME=${o.name}\0`) && env.includes(`POD_NAMESPACE=${o.namespace}\0`);
        } catch {
          return false;
        }
      });
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await guarded.exited;
    },
  };
}
