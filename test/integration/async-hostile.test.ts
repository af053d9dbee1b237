/**
 * A hostile client of the asynchronous surface (issue 24): look-alike status
 * paths, absolute-form targets, DELETE races, and an Idempotency-Key reused
 * with another callback. Each case was a finding; the test failed before its fix.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAsyncStore } from '../../responder/async/store.js';
import { CallbackDispatcher, parseCallbackSettings } from '../../responder/callbacks/index.js';
import { startAsyncStack, type AsyncStack } from '../helpers/async-stack.js';
import { json, request } from '../helpers/http.js';
import { silentLog } from '../helpers/stack.js';
import { delay, startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
const appSaw: string[] = [];
const preferSaw: Array<string | string[] | undefined> = [];
beforeAll(async () => {
  app = await startTestApp();
  app.handle((req, res) => {
    appSaw.push(`${req.method} ${req.url}`);
    preferSaw.push(req.headers.prefer);
    res.end(`app got ${req.url}`);
  });
});
afterAll(async () => app.close());

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  appSaw.length = 0;
  preferSaw.length = 0;
});

async function stack(extra: Partial<Parameters<typeof startAsyncStack>[1]> = {}): Promise<AsyncStack> {
  const s = await startAsyncStack('memory', { appPort: app.port, async: { mode: 'on-request' }, ...extra });
  cleanups.push(() => s.stop());
  return s;
}

async function done(s: AsyncStack): Promise<string> {
  const res = await request(s.url, { method: 'POST', path: '/job', headers: { prefer: 'respond-async' }, body: 'x' });
  expect(res.status).toBe(202);
  const id = /([0-9a-f]{32})$/.exec(String(res.headers.location))![1]!;
  expect((await request(s.url, { path: `/.kueuer/requests/${id}?wait=10s` })).status).toBe(200);
  return id;
}

describe('a hostile client of the asynchronous requests', () => {
  it('a look-alike of the status path (/.kueuer/requestsX<id>, /.kueuer/abcdefghi<id>) is a 404, not the request', async () => {
    const s = await stack();
    const id = await done(s);
    for (const path of [`/.kueuer/requestsX${id}`, `/.kueuer/abcdefghi${id}`, `/.kueuer/REQUESTS/${id}`]) {
      const r = await request(s.url, { path });
      expect(r.status, path).toBe(404);
      expect(json(r)).toMatchObject({ error: 'async_request_not_found' });
    }
  });

  it("the status path in any form a server or proxy may normalize to it is Kueuer's; every other path reaches the app unchanged", async () => {
    const s = await stack();
    const id = await done(s);
    appSaw.length = 0;
    // Each is the poll of the request: its stored answer (the app got /job), with its id.
    const polls = [
      `//.kueuer/requests/${id}`, // runs of / merged (nginx merge_slashes, Go's ServeMux)
      `///.kueuer//requests/${id}`,
      `/./.kueuer/requests/${id}`, // dot segments (RFC 3986 §5.2.4)
      `/x/../.kueuer/requests/${id}`,
      `/%2ekueuer/requests/${id}`, // a percent-encoded unreserved character (RFC 3986 §6.2.2.2)
      `/%2Ekueuer/requests/${id}?wait=1s`,
      `/.kueuer/requests/%${id.charCodeAt(0).toString(16)}${id.slice(1)}`,
      `/.kueuer%2frequests%2f${id}`, // %2F decoded by frameworks that decode before routing
      `/\\.kueuer/requests/${id}`, // \ read as / (WHATWG URL)
      `http://shop.example/.kueuer/requests/${id}`, // absolute form (RFC 9112 §3.2.2)
    ];
    for (const path of polls) {
      const r = await request(s.url, { path });
      expect(r.status, path).toBe(200);
      expect(r.body.toString(), path).toBe('app got /job');
      expect(r.headers['x-kueuer-request-id'], path).toBe(id);
    }
    // Reserved in one of its forms, but no request: a 404, and the app never sees it.
    for (const path of [
      '/.kueuer/../x',
      '/.kueuer/%2e%2e/x',
      `/.kueuer/requests/${id}/`,
      '/.kueuer',
      '/%2ekueuer/..%2f..%2fx',
      `/.kueuer/requests/../requests/${id.slice(1)}`,
    ]) {
      const r = await request(s.url, { path });
      expect(r.status, path).toBe(404);
      expect(json(r), path).toMatchObject({ error: 'async_request_not_found' });
    }
    expect(appSaw).toEqual([]);
    // Not under /.kueuer/ in any form: the app's, byte for byte.
    const apps = [
      `/x/.kueuer/requests/${id}`,
      `/.kueuerx/requests/${id}`,
      `/.KUEUER/requests/${id}`,
      '/.kueuer.html',
      '/..kueuer/',
      `/x?next=/.kueuer/requests/${id}`,
      `/%252ekueuer/requests/${id}`,
      `/x/..%2e/`,
    ];
    for (const path of apps) {
      const r = await request(s.url, { path });
      expect(r.status, path).toBe(200);
      expect(r.body.toString(), path).toBe(`app got ${path}`);
    }
    expect(appSaw).toEqual(apps.map((p) => `GET ${p}`));
  });

  it('two DELETEs racing on one result: one is 200 deleted, the other 404', async () => {
    const inner = new MemoryAsyncStore(1 << 20);
    cleanups.push(() => inner.close());
    // A store whose removal takes a while: both DELETEs have read the record before either removes it.
    const store = Object.assign(Object.create(inner) as MemoryAsyncStore, {
      remove: async (queue: string, id: string) => {
        await delay(100);
        return inner.remove(queue, id);
      },
    });
    const s = await stack({ store });
    const id = await done(s);
    const [a, b] = await Promise.all([
      request(s.url, { method: 'DELETE', path: `/.kueuer/requests/${id}` }),
      request(s.url, { method: 'DELETE', path: `/.kueuer/requests/${id}` }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 404]);
  });

  it('an Idempotency-Key reused with another callback URL is 422 idempotency_key_reused; the app runs once', async () => {
    const dispatcher = new CallbackDispatcher({ readSecret: async () => ({ key: Buffer.alloc(32, 3).toString('base64') }), log: silentLog });
    cleanups.push(() => dispatcher.close());
    const settings = parseCallbackSettings({ 'kueuer.io/async-callback-allow': 'https://hooks.example', 'kueuer.io/async-callback-secret': 'cb' });
    const s = await stack({ async: { mode: 'on-request', callbacks: { namespace: 'shop', settings } }, callbacks: dispatcher });
    const headers = { prefer: 'respond-async', 'idempotency-key': 'order-1' };
    const first = await request(s.url, {
      method: 'POST',
      path: '/pay',
      headers: { ...headers, 'kueuer-callback-url': 'https://hooks.example/a' },
      body: 'ten',
    });
    expect(first.status, first.body.toString()).toBe(202);
    const same = await request(s.url, { method: 'POST', path: '/pay', headers: { ...headers, 'kueuer-callback-url': 'https://hooks.example/a' }, body: 'ten' });
    expect(same.status).toBe(202);
    expect(same.headers.location).toBe(first.headers.location);
    const other = await request(s.url, {
      method: 'POST',
      path: '/pay',
      headers: { ...headers, 'kueuer-callback-url': 'https://hooks.example/b' },
      body: 'ten',
    });
    expect(other.status).toBe(422);
    expect(json(other)).toMatchObject({ error: 'idempotency_key_reused' });
    await delay(200);
    expect(appSaw.filter((x) => x.startsWith('POST /pay'))).toHaveLength(1);
  });

  it('the app does not see the respond-async preference Kueuer applied (it would answer 202 itself); other preferences pass', async () => {
    const s = await stack();
    for (const prefer of ['respond-async', 'RESPOND-ASYNC, return=minimal', 'return=minimal; x=1, respond-async, wait=10']) {
      const res = await request(s.url, { method: 'POST', path: '/p', headers: { prefer }, body: 'b' });
      expect(res.status).toBe(202);
      expect((await request(s.url, { path: `${String(res.headers.location)}?wait=10s` })).status).toBe(200);
    }
    expect(preferSaw).toEqual([undefined, 'return=minimal', 'return=minimal; x=1, wait=10']);
  });
});
