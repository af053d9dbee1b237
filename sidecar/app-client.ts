/**
 * Calls the app on localhost with a keep-alive pool sized to the sidecar's
 * concurrency. Connection refused or reset before a response is retried with
 * backoff until shortly before the request's deadline; any HTTP response,
 * 5xx included, is the app's answer and passes through unchanged.
 */
import http from 'node:http';
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

export class AppClient {
  private readonly agent: http.Agent;

  constructor(
    private readonly target: HostPort,
    concurrency: number,
    private readonly maxBodyBytes: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency, scheduling: 'lifo' });
  }

  async call(req: QueuedRequest, redelivered: boolean, log: Logger, onRetry: () => void): Promise<AppOutcome> {
    // The body was buffered whole, so its length is known exactly.
    const headers = withoutHeader(forwardableHeaders(req.headers), 'content-length');
    headers.push([REQUEST_ID_HEADER, req.id], [DEADLINE_HEADER, new Date(req.deadline).toISOString()]);
    if (redelivered) headers.push([REDELIVERED_HEADER, 'true']);
    if (req.body.length > 0 || !['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE'].includes(req.method)) {
      headers.push(['content-length', String(req.body.length)]);
    }
    const flat = flattenPairs(headers);
    for (let attempt = 1; ; attempt++) {
      const remaining = req.deadline - Date.now();
      if (remaining <= 0) return { kind: 'timeout', attempts: attempt - 1 };
      const signal = AbortSignal.timeout(remaining);
      try {
        const response = await this.once(req, flat, signal);
        return { kind: 'response', response, attempts: attempt };
      } catch (err) {
        if (err instanceof ResponseTooLarge) return { kind: 'too_large', attempts: attempt };
        if (signal.aborted) return { kind: 'timeout', attempts: attempt };
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

  private once(req: QueuedRequest, flatHeaders: string[], signal: AbortSignal): Promise<AppResponse> {
    return new Promise((resolve, reject) => {
      const outgoing = http.request({
        host: this.target.host,
        port: this.target.port,
        method: req.method,
        path: req.path,
        headers: flatHeaders,
        agent: this.agent,
        signal,
        setHost: false,
      });
      outgoing.on('error', reject);
      outgoing.on('response', (incoming) => {
        const chunks: Buffer[] = [];
        let size = 0;
        incoming.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxBodyBytes) {
            incoming.destroy();
            reject(new ResponseTooLarge());
            return;
          }
          chunks.push(chunk);
        });
        incoming.on('error', reject);
        incoming.on('end', () =>
          resolve({
            status: incoming.statusCode ?? 502,
            headers: forwardableHeaders(pairsFromRaw(incoming.rawHeaders)),
            body: Buffer.concat(chunks, size),
          }),
        );
      });
      outgoing.end(req.body.length > 0 ? req.body : undefined);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
