// Runs the operator in the test process against the shared test world, under its own ServiceAccount.
import { KubeClient } from '../../operator/kube/kube-client.js';
import { startManager, type Manager } from '../../operator/manager.js';
import { createLogger } from '../../operator/runtime/logger.js';
import type { ProcessMetrics } from '../../operator/metrics/metrics-registry.js';
import { grantClusterRole, manifestClusterRoleRules, serviceAccountClient } from './service-accounts.js';

export const TEST_MOVER_IMAGE = 'kopia-operator:test';

export interface TestOperatorOptions {
  /** The operator's clock (a FakeClock's now): schedules are tested by moving time, not by sleeping. */
  now?: () => Date;
  /** The cluster name in default maintenance owners (KOPIA_CLUSTER_NAME). */
  clusterName?: string;
  /** Run with the admin certificate instead of the operator's ServiceAccount and manifest RBAC. */
  admin?: boolean;
  /** The catalog intake's upload limit (bytes of gzip; CATALOG_UPLOAD_LIMIT_MB in a real operator). */
  catalogUploadLimitBytes?: number;
  /** Runtime metrics for the test to read (createProcessMetrics); none otherwise. */
  metrics?: ProcessMetrics;
}

/** A clock the test moves by hand. */
export class FakeClock {
  private ms: number;

  constructor(start: Date = new Date()) {
    this.ms = start.getTime();
  }

  readonly now = (): Date => new Date(this.ms);

  set(to: Date): void {
    this.ms = to.getTime();
  }

  advance(ms: number): void {
    this.ms += ms;
  }
}

let grants = 0;

/**
 * The operator in this process, as its ServiceAccount (a TokenRequest token) with the
 * ClusterRole from manifests/operator/rbac.yaml, so a permission the manifests lack fails
 * the test instead of being hidden by the admin certificate. `admin: true` only where a
 * test is about something else than what the operator may do.
 */
export async function startTestOperator(
  namespace: string,
  opts: TestOperatorOptions = {},
): Promise<{ manager: Manager; client: KubeClient; stop(): Promise<void> }> {
  const admin = await KubeClient.fromFile(process.env.KOPIA_TEST_KUBECONFIG!);
  let rbac: Awaited<ReturnType<typeof grantClusterRole>> | undefined;
  let client = admin;
  if (!opts.admin) {
    rbac = await grantClusterRole(
      admin,
      `kopia-operator-test-${namespace}-${++grants}`,
      { namespace, name: 'kopia-operator' },
      manifestClusterRoleRules('kopia-operator'),
    );
    client = await serviceAccountClient(admin, namespace, 'kopia-operator');
  }
  const manager = await startManager({
    client,
    now: opts.now,
    clusterName: opts.clusterName,
    metrics: opts.metrics,
    log: createLogger('operator', process.env.LOG_LEVEL ?? 'error'),
    namespace,
    moverImage: TEST_MOVER_IMAGE,
    // Movers run as local processes beside the test: they reach the intake on loopback.
    intake: { port: 0, host: '127.0.0.1', maxUploadBytes: opts.catalogUploadLimitBytes },
  });
  return {
    manager,
    client,
    async stop() {
      manager.stop();
      if (client !== admin) client.close();
      try {
        await rbac?.remove();
      } finally {
        admin.close();
      }
    },
  };
}
