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
  KUEUER_ERR_CONFIG: {
    meaning: 'A flag or KUEUER_* variable has a bad value; the process exits 2 naming both.',
    action: 'Fix the value the message names (README lists every flag, its variable and default).',
  },
  KUEUER_ERR_BACKEND_URL: {
    meaning: '`--backend` is not `memory`, an amqp(s):// URL or kafka://host:port, or carries credentials where they are refused.',
    action: 'Use one of the documented forms; put Kafka credentials in KUEUER_KAFKA_* variables or files.',
  },
  KUEUER_ERR_BROKER_UNAVAILABLE: {
    meaning: 'The broker is not connected, refused an operation, or (Kafka) forbids creating a topic.',
    action: 'Check the broker and the credentials; components reconnect by themselves. For topic ACLs, create the topic the message names.',
  },
  KUEUER_ERR_PUBLISH_TIMEOUT: {
    meaning: 'The broker did not confirm a request or reply in time.',
    action: 'Look at broker load and disk alarms; raise --publish-timeout only if the broker is healthy but slow.',
  },
  KUEUER_ERR_TRANSPORT_CLOSED: {
    meaning: 'An operation reached a transport that was already closed (during shutdown).',
    action: 'None during shutdown; anywhere else it is a bug: report it with the log line.',
  },
  KUEUER_ERR_REPLY_INBOX_GONE: {
    meaning:
      "A reply's destination inbox does not exist (its responder replica died or is reconnecting). The sidecar retries for a few seconds, then drops the reply and acks the request (counted in kueuer_sidecar_replies_dropped_total); the app is not run again.",
    action:
      'None for a responder that died: its clients were cut anyway. If it repeats while responders are healthy, check that responders and sidecars use the same broker and vhost.',
  },
  KUEUER_ERR_ENVELOPE: {
    meaning:
      'A message on a Kueuer queue is not a valid envelope (v1, or v2 with trailers: wrong version, field or size), or a reply destination is not a Kueuer one.',
    action:
      'Find what else publishes to the queue; a release reads the envelope versions of the previous one (v2 adds trailers; a message without trailers is still written as v1).',
  },
  KUEUER_ERR_BROKER_REFUSED: {
    meaning:
      'RabbitMQ answered and refused the connection: wrong user or password, or the vhost does not exist or the user has no permission on it. Not retried: the process exits 1 with the reason (at start-up, or after draining if it happens on a reconnect).',
    action:
      'Fix the user, password or vhost in --backend (KUEUER_BACKEND), or create the vhost and grant the user access (rabbitmqctl add_vhost / set_permissions).',
  },
  KUEUER_ERR_KUBERNETES_UNAVAILABLE: {
    meaning:
      'The webhook found no Kubernetes configuration (no $KUBECONFIG, no ~/.kube/config, not in a pod with a ServiceAccount), or could not reach the API server it names; it exits 1 naming the server and the cause.',
    action:
      'Set KUBECONFIG to a kubeconfig file, or run the webhook in the cluster with its ServiceAccount (manifests/); for an unreachable server, check the address, DNS and the network path.',
  },
  KUEUER_ERR_TLS_FILES: {
    meaning:
      'A webhook --tls-cert / --tls-key file is missing, unreadable, not PEM, or the key does not match the certificate; checked before the Kubernetes API is contacted.',
    action:
      "Point --tls-cert and --tls-key (KUEUER_TLS_CERT, KUEUER_TLS_KEY) at the PEM files of the serving certificate, e.g. the mounted Secret's tls.crt and tls.key.",
  },
  KUEUER_ERR_QUEUE_FULL: {
    meaning:
      'The embedded queue of `kueuer local` (memory backend) already holds `--max-queued` waiting requests or `--max-queued-bytes` of them; the request is answered 503 queue_full and not queued.',
    action: 'Raise --concurrency if the app can take more at once, or raise the bounds if the machine has the memory; brokers are not bounded this way.',
  },
};

export const CLIENT_ERRORS = {
  deadline_exceeded: {
    status: 504,
    meaning: "No answer from the app before the request deadline (`--timeout`, or the Service's kueuer.io/timeout).",
    action: 'Retry later, or raise the timeout if the app is legitimately that slow; the request may still run once.',
  },
  reply_inbox_lost: {
    status: 504,
    meaning:
      "(RabbitMQ) The responder replica's reply inbox was deleted by the broker while the responder held this client: the responder's connection was cut for longer than the inbox's expiry (60 s, e.g. a network partition), or an operator deleted the queue. The answer can no longer reach this replica, so the client is answered at once instead of at its deadline; the request may have run, or may still run once. The responder logs the request ids and serves new requests on a fresh inbox.",
    action:
      "Retry (idempotently: the request may have run). Operators: find what cut the responder from RabbitMQ for that long (the responder's 'amqp reply inbox lost' log line names the inbox and the cause), and do not delete kueuer.reply.* queues of running responders.",
  },
  body_too_large: {
    status: 413,
    meaning:
      'The request body is over `--max-body`; the connection is closed after what the client still sends is read and discarded for a bounded amount and time (16 MiB, 10 s, 2 s idle), so a client still writing can read this answer.',
    action: 'Send a smaller body or raise --max-body (at most 100 MiB).',
  },
  broker_unavailable: {
    status: 503,
    meaning: 'The broker is unreachable or did not confirm in time; nothing was queued. Sent with Retry-After.',
    action: 'Retry after the Retry-After delay; operators: see KUEUER_ERR_BROKER_UNAVAILABLE.',
  },
  too_many_pending: {
    status: 503,
    meaning: 'This responder replica already holds `--max-pending` clients and requests being published. Sent with Retry-After.',
    action: 'Retry after the delay; operators: add responder replicas or raise --max-pending.',
  },
  queue_full: {
    status: 503,
    meaning:
      "The embedded queue (`kueuer local`'s memory backend) is at `--max-queued` requests or `--max-queued-bytes`; nothing was queued. Sent with Retry-After.",
    action: 'Retry after the delay; operators: see KUEUER_ERR_QUEUE_FULL.',
  },
  shutting_down: {
    status: 503,
    meaning:
      'The request reached a responder replica that is shutting down (SIGTERM, or its route was removed), on a connection opened before; nothing was queued. The connection is closed.',
    action: 'Retry: a new connection reaches a replica that is serving.',
  },
  invalid_target: {
    status: 400,
    meaning:
      'The request target is not a path starting with `/` (origin-form): `*`, absolute-form (`http://host/`) or authority-form; or it holds whitespace or control characters. Nothing was queued.',
    action: 'Send the path (and query) only, as clients do toward a server; the Host header names the host.',
  },
  uri_too_long: {
    status: 414,
    meaning: 'The request target (path and query) is over 16 KiB. Nothing was queued.',
    action: 'Send long parameters in the body (POST) instead of the query string.',
  },
  invalid_header: {
    status: 400,
    meaning: 'The request has more than one Host header, or a header name or value the app cannot be sent. Nothing was queued.',
    action: 'Fix the client: one Host header; names are tokens, values visible characters.',
  },
  headers_too_large: {
    status: 431,
    meaning:
      'The request headers take more than 48 KiB as queued (Node answers 431 itself past 128 KiB of request line and headers, or past 1,000 header fields; the message says which). Nothing was queued.',
    action: 'Send fewer or smaller headers (large cookies are the usual cause).',
  },
  body_timeout: {
    status: 408,
    meaning: 'The request body did not arrive within `--body-timeout` (default 30 s); the connection is closed and nothing was queued.',
    action: 'Retry on a faster link, or raise --body-timeout for slow uploads.',
  },
  upgrade_not_supported: {
    status: 501,
    meaning:
      'The request asks to switch protocols (`Upgrade`, e.g. WebSocket), which needs a live connection to the app; `Upgrade: h2c` is ignored instead. The connection is closed.',
    action: 'Serve WebSockets from a Service without kueuer.io/inject.',
  },
  malformed_request: {
    status: 400,
    meaning:
      "The request is not valid HTTP/1.1 as Node's parser reads it (request smuggling forms such as Content-Length with Transfer-Encoding, obs-fold, bare LF, NUL, HTTP/1.1 without Host). The connection is closed; nothing was queued.",
    action: "Fix the client or the proxy in front of it; the log line names the parser's reason.",
  },
  request_timeout: {
    status: 408,
    meaning:
      'The request line and headers did not arrive within `--headers-timeout` (default 60 s; answered within 1 s of it). The connection is closed; nothing was queued.',
    action: 'Retry; a client that trickles its headers is refused on purpose (slowloris).',
  },
  connect_not_supported: {
    status: 501,
    meaning: 'A CONNECT request (a tunnel) cannot be queued. The connection is closed.',
    action: 'Do not use the Service as a forward proxy.',
  },
  invalid_app_response: {
    status: 502,
    meaning:
      'The app answered something that cannot be forwarded: a status outside 200–599, a malformed or cut-off response, or headers over 48 KiB. Sent at once; the app is not called again.',
    action: "Fix the app's response; the sidecar log line names what was wrong.",
  },
  app_unreachable: {
    status: 502,
    meaning:
      'The sidecar could not connect to the app until shortly before the deadline (connection refused is retried with backoff), or the app closed the connection after it was sent the request (never retried: the app may have read it).',
    action: 'Check that the app listens on kueuer.io/app-port and is not crash-looping.',
  },
  response_too_large: {
    status: 502,
    meaning: "The app's response body is over the sidecar's `--max-response`.",
    action: 'Return less, or raise --max-response (at most 100 MiB).',
  },
  bad_admission_review: {
    status: 400,
    meaning: 'The webhook got a body that is not an AdmissionReview v1.',
    action: "Only the apiserver should call /mutate; check the MutatingWebhookConfiguration's path and version.",
  },
  drain_unauthorized: {
    status: 401,
    meaning: "A GET /drain on the sidecar's admin port without the pod's drain token (Authorization: Bearer …); the sidecar keeps consuming.",
    action: "Only the injected preStop hook should drain a sidecar; to drain by hand, send the token from the sidecar's KUEUER_DRAIN_TOKEN.",
  },
  drain_disabled: {
    status: 403,
    meaning: 'A GET /drain on a sidecar started without a drain token (--drain-token, KUEUER_DRAIN_TOKEN); /drain is refused.',
    action: 'Let the webhook (or kueuer inject) inject the sidecar, which sets the token and the preStop hook that sends it.',
  },
  method_not_allowed: {
    status: 405,
    meaning: 'A state-changing admin endpoint (/drain) was called with another method than GET, HEAD included; nothing changed.',
    action: 'None for monitors and link checkers; the preStop hook uses GET with the drain token.',
  },
  callback_not_allowed: {
    status: 400,
    meaning:
      "The request's Kueuer-Callback-Url is refused; the `rule` field says why: `malformed` (not one absolute URL of at most 2048 characters), `scheme` (not http or https), `userinfo` (a user or password in the URL), `fragment`, or `not_allowed` (no entry of the Service's kueuer.io/async-callback-allow matches its scheme, host and port; nothing is allowed without the annotation). Nothing was queued.",
    action: 'Send a callback URL the Service allows (docs/async-callbacks.md); operators: add its origin to kueuer.io/async-callback-allow.',
  },
  callback_misconfigured: {
    status: 500,
    meaning:
      "The request names a callback, but the Service's kueuer.io/async-callback-allow or kueuer.io/async-callback-secret annotation is invalid, or the signing key's Secret cannot be read. Nothing was queued.",
    action: 'Operators: fix the annotation or the Secret the message (or the responder log) names; the request can be sent again unchanged.',
  },
  callback_requires_async: {
    status: 400,
    meaning:
      "The request names a callback (Kueuer-Callback-Url) but is answered synchronously: the Service's kueuer.io/async is off, or on-request and the request has no `Prefer: respond-async`. A callback is never silently dropped; nothing was queued.",
    action: 'Send the request with `Prefer: respond-async` to a Service with kueuer.io/async on-request or always, or drop the header.',
  },
  async_request_not_found: {
    status: 404,
    meaning:
      'No asynchronous request with this id at this Service: the id is unknown or malformed, its result lifetime (kueuer.io/async-result-ttl, default 24 h) ended, it was deleted, or it belongs to another Service.',
    action: "Use the Location of the 202 answer, at the Service that gave it, within the result's lifetime.",
  },
  async_invalid_wait: {
    status: 400,
    meaning: 'A poll of an asynchronous request asked for `?wait=` that is not a duration up to 60 s (e.g. 30s, 500ms).',
    action: 'Send ?wait=30s or less, or poll without it.',
  },
  async_method_not_allowed: {
    status: 405,
    meaning: 'An asynchronous request was sent another method than GET, HEAD or DELETE (Allow says which).',
    action: 'GET polls it, DELETE cancels it or removes its result.',
  },
  async_already_started: {
    status: 409,
    meaning: 'DELETE of an asynchronous request that cannot be cancelled: on the embedded broker a consumer already took it. Nothing changed.',
    action: 'Poll it for its result and DELETE it once done.',
  },
  async_request_cancelled: {
    status: 410,
    meaning:
      'A poll of an asynchronous request cancelled by a DELETE. `app` says what became of it: `queued` (no sidecar took it yet; none will call the app), `not-run` (a sidecar acked it without calling the app), `running` (the app had already started it) or `ran` (the app answered; its answer was discarded).',
    action: 'Nothing to fetch. DELETE it again to forget it; submit it again to run it.',
  },
  idempotency_key_reused: {
    status: 422,
    meaning:
      "An asynchronous request repeats an `Idempotency-Key` that, within the result's lifetime, was used for a request with another method, target, `Kueuer-Callback-Url` or body. Nothing was queued.",
    action: 'Use a new key for a new request; a true repeat must send the same method, target and body.',
  },
  async_store_unavailable: {
    status: 503,
    meaning: "The asynchronous requests' store (Redis, or the embedded one) could not be reached; nothing was accepted or changed. Sent with Retry-After.",
    action: 'Retry after the delay; operators: check the store the responder names in its log (docs/async.md).',
  },
  async_result_too_large: {
    status: 502,
    meaning: "Stored instead of an asynchronous request's result when the app's answer is over the result size limit (10 MiB).",
    action: 'Return less from the app, or use the synchronous path for large answers.',
  },
  unknown_queue: {
    status: 404,
    meaning: 'The /backlog endpoint was asked for a queue Kueuer does not scale.',
    action: 'Use the queue of an annotated workload (<namespace>.<queue>).',
  },
} satisfies Record<string, CatalogueEntry>;

/** The `error` field of every JSON answer Kueuer writes to a client: only codes the table above explains. */
export type ClientErrorCode = keyof typeof CLIENT_ERRORS;

/** The JSON body of a Kueuer answer to a client: `{"error": code, "message": …, "requestId": …}`. */
export function errorBody(code: ClientErrorCode, message: string, requestId: string): Buffer {
  return Buffer.from(JSON.stringify({ error: code, message, requestId }));
}

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
    ...Object.entries(CLIENT_ERRORS).map(([c, e]) => row(c, e as CatalogueEntry)),
    '',
  ].join('\n');
}
