import { randomBytes } from 'node:crypto';

/** 128 random bits, hex encoded: unguessable, so a request id cannot be used to steal a reply. */
export function newRequestId(): string {
  return randomBytes(16).toString('hex');
}

const REQUEST_ID = /^[0-9a-f]{32}$/;

export function isRequestId(value: string): boolean {
  return REQUEST_ID.test(value);
}
