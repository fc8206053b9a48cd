// Secrets without a cache of their values. The informer holds Secret *metadata* only (so
// the operator's memory does not grow with every Secret in the cluster); values are read
// with a GET when needed, and the key names of each Secret version are remembered (never
// its values), so a quiet cluster causes no reads.
import type { KubeClient, KubeObject } from '../kube/kube-client.js';
import { Secrets } from '../kube/resources.js';
import type { Informer } from './informer.js';

type SecretObject = KubeObject & { data?: Record<string, string> };

export class SecretKeys {
  /** "namespace/name" → key names of the version last read. */
  private readonly keyNames = new Map<string, { resourceVersion: string; keys: Set<string> }>();

  constructor(
    private readonly client: KubeClient,
    private readonly metadata: Informer<KubeObject>,
  ) {}

  /** The Secret's cached metadata (existence, resourceVersion, labels, annotations). */
  get(namespace: string, name: string): KubeObject | undefined {
    return this.metadata.get(`${namespace}/${name}`);
  }

  /** Whether the Secret has key; undefined when the Secret does not exist. */
  async hasKey(namespace: string, name: string, key: string): Promise<boolean | undefined> {
    const meta = this.get(namespace, name);
    if (!meta) return undefined;
    const id = `${namespace}/${name}`;
    const known = this.keyNames.get(id);
    if (known && known.resourceVersion === meta.metadata.resourceVersion) return known.keys.has(key);
    const secret = await this.read(namespace, name);
    if (!secret) return undefined;
    if (this.keyNames.size > 10000) this.keyNames.clear();
    this.keyNames.set(id, { resourceVersion: secret.metadata.resourceVersion!, keys: new Set(Object.keys(secret.data ?? {})) });
    return key in (secret.data ?? {});
  }

  /** The Secret with its data (base64), read now; undefined when it does not exist. */
  read(namespace: string, name: string): Promise<SecretObject | undefined> {
    return this.client.getOrUndefined<SecretObject>(Secrets, namespace, name);
  }
}
