// Runs the populator for control-plane tests: in the test process, acting as its own
// ServiceAccount with the RBAC from manifests/populator/, so a permission the manifests
// lack fails a test instead of being hidden by the admin certificate.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeClient, KubeObject } from '../../operator/kube/kube-client.js';
import type { RetryPolicy } from '../../operator/populator/populator-plan.js';
import { startPopulatorCaches, type PopulatorManager } from '../../operator/populator/populator-manager.js';
import { LeaderElector } from '../../operator/runtime/leader-election.js';
import { createLogger } from '../../operator/runtime/logger.js';
import { TEST_MOVER_IMAGE } from './operator.js';
import { repoRoot } from './paths.js';
import { grantClusterRole, serviceAccountClient, type PolicyRule } from './service-accounts.js';

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
