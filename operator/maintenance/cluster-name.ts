// The name this cluster goes by in default maintenance owners (maintenance@<cluster name>).
// A fixed KOPIA_CLUSTER_NAME keeps ownership across a rebuilt cluster; without one, the
// kube-system namespace's UID tells clusters apart, so two clusters sharing a repository
// never both believe they own its maintenance (a rebuilt cluster then meets the old owner
// and follows takeoverPolicy).
import type { KubeObject } from '../kube/kube-client.js';
import type { Informer } from '../runtime/informer.js';
import type { OperatorContext } from '../runtime/kind-operator.js';

export const FALLBACK_CLUSTER_NAME = 'cluster';

export function clusterName(ctx: Pick<OperatorContext, 'clusterName'>, namespaces: Informer<KubeObject>): string {
  if (ctx.clusterName) return ctx.clusterName;
  const uid = namespaces.get('kube-system')?.metadata.uid;
  return uid ? `cluster-${uid.slice(0, 8)}` : FALLBACK_CLUSTER_NAME;
}
