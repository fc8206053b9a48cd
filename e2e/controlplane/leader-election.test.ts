// Leader election on a real Lease: one holder at a time, takeover once it stops renewing.
import { LeaderElector } from '../../operator/runtime/leader-election.js';
import { createLogger } from '../../operator/runtime/logger.js';
import type { KubeClient } from '../../operator/kube/kube-client.js';
import { createNamespace, deleteNamespace, testClient } from '../support/cluster.js';

let client: KubeClient;
let ns: string;
beforeAll(async () => {
  client = await testClient();
  ns = await createNamespace(client, 'lease');
});
afterAll(async () => {
  await deleteNamespace(client, ns);
  client.close();
});

it('lets one replica lead and another take over only after the leader stops renewing', async () => {
  const log = createLogger('test', 'error');
  const opts = { namespace: ns, name: 'kopia-operator', leaseDurationMs: 2000, renewMs: 500, retryMs: 200 };
  const first = new LeaderElector(client, { ...opts, identity: 'first' }, log);
  const second = new LeaderElector(client, { ...opts, identity: 'second' }, log);
  let firstLost = false;
  await first.acquire(() => (firstLost = true));
  let secondLeads = false;
  const secondAcquired = second.acquire(() => undefined).then(() => (secondLeads = true));
  await new Promise((r) => setTimeout(r, 3000));
  expect(secondLeads).toBe(false); // the first keeps renewing
  first.stop();
  const started = Date.now();
  await secondAcquired;
  expect(Date.now() - started).toBeLessThan(6000);
  expect(firstLost).toBe(false);
  const lease = await client.request<{ spec: { holderIdentity: string; leaseTransitions: number } }>(
    'GET',
    `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/kopia-operator`,
  );
  expect(lease.spec).toMatchObject({ holderIdentity: 'second', leaseTransitions: 1 });
  second.stop();
}, 30_000);
