// Leader election on a real Lease: one holder at a time, takeover once it stops renewing.
import { LeaderElector } from '../../operator/runtime/leader-election.js';
import { createLogger } from '../../operator/runtime/logger.js';
import { useTestNamespace } from '../support/cluster.js';

const t = useTestNamespace('lease');

it('lets one replica lead and another take over only after the leader stops renewing', async () => {
  const log = createLogger('test', 'error');
  const opts = { namespace: t.ns, name: 'kopia-operator', leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200 };
  const first = new LeaderElector(t.client, { ...opts, identity: 'first' }, log);
  const second = new LeaderElector(t.client, { ...opts, identity: 'second' }, log);
  let firstLost = false;
  await first.acquire(() => (firstLost = true));
  let secondLeads = false;
  const secondAcquired = second.acquire(() => undefined).then(() => (secondLeads = true));
  await new Promise((r) => setTimeout(r, 3000));
  expect(secondLeads).toBe(false); // the first keeps renewing
  await first.stop();
  const started = Date.now();
  await secondAcquired;
  expect(Date.now() - started).toBeLessThan(6000);
  expect(firstLost).toBe(false);
  const lease = await t.client.request<{ spec: { holderIdentity: string; leaseTransitions: number } }>(
    'GET',
    `/apis/coordination.k8s.io/v1/namespaces/${t.ns}/leases/kopia-operator`,
  );
  expect(lease.spec).toMatchObject({ holderIdentity: 'second', leaseTransitions: 1 });
  await second.stop();
}, 30_000);
