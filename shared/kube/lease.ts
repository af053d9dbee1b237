/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's
 * leaderelection does it: every `retryPeriod` a candidate reads the Lease;
 * it takes it when nobody holds it or the holder has not renewed for
 * `leaseDuration` (measured on this process's clock from when it last saw
 * the record change, so clocks need not agree), and the holder renews it.
 * Every write carries the resourceVersion read, so of two candidates only
 * one wins (the other gets 409). A leader that cannot renew within
 * `renewDeadline` steps down before its lease can expire for the others.
 * On stop, a leader releases the Lease so a successor takes over at once.
 */
import type { CoordinationV1Api, V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface LeaseTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** client-go's defaults. */
export const DEFAULT_LEASE_TIMING: LeaseTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

export interface LeaseRecord {
  holder: string;
  /** A change of holder, renew time or transitions: what tells a candidate the holder is alive. */
  version: string;
}

/** What a candidate does after reading the Lease. Pure. */
export function leaseAction(
  record: LeaseRecord | null,
  identity: string,
  observed: { version: string; atMs: number } | null,
  nowMs: number,
  leaseDurationMs: number,
): 'create' | 'renew' | 'acquire' | 'wait' {
  if (!record) return 'create';
  if (record.holder === identity) return 'renew';
  if (record.holder === '') return 'acquire';
  // Expired only if this candidate has seen the same record for a whole lease duration.
  if (observed && observed.version === record.version && nowMs - observed.atMs >= leaseDurationMs) return 'acquire';
  return 'wait';
}

function recordOf(lease: V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  const renew = spec.renewTime ? new Date(spec.renewTime).toISOString() : '';
  return { holder: spec.holderIdentity ?? '', version: `${spec.holderIdentity ?? ''}|${renew}|${spec.leaseTransitions ?? 0}` };
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  timing?: LeaseTiming;
  log: Logger;
  /** Called with true on becoming leader, false on stepping down. */
  onChange(leading: boolean): void;
}

const statusOf = (err: unknown): number | undefined => (err as { code?: number }).code;

export class LeaderElection {
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private observed: { version: string; atMs: number } | null = null;
  private lastRenewMs = 0;
  private running: Promise<void> = Promise.resolve();
  private readonly timing: LeaseTiming;

  /** `MicroTime`: the client's V1MicroTime class (passed in: this module loads no client code itself). */
  constructor(
    private readonly api: CoordinationV1Api,
    private readonly MicroTime: new (ms: number) => V1MicroTime,
    private readonly o: LeaderElectionOptions,
  ) {
    this.timing = o.timing ?? DEFAULT_LEASE_TIMING;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Competes from now on; resolves after the first attempt (a lone replica leads when this returns). */
  start(): Promise<void> {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.attempt().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.timing.retryPeriodMs);
      });
    };
    tick();
    return this.running;
  }

  /** Stops competing; a leader releases the Lease (holder emptied) so another replica takes over without waiting for it to expire. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    if (!this.leading) return;
    this.setLeading(false);
    try {
      const lease = await this.api.readNamespacedLease({ namespace: this.o.namespace, name: this.o.name });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 };
      await this.api.replaceNamespacedLease({ namespace: this.o.namespace, name: this.o.name, body: lease });
      this.o.log.info({ lease: this.o.name }, 'released the leader lease');
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message, lease: this.o.name }, 'could not release the leader lease; it expires on its own');
    }
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.o.log.info({ lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity }, leading ? 'became the leader' : 'stopped leading');
    this.o.onChange(leading);
  }

  private leaseBody(previous: V1Lease | null, now: V1MicroTime): V1Lease {
    const spec = previous?.spec ?? {};
    const takingOver = spec.holderIdentity !== this.o.identity;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...(previous?.metadata ?? {}), name: this.o.name, namespace: this.o.namespace },
      spec: {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: Math.ceil(this.timing.leaseDurationMs / 1000),
        renewTime: now,
        acquireTime: takingOver ? now : (spec.acquireTime ?? now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver && previous ? 1 : 0),
      },
    };
  }

  private async attempt(): Promise<void> {
    const { namespace, name } = this.o;
    const now = Date.now();
    try {
      let lease: V1Lease | null = null;
      try {
        lease = await this.api.readNamespacedLease({ namespace, name });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
      const record = lease ? recordOf(lease) : null;
      if (record && record.version !== this.observed?.version) this.observed = { version: record.version, atMs: now };
      const action = leaseAction(record, this.o.identity, this.observed, now, this.timing.leaseDurationMs);
      if (action === 'wait') {
        this.setLeading(false);
        return;
      }
      const body = this.leaseBody(lease, new this.MicroTime(now));
      if (action === 'create') await this.api.createNamespacedLease({ namespace, body });
      else await this.api.replaceNamespacedLease({ namespace, name, body });
      this.lastRenewMs = now;
      this.setLeading(true);
    } catch (err) {
      // 409: another candidate wrote first; anything else: the API is unreachable or refused.
      if (statusOf(err) !== 409) this.o.log.warn({ err: (err as Error).message, lease: `${namespace}/${name}` }, 'leader lease read or write failed');
      if (this.leading && (statusOf(err) === 409 || Date.now() - this.lastRenewMs >= this.timing.renewDeadlineMs)) this.setLeading(false);
    }
  }
}
