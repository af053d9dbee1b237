/**
 * What a hostile re-probe of the request path found (issue 22, points 4, 6,
 * 7, 8 and 11), on the embedded backend with the responder and a sidecar in
 * the test process, logging into a list the tests read.
 */
import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startResponder, startSidecar } from '../helpers/components.js';
import type { ResponderSettings } from '../../responder/config.js';
import { localOptions, runLocal } from '../../cli/local.js';
import { ConfigError, parseOptions } from '../../shared/options.js';
import { memoryTestSeam, MemoryTransport } from '../../shared/transport/memory.js';
import { contentLength, errorCode, rawRequest, readBody, startRawApp, type ParsedResponse } from '../helpers/foreign.js';
import { metricValue, silentLog, waitFor } from '../helpers/stack.js';
import { decodeRequest, encodeResponse, type QueuedRequest } from '../../shared/envelope.js';
import { delay, startTestApp } from '../helpers/test-app.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type LogLine = Record<string, unknown> & { msg?: string; reqId?: string };

/** A raw app: `/status-099`, `/huge-headers`, `/slow` (answers after 1 s, or `?ms=`); anything else 200 with the request head. */
async function rawApp() {
  const app = await startRawApp((socket, head, rest) => {
    readBody(socket, rest, contentLength(head), () => {
      const path = head.split(' ')[1] ?? '';
      if (path === '/status-099') return void socket.end('HTTP/1.1 099 Early\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      if (path === '/huge-headers') {
        const many = Array.from({ length: 2000 }, (_, i) => `x-h${i}: ${'v'.repeat(20)}\r\n`).join('');
        return void socket.end(`HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n${many}\r\n`);
      }
      const text = head;
      const answer = () => socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(text, 'latin1')}\r\nConnection: close\r\n\r\n${text}`, 'latin1');
      if (path.startsWith('/slow')) setTimeout(answer, Number(/[?&]ms=(\d+)/.exec(path)?.[1] ?? 1_000));
      else answer();
    });
  });
  cleanups.push(() => app.close());
  return app;
}

/** The responder's settings for these tests: queue `q`, 1 MiB bodies, 5 s deadline. */
function responderSettings(over: Partial<ResponderSettings> = {}) {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    queue: 'q',
    timeoutMs: 5_000,
    maxBodyBytes: 1 << 20,
    maxPending: 50,
    publishTimeoutMs: 1_000,
    headersTimeoutMs: 60_000,
    bodyTimeoutMs: 30_000,
    sendTimeoutMs: 30_000,
    ...over,
  };
}

/** Responder and sidecar on one embedded broker, as `kueuer local` runs them. */
async function stack(appPort: number, over: Partial<ResponderSettings> = {}, transport = new MemoryTransport({ visibilityTimeoutMs: 5_000 })) {
  const lines: LogLine[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
        done();
      },
    }),
  );
  const registry = new Registry();
  const sidecar = await startSidecar(
    { app: { host: '127.0.0.1', port: appPort }, queue: 'q', concurrency: 1, maxResponseBytes: 1 << 20 },
    transport,
    registry,
    log,
  );
  const running = await startResponder(responderSettings(over), transport, registry, log);
  cleanups.push(async () => {
    await running.responder.drain(100);
    await sidecar.stop();
    await transport.close();
  });
  const connections = () => new Promise<number>((resolve, reject) => running.responder.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  return { port: running.address.port, lines, registry, transport, connections };
}

function message(r: ParsedResponse | undefined): string {
  return (JSON.parse(r?.body.toString() ?? '{}') as { message?: string }).message ?? '';
}

describe('a client that disconnects mid-body (issue 22, point 6)', () => {
  it('is one client disconnect with one request id and one log line, not a 400', async () => {
    const app = await rawApp();
    const s = await stack(app.port);
    await new Promise<void>((resolve) => {
      const socket = net.connect(s.port, '127.0.0.1', () => {
        socket.write('POST /upload HTTP/1.1\r\nHost: k\r\nContent-Length: 100000\r\n\r\nabc');
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 200);
      });
    });
    await delay(300);
    const about = s.lines.filter((l) => typeof l.reqId === 'string');
    expect(about.map((l) => l.msg)).toEqual(['client went away while sending its body']);
    expect(await metricValue(s.registry, 'kueuer_responder_requests_total', { code: '400' })).toBe(0);
    expect(await metricValue(s.registry, 'kueuer_responder_client_disconnects_total')).toBe(1);
    expect(app.heads).toHaveLength(0);
  });
});

describe('answers that say what happened (issue 22, point 7)', () => {
  it('names the header count, not a byte size, for 1,001 small header fields', async () => {
    const app = await rawApp();
    const s = await stack(app.port);
    const many = Array.from({ length: 1000 }, (_, i) => `a${i}: b\r\n`).join('');
    const ex = await rawRequest(s.port, `GET / HTTP/1.1\r\nHost: k\r\n${many}\r\n`, { timeoutMs: 3_000 });
    expect(ex.responses[0]?.status).toBe(431);
    expect(errorCode(ex.responses[0])).toBe('headers_too_large');
    expect(message(ex.responses[0])).toBe('the request has more than 1000 header fields');
  });

  it('calls oversized headers from the app response headers, and a status 099 a status, without undici internals', async () => {
    const app = await rawApp();
    const s = await stack(app.port);
    const huge = await rawRequest(s.port, 'GET /huge-headers HTTP/1.1\r\nHost: k\r\n\r\n', { timeoutMs: 3_000 });
    expect(huge.responses[0]?.status).toBe(502);
    expect(message(huge.responses[0])).toMatch(/^the app's response headers cannot be forwarded: the response headers take \d+ bytes/);
    const early = await rawRequest(s.port, 'GET /status-099 HTTP/1.1\r\nHost: k\r\n\r\n', { timeoutMs: 3_000 });
    expect(early.responses[0]?.status).toBe(502);
    expect(errorCode(early.responses[0])).toBe('invalid_app_response');
    expect(message(early.responses[0])).toBe('the app answered status 99; only 200–599 can be forwarded');
  });

  it('answers headers dribbled a byte at a time with 408 within a second of --headers-timeout', async () => {
    const app = await rawApp();
    const s = await stack(app.port, { headersTimeoutMs: 2_000 });
    const head = 'GET /dribble HTTP/1.1\r\nHost: k\r\nX-Slow: ' + 'a'.repeat(40);
    const ex = await rawRequest(s.port, head.slice(0, 1), {
      timeoutMs: 3_000,
      then: Array.from(head.slice(1), (c, i) => ({ afterMs: (i + 1) * 100, bytes: c })),
    });
    expect(ex.responses[0]?.status).toBe(408);
    expect(message(ex.responses[0])).toBe('the request line and headers did not arrive within 2000 ms');
    expect(ex.elapsedMs).toBeGreaterThanOrEqual(1_900);
    expect(ex.elapsedMs).toBeLessThan(3_500);
    expect(app.heads).toHaveLength(0);
  });
});

describe('client-address headers (issue 22, point 8)', () => {
  it('reach the app under one trust rule: the peer is the last Forwarded for= and X-Forwarded-For entry, and the X-Real-IP', async () => {
    const app = await rawApp();
    const s = await stack(app.port);
    const ex = await rawRequest(
      s.port,
      'GET /who HTTP/1.1\r\nHost: k\r\nForwarded: for=203.0.113.7\r\nX-Real-IP: 203.0.113.7\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n',
      { timeoutMs: 3_000 },
    );
    expect(ex.responses[0]?.status).toBe(200);
    const seen = ex.responses[0]!.body.toString('latin1').split('\r\n').slice(1);
    const values = (name: string) => seen.filter((l) => l.toLowerCase().startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trim());
    expect(values('forwarded')).toEqual(['for=203.0.113.7, for=127.0.0.1']);
    expect(values('x-real-ip')).toEqual(['127.0.0.1']);
    expect(values('x-forwarded-for')).toEqual(['203.0.113.7, 127.0.0.1']);
  });
});

/** Sends a whole POST of `bytes` and closes the connection `leaveAfterMs` later, before any answer. */
function postAndLeave(port: number, bytes: number, leaveAfterMs = 10): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`POST /upload HTTP/1.1\r\nHost: k\r\nContent-Length: ${bytes}\r\n\r\n`);
      socket.write(Buffer.alloc(bytes, 0x61), () => setTimeout(() => socket.destroy(), leaveAfterMs));
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

const pathsOf = (heads: string[]) => heads.map((h) => h.split(' ')[1]);

describe('the embedded queue (issue 22, point 4)', () => {
  it('withdraws the request of a client that left before any app call: no app call, no backlog, no memory held', async () => {
    const app = await rawApp();
    const transport = new MemoryTransport({ visibilityTimeoutMs: 5_000, maxQueued: 1_000, maxQueuedBytes: 256 << 20 });
    const s = await stack(app.port, { maxPending: 50 }, transport);
    // Holds the only app slot while the clients come and go, even on a loaded machine.
    const slow = rawRequest(s.port, 'GET /slow?ms=4000 HTTP/1.1\r\nHost: k\r\n\r\n', { timeoutMs: 6_000 });
    await waitFor(() => app.heads.length === 1, 2_000, 'the slow request to take the only app slot');
    await Promise.all(Array.from({ length: 100 }, () => postAndLeave(s.port, 256 * 1024)));
    await waitFor(async () => (await metricValue(s.registry, 'kueuer_responder_client_disconnects_total')) === 100, 3_000, '100 disconnects');
    expect(memoryTestSeam.depth(transport, 'q')).toBe(0);
    expect(memoryTestSeam.bytes(transport, 'q')).toBe(0);
    expect((await slow).responses[0]?.status).toBe(200);
    await delay(300);
    expect(pathsOf(app.heads)).toEqual(['/slow?ms=4000']);
  }, 15_000);

  it('answers 503 queue_full past --max-queued waiting requests and past --max-queued-bytes, with Retry-After', async () => {
    const app = await rawApp();
    const transport = new MemoryTransport({ visibilityTimeoutMs: 5_000, maxQueued: 2, maxQueuedBytes: 300 * 1024 });
    const s = await stack(app.port, { maxPending: 50 }, transport);
    const held = [rawRequest(s.port, 'GET /slow HTTP/1.1\r\nHost: k\r\n\r\n', { timeoutMs: 6_000 })];
    await waitFor(() => app.heads.length === 1, 2_000, 'the slow request to take the only app slot');
    held.push(rawRequest(s.port, `POST /slow HTTP/1.1\r\nHost: k\r\nContent-Length: ${256 * 1024}\r\n\r\n${'b'.repeat(256 * 1024)}`, { timeoutMs: 6_000 }));
    await waitFor(() => memoryTestSeam.depth(transport, 'q') === 1, 2_000, 'one request waiting');
    const overBytes = await rawRequest(s.port, `POST /x HTTP/1.1\r\nHost: k\r\nContent-Length: ${64 * 1024}\r\n\r\n${'c'.repeat(64 * 1024)}`, {
      timeoutMs: 2_000,
    });
    expect(overBytes.responses[0]?.status).toBe(503);
    expect(errorCode(overBytes.responses[0])).toBe('queue_full');
    held.push(rawRequest(s.port, 'GET /slow HTTP/1.1\r\nHost: k\r\n\r\n', { timeoutMs: 6_000 }));
    await waitFor(() => memoryTestSeam.depth(transport, 'q') === 2, 2_000, 'two requests waiting');
    const overCount = await rawRequest(s.port, 'GET /x HTTP/1.1\r\nHost: k\r\n\r\n', { timeoutMs: 2_000 });
    expect(overCount.responses[0]?.status).toBe(503);
    expect(errorCode(overCount.responses[0])).toBe('queue_full');
    expect(overCount.responses[0]!.headers).toContainEqual(['retry-after', '1']);
    for (const ex of await Promise.all(held)) expect(ex.responses[0]?.status).toBe(200);
  }, 15_000);

  it('refuses at start a --max-queued-bytes below --max-body', async () => {
    const o = parseOptions(localOptions, ['--app', '127.0.0.1:1', '--max-body', '1MiB', '--max-queued-bytes', '512KiB'], {});
    await expect(runLocal(o, silentLog)).rejects.toThrow(ConfigError);
    await expect(runLocal(o, silentLog)).rejects.toThrow(/--max-queued-bytes \(524288\) is below --max-body \(1048576\)/);
  });
});

describe('an oversize body without Expect (issue 22, point 11)', () => {
  it('after the 413 reads what the client still sends, up to 16 MiB, then closes; a client that goes quiet is closed after 2 s', async () => {
    const app = await rawApp();
    const s = await stack(app.port, { maxBodyBytes: 1024 });
    // Declares 1 GiB and keeps sending: the 413 comes at once, the connection closes after at most 16 MiB more.
    const flood = await new Promise<{ answered: boolean; sentAfter: number; ms: number }>((resolve) => {
      // Half-open allowed: it keeps writing after the server's FIN, as a client deaf to it would.
      const socket = net.connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true });
      const started = Date.now();
      let answered = false;
      let sent = 0;
      let sentAtAnswer = 0;
      const chunk = Buffer.alloc(256 * 1024, 0x63);
      const pump = (): void => {
        while (!socket.destroyed && socket.write(chunk)) sent += chunk.length;
        sent += chunk.length;
      };
      socket.on('data', (d: Buffer) => {
        if (!answered && d.toString('latin1').startsWith('HTTP/1.1 413')) {
          answered = true;
          sentAtAnswer = sent;
        }
      });
      socket.on('drain', pump);
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ answered, sentAfter: sent - sentAtAnswer, ms: Date.now() - started }));
      socket.on('connect', () => {
        socket.write('POST /flood HTTP/1.1\r\nHost: k\r\nContent-Length: 1073741824\r\n\r\n');
        pump();
      });
    });
    expect(flood.answered).toBe(true);
    expect(flood.ms).toBeLessThan(11_000);
    // Read (lingered) after the answer, but not the whole declared gigabyte: the kernel buffers hold a few MiB more.
    expect(flood.sentAfter).toBeGreaterThan(8 * 1024 * 1024);
    expect(flood.sentAfter).toBeLessThan(64 * 1024 * 1024);
    // Declares 1 MiB, sends 4 KiB, then nothing (and keeps its side open): closed about 2 s after the answer.
    const quiet = net.connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(async () => void quiet.destroy());
    quiet.on('error', () => undefined);
    const answered = new Promise<string>((resolve) => quiet.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
    quiet.write(`POST /quiet HTTP/1.1\r\nHost: k\r\nContent-Length: 1048576\r\n\r\n${'d'.repeat(4096)}`);
    expect(await answered).toMatch(/^HTTP\/1\.1 413 /);
    const answeredAt = Date.now();
    await delay(1_000);
    expect(await s.connections()).toBe(1);
    await waitFor(async () => (await s.connections()) === 0, 3_000, 'the quiet connection to close');
    expect(Date.now() - answeredAt).toBeLessThan(3_500);
    expect(app.heads).toHaveLength(0);
  }, 30_000);
});

/** A chunked POST with trailer fields; resolves with the answer's status, body and raw trailers. */
function chunkedWithTrailers(port: number, trailers: Record<string, string>): Promise<{ status: number; body: string; rawTrailers: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/t', headers: { 'transfer-encoding': 'chunked', trailer: Object.keys(trailers).join(', ') } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, rawTrailers: res.rawTrailers }));
      },
    );
    req.on('error', reject);
    req.write('part one, ');
    req.write('part two');
    req.addTrailers(trailers);
    req.end();
  });
}

describe('trailers (issue 22, point 11)', () => {
  it("carry the app's response trailers to the client after a chunked body", async () => {
    const app = await startTestApp();
    cleanups.push(() => app.close());
    app.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'X-Checksum' });
      res.write('chunk one, ');
      res.addTrailers([['X-Checksum', 'sha256=abc']]);
      res.end('chunk two');
    });
    const s = await stack(app.port);
    const got = await chunkedWithTrailers(s.port, { 'X-Client-Sig': 'sig-1' });
    expect(got.status).toBe(200);
    expect(got.body).toBe('chunk one, chunk two');
    expect(got.rawTrailers).toEqual(['X-Checksum', 'sha256=abc']);
    expect(app.received.at(-1)!.body.toString()).toBe('part one, part two');
  });

  it("carry the client's request trailers in the envelope to the consumer", async () => {
    const transport = new MemoryTransport({ visibilityTimeoutMs: 5_000 });
    const seen: QueuedRequest[] = [];
    await transport.consume('q', { concurrency: 1 }, async ({ message }) => {
      const req = decodeRequest(message);
      seen.push(req);
      await transport.publishReply(req.replyTo, encodeResponse({ id: req.id, queue: 'q', status: 204, headers: [], body: Buffer.alloc(0) }));
    });
    const running = await startResponder(responderSettings(), transport, new Registry(), silentLog);
    cleanups.push(async () => {
      await running.responder.drain(100);
      await transport.close();
    });
    const got = await chunkedWithTrailers(running.address.port, { 'X-Client-Sig': 'sig-1' });
    expect(got.status).toBe(204);
    expect(seen[0]?.body.toString()).toBe('part one, part two');
    expect(seen[0]?.trailers).toEqual([['X-Client-Sig', 'sig-1']]);
  });
});
