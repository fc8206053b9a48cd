// What an application would do to a claim, done by a short-lived pod (the toolbox image: a
// Debian base with coreutils and findutils, built by make e2e): write files with owners and
// modes, and read back an inventory precise enough to call a restore identical.
import { randomBytes } from 'node:crypto';
import { apply, describe, get, kubectl, until, world } from './kubectl.js';

/**
 * The mover settings of the suite's populator restores. kind's storage (the in-tree host-path
 * provisioner) makes each new volume a root-owned directory and ignores fsGroup, so only a
 * root mover can write a new claim's root; the namespaces opt into privileged movers for it
 * (kopia.io/privileged-movers). A default mover fails loudly there and the claim stays Pending.
 */
export const restoreMover = { securityContext: { runAsUser: 0, runAsGroup: 0 } };

/** Runs `script` (sh) in a pod with `claim` at /data, as root; returns its output. Fails on a non-zero exit. */
export async function runInClaim(namespace: string, claim: string, script: string, timeoutMs = 300_000): Promise<string> {
  const name = `toolbox-${randomBytes(3).toString('hex')}`;
  await apply(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels: { 'kopia-e2e/toolbox': 'true' } },
      spec: {
        restartPolicy: 'Never',
        securityContext: { runAsUser: 0, runAsGroup: 0 },
        containers: [
          {
            name: 'toolbox',
            image: world.toolboxImage,
            imagePullPolicy: 'Never',
            command: ['sh', '-euc', script],
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
          },
        ],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim } }],
      },
    }),
  );
  const phase = await until(
    `toolbox pod ${namespace}/${name} to finish`,
    async () => {
      const p = (await get('pod', namespace, name))?.status?.phase;
      return p === 'Succeeded' || p === 'Failed' ? p : undefined;
    },
    timeoutMs,
    () => describe('pod', namespace, name),
  );
  const logs = await kubectl(['logs', '-n', namespace, name]);
  await kubectl(['delete', 'pod', '-n', namespace, name, '--wait=true']);
  if (phase !== 'Succeeded') throw new Error(`toolbox pod in ${namespace} on claim ${claim} failed:\n${logs}`);
  return logs;
}

/**
 * The application's data: nested directories, owners, modes, a symlink, an empty file and
 * `bigMiB` random MiB; with `restricted`, a file only its owner's group may read (a default,
 * non-root mover cannot back it up).
 */
export function seedScript({ bigMiB = 2, restricted = false } = {}): string {
  return [
    'cd /data',
    'mkdir -p config/plugins',
    `printf '{"theme":"dark"}\\n' > config/settings.json`,
    `head -c ${bigMiB}M /dev/urandom > config/plugins/big.bin`,
    `printf '#!/bin/sh\\n' > run.sh && chmod 0755 run.sh`,
    ': > empty',
    'ln -s config/settings.json settings',
    'chown 1000:1000 config config/settings.json',
    'chown 1001:1002 config/plugins/big.bin',
    ...(restricted
      ? [`printf 'token=only-for-1000\\n' > config/secret.conf && chown 1000:1000 config/secret.conf && chmod 0640 config/secret.conf`]
      : []),
    'sync',
  ].join('\n');
}

/**
 * One line per entry: path, type, mode, owner (when asked) and link target, then a content hash
 * per file. Directory sizes are left out: they differ by filesystem, not by restore.
 */
export function inventoryScript(owners: boolean): string {
  const fields = owners ? '%p %y %m %U:%G %l' : '%p %y %m %l';
  return [
    'cd /data',
    // lost+found belongs to the filesystem, not to the application's data.
    `find . -mindepth 1 -path ./lost+found -prune -o -printf '${fields}\\n' | sort`,
    'find . -path ./lost+found -prune -o -type f -exec sha256sum {} + | sort -k2',
  ].join('\n');
}

export async function inventory(namespace: string, claim: string, { owners = false } = {}): Promise<string> {
  return runInClaim(namespace, claim, inventoryScript(owners));
}
