// Reading the Prometheus text a process serves on /metrics, for tests that scrape the real endpoint.

/** The value of the first sample of `name` whose labels include every one given; undefined without one. */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))) {
    const have = (m[1] ?? '').split(',');
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) return Number(m[2]);
  }
  return undefined;
}

/** GET /metrics on a local port. */
export async function scrapeMetrics(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics on ${port}: HTTP ${res.status}`);
  return res.text();
}
