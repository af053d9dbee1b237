/**
 * The submit-time check of a request that names a callback: the target to
 * store with the request, or the answer to send instead of queueing it
 * (error catalogue: callback_not_allowed, callback_misconfigured).
 */
import type { Parsed } from '../../shared/annotations.js';
import { checkCallbackUrl, type CallbackTarget, type CallbackUrlRule } from './callback-url.js';
import type { CallbackSettings } from './settings.js';

export type SubmitCheck = { ok: true; target?: CallbackTarget } | { ok: false; status: number; body: Buffer; message: string };

function notAllowed(rule: CallbackUrlRule, message: string, requestId: string): SubmitCheck {
  return { ok: false, status: 400, message, body: Buffer.from(JSON.stringify({ error: 'callback_not_allowed', rule, message, requestId })) };
}

/** A Service whose callback annotations do not parse: the client is told, the message names the annotation. */
export function misconfigured(message: string, requestId: string): SubmitCheck {
  return { ok: false, status: 500, message, body: Buffer.from(JSON.stringify({ error: 'callback_misconfigured', message, requestId })) };
}

/**
 * `header`: the Kueuer-Callback-Url value(s) (undefined: no callback asked);
 * `settings`: parseCallbackSettings of the Service's annotations, parsed once
 * per Service change.
 */
export function checkCallbackSubmit(
  header: string | readonly string[] | undefined,
  settings: Parsed<CallbackSettings | undefined>,
  requestId: string,
): SubmitCheck {
  if (header === undefined) return { ok: true };
  if (!settings.ok) return misconfigured(`the Service's callback annotations are invalid: ${settings.problems.join('; ')}`, requestId);
  const check = checkCallbackUrl(header, settings.value?.allow ?? { entries: [] });
  return check.ok ? { ok: true, target: check.target } : notAllowed(check.rule, check.message, requestId);
}
