// Which namespaces may use a ClusterRepository. Pure.
import type { AllowedNamespaces, LabelSelector } from '../../generated/types.js';

export function matchesSelector(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const values = e.values ?? [];
    if (e.operator === 'In' && !(has && values.includes(labels[e.key]))) return false;
    if (e.operator === 'NotIn' && has && values.includes(labels[e.key])) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

export function isNamespaceAllowed(allowed: AllowedNamespaces, namespace: string, labels: Record<string, string>): boolean {
  if (allowed.all) return true;
  if (allowed.names) return allowed.names.includes(namespace);
  if (allowed.selector) return matchesSelector(allowed.selector, { ...labels, 'kubernetes.io/metadata.name': namespace });
  return false;
}

/** The allowed namespaces among those that exist, for status (undefined when all are). */
export function allowedAmong(
  allowed: AllowedNamespaces,
  namespaces: { name: string; labels: Record<string, string> }[],
): string[] | undefined {
  if (allowed.all) return undefined;
  return namespaces
    .filter((n) => isNamespaceAllowed(allowed, n.name, n.labels))
    .map((n) => n.name)
    .sort();
}
