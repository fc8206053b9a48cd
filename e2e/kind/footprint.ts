// The footprint of what ships, in the kind cluster after the suite (make e2e runs it):
// resident memory of every operator and populator pod at rest, and again once the
// operator has reconciled 1,000 BackupConfigs. Read from each container's own
// /proc/1/status (the container's node process), so it is what the kernel charges the pod.
// Results: bench/results/kind-footprint.json, and one line per pod on stdout.
import { mkdirSync, writeFileSync } from 'node:fs';
import { apply, createNamespace, deleteNamespace, kubectl, list, until, world } from './support/kubectl.js';

const CONFIGS = Number(process.env.FOOTPRINT_CONFIGS ?? 1000);
const RSS = "console.log(require('fs').readFileSync('/proc/1/status','utf8').match(/VmRSS:\\s*(\\d+)/)[1])";

async function residentMiB(): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (const component of ['operator', 'populator']) {
    const pods = await list('pods', world.system, `app.kubernetes.io/name=kopia-operator,app.kubernetes.io/component=${component}`);
    for (const pod of pods.filter((p) => p.status?.phase === 'Running')) {
      const kib = Number((await kubectl(['exec', '-n', world.system, pod.metadata.name, '--', 'node', '-e', RSS])).trim());
      seen[`${component}/${pod.metadata.name}`] = Math.round((kib / 1024) * 10) / 10;
    }
  }
  return seen;
}

const idle = await residentMiB();
const ns = await createNamespace('e2e-footprint');
try {
  const configs = Array.from({ length: CONFIGS }, (_, i) => ({
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'BackupConfig',
    metadata: { name: `config-${i}`, namespace: ns },
    spec: { repository: { name: 'absent' }, source: { pvc: `claim-${i}` } },
  }));
  await apply(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: configs }));
  await until(
    `all ${CONFIGS} BackupConfigs to have a status`,
    async () => (await list('backupconfigs', ns)).filter((c) => c.status?.conditions?.length).length === CONFIGS,
    900_000,
  );
  // A pass over every object has settled; give the collector a moment to return what it freed.
  await new Promise((r) => setTimeout(r, 30_000));
  const loaded = await residentMiB();
  const result = { measuredAt: new Date().toISOString(), configs: CONFIGS, idleMiB: idle, withConfigsMiB: loaded };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/kind-footprint.json', `${JSON.stringify(result, null, 2)}\n`);
  for (const pod of Object.keys(idle))
    console.log(`footprint ${pod}: ${idle[pod]} MiB idle, ${loaded[pod] ?? '(gone)'} MiB with ${CONFIGS} BackupConfigs`);
} finally {
  await deleteNamespace(ns);
}
