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
// @dot-i/k8s-operator (CommonJS) require()s the client's whole namespace, which would keep
// every generated API class in the bundle; it is handed a module re-exporting the names it
// uses instead (DOT_I_CLIENT_NAMES, the same classes from the same client), so the bundle
// keeps only what runs: 3.9 → 1.9 MB for the populator.
import { build, type Plugin } from 'esbuild';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Run in the image's build stage too, where only operator/, generated/ and this file are.
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

const BUNDLES = {
  'dist/bundle/operator.mjs': 'dist/operator/main.js',
  'dist/bundle/populator.mjs': 'dist/operator/populator/main.js',
} as const;

/** What @dot-i/k8s-operator's dist/operator.js takes from @kubernetes/client-node (a unit test keeps this true). */
export const DOT_I_CLIENT_NAMES = ['ApiextensionsV1Api', 'CoreV1Api', 'KubeConfig', 'Watch', 'loadYaml'];

const dotIClientNames: Plugin = {
  name: 'dot-i-client-names',
  setup(b) {
    b.onResolve({ filter: /^@kubernetes\/client-node$/ }, (args) =>
      /[\\/]node_modules[\\/]@dot-i[\\/]k8s-operator[\\/]/.test(args.importer) ? { path: 'client-node', namespace: 'dot-i' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'dot-i' }, () => ({
      contents: `export { ${DOT_I_CLIENT_NAMES.join(', ')} } from '@kubernetes/client-node';`,
      resolveDir: repoRoot,
    }));
  },
};

async function bundle(): Promise<void> {
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
      plugins: [dotIClientNames],
    });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await bundle();
