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
import { headersProblem, isToken, REQUEST_LIMITS, responseHeadersProblem, targetProblem, type RequestProblem } from './request-rules.js';

/**
 * Version 2 adds trailers (`kueuer-trailers`). A message without trailers is
 * written as version 1, byte for byte what version 1 wrote, so components of
 * the previous release still read it during a rolling upgrade; both versions
 * decode here.
 */
export const ENVELOPE_VERSION = '2';
const VERSIONS_READ = new Set(['1', ENVELOPE_VERSION]);

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
  /** The client's trailer fields (after a chunked body), when it sent any. */
  trailers?: HeaderPairs;
}

export interface QueuedResponse {
  id: string;
  queue: string;
  status: number;
  /** The reason phrase the app sent, when it is not the standard one for the status. */
  reason?: string;
  headers: HeaderPairs;
  body: Buffer;
  /** The app's trailer fields, when it sent any. */
  trailers?: HeaderPairs;
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
  reason: 'kueuer-reason',
  trailers: 'kueuer-trailers',
} as const;

/**
 * Size limits on envelope fields. Path and headers are the request rules'
 * limits (the responder refuses larger requests before publishing); together
 * they stay well inside one AMQP frame (128 KiB by default).
 */
export const LIMITS = {
  headersJsonBytes: REQUEST_LIMITS.headersJsonBytes,
  pathBytes: REQUEST_LIMITS.targetBytes,
  fieldBytes: 512,
} as const;

/** RFC 9112 reason-phrase octets: HTAB, SP, visible ASCII and obs-text. */
const REASON_PHRASE = /^[\t\u0020-\u007e\u0080-\u00ff]*$/;

/** Where the answer to a request goes: enough to answer it even when its content is refused. */
export interface ReplyRoute {
  id: string;
  queue: string;
  replyTo: string;
  deadline: number;
}

/**
 * A request envelope whose routing is valid but whose method, target or
 * headers could not be replayed to the app. The sidecar answers it with the
 * problem's status instead of leaving the client to its deadline.
 */
export class UnforwardableRequestError extends KueuerError {
  constructor(
    readonly route: ReplyRoute,
    readonly problem: RequestProblem,
    field: string,
  ) {
    super('KUEUER_ERR_ENVELOPE', `invalid envelope: ${field}: ${problem.message}`);
  }
}
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function isValidQueueName(name: string): boolean {
  return QUEUE_NAME.test(name);
}

/** What every envelope starts with (checkVersionAndType reads it back): version 1 unless there are trailers to carry, type, id and queue. */
function envelopeHead(type: 'request' | 'response', msg: QueuedRequest | QueuedResponse): Record<string, string> {
  const { trailers } = msg;
  const version: Record<string, string> =
    trailers && trailers.length > 0 ? { [META.version]: ENVELOPE_VERSION, [META.trailers]: JSON.stringify(trailers) } : { [META.version]: '1' };
  return { ...version, [META.type]: type, [META.id]: msg.id, [META.queue]: msg.queue };
}

export function encodeRequest(req: QueuedRequest): WireMessage {
  return {
    meta: {
      ...envelopeHead('request', req),
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
      ...envelopeHead('response', res),
      [META.status]: String(res.status),
      [META.headers]: JSON.stringify(res.headers),
      ...(res.reason !== undefined ? { [META.reason]: res.reason } : {}),
    },
    body: res.body,
  };
}

export function decodeRequest(msg: WireMessage): QueuedRequest {
  const meta = msg.meta;
  checkVersionAndType(meta, 'request');
  const route: ReplyRoute = {
    id: requestId(meta),
    queue: queueName(meta),
    replyTo: field(meta, META.replyTo),
    deadline: epochMillis(meta, META.deadline),
  };
  const enqueuedAt = epochMillis(meta, META.enqueuedAt);
  const refuse = (key: string, problem: RequestProblem): never => {
    throw new UnforwardableRequestError(route, problem, key);
  };
  const method = meta[META.method] ?? '';
  if (!isToken(method) || method.length > LIMITS.fieldBytes)
    refuse(META.method, { code: 'invalid_target', status: 400, message: 'the method is not an HTTP method token' });
  const path = meta[META.path] ?? '';
  const pathProblem = targetProblem(path);
  if (pathProblem) refuse(META.path, pathProblem);
  const headersJson = meta[META.headers] ?? '';
  const headers = headerPairs(headersJson);
  if (!headers) refuse(META.headers, { code: 'invalid_header', status: 400, message: 'not a JSON array of [name, value] string pairs' });
  const headerProblem = headersProblem(headers!, Buffer.byteLength(headersJson));
  if (headerProblem) refuse(META.headers, headerProblem);
  const trailers = trailerPairs(meta);
  if (trailers === null) refuse(META.trailers, { code: 'invalid_header', status: 400, message: 'the trailer fields cannot be forwarded' });
  return { ...route, enqueuedAt, method, path, headers: headers!, body: msg.body, ...(trailers ? { trailers } : {}) };
}

export function decodeResponse(msg: WireMessage): QueuedResponse {
  const meta = msg.meta;
  checkVersionAndType(meta, 'response');
  const status = Number(field(meta, META.status));
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw envelopeError(`${META.status} must be an integer from 200 to 599`);
  }
  const headers = headerPairs(field(meta, META.headers, LIMITS.headersJsonBytes));
  if (!headers || responseHeadersProblem(headers)) throw envelopeError(`${META.headers} holds an invalid header pair`);
  const reason = meta[META.reason];
  if (reason !== undefined && (Buffer.byteLength(reason) > LIMITS.fieldBytes || !REASON_PHRASE.test(reason))) {
    throw envelopeError(`${META.reason} must be a reason phrase of visible characters, spaces and tabs`);
  }
  const trailers = trailerPairs(meta);
  if (trailers === null) throw envelopeError(`${META.trailers} holds an invalid trailer field`);
  return {
    id: requestId(meta),
    queue: queueName(meta),
    status,
    ...(reason !== undefined ? { reason } : {}),
    headers,
    body: msg.body,
    ...(trailers ? { trailers } : {}),
  };
}

function checkVersionAndType(meta: Record<string, string>, type: 'request' | 'response'): void {
  const version = meta[META.version];
  if (version === undefined || !VERSIONS_READ.has(version)) {
    throw envelopeError(`unsupported envelope version ${JSON.stringify(version ?? null)}; this build reads ${[...VERSIONS_READ].join(' and ')}`);
  }
  if (version === '1' && meta[META.trailers] !== undefined) throw envelopeError(`${META.trailers} needs envelope version ${ENVELOPE_VERSION}`);
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

/**
 * The trailer fields: undefined when there are none, null when they are not
 * valid fields (names, values and size under the header rules; any name may repeat).
 */
function trailerPairs(meta: Record<string, string>): HeaderPairs | undefined | null {
  const json = meta[META.trailers];
  if (json === undefined) return undefined;
  if (Buffer.byteLength(json) > LIMITS.headersJsonBytes) return null;
  const pairs = headerPairs(json);
  if (!pairs || pairs.length === 0 || responseHeadersProblem(pairs, Buffer.byteLength(json))) return null;
  return pairs;
}

/** The header list, or null when it is not a JSON array of [string, string] pairs. */
function headerPairs(json: string): HeaderPairs | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return null;
  }
  if (!Array.isArray(parsed)) return null;
  for (const pair of parsed) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') return null;
  }
  return parsed as HeaderPairs;
}

function envelopeError(message: string): KueuerError {
  return new KueuerError('KUEUER_ERR_ENVELOPE', `invalid envelope: ${message}`);
}
