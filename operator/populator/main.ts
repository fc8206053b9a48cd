// The populator process: fills claims whose dataSourceRef names a kopia.io Restore. Shaped
// like the operator's process (operator/main.ts): caches first, then leader election on
// its own Lease (kopia-populator), then reconciling; /healthz, /readyz and /metrics.
// Readiness means "running with caches synced" on leader and standbys alike; losing the
// lease ends the process with exit code 1, SIGTERM/SIGINT release it for a standby. A
// restarted populator needs no memory: every stage can be read back from the API.
//
// Environment:
//   KUBECONFIG                       kubeconfig file (default: in-cluster or ~/.kube/config)
//   POD_NAMESPACE                    where the Lease lives (kopia-system)
//   POD_NAME                         leader election identity (default: hostname plus a random suffix)
//   MOVER_IMAGE                      overrides the image mover Jobs run (default: this pod's own container's image,
//                                    read from its Pod POD_NAMESPACE/POD_NAME)
//   HEALTH_PORT                      port of /healthz, /readyz and /metrics (8081; 0 picks a free one)
//   LEADER_ELECTION                  "false" runs without a Lease (a single replica only)
//   LEADER_ELECTION_LEASE_DURATION   seconds a standby waits after the lease last changed (15)
//   LEADER_ELECTION_RENEW_DEADLINE   seconds after sending its last successful renewal that the leader stops (10)
//   LEADER_ELECTION_RETRY_PERIOD     seconds from the start of one attempt to the next (2)
import { startHealthServer } from '../runtime/health-server.js';
import { resolveMoverImage } from '../runtime/mover-image.js';
import { KubeClient } from '../kube/kube-client.js';
import { LeaderElector, timingsFromEnv } from '../runtime/leader-election.js';
import { createLogger } from '../runtime/logger.js';
import { countApiRequests, createProcessMetrics } from '../metrics/metrics-registry.js';
import { failpointFromEnv } from '../runtime/failpoint.js';
import { startPopulatorCaches, type PopulatorManager } from './populator-manager.js';

const log = createLogger('populator');
const namespace = process.env.POD_NAMESPACE ?? 'kopia-system';
const port = Number(process.env.HEALTH_PORT ?? 8081);
const leaderElection = process.env.LEADER_ELECTION !== 'false';
const POPULATOR_LEASE = 'kopia-populator';
let shuttingDown = false;

async function main(): Promise<void> {
  const client = process.env.KUBECONFIG ? await KubeClient.fromFile(process.env.KUBECONFIG) : await KubeClient.fromDefault();
  // First, so every API request is counted; kopia_leader reads the election made below.
  const metrics = createProcessMetrics({
    process: 'populator',
    lease: POPULATOR_LEASE,
    isLeader: () => (elector ? elector.isLeader : !!running.manager),
    log,
  });
  countApiRequests(client, metrics);
  // Before anything starts: a process that cannot name its movers' image must not reconcile.
  const mover = await resolveMoverImage(client, process.env, namespace, 'populator');
  log.info('mover image', { image: mover.image, from: mover.source });
  // Built before anything starts, so bad durations fail the process at once.
  const elector = leaderElection
    ? new LeaderElector(
        client,
        { namespace, name: POPULATOR_LEASE, identity: process.env.POD_NAME || undefined, ...timingsFromEnv(process.env) },
        log,
      )
    : undefined;
  const running: { manager?: PopulatorManager } = {};
  let cachesSynced = false;

  const server = startHealthServer({ port, log, isReady: () => cachesSynced, metrics });

  // Orderly: no reconcile after the lease is released, no request after the client is closed.
  const shutdown = async (code: number, why: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('shutting down', { why });
    running.manager?.stop();
    await elector?.stop({ release: true });
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    client.close();
    process.exit(code);
  };
  process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
  process.on('SIGINT', () => void shutdown(0, 'SIGINT'));

  const manager = (running.manager = await startPopulatorCaches({
    client,
    log,
    namespace,
    moverImage: mover.image,
    metrics,
    failpoint: failpointFromEnv(process.env, log),
  }));
  cachesSynced = true;
  if (elector) await elector.acquire(() => void shutdown(1, 'lost the lease'));
  if (shuttingDown) return;
  manager.startReconciling();
}

main().catch((e: Error) => {
  // acquire() rejects when a signal stopped the election: shutdown is already exiting.
  if (shuttingDown) return;
  log.error('populator failed to start', { error: e.message });
  process.exit(1);
});
