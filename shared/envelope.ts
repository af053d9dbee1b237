/**
 * The one definition of what travels through the broker, shared by the
 * responder and the sidecar. A message is string metadata beside a raw body:
 * every broker carries metadata natively (AMQP headers, Kafka headers), so the
 * body stays binary and is never base64-encoded into JSON.
 *
 * Encoding and decoding are pure; decoding validates every field, because a
 * message on a queue is input like any other.
 */
import { KueuerError } from './errors.js';
import type { HeaderPairs } from './http-headers.js';
import { isRequestId } from './request-id.js';

export const ENVELOPE_VERSION = '1';

/** What a transport carries. */
export interface WireMessage {
  meta: Record<string, string>;
  body: Buffer;
}

export interface QueuedRequest {
  id: string;
  /** The queue the request was published to; a reply must name the same queue. */
  queue: string;
  /** Opaque transport address of the responder replica that holds the client. */
  replyTo: string;
  /** Epoch milliseconds after which nobody waits for the answer. */
  deadline: number;
  /** Epoch milliseconds when the responder published it (queue-wait metric). */
  enqueuedAt: number;
  method: string;
  /** Path with query string, as the client sent it. */
  path: string;
  headers: HeaderPairs;
  body: Buffer;
}

export interface QueuedResponse {
  id: string;
  queue: string;
  status: number;
  headers: HeaderPairs;
  body: Buffer;
}

/** Metadata keys, kept short and prefixed so they never clash with broker headers. */
export const META = {
  version: 'kueuer-v',
  type: 'kueuer-type',
  id: 'kueuer-id',
  queue: 'kueuer-queue',
  replyTo: 'kueuer-reply-to',
  deadline: 'kueuer-deadline',
  enqueuedAt: 'kueuer-enqueued-at',
  method: 'kueuer-method',
  path: 'kueuer-path',
  headers: 'kueuer-headers',
  status: 'kueuer-status',
} as const;

/** Size limits on envelope fields; AMQP header tables are capped at 64 KiB in all. */
export const LIMITS = {
  headersJsonBytes: 48 * 1024,
  pathBytes: 8 * 1024,
  fieldBytes: 512,
} as const;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function isValidQueueName(name: string): boolean {
  return QUEUE_NAME.test(name);
}

export function encodeRequest(req: QueuedRequest): WireMessage {
  return {
    meta: {
      [META.version]: ENVELOPE_VERSION,
      [META.type]: 'request',
      [META.id]: req.id,
      [META.queue]: req.queue,
      [META.replyTo]: req.replyTo,
      [META.deadline]: String(req.deadline),
      [META.enqueuedAt]: String(req.enqueuedAt),
      [META.method]: req.method,
      [META.path]: req.path,
      [META.headers]: JSON.stringify(req.headers),
    },
    body: req.body,
  };
}

export function encodeResponse(res: QueuedResponse): WireMessage {
  return {
    meta: {
      [META.version]: ENVELOPE_VERSION,
      [META.type]: 'response',
      [META.id]: res.id,
      [META.queue]: res.queue,
      [META.status]: String(res.status),
      [META.headers]: JSON.stringify(res.headers),
    },
    body: res.body,
  };
}

export function decodeRequest(msg: WireMessage): QueuedRequest {
  const meta = msg.meta;
  checkVersionAndType(meta, 'request');
  const path = field(meta, META.path, LIMITS.pathBytes);
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (!(path.startsWith('/') || path === '*') || /[\s\u0000-\u001f\u007f]/.test(path)) {
    throw envelopeError(`${META.path} must be an origin-form path without whitespace`);
  }
  const method = field(meta, META.method);
  if (!TOKEN.test(method)) throw envelopeError(`${META.method} is not an HTTP method token`);
  return {
    id: requestId(meta),
    queue: queueName(meta),
    replyTo: field(meta, META.replyTo),
    deadline: epochMillis(meta, META.deadline),
    enqueuedAt: epochMillis(meta, META.enqueuedAt),
    method,
    path,
    headers: headerPairs(meta),
    body: msg.body,
  };
}

export function decodeResponse(msg: WireMessage): QueuedResponse {
  const meta = msg.meta;
  checkVersionAndType(meta, 'response');
  const status = Number(field(meta, META.status));
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw envelopeError(`${META.status} must be an integer from 200 to 599`);
  }
  return { id: requestId(meta), queue: queueName(meta), status, headers: headerPairs(meta), body: msg.body };
}

function checkVersionAndType(meta: Record<string, string>, type: 'request' | 'response'): void {
  const version = meta[META.version];
  if (version !== ENVELOPE_VERSION) {
    throw envelopeError(`unsupported envelope version ${JSON.stringify(version ?? null)}; this build speaks ${ENVELOPE_VERSION}`);
  }
  if (meta[META.type] !== type) throw envelopeError(`expected a ${type} envelope, got ${JSON.stringify(meta[META.type] ?? null)}`);
}

function field(meta: Record<string, string>, key: string, maxBytes: number = LIMITS.fieldBytes): string {
  const value = meta[key];
  if (typeof value !== 'string' || value.length === 0) throw envelopeError(`${key} is missing`);
  if (Buffer.byteLength(value) > maxBytes) throw envelopeError(`${key} is longer than ${maxBytes} bytes`);
  return value;
}

function requestId(meta: Record<string, string>): string {
  const id = field(meta, META.id);
  if (!isRequestId(id)) throw envelopeError(`${META.id} must be 32 lowercase hex digits`);
  return id;
}

function queueName(meta: Record<string, string>): string {
  const queue = field(meta, META.queue);
  if (!isValidQueueName(queue)) throw envelopeError(`${META.queue} is not a valid queue name`);
  return queue;
}

function epochMillis(meta: Record<string, string>, key: string): number {
  const n = Number(field(meta, key));
  if (!Number.isSafeInteger(n) || n < 0) throw envelopeError(`${key} must be epoch milliseconds`);
  return n;
}

function headerPairs(meta: Record<string, string>): HeaderPairs {
  const json = field(meta, META.headers, LIMITS.headersJsonBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw envelopeError(`${META.headers} is not valid JSON`);
  }
  if (!Array.isArray(parsed)) throw envelopeError(`${META.headers} must be an array of [name, value] pairs`);
  for (const pair of parsed) {
    if (
      !Array.isArray(pair) ||
      pair.length !== 2 ||
      typeof pair[0] !== 'string' ||
      typeof pair[1] !== 'string' ||
      !TOKEN.test(pair[0]) ||
      /[\r\n\0]/.test(pair[1])
    ) {
      throw envelopeError(`${META.headers} holds an invalid header pair`);
    }
  }
  return parsed as HeaderPairs;
}

function envelopeError(message: string): KueuerError {
  return new KueuerError('KUEUER_ERR_ENVELOPE', `invalid envelope: ${message}`);
}
