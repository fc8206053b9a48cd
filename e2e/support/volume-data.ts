// What the node agent's "storage" does with volume data: whole-directory copies for clones,
// snapshots and restores, and the sizes Kubernetes quantities describe.
import { execFile } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Copies the directory src to dst as the storage would copy a volume: modes, owners,
 * timestamps, symlinks, hard links, special files and the top directory's own attributes
 * (`cp -a`). The copy lands under a staging name first and is renamed into place, so dst
 * exists only once complete; an existing dst is taken as a finished earlier copy.
 */
export async function copyVolumeTree(src: string, dst: string): Promise<void> {
  if (existsSync(dst)) return;
  if (!existsSync(src)) throw new Error(`the source directory ${src} does not exist`);
  const staging = join(dirname(dst), `.${basename(dst)}.partial`);
  rmSync(staging, { recursive: true, force: true });
  await new Promise<void>((resolve, reject) => {
    execFile('cp', ['-a', '-T', src, staging], (error, _stdout, stderr) => {
      if (error) reject(new Error(`copying ${src}: ${stderr.trim() || error.message}`));
      else resolve();
    });
  }).catch((e: unknown) => {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  });
  renameSync(staging, dst);
}

const BINARY_SUFFIXES: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL_SUFFIXES: Record<string, number> = { m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** Bytes a Kubernetes quantity ("1Gi", "500M", "1e9", "1.5Gi") stands for, rounded up as the API rounds storage. */
export function quantityBytes(quantity: string | number): number {
  if (typeof quantity === 'number') return Math.ceil(quantity);
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([KMGTPE]i)|([mkMGTPE]?)|[eE]([+-]?\d+))$/.exec(quantity.trim());
  if (!m) throw new Error(`"${quantity}" is not a quantity`);
  const [, number, binary, decimal, exponent] = m;
  const factor = binary ? BINARY_SUFFIXES[binary] : exponent !== undefined ? 10 ** Number(exponent) : DECIMAL_SUFFIXES[decimal ?? ''];
  return Math.ceil(Number(number) * factor);
}

/** A byte count as the API serialises a binary-SI quantity: the largest exact binary suffix ("1Gi"), else plain bytes. */
export function bytesQuantity(bytes: number): string {
  for (const suffix of ['Ei', 'Pi', 'Ti', 'Gi', 'Mi', 'Ki']) {
    const unit = BINARY_SUFFIXES[suffix];
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}
