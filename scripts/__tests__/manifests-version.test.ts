// The image tag manifests/ installs is the release's version: a GitOps install of a tagged
// release runs that release's image.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const root = join(import.meta.dirname, '../..');

it("manifests/kustomization.yaml's images: tags kopia-operator with package.json's version", () => {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const kustomization = parse(readFileSync(join(root, 'manifests/kustomization.yaml'), 'utf8')) as {
    images?: { name: string; newTag?: string }[];
  };
  expect(kustomization.images).toEqual([{ name: 'kopia-operator', newTag: version }]);
});
