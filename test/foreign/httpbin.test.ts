/**
 * go-httpbin (a third-party Go app, github.com/mccutchen/go-httpbin/v2) behind
 * Kueuer, answer for answer: every request in the matrix goes to the app
 * directly and through Kueuer, and the two answers must match (status,
 * headers other than Date, hop-by-hop ones and x-kueuer-request-id, body
 * bytes). Behind the real `kueuer local` process on the embedded broker and
 * behind responder + sidecar on RabbitMQ and on Kafka.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, rawHeader, startGoHttpbin, startLocal, type ForeignApp, type FullResponse } from '../helpers/foreign.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { CASES, comparable, HOST, STATUSES } from './cases.js';

/**
 * What Kueuer adds to every request on purpose (docs/reference/http.md, "What clients and
 * apps see"), and Connection, which each hop sets for itself: go-httpbin
 * leaves these out of its echoes, so echoed bodies can match byte for byte.
 * The test 'adds exactly …' below checks those additions on an unfiltered go-httpbin.
 */
const ADDED = 'connection,x-kueuer-request-id,x-kueuer-deadline,x-forwarded-for';

type Target = 'local' | 'amqp' | 'kafka';
const targets: Target[] = ['local', 'amqp', 'kafka'];

let app: ForeignApp;
let plain: ForeignApp;

beforeAll(async () => {
  [app, plain] = await Promise.all([startGoHttpbin(ADDED), startGoHttpbin()]);
});
afterAll(async () => {
  await Promise.all([app?.close(), plain?.close()]);
});

describe.each(targets)('go-httpbin behind Kueuer (%s), answer for answer', (target) => {
  let url: string;
  let plainUrl: string;
  const stops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    if (target === 'local') {
      const [a, b] = await Promise.all([startLocal(app.port, ['--concurrency', '4']), startLocal(plain.port)]);
      stops.push(
        () => a.stop(),
        () => b.stop(),
      );
      url = a.url;
      plainUrl = b.url;
    } else {
      // One after the other: four Kafka clients joining at once can take longer than the helper's connect bound.
      const a: Stack = await startStack(target, { appPort: app.port, concurrency: 4 });
      stops.push(() => a.stop());
      const b: Stack = await startStack(target, { appPort: plain.port, concurrency: 1 });
      stops.push(() => b.stop());
      url = a.url;
      plainUrl = b.url;
    }
  });
  afterAll(async () => {
    await Promise.all(stops.map((s) => s()));
  });

  it.each(CASES)('$name', async (req) => {
    const direct = await exchange(app.url, req);
    const through = await exchange(url, req);
    expect(rawHeader(through, 'x-kueuer-request-id') ?? null, 'Kueuer answered, not the app').toMatch(/^[0-9a-f]{32}$/);
    expect(comparable(through, direct)).toEqual(comparable(direct));
  });

  it('keeps the reason phrase the app sent with each status', async () => {
    const seen: Array<{ status: number; direct: string; through: string }> = [];
    for (const status of STATUSES) {
      const req = { method: 'GET', path: `/status/${status}`, headers: ['Host', HOST] };
      const [direct, through] = [await exchange(app.url, req), await exchange(url, req)];
      seen.push({ status, direct: direct.statusMessage, through: through.statusMessage });
    }
    expect(seen.filter((s) => s.direct !== s.through)).toEqual([]);
  });

  it("keeps the case of the app's header names", async () => {
    const names = (r: FullResponse) =>
      r.rawHeaders
        .filter((h, i) => i % 2 === 0 && !['date', 'connection', 'keep-alive', 'transfer-encoding', 'x-kueuer-request-id'].includes(h.toLowerCase()))
        .sort();
    for (const path of ['/json', '/range/300', '/response-headers?X-Lower-then-UPPER=1']) {
      const req = { method: 'GET', path, headers: ['Host', HOST] };
      expect(names(await exchange(url, req)), path).toEqual(names(await exchange(app.url, req)));
    }
  });

  it('passes response trailers through, or drops them as docs/reference/http.md documents', async () => {
    const req = { method: 'GET', path: '/trailers?X-Trailer-One=1&X-Trailer-Two=2', headers: ['Host', HOST] };
    const direct = await exchange(app.url, req);
    const through = await exchange(url, req);
    expect(direct.rawTrailers).toEqual(['X-Trailer-One', '1', 'X-Trailer-Two', '2']);
    expect(through.body.equals(direct.body)).toBe(true);
    if (through.rawTrailers.length > 0) expect(through.rawTrailers).toEqual(direct.rawTrailers);
    else expect(await httpReference(), 'docs/reference/http.md says response trailers are dropped').toMatch(/\btrailers\b/i);
  });

  it('adds exactly x-kueuer-request-id, x-kueuer-deadline and X-Forwarded-For to what the app sees', async () => {
    const headers = ['Host', HOST, 'User-Agent', 'kueuer-foreign-suite/1', 'X-Dup', '1', 'X-Dup', '2', 'Content-Type', 'text/plain'];
    const req = { method: 'POST', path: '/anything/seen?x=1', headers, body: Buffer.from('body') };
    const direct = JSON.parse((await exchange(plain.url, req)).body.toString()) as Echo;
    const throughRes = await exchange(plainUrl, req);
    const through = JSON.parse(throughRes.body.toString()) as Echo;
    const id = rawHeader(throughRes, 'x-kueuer-request-id');
    expect(through.headers['X-Kueuer-Request-Id']).toEqual([id]);
    expect(Date.parse(through.headers['X-Kueuer-Deadline']![0]!)).toBeGreaterThan(Date.now());
    expect(through.headers['X-Forwarded-For']).toEqual(['127.0.0.1']);
    // Connection is per hop: the client's `close` ends at Kueuer.
    const strip = (h: Record<string, string[]>, names: string[]) => Object.fromEntries(Object.entries(h).filter(([k]) => !names.includes(k)));
    expect(strip(through.headers, ['X-Kueuer-Request-Id', 'X-Kueuer-Deadline', 'X-Forwarded-For', 'Connection'])).toEqual(
      strip(direct.headers, ['Connection']),
    );
    expect({ ...through, headers: {} }).toEqual({ ...direct, headers: {} });
  });
});

interface Echo {
  headers: Record<string, string[]>;
  [k: string]: unknown;
}

/** What docs/reference/http.md says clients and apps see (it was README's section "What clients and apps see"). */
async function httpReference(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return readFile(new URL('../../docs/reference/http.md', import.meta.url), 'utf8');
}
