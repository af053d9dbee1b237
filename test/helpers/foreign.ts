/**
 * Helpers for the foreign-peer suites (test/foreign): programs nobody here
 * wrote behind Kueuer (go-httpbin, Python's wsgiref), the real `kueuer local`
 * process, a raw TCP client that writes exact bytes and parses the exact
 * answer, and small hand-written TCP apps that count what reaches them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { inject } from 'vitest';
import { request, type RawRequest, type RawResponse } from './http.js';
import { freePort } from './net.js';
import { msgIs, spawnKueuer, type KueuerProcess } from './processes.js';
import { waitFor } from './stack.js';

export interface ForeignApp {
  port: number;
  url: string;
  child: ChildProcess;
  output: string[];
  close(): Promise<void>;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function startChild(command: string, args: (port: number) => string[], what: string): Promise<ForeignApp> {
  const port = await freePort();
  const child = spawn(command, args(port), { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  await waitFor(
    async () => {
      if (exited) throw new Error(`${what} exited before listening:\n${output.join('')}`);
      return accepts(port);
    },
    10_000,
    `${what} to listen`,
  );
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    child,
    output,
    close: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/**
 * go-httpbin (github.com/mccutchen/go-httpbin/v2), built by
 * scripts/dev/third-party-apps.sh in the global setup. `excludeHeaders` is its
 * own -exclude-headers flag: request headers it leaves out of its echoes.
 */
export function startGoHttpbin(excludeHeaders?: string): Promise<ForeignApp> {
  const bin = inject('goHttpbin');
  return startChild(
    bin,
    (port) => ['-host', '127.0.0.1', '-port', String(port), '-log-level', 'OFF', ...(excludeHeaders ? ['-exclude-headers', excludeHeaders] : [])],
    'go-httpbin',
  );
}

/** Python's stdlib wsgiref server with an app that answers with its WSGI environ as JSON (test/helpers/wsgi_environ.py). */
export function startWsgiEnvironApp(): Promise<ForeignApp> {
  const script = join(import.meta.dirname, 'wsgi_environ.py');
  return startChild('python3', (port) => [script, String(port)], 'the wsgiref app');
}

export interface LocalKueuer {
  proc: KueuerProcess;
  url: string;
  port: number;
  admin: string;
  stop(): Promise<void>;
}

/** The real `kueuer local` (dist/), on loopback ports of its own choosing, in front of the app at appPort. */
export async function startLocal(appPort: number, extra: string[] = []): Promise<LocalKueuer> {
  const proc = spawnKueuer(['local', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--app', `127.0.0.1:${appPort}`, ...extra]);
  const ready = await proc.waitForLog(msgIs('local stack ready'));
  const listen = String(ready.listen);
  const admin = `http://127.0.0.1:${String(ready.admin).split(':').pop()}`;
  await waitFor(async () => (await fetchStatus(admin, '/readyz')) === 200, 10_000, 'kueuer local /readyz');
  return {
    proc,
    url: `http://${listen}`,
    port: Number(listen.split(':').pop()),
    admin,
    async stop() {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        proc.child.kill('SIGKILL');
        await proc.exited;
      }
    },
  };
}

export async function fetchStatus(base: string, path: string): Promise<number> {
  try {
    const res = await exchange(base, { path });
    return res.status;
  } catch {
    return 0;
  }
}

export type FullResponse = RawResponse;

/** One request on a fresh connection, its raw header list sent as given (request() adds Host when missing, and Content-Length for a body). */
export function exchange(base: string, req: RawRequest, timeoutMs = 10_000): Promise<FullResponse> {
  return request(base, { ...req, signal: AbortSignal.timeout(timeoutMs) });
}

/** The first value of a header in a raw header list, by name in any case. */
export function rawHeader(res: { rawHeaders: string[] }, name: string): string | undefined {
  const i = res.rawHeaders.findIndex((h, j) => j % 2 === 0 && h.toLowerCase() === name.toLowerCase());
  return i < 0 ? undefined : res.rawHeaders[i + 1];
}

// ---- raw TCP ---------------------------------------------------------------

export interface ParsedResponse {
  statusLine: string;
  status: number;
  reason: string;
  headers: Array<[string, string]>;
  body: Buffer;
}

export interface RawExchange {
  /** Every byte the server sent. */
  raw: Buffer;
  /** The responses parsed from raw, interim (1xx) ones included, in order. */
  responses: ParsedResponse[];
  /** The server closed (or reset) the connection. */
  closed: boolean;
  /** Milliseconds from the first byte written to the last final response parsed (or to the end of waiting). */
  elapsedMs: number;
}

export function header(r: ParsedResponse, name: string): string | undefined {
  return r.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}

/**
 * Parses HTTP/1.x responses from raw bytes. Returns those complete so far.
 * Bodies: none for 1xx/204/304 and for answers to HEAD; Content-Length;
 * chunked; otherwise up to the close (complete only when `closed`).
 */
export function parseResponses(raw: Buffer, closed: boolean, headRequest = false): { responses: ParsedResponse[]; rest: Buffer } {
  const responses: ParsedResponse[] = [];
  let at = 0;
  for (;;) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = raw.subarray(at, end).toString('latin1').split('\r\n');
    const statusLine = lines[0] ?? '';
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)} in ${JSON.stringify(raw.toString('latin1').slice(0, 500))}`);
    const status = Number(m[1]);
    const headers: Array<[string, string]> = lines.slice(1).map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i), l.slice(i + 1).trim()];
    });
    let p = end + 4;
    const r: ParsedResponse = { statusLine, status, reason: m[2] ?? '', headers, body: Buffer.alloc(0) };
    const te = header(r, 'transfer-encoding');
    const cl = header(r, 'content-length');
    if (status < 200 || status === 204 || status === 304 || (headRequest && status >= 200)) {
      // no body
    } else if (te && /chunked/i.test(te)) {
      const parts: Buffer[] = [];
      let done = false;
      for (;;) {
        const lineEnd = raw.indexOf('\r\n', p);
        if (lineEnd < 0) break;
        const size = parseInt(raw.subarray(p, lineEnd).toString('latin1'), 16);
        if (size === 0) {
          const trailerEnd = raw.indexOf('\r\n\r\n', lineEnd);
          if (trailerEnd < 0) break;
          p = trailerEnd + 4;
          done = true;
          break;
        }
        if (raw.length < lineEnd + 2 + size + 2) break;
        parts.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
        p = lineEnd + 2 + size + 2;
      }
      if (!done) break;
      r.body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      const n = Number(cl);
      if (raw.length < p + n) break;
      r.body = raw.subarray(p, p + n);
      p += n;
    } else {
      if (!closed) break;
      r.body = raw.subarray(p);
      p = raw.length;
    }
    responses.push(r);
    at = p;
  }
  return { responses, rest: raw.subarray(at) };
}

export interface RawOptions {
  /** Stop waiting this long after the last write (default 5 s). */
  timeoutMs?: number;
  /** Return as soon as this many final (non-1xx) responses are parsed (default 1). */
  finals?: number;
  /** The request is a HEAD: its answer has no body. */
  head?: boolean;
  /** Writes after the first, each after a delay (e.g. the body after 100 Continue). */
  then?: Array<{ afterMs: number; bytes: Buffer | string }>;
  /** Keep the socket open after the answer (the caller ends it with the returned socket). */
  keepOpen?: boolean;
}

/** Connects to 127.0.0.1:port, writes `bytes`, and collects the answer. */
export function rawRequest(port: number, bytes: Buffer | string, options: RawOptions = {}): Promise<RawExchange & { socket: net.Socket }> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const finals = options.finals ?? 1;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    let settled = false;
    let started = 0;
    const timers: NodeJS.Timeout[] = [];
    const finish = () => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      const raw = Buffer.concat(chunks);
      let responses: ParsedResponse[] = [];
      try {
        responses = parseResponses(raw, closed, options.head).responses;
      } catch (err) {
        socket.destroy();
        reject(err as Error);
        return;
      }
      if (!options.keepOpen || closed) socket.destroy();
      resolve({ raw, responses, closed, elapsedMs: Date.now() - started, socket });
    };
    const check = () => {
      try {
        const { responses } = parseResponses(Buffer.concat(chunks), closed, options.head);
        if (responses.filter((r) => r.status >= 200).length >= finals) finish();
      } catch {
        finish();
      }
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      check();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.once('connect', () => {
      started = Date.now();
      socket.write(bytes);
      let last = 0;
      for (const step of options.then ?? []) {
        last = Math.max(last, step.afterMs);
        timers.push(setTimeout(() => socket.writable && socket.write(step.bytes), step.afterMs));
      }
      timers.push(setTimeout(finish, last + timeoutMs));
    });
  });
}

/** A JSON error body's `error` field, or undefined when the body is not such JSON. */
export function errorCode(r: ParsedResponse | undefined): string | undefined {
  if (!r) return undefined;
  try {
    const parsed = JSON.parse(r.body.toString('utf8')) as { error?: unknown };
    return typeof parsed.error === 'string' ? parsed.error : undefined;
  } catch {
    return undefined;
  }
}

// ---- hand-written raw TCP apps ----------------------------------------------

export interface RawApp {
  port: number;
  /** Requests whose head (request line and headers) arrived, in order, as raw text. */
  heads: string[];
  /** Connections accepted. */
  connections: number;
  close(): Promise<void>;
}

/**
 * A TCP server that reads each request head and hands the socket to `onHead`
 * (which writes whatever bytes it likes, or closes). Counts what arrives.
 */
export async function startRawApp(onHead: (socket: net.Socket, head: string, rest: Buffer) => void): Promise<RawApp> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const app: RawApp = { port: 0, heads, connections: 0, close: async () => undefined };
  const server = net.createServer((socket) => {
    app.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const head = buf.subarray(0, end).toString('latin1');
      heads.push(head);
      onHead(socket, head, buf.subarray(end + 4));
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  app.port = (server.address() as net.AddressInfo).port;
  app.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return app;
}

/** Reads `n` more body bytes after `rest` from the socket, then calls back. */
export function readBody(socket: net.Socket, rest: Buffer, n: number, then: (body: Buffer) => void): void {
  let body = rest;
  if (body.length >= n) return then(body.subarray(0, n));
  const onData = (c: Buffer) => {
    body = Buffer.concat([body, c]);
    if (body.length >= n) {
      socket.off('data', onData);
      then(body.subarray(0, n));
    }
  };
  socket.on('data', onData);
}

export function contentLength(head: string): number {
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  return m ? Number(m[1]) : 0;
}
