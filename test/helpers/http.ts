/** A raw HTTP client for tests: exact status, raw header pairs and body bytes. */
import http from 'node:http';

export interface RawResponse {
  status: number;
  /** The reason phrase of the status line. */
  statusMessage: string;
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  rawTrailers: string[];
}

export interface RawRequest {
  method?: string;
  path?: string;
  headers?: string[] | Record<string, string | string[]>;
  body?: Buffer | string;
  agent?: http.Agent | false;
  signal?: AbortSignal;
}

export function request(base: string, req: RawRequest = {}): Promise<RawResponse> {
  const url = new URL(base);
  let headers = req.headers;
  if (Array.isArray(headers)) {
    // Node adds neither Host nor Content-Length to a raw header list.
    headers = [...headers];
    if (!headers.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'host')) headers.push('Host', url.host);
    if (req.body !== undefined) headers.push('Content-Length', String(Buffer.byteLength(req.body)));
  } else if (req.body !== undefined && !(headers && 'transfer-encoding' in headers)) {
    // Node's client sends no framing for a DELETE or OPTIONS body unless told its length.
    headers = { 'content-length': String(Buffer.byteLength(req.body)), ...headers };
  }
  return new Promise((resolve, reject) => {
    const out = http.request({
      host: url.hostname,
      port: url.port,
      method: req.method ?? 'GET',
      path: req.path ?? '/',
      headers,
      agent: req.agent ?? false,
      signal: req.signal,
    });
    out.on('error', reject);
    out.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          rawHeaders: res.rawHeaders,
          headers: res.headers,
          body: Buffer.concat(chunks),
          rawTrailers: res.rawTrailers,
        }),
      );
    });
    out.end(req.body);
  });
}

export function json(res: RawResponse): Record<string, unknown> {
  return JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
}
