// make deploy: server-side apply of every manifest under a directory (CRDs first) to the
// cluster of the current kubeconfig, without needing kubectl. Resource paths come from
// API discovery; a CRD is waited for until Established before objects of it are applied.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KubeClient, resourcePath, type KubeObject, type ResourceType } from '../operator/kube/kube-client.js';

function yamlFiles(path: string): string[] {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((e) => yamlFiles(join(path, e)))
    .filter((f) => /\.ya?ml$/.test(f) && !f.endsWith('kustomization.yaml'));
}

async function discover(client: KubeClient, apiVersion: string, kind: string): Promise<ResourceType> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const path = group ? `/apis/${group}/${version}` : `/api/${version}`;
  for (let attempt = 0; attempt < 30; attempt++) {
    try {
      const list = await client.request<{ resources: { name: string; kind: string; namespaced: boolean }[] }>('GET', path);
      const r = list.resources.find((x) => x.kind === kind && !x.name.includes('/'));
      if (r) return { group, version, plural: r.name, namespaced: r.namespaced };
    } catch {
      // the group may not be served yet (a CRD just created)
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
  throw new Error(`the cluster does not serve ${kind} in ${apiVersion}`);
}

async function main(): Promise<number> {
  const dir = process.argv[2] ?? 'manifests';
  const client = await KubeClient.fromDefault();
  const docs = yamlFiles(dir)
    .flatMap((f) => parseAllDocuments(readFileSync(f, 'utf8')).map((d) => d.toJS() as KubeObject | null))
    .filter((d): d is KubeObject => !!d && !!d.kind);
  const rank = (o: KubeObject) => (o.kind === 'CustomResourceDefinition' ? 0 : o.kind === 'Namespace' ? 1 : 2);
  docs.sort((a, b) => rank(a) - rank(b));
  for (const obj of docs) {
    const type = await discover(client, obj.apiVersion!, obj.kind!);
    await client.request('PATCH', resourcePath(type, obj.metadata.namespace, obj.metadata.name), {
      body: JSON.stringify(obj),
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: 'kopia-operator-deploy', force: true },
    });
    console.log(`applied ${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name}`);
  }
  client.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`deploy: ${e.message}`);
    process.exit(1);
  },
);
