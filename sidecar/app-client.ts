/**
 * Calls the app on localhost with a keep-alive undici pool sized to the
 * sidecar's concurrency (undici rather than node:http: the benchmark showed
 * ~1.6× the throughput through `kueuer local`). Connection refused or reset before a response is retried with
 * backoff until shortly before the request's deadline; any HTTP response,
 * 5xx included, is the app's answer and passes through unchanged.
 */
import { Pool } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';
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
import { backoffMs, isRetryableConnectError } from './retry-policy.js';

export interface AppResponse {
  status: number;
  headers: HeaderPairs;
  body: Buffer;
}

export type AppOutcome =
  | { kind: 'response'; response: AppResponse; attempts: number }
  /** The app could not be reached before the deadline. */
  | { kind: 'unreachable'; error: string; attempts: number }
  /** The app took the request but did not answer before the deadline. */
  | { kind: 'timeout'; attempts: number }
  /** The app's response body is over the size limit. */
  | { kind: 'too_large'; attempts: number };

/** Stop retrying this long before the deadline, so the 502 still reaches the client. */
const ANSWER_MARGIN_MS = 250;

class ResponseTooLarge extends Error {}
class DeadlineReached extends Error {}

export class AppClient {
  private readonly pool: Pool;

  constructor(
    private readonly target: HostPort,
    concurrency: number,
    private readonly maxBodyBytes: number,
  ) {
    this.pool = new Pool(`http://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`, { connections: concurrency, pipelining: 1 });
  }

  async call(req: QueuedRequest, redelivered: boolean, log: Logger, onRetry: () => void): Promise<AppOutcome> {
    // The body was buffered whole, so its length is known exactly.
    // Expect: 100-continue was settled with the client before the body was queued.
    const headers = withoutHeader(withoutHeader(forwardableHeaders(req.headers), 'content-length'), 'expect');
    headers.push([REQUEST_ID_HEADER, req.id], [DEADLINE_HEADER, new Date(req.deadline).toISOString()]);
    if (redelivered) headers.push([REDELIVERED_HEADER, 'true']);
    if (req.body.length > 0 || !['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE'].includes(req.method)) {
      headers.push(['content-length', String(req.body.length)]);
    }
    const flat = flattenPairs(headers);
    for (let attempt = 1; ; attempt++) {
      const remaining = req.deadline - Date.now();
      if (remaining <= 0) return { kind: 'timeout', attempts: attempt - 1 };
      try {
        const response = await this.once(req, flat, remaining);
        return { kind: 'response', response, attempts: attempt };
      } catch (err) {
        if (err instanceof ResponseTooLarge) return { kind: 'too_large', attempts: attempt };
        if (err instanceof DeadlineReached) return { kind: 'timeout', attempts: attempt };
        const wait = backoffMs(attempt);
        const retryable = isRetryableConnectError(err);
        if (!retryable || Date.now() + wait >= req.deadline - ANSWER_MARGIN_MS) {
          return { kind: 'unreachable', error: (err as Error).message, attempts: attempt };
        }
        onRetry();
        log.warn({ err: (err as Error).message, attempt, retryInMs: wait }, 'app unreachable; retrying');
        await sleep(wait);
      }
    }
  }

  private async once(req: QueuedRequest, flatHeaders: string[], timeoutMs: number): Promise<AppResponse> {
    const signal = AbortSignal.timeout(timeoutMs);
    let res;
    try {
      res = await this.pool.request({
        method: req.method,
        path: req.path,
        headers: flatHeaders,
        body: req.body.length > 0 ? req.body : null,
        responseHeaders: 'raw',
        signal,
        headersTimeout: 0,
        bodyTimeout: 0,
      });
    } catch (err) {
      if (signal.aborted) throw new DeadlineReached();
      throw (err as { cause?: unknown }).cause ?? err;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > this.maxBodyBytes) {
          res.body.destroy();
          throw new ResponseTooLarge();
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (signal.aborted) throw new DeadlineReached();
      throw err;
    }
    const raw = (res.headers as unknown as Array<Buffer | string>).map((h) => h.toString());
    return { status: res.statusCode, headers: forwardableHeaders(pairsFromRaw(raw)), body: Buffer.concat(chunks, size) };
  }

  close(): void {
    void this.pool.destroy();
  }
}
