// Which metric names a PromQL expression reads, and which of them the operator does not
// export: the alert rules and the Grafana dashboard may name only metrics of the catalogue
// (operator/metrics/metric-catalog.ts), a histogram's _bucket/_sum/_count series, and
// Prometheus' and prom-client's own (up, ALERTS, process_*, nodejs_*).
import { METRICS } from '../operator/metrics/metric-catalog.js';

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'atan2',
  'inf',
  'nan',
]);

/** Metric names in a PromQL expression (Grafana's $variables allowed), in order of appearance. */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ') // strings: label values, label_replace arguments
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?\w+\}?/g, ' '); // Grafana variables
  const names: string[] = [];
  for (const m of bare.matchAll(/(?<![\w.:])[a-zA-Z_:][\w:]*/g)) {
    // A name followed by "(" once spaces are skipped is a function or an aggregation.
    if (/^\s*\(/.test(bare.slice(m.index + m[0].length))) continue;
    if (!KEYWORDS.has(m[0].toLowerCase())) names.push(m[0]);
  }
  return [...new Set(names)];
}

/** Names a dashboard or rule may use: the catalogue's series and Prometheus' and prom-client's own. */
export function isKnownMetric(name: string): boolean {
  if (name === 'up' || name === 'ALERTS' || /^(process|nodejs)_\w+$/.test(name)) return true;
  return METRICS.some(
    (m) => m.name === name || (m.type === 'histogram' && ['_bucket', '_sum', '_count'].some((suffix) => name === m.name + suffix)),
  );
}

/** Every PromQL expression of a Grafana dashboard: panel targets (rows' nested panels too) and query variables. */
export function dashboardExpressions(dashboard: unknown): string[] {
  const exprs: string[] = [];
  const walk = (node: unknown, key?: string): void => {
    if (Array.isArray(node)) node.forEach((n) => walk(n));
    else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) walk(v, k);
    else if (typeof node === 'string' && (key === 'expr' || key === 'definition' || (key === 'query' && /\(/.test(node))))
      // label_values(metric, label): only the first argument is PromQL
      exprs.push(node.replace(/^\s*label_values\(\s*([^,)]*)(?:,[^)]*)?\)\s*$/, '$1'));
  };
  walk(dashboard);
  return exprs;
}

/** The unknown metric names in the expressions, with the expression each came from. */
export function unknownMetrics(exprs: string[]): { name: string; expr: string }[] {
  return exprs.flatMap((expr) =>
    metricNamesIn(expr)
      .filter((name) => !isKnownMetric(name))
      .map((name) => ({ name, expr })),
  );
}
