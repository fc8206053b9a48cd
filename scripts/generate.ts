// make generate: schemas/ -> generated/types.ts, generated/schemas.ts, manifests/crds/*.yaml.
// With --check it writes nothing and exits 1 when a generated file is stale.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderGeneratedFiles } from '../operator/schema/generated-files.js';
import { loadSchemaFiles } from '../operator/schema/schema-bundle.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

async function main(): Promise<number> {
  const outputs = await renderGeneratedFiles(loadSchemaFiles(join(root, 'schemas')));
  const stale: string[] = [];
  for (const [path, content] of outputs) {
    const full = join(root, path);
    if (existsSync(full) && readFileSync(full, 'utf8') === content) continue;
    stale.push(path);
    if (!check) {
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, content);
    }
  }
  // A CRD whose schema file was removed must not linger.
  const crdDir = join(root, 'manifests/crds');
  for (const f of existsSync(crdDir) ? readdirSync(crdDir) : []) {
    if (outputs.has(`manifests/crds/${f}`)) continue;
    stale.push(`manifests/crds/${f}`);
    if (!check) rmSync(join(crdDir, f));
  }
  if (check && stale.length > 0) {
    console.error(`generated files are stale, run make generate: ${stale.join(', ')}`);
    return 1;
  }
  console.log(stale.length ? `generate: wrote ${stale.join(', ')}` : 'generate: up to date');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`generate: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
