// The health port both processes serve: /healthz (alive), /readyz (caches synced, on the
// leader and on standbys alike) and /metrics (the process's prom-client registry).
import http from 'node:http';
import type { Logger } from './logger.js';

export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export function startHealthServer(opts: { port: number; log: Logger; isReady: () => boolean; metrics: MetricsSource }): http.Server {
  const { log, isReady, metrics } = opts;
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') return void res.writeHead(200).end('ok');
    if (req.url === '/readyz') return void res.writeHead(isReady() ? 200 : 503).end(isReady() ? 'ok' : 'caches not synced');
    if (req.url === '/metrics') {
      metrics.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(text),
        (e: Error) => {
          log.error('metrics scrape failed', { error: e.message });
          res.writeHead(500).end();
        },
      );
      return;
    }
    res.writeHead(404).end();
  });
  server.listen(opts.port, () => {
    const address = server.address();
    if (address && typeof address === 'object') log.info('health endpoints listening', { port: address.port });
  });
  return server;
}
