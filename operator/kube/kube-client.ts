// A small Kubernetes REST client: @kubernetes/client-node supplies the kubeconfig and its
// authentication (certificates, tokens, exec plugins); requests and watches go through
// node:https directly so every verb, patch type, subresource and watch bookmark is under
// our control (see docs/adr/0001-operator-runtime.md).
import { KubeConfig } from '@kubernetes/client-node';
import https from 'node:https';
import http from 'node:http';
import { URL } from 'node:url';
import { authHeaders, Credentials } from './credentials.js';
import { Deadline } from './deadline.js';
import { WatchLines } from './watch-lines.js';

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
  /** Server-side apply bookkeeping; informers drop it before caching. */
  managedFields?: unknown[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** obj as the controlling owner of what an operator makes for it (garbage-collected with it). */
export function controllerReference(obj: KubeObject): OwnerReference {
  return {
    apiVersion: obj.apiVersion!,
    kind: obj.kind!,
    name: obj.metadata.name!,
    uid: obj.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface KubeList<T> {
  items: T[];
  metadata: { resourceVersion: string; continue?: string };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export interface WatchEvent<T> {
  type: WatchEventType;
  object: T;
}

/** A resource type: where its objects live in the API. */
export interface ResourceType {
  group: string; // '' for the core group
  version: string;
  plural: string;
  namespaced: boolean;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof ApiError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof ApiError && e.status === 409 && e.reason !== 'AlreadyExists';
export const isAlreadyExists = (e: unknown): boolean => e instanceof ApiError && e.status === 409 && e.reason === 'AlreadyExists';
export const isGone = (e: unknown): boolean => e instanceof ApiError && e.status === 410;

export function resourcePath(type: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  let path = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  if (type.namespaced && namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${type.plural}`;
  if (name) path += `/${encodeURIComponent(name)}`;
  if (subresource) path += `/${subresource}`;
  return path;
}

/** The resource a request path is about: /apis/g/v/namespaces/n/jobs/x/status -> jobs. */
export function resourceOfPath(path: string): string {
  const parts = path.split('/').filter(Boolean);
  const rest = parts[0] === 'api' ? parts.slice(2) : parts[0] === 'apis' ? parts.slice(3) : parts;
  if (rest[0] === 'namespaces' && rest.length > 2) return rest[2];
  return rest[0] ?? 'unknown';
}

export type PatchType = 'merge' | 'json' | 'strategic' | 'apply';
const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
};

/** Per call: the caller's abort signal, and a timeout other than the client's default. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface RequestOptions extends CallOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  contentType?: string;
  accept?: string;
}

export interface ListOptions extends CallOptions {
  /** Ask for PartialObjectMetadata: the items then carry metadata only (no data, spec or status). */
  metadataOnly?: boolean;
}

export interface WatchOptions {
  signal?: AbortSignal;
  labelSelector?: string;
  fieldSelector?: string;
  timeoutSeconds?: number;
  /** Events carry PartialObjectMetadata (metadata only). */
  metadataOnly?: boolean;
  /** Abandon the watch when nothing (no event, no bookmark) arrives for this long; the client's default otherwise. */
  idleTimeoutMs?: number;
}

export interface KubeClientOptions {
  /** Timeout of every request but watches, unless a call sets its own; 30 s. */
  requestTimeoutMs?: number;
  /**
   * A watch that receives nothing for this long is abandoned (WatchIdleError); 3 min. With
   * allowWatchBookmarks the API server sends a bookmark about every minute, so silence this
   * long means a dead connection, e.g. one the network dropped without a reset.
   */
  watchIdleTimeoutMs?: number;
  /** How long the user's credentials are reused before the kubeconfig is asked again; 10 s. */
  credentialsMaxAgeMs?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 3 * 60_000;
const DEFAULT_CREDENTIALS_MAX_AGE_MS = 10_000;

const ACCEPT_JSON = 'application/json';
// JSON stays acceptable after the metadata form, so a server without it still answers.
const ACCEPT_METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const ACCEPT_METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

/** A request that got no complete answer within its timeout. */
export class RequestTimeoutError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly timeoutMs: number,
  ) {
    super(`${method} ${path}: no complete response within ${timeoutMs} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/** A watch that received nothing, not even a bookmark, for too long; it is restarted by its owner. */
export class WatchIdleError extends Error {
  constructor(
    readonly path: string,
    readonly idleTimeoutMs: number,
  ) {
    super(`watch ${path}: nothing received for ${idleTimeoutMs} ms; abandoned`);
    this.name = 'WatchIdleError';
  }
}

/** The agent for every request: the kubeconfig's proxy agent if it names a proxy, a keep-alive agent of ours otherwise. */
function agentFor(server: URL, proxyUrl: string | undefined, tls: https.RequestOptions): http.Agent {
  if (proxyUrl) {
    // client-node's createAgent (through applyToHTTPSOptions) built an agent that tunnels
    // through the proxy with our TLS settings and servername. It is made without
    // keep-alive; turning it on (the flag node:http reads on every request and free
    // socket) keeps one tunnel and TLS session for many requests.
    const agent = tls.agent as http.Agent & { keepAlive: boolean };
    agent.keepAlive = true;
    return agent;
  }
  if (server.protocol !== 'https:') return new http.Agent({ keepAlive: true });
  return new https.Agent({
    keepAlive: true,
    maxSockets: 64,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    rejectUnauthorized: tls.rejectUnauthorized,
    // The kubeconfig's tls-server-name: sent as SNI and checked against the certificate
    // instead of the host in the server URL.
    ...(tls.servername ? { servername: tls.servername } : {}),
  });
}

/** Sees each request once its answer's status line arrived (code) or it failed without one (code 0). */
export type RequestObserver = (verb: string, resource: string, code: number) => void;

export class KubeClient {
  /** Counts API calls as "VERB resource" (e.g. "PUT leases"); /metrics and the benchmarks read it. */
  readonly calls: Record<string, number> = {};
  private requestObserver?: RequestObserver;

  private constructor(
    private readonly server: URL,
    private readonly agent: http.Agent,
    private readonly credentials: Credentials,
    private readonly options: KubeClientOptions,
  ) {}

  static async fromKubeConfig(kc: KubeConfig, options: KubeClientOptions = {}): Promise<KubeClient> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    // Run once now so a broken kubeconfig fails at start-up; TLS settings come from here.
    const tls: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(tls);
    const server = new URL(cluster.server);
    const credentials = new Credentials(kc, options.credentialsMaxAgeMs ?? DEFAULT_CREDENTIALS_MAX_AGE_MS);
    credentials.remember(authHeaders(tls));
    return new KubeClient(server, agentFor(server, cluster.proxyUrl, tls), credentials, options);
  }

  /** The default loading order: $KUBECONFIG, ~/.kube/config, then in-cluster. */
  static async fromDefault(options: KubeClientOptions = {}): Promise<KubeClient> {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    return KubeClient.fromKubeConfig(kc, options);
  }

  static async fromFile(path: string, options: KubeClientOptions = {}): Promise<KubeClient> {
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return KubeClient.fromKubeConfig(kc, options);
  }

  close(): void {
    this.agent.destroy();
  }

  /** Tells observer every request's verb, resource and HTTP code (0: no response); kopia_api_requests_total. */
  observeRequests(observer: RequestObserver): void {
    this.requestObserver = observer;
  }

  private async open(method: string, path: string, opts: RequestOptions, signal: AbortSignal): Promise<http.IncomingMessage> {
    const url = new URL(path, this.server);
    const verb = method === 'GET' && opts.query?.watch ? 'WATCH' : method;
    const resource = resourceOfPath(url.pathname);
    const key = `${verb} ${resource}`;
    this.calls[key] = (this.calls[key] ?? 0) + 1;
    let code = 0;
    try {
      const res = await this.send(method, url, opts, signal);
      code = res.statusCode ?? 0;
      return res;
    } finally {
      this.requestObserver?.(verb, resource, code);
    }
  }

  private async send(method: string, url: URL, opts: RequestOptions, signal: AbortSignal): Promise<http.IncomingMessage> {
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    // An exec plugin that hangs counts against the request's time too.
    const auth = await untilAborted(this.credentials.headers(), signal);
    return new Promise((resolve, reject) => {
      const mod = url.protocol === 'https:' ? https : http;
      const req = mod.request(
        url,
        {
          agent: this.agent,
          method,
          signal,
          headers: {
            ...auth,
            Accept: opts.accept ?? ACCEPT_JSON,
            ...(body !== undefined
              ? { 'Content-Type': opts.contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(body) }
              : {}),
          },
        },
        resolve,
      );
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  /** One request and its whole response body, within the timeout. */
  private async exchange(method: string, path: string, opts: RequestOptions): Promise<{ status: number; text: string }> {
    const timeoutMs = opts.timeoutMs ?? this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const deadline = new Deadline(timeoutMs, () => new RequestTimeoutError(method, path, timeoutMs), opts.signal);
    try {
      const res = await this.open(method, path, opts, deadline.signal);
      return { status: res.statusCode ?? 0, text: await readText(res) };
    } catch (e) {
      throw deadline.expired ?? e;
    } finally {
      deadline.dispose();
    }
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    let { status, text } = await this.exchange(method, path, opts);
    if (status === 401) {
      // The token may have expired or been rotated since it was cached: ask again, once.
      this.credentials.invalidate();
      ({ status, text } = await this.exchange(method, path, opts));
    }
    if (status >= 400) throw apiError(status, text, `${method} ${path}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string, call: CallOptions = {}): Promise<T> {
    return this.request<T>('GET', resourcePath(type, namespace, name), call);
  }

  /** GET that answers undefined for NotFound. */
  async getOrUndefined<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    call: CallOptions = {},
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(type, namespace, name, call);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Lists every page; with metadataOnly the items are PartialObjectMetadata. */
  async list<T extends KubeObject>(
    type: ResourceType,
    namespace?: string,
    query: { labelSelector?: string; fieldSelector?: string } = {},
    opts: ListOptions = {},
  ): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.request<KubeList<T>>('GET', resourcePath(type, namespace), {
        query: { ...query, limit: 500, continue: cont },
        accept: opts.metadataOnly ? ACCEPT_METADATA_LIST : ACCEPT_JSON,
        signal: opts.signal,
        timeoutMs: opts.timeoutMs,
      });
      items.push(...(page.items ?? [])); // an empty PartialObjectMetadataList says "items": null
      cont = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (cont);
    return { items, metadata: { resourceVersion } };
  }

  create<T extends KubeObject>(type: ResourceType, obj: T, query: { dryRun?: string } = {}, call: CallOptions = {}): Promise<T> {
    return this.request<T>('POST', resourcePath(type, obj.metadata.namespace), { ...call, body: obj, query });
  }

  replace<T extends KubeObject>(type: ResourceType, obj: T, subresource?: string, call: CallOptions = {}): Promise<T> {
    return this.request<T>('PUT', resourcePath(type, obj.metadata.namespace, obj.metadata.name, subresource), { ...call, body: obj });
  }

  patch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    patchType: PatchType = 'merge',
    subresource?: string,
    query: Record<string, string | boolean | undefined> = {},
    call: CallOptions = {},
  ): Promise<T> {
    return this.request<T>('PATCH', resourcePath(type, namespace, name, subresource), {
      ...call,
      body: patch,
      contentType: PATCH_CONTENT_TYPES[patchType],
      query,
    });
  }

  async delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: { propagationPolicy?: 'Background' | 'Foreground' | 'Orphan'; gracePeriodSeconds?: number; uid?: string } = {},
    call: CallOptions = {},
  ): Promise<boolean> {
    try {
      await this.request('DELETE', resourcePath(type, namespace, name), {
        ...call,
        body: {
          kind: 'DeleteOptions',
          apiVersion: 'v1',
          propagationPolicy: opts.propagationPolicy,
          gracePeriodSeconds: opts.gracePeriodSeconds,
          preconditions: opts.uid ? { uid: opts.uid } : undefined,
        },
      });
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /**
   * Streams watch events from resourceVersion until the server closes the stream, the
   * signal aborts, or an error occurs. A 410 (expired resourceVersion) arrives as ApiError;
   * a connection silent for longer than the idle timeout as WatchIdleError.
   */
  async watch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => void,
    opts: WatchOptions = {},
  ): Promise<void> {
    const path = resourcePath(type, namespace);
    const idleTimeoutMs = opts.idleTimeoutMs ?? this.options.watchIdleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
    // Measures silence, from the request until the last byte: a half-open connection
    // (the peer gone, no reset ever arriving) otherwise blocks this watch forever.
    const idle = new Deadline(idleTimeoutMs, () => new WatchIdleError(path, idleTimeoutMs), opts.signal);
    try {
      const request: RequestOptions = {
        accept: opts.metadataOnly ? ACCEPT_METADATA : ACCEPT_JSON,
        query: {
          watch: true,
          resourceVersion,
          allowWatchBookmarks: true,
          labelSelector: opts.labelSelector,
          fieldSelector: opts.fieldSelector,
          timeoutSeconds: opts.timeoutSeconds ?? 300 + Math.floor(Math.random() * 60),
        },
      };
      const res = await this.open('GET', path, request, idle.signal);
      const status = res.statusCode ?? 0;
      if (status >= 400) {
        // The next watch asks for fresh credentials instead of the rejected ones.
        if (status === 401) this.credentials.invalidate();
        throw apiError(status, await readText(res), `watch ${path}`);
      }
      const lines = new WatchLines();
      for await (const chunk of res) {
        idle.extend();
        for (const line of lines.push(chunk as Buffer)) {
          const event = JSON.parse(line) as WatchEvent<T>;
          if (event.type === 'ERROR') {
            const s = event.object as unknown as { code?: number; reason?: string; message?: string };
            throw new ApiError(s.code ?? 500, s.reason ?? 'Unknown', `watch ${path}: ${s.message ?? 'error event'}`);
          }
          onEvent(event);
        }
      }
    } catch (e) {
      if (idle.expired) throw idle.expired;
      if (opts.signal?.aborted) return;
      throw e;
    } finally {
      idle.dispose();
    }
  }
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function readText(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** An ApiError from an error response, with the Status object's reason and message when there is one. */
function apiError(status: number, text: string, what: string): ApiError {
  let reason = 'Unknown';
  let message = text.slice(0, 500);
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string };
    reason = s.reason ?? reason;
    message = s.message ?? message;
  } catch {
    // not a Status object; keep the raw text
  }
  return new ApiError(status, reason, `${what}: ${status} ${reason}: ${message}`);
}
