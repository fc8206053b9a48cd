// The image tag manifests/ installs is the release's version: a GitOps install of a tagged
// release runs that release's image. The GitOps examples name that release too.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

const root = join(import.meta.dirname, '../..');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

it("manifests/kustomization.yaml's images: tags kopia-operator with package.json's version", () => {
  const kustomization = parse(readFileSync(join(root, 'manifests/kustomization.yaml'), 'utf8')) as {
    images?: { name: string; newTag?: string }[];
  };
  expect(kustomization.images).toEqual([{ name: 'kopia-operator', newTag: version }]);
});

/* eslint-disable @typescript-eslint/no-explicit-any -- the examples are read structurally */
it("examples/gitops install package.json's release: its tag, its image, an existing path", () => {
  const docs = (file: string) => parseAllDocuments(readFileSync(join(root, 'examples/gitops', file), 'utf8')).map((d) => d.toJS() as any);
  const [argo] = docs('argocd-application.yaml');
  expect(argo.spec.source.targetRevision).toBe(`v${version}`);
  expect(argo.spec.source.kustomize.images).toEqual([`kopia-operator=registry.example.com/your-team/kopia-operator:${version}`]);
  expect(existsSync(join(root, argo.spec.source.path, 'kustomization.yaml'))).toBe(true);

  const [source, kustomization] = docs('flux.yaml');
  expect(source.spec.ref).toEqual({ tag: `v${version}` });
  expect(kustomization.spec.sourceRef).toEqual({ kind: 'GitRepository', name: source.metadata.name });
  expect(kustomization.spec.images).toEqual([
    { name: 'kopia-operator', newName: 'registry.example.com/your-team/kopia-operator', newTag: version },
  ]);
  expect(existsSync(join(root, kustomization.spec.path, 'kustomization.yaml'))).toBe(true);
});
