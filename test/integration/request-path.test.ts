/**
 * The whole request path, client → responder → queue → sidecar → app → back,
 * against the embedded backend and a real RabbitMQ.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, request } from '../helpers/http.js';
import { metricValue, startStack, type BackendName, type Stack } from '../helpers/stack.js';
import { delay, echoHandler, startTestApp, type TestApp } from '../helpers/test-app.js';

const backends: BackendName[] = ['memory', 'amqp', 'kafka'];

describe.each(backends)('request path on %s', (backend) => {
  let app: TestApp;
  let stack: Stack;

  beforeAll(async () => {
    app = await startTestApp();
    stack = await startStack(backend, { appPort: app.port, concurrency: 16 });
  });
  afterAll(async () => {
    await stack.stop();
    await app.close();
  });

  it.each(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND'])('passes %s with its path and query untouched', async (method) => {
    app.handle(echoHandler);
    const path = `/some/path%20x/?q=a%26b&q=2&empty=&ü=1`.replace('ü', '%C3%BC');
    const res = await request(stack.url, { method, path, body: method === 'GET' ? undefined : `body-of-${method}` });
    expect(res.status).toBe(200);
    expect(res.headers['x-echo-method']).toBe(method);
    expect(res.headers['x-echo-url']).toBe(path);
    expect(res.body.toString()).toBe(method === 'GET' ? '' : `body-of-${method}`);
  });

  it('answers HEAD with the app headers and no body', async () => {
    app.handle((_req, res) => {
      res.setHeader('content-length', '1234');
      res.setHeader('x-head', 'yes');
      res.end();
    });
    const res = await request(stack.url, { method: 'HEAD', path: '/h' });
    expect(res.status).toBe(200);
    expect(res.headers['x-head']).toBe('yes');
    expect(res.headers['content-length']).toBe('1234');
    expect(res.body.length).toBe(0);
  });

  it('carries every byte value in request and response bodies', async () => {
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
    app.handle((req, res) => {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(Buffer.from(req.body.map((b) => 255 - b)));
    });
    const res = await request(stack.url, { method: 'POST', path: '/bin', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect(app.received.at(-1)!.body.equals(bytes)).toBe(true);
    expect(res.body.equals(Buffer.from(bytes.map((b) => 255 - b)))).toBe(true);
  });

  it('carries large bodies (5 MiB up, 5 MiB down)', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    app.handle(echoHandler);
    const res = await request(stack.url, { method: 'PUT', path: '/big', body: big });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(big.length);
    expect(res.body.equals(big)).toBe(true);
  });

  it('passes a chunked request body, sent without content-length', async () => {
    app.handle(echoHandler);
    const url = new URL(stack.url);
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, method: 'POST', path: '/chunked', agent: false }, (res) => {
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve(data));
      });
      req.on('error', reject);
      req.write('part one, ');
      setTimeout(() => req.end('part two'), 20);
    });
    expect(body).toBe('part one, part two');
    expect(app.received.at(-1)!.headers['transfer-encoding']).toBeUndefined();
    expect(app.received.at(-1)!.headers['content-length']).toBe(String('part one, part two'.length));
  });

  it('settles Expect: 100-continue with the client and does not pass it to the app', async () => {
    app.handle(echoHandler);
    const res = await request(stack.url, { method: 'POST', path: '/expect', headers: { expect: '100-continue' }, body: 'x'.repeat(2048) });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('x'.repeat(2048));
    expect(app.received.at(-1)!.headers.expect).toBeUndefined();
  });

  it('writes back the exact status, header case and every set-cookie', async () => {
    app.handle((_req, res) => {
      res.writeHead(201, 'Created', [
        'Set-Cookie',
        'a=1; Path=/',
        'Set-Cookie',
        'b=2; HttpOnly',
        'set-cookie',
        'c=3',
        'X-Custom-Case',
        'Value With Spaces',
        'Content-Type',
        'text/plain; charset=utf-8',
      ]);
      res.end('made');
    });
    const res = await request(stack.url, { path: '/cookies' });
    expect(res.status).toBe(201);
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; HttpOnly', 'c=3']);
    const names = res.rawHeaders.filter((_, i) => i % 2 === 0);
    expect(names).toContain('X-Custom-Case');
    expect(res.headers['x-custom-case']).toBe('Value With Spaces');
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.body.toString()).toBe('made');
  });

  it.each([204, 302, 404, 418, 500, 503])('passes status %i through unchanged', async (status) => {
    app.handle((_req, res) => {
      res.statusCode = status;
      if (status === 302) res.setHeader('location', '/elsewhere');
      res.end(status === 204 ? undefined : `status ${status}`);
    });
    const res = await request(stack.url, { path: `/status/${status}` });
    expect(res.status).toBe(status);
    expect(res.body.toString()).toBe(status === 204 ? '' : `status ${status}`);
    if (status === 302) expect(res.headers.location).toBe('/elsewhere');
  });

  it('strips hop-by-hop headers both ways and keeps end-to-end ones', async () => {
    app.handle((_req, res) => {
      res.writeHead(200, ['Connection', 'X-App-Hop', 'X-App-Hop', 'secret', 'Keep-Alive', 'timeout=1', 'X-App-Kept', 'yes']);
      res.end('ok');
    });
    const res = await request(stack.url, {
      path: '/hop',
      headers: ['Connection', 'X-Client-Hop', 'X-Client-Hop', 'private', 'TE', 'trailers', 'X-Client-Kept', 'yes'],
    });
    const got = app.received.at(-1)!;
    expect(got.headers['x-client-hop']).toBeUndefined();
    expect(got.headers.te).toBeUndefined();
    expect(got.headers['x-client-kept']).toBe('yes');
    expect(res.headers['x-app-hop']).toBeUndefined();
    expect(res.headers['x-app-kept']).toBe('yes');
  });

  it("gives the app the request id and does not let a client spoof Kueuer's headers", async () => {
    app.handle(echoHandler);
    const res = await request(stack.url, {
      path: '/spoof',
      headers: { 'X-Kueuer-Request-Id': 'attacker-chosen', 'x-kueuer-reply-to': 'someone-elses-inbox', 'x-kueuer-redelivered': 'true' },
    });
    const got = app.received.at(-1)!;
    const id = got.headers['x-kueuer-request-id'];
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(got.rawHeaders.filter((h) => h.toLowerCase() === 'x-kueuer-request-id')).toHaveLength(1);
    expect(got.headers['x-kueuer-reply-to']).toBeUndefined();
    expect(got.headers['x-kueuer-redelivered']).toBeUndefined();
    expect(res.headers['x-kueuer-request-id']).toBe(id); // the client sees the same id for support tickets
  });

  it('answers 200 concurrent requests with random app delays, each with its own answer', async () => {
    app.handle((req, res) => {
      setTimeout(() => res.end(`answer:${req.url}`), Math.random() * 50);
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 200 });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => request(stack.url, { path: `/n/${i}`, agent })));
    agent.destroy();
    results.forEach((res, i) => {
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe(`answer:/n/${i}`);
    });
    const ids = new Set(results.map((r) => r.headers['x-kueuer-request-id']));
    expect(ids.size).toBe(200);
  });

  it('hands the app at most --concurrency requests at once', async () => {
    const limited = await startStack(backend, { appPort: app.port, concurrency: 3 });
    let running = 0;
    let peak = 0;
    app.handle((_req, res) => {
      running++;
      peak = Math.max(peak, running);
      setTimeout(() => {
        running--;
        res.end('ok');
      }, 40);
    });
    try {
      const results = await Promise.all(Array.from({ length: 15 }, (_, i) => request(limited.url, { path: `/limit/${i}` })));
      for (const r of results) expect(r.status).toBe(200);
      expect(peak).toBe(3);
    } finally {
      await limited.stop();
    }
  });

  it('reuses kept-alive connections to the app', async () => {
    app.handle((_req, res) => res.end('ok'));
    const before = app.received.length;
    for (let i = 0; i < 10; i++) expect((await request(stack.url, { path: `/keepalive/${i}` })).status).toBe(200);
    const ports = new Set(app.received.slice(before).map((r) => r.remotePort));
    expect(ports.size).toBe(1);
    expect(ports.has(undefined)).toBe(false);
  });

  it('never calls the app again once it was sent the request: a reset after reading it is 502 at once (issue 12, item 2)', async () => {
    // This test used to expect a second call; the replay rule (docs/reference/http.md) forbids it, since the app may have acted on the request.
    let calls = 0;
    app.handle((_req, res) => {
      calls++;
      if (calls === 1) res.socket?.destroy();
      else res.end('second try');
    });
    const started = Date.now();
    const res = await request(stack.url, { path: '/reset-once', method: 'POST', body: 'pay once' });
    expect(res.status).toBe(502);
    expect(json(res).error).toBe('app_unreachable');
    expect(Date.now() - started).toBeLessThan(2000);
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toBe(1);
  });

  it('exports its metrics', async () => {
    expect(await metricValue(stack.responderRegistry, 'kueuer_responder_requests_total', { code: '200' })).toBeGreaterThan(200);
    expect(await metricValue(stack.responderRegistry, 'kueuer_responder_pending_requests')).toBe(0);
    expect(await metricValue(stack.sidecarRegistry, 'kueuer_sidecar_requests_total', { code: '200' })).toBeGreaterThan(200);
    expect(await metricValue(stack.sidecarRegistry, 'kueuer_sidecar_in_flight_requests')).toBe(0);
    const text = await stack.sidecarRegistry.metrics();
    expect(text).toMatch(/kueuer_sidecar_queue_wait_seconds_count\{queue="[^"]+"\} [1-9]/);
    const responderText = await stack.responderRegistry.metrics();
    expect(responderText).toMatch(/kueuer_responder_request_duration_seconds_count\{queue="[^"]+"\} [1-9]/);
  });

  it('passes an app 500 through unchanged, body and headers', async () => {
    app.handle((_req, res) => {
      res.writeHead(500, { 'x-app-error': 'boom', 'content-type': 'text/plain' });
      res.end('internal trouble');
    });
    const res = await request(stack.url, { path: '/err' });
    expect(res.status).toBe(500);
    expect(res.headers['x-app-error']).toBe('boom');
    expect(res.body.toString()).toBe('internal trouble');
  });

  it('a client that goes away frees its pending entry; its late reply is dropped and counted', async () => {
    app.handle((_req, res) => setTimeout(() => res.end('too late'), 300));
    const lateBefore = await metricValue(stack.responderRegistry, 'kueuer_responder_late_replies_total');
    const goneBefore = await metricValue(stack.responderRegistry, 'kueuer_responder_client_disconnects_total');
    const controller = new AbortController();
    const pending = request(stack.url, { path: '/abandon', signal: controller.signal }).catch((e: Error) => e);
    await delay(100);
    expect(stack.responder.responder.pending.size).toBe(1);
    controller.abort();
    await pending;
    await delay(50);
    expect(stack.responder.responder.pending.size).toBe(0);
    expect(await metricValue(stack.responderRegistry, 'kueuer_responder_client_disconnects_total')).toBe(goneBefore + 1);
    await delay(400);
    expect(await metricValue(stack.responderRegistry, 'kueuer_responder_late_replies_total')).toBe(lateBefore + 1);
  });
});
