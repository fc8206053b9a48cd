// The event recorder against the real API server: Events about cluster-scoped objects
// are accepted and findable, repeats bump one Event's count, an expired Event is replaced.
import type { KubeObject } from '../../operator/kube/kube-client.js';
import { Events, KopiaClusterRepositories } from '../../operator/kube/resources.js';
import { ApiEventRecorder } from '../../operator/runtime/events.js';
import { createLogger } from '../../operator/runtime/logger.js';
import { validObjects } from '../../operator/test-support/kopia-objects.js';
import { useTestNamespace } from '../support/cluster.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const t = useTestNamespace('events');

function recorder(warnings: string[]): ApiEventRecorder {
  const log = createLogger('test', 'warn');
  log.warn = ((message: string, meta?: unknown) => {
    warnings.push(`${message} ${JSON.stringify(meta)}`);
    return log;
  }) as never;
  return new ApiEventRecorder(t.client, 'kopia-operator', log);
}

async function eventsAbout(uid: string): Promise<any[]> {
  const list = await t.client.list<KubeObject>(Events, undefined, { fieldSelector: `involvedObject.uid=${uid}` });
  return list.items;
}

it('records Events about a ClusterRepository where kubectl finds them', async () => {
  const name = `events-${t.ns}`;
  const repo = await t.client.create(KopiaClusterRepositories, { ...validObjects.ClusterRepository(), metadata: { name } } as KubeObject);
  try {
    const warnings: string[] = [];
    await recorder(warnings).record(repo, 'Warning', 'WrongPassword', 'invalid repository password');
    expect(warnings).toEqual([]);
    const events = await eventsAbout(repo.metadata.uid!);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      metadata: { namespace: 'default' },
      involvedObject: { kind: 'ClusterRepository', name },
      reason: 'WrongPassword',
      type: 'Warning',
      count: 1,
    });
  } finally {
    await t.client.delete(KopiaClusterRepositories, undefined, name);
  }
});

it('counts repeats on one Event, and writes a new one when that Event has expired', async () => {
  const about = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'subject', namespace: t.ns, uid: `uid-${t.ns}` } };
  const warnings: string[] = [];
  const events = recorder(warnings);
  await events.record(about, 'Normal', 'Verified', 'connected');
  await events.record(about, 'Normal', 'Verified', 'connected');
  let recorded = (await eventsAbout(`uid-${t.ns}`)).filter((e) => e.reason === 'Verified');
  expect(recorded.map((e) => e.count)).toEqual([2]);

  await t.client.delete(Events, t.ns, recorded[0].metadata.name);
  await events.record(about, 'Normal', 'Verified', 'connected');
  recorded = (await eventsAbout(`uid-${t.ns}`)).filter((e) => e.reason === 'Verified');
  expect(recorded.map((e) => e.count)).toEqual([1]);
  expect(warnings).toEqual([]);
});
