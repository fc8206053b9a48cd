// The operator process: leader election on a Lease, then every kind's operator, plus
// health (/healthz, /readyz) and metrics (/metrics) endpoints.
import http from 'node:http';
import { KubeClient } from './kube/kube-client.js';
import { startManager, type Manager } from './manager.js';
import { LeaderElector } from './runtime/leader-election.js';
import { createLogger } from './runtime/logger.js';

const log = createLogger('operator');
const namespace = process.env.POD_NAMESPACE ?? 'kopia-system';
const moverImage = process.env.MOVER_IMAGE ?? 'kopia-operator:latest';
const port = Number(process.env.HEALTH_PORT ?? 8081);
const leaderElection = process.env.LEADER_ELECTION !== 'false';

async function main(): Promise<void> {
  const client = process.env.KUBECONFIG ? await KubeClient.fromFile(process.env.KUBECONFIG) : await KubeClient.fromDefault();
  const running: { manager?: Manager } = {};
  let ready = false;
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') return void res.writeHead(200).end('ok');
    if (req.url === '/readyz') return void res.writeHead(ready ? 200 : 503).end(ready ? 'ok' : 'not ready');
    if (req.url === '/metrics') {
      const lines = Object.entries(client.calls).map(([key, n]) => {
        const [verb, resource] = key.split(' ');
        return `kopia_operator_api_requests_total{verb="${verb}",resource="${resource}"} ${n}`;
      });
      return void res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' }).end(`${lines.join('\n')}\n`);
    }
    res.writeHead(404).end();
  });
  server.listen(port);
  const elector = new LeaderElector(client, { namespace, name: 'kopia-operator' }, log);
  const shutdown = (code: number) => {
    running.manager?.stop();
    elector.stop();
    server.close();
    process.exit(code);
  };
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));
  if (leaderElection) await elector.acquire(() => shutdown(1));
  running.manager = await startManager({ client, log, namespace, moverImage });
  ready = true;
}

main().catch((e: Error) => {
  log.error('operator failed to start', { error: e.message });
  process.exit(1);
});
