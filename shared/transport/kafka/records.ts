/** Envelopes as Kafka records: the request id as key, metadata as headers, the raw body as value. */
import type { IHeaders } from 'kafkajs';
import type { WireMessage } from '../../envelope.js';
import { META } from '../../envelope.js';

/**
 * On a request record sent again after a send whose answer was lost (publish.ts): the first copy
 * may be in Kafka too, so the sidecar hands this one to the app flagged redelivered. The same
 * header as the AMQP transport's.
 */
export const REPUBLISHED_HEADER = 'x-kueuer-republished';

export interface OutgoingRecord {
  topic: string;
  message: { key: string | null; value: Buffer; headers: Record<string, string>; partition?: number };
}

/** A Kafka record of an envelope. */
export function recordOf(message: WireMessage): OutgoingRecord['message'] {
  return { key: message.meta[META.id] ?? null, value: message.body, headers: message.meta };
}

/** An envelope's metadata from a record's headers. */
export function metaFromHeaders(headers: IHeaders | undefined): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    const value = Array.isArray(v) ? v[0] : v;
    if (value !== undefined) meta[k] = value.toString();
  }
  return meta;
}
