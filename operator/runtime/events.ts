// Kubernetes Events for every transition. Repeats of the same reason and message on the
// same object update the count of one Event instead of creating new ones.
import { isNotFound, type KubeClient, type KubeObject } from '../kube/kube-client.js';
import { Events } from '../kube/resources.js';
import type { Logger } from './logger.js';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  record(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void>;
}

export class ApiEventRecorder implements EventRecorder {
  private readonly recent = new Map<string, { name: string; namespace: string; count: number }>();

  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly log: Logger,
  ) {}

  async record(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    // The API server accepts an Event about a cluster-scoped object only in "default" (as
    // client-go's recorder writes them); kubectl describe finds it there.
    const namespace = obj.metadata.namespace || 'default';
    const key = `${obj.metadata.uid}/${type}/${reason}/${message}`;
    const now = new Date().toISOString();
    try {
      const seen = this.recent.get(key);
      if (seen) {
        try {
          await this.client.patch(Events, seen.namespace, seen.name, { count: seen.count + 1, lastTimestamp: now });
          seen.count++;
          return;
        } catch (e) {
          // The Event expired (the API server keeps them about an hour): write a new one.
          if (!isNotFound(e)) throw e;
          this.recent.delete(key);
        }
      }
      const created = await this.client.create(Events, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${obj.metadata.name}.`, namespace },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.metadata.name,
          namespace: obj.metadata.namespace,
          uid: obj.metadata.uid,
          resourceVersion: obj.metadata.resourceVersion,
        },
        reason,
        message: message.slice(0, 1024),
        type,
        source: { component: this.component },
        reportingComponent: this.component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      } as KubeObject);
      if (this.recent.size > 5000) this.recent.clear();
      this.recent.set(key, { name: created.metadata.name!, namespace, count: 1 });
    } catch (e) {
      // An event that cannot be written must not fail the reconcile that reported it.
      this.log.warn('cannot record event', { reason, object: `${namespace}/${obj.metadata.name}`, error: (e as Error).message });
    }
  }
}
