/**
 * A submit that names a callback (Kueuer-Callback-Url, docs/async-callbacks.md):
 * checked against the Service's callback settings before anything is queued,
 * and taken off the request so the app never sees it. A request answered
 * synchronously that names one is refused (requestNamesCallback).
 */
import type { IncomingMessage } from 'node:http';
import { CALLBACK_URL_HEADER, checkCallbackSubmit, type CallbackDispatcher, type SubmitCheck } from '../callbacks/index.js';
import type { Answer } from '../answer.js';
import type { RouteCallbacks } from '../config.js';
import type { ReadRequest } from '../read-request.js';

export interface AsyncCallbacks {
  /** Absent: the responder sends no callbacks (a request naming one is refused). */
  dispatcher?: CallbackDispatcher;
  /** The Service's settings; absent: none allowed. */
  route?: RouteCallbacks;
}

export type CallbackOfSubmit = { ok: true; url?: string; request: ReadRequest } | { ok: false };

const NONE: RouteCallbacks['settings'] = { ok: true, value: undefined };

/** Whether a request names a callback. */
export function requestNamesCallback(req: IncomingMessage): boolean {
  return req.headers[CALLBACK_URL_HEADER] !== undefined;
}

async function check(c: AsyncCallbacks, header: string | string[], id: string): Promise<SubmitCheck> {
  const settings = c.route?.settings ?? NONE;
  if (c.dispatcher && c.route) return c.dispatcher.checkSubmit(header, settings, c.route.namespace, id);
  const checked = checkCallbackSubmit(header, settings, id);
  if (!checked.ok || !checked.target) return checked;
  // Allowed by the Service, but this responder was started without a dispatcher (no way to sign).
  return checkCallbackSubmit(header, { ok: false, problems: ['this responder sends no callbacks (started without a signing key source)'] }, id);
}

/** The callback URL to store and the request without its header; or ok: false once the refusal is answered. */
export async function callbackOfSubmit(c: AsyncCallbacks, req: IncomingMessage, answer: Answer, request: ReadRequest): Promise<CallbackOfSubmit> {
  const header = req.headers[CALLBACK_URL_HEADER];
  if (header === undefined) return { ok: true, request };
  const checked = await check(c, header, answer.id);
  if (!checked.ok) {
    answer.log().info({ status: checked.status, reason: checked.message }, 'refused a callback');
    answer.send(checked.status, [['content-type', 'application/json']], checked.body);
    return { ok: false };
  }
  const headers = request.headers.filter(([name]) => name.toLowerCase() !== CALLBACK_URL_HEADER);
  return { ok: true, ...(checked.target ? { url: checked.target.url.href } : {}), request: { ...request, headers } };
}
