// The authentication headers of a kubeconfig's current user, asked for again as they age:
// a projected ServiceAccount token is rotated on disk (client-node's tokenFile provider
// re-reads it every 60 s) and exec-plugin tokens expire (client-node runs the plugin again
// once its expirationTimestamp has passed), so headers taken once at start-up go stale.
import type { KubeConfig } from '@kubernetes/client-node';
import type https from 'node:https';

export type Headers = Record<string, string>;

/** The headers a request needs, from options filled in by KubeConfig.applyToHTTPSOptions. */
export function authHeaders(opts: https.RequestOptions): Headers {
  const headers: Headers = {};
  for (const [name, value] of Object.entries(opts.headers ?? {})) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  return headers;
}

export class Credentials {
  private cached?: { headers: Headers; at: number };
  private inFlight?: Promise<Headers>;

  /**
   * @param maxAgeMs how long one answer is reused: the kubeconfig is asked at most this
   *   often (client-node's own caches decide whether that re-reads a file or runs a plugin)
   */
  constructor(
    private readonly kc: KubeConfig,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async headers(): Promise<Headers> {
    if (this.cached && this.now() - this.cached.at < this.maxAgeMs) return this.cached.headers;
    // Concurrent requests share one lookup: an expired exec token must not start one
    // plugin process per request.
    this.inFlight ??= this.lookup().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /** Headers just obtained elsewhere (the client's start-up), to be reused like a lookup's. */
  remember(headers: Headers): void {
    this.cached = { headers, at: this.now() };
  }

  /** Forget the cached headers: the API server has just rejected them (401). */
  invalidate(): void {
    this.cached = undefined;
  }

  private async lookup(): Promise<Headers> {
    // A fresh options object each time: applyToHTTPSOptions is the public way to run the
    // user's authenticator. The agent it also builds is dropped; ours is kept.
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    const headers = authHeaders(opts);
    this.remember(headers);
    return headers;
  }
}
