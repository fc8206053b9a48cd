// Jest global setup for the control-plane tier: one test world per run; tests find it
// through environment variables (jest workers inherit them) and use a namespace each.
// Plain ESM with the tsx loader, because jest hands global setup to Node's own resolver.
import { register } from 'tsx/esm/api';

// Unregistered in global teardown so the loader's message port does not hold jest open.
globalThis.__kopiaUnregisterTsx = register();

export default async function globalSetup() {
  const { startTestWorld } = await import('./test-world.ts');
  const started = Date.now();
  const world = await startTestWorld((line) => process.stderr.write(`[test-world] ${line}\n`));
  globalThis.__kopiaTestWorld = world;
  process.env.KOPIA_TEST_KUBECONFIG = world.controlPlane.kubeconfig;
  process.env.KOPIA_TEST_DIR = world.controlPlane.dir;
  process.env.KOPIA_TEST_AGENT_DATA = world.agentDataDir;
  process.env.KOPIA_BIN_DIR = world.kopiaBinDir;
  process.stderr.write(`[test-world] ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${world.controlPlane.dir})\n`);
}
