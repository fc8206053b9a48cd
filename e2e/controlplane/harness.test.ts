// The harness starts and stops cleanly: nothing it started outlives it.
import { destroyControlPlane, startControlPlane } from '../support/control-plane.js';
import { processesMentioning } from '../support/processes.js';
import { KubeClient } from '../../operator/kube/kube-client.js';

it('stopping a control plane leaves no etcd, apiserver or controller-manager running', async () => {
  const cp = await startControlPlane();
  const client = await KubeClient.fromFile(cp.kubeconfig);
  const version = await client.request<{ gitVersion: string }>('GET', '/version');
  client.close();
  expect(version.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
  const running = await processesMentioning(cp.dir);
  expect(running.length).toBeGreaterThanOrEqual(3);
  await destroyControlPlane(cp);
  await new Promise((r) => setTimeout(r, 300));
  expect(await processesMentioning(cp.dir)).toEqual([]);
});
