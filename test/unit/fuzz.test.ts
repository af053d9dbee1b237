/**
 * Property tests (fast-check): whatever bytes or strings arrive, the
 * envelope decoder and the annotation parsers return a value or a typed
 * error; they never crash with anything else.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePodSettings, parseServiceSettings, wantsInjection, ANNOTATIONS } from '../../shared/annotations.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, META } from '../../shared/envelope.js';
import { KueuerError } from '../../shared/errors.js';
import { parseAutoscalingSettings } from '../../webhook/autoscaling/settings.js';

const metaKeys = fc.constantFrom(...Object.values(META), 'x-other', '');
const meta = fc.dictionary(metaKeys, fc.oneof(fc.string(), fc.constantFrom('1', 'request', 'response', '200', '/', 'GET', '[]', '[["a","b"]]', 'q')), {
  maxKeys: 14,
});
const body = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));

function typedOrValue(run: () => unknown): void {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(KueuerError);
    expect((err as KueuerError).code).toBe('KUEUER_ERR_ENVELOPE');
  }
}

describe('envelope decoder under arbitrary input', () => {
  it('gives a request or KUEUER_ERR_ENVELOPE', () => {
    fc.assert(
      fc.property(meta, body, (m, b) => typedOrValue(() => decodeRequest({ meta: m, body: b }))),
      { numRuns: 2000 },
    );
  });

  it('gives a response or KUEUER_ERR_ENVELOPE', () => {
    fc.assert(
      fc.property(meta, body, (m, b) => typedOrValue(() => decodeResponse({ meta: m, body: b }))),
      { numRuns: 2000 },
    );
  });

  it('round-trips every valid request, whatever its headers and body', () => {
    const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            headerName,
            fc.string({ maxLength: 40 }).filter((v) => !/[\r\n\0]/.test(v)),
          ),
          { maxLength: 8 },
        ),
        body,
        fc.stringMatching(/^\/[a-z0-9/._~-]{0,40}$/),
        (headers, b, path) => {
          const req = { id: 'a'.repeat(32), queue: 'shop.orders', replyTo: 'inbox', deadline: 2e12, enqueuedAt: 1e12, method: 'POST', path, headers, body: b };
          let decoded;
          try {
            decoded = decodeRequest(encodeRequest(req));
          } catch (err) {
            // Only the documented limits may refuse a well-formed request.
            expect((err as KueuerError).code).toBe('KUEUER_ERR_ENVELOPE');
            return;
          }
          expect(decoded).toEqual(req);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses a response whose meta was tampered with, never crashing', () => {
    const res = encodeResponse({ id: 'b'.repeat(32), queue: 'q', status: 200, headers: [], body: Buffer.from('x') });
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(res.meta)), fc.string(), (key, value) =>
        typedOrValue(() => decodeResponse({ meta: { ...res.meta, [key]: value }, body: res.body })),
      ),
      { numRuns: 1000 },
    );
  });
});

describe('annotation parsers under arbitrary input', () => {
  const keys = fc.constantFrom(...Object.values(ANNOTATIONS), 'kueuer.io/other', 'app');
  const annotations = fc.option(fc.dictionary(keys, fc.string({ maxLength: 30 }), { maxKeys: 10 }), { nil: undefined });

  it('give settings or a list of problems naming the annotation', () => {
    fc.assert(
      fc.property(annotations, annotations, (a, b) => {
        for (const parsed of [parsePodSettings(a), parseServiceSettings(a), wantsInjection(a), parseAutoscalingSettings(a, b)]) {
          if (parsed.ok) continue;
          expect(parsed.problems.length).toBeGreaterThan(0);
          for (const p of parsed.problems) expect(p).toMatch(/kueuer\.io\//);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
