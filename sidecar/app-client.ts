/**
 * Calls the app on localhost with a keep-alive undici pool sized to the
 * sidecar's concurrency (undici rather than node:http: the benchmark showed
 * ~1.6× the throughput through `kueuer local`).
 *
 * The replay rule: a call is retried (with backoff, until shortly before the
 * deadline) when the request never got a connection, i.e. undici never
 * started writing it (connection refused, the app not listening yet). Once a
 * request was handed to a connection, a failure is the app's answer (502): a
 * request the app may have read is not sent again, unless the app went down
 * with it (its port refuses connections right after), which is a crash: then
 * it is sent once more, with `x-kueuer-redelivered: true`, when the app is
 * back. Otherwise the app sees a request twice only through the queue, with
 * the same flag, after a sidecar crash or a lost ack.
 *
 * Any HTTP response with a status from 200 to 599, 5xx included, passes
 * through unchanged; anything else the app sends is `invalid_app_response`.
 */
import { STATUS_CODES } from 'node:http';
import { connect } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { QueuedRequest } from '../shared/envelope.js';
import {
  DEADLINE_HEADER,
  flattenPairs,
  forwardableHeaders,
  pairsFromRaw,
  REDELIVERED_HEADER,
  REQUEST_ID_HEADER,
  withoutHeader,
  type HeaderPairs,
} from '../shared/http-headers.js';
import type { HostPort } from '../shared/options.js';
import { responseHeadersProblem } from '../shared/request-rules.js';
import { safeTimerMs } from '../shared/timers.js';
import { retry } from '../shared/retry.js';
import { APP_CALL_BACKOFF, CallFailure, describeFailure, IDEMPOTENT_METHODS } from './retry-policy.js';

export interface AppResponse {
  status: number;
  /** The app's reason phrase, when it differs from the standard one. */
  reason?: string;
  headers: HeaderPairs;
  body: Buffer;
  /** The app's trailer fields, when it sent any. */
  trailers?: HeaderPairs;
}

export type AppOutcome =
  | { kind: 'response'; response: AppResponse; attempts: number }
  /** The app could not be reached before the deadline, or dropped the connection before answering. */
  | { kind: 'unreachable'; error: string; attempts: number }
  /** The app answered something that is not a forwardable HTTP response. */
  | { kind: 'invalid_response'; error: string; attempts: number }
  /** The app took the request but did not answer before the deadline. */
  | { kind: 'timeout'; attempts: number }
  /** The app's response body is over the size limit. */
  | { kind: 'too_large'; attempts: number };

/** How long a probe of the app's port may take; a crashed app refuses at once. */
const CRASH_PROBE_TIMEOUT_MS = 500;
/** Stop retrying this long before the deadline, so the 502 still reaches the client. */
const ANSWER_MARGIN_MS = 250;
/** A reason phrase of visible ASCII, spaces and tabs. */
const ASCII_REASON = /^[\t\u0020-\u007e]*$/;
/** Statuses whose response never has a body, whatever Content-Length says (RFC 9110 §6.4.1). */
const BODYLESS_STATUSES = new Set([204, 304]);

/**
 * Thrown by `call` once `handBackUnsent` was called and the app refuses connections: the request
 * was never sent, so the worker's handler rejects and the broker gives it to another consumer.
 */
class HandedBackError extends Error {}

/** The deadline passed before the next call of the app. */
class DeadlinePassed extends Error {}

export class AppClient {
  private pool: Pool;
  private readonly origin: string;
  private handingBack = false;

  constructor(
    private readonly target: HostPort,
    private readonly concurrency: number,
    private readonly maxBodyBytes: number,
  ) {
    this.origin = `http://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
    this.pool = this.newPool();
  }

  private newPool(): Pool {
    // Response headers up to what the envelope carries (48 KiB as JSON); larger ones are the app's 502.
    return new Pool(this.origin, { connections: this.concurrency, pipelining: 1, headersTimeout: 0, bodyTimeout: 0, maxHeaderSize: 64 * 1024 });
  }

  async call(req: QueuedRequest, redelivered: boolean, log: Logger, onRetry: () => void): Promise<AppOutcome> {
    const state = { flat: this.headersFor(req, redelivered), resentAfterCut: false, attempts: 0 };
    try {
      const response = await retry((attempt) => this.attempt(req, state, attempt, log), {
        ...APP_CALL_BACKOFF,
        until: req.deadline - ANSWER_MARGIN_MS,
        retryable: (err) => err instanceof CallFailure && err.retryable,
        onRetry: (err, attempt, waitMs) => {
          onRetry();
          log.warn({ err: (err as Error).message, attempt, retryInMs: waitMs }, 'app unreachable; retrying');
        },
      });
      return { kind: 'response', response, attempts: state.attempts };
    } catch (err) {
      if (err instanceof DeadlinePassed) return { kind: 'timeout', attempts: state.attempts - 1 };
      if (!(err instanceof CallFailure)) throw err;
      if (err.kind === 'timeout' || err.kind === 'too_large') return { kind: err.kind, attempts: state.attempts };
      return { kind: err.kind, error: err.message, attempts: state.attempts };
    }
  }

  /**
   * One call of the app, for `call`'s retry: a failure is thrown as a CallFailure whose `retryable`
   * says whether it may be sent again (the replay rule), with the headers of the next attempt in `state`.
   */
  private async attempt(
    req: QueuedRequest,
    state: { flat: string[]; resentAfterCut: boolean; attempts: number },
    attempt: number,
    log: Logger,
  ): Promise<AppResponse> {
    state.attempts = attempt;
    const remaining = req.deadline - Date.now();
    if (remaining <= 0) throw new DeadlinePassed();
    try {
      return await this.once(req, state.flat, remaining);
    } catch (err) {
      if (!(err instanceof CallFailure) || err.kind === 'timeout' || err.kind === 'too_large') throw err;
      if (this.handingBack && err.retryable) throw new HandedBackError(`the sidecar is stopping and the app refuses connections: ${err.message}`);
      if (!err.cutAfterSending || state.resentAfterCut) throw err;
      const appDown = !(await this.acceptsConnections());
      if (!appDown && !IDEMPOTENT_METHODS.has(req.method)) throw err;
      // The app went down in the middle of the request (its port refuses connections now), like a
      // crashed pod; or an idempotent request met a kept-alive connection the app closed (RFC 9110
      // §9.2.2 allows retrying those). Sent once more, flagged, so the app knows it may be a repeat.
      state.resentAfterCut = true;
      state.flat = this.headersFor(req, true);
      log.warn(
        { err: err.message, appDown },
        appDown
          ? 'the app went down during the request; it is sent again with x-kueuer-redelivered: true once the app is back'
          : 'the connection closed before an answer to an idempotent request; it is sent again with x-kueuer-redelivered: true',
      );
      throw new CallFailure(err.kind, err.message, true);
    }
  }

  private headersFor(req: QueuedRequest, redelivered: boolean): string[] {
    // The body was buffered whole, so its length is known exactly.
    // Expect: 100-continue was settled with the client before the body was queued.
    const headers = withoutHeader(withoutHeader(forwardableHeaders(req.headers), 'content-length'), 'expect');
    headers.push([REQUEST_ID_HEADER, req.id], [DEADLINE_HEADER, new Date(req.deadline).toISOString()]);
    if (redelivered) headers.push([REDELIVERED_HEADER, 'true']);
    if (req.body.length > 0 || !['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE'].includes(req.method)) {
      headers.push(['content-length', String(req.body.length)]);
    }
    return flattenPairs(headers);
  }

  /** Whether the app's port takes a connection now (a crashed app's does not). */
  private acceptsConnections(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect({ host: this.target.host, port: this.target.port });
      const done = (up: boolean): void => {
        socket.destroy();
        resolve(up);
      };
      socket.setTimeout(CRASH_PROBE_TIMEOUT_MS, () => done(true)); // slow, not refused: the app is there
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
    });
  }

  /**
   * One call, settled exactly once: by the response, by a failure, or by the
   * deadline timer, whatever undici does meanwhile, so a slot is never held
   * past the request's deadline.
   */
  private once(req: QueuedRequest, flatHeaders: string[], timeoutMs: number): Promise<AppResponse> {
    return new Promise<AppResponse>((resolve, reject) => {
      let handedToConnection = false;
      let dispatching = true;
      let abort: ((err?: Error) => void) | null = null;
      let status = 0;
      let reason = '';
      let rawHeaders: Buffer[] = [];
      let rawTrailers: Array<Buffer | string> = [];
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      /** `fromUndici`: undici reported the failure itself, so the request is already over there. */
      const fail = (failure: CallFailure, fromUndici = false): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!fromUndici) abort?.(failure);
        reject(failure);
      };
      const timer = setTimeout(() => fail(new CallFailure('timeout', 'deadline reached', false)), safeTimerMs(timeoutMs));
      const finish = (): void => {
        if (settled) return;
        const built = this.responseOf(status, reason, rawHeaders, chunks, size, rawTrailers);
        if (typeof built === 'string') return fail(new CallFailure('invalid_response', built, false), true);
        settled = true;
        clearTimeout(timer);
        resolve(built);
      };
      const handler: Dispatcher.DispatchHandler = {
        onConnect: (abortRequest) => {
          if (settled) {
            // Its deadline passed while it waited in undici's queue for a connection: never send it.
            abortRequest(new Error('deadline passed before a connection was free'));
            return;
          }
          handedToConnection = true;
          abort = abortRequest;
        },
        onHeaders: (statusCode, headers, _resume, statusText) => {
          // undici takes a status below 100 for an interim one, then fails on an assertion: say what it was.
          if (statusCode < 100) {
            fail(new CallFailure('invalid_response', statusProblem(statusCode), false));
            return false;
          }
          if (statusCode < 200) return true; // 1xx informational: the final response follows
          status = statusCode;
          reason = statusText;
          rawHeaders = headers;
          return true;
        },
        onData: (chunk) => {
          size += chunk.length;
          if (size > this.maxBodyBytes) {
            fail(new CallFailure('too_large', 'response body over the limit', false));
            return false;
          }
          chunks.push(chunk);
          return true;
        },
        onComplete: (trailers) => {
          rawTrailers = trailers ?? [];
          finish();
        },
        onError: (err) => {
          if (dispatching && !handedToConnection) {
            // undici refused the request itself. The envelope's rules should make this impossible;
            // if it ever happens, the pool may wait forever for a 'drain' that never comes, so replace it.
            this.replacePool();
            return fail(new CallFailure('invalid_response', `the request could not be sent to the app: ${err.message}`, false), true);
          }
          if (status !== 0 && BODYLESS_STATUSES.has(status) && size === 0 && (err as { code?: string }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
            return finish(); // a 304 or 204 that declares the Content-Length of a body it does not send (RFC 9110 §8.6)
          }
          fail(describeFailure(err, handedToConnection, status !== 0), true);
        },
      };
      try {
        this.pool.dispatch({ method: req.method, path: req.path, headers: flatHeaders, body: req.body.length > 0 ? req.body : null }, handler);
      } catch (err) {
        this.replacePool();
        fail(new CallFailure('invalid_response', `the request could not be sent to the app: ${(err as Error).message}`, false));
      } finally {
        dispatching = false;
      }
    });
  }

  /** The response, or why it cannot be forwarded. */
  private responseOf(
    status: number,
    reason: string,
    rawHeaders: Buffer[],
    chunks: Buffer[],
    size: number,
    rawTrailers: Array<Buffer | string> = [],
  ): AppResponse | string {
    if (status < 200 || status > 599) return statusProblem(status);
    // latin1 keeps every header byte as it was (obs-text included); Node writes it back the same way.
    const raw = rawHeaders.map((h) => h.toString('latin1'));
    const headers = forwardableHeaders(pairsFromRaw(raw));
    const problem = responseHeadersProblem(headers);
    if (problem) return `the app's response headers cannot be forwarded: ${problem.message}`;
    const trailers = forwardableHeaders(pairsFromRaw(rawTrailers.map((t) => (typeof t === 'string' ? t : t.toString('latin1')))));
    const trailerProblem = trailers.length > 0 ? responseHeadersProblem(trailers) : null;
    if (trailerProblem) return `the app's trailer fields cannot be forwarded: ${trailerProblem.message}`;
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    // Most apps send the standard phrase; only another one travels (clients may ignore it, RFC 9112 §4).
    // Only a visible-ASCII phrase is sure to travel byte for byte (undici decodes it as UTF-8); any other
    // falls back to the standard phrase, which clients may use anyway.
    const custom = reason !== (STATUS_CODES[status] ?? '') && reason.length <= 512 && ASCII_REASON.test(reason);
    const response: AppResponse = custom ? { status, reason, headers, body } : { status, headers, body };
    if (trailers.length > 0) response.trailers = trailers;
    return response;
  }

  private replacePool(): void {
    const old = this.pool;
    this.pool = this.newPool();
    void old.close().catch(() => undefined);
  }

  /**
   * From now on a request the app refuses to connect for (never sent) is not retried but handed
   * back (HandedBackError): the sidecar is stopping, and the app it serves has usually stopped
   * first (native sidecars get SIGTERM after the app exited), so retrying would hold the request
   * until the pod's grace period ends. Only for brokers that requeue a rejected delivery.
   */
  handBackUnsent(): void {
    this.handingBack = true;
  }

  close(): void {
    void this.pool.destroy();
  }
}

function statusProblem(status: number): string {
  return `the app answered status ${status}; only 200–599 can be forwarded`;
}
