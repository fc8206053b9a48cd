// Sends a catalog, with its upload token, to the operator's intake. The intake lives in the leader that
// started the Job; a leader restarting or a Service not yet routing looks like a refused
// connection or a 5xx for a while, so those are retried with backoff for about two minutes.
// A 4xx is the intake's answer about this upload (wrong token, unknown upload id, already
// taken, too large, not a catalog): final — the intake takes one request per upload.
import { CATALOG_CONTENT_ENCODING, CATALOG_CONTENT_TYPE } from './catalog-upload.js';

export interface SendOptions {
  /** How long to keep retrying transient failures, from the first attempt. */
  deadlineMs?: number;
  /** One attempt's limit (connect, send, answer). */
  attemptTimeoutMs?: number;
  firstDelayMs?: number;
  maxDelayMs?: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  onRetry?: (attempt: number, reason: string, delayMs: number) => void;
}

export class UploadFailed extends Error {
  constructor(
    message: string,
    readonly attempts: number,
  ) {
    super(message);
  }
}

/** Statuses that say "not now" rather than "not this": retried like a refused connection. */
const RETRIED_STATUS = new Set([408, 429]);

export async function sendCatalog(
  url: string,
  body: Buffer,
  token: string,
  opts: SendOptions = {},
): Promise<{ attempts: number; status: number }> {
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  const deadline = now() + (opts.deadlineMs ?? 120_000);
  let delay = opts.firstDelayMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    let reason: string;
    try {
      const res = await doFetch(url, {
        method: 'POST',
        body,
        headers: {
          'content-type': CATALOG_CONTENT_TYPE,
          'content-encoding': CATALOG_CONTENT_ENCODING,
          authorization: `Bearer ${token}`,
        },
        // A redirect would send the body somewhere the mover was not told about.
        redirect: 'manual',
        signal: AbortSignal.timeout(opts.attemptTimeoutMs ?? 30_000),
      });
      const answer = (await res.text().catch(() => '')).slice(0, 200);
      if (res.status >= 200 && res.status < 300) return { attempts: attempt, status: res.status };
      reason = `HTTP ${res.status}${answer ? `: ${answer}` : ''}`;
      if (res.status < 500 && !RETRIED_STATUS.has(res.status)) throw new UploadFailed(`the intake refused the catalog: ${reason}`, attempt);
    } catch (e) {
      if (e instanceof UploadFailed) throw e;
      const err = e as Error & { cause?: { code?: string; message?: string } };
      reason = err.cause?.code ?? err.cause?.message ?? err.message;
    }
    if (now() + delay > deadline) throw new UploadFailed(`the intake could not be reached after ${attempt} attempts: ${reason}`, attempt);
    opts.onRetry?.(attempt, reason, delay);
    await sleep(delay);
    delay = Math.min(delay * 2, opts.maxDelayMs ?? 15_000);
  }
}
