/** Envelopes as Kafka records: the request id as key, metadata as headers, the raw body as value. */
import type { IHeaders } from 'kafkajs';
import type { WireMessage } from '../../envelope.js';
import { META } from '../../envelope.js';

export interface OutgoingRecord {
  topic: string;
  message: { key: string | null; value: Buffer; headers: Record<string, string>; partition?: number };
}

export function groupByTopic(records: OutgoingRecord[]): Array<{ topic: string; messages: Array<OutgoingRecord['message']> }> {
  const byTopic = new Map<string, Array<OutgoingRecord['message']>>();
  for (const r of records) {
    const list = byTopic.get(r.topic) ?? [];
    list.push(r.message);
    byTopic.set(r.topic, list);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
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
