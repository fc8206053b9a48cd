// The operator process: caches first, then leader election on a Lease, then every kind's
// reconcile queues; plus health (/healthz), readiness (/readyz) and metrics (/metrics).
//
// Readiness means "running with caches synced", on the leader and on standbys alike, so
// every replica of the Deployment becomes Ready and it can roll out; only the leader
// reconciles. Losing the lease ends the process with exit code 1 (a restart drops every
// in-flight assumption); SIGTERM/SIGINT release it so a standby takes over at once.
//
// Environment:
//   KUBECONFIG                       kubeconfig file (default: in-cluster or ~/.kube/config)
//   POD_NAMESPACE                    where the Lease and ClusterRepository Jobs live (kopia-system)
//   POD_NAME                         leader election identity (default: hostname plus a random suffix)
//   MOVER_IMAGE                      overrides the image mover Jobs run (default: this pod's own container's image,
//                                    read from its Pod POD_NAMESPACE/POD_NAME)
//   HEALTH_PORT                      port of /healthz, /readyz and /metrics (8081; 0 picks a free one)
//   INTAKE_PORT                      port where catalog Jobs upload snapshot listings (8082; 0 picks a free one)
//   POD_IP                           the address movers reach the intake at (default 127.0.0.1)
//   CATALOG_UPLOAD_LIMIT_MB          the most one catalog upload may hold, gzip MiB (16: ~10x a 30,000-snapshot listing)
//   LEADER_ELECTION                  "false" runs without a Lease (a single replica only)
//   LEADER_ELECTION_LEASE_DURATION   seconds a standby waits after the lease last changed (15)
//   LEADER_ELECTION_RENEW_DEADLINE   seconds after sending its last successful renewal that the leader stops (10)
//   LEADER_ELECTION_RETRY_PERIOD     seconds from the start of one attempt to the next (2)
import { startHealthServer } from './runtime/health-server.js';
import { resolveMoverImage } from './runtime/mover-image.js';
import { KubeClient } from './kube/kube-client.js';
import type { IntakeOptions } from './catalog/catalog-intake.js';
import { startCaches, type Manager } from './manager.js';
import { LeaderElector, timingsFromEnv } from './runtime/leader-election.js';
import { createLogger } from './runtime/logger.js';
import { countApiRequests, createProcessMetrics } from './metrics/metrics-registry.js';

const log = createLogger('operator');
const namespace = process.env.POD_NAMESPACE ?? 'kopia-system';
const port = Number(process.env.HEALTH_PORT ?? 8081);

/** Movers upload catalogs to this pod: its IP (downward API), or loopback when run on a workstation. */
function intakeOptions(): IntakeOptions {
  const intakePort = Number(process.env.INTAKE_PORT ?? 8082);
  const podIP = process.env.POD_IP;
  const limitMB = Number(process.env.CATALOG_UPLOAD_LIMIT_MB ?? 16);
  if (!(limitMB > 0)) throw new Error(`CATALOG_UPLOAD_LIMIT_MB must be a positive number of MiB: ${process.env.CATALOG_UPLOAD_LIMIT_MB}`);
  const maxUploadBytes = Math.round(limitMB * 1024 * 1024);
  return podIP
    ? { port: intakePort, host: '0.0.0.0', advertiseHost: podIP, maxUploadBytes }
    : { port: intakePort, host: '127.0.0.1', maxUploadBytes };
}
const leaderElection = process.env.LEADER_ELECTION !== 'false';
const LEASE_NAME = 'kopia-operator';
let shuttingDown = false;

async function main(): Promise<void> {
  const client = process.env.KUBECONFIG ? await KubeClient.fromFile(process.env.KUBECONFIG) : await KubeClient.fromDefault();
  // First, so every API request is counted; kopia_leader reads the election made below.
  const metrics = createProcessMetrics({
    process: 'operator',
    lease: LEASE_NAME,
    isLeader: () => (elector ? elector.isLeader : !!running.manager),
    log,
  });
  countApiRequests(client, metrics);
  // Before anything starts: a process that cannot name its movers' image must not reconcile.
  const mover = await resolveMoverImage(client, process.env, namespace, 'operator');
  log.info('mover image', { image: mover.image, from: mover.source });
  // Built before anything starts, so bad durations fail the process at once.
  const elector = leaderElection
    ? new LeaderElector(
        client,
        { namespace, name: LEASE_NAME, identity: process.env.POD_NAME || undefined, ...timingsFromEnv(process.env) },
        log,
      )
    : undefined;
  const running: { manager?: Manager } = {};
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

  const manager = (running.manager = await startCaches({
    client,
    log,
    namespace,
    moverImage: mover.image,
    metrics,
    intake: intakeOptions(),
    clusterName: process.env.KOPIA_CLUSTER_NAME || undefined,
  }));
  cachesSynced = true;
  if (elector) await elector.acquire(() => void shutdown(1, 'lost the lease'));
  if (shuttingDown) return;
  manager.startReconciling();
}

main().catch((e: Error) => {
  // acquire() rejects when a signal stopped the election: shutdown is already exiting.
  if (shuttingDown) return;
  log.error('operator failed to start', { error: e.message });
  process.exit(1);
});
