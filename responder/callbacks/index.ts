/**
 * Async callbacks (issue 24, point 3): what the async request code calls.
 * - at submit: parseCallbackSettings(service annotations), once per Service
 *   change; then dispatcher.checkSubmit(header, settings, namespace, id);
 * - when a result is stored: dispatcher.deliver(job).
 * docs/async-callbacks.md describes the header, the annotations, the
 * signature and the delivery rules.
 */
export { CALLBACK_URL_HEADER, checkCallbackUrl, type CallbackTarget, type CallbackUrlRule } from './callback-url.js';
export { CallbackDispatcher, type CallbackDispatcherOptions, type CallbackJob, type DeadLetterRecord } from './dispatcher.js';
export { kubeReadSecret, type SecretReader } from './kube-secret.js';
export type { DeadLetterReason } from './metrics.js';
export type { CallbackResponse } from './policy.js';
export { parseCallbackSettings, type CallbackSettings, type ReadSecret } from './settings.js';
export { signCallback, verifyCallback, SIGNATURE_HEADERS } from './signature.js';
export { checkCallbackSubmit, type SubmitCheck } from './submit.js';
