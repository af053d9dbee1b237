import { describe, expect, it } from 'vitest';
import { forwardableHeaders, pairsFromRaw, flattenPairs } from '../../shared/http-headers.js';

describe('forwardableHeaders', () => {
  it('drops hop-by-hop headers and those named by Connection', () => {
    const pairs = pairsFromRaw([
      'Host',
      'example',
      'Connection',
      'keep-alive, X-Private',
      'Keep-Alive',
      'timeout=5',
      'Transfer-Encoding',
      'chunked',
      'TE',
      'trailers',
      'Upgrade',
      'h2c',
      'Proxy-Authorization',
      'secret',
      'X-Private',
      'hop',
      'Content-Length',
      '12',
      'Accept',
      'text/plain',
    ]);
    expect(forwardableHeaders(pairs)).toEqual([
      ['Host', 'example'],
      ['Content-Length', '12'],
      ['Accept', 'text/plain'],
    ]);
  });

  it("drops Kueuer's own x-kueuer-* headers whatever their case", () => {
    const pairs = pairsFromRaw(['X-Kueuer-Request-Id', 'spoofed', 'x-kueuer-reply-to', 'evil', 'X-Other', '1']);
    expect(forwardableHeaders(pairs)).toEqual([['X-Other', '1']]);
  });

  it('keeps repeated headers in order and case', () => {
    const raw = ['Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'Set-Cookie', 'c=3'];
    expect(flattenPairs(forwardableHeaders(pairsFromRaw(raw)))).toEqual(raw);
  });
});
