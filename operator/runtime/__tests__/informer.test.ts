// The informer's list/watch loop against a scripted client: which failures resume the
// watch, which relist, how it backs off, and that handlers cannot break it.
import { ApiError, WatchIdleError, type KubeClient, type KubeObject, type WatchEvent, type WatchOptions } from '../../kube/kube-client.js';
import { afterWatch, backoffDelayMs, Informer, InformerHandlerError, MIN_HEALTHY_WATCH_MS } from '../informer.js';

const ConfigMaps = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };

const cm = (name: string, resourceVersion: string): KubeObject => ({ metadata: { name, namespace: 'ns', resourceVersion } });

type Watch = (onEvent: (e: WatchEvent<KubeObject>) => void, signal: AbortSignal) => Promise<void>;

/** A client whose lists answer `lists` in turn and whose watches run `watches` in turn; the last of each repeats. */
class ScriptedClient {
  readonly listCalls: { metadataOnly?: boolean }[] = [];
  readonly watchCalls: { resourceVersion: string; at: number; opts: WatchOptions }[] = [];
  private readonly arrivals: (() => void)[] = [];

  constructor(
    private readonly lists: { items: KubeObject[]; resourceVersion: string }[],
    private readonly watches: Watch[],
  ) {}

  async list(_t: unknown, _ns: unknown, _q: unknown, opts: { metadataOnly?: boolean } = {}) {
    const answer = this.lists[Math.min(this.listCalls.length, this.lists.length - 1)];
    this.listCalls.push({ metadataOnly: opts.metadataOnly });
    return { items: answer.items, metadata: { resourceVersion: answer.resourceVersion } };
  }

  async watch(_t: unknown, _ns: unknown, resourceVersion: string, onEvent: (e: WatchEvent<KubeObject>) => void, opts: WatchOptions) {
    const run = this.watches[Math.min(this.watchCalls.length, this.watches.length - 1)];
    this.watchCalls.push({ resourceVersion, at: Date.now(), opts });
    this.arrivals.splice(0).forEach((wake) => wake());
    return run(onEvent, opts.signal!);
  }

  /** Resolves once `count` watches have been started. */
  async watchesStarted(count: number): Promise<void> {
    while (this.watchCalls.length < count) await new Promise<void>((r) => this.arrivals.push(r));
  }

  asKubeClient(): KubeClient {
    return this as unknown as KubeClient;
  }
}

/** A watch that stays open until the informer stops. */
const openUntilStopped: Watch = (_onEvent, signal) => new Promise((r) => signal.addEventListener('abort', () => r()));

describe('informer backoff', () => {
  const policy = { initialMs: 800, maxMs: 30_000 };

  it('doubles from the initial delay up to the cap', () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelayMs(n, policy, () => 1));
    expect(ceilings).toEqual([800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]);
  });

  it('draws each delay from the upper half of its ceiling', () => {
    expect(backoffDelayMs(1, policy, () => 0)).toBe(400);
    expect(backoffDelayMs(3, policy, () => 0.5)).toBe(2400);
    expect(backoffDelayMs(50, policy, () => 0)).toBe(15_000);
  });
});

describe('what follows a watch', () => {
  const gone = new ApiError(410, 'Expired', 'too old resource version');
  const broken = new ApiError(500, 'InternalError', 'boom');
  const quick = MIN_HEALTHY_WATCH_MS - 1;

  it('relists only when the resourceVersion expired or there is none', () => {
    expect(afterWatch({ error: gone, durationMs: 5, received: false }, true, 0)).toEqual({ relist: true, failures: 0, backOff: false });
    expect(afterWatch({ error: broken, durationMs: 5, received: false }, true, 0)).toEqual({ relist: false, failures: 1, backOff: true });
    expect(afterWatch({ error: new WatchIdleError('/x', 1), durationMs: 9e5, received: true }, true, 0)).toMatchObject({ relist: false });
    expect(afterWatch({ error: broken, durationMs: 5, received: false }, false, 0)).toMatchObject({ relist: true });
    expect(afterWatch({ durationMs: 9e5, received: true }, true, 0)).toEqual({ relist: false, failures: 0, backOff: false });
  });

  it('counts a watch that ended at once with nothing delivered as one more failure', () => {
    expect(afterWatch({ durationMs: quick, received: false }, true, 2)).toEqual({ relist: false, failures: 3, backOff: true });
    expect(afterWatch({ durationMs: quick, received: true }, true, 2)).toEqual({ relist: false, failures: 0, backOff: false });
    expect(afterWatch({ durationMs: MIN_HEALTHY_WATCH_MS, received: false }, true, 2)).toEqual({
      relist: false,
      failures: 0,
      backOff: false,
    });
  });

  it('starts the failures over when the failed watch had worked for a while', () => {
    expect(afterWatch({ error: broken, durationMs: quick, received: false }, true, 4)).toMatchObject({ failures: 5, backOff: true });
    expect(afterWatch({ error: broken, durationMs: quick, received: true }, true, 4)).toMatchObject({ failures: 1, backOff: true });
    expect(afterWatch({ error: broken, durationMs: 9e5, received: false }, true, 4)).toMatchObject({ failures: 1, backOff: true });
    expect(afterWatch({ error: gone, durationMs: quick, received: false }, true, 4)).toEqual({ relist: true, failures: 4, backOff: false });
  });
});

describe('informer', () => {
  let informer: Informer<KubeObject> | undefined;
  afterEach(() => informer?.stop());

  it('resumes a failed watch from the last resourceVersion it saw, without relisting', async () => {
    const client = new ScriptedClient(
      [{ items: [cm('a', '10')], resourceVersion: '10' }],
      [
        async (onEvent) => {
          onEvent({ type: 'ADDED', object: cm('b', '11') });
          onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } });
          throw new ApiError(500, 'InternalError', 'stream reset');
        },
        openUntilStopped,
      ],
    );
    const errors: unknown[] = [];
    informer = new Informer(client.asKubeClient(), ConfigMaps, { backoff: { initialMs: 10 }, onError: (e) => errors.push(e) });
    await informer.start();
    await client.watchesStarted(2);
    expect(client.watchCalls.map((w) => w.resourceVersion)).toEqual(['10', '12']);
    expect(client.listCalls).toHaveLength(1);
    expect(informer.list().map((o) => o.metadata.name)).toEqual(['a', 'b']);
    expect(errors).toEqual([expect.objectContaining({ status: 500 })]);
  });

  it('relists when the resourceVersion has expired (410 Gone)', async () => {
    const client = new ScriptedClient(
      [
        { items: [cm('a', '10')], resourceVersion: '10' },
        { items: [cm('b', '30')], resourceVersion: '30' },
      ],
      [
        async () => {
          throw new ApiError(410, 'Expired', 'too old resource version');
        },
        openUntilStopped,
      ],
    );
    const events: string[] = [];
    informer = new Informer(client.asKubeClient(), ConfigMaps).on((type, obj) => events.push(`${type} ${obj.metadata.name}`));
    await informer.start();
    await client.watchesStarted(2);
    expect(client.listCalls).toHaveLength(2);
    expect(client.watchCalls.map((w) => w.resourceVersion)).toEqual(['10', '30']);
    expect(events).toEqual(['ADDED a', 'ADDED b', 'DELETED a']);
  });

  it('backs off, growing, when watches end at once with nothing delivered', async () => {
    const client = new ScriptedClient([{ items: [], resourceVersion: '1' }], [async () => undefined]);
    informer = new Informer(client.asKubeClient(), ConfigMaps, { backoff: { initialMs: 80, maxMs: 10_000 } });
    await informer.start();
    await client.watchesStarted(5);
    const gaps = client.watchCalls.slice(1, 5).map((w, i) => w.at - client.watchCalls[i].at);
    // At least half of each doubling ceiling (80, 160, 320, 640 ms); a few ms for timer granularity.
    [40, 80, 160, 320].forEach((least, i) => expect(gaps[i]).toBeGreaterThanOrEqual(least - 3));
    expect(client.listCalls).toHaveLength(1);
  });

  it('goes back to watching at once after a healthy watch ends', async () => {
    const client = new ScriptedClient(
      [{ items: [], resourceVersion: '1' }],
      [
        async (onEvent) => onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '2' } } }),
        async (onEvent) => onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '3' } } }),
        openUntilStopped,
      ],
    );
    // A backoff long enough to notice: a healthy end must not wait for it.
    informer = new Informer(client.asKubeClient(), ConfigMaps, { backoff: { initialMs: 60_000 } });
    await informer.start();
    await client.watchesStarted(3);
    expect(client.watchCalls.map((w) => w.resourceVersion)).toEqual(['1', '2', '3']);
  });

  it('tells each watch started again after one ended or failed, but not the first nor a stop', async () => {
    const client = new ScriptedClient(
      [{ items: [], resourceVersion: '1' }],
      [
        async (onEvent) => onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '2' } } }),
        async () => {
          throw new ApiError(410, 'Expired', 'too old resource version');
        },
        openUntilStopped,
      ],
    );
    let restarts = 0;
    informer = new Informer(client.asKubeClient(), ConfigMaps, { onWatchRestart: () => restarts++ });
    await informer.start();
    await client.watchesStarted(3);
    expect(restarts).toBe(2);
    informer.stop();
    await new Promise((r) => setTimeout(r, 20));
    expect(restarts).toBe(2);
  });

  it('reports a throwing handler and carries on: other handlers, the watch and the cache are unaffected', async () => {
    let deliverMore!: () => void;
    const more = new Promise<void>((r) => (deliverMore = r));
    const client = new ScriptedClient(
      [{ items: [cm('listed', '5')], resourceVersion: '5' }],
      [
        async (onEvent, signal) => {
          await more;
          onEvent({ type: 'ADDED', object: cm('x', '6') });
          onEvent({ type: 'MODIFIED', object: cm('x', '7') });
          onEvent({ type: 'ADDED', object: cm('y', '8') });
          await openUntilStopped(onEvent, signal);
        },
      ],
    );
    const errors: unknown[] = [];
    const seen: string[] = [];
    informer = new Informer(client.asKubeClient(), ConfigMaps, { onError: (e) => errors.push(e) })
      .on((type, obj) => {
        if (type === 'ADDED') throw new Error(`cannot handle ${obj.metadata.name}`);
      })
      .on((type, obj) => seen.push(`${type} ${obj.metadata.name}@${obj.metadata.resourceVersion}`));
    await informer.start(); // the throw during the first list must not keep it from syncing
    deliverMore();
    await client.watchesStarted(1);
    while (seen.length < 4) await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['ADDED listed@5', 'ADDED x@6', 'MODIFIED x@7', 'ADDED y@8']);
    expect(client.listCalls).toHaveLength(1);
    expect(client.watchCalls).toHaveLength(1);
    expect(informer.list().map((o) => o.metadata.resourceVersion)).toEqual(['5', '7', '8']);
    expect(errors).toHaveLength(3);
    expect(errors[1]).toBeInstanceOf(InformerHandlerError);
    expect((errors[1] as Error).message).toBe('informer handler failed on ADDED ns/x: cannot handle x');
  });

  it('asks for metadata only, and passes its idle limit to the watch, when told to', async () => {
    const client = new ScriptedClient([{ items: [], resourceVersion: '1' }], [openUntilStopped]);
    informer = new Informer(client.asKubeClient(), ConfigMaps, { metadataOnly: true, watchIdleTimeoutMs: 1234 });
    await informer.start();
    await client.watchesStarted(1);
    expect(client.listCalls).toEqual([{ metadataOnly: true }]);
    expect(client.watchCalls[0].opts).toMatchObject({ metadataOnly: true, idleTimeoutMs: 1234 });
  });

  it('stops while backing off, and a restart runs one loop only', async () => {
    const client = new ScriptedClient([{ items: [], resourceVersion: '1' }], [async () => undefined]);
    informer = new Informer(client.asKubeClient(), ConfigMaps, { backoff: { initialMs: 150, maxMs: 150 } });
    await informer.start();
    await client.watchesStarted(1);
    informer.stop();
    await informer.start();
    await client.watchesStarted(3);
    // Two lists (one per start) and, with one loop, watches never closer than half the backoff.
    expect(client.listCalls).toHaveLength(2);
    const gap = client.watchCalls[2].at - client.watchCalls[1].at;
    expect(gap).toBeGreaterThanOrEqual(72);
  });
});
