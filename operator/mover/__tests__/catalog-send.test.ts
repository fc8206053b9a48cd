// Sending the catalog: transient failures retried with backoff until a deadline, a 4xx final.
import { sendCatalog, UploadFailed, type SendOptions } from '../catalog-send.js';

/** A fake clock and a scripted fetch: each answer is a status, or an Error thrown like a refused connection. */
function scripted(answers: (number | Error)[]) {
  let clock = 0;
  const sleeps: number[] = [];
  const requests: RequestInit[] = [];
  const refused = () => Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
  const opts: SendOptions = {
    now: () => clock,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    fetch: (async (_url: string, init: RequestInit) => {
      requests.push(init);
      const a = answers.length > 1 ? answers.shift()! : answers[0];
      if (a instanceof Error) throw a.message === 'refused' ? refused() : a;
      return new Response(a === 204 ? null : a === 200 ? 'ok' : `status ${a}`, { status: a });
    }) as unknown as typeof fetch,
  };
  return { opts, sleeps, requests };
}

const body = Buffer.from('catalog body');

it('posts the body with its upload token, content type and encoding', async () => {
  const { opts, requests } = scripted([200]);
  await expect(sendCatalog('http://10.0.0.1:8443/v1/catalog/u1', body, 'abc', opts)).resolves.toEqual({ attempts: 1, status: 200 });
  expect(requests[0]).toMatchObject({ method: 'POST', body, redirect: 'manual' });
  expect(requests[0].headers).toEqual({
    'content-type': 'application/x-ndjson',
    'content-encoding': 'gzip',
    authorization: 'Bearer abc',
  });
});

it('retries refused connections and 5xx with growing delays, then succeeds', async () => {
  const { opts, sleeps } = scripted([new Error('refused'), new Error('refused'), 503, 502, 200]);
  await expect(sendCatalog('http://x/v1/catalog/u1', body, 's', opts)).resolves.toEqual({ attempts: 5, status: 200 });
  expect(sleeps).toEqual([500, 1000, 2000, 4000]);
});

it('treats 408 and 429 as "not now"', async () => {
  const { opts } = scripted([429, 408, 204]);
  await expect(sendCatalog('http://x/v1/catalog/u1', body, 's', opts)).resolves.toMatchObject({ attempts: 3 });
});

it('gives up on a 4xx at once, with the answer in the message', async () => {
  const { opts, sleeps } = scripted([403]);
  const failure = sendCatalog('http://x/v1/catalog/u1', body, 's', opts);
  await expect(failure).rejects.toThrow(UploadFailed);
  await expect(failure).rejects.toThrow('HTTP 403: status 403');
  expect(sleeps).toEqual([]);
});

it('gives up on transient failures after about two minutes', async () => {
  const { opts, sleeps } = scripted([new Error('refused')]);
  const failure = sendCatalog('http://x/v1/catalog/u1', body, 's', opts);
  await expect(failure).rejects.toThrow(/could not be reached after \d+ attempts: ECONNREFUSED/);
  const waited = sleeps.reduce((a, b) => a + b, 0);
  expect(waited).toBeLessThanOrEqual(120_000);
  expect(waited).toBeGreaterThan(90_000);
  expect(Math.max(...sleeps)).toBe(15_000);
});
