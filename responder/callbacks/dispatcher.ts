/**
 * Delivers async callbacks: a bounded in-memory queue, bounded concurrency,
 * retries with exponential backoff and jitter (network errors, 408, 429, 5xx;
 * Retry-After honoured up to a bound), and a dead letter after `maxAttempts`
 * or at once for what retrying cannot fix (a refused destination, another
 * 4xx, a redirect). A dead letter calls `onDeadLetter` and logs one line
 * naming the cause and the fix. The queue lives in this replica's memory: a
 * callback waiting to retry when the responder stops is dead-lettered with
 * reason `shutdown` (the result itself stays stored and can be polled).
 */
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Parsed } from '../../shared/annotations.js';
import type { BackoffOptions } from '../../shared/retry.js';
import { safeTimerMs } from '../../shared/timers.js';
import { kueuerVersion } from '../../shared/version.js';
import { attemptDelivery, systemLookup, type AttemptOutcome, type Lookup } from './attempt.js';
import { checkCallbackUrl } from './callback-url.js';
import { callbackMetrics, type CallbackMetrics, type DeadLetterReason } from './metrics.js';
import { CALLBACK_DEFAULTS, callbackHeaders, nextWaitMs, type CallbackResponse } from './policy.js';
import { CallbackKeys, type CallbackSettings, type ReadSecret } from './settings.js';
import { checkCallbackSubmit, misconfigured, type SubmitCheck } from './submit.js';

export interface CallbackJob {
  requestId: string;
  /** The Service's namespace: where the signing key's Secret is read. */
  namespace: string;
  /** The Service's queue: the metrics label. */
  queue: string;
  /** The Kueuer-Callback-Url the client sent, as stored at submit. */
  callbackUrl: string;
  /** The Service's callback settings now (they are checked again: a destination removed since submit is refused). */
  settings: CallbackSettings | undefined;
  /** The app's answer, sent as it is. */
  response: CallbackResponse;
}

export interface DeadLetterRecord {
  requestId: string;
  namespace: string;
  queue: string;
  callbackUrl: string;
  reason: DeadLetterReason;
  /** What failed last, e.g. `the receiver answered 503`. */
  detail: string;
  attempts: number;
  lastStatus?: number;
  /** Epoch ms. */
  acceptedAt: number;
  deadLetteredAt: number;
}

export interface CallbackDispatcherOptions {
  readSecret: ReadSecret;
  log: Logger;
  registry?: Registry;
  /** Called once per callback given up; errors it throws are logged. */
  onDeadLetter?: (record: DeadLetterRecord) => void | Promise<void>;
  /** Tries in all, the first included (default 10: 6.75 to 13.5 minutes of waits with the default backoff). */
  maxAttempts?: number;
  /** Default 2 s doubling to 5 min, jittered. */
  backoff?: BackoffOptions;
  /** Longest Retry-After honoured (default 5 min); a longer one is cut to it. */
  maxRetryAfterMs?: number;
  /** Per try: resolve, connect, send and the answer's headers (default 10 s). */
  attemptTimeoutMs?: number;
  /** Attempts in flight at once (default 32). */
  concurrency?: number;
  /** Attempts in flight at once for one Service's queue (default 8), so one Service's hung receivers cannot take every try. */
  perQueueConcurrency?: number;
  /** Callbacks held at once, waiting, in flight or waiting to retry (default 10,000); past it a new one is dead-lettered as queue_full. */
  maxQueued?: number;
  /** Bytes held at once, bodies, app headers and URLs (default 64 MiB); past it, likewise. */
  maxQueuedBytes?: number;
  /** Callbacks held at once for one Service's queue (default 2,500); past it, likewise, so one Service cannot fill the replica's bound. */
  maxQueuedPerQueue?: number;
  lookup?: Lookup;
  now?: () => number;
  random?: () => number;
}

interface Entry {
  job: CallbackJob;
  attempts: number;
  acceptedAt: number;
  lastStatus?: number;
  timer?: NodeJS.Timeout;
}

const FIX: Record<DeadLetterReason, string> = {
  refused:
    'the URL or the address it resolves to is not allowed: fix the URL, or add its origin to kueuer.io/async-callback-allow (an exact entry for an in-cluster or private host)',
  rejected:
    'the receiver refused the callback: check that it takes POSTs at this URL and verifies the signature with the key of kueuer.io/async-callback-secret',
  redirect: 'redirects are not followed: give the final URL as Kueuer-Callback-Url',
  exhausted: 'the receiver failed every try: check that it is up and answers 2xx within the attempt timeout; the result can still be polled',
  queue_full: 'too many callbacks held by this replica (receivers slow or down): fix the receivers or add responder replicas; the result can still be polled',
  shutdown: 'the responder stopped before the callback was delivered; the result can still be polled',
};

/** What a held callback costs in memory, roughly: its body, the app's headers and the URL. */
function heldBytes(job: CallbackJob): number {
  return job.response.body.length + job.callbackUrl.length + job.response.headers.reduce((n, [name, value]) => n + name.length + value.length, 0);
}

/** The fairness key: one Service's queue. */
function tenant(job: CallbackJob): string {
  return `${job.namespace}/${job.queue}`;
}

/** Adds `delta` to a per-queue count, dropping it at zero so the map holds only queues with callbacks. */
function count(map: Map<string, number>, key: string, delta: number): void {
  const n = (map.get(key) ?? 0) + delta;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}

export class CallbackDispatcher {
  private readonly entries = new Set<Entry>();
  private readonly ready: Entry[] = [];
  private readonly keys: CallbackKeys;
  private readonly metrics: CallbackMetrics;
  private readonly userAgent = `kueuer/${kueuerVersion()}`;
  private bytes = 0;
  private active = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  /** Per Service queue (namespace/queue): callbacks held, and tries in flight. */
  private readonly heldBy = new Map<string, number>();
  private readonly activeBy = new Map<string, number>();
  /** onDeadLetter calls still running: close() waits for them. */
  private readonly hooks = new Set<Promise<void>>();

  constructor(private readonly options: CallbackDispatcherOptions) {
    this.keys = new CallbackKeys(options.readSecret);
    this.metrics = callbackMetrics(options.registry ?? new Registry());
  }

  /**
   * The submit-time check: the URL against the Service's settings, and the
   * signing key readable, so a client is not answered 202 for a callback that
   * could never be signed.
   */
  async checkSubmit(
    header: string | readonly string[] | undefined,
    settings: Parsed<CallbackSettings | undefined>,
    namespace: string,
    requestId: string,
  ): Promise<SubmitCheck> {
    const check = checkCallbackSubmit(header, settings, requestId);
    if (!check.ok || !check.target || !settings.ok || !settings.value) return check;
    const key = await this.keys.get(namespace, settings.value.secret);
    if (key.ok) return check;
    this.options.log.error({ reqId: requestId, namespace, problem: key.problem }, 'callback signing key unavailable; request refused');
    return misconfigured("the Service's callback signing key cannot be read; the responder log names the cause", requestId);
  }

  /** Queues a callback; false when it was dead-lettered at once (queue full, or closed). */
  deliver(job: CallbackJob): boolean {
    const entry: Entry = { job, attempts: 0, acceptedAt: this.now() };
    const size = heldBytes(job);
    const max = { count: this.options.maxQueued ?? 10_000, bytes: this.options.maxQueuedBytes ?? 64 * 1024 * 1024 };
    const perQueue = this.options.maxQueuedPerQueue ?? 2_500;
    const held = this.heldBy.get(tenant(job)) ?? 0;
    if (this.closed) {
      this.deadLetter(entry, 'shutdown', 'the responder is stopping');
      return false;
    }
    if (this.entries.size >= max.count || this.bytes + size > max.bytes) {
      const detail = `${this.entries.size} callbacks (${this.bytes} bytes) already held; bounds ${max.count} and ${max.bytes} bytes`;
      this.deadLetter(entry, 'queue_full', detail);
      return false;
    }
    if (held >= perQueue) {
      this.deadLetter(entry, 'queue_full', `${held} callbacks of queue ${tenant(job)} already held; bound ${perQueue} per queue`);
      return false;
    }
    this.entries.add(entry);
    count(this.heldBy, tenant(job), 1);
    this.bytes += size;
    this.metrics.queuedSet(this.entries.size);
    this.ready.push(entry);
    this.pump();
    return true;
  }

  /** Resolves when no callback is held (all delivered or dead-lettered). */
  idle(): Promise<void> {
    if (this.entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking callbacks, dead-letters those waiting (reason shutdown) and waits for the attempts in flight and the onDeadLetter calls. */
  async close(): Promise<void> {
    this.closed = true;
    for (const entry of [...this.entries]) {
      if (entry.timer || this.ready.includes(entry)) {
        clearTimeout(entry.timer);
        this.deadLetter(entry, 'shutdown', 'the responder stopped before the next try');
      }
    }
    this.ready.length = 0;
    await this.idle();
    await Promise.all(this.hooks);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** Starts the first ready callbacks whose queue is under its share of tries, while tries are free. */
  private pump(): void {
    const perQueue = this.options.perQueueConcurrency ?? 8;
    while (!this.closed && this.active < (this.options.concurrency ?? 32)) {
      const next = this.ready.findIndex((e) => (this.activeBy.get(tenant(e.job)) ?? 0) < perQueue);
      if (next < 0) return;
      const [entry] = this.ready.splice(next, 1) as [Entry];
      const key = tenant(entry.job);
      this.active++;
      count(this.activeBy, key, 1);
      void this.run(entry).finally(() => {
        this.active--;
        count(this.activeBy, key, -1);
        this.pump();
      });
    }
  }

  private async run(entry: Entry): Promise<void> {
    entry.attempts++;
    let outcome: AttemptOutcome;
    try {
      outcome = await this.attempt(entry);
    } catch (err) {
      outcome = { kind: 'retry', detail: `unexpected: ${(err as Error).message}` };
    }
    if (outcome.status !== undefined) entry.lastStatus = outcome.status;
    const { job } = entry;
    if (outcome.kind === 'delivered') {
      this.metrics.delivered(job.queue);
      this.options.log.debug({ reqId: job.requestId, attempts: entry.attempts, status: outcome.status }, 'callback delivered');
      this.finish(entry);
    } else if (outcome.kind === 'final') {
      this.deadLetter(entry, outcome.reason, outcome.detail);
    } else if (entry.attempts >= (this.options.maxAttempts ?? CALLBACK_DEFAULTS.maxAttempts)) {
      this.deadLetter(entry, 'exhausted', outcome.detail);
    } else if (this.closed) {
      this.deadLetter(entry, 'shutdown', outcome.detail);
    } else {
      const policy = {
        backoff: this.options.backoff ?? CALLBACK_DEFAULTS.backoff,
        maxRetryAfterMs: this.options.maxRetryAfterMs ?? CALLBACK_DEFAULTS.maxRetryAfterMs,
      };
      const wait = nextWaitMs(entry.attempts, outcome.retryAfterMs, policy, this.options.random);
      this.metrics.retried(job.queue);
      this.options.log.debug({ reqId: job.requestId, attempt: entry.attempts, waitMs: wait, cause: outcome.detail }, 'callback attempt failed; retrying');
      entry.timer = setTimeout(() => {
        delete entry.timer;
        this.ready.push(entry);
        this.pump();
      }, safeTimerMs(wait));
      entry.timer.unref();
    }
  }

  private async attempt(entry: Entry): Promise<AttemptOutcome> {
    const { job } = entry;
    if (!job.settings)
      return {
        kind: 'final',
        reason: 'refused',
        detail: "the Service's kueuer.io/async-callback-allow allows no callback destination (the annotation is absent or empty)",
      };
    const check = checkCallbackUrl(job.callbackUrl, job.settings.allow);
    if (!check.ok) return { kind: 'final', reason: 'refused', detail: check.message };
    const key = await this.keys.get(job.namespace, job.settings.secret);
    if (!key.ok) return { kind: 'retry', detail: key.problem };
    const timeoutMs = this.options.attemptTimeoutMs ?? 10_000;
    const headers = callbackHeaders({
      requestId: job.requestId,
      response: job.response,
      key: key.key,
      timestampSec: Math.floor(this.now() / 1000),
      attempt: entry.attempts,
      userAgent: this.userAgent,
    });
    return attemptDelivery({
      target: check.target,
      headers,
      body: job.response.body,
      timeoutMs,
      lookup: this.options.lookup ?? systemLookup,
      now: () => this.now(),
    });
  }

  private finish(entry: Entry): void {
    if (this.entries.delete(entry)) {
      this.bytes -= heldBytes(entry.job);
      count(this.heldBy, tenant(entry.job), -1);
    }
    this.metrics.queuedSet(this.entries.size);
    if (this.entries.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private deadLetter(entry: Entry, reason: DeadLetterReason, detail: string): void {
    const { job } = entry;
    this.metrics.deadLettered(job.queue, reason);
    const record: DeadLetterRecord = {
      requestId: job.requestId,
      namespace: job.namespace,
      queue: job.queue,
      callbackUrl: job.callbackUrl,
      reason,
      detail,
      attempts: entry.attempts,
      ...(entry.lastStatus === undefined ? {} : { lastStatus: entry.lastStatus }),
      acceptedAt: entry.acceptedAt,
      deadLetteredAt: this.now(),
    };
    // The URL's origin only: a path or query may carry the receiver's own tokens.
    let destination = '(invalid URL)';
    try {
      destination = new URL(job.callbackUrl).origin;
    } catch {
      // logged as invalid
    }
    this.options.log.warn(
      { reqId: job.requestId, namespace: job.namespace, queue: job.queue, destination, attempts: entry.attempts, reason, cause: detail, fix: FIX[reason] },
      'callback dead-lettered',
    );
    const failed = (err: unknown) => this.options.log.error({ reqId: job.requestId, err }, 'onDeadLetter hook failed');
    try {
      const done = this.options.onDeadLetter?.(record);
      if (done) {
        const running: Promise<void> = done.catch(failed).finally(() => this.hooks.delete(running));
        this.hooks.add(running);
      }
    } catch (err) {
      failed(err);
    }
    // Last, so idle() resolves after the hook was called.
    this.finish(entry);
  }
}
