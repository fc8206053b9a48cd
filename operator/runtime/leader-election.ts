// Leader election on a coordination.k8s.io Lease, so only one replica reconciles. The
// holder renews every renewMs; others retry and take over once the lease has expired.
// Losing the lease is fatal to the process (as in controller-runtime): a restart is the
// simplest way to drop every in-flight assumption.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isAlreadyExists, isConflict, type KubeClient, type KubeObject } from '../kube/kube-client.js';
import { Leases } from '../kube/resources.js';
import type { Logger } from './logger.js';

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
type Lease = KubeObject & { spec: LeaseSpec };

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity?: string;
  leaseDurationMs?: number;
  renewMs?: number;
  retryMs?: number;
}

const microTime = (d: Date) => d.toISOString().replace('Z', '000Z');

/** Pure: may identity take or keep the lease at now? */
export function canAcquire(spec: LeaseSpec | undefined, identity: string, now: Date): boolean {
  if (!spec?.holderIdentity || spec.holderIdentity === identity) return true;
  const renewed = spec.renewTime ? Date.parse(spec.renewTime) : 0;
  return renewed + (spec.leaseDurationSeconds ?? 15) * 1000 < now.getTime();
}

export class LeaderElector {
  readonly identity: string;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: LeaderElectionOptions,
    private readonly log: Logger,
  ) {
    this.identity = opts.identity ?? `${hostname()}_${randomBytes(4).toString('hex')}`;
  }

  private async tryAcquire(): Promise<boolean> {
    const now = new Date();
    const durationSeconds = Math.ceil((this.opts.leaseDurationMs ?? 15000) / 1000);
    const current = await this.client.getOrUndefined<Lease>(Leases, this.opts.namespace, this.opts.name);
    const spec: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: microTime(now),
      acquireTime: current?.spec.holderIdentity === this.identity ? current.spec.acquireTime : microTime(now),
      leaseTransitions: (current?.spec.leaseTransitions ?? 0) + (current && current.spec.holderIdentity !== this.identity ? 1 : 0),
    };
    try {
      if (!current) {
        await this.client.create(Leases, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.opts.name, namespace: this.opts.namespace },
          spec,
        } as Lease);
        return true;
      }
      if (!canAcquire(current.spec, this.identity, now)) return false;
      await this.client.replace(Leases, { ...current, spec });
      return true;
    } catch (e) {
      if (isConflict(e) || isAlreadyExists(e)) return false;
      throw e;
    }
  }

  /** Resolves once this process holds the lease; then keeps renewing, calling onLost if it cannot. */
  async acquire(onLost: () => void): Promise<void> {
    for (;;) {
      if (this.stopped) throw new Error('leader election stopped');
      try {
        if (await this.tryAcquire()) break;
      } catch (e) {
        this.log.warn('leader election: cannot read or write the lease', { error: (e as Error).message });
      }
      await new Promise((r) => setTimeout(r, this.opts.retryMs ?? 2000));
    }
    this.log.info('leader election: acquired', { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.identity });
    let lastRenew = Date.now();
    this.timer = setInterval(() => {
      void this.tryAcquire()
        .then((ok) => {
          if (ok) lastRenew = Date.now();
          else throw new Error('lease taken by another holder');
        })
        .catch((e: Error) => {
          if (Date.now() - lastRenew > (this.opts.leaseDurationMs ?? 15000) || e.message.includes('another holder')) {
            this.log.error('leader election: lost the lease', { error: e.message });
            this.stop();
            onLost();
          }
        });
    }, this.opts.renewMs ?? 5000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }
}
