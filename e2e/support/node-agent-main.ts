// Process entry for the node agent: node --import tsx e2e/support/node-agent-main.ts
//   --kubeconfig FILE --data-dir DIR --kopia-bin DIR
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeClient } from '../../operator/kube/kube-client.js';
import { CONTAINER_IMAGE_DIR, NodeAgent } from './node-agent.js';
import { moverEntrypoint, repoRoot } from './paths.js';

const { values } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    'data-dir': { type: 'string' },
    'kopia-bin': { type: 'string' },
    'node-name': { type: 'string', default: 'local-node' },
  },
});
if (!values.kubeconfig || !values['data-dir'] || !values['kopia-bin']) {
  console.error('node-agent: --kubeconfig, --data-dir and --kopia-bin are required');
  process.exit(2);
}
const client = await KubeClient.fromFile(values.kubeconfig);
const agent = new NodeAgent(client, {
  nodeName: values['node-name'],
  dataDir: resolve(values['data-dir']),
  kopiaBinDir: resolve(values['kopia-bin']),
  imageRoot: repoRoot,
  imageEntrypoint: moverEntrypoint(CONTAINER_IMAGE_DIR),
  log: (line) => console.log(`${new Date().toISOString()} ${line}`),
});
await agent.start();
console.log(`${new Date().toISOString()} node agent ready as ${agent.nodeName}`);
const shutdown = () => {
  void agent.stop().then(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
