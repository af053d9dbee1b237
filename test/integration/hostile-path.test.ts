/**
 * Hostile messages and vanished peers on the real brokers (issue 12): a crafted
 * reply destination, a queued request the app cannot be sent, a responder that
 * dies with requests in flight, secrets in refused messages; and the app
 * client against requests undici would refuse and deadlines past Node's timer
 * range.
 */
import { connect, createServer, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { startResponder, startSidecar } from '../helpers/components.js';
import { MemoryTransport } from '../../shared/transport/memory.js';
import { decodeResponse, encodeRequest, type QueuedRequest, type QueuedResponse, type WireMessage } from '../../shared/envelope.js';
import { newRequestId } from '../../shared/request-id.js';
import type { Transport } from '../../shared/transport/transport.js';
import { AppClient } from '../../sidecar/app-client.js';
import { json, request } from '../helpers/http.js';
import { metricValue, newTransport, silentLog, startStack, uniqueQueue, waitFor, type BackendName } from '../helpers/stack.js';
import { echoHandler, startTestApp, type TestApp } from '../helpers/test-app.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function app(): Promise<TestApp> {
  const a = await startTestApp();
  cleanups.push(() => a.close());
  return a;
}

async function transport(backend: BackendName): Promise<Transport> {
  const t = await newTransport(backend);
  cleanups.push(() => t.close());
  return t;
}

function queuedRequest(queue: string, replyTo: string, over: Partial<QueuedRequest> = {}): QueuedRequest {
  return {
    id: newRequestId(),
    queue,
    replyTo,
    deadline: Date.now() + 10_000,
    enqueuedAt: Date.now(),
    method: 'GET',
    path: '/x',
    headers: [],
    body: Buffer.alloc(0),
    ...over,
  };
}

/** A sidecar on its own transport, logging into `lines`. */
async function sidecarOn(backend: BackendName, queue: string, appPort: number, lines: string[] = []) {
  const t = await transport(backend);
  const registry = new Registry();
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  );
  const sidecar = await startSidecar({ app: { host: '127.0.0.1', port: appPort }, queue, concurrency: 2, maxResponseBytes: 1 << 20 }, t, registry, log);
  cleanups.push(() => sidecar.stop());
  await sidecar.consuming;
  return { registry, transport: t };
}

describe.each(['amqp', 'kafka'] as const)('hostile messages on %s', (backend) => {
  it('answers a queued request the app cannot be sent (OPTIONS *, two Hosts) at once, without calling the app', async () => {
    const a = await app();
    const queue = uniqueQueue();
    await sidecarOn(backend, queue, a.port);
    const responderSide = await transport(backend);
    const replies: QueuedResponse[] = [];
    const inbox = await responderSide.openReplyInbox(queue, (m) => replies.push(decodeResponse(m)));
    cleanups.push(() => inbox.close());
    await waitFor(() => responderSide.isReady(), 20_000, 'the reply inbox');
    const star = queuedRequest(queue, inbox.address, { method: 'OPTIONS', path: '*' });
    const hosts = queuedRequest(queue, inbox.address, {
      headers: [
        ['host', 'a'],
        ['Host', 'b'],
      ],
    });
    const started = Date.now();
    await responderSide.publishRequest(queue, encodeRequest(star), { timeoutMs: 5000 });
    await responderSide.publishRequest(queue, encodeRequest(hosts), { timeoutMs: 5000 });
    await waitFor(() => replies.length === 2, 8000, 'both refusals');
    expect(Date.now() - started).toBeLessThan(8000);
    const byId = new Map(replies.map((r) => [r.id, r]));
    expect(byId.get(star.id)?.status).toBe(400);
    expect(JSON.parse(byId.get(star.id)!.body.toString()).error).toBe('invalid_target');
    expect(JSON.parse(byId.get(hosts.id)!.body.toString()).error).toBe('invalid_header');
    expect(a.received).toHaveLength(0);
  });
});

describe('hostile reply destinations on amqp', () => {
  it('never publishes a reply to a destination that is not a reply inbox (a crafted reply-to naming the request queue)', async () => {
    const a = await app();
    const queue = uniqueQueue();
    const { registry } = await sidecarOn('amqp', queue, a.port);
    const publisher = await transport('amqp');
    await publisher.publishRequest(queue, encodeRequest(queuedRequest(queue, queue, { method: 'POST', body: Buffer.from('once') })), { timeoutMs: 5000 });
    await waitFor(
      async () => (await metricValue(registry, 'kueuer_sidecar_replies_dropped_total', { reason: 'invalid_destination' })) === 1,
      8000,
      'the reply to be dropped',
    );
    // Before the fix the reply landed on the request queue and re-ran the app up to 29 times.
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.received).toHaveLength(1);
  });
});

describe('a responder replica that dies with requests in flight (amqp)', () => {
  it('drops their replies after a short bound, acks them without rerunning the app, and frees the slots', async () => {
    const a = await app();
    a.handle((req, res) => setTimeout(() => echoHandler(req, res), 800));
    const stack = await startStack('amqp', { appPort: a.port, concurrency: 2, timeoutMs: 60_000 });
    cleanups.push(() => stack.sidecar.stop().then(() => stack.sidecarTransport.close()));
    const inFlight = [request(stack.url, { path: '/one' }).catch(() => null), request(stack.url, { path: '/two' }).catch(() => null)];
    cleanups.push(() => stack.responder.responder.app.close());
    await waitFor(() => a.received.length === 2, 5000, 'the app to take both requests');
    // The responder goes: its transport closes, which deletes its inbox (a quorum queue that would otherwise outlive it).
    await stack.responderTransport.close();
    stack.responder.responder.app.server.closeAllConnections();
    await Promise.all(inFlight);
    await waitFor(
      async () => (await metricValue(stack.sidecarRegistry, 'kueuer_sidecar_replies_dropped_total', { reason: 'inbox_gone' })) === 2,
      12_000,
      'both replies to be dropped',
    );
    // A new responder on the same queue is answered at once: no slot is held by the dead one's replies.
    a.handle(echoHandler);
    const fresh = await transport('amqp');
    const responder = await startResponder(
      {
        listen: { host: '127.0.0.1', port: 0 },
        queue: stack.queue,
        timeoutMs: 10_000,
        maxBodyBytes: 1024,
        maxPending: 10,
        publishTimeoutMs: 1000,
        headersTimeoutMs: 60_000,
        bodyTimeoutMs: 30_000,
        sendTimeoutMs: 30_000,
      },
      fresh,
      new Registry(),
      silentLog,
    );
    cleanups.push(() => responder.responder.drain(500));
    await waitFor(() => fresh.isReady(), 20_000, 'the new responder');
    const started = Date.now();
    const res = await request(`http://127.0.0.1:${responder.address.port}`, { path: '/after' });
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2000);
    // Exactly one call each: the dead responder's two, and the new one.
    await new Promise((r) => setTimeout(r, 1000));
    expect(a.received.map((r) => r.url).sort()).toEqual(['/after', '/one', '/two']);
  });
});

describe('secrets in refused messages', () => {
  it('logs a refused message by field names and sizes, never its cookie or authorization values', async () => {
    const a = await app();
    const queue = uniqueQueue();
    const lines: string[] = [];
    await sidecarOn('amqp', queue, a.port, lines);
    const publisher = await transport('amqp');
    const bad: WireMessage = encodeRequest(
      queuedRequest(queue, 'kueuer.reply.x.1', {
        headers: [
          ['cookie', 'session=SECRET-COOKIE'],
          ['authorization', 'Bearer SECRET-TOKEN'],
        ],
      }),
    );
    bad.meta['kueuer-id'] = 'not-an-id'; // malformed: dropped and logged
    const unforwardable = encodeRequest(queuedRequest(queue, 'kueuer.reply.x.1', { path: '*', headers: [['cookie', 'session=SECRET-COOKIE']] }));
    await publisher.publishRequest(queue, bad, { timeoutMs: 5000 });
    await publisher.publishRequest(queue, unforwardable, { timeoutMs: 5000 });
    await waitFor(
      () => lines.some((l) => l.includes('dropped a malformed request message')) && lines.some((l) => l.includes('refused a request the app cannot be sent')),
      8000,
      'both log lines',
    );
    const text = lines.join('');
    expect(text).not.toContain('SECRET');
    expect(text).toContain('"kueuer-headers":');
  });
});

describe('the app client', () => {
  it('keeps its only connection after a request undici refuses (two Hosts): the next request is answered', async () => {
    const a = await app();
    const client = new AppClient({ host: '127.0.0.1', port: a.port }, 1, 1 << 20);
    cleanups.push(async () => client.close());
    const req = queuedRequest('q', 'r', {
      headers: [
        ['host', 'a'],
        ['host', 'b'],
      ],
    });
    const refused = await Promise.race([client.call(req, false, silentLog, () => undefined), new Promise((r) => setTimeout(() => r('hung'), 3000))]);
    expect(refused).toMatchObject({ kind: 'invalid_response' });
    const next = await Promise.race([
      client.call(queuedRequest('q', 'r'), false, silentLog, () => undefined),
      new Promise((r) => setTimeout(() => r('hung'), 3000)),
    ]);
    expect(next).toMatchObject({ kind: 'response', response: { status: 200 } });
  });

  it('waits for the app when the deadline is beyond Node timer range (30 days), instead of timing out at once', async () => {
    const a = await app();
    a.handle((req, res) => setTimeout(() => echoHandler(req, res), 200));
    const client = new AppClient({ host: '127.0.0.1', port: a.port }, 1, 1 << 20);
    cleanups.push(async () => client.close());
    const outcome = await client.call(queuedRequest('q', 'r', { deadline: Date.now() + 30 * 24 * 3_600_000 }), false, silentLog, () => undefined);
    expect(outcome).toMatchObject({ kind: 'response', response: { status: 200 } });
  });

  it('retries a request that never reached a connection (nothing listening yet), then answers', async () => {
    const a = await app();
    const port = a.port;
    await a.close();
    cleanups.pop();
    const client = new AppClient({ host: '127.0.0.1', port }, 1, 1 << 20);
    cleanups.push(async () => client.close());
    let retries = 0;
    const pending = client.call(queuedRequest('q', 'r', { method: 'POST', body: Buffer.from('b') }), false, silentLog, () => retries++);
    await new Promise((r) => setTimeout(r, 300));
    const back = await startTestApp(port);
    cleanups.push(() => back.close());
    const outcome = await pending;
    expect(outcome).toMatchObject({ kind: 'response', response: { status: 200 } });
    expect(retries).toBeGreaterThan(0);
    expect(back.received).toHaveLength(1);
  });
});

describe('an app that goes down in the middle of a request', () => {
  it('is sent the request once more, with x-kueuer-redelivered: true, when it is back; one that stays up and closes is called once', async () => {
    const a = await app();
    const port = a.port;
    const client = new AppClient({ host: '127.0.0.1', port }, 2, 1 << 20);
    cleanups.push(async () => client.close());
    // Stays up, closes the connection after reading the request: one call, 502.
    a.handle((_req, res) => res.socket?.destroy());
    const closed = await client.call(queuedRequest('q', 'r', { method: 'POST', body: Buffer.from('pay') }), false, silentLog, () => undefined);
    expect(closed).toMatchObject({ kind: 'unreachable' });
    expect(a.received).toHaveLength(1);
    // Crashes with the request (connection cut, port closed), restarts 300 ms later: sent again, flagged.
    a.handle(() => undefined);
    const pending = client.call(queuedRequest('q', 'r', { method: 'POST', body: Buffer.from('pay') }), false, silentLog, () => undefined);
    await waitFor(() => a.received.length === 2, 3000, 'the app to take the request');
    await a.close();
    await new Promise((r) => setTimeout(r, 300));
    const back = await startTestApp(port);
    cleanups.push(() => back.close());
    const outcome = await pending;
    expect(outcome).toMatchObject({ kind: 'response', response: { status: 200 } });
    expect(back.received).toHaveLength(1);
    expect(back.received[0]!.headers['x-kueuer-redelivered']).toBe('true');
  });
});

describe('what a hostile review found (issue 12)', () => {
  /** A raw TCP app that writes `answer` to every request. */
  async function rawApp(answer: string): Promise<{ port: number; calls: () => number }> {
    let calls = 0;
    const server = createServer((socket) => {
      socket.once('data', () => {
        calls++;
        socket.end(Buffer.from(answer, 'latin1'));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    return { port: (server.address() as AddressInfo).port, calls: () => calls };
  }
  const call = (port: number, over: Partial<QueuedRequest> = {}) => {
    const client = new AppClient({ host: '127.0.0.1', port }, 1, 1 << 20);
    cleanups.push(async () => client.close());
    return client.call(queuedRequest('q', 'r', over), false, silentLog, () => undefined);
  };

  it('answers at once when the app sends a non-ASCII reason phrase (it falls back to the standard one)', async () => {
    const a = await rawApp('HTTP/1.1 200 Caf\xe9\r\ncontent-length: 2\r\n\r\nhi');
    const outcome = await call(a.port);
    expect(outcome).toMatchObject({ kind: 'response', response: { status: 200 } });
    expect((outcome as { response: { reason?: string } }).response.reason).toBeUndefined();
  });

  it('reports a malformed answer (control byte in a header, unsolicited 101) as invalid_app_response, not app_unreachable', async () => {
    for (const answer of [
      'HTTP/1.1 200 OK\r\nx-bad: a\x01b\r\ncontent-length: 2\r\n\r\nhi',
      'HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n',
    ]) {
      const a = await rawApp(answer);
      expect(await call(a.port), JSON.stringify(answer)).toMatchObject({ kind: 'invalid_response' });
      expect(a.calls()).toBe(1);
    }
  });

  it('never sends the app a request whose deadline passed while it waited for a connection', async () => {
    const a = await app();
    a.handle((req, res) => setTimeout(() => echoHandler(req, res), 1200));
    const client = new AppClient({ host: '127.0.0.1', port: a.port }, 1, 1 << 20);
    cleanups.push(async () => client.close());
    const first = client.call(queuedRequest('q', 'r', { path: '/first' }), false, silentLog, () => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const late = await client.call(queuedRequest('q', 'r', { path: '/late', deadline: Date.now() + 300 }), false, silentLog, () => undefined);
    expect(late).toMatchObject({ kind: 'timeout' });
    expect(await first).toMatchObject({ kind: 'response' });
    await new Promise((r) => setTimeout(r, 500));
    expect(a.received.map((r) => r.url)).toEqual(['/first']);
  });

  it('sends an idempotent request once more, flagged, when the app closed the connection before answering (a POST is called once: see above)', async () => {
    const a = await app();
    let calls = 0;
    a.handle((req, res) => {
      if (++calls === 1) res.socket?.destroy();
      else echoHandler(req, res);
    });
    expect(await call(a.port, { method: 'GET', path: '/get' })).toMatchObject({ kind: 'response', response: { status: 200 } });
    expect(a.received.map((r) => [r.url, r.headers['x-kueuer-redelivered']])).toEqual([
      ['/get', undefined],
      ['/get', 'true'],
    ]);
  });

  it('keeps the connection open after refusing a bodyless request, so a pipelined request behind it is answered', async () => {
    const a = await app();
    const stack = await startStack('memory', { appPort: a.port });
    cleanups.push(() => stack.stop());
    const port = Number(new URL(stack.url).port);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n'));
      let got = '';
      socket.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if ((got.match(/HTTP\/1\.1 \d{3}/g) ?? []).length === 2) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.on('error', reject);
      setTimeout(() => resolve(got), 3000);
    });
    expect(raw.match(/HTTP\/1\.1 (\d{3})/g)).toEqual(['HTTP/1.1 400', 'HTTP/1.1 200']);
  });
});

describe("requests Node's parser refuses", () => {
  it("get Kueuer's JSON answer with a request id, and the log never holds their bytes (a cookie), even at trace level", async () => {
    const a = await app();
    const lines: string[] = [];
    const log = pino({ level: 'trace' }, new Writable({ write: (c: Buffer, _e, done) => (lines.push(c.toString()), done()) }));
    const transport = new MemoryTransport({ visibilityTimeoutMs: 5000 });
    cleanups.push(() => transport.close());
    const responder = await startResponder(
      {
        listen: { host: '127.0.0.1', port: 0 },
        queue: 'q',
        timeoutMs: 5000,
        maxBodyBytes: 1024,
        maxPending: 10,
        publishTimeoutMs: 1000,
        headersTimeoutMs: 60_000,
        bodyTimeoutMs: 30_000,
        sendTimeoutMs: 30_000,
      },
      transport,
      new Registry(),
      log,
    );
    cleanups.push(() => responder.responder.drain(100));
    const rawExchange = (bytes: string) =>
      new Promise<string>((resolve) => {
        const socket = connect(responder.address.port, '127.0.0.1', () => socket.write(bytes));
        let got = '';
        socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
        socket.on('close', () => resolve(got));
        socket.on('error', () => resolve(got));
      });
    const folded = await rawExchange('GET / HTTP/1.1\r\nHost: a\r\nCookie: SECRET-COOKIE=1\r\nX-F: a\r\n b\r\n\r\n');
    expect(folded).toMatch(/^HTTP\/1\.1 400 /);
    const body = JSON.parse(folded.slice(folded.indexOf('\r\n\r\n') + 4)) as { error: string; requestId: string };
    expect(body.error).toBe('malformed_request');
    expect(body.requestId).toMatch(/^[0-9a-f]{32}$/);
    const noHost = await rawExchange('GET / HTTP/1.1\r\nConnection: close\r\n\r\n');
    expect(noHost).toMatch(/^HTTP\/1\.1 400 /);
    expect(noHost).toContain('"error":"invalid_header"');
    expect(a.received).toHaveLength(0);
    expect(lines.join('')).not.toContain('SECRET');
    expect(lines.some((l) => l.includes(body.requestId) && l.includes('refused a malformed request'))).toBe(true);
  });
});

describe('through the responder', () => {
  it('answers a long target 414 and an absolute-form target 400 at once, without queuing them', async () => {
    const a = await app();
    const stack = await startStack('memory', { appPort: a.port, timeoutMs: 8000 });
    cleanups.push(() => stack.stop());
    const started = Date.now();
    const long = await request(stack.url, { path: `/${'a'.repeat(17 * 1024)}` });
    expect(long.status).toBe(414);
    expect(json(long).error).toBe('uri_too_long');
    const nine = await request(stack.url, { path: `/${'b'.repeat(9 * 1024)}` });
    expect(nine.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(a.received).toHaveLength(1);
  });
});
