// Writes an object's status once per reconcile, and only when it changed. Uses the status
// subresource with the object's resourceVersion (optimistic lock): a conflict means the
// object moved on, so the caller requeues and reads it again.
import { isConflict, isNotFound, type KubeClient, type KubeObject, type ResourceType } from '../kube/kube-client.js';
import { deepEqual } from './deep-equal.js';

export type StatusWrite = 'unchanged' | 'written' | 'conflict' | 'gone';

/**
 * Remembers what this process last wrote, so a reconcile that runs before the watch
 * delivers the write reads its own status instead of the older cached one (which would,
 * for example, start a second verification Job).
 */
export class WrittenObjects {
  private readonly writes = new Map<string, { fromResourceVersion: string; object: KubeObject }>();

  /** The fresher of the cached object and our own last write of it. */
  latest<T extends KubeObject>(cached: T): T {
    const w = this.writes.get(cached.metadata.uid!);
    if (w && w.fromResourceVersion === cached.metadata.resourceVersion) return w.object as T;
    if (w) this.writes.delete(cached.metadata.uid!);
    return cached;
  }

  remember(before: KubeObject, after: KubeObject): void {
    if (this.writes.size > 10000) this.writes.clear();
    this.writes.set(before.metadata.uid!, { fromResourceVersion: before.metadata.resourceVersion!, object: after });
  }
}

export async function writeStatus<T extends KubeObject & { status?: unknown }>(
  client: KubeClient,
  type: ResourceType,
  obj: T,
  status: unknown,
  written?: WrittenObjects,
): Promise<StatusWrite> {
  const clean = JSON.parse(JSON.stringify(status)) as unknown;
  if (deepEqual(obj.status ?? {}, clean)) return 'unchanged';
  try {
    const after = await client.replace(type, { ...obj, status: clean }, 'status');
    written?.remember(obj, after);
    return 'written';
  } catch (e) {
    if (isConflict(e)) return 'conflict';
    if (isNotFound(e)) return 'gone';
    throw e;
  }
}
