// The test world a run shares: a control plane with the kopia CRDs and the CSI snapshot
// API applied, and a node agent.
// Started once per jest run by global-setup.ts, and by `make run` for the local demo.
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { isAlreadyExists, KubeClient, type KubeObject } from '../../operator/kube/kube-client.js';
import { CustomResourceDefinitions, Nodes } from '../../operator/kube/resources.js';
import { destroyControlPlane, ensureTestBinaries, startControlPlane, type ControlPlane } from './control-plane.js';
import { repoRoot, tsNode } from './paths.js';
import { startGuarded, type GuardedProcess } from './processes.js';

export interface TestWorld {
  controlPlane: ControlPlane;
  agent: GuardedProcess;
  agentDataDir: string;
  kopiaBinDir: string;
  stop(): Promise<void>;
}

/** The kopia.io CRDs, from manifests/crds. */
export function applyCrds(client: KubeClient): Promise<string[]> {
  return applyCrdFiles(client, join(repoRoot, 'manifests/crds'), '.kopia.io.yaml');
}

/** The snapshot.storage.k8s.io/v1 API (the external-snapshotter's CRDs, as the test world writes them). */
export function applySnapshotCrds(client: KubeClient): Promise<string[]> {
  return applyCrdFiles(client, join(repoRoot, 'e2e/support/snapshot-crds'), '.snapshot.storage.k8s.io.yaml');
}

/** Creates or replaces the CRDs in dir's files ending in suffix; resolves once all are established. */
async function applyCrdFiles(client: KubeClient, dir: string, suffix: string): Promise<string[]> {
  const names: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(suffix))) {
    const crd = parse(readFileSync(join(dir, file), 'utf8')) as KubeObject;
    names.push(crd.metadata.name!);
    try {
      await client.create(CustomResourceDefinitions, crd);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      const current = await client.get(CustomResourceDefinitions, undefined, crd.metadata.name!);
      await client.replace(CustomResourceDefinitions, {
        ...crd,
        metadata: { ...crd.metadata, resourceVersion: current.metadata.resourceVersion },
      });
    }
  }
  await until('CRDs established', async () => {
    for (const name of names) {
      const crd = await client.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(
        CustomResourceDefinitions,
        undefined,
        name,
      );
      if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return false;
    }
    return true;
  });
  return names;
}

export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30000, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

export async function startTestWorld(log: (line: string) => void = () => undefined): Promise<TestWorld> {
  const kopiaBinDir = ensureTestBinaries(['kopia']);
  const controlPlane = await startControlPlane({ log });
  let agent: GuardedProcess | undefined;
  try {
    const client = await KubeClient.fromFile(controlPlane.kubeconfig);
    await Promise.all([applyCrds(client), applySnapshotCrds(client)]);
    log('CRDs established');
    const agentDataDir = join(controlPlane.dir, 'node');
    mkdirSync(agentDataDir, { recursive: true });
    const [node, ...nodeArgs] = tsNode();
    agent = startGuarded(
      'node-agent',
      node,
      [
        ...nodeArgs,
        join(repoRoot, 'e2e/support/node-agent-main.ts'),
        '--kubeconfig',
        controlPlane.kubeconfig,
        '--data-dir',
        agentDataDir,
        '--kopia-bin',
        kopiaBinDir,
      ],
      join(controlPlane.dir, 'logs/node-agent.log'),
    );
    await until('the node agent to register a Ready node', async () => {
      const n = await client.getOrUndefined<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(
        Nodes,
        undefined,
        'local-node',
      );
      return !!n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    });
    client.close();
    log('node agent ready');
    const started = agent;
    return {
      controlPlane,
      agent: started,
      agentDataDir,
      kopiaBinDir,
      async stop() {
        await started.stop();
        await destroyControlPlane(controlPlane);
      },
    };
  } catch (e) {
    await agent?.stop();
    await destroyControlPlane(controlPlane);
    throw e;
  }
}
