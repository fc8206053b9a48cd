// The benchmarks count API calls from a process's /metrics: they must read what the
// registry really writes (kopia_api_requests_total by verb, resource and code).
import { createProcessMetrics } from '../../operator/metrics/metrics-registry.js';
import { apiCallsOf } from '../bench-support.js';

test('reads kopia_api_requests_total as the registry writes it, summed over the codes', async () => {
  const metrics = createProcessMetrics({ process: 'populator', lease: 'kopia-populator', isLeader: () => true });
  const requests = metrics.metric('kopia_api_requests_total');
  requests.inc({ verb: 'GET', resource: 'jobs', code: '200' }, 3);
  requests.inc({ verb: 'GET', resource: 'jobs', code: '0' }, 2);
  requests.inc({ verb: 'PUT', resource: 'leases', code: '409' });
  metrics.metric('kopia_reconcile_total').inc({ kind: 'PersistentVolumeClaim', result: 'success' }, 9);
  expect(apiCallsOf(await metrics.metrics())).toEqual({ 'GET jobs': 5, 'PUT leases': 1 });
});
