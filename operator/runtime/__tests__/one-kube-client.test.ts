// One copy of @kubernetes/client-node, ours: @dot-i/k8s-operator declares client-node 0.20,
// and a second copy loaded beside ours cost about 25 MB of resident memory in every process
// (docs/adr/0001-operator-runtime.md). package.json's `overrides` points @dot-i at ours; these
// tests fail if a lock file change, an upgrade or a plain `npm install` brings the copy back.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const repoRoot = resolve(new URL('../../..', import.meta.url).pathname);
const CLIENT = '@kubernetes/client-node';

/** Every installed directory of a package under node_modules, nested ones included. */
function installedCopies(name: string): string[] {
  const found: string[] = [];
  const visit = (modulesDir: string) => {
    if (!existsSync(modulesDir)) return;
    if (existsSync(join(modulesDir, name, 'package.json'))) found.push(relative(repoRoot, join(modulesDir, name)));
    for (const entry of readdirSync(modulesDir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const packages = entry.name.startsWith('@')
        ? readdirSync(join(modulesDir, entry.name), { withFileTypes: true })
            .filter((e) => e.isDirectory())
            .map((e) => join(modulesDir, entry.name, e.name))
        : [join(modulesDir, entry.name)];
      for (const p of packages) visit(join(p, 'node_modules'));
    }
  };
  visit(join(repoRoot, 'node_modules'));
  return found;
}

/** The package directory `name` resolves to when required from `fromDir`. */
function resolvedFrom(fromDir: string, name: string): string {
  return dirname(createRequire(join(fromDir, 'package.json')).resolve(`${name}/package.json`));
}

describe('one copy of @kubernetes/client-node', () => {
  test('the lock file installs it once, at the top of the tree', () => {
    const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
    const copies = Object.keys(lock.packages).filter((path) => path.endsWith(`node_modules/${CLIENT}`));
    expect(copies).toEqual([`node_modules/${CLIENT}`]);
  });

  test('node_modules holds one copy', () => {
    expect(installedCopies(CLIENT)).toEqual([`node_modules/${CLIENT}`]);
  });

  test("@dot-i/k8s-operator's require of the client resolves to ours, the version package.json names", () => {
    const ours = resolvedFrom(repoRoot, CLIENT);
    const dotI = resolvedFrom(resolvedFrom(repoRoot, '@dot-i/k8s-operator'), CLIENT);
    expect(relative(repoRoot, dotI)).toBe(relative(repoRoot, ours));
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const installed = JSON.parse(readFileSync(join(dotI, 'package.json'), 'utf8')) as { version: string };
    expect(installed.version).toBe(pkg.dependencies[CLIENT]);
  });

  // Run as the shipped processes run it, in Node itself (20.19+ require()s client-node's ES
  // modules from @dot-i's CommonJS; jest's module system cannot, see e2e/support/jest-resolver.cjs).
  // tsx/esm only compiles our TypeScript: tsx's CommonJS hook would compile client-node into a
  // CommonJS copy of its own for @dot-i's require().
  test("a KindOperator's @dot-i base loads its kubeconfig with our client, in a node process", () => {
    const dir = mkdtempSync(join(tmpdir(), 'one-kube-client-'));
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(
        kubeconfig,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'c', cluster: { server: 'https://api.example.test:6443' } }],
          users: [{ name: 'u', user: { token: 'not-a-secret' } }],
          contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
          'current-context': 'x',
        }),
      );
      const program = `
        import { KubeConfig } from '@kubernetes/client-node';
        import { KindOperator } from './operator/runtime/kind-operator.ts';
        class Probe extends KindOperator {
          kind = 'Probe';
          async init() {}
          async reconcile() {}
          config() { return this.kubeConfig; }
        }
        const probe = new Probe({ log: { debug() {}, info() {}, warn() {}, error() {} } });
        probe.stop();
        console.log(JSON.stringify({ ours: probe.config() instanceof KubeConfig, server: probe.config().getCurrentCluster()?.server }));`;
      const out = execFileSync(process.execPath, ['--import', 'tsx/esm', '--input-type=module', '-e', program], {
        cwd: repoRoot,
        env: { ...process.env, KUBECONFIG: kubeconfig },
        encoding: 'utf8',
      });
      expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ ours: true, server: 'https://api.example.test:6443' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
