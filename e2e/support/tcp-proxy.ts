// Network middlemen for client tests, in the test process: an HTTP CONNECT proxy that
// counts its tunnels, and a TCP relay that can slow every round trip, and whose open
// connections can be frozen (bytes stop flowing, sockets stay open: a half-open
// connection, as a client sees it) or dropped.
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
  /**
   * Makes every round trip, on open and later connections, take roundTripMs longer: each
   * chunk waits half of it on its way in either direction (a request lands half way through).
   * Chunks keep their order when the delay changes.
   */
  setDelay(roundTripMs: number): void;
  /** Stops moving bytes on every connection open now, keeping their sockets open; later connections flow normally. */
  freezeOpenConnections(): void;
  /** Closes every connection open now, as a restarted load balancer would. */
  dropOpenConnections(): void;
  close(): Promise<void>;
}

interface RelayedConnection {
  client: net.Socket;
  upstream: net.Socket;
  frozen: boolean;
}

/** A TCP relay on `listenHost` (127.0.0.1 by default) to target. */
export async function startRelay(target: { host: string; port: number }, listenHost = '127.0.0.1'): Promise<FreezableRelay> {
  const open = new Set<RelayedConnection>();
  let connections = 0;
  let oneWayDelayMs = 0;

  /** Moves from's bytes, end and close to `to`, each oneWayDelayMs later, in order. */
  const forward = (from: net.Socket, to: net.Socket, connection: RelayedConnection, end: () => void) => {
    const queue: { due: number; act: () => void }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const drain = () => {
      timer = undefined;
      // First in, first out, even when a lowered delay made a later entry due earlier.
      while (queue.length > 0 && queue[0].due <= performance.now()) queue.shift()!.act();
      if (queue.length > 0) timer = setTimeout(drain, queue[0].due - performance.now()).unref();
    };
    const later = (act: () => void) => {
      if (oneWayDelayMs === 0 && queue.length === 0) return act();
      queue.push({ due: performance.now() + oneWayDelayMs, act });
      timer ??= setTimeout(drain, queue[0].due - performance.now()).unref();
    };
    from.on('data', (chunk: Buffer) =>
      later(() => {
        // Frozen: what was on its way never arrives.
        if (connection.frozen || to.destroyed) return;
        if (!to.write(chunk) && !from.isPaused()) {
          // Backpressure, as pipe() would: read no more until the other side drains.
          from.pause();
          to.once('drain', () => connection.frozen || from.resume());
        }
      }),
    );
    from.on('end', () => later(() => connection.frozen || to.end()));
    from.on('close', () => later(end));
  };

  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(target.port, target.host);
    const connection: RelayedConnection = { client, upstream, frozen: false };
    open.add(connection);
    const end = () => {
      open.delete(connection);
      client.destroy();
      upstream.destroy();
    };
    forward(client, upstream, connection, end);
    forward(upstream, client, connection, end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, listenHost, r));
  return {
    host: listenHost,
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    setDelay(roundTripMs) {
      oneWayDelayMs = roundTripMs / 2;
    },
    freezeOpenConnections() {
      for (const connection of open) {
        connection.frozen = true;
        // Paused, nothing is read: whatever the peers send waits in kernel buffers, and
        // neither side sees a close or a reset.
        connection.client.pause();
        connection.upstream.pause();
      }
    },
    dropOpenConnections() {
      for (const { client, upstream } of open) [client, upstream].forEach((s) => s.destroy());
    },
    close: () => {
      for (const { client, upstream } of open) [client, upstream].forEach((s) => s.destroy());
      return new Promise((r) => server.close(() => r()));
    },
  };
}
