/**
 * Callback signatures, as the Standard Webhooks specification defines them
 * (the scheme Svix, and through it many providers, use; libraries exist for
 * most languages): HMAC-SHA256 with the key over `id.timestamp.body`, sent as
 *   webhook-id: <request id>
 *   webhook-timestamp: <Unix seconds of this attempt>
 *   webhook-signature: v1,<base64 HMAC>[ v1,<another>…]
 * verifyCallback is the receiver's side, the one docs/async-callbacks.md shows.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADERS = { id: 'webhook-id', timestamp: 'webhook-timestamp', signature: 'webhook-signature' } as const;

/** Standard Webhooks asks for 24 to 64 bytes of key. */
export const MIN_KEY_BYTES = 24;
/** How far a receiver lets the timestamp be from its clock, by default (Stripe and Standard Webhooks: 5 minutes). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

function hmac(key: Buffer, id: string, timestampSec: number | string, body: Buffer): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestampSec}.`).update(body).digest();
}

/** The webhook-signature value for one delivery attempt. */
export function signCallback(key: Buffer, id: string, timestampSec: number, body: Buffer): string {
  return `v1,${hmac(key, id, timestampSec, body).toString('base64')}`;
}

/** A Secret's value as a key: `whsec_<base64>` (Standard Webhooks' form) is decoded, anything else is the raw bytes. */
export function parseSigningKey(value: Buffer): { ok: true; key: Buffer } | { ok: false; problem: string } {
  const text = value.toString('latin1');
  let key = value;
  if (text.startsWith('whsec_')) {
    const b64 = text.slice('whsec_'.length).trim();
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return { ok: false, problem: 'the key starts with whsec_ but the rest is not base64' };
    key = Buffer.from(b64, 'base64');
  }
  if (key.length < MIN_KEY_BYTES) {
    return { ok: false, problem: `the key has ${key.length} bytes; use at least ${MIN_KEY_BYTES} bytes, random (whsec_$(openssl rand -base64 32))` };
  }
  return { ok: true, key };
}

export interface VerifyInput {
  /** The key: bytes, or the Secret's text (`whsec_…` or raw). */
  key: Buffer | string;
  /** The request's headers (Node's req.headers will do). */
  headers: Record<string, string | string[] | undefined>;
  /** The raw body bytes, before any parsing. */
  body: Buffer;
  toleranceSec?: number;
  nowSec?: number;
}

function header(headers: VerifyInput['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A receiver's check of a Kueuer callback: a valid signature over id, timestamp and body, and a fresh timestamp. */
export function verifyCallback(input: VerifyInput): { ok: true } | { ok: false; reason: string } {
  const id = header(input.headers, SIGNATURE_HEADERS.id);
  const ts = header(input.headers, SIGNATURE_HEADERS.timestamp);
  const sigs = header(input.headers, SIGNATURE_HEADERS.signature);
  if (!id || !ts || !sigs) return { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature' };
  if (!/^\d{1,12}$/.test(ts)) return { ok: false, reason: 'the timestamp is not Unix seconds' };
  const now = input.nowSec ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(ts)) > (input.toleranceSec ?? DEFAULT_TOLERANCE_SECONDS)) return { ok: false, reason: 'the timestamp is outside the tolerance' };
  const key = typeof input.key === 'string' ? parseSigningKey(Buffer.from(input.key)) : { ok: true as const, key: input.key };
  if (!key.ok) return { ok: false, reason: key.problem };
  const expected = hmac(key.key, id, ts, input.body);
  for (const sig of sigs.split(' ')) {
    const [version, value] = sig.split(',', 2);
    if (version !== 'v1' || !value) continue;
    const given = Buffer.from(value, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true };
  }
  return { ok: false, reason: 'no v1 signature matches' };
}
