// The operator's and the populator's processes run from one minified file each
// (dist/bundle/*.mjs, built from dist/ after tsc), because of what Node holds per loaded
// module: its source text stays on the V8 heap for the life of the process. Loaded from
// node_modules, @kubernetes/client-node 1.4 is 967 files and 21 MB of generated,
// JSDoc-commented source; its KubeConfig alone reaches all of it (config.js imports the
// generated index). Bundled and minified, the operator's imports hold about 72 MB resident
// instead of about 104 (docs/adr/0001-operator-runtime.md, bench/results/latest.json "footprint").
// Names are kept (stack traces and error names stay readable); source maps are written
// beside the bundles for reading a stack trace, never loaded by the process.
// The mover stays on dist/ (a Job's short life; its tests run it from source).
import { build } from 'esbuild';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Run in the image's build stage too, where only operator/, generated/ and this file are.
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

const BUNDLES = {
  'dist/bundle/operator.mjs': 'dist/operator/main.js',
  'dist/bundle/populator.mjs': 'dist/operator/populator/main.js',
} as const;

for (const [outfile, entry] of Object.entries(BUNDLES)) {
  await build({
    entryPoints: [join(repoRoot, entry)],
    outfile: join(repoRoot, outfile),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minify: true,
    keepNames: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    // CommonJS packages (winston, @dot-i/k8s-operator, ...) require() Node's built-in modules.
    banner: {
      js: "import { createRequire as createRequireForBundledPackages } from 'node:module'; const require = createRequireForBundledPackages(import.meta.url);",
    },
    logLevel: 'warning',
  });
}
