import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { isTransientApiError } from '../../shared/kube/object-source.js';

describe("the first list's retry rule", () => {
  it('waits out 429 (a CRD whose storage is initialising) and 5xx; fails at once on 403, 404 and non-API errors', () => {
    const api = (code: number) => new ApiException(code, 'x', '{}', {});
    expect([429, 500, 502, 503, 504].map((c) => isTransientApiError(api(c)))).toEqual([true, true, true, true, true]);
    expect([400, 401, 403, 404, 501].map((c) => isTransientApiError(api(c)))).toEqual([false, false, false, false, false]);
    expect(isTransientApiError(new Error('connect ECONNREFUSED'))).toBe(false);
    expect(isTransientApiError(null)).toBe(false);
  });
});
