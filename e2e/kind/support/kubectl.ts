// The kind suite acts as a user does: through kubectl, against the cluster `make e2e` made
// (KUBECONFIG). Nothing here talks to the API server any other way.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** What `make e2e` set up; each has the default e2e/kind/run.sh uses. */
export const world = {
  system: process.env.E2E_SYSTEM_NAMESPACE ?? 'kopia-system',
  storageClass: process.env.E2E_STORAGE_CLASS ?? 'standard',
  snapshotClass: process.env.E2E_SNAPSHOT_CLASS ?? 'csi-hostpath-snapclass',
  s3Endpoint: process.env.E2E_S3_ENDPOINT ?? 's3.kopia-e2e-storage.svc:9000',
  s3Bucket: process.env.E2E_S3_BUCKET ?? 'backups',
  toolboxImage: process.env.E2E_TOOLBOX_IMAGE ?? 'kopia-e2e/toolbox:bookworm',
};

if (!process.env.KUBECONFIG) throw new Error('the kind suite needs KUBECONFIG (run it through make e2e)');

export function kubectl(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('kubectl', args, { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`kubectl ${args.join(' ')}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

export async function apply(yaml: string): Promise<void> {
  await kubectl(['apply', '-f', '-'], yaml);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- objects as kubectl prints them
export type Obj = any;

export async function get(kind: string, namespace: string | undefined, name: string): Promise<Obj | undefined> {
  const args = ['get', kind, name, '-o', 'json', '--ignore-not-found'];
  if (namespace) args.push('-n', namespace);
  const out = await kubectl(args);
  return out.trim() ? JSON.parse(out) : undefined;
}

export async function list(kind: string, namespace: string | 'all', selector?: string): Promise<Obj[]> {
  const args = ['get', kind, '-o', 'json', ...(namespace === 'all' ? ['-A'] : ['-n', namespace])];
  if (selector) args.push('-l', selector);
  return JSON.parse(await kubectl(args)).items;
}

/** Polls until `check` returns a value other than undefined/false; the timeout names what was awaited and the last state. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  describe?: () => Promise<string>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  const state = describe ? await describe().catch((e: Error) => `(could not describe: ${e.message})`) : '';
  throw new Error(
    `timed out after ${timeoutMs / 1000} s waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}\n${state}`,
  );
}

export const condition = (obj: Obj, type: string) => (obj?.status?.conditions ?? []).find((c: Obj) => c.type === type);

/** A namespace of this run, annotated as given; deleted by `deleteNamespace`. */
export async function createNamespace(prefix: string, annotations: Record<string, string> = {}): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await apply(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, annotations } }));
  return name;
}

export async function deleteNamespace(name: string): Promise<void> {
  await kubectl(['delete', 'namespace', name, '--ignore-not-found', '--wait=true', '--timeout=300s']);
}

/** Everything of one object, for a failure message. */
export async function describe(kind: string, namespace: string, name: string): Promise<string> {
  return kubectl(['describe', kind, name, '-n', namespace]).catch((e: Error) => e.message);
}

export async function waitForPhase(kind: string, namespace: string, name: string, phase: string, timeoutMs: number): Promise<Obj> {
  return until(
    `${kind} ${namespace}/${name} to reach ${phase}`,
    async () => {
      const obj = await get(kind, namespace, name);
      if (obj?.status?.phase === 'Failed' && phase !== 'Failed') throw new Error(`${kind} ${name} Failed: ${JSON.stringify(obj.status)}`);
      return obj?.status?.phase === phase ? obj : undefined;
    },
    timeoutMs,
    () => describe(kind, namespace, name),
  );
}

export async function waitForReady(kind: string, namespace: string, name: string, timeoutMs: number): Promise<Obj> {
  return until(
    `${kind} ${namespace}/${name} to be Ready`,
    async () => {
      const obj = await get(kind, namespace, name);
      return condition(obj, 'Ready')?.status === 'True' ? obj : undefined;
    },
    timeoutMs,
    () => describe(kind, namespace, name),
  );
}

/** The mover Jobs, pods and prime claims the operator and populator left anywhere. */
export async function leftovers(): Promise<string[]> {
  const left: string[] = [];
  for (const job of await list('jobs', 'all', 'app.kubernetes.io/managed-by=kopia-operator'))
    left.push(`Job ${job.metadata.namespace}/${job.metadata.name}`);
  for (const pod of await list('pods', 'all', 'app.kubernetes.io/managed-by=kopia-operator'))
    left.push(`Pod ${pod.metadata.namespace}/${pod.metadata.name}`);
  for (const pvc of await list('pvc', 'all'))
    if (pvc.metadata.name.startsWith('kopia-prime-')) left.push(`claim ${pvc.metadata.namespace}/${pvc.metadata.name}`);
  return left;
}
