import { describe, expect, it } from 'vitest';
import { backoff } from '../../shared/retry.js';
import { APP_CALL_BACKOFF, isRetryableConnectError } from '../../sidecar/retry-policy.js';

const backoffMs = (attempt: number, random?: () => number) => backoff(APP_CALL_BACKOFF, attempt, random);

describe('retry policy', () => {
  it('backs off exponentially with jitter, capped at 1 s', () => {
    expect(backoffMs(1, () => 0)).toBe(50); // the wait after the first failed call
    expect(backoffMs(1, () => 0.999)).toBeLessThanOrEqual(100);
    expect(backoffMs(3, () => 0)).toBe(200);
    for (let a = 1; a < 30; a++) expect(backoffMs(a)).toBeLessThanOrEqual(1000);
  });

  it('retries refused and reset connections only', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(isRetryableConnectError(err('ECONNREFUSED'))).toBe(true);
    expect(isRetryableConnectError(err('ECONNRESET'))).toBe(true);
    expect(isRetryableConnectError(err('ERR_INVALID_HTTP_RESPONSE'))).toBe(false);
    expect(isRetryableConnectError(new Error('x'))).toBe(false);
  });
});
