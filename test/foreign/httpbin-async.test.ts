/**
 * go-httpbin behind Kueuer, asynchronously (docs/async.md): every request of
 * the answer-for-answer matrix is sent to a Service with kueuer.io/async:
 * always, answered 202, and polled at its Location until done; the polled
 * answer must be the synchronous answer (status, reason phrase, headers
 * other than Date, hop-by-hop ones and x-kueuer-request-id, body bytes). On
 * the embedded broker, on RabbitMQ and on Kafka.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, rawHeader, startGoHttpbin, type ForeignApp, type FullResponse } from '../helpers/foreign.js';
import { startAsyncStack } from '../helpers/async-stack.js';
import { startStack } from '../helpers/stack.js';
import { CASES, comparable, HOST, type Case } from './cases.js';

/** As in httpbin.test.ts: what Kueuer adds to every request, left out of go-httpbin's echoes. */
const ADDED = 'connection,x-kueuer-request-id,x-kueuer-deadline,x-forwarded-for';

let app: ForeignApp;
beforeAll(async () => {
  app = await startGoHttpbin(ADDED);
});
afterAll(async () => app?.close());

/** Submits, then polls the Location (HEAD for a HEAD request) until the answer is no longer Kueuer's pending 202. */
async function viaAsync(url: string, req: Case): Promise<FullResponse> {
  const submitted = await exchange(url, req);
  expect(submitted.status, submitted.body.toString()).toBe(202);
  const location = rawHeader(submitted, 'location') ?? '';
  expect(location).toMatch(/^\/\.kueuer\/requests\/[0-9a-f]{32}$/);
  const poll = { name: 'poll', method: req.method === 'HEAD' ? 'HEAD' : 'GET', path: `${location}?wait=10s`, headers: ['Host', HOST] };
  for (let i = 0; i < 20; i++) {
    const r = await exchange(url, poll, 15_000);
    const pending = r.status === 202 && rawHeader(r, 'location') === location && (req.method === 'HEAD' || r.body.toString().includes('"pending"'));
    if (!pending) {
      expect(rawHeader(r, 'x-kueuer-request-id')).toBe(location.split('/').pop());
      return r;
    }
  }
  throw new Error(`${req.name}: still pending`);
}

const EXPIRES = /Expires=([^;]+)/;

/**
 * go-httpbin dates a deleted cookie's Expires from its clock when it answers (as Date, which is left
 * out): the polled answer ran later than the synchronous one, so its Expires may be later by up to
 * the seconds between the two. Such a value is put back to the synchronous one; any other difference stays.
 */
function sameClock(polled: FullResponse, sync: FullResponse, elapsedMs: number): FullResponse {
  const rawHeaders = polled.rawHeaders.map((value, i) => {
    if (i % 2 === 0 || polled.rawHeaders[i - 1]!.toLowerCase() !== 'set-cookie') return value;
    const twin = sync.rawHeaders.find(
      (v, j) => j % 2 === 1 && sync.rawHeaders[j - 1]!.toLowerCase() === 'set-cookie' && v.replace(EXPIRES, '') === value.replace(EXPIRES, ''),
    );
    const [ours, theirs] = [EXPIRES.exec(value)?.[1], twin ? EXPIRES.exec(twin)?.[1] : undefined];
    if (ours === undefined || theirs === undefined) return value;
    const later = Date.parse(ours) - Date.parse(theirs);
    return later >= 0 && later <= Math.ceil(elapsedMs / 1000) * 1000 ? twin! : value;
  });
  return { ...polled, rawHeaders };
}

describe.each(['memory', 'amqp', 'kafka'] as const)('go-httpbin behind Kueuer asynchronously (%s): the polled answer is the synchronous one', (backend) => {
  let asyncUrl: string;
  let syncUrl: string;
  const stops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    const a = await startAsyncStack(backend, { appPort: app.port, async: { mode: 'always' }, concurrency: 4 });
    stops.push(() => a.stop());
    const s = await startStack(backend, { appPort: app.port, concurrency: 4 });
    stops.push(() => s.stop());
    asyncUrl = a.url;
    syncUrl = s.url;
  });
  afterAll(async () => {
    await Promise.all(stops.map((s) => s()));
  });

  it.each(CASES)('$name', async (req) => {
    const sync = await exchange(syncUrl, req);
    const syncAt = Date.now();
    const polled = sameClock(await viaAsync(asyncUrl, req), sync, Date.now() - syncAt + 1000);
    expect(comparable(polled, sync)).toEqual(comparable(sync));
    expect(polled.statusMessage).toBe(sync.statusMessage);
  });
});
