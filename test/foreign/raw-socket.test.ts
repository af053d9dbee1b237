/**
 * Malformed and hostile requests against the real `kueuer local` process,
 * written byte for byte on a raw TCP socket, each with a defined answer
 * (issue 12). The app behind it is a hand-written TCP server that counts
 * every request head reaching it and can answer bytes no HTTP library would
 * write (status 600, a 304 with Content-Length, a close mid-request). The
 * process runs with `--concurrency 1`, so one wedged slot shows: after each
 * test a normal request must still get 200 promptly and /readyz must be OK.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { request as undiciRequest } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  contentLength,
  errorCode,
  fetchStatus,
  header,
  rawRequest,
  readBody,
  startLocal,
  startRawApp,
  type LocalKueuer,
  type ParsedResponse,
  type RawApp,
} from '../helpers/foreign.js';
import { delay } from '../helpers/test-app.js';

const BIG_ANSWER = 48 * 1024 * 1024;
const TIMEOUT = '8s';
/** "At once": well before the 8 s deadline. */
const PROMPT_MS = 2_000;

let app: RawApp;
let kueuer: LocalKueuer;
const args = ['--concurrency', '1', '--timeout', TIMEOUT, '--max-body', '1MiB'];

/** The path of a request head ("GET /x HTTP/1.1" → "/x"). */
const pathOf = (head: string) => head.split(' ')[1] ?? '';
const reached = (needle: string) => app.heads.filter((h) => pathOf(h).includes(needle)).length;

beforeAll(async () => {
  app = await startRawApp((socket, head, rest) => {
    const path = pathOf(head);
    readBody(socket, rest, contentLength(head), (body) => {
      if (path.startsWith('/close-after-read')) return void socket.destroy();
      if (path.startsWith('/status-600')) return void socket.end('HTTP/1.1 600 X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno');
      if (path.startsWith('/not-modified')) {
        return void socket.end('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nCache-Control: max-age=60\r\nContent-Length: 1234\r\nConnection: close\r\n\r\n');
      }
      if (path.startsWith('/big')) {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${BIG_ANSWER}\r\nConnection: close\r\n\r\n`);
        return void socket.end(Buffer.alloc(BIG_ANSWER, 0x61));
      }
      // Everything else: 200 naming the path and the body length, and echoing the request head.
      const text = `ok ${path.length} ${body.length}\n${head}`;
      socket.end(
        `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text, 'latin1')}\r\nConnection: close\r\n\r\n${text}`,
        'latin1',
      );
    });
  });
  kueuer = await startLocal(app.port, args);
});

afterAll(async () => {
  await kueuer?.stop();
  await app?.close();
});

/** A normal request gets the app's 200 promptly, and /readyz says ready. */
async function expectHealthy(k: LocalKueuer = kueuer): Promise<void> {
  const before = reached('/healthy');
  const ok = await rawRequest(k.port, 'GET /healthy HTTP/1.1\r\nHost: k\r\n\r\n', { timeoutMs: PROMPT_MS });
  expect(ok.responses.at(-1)?.status, `a normal request after the test; got ${JSON.stringify(ok.raw.toString('latin1').slice(0, 300))}`).toBe(200);
  expect(ok.elapsedMs).toBeLessThan(PROMPT_MS);
  expect(reached('/healthy')).toBe(before + 1);
  expect(await fetchStatus(k.admin, '/readyz')).toBe(200);
}

// A test that wedged the process leaves a fresh one to the next test, so each failure stays its own.
afterEach(async () => {
  const ok = await rawRequest(kueuer.port, 'GET /probe HTTP/1.1\r\nHost: k\r\n\r\n', { timeoutMs: PROMPT_MS }).catch(() => null);
  if (ok?.responses.at(-1)?.status === 200) return;
  await kueuer.stop();
  kueuer = await startLocal(app.port, args);
});

/** Sends `bytes`, expects exactly one final answer with `status` (and JSON `error` code when given), promptly. */
async function expectAnswer(bytes: string | Buffer, status: number, code?: string): Promise<ParsedResponse> {
  const ex = await rawRequest(kueuer.port, bytes, { timeoutMs: 3_000 });
  const finals = ex.responses.filter((r) => r.status >= 200);
  expect(finals.length, `an answer, not a silently closed socket; got ${JSON.stringify(ex.raw.toString('latin1').slice(0, 300))}`).toBeGreaterThanOrEqual(1);
  const res = finals[0]!;
  expect(res.status, res.body.toString('latin1').slice(0, 300)).toBe(status);
  if (code) expect(errorCode(res), res.body.toString('latin1').slice(0, 300)).toBe(code);
  expect(ex.elapsedMs).toBeLessThan(PROMPT_MS);
  return res;
}

describe('request targets', () => {
  it('answers OPTIONS * with 400 invalid_target at once', async () => {
    await expectAnswer('OPTIONS * HTTP/1.1\r\nHost: k\r\n\r\n', 400, 'invalid_target');
    await expectHealthy();
  });

  it('answers an absolute-form target with 400 invalid_target', async () => {
    const before = app.heads.length;
    await expectAnswer('GET http://x/absolute HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'invalid_target');
    expect(app.heads.length).toBe(before);
    await expectHealthy();
  });

  it('answers an authority-form target outside CONNECT with 400', async () => {
    await expectAnswer('GET example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n', 400);
    await expectHealthy();
  });

  it('answers a target over 16 KiB with 414 uri_too_long at once', async () => {
    await expectAnswer(`GET /long-${'a'.repeat(16_400)} HTTP/1.1\r\nHost: k\r\n\r\n`, 414, 'uri_too_long');
    expect(reached('/long-')).toBe(0);
    await expectHealthy();
  });

  it.each([
    ['a 9 KB path', `/nine-kb-path/${'p'.repeat(9 * 1024)}`],
    ['a 9 KB query', `/nine-kb-query?q=${'q'.repeat(9 * 1024)}`],
  ])('carries %s to the app, which answers 200', async (_what, target) => {
    const res = await expectAnswer(`GET ${target} HTTP/1.1\r\nHost: k\r\n\r\n`, 200);
    expect(res.body.toString('latin1').split('\n')[0]).toBe(`ok ${target.length} 0`);
    await expectHealthy();
  });
});

describe('headers', () => {
  it('answers two Host headers with 400 invalid_header; the sidecar keeps working', async () => {
    await expectAnswer('GET /two-hosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400, 'invalid_header');
    expect(reached('/two-hosts')).toBe(0);
    await expectHealthy();
  });

  // 60 KiB: over what the envelope carries (48 KiB) and under the parser's own limit (64 KiB or more).
  it('answers 60 KiB of headers with 431 headers_too_large at once', async () => {
    const lines = Array.from({ length: 60 }, (_, i) => `X-Filler-${i}: ${'f'.repeat(1000)}\r\n`).join('');
    await expectAnswer(`GET /many-headers HTTP/1.1\r\nHost: k\r\n${lines}\r\n`, 431, 'headers_too_large');
    expect(reached('/many-headers')).toBe(0);
    await expectHealthy();
  });

  it("answers 140 KiB of headers, past the HTTP parser's limit, with 431", async () => {
    const lines = Array.from({ length: 140 }, (_, i) => `X-Filler-${i}: ${'f'.repeat(1000)}\r\n`).join('');
    await expectAnswer(`GET /huge-headers HTTP/1.1\r\nHost: k\r\n${lines}\r\n`, 431);
    expect(reached('/huge-headers')).toBe(0);
    await expectHealthy();
  });

  it('appends the peer address after the last of two X-Forwarded-For headers', async () => {
    const res = await expectAnswer('GET /xff HTTP/1.1\r\nHost: k\r\nX-Forwarded-For: a\r\nX-Forwarded-For: b\r\n\r\n', 200);
    const seen = res.body
      .toString('latin1')
      .split('\r\n')
      .filter((l) => /^x-forwarded-for:/i.test(l))
      .map((l) => l.slice(l.indexOf(':') + 1).trim());
    // However the app's lines are split, read in order they must say a, b, then the peer.
    expect(seen.join(', ').split(/\s*,\s*/)).toEqual(['a', 'b', '127.0.0.1']);
  });

  it('keeps spellings of reserved x-kueuer-* names (underscores, any case) from the app', async () => {
    const res = await expectAnswer(
      'GET /reserved HTTP/1.1\r\nHost: k\r\nX_Kueuer_Request_Id: forged\r\nx-KUEUER-deadline: 2999-01-01T00:00:00.000Z\r\nX-Kueuer_Redelivered: true\r\n\r\n',
      200,
    );
    const head = res.body.toString('latin1');
    const named = (name: string) =>
      head
        .split('\r\n')
        .filter((l) => l.slice(0, l.indexOf(':')).toLowerCase().replaceAll('_', '-') === name)
        .map((l) => l.slice(l.indexOf(':') + 1).trim());
    expect(named('x-kueuer-request-id')).toEqual([header(res, 'x-kueuer-request-id')]);
    expect(named('x-kueuer-deadline')).toHaveLength(1);
    expect(named('x-kueuer-deadline')[0]).not.toBe('2999-01-01T00:00:00.000Z');
    expect(named('x-kueuer-redelivered')).toEqual([]);
  });
});

describe('CONNECT and Upgrade', () => {
  it('answers CONNECT with 501 connect_not_supported', async () => {
    await expectAnswer('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 501, 'connect_not_supported');
    await expectHealthy();
  });

  it('answers a WebSocket upgrade with 501 upgrade_not_supported', async () => {
    await expectAnswer(
      'GET /ws HTTP/1.1\r\nHost: k\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      501,
      'upgrade_not_supported',
    );
    expect(reached('/ws')).toBe(0);
    await expectHealthy();
  });
});

describe('Expect: 100-continue', () => {
  it('answers 413 body_too_large, with no 100 Continue, when Content-Length is over --max-body', async () => {
    const ex = await rawRequest(kueuer.port, 'POST /expect-big HTTP/1.1\r\nHost: k\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n', {
      timeoutMs: 3_000,
    });
    expect(ex.responses.map((r) => r.status)).toEqual([413]);
    expect(errorCode(ex.responses[0])).toBe('body_too_large');
    expect(reached('/expect-big')).toBe(0);
    await expectHealthy();
  });

  it('sends 100 Continue for a small body, then the app answers', async () => {
    const ex = await rawRequest(kueuer.port, 'POST /expect-small HTTP/1.1\r\nHost: k\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n', {
      then: [{ afterMs: 300, bytes: 'hello' }],
    });
    expect(ex.responses.map((r) => r.status)).toEqual([100, 200]);
    expect(ex.responses[1]!.body.toString('latin1').split('\n')[0]).toBe(`ok ${'/expect-small'.length} 5`);
  });
});

describe('an oversize body without Expect: 100-continue (issue 22, point 11)', () => {
  /** Node's http client posting `bytes` at once: the answer it reads (a write error after it is the closed connection's). */
  const nodePost = (bytes: number) =>
    new Promise<{ status: number; body: string } | { error: string }>((resolve) => {
      const req = http.request(
        { host: '127.0.0.1', port: kueuer.port, method: 'POST', path: '/too-big', headers: { 'content-length': String(bytes) } },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', (err) => resolve({ error: `response: ${err.message}` }));
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
      req.end(Buffer.alloc(bytes, 0x61));
    });

  it("reaches Node's http client and undici as the 413, not as ECONNRESET", async () => {
    for (let i = 0; i < 3; i++) {
      const viaNode = await nodePost(64 * 1024 * 1024);
      expect(viaNode).toMatchObject({ status: 413 });
      expect(JSON.parse((viaNode as { body: string }).body)).toMatchObject({ error: 'body_too_large' });
    }
    const viaUndici = await undiciRequest(`${kueuer.url}/too-big`, { method: 'POST', body: Buffer.alloc(64 * 1024 * 1024, 0x62) });
    expect(viaUndici.statusCode).toBe(413);
    expect(await viaUndici.body.json()).toMatchObject({ error: 'body_too_large' });
    expect(reached('/too-big')).toBe(0);
    await expectHealthy();
  }, 30_000);
});

describe('request smuggling forms are refused by the parser and never reach the app', () => {
  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: k\r\n\r\n';
  it.each([
    [
      'Content-Length with Transfer-Encoding',
      `POST /cl-te HTTP/1.1\r\nHost: k\r\nContent-Length: ${5 + smuggled.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'two different Content-Lengths',
      `POST /two-cl HTTP/1.1\r\nHost: k\r\nContent-Length: 5\r\nContent-Length: ${5 + smuggled.length}\r\n\r\nhello${smuggled}`,
    ],
    ['Transfer-Encoding: chunked, identity', `POST /te-identity HTTP/1.1\r\nHost: k\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n`],
    ['an obs-fold header line', 'GET /obs-fold HTTP/1.1\r\nHost: k\r\nX-Folded: one\r\n two\r\n\r\n'],
    ['bare LF line ends', 'GET /bare-lf HTTP/1.1\nHost: k\n\n'],
    ['NUL in a header value', 'GET /nul HTTP/1.1\r\nHost: k\r\nX-Nul: a\u0000b\r\n\r\n'],
  ])('%s → 400', async (_what, bytes) => {
    const before = app.heads.length;
    const ex = await rawRequest(kueuer.port, Buffer.from(bytes, 'latin1'), { timeoutMs: 3_000 });
    expect(ex.responses[0]?.status, JSON.stringify(ex.raw.toString('latin1').slice(0, 200))).toBe(400);
    await delay(200);
    expect(app.heads.slice(before).map(pathOf)).toEqual([]);
    expect(reached('/smuggled')).toBe(0);
    await expectHealthy();
  });
});

describe('app answers no HTTP library writes', () => {
  it('answers status 600 from the app with 502 invalid_app_response at once', async () => {
    await expectAnswer('GET /status-600 HTTP/1.1\r\nHost: k\r\n\r\n', 502, 'invalid_app_response');
    await expectHealthy();
  });

  it("passes a 304 with Content-Length: 1234 on with the app's headers and no body", async () => {
    const ex = await rawRequest(kueuer.port, 'GET /not-modified HTTP/1.1\r\nHost: k\r\nIf-None-Match: "v1"\r\n\r\n', { timeoutMs: 3_000 });
    const res = ex.responses[0];
    expect(res?.status, ex.raw.toString('latin1').slice(0, 300)).toBe(304);
    expect(header(res!, 'etag')).toBe('"v1"');
    expect(header(res!, 'cache-control')).toBe('max-age=60');
    expect(header(res!, 'content-length')).toBe('1234');
    // Nothing after the head: no body bytes and no second answer.
    expect(ex.raw.subarray(ex.raw.indexOf('\r\n\r\n') + 4).length).toBe(0);
    await expectHealthy();
  });

  it('calls an app that reads a POST and closes without answering exactly once, and answers 502 app_unreachable promptly', async () => {
    const ex = await rawRequest(kueuer.port, 'POST /close-after-read HTTP/1.1\r\nHost: k\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\npayment', {
      timeoutMs: 4_000,
    });
    expect(ex.responses[0]?.status, ex.raw.toString('latin1').slice(0, 300)).toBe(502);
    expect(errorCode(ex.responses[0])).toBe('app_unreachable');
    expect(ex.elapsedMs).toBeLessThan(PROMPT_MS + 1_000);
    await delay(1_500);
    expect(reached('/close-after-read')).toBe(1);
    await expectHealthy();
  });
});

describe('slow clients', () => {
  let slow: LocalKueuer | undefined;
  // Started by the first test that needs it (not in a hook), so a process that refuses the flags fails each test rather than skipping them.
  const slowKueuer = async () =>
    (slow ??= await startLocal(app.port, [
      '--concurrency',
      '1',
      '--timeout',
      '20s',
      '--max-body',
      '2MiB',
      '--max-response',
      '64MiB',
      '--body-timeout',
      '1s',
      '--send-timeout',
      '1s',
    ]));
  afterAll(async () => {
    await slow?.stop();
  });

  it('answers a body that stalls with 408 body_timeout after --body-timeout, holding no memory for it', async () => {
    const slow = await slowKueuer();
    const rssBefore = rssOf(slow);
    // 20 clients each declare 1 MB, send 512 KiB of it, then stall.
    const exchanges = await Promise.all(
      Array.from({ length: 20 }, () =>
        rawRequest(
          slow.port,
          Buffer.concat([Buffer.from('POST /stall HTTP/1.1\r\nHost: k\r\nContent-Length: 1000000\r\n\r\n'), Buffer.alloc(512 * 1024, 0x62)]),
          {
            timeoutMs: 5_000,
          },
        ),
      ),
    );
    for (const ex of exchanges) {
      expect(ex.responses[0]?.status, ex.raw.toString('latin1').slice(0, 200)).toBe(408);
      expect(errorCode(ex.responses[0])).toBe('body_timeout');
      expect(ex.elapsedMs).toBeGreaterThanOrEqual(900);
      expect(ex.elapsedMs).toBeLessThan(4_000);
    }
    expect(reached('/stall')).toBe(0);
    expect(rssOf(slow) - rssBefore).toBeLessThan(64 * 1024 * 1024);
    await expectHealthy(slow);
  });

  it('closes the connection of a client that never reads a large answer after --send-timeout', async () => {
    const slow = await slowKueuer();
    const rssBefore = rssOf(slow);
    const ex = await new Promise<{ received: number; closed: boolean }>((resolve) => {
      const socket = net.connect(slow.port, '127.0.0.1');
      let received = 0;
      let closed = false;
      socket.on('error', () => undefined);
      socket.on('close', () => (closed = true));
      socket.on('connect', () => {
        socket.write('GET /big HTTP/1.1\r\nHost: k\r\n\r\n');
        socket.pause();
        // Never read for 4 s (send timeout 1 s), then drain whatever is left and see whether the answer was cut.
        setTimeout(() => {
          socket.on('data', (c: Buffer) => (received += c.length));
          socket.resume();
          setTimeout(() => {
            socket.destroy();
            resolve({ received, closed });
          }, 3_000);
        }, 4_000);
      });
    });
    expect(ex.closed).toBe(true);
    expect(ex.received).toBeLessThan(BIG_ANSWER);
    await delay(500);
    // The answer was buffered (sidecar, envelope, socket): nothing grows past a few copies of it.
    expect(rssOf(slow) - rssBefore).toBeLessThan(BIG_ANSWER * 3);
    await expectHealthy(slow);
  }, 20_000);
});

/** Resident memory of a `kueuer local` process, in bytes (Linux /proc). */
function rssOf(k: LocalKueuer): number {
  const status = readFileSync(`/proc/${k.proc.child.pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!kb) throw new Error('no VmRSS in /proc status');
  return Number(kb[1]) * 1024;
}
