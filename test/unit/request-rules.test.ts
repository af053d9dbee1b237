/** The pure rules of the request path: what can be queued, header spellings, X-Forwarded-For, metric labels, timers. */
import { describe, expect, it } from 'vitest';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, UnforwardableRequestError } from '../../shared/envelope.js';
import { forwardableHeaders, normalisedHeaderName, withClientAddress, type HeaderPairs } from '../../shared/http-headers.js';
import { headersProblem, REQUEST_LIMITS, targetProblem } from '../../shared/request-rules.js';
import { parseTrustedProxies } from '../../shared/trusted-proxies.js';
import { statusLabel } from '../../shared/status-label.js';
import { MAX_TIMER_MS, safeTimerMs } from '../../shared/timers.js';
import { describeMessage } from '../../sidecar/worker.js';

const ID = '0123456789abcdef0123456789abcdef';

describe('request target rules', () => {
  it.each([
    ['*', 'invalid_target', 400],
    ['http://x/', 'invalid_target', 400],
    ['example.com:443', 'invalid_target', 400],
    ['/a b', 'invalid_target', 400],
    ['/\u0001', 'invalid_target', 400],
    ['/caf\u20ac', 'invalid_target', 400],
    [`/${'a'.repeat(REQUEST_LIMITS.targetBytes)}`, 'uri_too_long', 414],
  ])('refuses %j as %s', (target, code, status) => {
    expect(targetProblem(target)).toMatchObject({ code, status });
  });

  it.each(['/', '/a?b=c&d', `/${'q'.repeat(9 * 1024)}`, `/${'p'.repeat(REQUEST_LIMITS.targetBytes - 1)}`, '/caf\u00e9', "/!$&'()*+,;=:@~"])(
    'accepts %j',
    (target) => expect(targetProblem(target)).toBeNull(),
  );

  it('carries a 16 KiB target through the envelope (the old limit was 8 KiB)', () => {
    const path = `/${'x'.repeat(REQUEST_LIMITS.targetBytes - 1)}`;
    const wire = encodeRequest({
      id: ID,
      queue: 'q',
      replyTo: 'kueuer.reply.q.1',
      deadline: Date.now() + 1000,
      enqueuedAt: Date.now(),
      method: 'GET',
      path,
      headers: [],
      body: Buffer.alloc(0),
    });
    expect(decodeRequest(wire).path).toBe(path);
  });
});

describe('header rules', () => {
  it('refuses two Host headers, whatever their case', () => {
    expect(
      headersProblem([
        ['Host', 'a'],
        ['host', 'b'],
      ]),
    ).toMatchObject({ code: 'invalid_header', status: 400 });
    expect(headersProblem([['Host', 'a']])).toBeNull();
  });

  it('refuses values undici would refuse, accepts obs-text', () => {
    expect(headersProblem([['x', 'a\u0001b']])).toMatchObject({ code: 'invalid_header' });
    expect(headersProblem([['x', 'caf\u20ac']])).toMatchObject({ code: 'invalid_header' });
    expect(headersProblem([['x', 'caf\u00e9\tok']])).toBeNull();
    expect(headersProblem([['bad name', 'v']])).toMatchObject({ code: 'invalid_header' });
  });

  it('refuses a header list over the queued limit with 431', () => {
    const big: HeaderPairs = [['x-big', 'a'.repeat(REQUEST_LIMITS.headersJsonBytes)]];
    expect(headersProblem(big)).toMatchObject({ code: 'headers_too_large', status: 431 });
  });

  it('drops every spelling of a reserved or hop-by-hop name that a CGI/WSGI server maps to the same variable', () => {
    const kept = forwardableHeaders([
      ['X_Kueuer_Request_Id', 'forged'],
      ['x-KUEUER-deadline', 'forged'],
      ['x_kueuer-redelivered', 'true'],
      ['Transfer_Encoding', 'chunked'],
      ['Connection', 'x_custom_hop'],
      ['X-Custom-Hop', 'dropped: named by Connection'],
      ['X_Other', 'kept'],
    ]);
    expect(kept).toEqual([['X_Other', 'kept']]);
  });
});

describe('X-Forwarded-For', () => {
  it('appends the peer after the last entry, merging repeated headers in order', () => {
    const out = withClientAddress(
      [
        ['X-Forwarded-For', 'a'],
        ['accept', '*/*'],
        ['x-forwarded-for', 'b, c'],
      ],
      '10.0.0.9',
    );
    expect(out.filter(([n]) => n.toLowerCase() === 'x-forwarded-for')).toEqual([['x-forwarded-for', 'a, b, c, 10.0.0.9']]);
    expect(out).toContainEqual(['accept', '*/*']);
  });

  it('treats an underscore spelling as the same header', () => {
    const out = withClientAddress([['X_Forwarded_For', 'spoofed']], '10.0.0.9');
    expect(out).toEqual([['x-forwarded-for', 'spoofed, 10.0.0.9']]);
  });

  it('adds one when the client sent none', () => {
    expect(withClientAddress([], '::1')).toEqual([['x-forwarded-for', '::1']]);
  });
});

describe('Forwarded and X-Real-IP (issue 22, point 8): the same trust rule as X-Forwarded-For', () => {
  it('appends a for= element naming the peer to Forwarded, merging repeated headers in order', () => {
    const out = withClientAddress(
      [
        ['Forwarded', 'for=203.0.113.7;proto=https'],
        ['forwarded', 'for=unknown'],
      ],
      '10.0.0.9',
    );
    expect(out.filter(([n]) => n === 'forwarded')).toEqual([['forwarded', 'for=203.0.113.7;proto=https, for=unknown, for=10.0.0.9']]);
    expect(out.filter(([n]) => n.toLowerCase() === 'forwarded')).toHaveLength(1);
  });

  it('quotes an IPv6 peer in brackets (RFC 7239 §6)', () => {
    expect(withClientAddress([['Forwarded', 'for=a']], '::1')).toContainEqual(['forwarded', 'for=a, for="[::1]"']);
  });

  it("replaces the client's X-Real-IP, in any spelling, by the peer's address", () => {
    const out = withClientAddress(
      [
        ['X-Real-IP', '1.2.3.4'],
        ['X_Real_Ip', '5.6.7.8'],
      ],
      '10.0.0.9',
    );
    expect(out.filter(([n]) => normalisedHeaderName(n) === 'x-real-ip')).toEqual([['x-real-ip', '10.0.0.9']]);
  });

  it("keeps the X-Real-IP a trusted proxy (--trusted-proxies) set, e.g. ingress-nginx's, and still appends the peer to X-Forwarded-For", () => {
    const ingress = parseTrustedProxies('10.0.0.0/8, fd00::/8');
    const sent: HeaderPairs = [
      ['X-Real-IP', '203.0.113.7'],
      ['X-Forwarded-For', '203.0.113.7'],
    ];
    const realIp = (out: HeaderPairs) => out.filter(([n]) => normalisedHeaderName(n) === 'x-real-ip');
    expect(realIp(withClientAddress(sent, '10.0.0.9', ingress))).toEqual([['x-real-ip', '203.0.113.7']]);
    expect(realIp(withClientAddress(sent, '::ffff:10.0.0.9', ingress))).toEqual([['x-real-ip', '203.0.113.7']]);
    expect(realIp(withClientAddress(sent, 'fd00::1', ingress))).toEqual([['x-real-ip', '203.0.113.7']]);
    expect(withClientAddress(sent, '10.0.0.9', ingress)).toContainEqual(['x-forwarded-for', '203.0.113.7, 10.0.0.9']);
    // Any other peer: the header is the client's own claim.
    expect(realIp(withClientAddress(sent, '192.0.2.1', ingress))).toEqual([['x-real-ip', '192.0.2.1']]);
    // Two X-Real-IP values are no single address a proxy set: the peer's.
    expect(realIp(withClientAddress([...sent, ['x-real-ip', '1.2.3.4']], '10.0.0.9', ingress))).toEqual([['x-real-ip', '10.0.0.9']]);
  });

  it.each(['10.0.0.0/33', 'ingress', '10.0.0.0/8/1', '10.0.0/8', 'fd00::/129', '10.0.0.0/-1'])('refuses --trusted-proxies %s, naming it', (raw) => {
    expect(() => parseTrustedProxies(raw)).toThrow(JSON.stringify(raw));
  });

  it('trusts no one by default', () => {
    expect(parseTrustedProxies('').has('10.0.0.9')).toBe(false);
    expect(parseTrustedProxies('10.0.0.1').has('10.0.0.1')).toBe(true);
    expect(parseTrustedProxies('10.0.0.1').has('10.0.0.2')).toBe(false);
  });

  it('adds neither when the client sent neither (only X-Forwarded-For is always set)', () => {
    expect(withClientAddress([['accept', '*/*']], '10.0.0.9')).toEqual([
      ['accept', '*/*'],
      ['x-forwarded-for', '10.0.0.9'],
    ]);
  });
});

describe('unforwardable request envelopes', () => {
  it('keeps the route, so the sidecar can answer the client', () => {
    const wire = encodeRequest({
      id: ID,
      queue: 'q',
      replyTo: 'kueuer.reply.q.1',
      deadline: 123,
      enqueuedAt: 1,
      method: 'OPTIONS',
      path: '*',
      headers: [],
      body: Buffer.alloc(0),
    });
    try {
      decodeRequest(wire);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UnforwardableRequestError);
      const e = err as UnforwardableRequestError;
      expect(e.route).toEqual({ id: ID, queue: 'q', replyTo: 'kueuer.reply.q.1', deadline: 123 });
      expect(e.problem).toMatchObject({ code: 'invalid_target', status: 400 });
    }
  });

  it('refuses two Host headers in a queued request', () => {
    const wire = encodeRequest({
      id: ID,
      queue: 'q',
      replyTo: 'r',
      deadline: 1,
      enqueuedAt: 1,
      method: 'GET',
      path: '/',
      headers: [
        ['host', 'a'],
        ['Host', 'b'],
      ],
      body: Buffer.alloc(0),
    });
    expect(() => decodeRequest(wire)).toThrow(/more than one Host/);
  });
});

describe('reason phrases', () => {
  it('travel in a response envelope and are validated', () => {
    const wire = encodeResponse({ id: ID, queue: 'q', status: 299, reason: 'Fine Enough', headers: [], body: Buffer.alloc(0) });
    expect(decodeResponse(wire).reason).toBe('Fine Enough');
    wire.meta['kueuer-reason'] = 'x\r\nInjected: 1';
    expect(() => decodeResponse(wire)).toThrow(/reason phrase/);
  });
});

describe('metric labels', () => {
  it('keeps registered statuses, buckets the rest', () => {
    expect(statusLabel(200)).toBe('200');
    expect(statusLabel(418)).toBe('418');
    expect(statusLabel(299)).toBe('2xx');
    expect(statusLabel(599)).toBe('5xx');
    expect(statusLabel(600)).toBe('other');
    const labels = new Set(Array.from({ length: 900 }, (_, i) => statusLabel(100 + i)));
    expect(labels.size).toBeLessThan(80);
  });
});

describe('timers', () => {
  it('never passes a delay Node would fire at once', () => {
    expect(safeTimerMs(30 * 24 * 3_600_000)).toBe(MAX_TIMER_MS);
    expect(safeTimerMs(-5)).toBe(0);
    expect(safeTimerMs(Infinity)).toBe(MAX_TIMER_MS);
    expect(safeTimerMs(1500)).toBe(1500);
  });
});

describe('logging a refused message', () => {
  it('names fields and sizes, never header values', () => {
    const wire = encodeRequest({
      id: ID,
      queue: 'q',
      replyTo: 'r',
      deadline: 1,
      enqueuedAt: 1,
      method: 'GET',
      path: '/',
      headers: [
        ['cookie', 'session=SECRET-COOKIE'],
        ['authorization', 'Bearer SECRET-TOKEN'],
      ],
      body: Buffer.from('x'),
    });
    const described = JSON.stringify(describeMessage(wire));
    expect(described).not.toContain('SECRET');
    expect(describeMessage(wire).fields['kueuer-headers']).toBe(Buffer.byteLength(wire.meta['kueuer-headers']!));
    expect(describeMessage(wire).bodyBytes).toBe(1);
  });
});
