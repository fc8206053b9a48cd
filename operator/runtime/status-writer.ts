// Writes an object's status once per reconcile, and only when it changed. Uses the status
// subresource with the object's resourceVersion (optimistic lock): a conflict means the
// object moved on, so the caller requeues and reads it again.
import { isConflict, isNotFound, type KubeClient, type KubeObject, type ResourceType } from '../kube/kube-client.js';
import { deepEqual } from './deep-equal.js';

export type StatusWrite = 'unchanged' | 'written' | 'conflict' | 'gone';

export async function writeStatus<T extends KubeObject & { status?: unknown }>(
  client: KubeClient,
  type: ResourceType,
  obj: T,
  status: unknown,
): Promise<StatusWrite> {
  const clean = JSON.parse(JSON.stringify(status)) as unknown;
  if (deepEqual(obj.status ?? {}, clean)) return 'unchanged';
  try {
    await client.replace(type, { ...obj, status: clean }, 'status');
    return 'written';
  } catch (e) {
    if (isConflict(e)) return 'conflict';
    if (isNotFound(e)) return 'gone';
    throw e;
  }
}
