/**
 * Where asynchronous requests and their results live between the submit and
 * the last poll. One interface, two stores: the embedded one (this file, for
 * `kueuer local` and a single replica) and Redis (redis-store.ts), shared by
 * every responder replica and kept across their restarts. Every key is
 * namespaced by the queue, so one Service never reads another's requests.
 * Lookups are by key; nothing scans.
 */
import type { HeaderPairs } from '../../shared/http-headers.js';
import { Waiters } from './waiters.js';

/** The app's answer, as the synchronous path would have written it. */
export interface StoredResult {
  status: number;
  reason?: string;
  headers: HeaderPairs;
  body: Buffer;
  trailers?: HeaderPairs;
}

export interface AsyncRecord {
  id: string;
  /** Epoch ms the request was accepted. */
  acceptedAt: number;
  /** Epoch ms after which the record (and its result) is gone. */
  expiresAt: number;
  /** Set once the app answered. */
  result?: StoredResult;
  /** The Kueuer-Callback-Url accepted with the request (docs/async-callbacks.md). */
  callbackUrl?: string;
  /** Set once a DELETE cancelled it before its result: what became of it in the app. */
  cancelled?: { at: number; app: CancelState };
}

/**
 * What became of a cancelled request, as far as Kueuer knows: `queued` (no sidecar has reported
 * it yet), `not-run` (a sidecar acked it without calling the app), `running` (a sidecar was
 * running it when the cancel came), `ran` (the app answered; its answer was discarded). A state
 * only ever moves to a later one of these.
 */
export type CancelState = 'queued' | 'not-run' | 'running' | 'ran';
export const CANCEL_STATES: readonly CancelState[] = ['queued', 'not-run', 'running', 'ran'];

/** The outcome of a cancel: marked now, already cancelled, already answered, or unknown. */
export type CancelOutcome = 'cancelled' | 'already' | 'done' | 'gone';

export interface IdempotencyClaim {
  /** Identifies one idempotency key of one Service. */
  key: string;
  /** Hash of the request (method, target, body): a repeat must send the same. */
  fingerprint: string;
}

/** A queue's asynchronous requests awaiting their answer, and results stored (kueuer status). */
export interface AsyncBacklog {
  /** Accepted, not answered, and an answer still expected (before the request's deadline). */
  pending: number;
  /** Answers stored and not yet expired or deleted. */
  results: number;
}

export type AcceptOutcome = { accepted: true } | { accepted: false; id: string; fingerprint: string };

export interface AsyncStore {
  /**
   * Records an accepted request. With a claim, atomically: when the key is already held (within
   * its lifetime) nothing is recorded and the holder's id and fingerprint come back. `answerBy`:
   * when no answer is expected any more (the request's deadline); it counts as pending until then.
   */
  accept(queue: string, id: string, ttlMs: number, claim?: IdempotencyClaim, callbackUrl?: string, answerBy?: number): Promise<AcceptOutcome>;
  /** Stores the result of a request still recorded; false when it is unknown, expired, removed or cancelled (then noted as `ran`). */
  complete(queue: string, id: string, result: StoredResult): Promise<boolean>;
  get(queue: string, id: string): Promise<AsyncRecord | undefined>;
  /** Marks a request without a result cancelled (`queued`), atomically; wakes its long polls. */
  cancel(queue: string, id: string): Promise<CancelOutcome>;
  /** Moves a cancelled request's state on (never back); false when it is not cancelled. */
  noteCancel(queue: string, id: string, app: CancelState): Promise<boolean>;
  /** Removes a request and its result; false when there was none. */
  remove(queue: string, id: string): Promise<boolean>;
  /** Resolves when the request has a result or is gone, or after `ms`. */
  waitFor(queue: string, id: string, ms: number): Promise<void>;
  /** The queue's backlog: requests awaiting an answer, results stored. */
  backlog(queue: string): Promise<AsyncBacklog>;
  /** Records held now (accepted or with a result). */
  size(): Promise<number>;
  close(): Promise<void>;
}

interface Entry extends AsyncRecord {
  claimKey?: string;
  answerBy: number;
  bytes: number;
}

/** Bytes a result holds, for the memory bound. */
export function resultBytes(r: StoredResult): number {
  return r.body.length + JSON.stringify(r.headers).length + (r.trailers ? JSON.stringify(r.trailers).length : 0);
}

/**
 * The embedded store: one process's memory, bounded by `maxBytes` of results
 * (a result that does not fit is refused, and its poll says so) and by
 * expiry, checked on every access and swept in order of expiry.
 */
export class MemoryAsyncStore implements AsyncStore {
  private readonly entries = new Map<string, Entry>();
  private readonly claims = new Map<string, { id: string; fingerprint: string; expiresAt: number }>();
  private readonly waiters = new Waiters();
  private bytes = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly maxBytes: number,
    private readonly onExpired: (n: number) => void = () => undefined,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 1_000);
    this.sweeper.unref();
  }

  async accept(queue: string, id: string, ttlMs: number, claim?: IdempotencyClaim, callbackUrl?: string, answerBy?: number): Promise<AcceptOutcome> {
    const now = Date.now();
    if (claim) {
      const held = this.claims.get(`${queue}\n${claim.key}`);
      if (held && held.expiresAt > now) return { accepted: false, id: held.id, fingerprint: held.fingerprint };
      this.claims.set(`${queue}\n${claim.key}`, { id, fingerprint: claim.fingerprint, expiresAt: now + ttlMs });
    }
    this.entries.set(`${queue}\n${id}`, {
      id,
      acceptedAt: now,
      expiresAt: now + ttlMs,
      answerBy: Math.min(answerBy ?? now + ttlMs, now + ttlMs),
      bytes: 0,
      ...(claim ? { claimKey: `${queue}\n${claim.key}` } : {}),
      ...(callbackUrl !== undefined ? { callbackUrl } : {}),
    });
    return { accepted: true };
  }

  async complete(queue: string, id: string, result: StoredResult): Promise<boolean> {
    const entry = this.live(`${queue}\n${id}`);
    if (!entry || entry.result) return false;
    if (entry.cancelled) {
      entry.cancelled.app = 'ran';
      return false;
    }
    const bytes = resultBytes(result);
    if (this.bytes + bytes > this.maxBytes) return false;
    entry.result = result;
    entry.bytes = bytes;
    this.bytes += bytes;
    this.wake(`${queue}\n${id}`);
    return true;
  }

  async get(queue: string, id: string): Promise<AsyncRecord | undefined> {
    const e = this.live(`${queue}\n${id}`);
    return (
      e && {
        id: e.id,
        acceptedAt: e.acceptedAt,
        expiresAt: e.expiresAt,
        ...(e.result ? { result: e.result } : {}),
        ...(e.callbackUrl !== undefined ? { callbackUrl: e.callbackUrl } : {}),
        ...(e.cancelled ? { cancelled: { ...e.cancelled } } : {}),
      }
    );
  }

  async cancel(queue: string, id: string): Promise<CancelOutcome> {
    const e = this.live(`${queue}\n${id}`);
    if (!e) return 'gone';
    if (e.result) return 'done';
    if (e.cancelled) return 'already';
    e.cancelled = { at: Date.now(), app: 'queued' };
    this.wake(`${queue}\n${id}`);
    return 'cancelled';
  }

  async noteCancel(queue: string, id: string, app: CancelState): Promise<boolean> {
    const e = this.live(`${queue}\n${id}`);
    if (!e?.cancelled) return false;
    if (CANCEL_STATES.indexOf(app) > CANCEL_STATES.indexOf(e.cancelled.app)) e.cancelled.app = app;
    return true;
  }

  async remove(queue: string, id: string): Promise<boolean> {
    const key = `${queue}\n${id}`;
    const e = this.live(key);
    if (!e) return false;
    this.drop(key, e);
    this.wake(key);
    return true;
  }

  async waitFor(queue: string, id: string, ms: number): Promise<void> {
    const key = `${queue}\n${id}`;
    const e = this.live(key);
    if (!e || e.result || e.cancelled || ms <= 0) return;
    await this.waiters.wait(key, Math.min(ms, e.expiresAt - Date.now()));
  }

  /** Counted over the entries (the embedded store is one process's, read off the request path). */
  async backlog(queue: string): Promise<AsyncBacklog> {
    const now = Date.now();
    const b = { pending: 0, results: 0 };
    for (const [key, e] of this.entries) {
      if (!key.startsWith(`${queue}\n`) || e.expiresAt <= now) continue;
      if (e.result) b.results++;
      else if (e.answerBy > now) b.pending++;
    }
    return b;
  }

  async size(): Promise<number> {
    return this.entries.size;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.waiters.wakeAll();
  }

  private live(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (e && e.expiresAt <= Date.now()) {
      this.drop(key, e);
      this.onExpired(1);
      return undefined;
    }
    return e;
  }

  private drop(key: string, e: Entry): void {
    this.entries.delete(key);
    this.bytes -= e.bytes;
    if (e.claimKey && this.claims.get(e.claimKey)?.id === e.id) this.claims.delete(e.claimKey);
  }

  private wake(key: string): void {
    this.waiters.wake(key);
  }

  /** Once a second, off the request path: lookups only check their own entry. */
  private sweep(): void {
    const now = Date.now();
    let expired = 0;
    for (const [key, e] of this.entries) {
      if (e.expiresAt > now) continue;
      this.drop(key, e);
      expired++;
    }
    for (const [key, c] of this.claims) if (c.expiresAt <= now) this.claims.delete(key);
    if (expired > 0) this.onExpired(expired);
  }
}
