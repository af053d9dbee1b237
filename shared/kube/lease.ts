/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's
 * leaderelection does it: every `retryPeriod` a candidate reads the Lease;
 * it takes it when nobody holds it or the holder has not renewed for
 * `leaseDuration` (measured on this process's clock from when it last saw
 * the record change, so clocks need not agree), and the holder renews it.
 * Every write carries the resourceVersion read, so of two candidates only
 * one wins (the other gets 409). A leader that cannot renew within
 * `renewDeadline` steps down before its lease can expire for the others:
 * a timer armed at the last renewal plus `renewDeadline` ends leadership
 * whatever the requests in flight do, and every Lease read or write is
 * aborted after half the renew deadline (the client has no timeout of its
 * own; a blackholed connection would otherwise hold an attempt forever), its
 * late answer ignored. Another holder's expiry is judged on the duration its
 * Lease declares (`spec.leaseDurationSeconds`), as client-go does. On stop,
 * a leader releases the Lease so a successor takes over at once.
 */
import type { CoordinationV1Api, V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { callWithin, statusOf } from './cluster.js';

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
  /** The holder's declared lease duration (`spec.leaseDurationSeconds`), when it declares a positive one. */
  durationMs?: number;
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
  // Expired only if this candidate has seen the same record for a whole lease duration: the holder's own, else ours.
  if (observed && observed.version === record.version && nowMs - observed.atMs >= (record.durationMs ?? leaseDurationMs)) return 'acquire';
  return 'wait';
}

function recordOf(lease: V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  const renew = spec.renewTime ? new Date(spec.renewTime).toISOString() : '';
  const seconds = spec.leaseDurationSeconds ?? 0;
  return {
    holder: spec.holderIdentity ?? '',
    version: `${spec.holderIdentity ?? ''}|${renew}|${spec.leaseTransitions ?? 0}`,
    ...(seconds > 0 ? { durationMs: seconds * 1000 } : {}),
  };
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

export class LeaderElection {
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private observed: { version: string; atMs: number } | null = null;
  private lastRenewMs = 0;
  private running: Promise<void> = Promise.resolve();
  /** Ends leadership at the last renewal plus the renew deadline, whatever the attempt in flight does. */
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** When this replica last stopped leading: a write begun before that cannot make it leader again. */
  private steppedDownAtMs = -Infinity;
  private readonly timing: LeaseTiming;
  /** Budget of one Lease read or write: an attempt's read and write together fit within the renew deadline. */
  private readonly requestTimeoutMs: number;

  /** `microTime`: makes the client's V1MicroTime (Cluster.microTime: this module loads no client code itself). */
  constructor(
    private readonly api: CoordinationV1Api,
    private readonly microTime: (ms: number) => V1MicroTime,
    private readonly o: LeaderElectionOptions,
  ) {
    this.timing = o.timing ?? DEFAULT_LEASE_TIMING;
    this.requestTimeoutMs = Math.floor(this.timing.renewDeadlineMs / 2);
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
    clearTimeout(this.deadlineTimer);
    if (!this.leading) return;
    this.setLeading(false);
    try {
      const lease = await this.read();
      if (lease?.spec?.holderIdentity !== this.o.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 };
      await this.replace(lease);
      this.o.log.info({ lease: this.o.name }, 'released the leader lease');
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message, lease: this.o.name }, 'could not release the leader lease; it expires on its own');
    }
  }

  private setLeading(leading: boolean): void {
    if (!leading) clearTimeout(this.deadlineTimer);
    if (this.leading === leading) return;
    this.leading = leading;
    if (!leading) this.steppedDownAtMs = Date.now();
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

  /** The Lease, or null when there is none; bounded by the request budget. */
  private async read(): Promise<V1Lease | null> {
    const { namespace, name } = this.o;
    try {
      return await callWithin((options) => this.api.readNamespacedLease({ namespace, name }, options), this.requestTimeoutMs, 'reading the leader lease');
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  private replace(body: V1Lease): Promise<V1Lease> {
    const { namespace, name } = this.o;
    return callWithin((options) => this.api.replaceNamespacedLease({ namespace, name, body }, options), this.requestTimeoutMs, 'writing the leader lease');
  }

  /** Leads from a renewal written at `renewedAtMs` until that plus the renew deadline, unless renewed again. */
  private renewed(renewedAtMs: number): void {
    const leftMs = renewedAtMs + this.timing.renewDeadlineMs - Date.now();
    // Too late to count: begun before this replica stepped down, or answered past its own renew deadline.
    if (renewedAtMs < this.steppedDownAtMs || leftMs <= 0) return;
    this.lastRenewMs = renewedAtMs;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => {
      this.o.log.warn(
        { lease: `${this.o.namespace}/${this.o.name}`, renewDeadlineMs: this.timing.renewDeadlineMs },
        'leader lease not renewed within the renew deadline',
      );
      this.setLeading(false);
    }, leftMs);
    this.setLeading(true);
  }

  private async attempt(): Promise<void> {
    const { namespace, name } = this.o;
    const now = Date.now();
    try {
      const lease = await this.read();
      const record = lease ? recordOf(lease) : null;
      if (record && record.version !== this.observed?.version) this.observed = { version: record.version, atMs: now };
      const action = leaseAction(record, this.o.identity, this.observed, now, this.timing.leaseDurationMs);
      if (action === 'wait') {
        this.setLeading(false);
        return;
      }
      const body = this.leaseBody(lease, this.microTime(now));
      if (action === 'create')
        await callWithin((options) => this.api.createNamespacedLease({ namespace, body }, options), this.requestTimeoutMs, 'creating the leader lease');
      else await this.replace(body);
      this.renewed(now);
    } catch (err) {
      // 409: another candidate wrote first; anything else: the API is unreachable or refused.
      if (statusOf(err) !== 409) this.o.log.warn({ err: (err as Error).message, lease: `${namespace}/${name}` }, 'leader lease read or write failed');
      if (this.leading && (statusOf(err) === 409 || Date.now() - this.lastRenewMs >= this.timing.renewDeadlineMs)) this.setLeading(false);
    }
  }
}
