/**
 * Callback delivery against real HTTP receivers on loopback (allowed by each
 * test's allow-list, host named exactly): signatures verify, failures are
 * retried with backoff and dead-lettered after the bound, and hostile
 * destinations are refused with nothing sent.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { CallbackDispatcher, type CallbackDispatcherOptions, type DeadLetterRecord } from '../../responder/callbacks/dispatcher.js';
import { parseCallbackSettings } from '../../responder/callbacks/settings.js';
import { verifyCallback } from '../../responder/callbacks/signature.js';

const KEY = Buffer.from('integration-test-signing-key-32b');
const readSecret = async () => ({ key: KEY.toString('base64') });
const ids = ['1', '2', '3', '4', '5', '6', '7', '8', '9'].map((d) => d.repeat(32));

interface Seen {
  headers: IncomingMessage['headers'];
  body: Buffer;
  verified: boolean;
}

/** A receiver that verifies each delivery's signature and answers with the next scripted status (the last one repeats). */
async function receiver(script: Array<number | ((res: ServerResponse) => void)>): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const verified = verifyCallback({ key: KEY, headers: req.headers, body }).ok;
      seen.push({ headers: req.headers, body, verified });
      const step = script[Math.min(seen.length - 1, script.length - 1)]!;
      if (!verified) res.writeHead(401).end();
      else if (typeof step === 'number') res.writeHead(step).end();
      else step(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { server, port: (server.address() as AddressInfo).port, seen };
}

/** A receiver that answers 200 only once release() is called; onRequest sees each request as it arrives. */
async function heldReceiver(onRequest: () => void = () => undefined) {
  let release = () => undefined as void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const r = await receiver([
    (res) => {
      onRequest();
      void held.then(() => res.writeHead(200).end());
    },
  ]);
  return { ...r, release };
}

const servers: Server[] = [];
const dispatchers: CallbackDispatcher[] = [];
afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((d) => d.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function setup(allow: string, options: Partial<CallbackDispatcherOptions> = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const deadLetters: DeadLetterRecord[] = [];
  const registry = new Registry();
  const dispatcher = new CallbackDispatcher({
    readSecret,
    log: pino({ level: 'info' }, sink),
    registry,
    onDeadLetter: (r) => void deadLetters.push(r),
    backoff: { baseMs: 20, capMs: 100, jitter: true },
    maxAttempts: 4,
    attemptTimeoutMs: 5000,
    ...options,
  });
  dispatchers.push(dispatcher);
  const settings = parseCallbackSettings({ 'kueuer.io/async-callback-allow': allow, 'kueuer.io/async-callback-secret': 'hooks' });
  if (!settings.ok || !settings.value) throw new Error(String(settings.ok || settings.problems));
  const send = (callbackUrl: string, requestId = ids[0]!, status = 201, queue = 'orders') =>
    dispatcher.deliver({
      requestId,
      namespace: 'shop',
      queue,
      callbackUrl,
      settings: settings.value,
      response: {
        status,
        headers: [
          ['Content-Type', 'application/json'],
          ['Set-Cookie', 'a=b'],
        ],
        body: Buffer.from('{"done":true}'),
      },
    });
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    const v = (m?.values as Array<{ labels: Record<string, string>; value: number }> | undefined)?.find((x) =>
      Object.entries(labels).every(([k, val]) => x.labels[k] === val),
    );
    return v?.value ?? 0;
  };
  return { dispatcher, send, deadLetters, lines, metric, settings: settings.value };
}

describe('callback delivery', () => {
  it('delivers the exact response, signed, after two 500s: two retries, delivered once', async () => {
    const r = await receiver([500, 500, 200]);
    const { dispatcher, send, deadLetters, metric } = setup(`http://127.0.0.1:${r.port}`);
    expect(send(`http://127.0.0.1:${r.port}/done?order=7`)).toBe(true);
    await dispatcher.idle();
    expect(r.seen).toHaveLength(3);
    expect(r.seen.every((s) => s.verified)).toBe(true);
    expect(r.seen.map((s) => s.headers['x-kueuer-attempt'])).toEqual(['1', '2', '3']);
    const last = r.seen[2]!;
    expect(last.body.toString()).toBe('{"done":true}');
    expect(last.headers['x-kueuer-status']).toBe('201');
    expect(last.headers['webhook-id']).toBe(ids[0]);
    expect(last.headers['x-kueuer-request-id']).toBe(ids[0]);
    expect(last.headers['content-type']).toBe('application/json');
    expect(last.headers['set-cookie']).toBeUndefined();
    expect(deadLetters).toEqual([]);
    expect(await metric('kueuer_responder_callbacks_retried_total', { queue: 'orders' })).toBe(2);
    expect(await metric('kueuer_responder_callbacks_delivered_total', { queue: 'orders' })).toBe(1);
  });

  it('dead-letters after maxAttempts failures, with a hook call and a log line naming cause and fix', async () => {
    const r = await receiver([503]);
    const { dispatcher, send, deadLetters, lines, metric } = setup(`http://127.0.0.1:${r.port}`, { maxAttempts: 3 });
    send(`http://127.0.0.1:${r.port}/done`);
    await dispatcher.idle();
    expect(r.seen).toHaveLength(3);
    expect(deadLetters).toMatchObject([{ requestId: ids[0], reason: 'exhausted', attempts: 3, lastStatus: 503, namespace: 'shop', queue: 'orders' }]);
    const line = lines.find((l) => l.msg === 'callback dead-lettered');
    expect(line).toMatchObject({ reqId: ids[0], reason: 'exhausted', fix: expect.stringMatching(/receiver/) });
    expect(String(line?.cause)).toMatch(/503/);
    expect(await metric('kueuer_responder_callbacks_dead_lettered_total', { queue: 'orders', reason: 'exhausted' })).toBe(1);
    expect(await metric('kueuer_responder_callbacks_retried_total', { queue: 'orders' })).toBe(2);
  });

  it('does not retry a 4xx other than 408 and 429', async () => {
    const r = await receiver([404]);
    const { dispatcher, send, deadLetters } = setup(`http://127.0.0.1:${r.port}`);
    send(`http://127.0.0.1:${r.port}/gone`);
    await dispatcher.idle();
    expect(r.seen).toHaveLength(1);
    expect(deadLetters).toMatchObject([{ reason: 'rejected', lastStatus: 404, attempts: 1 }]);
  });

  it('does not follow a redirect, even to an allowed destination', async () => {
    const r = await receiver([(res) => res.writeHead(307, { location: '/elsewhere' }).end()]);
    const { dispatcher, send, deadLetters } = setup(`http://127.0.0.1:${r.port}`);
    send(`http://127.0.0.1:${r.port}/done`);
    await dispatcher.idle();
    expect(r.seen).toHaveLength(1);
    expect(deadLetters).toMatchObject([{ reason: 'redirect', lastStatus: 307 }]);
  });

  it('honours Retry-After up to its bound: a huge one is cut to maxRetryAfterMs', async () => {
    const r = await receiver([(res) => res.writeHead(429, { 'retry-after': '999999999' }).end(), 200]);
    const { dispatcher, send } = setup(`http://127.0.0.1:${r.port}`, { maxRetryAfterMs: 300 });
    const started = Date.now();
    send(`http://127.0.0.1:${r.port}/done`);
    await dispatcher.idle();
    expect(r.seen).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('connects to the address it checked: a name only the injected resolver knows reaches the receiver', async () => {
    const r = await receiver([200]);
    const looked: string[] = [];
    const { dispatcher, send } = setup(`http://receiver.kueuer.test:${r.port}`, {
      lookup: async (host) => {
        looked.push(host);
        return [{ address: '127.0.0.1', family: 4 }];
      },
    });
    send(`http://receiver.kueuer.test:${r.port}/done`);
    await dispatcher.idle();
    expect(looked).toEqual(['receiver.kueuer.test']);
    expect(r.seen).toHaveLength(1);
    expect(r.seen[0]!.headers.host).toBe(`receiver.kueuer.test:${r.port}`);
  });

  it('tries every checked address of a name: a first address that refuses does not fail the try', async () => {
    const r = await receiver([200]);
    const { dispatcher, send, deadLetters } = setup(`http://dual.kueuer.test:${r.port}`, {
      maxAttempts: 1,
      lookup: async () => [
        { address: '::1', family: 6 },
        { address: '127.0.0.1', family: 4 },
      ],
    });
    send(`http://dual.kueuer.test:${r.port}/done`);
    await dispatcher.idle();
    expect(deadLetters).toEqual([]);
    expect(r.seen).toHaveLength(1);
  });

  it("keeps one Service's hung receiver from taking every try: at most perQueueConcurrency in flight per queue", async () => {
    let open = 0;
    let most = 0;
    const slow = await heldReceiver(() => (most = Math.max(most, ++open)));
    const fast = await receiver([200]);
    const { dispatcher, send } = setup(`http://127.0.0.1:${slow.port}, http://127.0.0.1:${fast.port}`, { concurrency: 4, perQueueConcurrency: 2 });
    for (const id of ids.slice(0, 6)) expect(send(`http://127.0.0.1:${slow.port}/done`, id, 200, 'slow')).toBe(true);
    expect(send(`http://127.0.0.1:${fast.port}/done`, ids[6], 200, 'orders')).toBe(true);
    for (let waited = 0; (fast.seen.length === 0 || slow.seen.length < 2) && waited < 3000; waited += 20)
      await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fast.seen).toHaveLength(1);
    expect(slow.seen).toHaveLength(2);
    expect(most).toBe(2);
    slow.release();
    await dispatcher.idle();
    expect(slow.seen).toHaveLength(6);
  });

  it("keeps one Service from holding every place: past maxQueuedPerQueue its callbacks are shed, other Services' are taken", async () => {
    const r = await heldReceiver();
    const { dispatcher, send, deadLetters } = setup(`http://127.0.0.1:${r.port}`, { maxQueued: 4, maxQueuedPerQueue: 2 });
    expect(send(`http://127.0.0.1:${r.port}/a`, ids[0], 200, 'slow')).toBe(true);
    expect(send(`http://127.0.0.1:${r.port}/a`, ids[1], 200, 'slow')).toBe(true);
    expect(send(`http://127.0.0.1:${r.port}/a`, ids[2], 200, 'slow')).toBe(false);
    expect(deadLetters).toMatchObject([{ requestId: ids[2], queue: 'slow', reason: 'queue_full', detail: expect.stringMatching(/slow/) }]);
    expect(send(`http://127.0.0.1:${r.port}/b`, ids[3], 200, 'orders')).toBe(true);
    r.release();
    await dispatcher.idle();
    expect(r.seen).toHaveLength(3);
  });

  it("counts the app's headers and the URL in maxQueuedBytes, not only the body", async () => {
    const r = await heldReceiver();
    const { dispatcher, deadLetters, settings } = setup(`http://127.0.0.1:${r.port}`, { maxQueuedBytes: 30_000 });
    const job = (requestId: string) => ({
      requestId,
      namespace: 'shop',
      queue: 'orders',
      callbackUrl: `http://127.0.0.1:${r.port}/done`,
      settings,
      response: { status: 200, headers: [['x-big', 'v'.repeat(12_000)]] as Array<[string, string]>, body: Buffer.alloc(0) },
    });
    expect(dispatcher.deliver(job(ids[0]!))).toBe(true);
    expect(dispatcher.deliver(job(ids[1]!))).toBe(true);
    expect(dispatcher.deliver(job(ids[2]!))).toBe(false);
    expect(deadLetters).toMatchObject([{ requestId: ids[2], reason: 'queue_full' }]);
    r.release();
    await dispatcher.idle();
  });

  it('bounds the queue: past maxQueued a callback is dead-lettered at once as queue_full', async () => {
    const r = await heldReceiver();
    const { dispatcher, send, deadLetters } = setup(`http://127.0.0.1:${r.port}`, { maxQueued: 1, concurrency: 1 });
    expect(send(`http://127.0.0.1:${r.port}/a`, ids[1])).toBe(true);
    expect(send(`http://127.0.0.1:${r.port}/b`, ids[2])).toBe(false);
    expect(deadLetters).toMatchObject([{ requestId: ids[2], reason: 'queue_full', attempts: 0 }]);
    r.release();
    await dispatcher.idle();
    expect(r.seen).toHaveLength(1);
  });
});

describe('network errors, shutdown and the submit check', () => {
  it('retries a refused connection, then dead-letters it naming the error', async () => {
    const r = await receiver([200]);
    await new Promise((resolve) => r.server.close(resolve));
    const { dispatcher, send, deadLetters, metric } = setup(`http://127.0.0.1:${r.port}`, { maxAttempts: 2 });
    send(`http://127.0.0.1:${r.port}/done`);
    await dispatcher.idle();
    expect(deadLetters).toMatchObject([{ reason: 'exhausted', attempts: 2, detail: expect.stringMatching(/ECONNREFUSED/) }]);
    expect(await metric('kueuer_responder_callbacks_retried_total', { queue: 'orders' })).toBe(1);
  });

  it('gives each try attemptTimeoutMs: a receiver that never answers is retried, then dead-lettered as timed out', async () => {
    const r = await receiver([() => undefined]);
    const { dispatcher, send, deadLetters } = setup(`http://127.0.0.1:${r.port}`, { maxAttempts: 2, attemptTimeoutMs: 300 });
    const started = Date.now();
    send(`http://127.0.0.1:${r.port}/done`);
    await dispatcher.idle();
    expect(r.seen).toHaveLength(2);
    expect(deadLetters).toMatchObject([{ reason: 'exhausted', attempts: 2, detail: expect.stringMatching(/timed out/) }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    r.server.closeAllConnections();
  });

  it('counts the resolution in the try: a slow lookup leaves only the rest of attemptTimeoutMs to connect and answer', async () => {
    const r = await receiver([() => undefined]);
    const { dispatcher, send, deadLetters } = setup(`http://slow-dns.kueuer.test:${r.port}`, {
      maxAttempts: 1,
      attemptTimeoutMs: 1000,
      lookup: async () => {
        await new Promise((resolve) => setTimeout(resolve, 900));
        return [{ address: '127.0.0.1', family: 4 }];
      },
    });
    const started = Date.now();
    send(`http://slow-dns.kueuer.test:${r.port}/done`);
    await dispatcher.idle();
    expect(deadLetters).toMatchObject([{ reason: 'exhausted', attempts: 1, detail: expect.stringMatching(/timed out/) }]);
    expect(Date.now() - started).toBeLessThan(1600);
    r.server.closeAllConnections();
  });

  it('runs at most `concurrency` tries at once', async () => {
    let open = 0;
    let most = 0;
    const r = await receiver([
      (res) => {
        most = Math.max(most, ++open);
        setTimeout(() => {
          open--;
          res.writeHead(200).end();
        }, 100);
      },
    ]);
    const { dispatcher, send } = setup(`http://127.0.0.1:${r.port}`, { concurrency: 2 });
    for (const id of ids.slice(0, 6)) expect(send(`http://127.0.0.1:${r.port}/done`, id)).toBe(true);
    await dispatcher.idle();
    expect(r.seen).toHaveLength(6);
    expect(most).toBe(2);
  });

  it('dead-letters a callback waiting to retry when it is closed (reason shutdown), and takes no more', async () => {
    const r = await receiver([500]);
    const { dispatcher, send, deadLetters } = setup(`http://127.0.0.1:${r.port}`, { backoff: { baseMs: 60_000, capMs: 60_000 } });
    send(`http://127.0.0.1:${r.port}/done`, ids[4]);
    while (r.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await dispatcher.close();
    expect(deadLetters).toMatchObject([{ requestId: ids[4], reason: 'shutdown', attempts: 1, lastStatus: 500 }]);
    expect(send(`http://127.0.0.1:${r.port}/done`, ids[5])).toBe(false);
    expect(deadLetters[1]).toMatchObject({ requestId: ids[5], reason: 'shutdown', attempts: 0 });
  });

  it('waits on close for the onDeadLetter hooks it called (a hook that persists dead letters finishes before the responder exits)', async () => {
    const r = await receiver([500]);
    const persisted: string[] = [];
    const { dispatcher, send } = setup(`http://127.0.0.1:${r.port}`, {
      backoff: { baseMs: 60_000, capMs: 60_000 },
      onDeadLetter: async (record) => {
        await new Promise((resolve) => setTimeout(resolve, 200));
        persisted.push(record.requestId);
      },
    });
    send(`http://127.0.0.1:${r.port}/done`, ids[7]);
    while (r.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await dispatcher.close();
    expect(persisted).toEqual([ids[7]]);
  });

  it('refuses at submit a callback whose signing key cannot be read (500), and accepts one whose key can', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, done) => (lines.push(c.toString()), done()) }));
    const settings = parseCallbackSettings({ 'kueuer.io/async-callback-allow': 'https://hooks.example.com', 'kueuer.io/async-callback-secret': 'hooks' });
    const missing = new CallbackDispatcher({ readSecret: async () => undefined, log });
    const found = new CallbackDispatcher({ readSecret, log });
    dispatchers.push(missing, found);
    const refused = await missing.checkSubmit('https://hooks.example.com/cb', settings, 'shop', ids[6]!);
    expect(refused).toMatchObject({ ok: false, status: 500 });
    if (!refused.ok) expect(JSON.parse(refused.body.toString())).toMatchObject({ error: 'callback_misconfigured', requestId: ids[6] });
    expect(lines.join('')).toMatch(/Secret shop\/hooks does not exist/);
    expect(await found.checkSubmit('https://hooks.example.com/cb', settings, 'shop', ids[6]!)).toMatchObject({ ok: true, target: { exact: true } });
    expect(await found.checkSubmit(undefined, settings, 'shop', ids[6]!)).toEqual({ ok: true });
  });
});

describe('hostile callback destinations: refused, nothing sent', () => {
  it.each([
    ['a URL with userinfo', (p: number) => `http://user:pw@127.0.0.1:${p}/`, /user or password/],
    ['an IP literal the list does not name', (p: number) => `http://127.0.0.2:${p}/`, /matches no entry/],
    ['an IPv4-mapped IPv6 literal of the allowed loopback', (p: number) => `http://[::ffff:127.0.0.1]:${p}/`, /matches no entry/],
  ])('%s', async (_what, url, detail) => {
    const r = await receiver([200]);
    const { dispatcher, send, deadLetters } = setup(`http://127.0.0.1:${r.port}`);
    send(url(r.port));
    await dispatcher.idle();
    expect(r.seen).toHaveLength(0);
    expect(deadLetters).toMatchObject([{ reason: 'refused', attempts: 1 }]);
    expect(deadLetters[0]!.detail).toMatch(detail);
  });

  it.each([
    ['127.0.0.1', /loopback/],
    ['169.254.169.254', /metadata/],
    ['10.96.0.10', /private or cluster/],
  ])('a wildcard-allowed name that resolves to %s', async (address, detail) => {
    const r = await receiver([200]);
    const { dispatcher, send, deadLetters } = setup(`http://*.kueuer.test:${r.port}`, { lookup: async () => [{ address, family: 4 }] });
    send(`http://evil.kueuer.test:${r.port}/`);
    await dispatcher.idle();
    expect(r.seen).toHaveLength(0);
    expect(deadLetters).toMatchObject([{ reason: 'refused' }]);
    expect(deadLetters[0]!.detail).toMatch(detail);
  });

  it('a name allowed exactly that resolves to the metadata address', async () => {
    const r = await receiver([200]);
    const { dispatcher, send, deadLetters } = setup(`http://hooks.kueuer.test:${r.port}`, {
      lookup: async () => [
        { address: '127.0.0.1', family: 4 },
        { address: '169.254.169.254', family: 4 },
      ],
    });
    send(`http://hooks.kueuer.test:${r.port}/`);
    await dispatcher.idle();
    expect(r.seen).toHaveLength(0);
    expect(deadLetters[0]!.detail).toMatch(/169\.254\.169\.254.*metadata/);
  });

  it('a Service that no longer allows the destination when the result is ready', async () => {
    const r = await receiver([200]);
    const { dispatcher, deadLetters } = setup(`http://127.0.0.1:${r.port}`);
    dispatcher.deliver({
      requestId: ids[3]!,
      namespace: 'shop',
      queue: 'orders',
      callbackUrl: `http://127.0.0.1:${r.port}/`,
      settings: undefined,
      response: { status: 200, headers: [], body: Buffer.alloc(0) },
    });
    await dispatcher.idle();
    expect(r.seen).toHaveLength(0);
    expect(deadLetters).toMatchObject([{ reason: 'refused', detail: expect.stringMatching(/allows no callback destination/) }]);
  });
});
