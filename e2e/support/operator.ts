// Runs the operator in the test process against the shared test world.
import { KubeClient } from '../../operator/kube/kube-client.js';
import { startManager, type Manager } from '../../operator/manager.js';
import { createLogger } from '../../operator/runtime/logger.js';

export const TEST_MOVER_IMAGE = 'kopia-operator:test';

export async function startTestOperator(namespace: string): Promise<{ manager: Manager; client: KubeClient; stop(): void }> {
  const client = await KubeClient.fromFile(process.env.KOPIA_TEST_KUBECONFIG!);
  const manager = await startManager({
    client,
    log: createLogger('operator', process.env.LOG_LEVEL ?? 'error'),
    namespace,
    moverImage: TEST_MOVER_IMAGE,
  });
  return {
    manager,
    client,
    stop() {
      manager.stop();
      client.close();
    },
  };
}
