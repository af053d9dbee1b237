import { randomFillSync } from 'node:crypto';

const ID_BYTES = 16;
const POOL_IDS = 256;
const pool = Buffer.alloc(ID_BYTES * POOL_IDS);
let next = POOL_IDS;

/**
 * 128 random bits from the OS CSPRNG, hex encoded: unguessable, so a request
 * id cannot be used to steal a reply. Bytes are drawn 4 KiB at a time (as
 * crypto.randomUUID does) to keep the syscall off the per-request path.
 */
export function newRequestId(): string {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const start = next++ * ID_BYTES;
  return pool.toString('hex', start, start + ID_BYTES);
}

const REQUEST_ID = /^[0-9a-f]{32}$/;

export function isRequestId(value: string): boolean {
  return REQUEST_ID.test(value);
}
