/**
 * Every error a client or an operator can see, by code, with what it means
 * and what to do. Two families:
 * - `KUEUER_ERR_*`: typed errors (shared/errors.ts) in logs and start-up
 *   failures, in the style of fastify's `FST_ERR_*`;
 * - lower-case codes: the `error` field of the JSON bodies clients get.
 * docs/errors.md is rendered from this list, and a test keeps both in step
 * with the codes the sources use.
 */
import type { KueuerErrorCode } from './errors.js';

export interface CatalogueEntry {
  /** HTTP status, for client-visible codes. */
  status?: number;
  meaning: string;
  action: string;
}

export const OPERATOR_ERRORS: Record<KueuerErrorCode, CatalogueEntry> = {
  KUEUER_ERR_CONFIG: { meaning: 'A flag or KUEUER_* variable has a bad value; the process exits 2 naming both.', action: 'Fix the value the message names (README lists every flag, its variable and default).' },
  KUEUER_ERR_BACKEND_URL: { meaning: '`--backend` is not `memory`, an amqp(s):// URL or kafka://host:port, or carries credentials where they are refused.', action: 'Use one of the documented forms; put Kafka credentials in KUEUER_KAFKA_* variables or files.' },
  KUEUER_ERR_BROKER_UNAVAILABLE: { meaning: 'The broker is not connected, refused an operation, or (Kafka) forbids creating a topic.', action: 'Check the broker and the credentials; components reconnect by themselves. For topic ACLs, create the topic the message names.' },
  KUEUER_ERR_PUBLISH_TIMEOUT: { meaning: 'The broker did not confirm a request or reply in time.', action: 'Look at broker load and disk alarms; raise --publish-timeout only if the broker is healthy but slow.' },
  KUEUER_ERR_TRANSPORT_CLOSED: { meaning: 'An operation reached a transport that was already closed (during shutdown).', action: 'None during shutdown; anywhere else it is a bug: report it with the log line.' },
  KUEUER_ERR_ENVELOPE: { meaning: 'A message on a Kueuer queue is not a valid envelope v1 (wrong version, field or size), or a reply destination is not a Kueuer one.', action: 'Find what else publishes to the queue; mixed Kueuer versions must share an envelope version.' },
  KUEUER_ERR_BROKER_REFUSED: { meaning: 'RabbitMQ answered and refused the connection: wrong user or password, or the vhost does not exist or the user has no permission on it. Not retried: the process exits 1 with the reason (at start-up, or after draining if it happens on a reconnect).', action: 'Fix the user, password or vhost in --backend (KUEUER_BACKEND), or create the vhost and grant the user access (rabbitmqctl add_vhost / set_permissions).' },
};

export const CLIENT_ERRORS: Record<string, CatalogueEntry> = {
  deadline_exceeded: { status: 504, meaning: 'No answer from the app before the request deadline (`--timeout`, or the Service\'s kueuer.io/timeout).', action: 'Retry later, or raise the timeout if the app is legitimately that slow; the request may still run once.' },
  body_too_large: { status: 413, meaning: 'The request body is over `--max-body`; the connection is closed.', action: 'Send a smaller body or raise --max-body (at most 100 MiB).' },
  broker_unavailable: { status: 503, meaning: 'The broker is unreachable or did not confirm in time; nothing was queued. Sent with Retry-After.', action: 'Retry after the Retry-After delay; operators: see KUEUER_ERR_BROKER_UNAVAILABLE.' },
  too_many_pending: { status: 503, meaning: 'This responder replica already holds `--max-pending` clients. Sent with Retry-After.', action: 'Retry after the delay; operators: add responder replicas or raise --max-pending.' },
  app_unreachable: { status: 502, meaning: 'The sidecar could not connect to the app until shortly before the deadline (retried with backoff).', action: 'Check that the app listens on kueuer.io/app-port and is not crash-looping.' },
  response_too_large: { status: 502, meaning: 'The app\'s response body is over the sidecar\'s `--max-response`.', action: 'Return less, or raise --max-response (at most 100 MiB).' },
  bad_admission_review: { status: 400, meaning: 'The webhook got a body that is not an AdmissionReview v1.', action: 'Only the apiserver should call /mutate; check the MutatingWebhookConfiguration\'s path and version.' },
  unknown_queue: { status: 404, meaning: 'The /backlog endpoint was asked for a queue Kueuer does not scale.', action: 'Use the queue of an annotated workload (<namespace>.<queue>).' },
};

export function renderCatalogue(): string {
  const row = (code: string, e: CatalogueEntry) => `| \`${code}\` |${e.status ? ` ${e.status} |` : ''} ${e.meaning} | ${e.action} |`;
  return [
    '# Error catalogue',
    '',
    'Generated from `shared/error-catalogue.ts` (a test keeps it in step with the sources).',
    '',
    '## In logs and start-up failures',
    '',
    '| code | meaning | what to do |',
    '|---|---|---|',
    ...Object.entries(OPERATOR_ERRORS).map(([c, e]) => row(c, e)),
    '',
    '## In JSON answers to clients (`{"error": code, "message": …, "requestId": …}`)',
    '',
    '| code | status | meaning | what to do |',
    '|---|---|---|---|',
    ...Object.entries(CLIENT_ERRORS).map(([c, e]) => row(c, e)),
    '',
  ].join('\n');
}
