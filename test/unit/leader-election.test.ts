/**
 * LeaderElection (shared/kube/lease.ts) against a fake Lease API on fake
 * timers: a leader whose apiserver stops answering (requests that never
 * settle) stops leading at the renew deadline, and an answer arriving after
 * that does not make it leader again; another holder's expiry is judged on
 * the duration its Lease declares.
 */
import { createServer, type Socket } from 'node:net';
import { CoordinationV1Api, KubeConfig, type ConfigurationOptions, type RequestContext, type V1Lease, type V1MicroTime } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiTimeoutError, callWithin } from '../../shared/kube/cluster.js';
import { LeaderElection, type LeaseTiming } from '../../shared/kube/lease.js';

const TIMING: LeaseTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

interface Pending {
  resolve(lease: V1Lease): void;
  signal: AbortSignal | undefined;
}

/**
 * A Lease API that answers reads (writes) from `stored` while `answering.read`
 * (`.write`), else leaves each call pending (kept, with the abort signal the
 * client would have been handed).
 */
class FakeLeaseApi {
  answering = { read: true, write: true };
  stored: V1Lease | null = null;
  readonly pending: Pending[] = [];
  writes = 0;

  private call(answers: boolean, options: ConfigurationOptions | undefined, answer: () => V1Lease): Promise<V1Lease> {
    if (answers) return new Promise((resolve) => resolve(answer()));
    let signal: AbortSignal | undefined;
    // Runs the call-time middleware as the client would, to see the abort signal it sets.
    const ctx = { setSignal: (s: AbortSignal) => (signal = s) } as unknown as RequestContext;
    for (const m of options?.middleware ?? []) void m.pre(ctx).toPromise();
    return new Promise((resolve) => this.pending.push({ resolve, signal }));
  }

  readNamespacedLease = (_p: unknown, options?: ConfigurationOptions): Promise<V1Lease> =>
    this.call(this.answering.read, options, () => {
      if (!this.stored) throw Object.assign(new Error('not found'), { code: 404 });
      return structuredClone(this.stored);
    });

  private write = (body: V1Lease, options?: ConfigurationOptions): Promise<V1Lease> =>
    this.call(this.answering.write, options, () => {
      this.writes++;
      this.stored = structuredClone(body);
      return body;
    });

  createNamespacedLease = (p: { body: V1Lease }, options?: ConfigurationOptions) => this.write(p.body, options);
  replaceNamespacedLease = (p: { body: V1Lease }, options?: ConfigurationOptions) => this.write(p.body, options);
}

describe('callWithin (shared/kube/cluster.ts) with the real client', () => {
  it('aborts a Lease read an apiserver accepts but never answers, and rejects within its budget', async () => {
    const sockets: Socket[] = [];
    const blackhole = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = blackhole.address() as { port: number };
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      const api = kc.makeApiClient(CoordinationV1Api);
      let request: Promise<V1Lease> | undefined;
      const started = Date.now();
      const read = callWithin(
        (options: ConfigurationOptions) => (request = api.readNamespacedLease({ namespace: 'ns', name: 'l' }, options)),
        300,
        'reading the lease',
      );
      await expect(read).rejects.toBeInstanceOf(ApiTimeoutError);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(sockets).toHaveLength(1); // the request reached the server...
      await expect(request).rejects.toThrow(/aborted/); // ...and the client's own request was aborted, not left open
    } finally {
      for (const s of sockets) s.destroy();
      blackhole.close();
    }
  });
});

const lease = (holder: string, leaseDurationSeconds: number): V1Lease => ({
  metadata: { name: 'controllers', namespace: 'kueuer-system' },
  spec: { holderIdentity: holder, leaseDurationSeconds, renewTime: new Date(0) as unknown as V1MicroTime, leaseTransitions: 0 },
});

function candidate(api: FakeLeaseApi, identity: string) {
  const changes: boolean[] = [];
  const election = new LeaderElection(api as unknown as CoordinationV1Api, (ms) => new Date(ms) as unknown as V1MicroTime, {
    namespace: 'kueuer-system',
    name: 'controllers',
    identity,
    timing: TIMING,
    log: pino({ level: 'silent' }),
    onChange: (leading) => changes.push(leading),
  });
  return { election, changes };
}

describe('LeaderElection', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a leader whose requests never answer stops leading at the renew deadline, and a late answer does not make it leader again', async () => {
    const api = new FakeLeaseApi();
    const { election, changes } = candidate(api, 'a');
    await election.start(); // t=0: creates the Lease
    expect(election.isLeader()).toBe(true);

    api.answering = { read: false, write: false }; // the connection blackholes: from the next attempt (t=2 s) nothing answers
    await vi.advanceTimersByTimeAsync(TIMING.renewDeadlineMs - 1);
    expect(election.isLeader()).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(election.isLeader()).toBe(false);
    expect(changes).toEqual([true, false]);

    // Each request was aborted after its budget (half the renew deadline), so attempts went on every retry period.
    expect(api.pending.length).toBeGreaterThanOrEqual(2);
    expect(api.pending[0]!.signal?.aborted).toBe(true);

    // Every pending request now answers: too late, ignored.
    for (const p of api.pending) p.resolve(structuredClone(api.stored!));
    await vi.advanceTimersByTimeAsync(0);
    expect(election.isLeader()).toBe(false);
    expect(changes).toEqual([true, false]);
    const stopped = election.stop(); // waits for the attempt in flight, itself bounded by the request budget
    await vi.advanceTimersByTimeAsync(TIMING.renewDeadlineMs);
    await stopped;
    expect(changes).toEqual([true, false]);
  });

  it('a renewal begun before the renew deadline and answered after it does not make it leader again; a fresh one does', async () => {
    const api = new FakeLeaseApi();
    const { election, changes } = candidate(api, 'a');
    await election.start(); // t=0: leads
    api.answering.write = false; // reads answer, writes hang: renewals at t=2 s (aborted at 7 s) and t=9 s
    await vi.advanceTimersByTimeAsync(TIMING.renewDeadlineMs);
    expect(election.isLeader()).toBe(false);
    expect(api.pending).toHaveLength(2);
    expect(api.pending[1]!.signal?.aborted).toBe(false); // the t=9 s write is still within its budget...

    api.pending[1]!.resolve(structuredClone(api.stored!)); // ...and succeeds at t=10 s, after the step-down
    await vi.advanceTimersByTimeAsync(0);
    expect(election.isLeader()).toBe(false);
    expect(changes).toEqual([true, false]);

    // Once the apiserver answers again, a renewal begun after the step-down makes it leader again.
    api.answering.write = true;
    await vi.advanceTimersByTimeAsync(TIMING.retryPeriodMs);
    expect(election.isLeader()).toBe(true);
    expect(changes).toEqual([true, false, true]);
    await election.stop();
    expect(api.stored?.spec?.holderIdentity).toBe(''); // released on stop
  });

  it("judges another holder's expiry on the holder's declared leaseDurationSeconds, not its own", async () => {
    const api = new FakeLeaseApi();
    api.stored = lease('b', 40); // b declares 40 s and never renews
    const { election } = candidate(api, 'a');
    await election.start(); // t=0: sees b's record for the first time
    await vi.advanceTimersByTimeAsync(38_000); // past our own 15 s, short of b's 40 s
    expect(election.isLeader()).toBe(false);
    expect(api.writes).toBe(0);
    await vi.advanceTimersByTimeAsync(2_000); // t=40 s: unchanged for b's whole duration
    expect(election.isLeader()).toBe(true);
    expect(api.stored.spec?.holderIdentity).toBe('a');
    await election.stop();
  });

  it('takes over a holder declaring a shorter duration than its own after that shorter duration', async () => {
    const api = new FakeLeaseApi();
    api.stored = lease('b', 4);
    const { election } = candidate(api, 'a');
    await election.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(election.isLeader()).toBe(false);
    await vi.advanceTimersByTimeAsync(2_000); // t=4 s, well before our 15 s
    expect(election.isLeader()).toBe(true);
    await election.stop();
  });
});
