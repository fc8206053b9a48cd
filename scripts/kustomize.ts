// The kustomize build of a directory, optionally with the base's image replaced through an
// overlay's `images:`. Which kustomize: $KUSTOMIZE (a command line, e.g. "kubectl kustomize"),
// else `kustomize build` from PATH, else the one scripts/build-test-binaries.sh caches, else
// `kubectl kustomize` (kubectl >= 1.27 carries kustomize v5).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import type { KubeObject } from '../operator/kube/kube-client.js';
import { imageOverride } from './install-plan.js';

function kustomizeCommand(): string[] {
  if (process.env.KUSTOMIZE) return process.env.KUSTOMIZE.split(/\s+/).filter(Boolean);
  try {
    execFileSync('kustomize', ['version'], { stdio: 'ignore' });
    return ['kustomize', 'build'];
  } catch {
    // not on PATH
  }
  const cache = process.env.KOPIA_OPERATOR_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kopia-operator');
  const cached = join(cache, 'bin/kustomize');
  return existsSync(cached) ? [cached, 'build'] : ['kubectl', 'kustomize'];
}

/** The build's output as YAML text; components (e.g. manifests/monitoring) are added to the base. */
export function kustomizeBuildYaml(base: string, image?: string, components: string[] = []): string {
  const overlay = mkdtempSync(join(tmpdir(), 'kopia-operator-kustomize-'));
  try {
    // kustomize refuses an absolute path to a base; a relative one may leave the overlay's root.
    const kustomization = {
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [relative(overlay, resolve(base))],
      ...(image ? { images: [imageOverride(image)] } : {}),
      ...(components.length ? { components: components.map((c) => relative(overlay, resolve(c))) } : {}),
    };
    writeFileSync(join(overlay, 'kustomization.yaml'), stringify(kustomization));
    const [command, ...args] = kustomizeCommand();
    return execFileSync(command, [...args, overlay], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
  } finally {
    rmSync(overlay, { recursive: true, force: true });
  }
}

export function parseObjects(yaml: string): KubeObject[] {
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((d): d is KubeObject => !!d?.kind);
}

export function kustomizeBuild(base: string, image?: string, components: string[] = []): KubeObject[] {
  return parseObjects(kustomizeBuildYaml(base, image, components));
}
