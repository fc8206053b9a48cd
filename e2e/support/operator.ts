// Runs the operator in the test process against the shared test world.
import { KubeClient } from '../../operator/kube/kube-client.js';
import { startManager, type Manager } from '../../operator/manager.js';
import { createLogger } from '../../operator/runtime/logger.js';

export const TEST_MOVER_IMAGE = 'kopia-operator:test';

export interface TestOperatorOptions {
  /** The operator's clock (a FakeClock's now): schedules are tested by moving time, not by sleeping. */
  now?: () => Date;
  /** The cluster name in default maintenance owners (KOPIA_CLUSTER_NAME). */
  clusterName?: string;
}

/** A clock the test moves by hand. */
export class FakeClock {
  private ms: number;

  constructor(start: Date = new Date()) {
    this.ms = start.getTime();
  }

  readonly now = (): Date => new Date(this.ms);

  set(to: Date): void {
    this.ms = to.getTime();
  }

  advance(ms: number): void {
    this.ms += ms;
  }
}

export async function startTestOperator(
  namespace: string,
  opts: TestOperatorOptions = {},
): Promise<{ manager: Manager; client: KubeClient; stop(): void }> {
  const client = await KubeClient.fromFile(process.env.KOPIA_TEST_KUBECONFIG!);
  const manager = await startManager({
    client,
    now: opts.now,
    clusterName: opts.clusterName,
    log: createLogger('operator', process.env.LOG_LEVEL ?? 'error'),
    namespace,
    moverImage: TEST_MOVER_IMAGE,
    // Movers run as local processes beside the test: they reach the intake on loopback.
    intake: { port: 0, host: '127.0.0.1' },
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
