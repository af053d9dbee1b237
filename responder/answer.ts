/**
 * The response writer of one request: writes its one answer (the app's, or a
 * Kueuer error from the catalogue), bounds how long the client may take to
 * read it, and counts and logs it. Every later answer is ignored.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { errorBody, type ClientErrorCode } from '../shared/error-catalogue.js';
import type { HeaderPairs } from '../shared/http-headers.js';
import type { ResponderMetrics } from './metrics.js';
import { writeResponse, type WriteOptions } from './write-response.js';

export interface AnswerContext {
  sendTimeoutMs: number;
  metrics: ResponderMetrics;
  log: Logger;
  /** Clients held now, for the gauge. */
  heldCount: () => number;
}

export interface Answer {
  readonly id: string;
  /** True once answered, or given up because the client left. */
  readonly done: boolean;
  /** The request's logger, made on first use: most requests log nothing at the default level. */
  log(): Logger;
  send(status: number, headers: HeaderPairs, body: Buffer, how?: WriteOptions): void;
  /** A Kueuer error answer: JSON from the catalogue, with the request id. */
  fail(status: number, error: ClientErrorCode, message: string, extra?: HeaderPairs, how?: WriteOptions): void;
  /** Marks the request done without an answer (its client is gone); false if it was already done. */
  abandon(): boolean;
}

export function newAnswer(res: ServerResponse, id: string, ctx: AnswerContext): Answer {
  const started = process.hrtime.bigint();
  let child: Logger | undefined;
  let done = false;
  const log = (): Logger => (child ??= ctx.log.child({ reqId: id }));
  const send = (status: number, headers: HeaderPairs, body: Buffer, how: WriteOptions = {}): void => {
    if (done) return;
    done = true;
    writeResponse(res, id, status, headers, body, how);
    if (!res.writableFinished && !res.destroyed) {
      // A client that does not read its answer must not hold it (and its buffer) for ever.
      const timer = setTimeout(() => {
        ctx.metrics.sendTimeout();
        log().warn({ timeoutMs: ctx.sendTimeoutMs }, 'the client did not read its answer within --send-timeout; disconnected');
        res.destroy();
      }, ctx.sendTimeoutMs);
      res.once('close', () => clearTimeout(timer));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    ctx.metrics.answered(status, seconds);
    ctx.metrics.pendingSet(ctx.heldCount());
    if (ctx.log.isLevelEnabled('info')) log().info({ status, ms: Math.round(seconds * 1000) }, 'answered');
  };
  return {
    id,
    get done() {
      return done;
    },
    log,
    send,
    fail(status, error, message, extra = [], how = {}) {
      send(status, [['content-type', 'application/json'], ...extra], errorBody(error, message, id), how);
    },
    abandon() {
      if (done) return false;
      done = true;
      return true;
    },
  };
}
