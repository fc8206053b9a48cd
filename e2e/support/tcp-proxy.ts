// Network middlemen for client tests, in the test process: an HTTP CONNECT proxy that
// counts its tunnels, and a TCP relay whose open connections can be frozen (bytes stop
// flowing, sockets stay open: a half-open connection, as a client sees it) or dropped.
import http from 'node:http';
import net from 'node:net';

export interface ConnectProxy {
  /** http://127.0.0.1:PORT, for a kubeconfig's proxy-url. */
  url: string;
  /** The host:port of every CONNECT request, in order. */
  tunnels: string[];
  close(): Promise<void>;
}

/**
 * An HTTP CONNECT proxy. Every tunnel goes to `target` whatever host was asked for, so a
 * client can name a host only the proxy "knows" (proving the client used the proxy).
 */
export async function startConnectProxy(target: { host: string; port: number }): Promise<ConnectProxy> {
  const tunnels: string[] = [];
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    tunnels.push(req.url ?? '');
    track(client);
    const upstream = net.connect(target.port, target.host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    track(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    tunnels,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export interface FreezableRelay {
  host: string;
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Stops moving bytes on every connection open now, keeping their sockets open; later connections flow normally. */
  freezeOpenConnections(): void;
  /** Closes every connection open now, as a restarted load balancer would. */
  dropOpenConnections(): void;
  close(): Promise<void>;
}

/** A TCP relay on `listenHost` (127.0.0.1 by default) to target. */
export async function startRelay(target: { host: string; port: number }, listenHost = '127.0.0.1'): Promise<FreezableRelay> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let connections = 0;
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(target.port, target.host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of pair) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((r) => server.listen(0, listenHost, r));
  return {
    host: listenHost,
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    freezeOpenConnections() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        // Paused, nothing is read: whatever the peers send waits in kernel buffers, and
        // neither side sees a close or a reset.
        client.pause();
        upstream.pause();
      }
    },
    dropOpenConnections() {
      for (const pair of pairs) pair.forEach((s) => s.destroy());
    },
    close: () => {
      for (const pair of pairs) pair.forEach((s) => s.destroy());
      return new Promise((r) => server.close(() => r()));
    },
  };
}
