// Which image mover Jobs run. By default the image of the process's own container, read from
// its own Pod (POD_NAME, POD_NAMESPACE from the downward API): the operator and the
// populator ship in the mover's image (docs/adr/0011-images.md), so setting the
// Deployments' image sets the movers' too. MOVER_IMAGE overrides it.
import type { KubeClient } from '../kube/kube-client.js';
import { Pods } from '../kube/resources.js';

export type MoverImagePlan = { image: string } | { readOwnPod: string } | { error: string };

interface PodLike {
  metadata?: { name?: string; namespace?: string };
  spec?: { containers?: Array<{ name: string; image?: string }> };
}

/** From the environment alone: the override, or the Pod to read, or why neither is possible. */
export function moverImageFromEnv(env: NodeJS.ProcessEnv): MoverImagePlan {
  const override = env.MOVER_IMAGE?.trim();
  if (override) return { image: override };
  const podName = env.POD_NAME?.trim();
  if (podName) return { readOwnPod: podName };
  return { error: "MOVER_IMAGE is unset and POD_NAME is unset: set MOVER_IMAGE, or POD_NAME (downward API) to use this pod's own image" };
}

/** The image of `containerName` in the process's own Pod; the only container when that name is absent. */
export function moverImageFromPod(pod: PodLike, containerName: string): { image: string } | { error: string } {
  const containers = pod.spec?.containers ?? [];
  const where = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
  const own = containers.find((c) => c.name === containerName) ?? (containers.length === 1 ? containers[0] : undefined);
  if (!own) {
    return {
      error: `pod ${where} has no container "${containerName}" to take the mover image from (containers: ${containers.map((c) => c.name).join(', ')}); set MOVER_IMAGE`,
    };
  }
  if (!own.image) return { error: `container "${own.name}" of pod ${where} names no image; set MOVER_IMAGE` };
  return { image: own.image };
}

/** The I/O edge: reads the own Pod when the environment does not decide. Throws with a one-line cause. */
export async function resolveMoverImage(
  client: KubeClient,
  env: NodeJS.ProcessEnv,
  namespace: string,
  containerName: string,
): Promise<{ image: string; source: 'MOVER_IMAGE' | 'pod' }> {
  const plan = moverImageFromEnv(env);
  if ('error' in plan) throw new Error(plan.error);
  if ('image' in plan) return { image: plan.image, source: 'MOVER_IMAGE' };
  let pod: PodLike;
  try {
    pod = await client.get(Pods, namespace, plan.readOwnPod);
  } catch (e) {
    throw new Error(
      `cannot read its own pod ${namespace}/${plan.readOwnPod} for the mover image (or set MOVER_IMAGE): ${(e as Error).message}`,
    );
  }
  const chosen = moverImageFromPod(pod, containerName);
  if ('error' in chosen) throw new Error(chosen.error);
  return { image: chosen.image, source: 'pod' };
}
