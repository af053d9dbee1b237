/**
 * Typed errors with stable codes, in the style of fastify's FST_ERR_* errors:
 * callers branch on `code`, never on message text.
 */
export type KueuerErrorCode =
  | 'KUEUER_ERR_CONFIG'
  | 'KUEUER_ERR_ENVELOPE'
  | 'KUEUER_ERR_BROKER_UNAVAILABLE'
  | 'KUEUER_ERR_PUBLISH_TIMEOUT'
  | 'KUEUER_ERR_TRANSPORT_CLOSED'
  | 'KUEUER_ERR_REPLY_INBOX_GONE'
  | 'KUEUER_ERR_BACKEND_URL'
  | 'KUEUER_ERR_BROKER_REFUSED'
  | 'KUEUER_ERR_KUBERNETES_UNAVAILABLE'
  | 'KUEUER_ERR_TLS_FILES'
  | 'KUEUER_ERR_QUEUE_FULL';

export class KueuerError extends Error {
  readonly code: KueuerErrorCode;

  constructor(code: KueuerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KueuerError';
    this.code = code;
  }
}

export function isKueuerError(err: unknown, code?: KueuerErrorCode): err is KueuerError {
  return err instanceof KueuerError && (code === undefined || err.code === code);
}
