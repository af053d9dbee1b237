import { describe, expect, it } from 'vitest';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, META, type QueuedRequest, type QueuedResponse } from '../../shared/envelope.js';
import { isKueuerError } from '../../shared/errors.js';
import { newRequestId } from '../../shared/request-id.js';

const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

function sampleRequest(): QueuedRequest {
  return {
    id: newRequestId(),
    queue: 'orders',
    replyTo: 'kueuer.reply.orders.0011223344556677',
    deadline: 1_800_000_000_000,
    enqueuedAt: 1_799_999_999_000,
    method: 'POST',
    path: '/a/b?x=1&y=%20z',
    headers: [
      ['Content-Type', 'application/octet-stream'],
      ['Cookie', 'a=1'],
      ['cookie', 'b=2'],
    ],
    body: allBytes,
  };
}

function expectEnvelopeError(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(isKueuerError(err, 'KUEUER_ERR_ENVELOPE')).toBe(true);
    expect((err as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected an envelope error');
}

describe('envelope v1', () => {
  it('round-trips a request with a binary body and repeated headers', () => {
    const req = sampleRequest();
    const wire = encodeRequest(req);
    expect(wire.body).toBe(req.body); // raw bytes beside the metadata, never base64 in JSON
    expect(Object.values(wire.meta).join('')).not.toContain(allBytes.toString('base64'));
    expect(decodeRequest(wire)).toEqual(req);
  });

  it('round-trips a response with several set-cookie headers', () => {
    const res: QueuedResponse = {
      id: newRequestId(),
      queue: 'orders',
      status: 418,
      headers: [
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
        ['X-Thing', 'v'],
      ],
      body: allBytes,
    };
    expect(decodeResponse(encodeResponse(res))).toEqual(res);
  });

  it('refuses another envelope version with a clear message', () => {
    const wire = encodeRequest(sampleRequest());
    wire.meta[META.version] = '3';
    expectEnvelopeError(() => decodeRequest(wire), /unsupported envelope version "3"/);
  });

  it('refuses a response decoded as a request', () => {
    const wire = encodeResponse({ id: newRequestId(), queue: 'q', status: 200, headers: [], body: Buffer.alloc(0) });
    expectEnvelopeError(() => decodeRequest(wire), /expected a request envelope/);
  });

  it.each([
    [META.id, 'not-hex', /32 lowercase hex/],
    [META.method, 'GE T', /method token/],
    [META.path, 'http://evil/', /kueuer-path: .*origin-form/],
    [META.path, '/a b', /kueuer-path: .*whitespace/],
    [META.deadline, 'soon', /epoch milliseconds/],
    [META.queue, '../etc', /valid queue name/],
    [META.headers, '{"a":1}', /kueuer-headers: not a JSON array of \[name, value\]/],
    [META.headers, '[["bad name","v"]]', /kueuer-headers: a header name is not an HTTP token/],
    [META.headers, '[["x","a\\r\\nInjected: 1"]]', /kueuer-headers: header x holds a control/],
    [META.headers, 'not json', /kueuer-headers: not a JSON array/],
  ])('refuses %s = %s', (key, value, pattern) => {
    const wire = encodeRequest(sampleRequest());
    wire.meta[key] = value;
    expectEnvelopeError(() => decodeRequest(wire), pattern);
  });

  it('refuses a missing reply destination', () => {
    const wire = encodeRequest(sampleRequest());
    delete wire.meta[META.replyTo];
    expectEnvelopeError(() => decodeRequest(wire), /kueuer-reply-to is missing/);
  });

  it('refuses oversize header metadata', () => {
    const req = sampleRequest();
    req.headers = [['x-big', 'a'.repeat(64 * 1024)]];
    expectEnvelopeError(() => decodeRequest(encodeRequest(req)), /kueuer-headers: the request headers take \d+ bytes; at most 49152/);
  });

  it('refuses a status outside 200-599', () => {
    const wire = encodeResponse({ id: newRequestId(), queue: 'q', status: 200, headers: [], body: Buffer.alloc(0) });
    wire.meta[META.status] = '99';
    expectEnvelopeError(() => decodeResponse(wire), /200 to 599/);
  });
});

describe('request ids', () => {
  it('are 128 random bits in hex and do not repeat', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newRequestId()));
    expect(ids.size).toBe(10_000);
    for (const id of [...ids].slice(0, 100)) expect(id).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('envelope v2: trailers (issue 22, point 11)', () => {
  const trailers: Array<[string, string]> = [
    ['X-Checksum', 'sha256=abc'],
    ['x-checksum', 'second'],
  ];

  it('carries request and response trailers, and writes version 2 only when there are some', () => {
    const req = { ...sampleRequest(), trailers };
    const wire = encodeRequest(req);
    expect(wire.meta[META.version]).toBe('2');
    expect(decodeRequest(wire).trailers).toEqual(trailers);
    const res: QueuedResponse = { id: req.id, queue: 'orders', status: 200, headers: [], body: Buffer.from('x'), trailers };
    const resWire = encodeResponse(res);
    expect(resWire.meta[META.version]).toBe('2');
    expect(decodeResponse(resWire)).toEqual(res);
  });

  it('writes a message without trailers exactly as version 1 did, and still reads version 1', () => {
    const wire = encodeRequest(sampleRequest());
    expect(wire.meta[META.version]).toBe('1');
    expect(Object.keys(wire.meta)).not.toContain(META.trailers);
    expect(decodeRequest(wire).trailers).toBeUndefined();
  });

  it('refuses trailers in a version 1 message and trailer fields that break the header rules', () => {
    const wire = encodeRequest({ ...sampleRequest(), trailers });
    expectEnvelopeError(
      () =>
        decodeResponse({
          meta: { ...encodeResponse({ id: newRequestId(), queue: 'q', status: 200, headers: [], body: Buffer.alloc(0) }).meta, [META.trailers]: '[["a","b"]]' },
          body: Buffer.alloc(0),
        }),
      /needs envelope version 2/,
    );
    expect(() => decodeRequest({ ...wire, meta: { ...wire.meta, [META.trailers]: '[["bad name","x"]]' } })).toThrow(/trailer fields cannot be forwarded/);
    expect(() => decodeRequest({ ...wire, meta: { ...wire.meta, [META.version]: '3' } })).toThrow(/unsupported envelope version "3"; this build reads 1 and 2/);
  });
});
