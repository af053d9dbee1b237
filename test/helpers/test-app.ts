/**
 * An app for tests whose behaviour each test sets: it records every request
 * it receives (method, url, raw headers, body bytes) and answers with the
 * current handler.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Client port of the connection it came on: equal ports mean a reused connection. */
  remotePort: number | undefined;
}

export type TestHandler = (req: ReceivedRequest, res: http.ServerResponse) => void;

export interface TestApp {
  port: number;
  received: ReceivedRequest[];
  handle(handler: TestHandler): void;
  close(): Promise<void>;
}

/** Echoes the body and reports what arrived in x-echo-* headers. */
export const echoHandler: TestHandler = (req, res) => {
  res.setHeader('x-echo-method', req.method);
  res.setHeader('x-echo-url', req.url);
  res.end(req.body);
};

export async function startTestApp(port = 0): Promise<TestApp> {
  let handler: TestHandler = echoHandler;
  const received: ReceivedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        body: Buffer.concat(chunks),
        remotePort: req.socket.remotePort,
      };
      received.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    handle: (h) => {
      handler = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
