import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The kind tier must fail, not skip, when it cannot run: CI reads a non-zero exit and one
// line naming the cause (issue 16, item 3). These cases need no Docker engine.
const clusterScript = fileURLToPath(new URL('../../e2e/kind/cluster.sh', import.meta.url));

const runClusterScript = (args: string[], env: NodeJS.ProcessEnv) =>
  spawnSync('bash', [clusterScript, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });

describe('e2e/kind/cluster.sh', () => {
  it.each(['up', 'down', 'check', 'load', 'image'])(
    '%s exits non-zero with one line naming the cause when no Docker engine answers',
    (command) => {
      const result = runClusterScript([command], { DOCKER_HOST: 'unix:///nonexistent/docker.sock', CI: 'true' });
      expect(result.status).toBe(1);
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^kind-cluster: (no Docker engine answers|docker is not installed)/);
      expect(result.stdout).toBe('');
    },
  );

  it('names its commands when given none it knows', () => {
    const result = runClusterScript(['bogus'], {});
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe('kind-cluster: usage: e2e/kind/cluster.sh up|down|check|load IMAGE...|image');
  });
});
