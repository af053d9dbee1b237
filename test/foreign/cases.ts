/**
 * The request matrix of the go-httpbin answer-for-answer suite and the rule
 * that compares an answer through Kueuer with the app's direct answer.
 */
import type { FullResponse } from '../helpers/foreign.js';
import type { RawRequest } from '../helpers/http.js';

export interface Case extends RawRequest {
  name: string;
  headers: string[];
}

/** The Host every case sends: go-httpbin builds URLs (and absolute redirects) from it, so both paths must send the same. */
export const HOST = 'httpbin.test:8080';
const base = ['Host', HOST, 'User-Agent', 'kueuer-foreign-suite/1', 'Accept', '*/*'];

function c(name: string, method: string, path: string, headers: string[] = [], body?: Buffer | string): Case {
  const b = body === undefined ? undefined : Buffer.from(body);
  // request() adds Content-Length for a body.
  return { name, method, path, headers: [...base, ...headers], body: b };
}

const everyByte = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
const multipart = [
  '--XyZboundary',
  'Content-Disposition: form-data; name="field"',
  '',
  'value one',
  '--XyZboundary',
  'Content-Disposition: form-data; name="file"; filename="a.bin"',
  'Content-Type: application/octet-stream',
  '',
  '\u0000\u0001binary\u00ff',
  '--XyZboundary--',
  '',
].join('\r\n');

/** Statuses go-httpbin's /status/<code> answers with; no 1xx (an interim answer is not a final one). */
export const STATUSES = [
  200, 201, 202, 203, 204, 205, 206, 226, 299, 300, 301, 302, 303, 304, 305, 306, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412,
  413, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 499, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511, 599,
];

/** Endpoints asked with a plain GET. */
const PLAIN_GETS = [
  '/anything',
  '/user-agent',
  '/redirect/3',
  '/relative-redirect/2',
  '/encoding/utf8',
  '/html',
  '/xml',
  '/json',
  '/robots.txt',
  '/deny',
  '/image/png',
  '/image/svg',
  '/bytes/0',
  '/links/5/2',
  '/cache',
  '/cache/60',
  '/delay/0',
  '/hostname',
];

export const CASES: Case[] = [
  // methods
  c('GET /anything with a query of repeated, empty, encoded and plus-spaced keys', 'GET', '/anything?q=a%26b&q=2&empty=&%C3%BC=1&plus=a+b&flag'),
  c('POST /anything, a text body', 'POST', '/anything', ['Content-Type', 'text/plain; charset=utf-8'], 'hello, Kueuer ✓'),
  c('POST /anything, every byte value', 'POST', '/anything', ['Content-Type', 'application/octet-stream'], everyByte),
  c('POST /anything, JSON', 'POST', '/anything', ['Content-Type', 'application/json'], '{"a":[1,2,{"b":null}],"c":"ü"}'),
  c('POST /anything, a form', 'POST', '/anything', ['Content-Type', 'application/x-www-form-urlencoded'], 'a=1&a=2&b=x+y&c=%26'),
  c('POST /anything, multipart with a binary file', 'POST', '/anything', ['Content-Type', 'multipart/form-data; boundary=XyZboundary'], multipart),
  c('POST /anything, an empty body with Content-Length: 0', 'POST', '/anything', ['Content-Type', 'text/plain'], ''),
  c('PUT /anything, binary', 'PUT', '/anything/put', ['Content-Type', 'application/octet-stream'], everyByte.subarray(100)),
  c('PATCH /anything, JSON', 'PATCH', '/anything/patch', ['Content-Type', 'application/merge-patch+json'], '{"x":1}'),
  c('DELETE /anything, no body', 'DELETE', '/anything/1'),
  c('DELETE /anything, a body', 'DELETE', '/anything/2', ['Content-Type', 'text/plain'], 'why'),
  c('HEAD /anything', 'HEAD', '/anything'),
  c('HEAD /bytes/64', 'HEAD', '/bytes/64?seed=1'),
  c('OPTIONS /anything, a CORS preflight', 'OPTIONS', '/anything', [
    'Origin',
    'http://web.test',
    'Access-Control-Request-Method',
    'PUT',
    'Access-Control-Request-Headers',
    'X-One, X-Two',
  ]),
  c('QUERY /anything, an unregistered method with a body', 'QUERY', '/anything', ['Content-Type', 'text/plain'], 'select 1'),
  // odd but valid targets
  c('an encoded slash in a segment', 'GET', '/anything/a%2Fb/c'),
  c('double slashes (go-httpbin redirects)', 'GET', '/anything//double//slash'),
  c('dot segments', 'GET', '/anything/a/./b/../c'),
  c('percent-encoded UTF-8 and NUL', 'GET', '/anything/%E2%9C%93/%00/x'),
  c('sub-delims, colon and at-sign in the path', 'GET', "/anything/;p=1/a:b@c!$&'()*+,="),
  c('tilde and a dot file', 'GET', '/anything/~user/.hidden'),
  c('encoded dot segments', 'GET', '/anything/%2e%2e/%2E/x'),
  c('characters browsers escape but servers accept, in the query', 'GET', '/anything?q=a|b{c}^d`e"f'),
  c('a 6 KB path', 'GET', `/anything/${'p'.repeat(6000)}`),
  c('a 6 KB query', 'GET', `/anything?q=${'v'.repeat(6000)}`),
  // request headers as the app sees them
  c('repeated, mixed-case, empty and long request headers', 'GET', '/headers', [
    'X-Dup',
    'one',
    'X-Dup',
    'two',
    'x-MiXeD-Case',
    'Kept',
    'X-Empty',
    '',
    'X-Long',
    'L'.repeat(4000),
  ]),
  c('GET /ip (origin)', 'GET', '/ip'),
  // Header values are bytes: obs-text (0x80-0xFF) must arrive as the same bytes (Node's client writes these strings as latin1).
  c('a request header value with UTF-8 bytes', 'GET', '/headers', ['X-Utf8', Buffer.from('café ✓', 'utf8').toString('latin1')]),
  c('a request header value with a latin-1 byte', 'GET', '/headers', ['X-Latin1', 'caf\u00e9']),
  // responses
  ...PLAIN_GETS.map((path) => c(`GET ${path}`, 'GET', path)),
  ...STATUSES.map((s) => c(`GET /status/${s}`, 'GET', `/status/${s}`)),
  c('POST /status/201', 'POST', '/status/201', ['Content-Type', 'text/plain'], 'made'),
  c('HEAD /status/404', 'HEAD', '/status/404'),
  c('a response header value with UTF-8 bytes', 'GET', '/response-headers?X-Utf8=caf%C3%A9%20%E2%9C%93'),
  c('a response header value with a latin-1 byte', 'GET', '/response-headers?X-Latin1=caf%E9'),
  c('two Content-Type response headers', 'GET', '/response-headers?Content-Type=text%2Fa&Content-Type=text%2Fb'),
  c(
    'repeated response headers and cookies',
    'GET',
    '/response-headers?X-Rep=1&X-Rep=2&Set-Cookie=a%3D1&Set-Cookie=b%3D2%3B%20HttpOnly&Content-Type=text%2Fx-odd',
  ),
  c('GET /absolute-redirect/2 (built from Host)', 'GET', '/absolute-redirect/2'),
  c('GET /redirect-to, 307 to a path', 'GET', '/redirect-to?url=%2Fanything&status_code=307'),
  c('GET /redirect-to, an absolute URL', 'GET', '/redirect-to?url=http%3A%2F%2Fexample.com%2F'),
  c('GET /gzip', 'GET', '/gzip', ['Accept-Encoding', 'gzip']),
  c('GET /deflate', 'GET', '/deflate', ['Accept-Encoding', 'deflate']),
  c('GET /brotli (501 from the app)', 'GET', '/brotli'),
  c('GET /base64', 'GET', '/base64/SGVsbG8sIEt1ZXVlciDinJM='),
  c('GET /bytes/1024', 'GET', '/bytes/1024?seed=7'),
  c('GET /bytes/200000', 'GET', '/bytes/200000?seed=1'),
  c('GET /stream/5 (chunked)', 'GET', '/stream/5'),
  c('GET /stream-bytes (chunked)', 'GET', '/stream-bytes/10000?seed=3&chunk_size=100'),
  c('GET /drip', 'GET', '/drip?numbytes=5&duration=0&delay=0'),
  c('GET /cookies', 'GET', '/cookies', ['Cookie', 'a=1; b=two', 'Cookie', 'c=3']),
  // one cookie only: go-httpbin sets several in map order, which differs from run to run
  c('GET /cookies/set (302 with Set-Cookie)', 'GET', '/cookies/set?k1=v1'),
  c('GET /cookies/delete', 'GET', '/cookies/delete?k1', ['Cookie', 'k1=v1']),
  c('GET /cache with If-None-Match (304 with headers)', 'GET', '/cache', ['If-None-Match', '"anything"']),
  c('GET /cache with If-Modified-Since (304)', 'GET', '/cache', ['If-Modified-Since', 'Wed, 21 Oct 2015 07:28:00 GMT']),
  c('GET /etag with a matching If-None-Match (304 with ETag)', 'GET', '/etag/abc', ['If-None-Match', '"abc"']),
  c('GET /etag with a failing If-Match (412)', 'GET', '/etag/abc', ['If-Match', '"nope"']),
  c('GET /range with Range (206)', 'GET', '/range/1024', ['Range', 'bytes=100-199']),
  c('GET /range with a suffix Range', 'GET', '/range/1024', ['Range', 'bytes=-10']),
  c('GET /range past the end (416)', 'GET', '/range/1024', ['Range', 'bytes=2000-3000']),
  c('GET /range whole', 'GET', '/range/300'),
  c('GET /basic-auth with credentials', 'GET', '/basic-auth/u/p', ['Authorization', 'Basic dTpw']),
  c('GET /basic-auth without (401 with WWW-Authenticate)', 'GET', '/basic-auth/u/p'),
  c('GET /hidden-basic-auth without (404)', 'GET', '/hidden-basic-auth/u/p'),
  c('GET /bearer with a token', 'GET', '/bearer', ['Authorization', 'Bearer t0k3n']),
  c('GET a path go-httpbin does not know (404)', 'GET', '/no/such/endpoint'),
  c('POST to a GET-only endpoint (405)', 'POST', '/get', ['Content-Type', 'text/plain'], 'x'),
];

/** Headers a hop may change: RFC 9110 §7.6.1 and the legacy ones Kueuer also strips (docs/reference/http.md). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export interface Comparable {
  status: number;
  /** Header fields the client can rely on, grouped by (lower-case) name in name order, values in the order sent. */
  headers: Array<[string, string]>;
  body: string;
}

/**
 * What must match between the direct answer and the answer through Kueuer:
 * the status, the header fields other than Date, hop-by-hop ones (and those
 * Connection names) and `x-kueuer-request-id`, and the body bytes. Header
 * order across different names and the case of names are not compared
 * (header names are case-insensitive; 'keeps the app's header-name case'
 * checks case on its own); a
 * Content-Length that Kueuer adds to an answer the app framed as chunked
 * (Kueuer buffers whole answers) is accepted when it equals the body length.
 */
export function comparable(res: FullResponse, direct?: FullResponse): Comparable {
  const pairs: Array<[string, string]> = [];
  const named = new Set<string>();
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    if (res.rawHeaders[i]!.toLowerCase() === 'connection') for (const t of res.rawHeaders[i + 1]!.split(',')) named.add(t.trim().toLowerCase());
  }
  const directHasLength = direct ? direct.rawHeaders.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-length') : true;
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    const name = res.rawHeaders[i]!;
    const value = res.rawHeaders[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === 'date' || lower === 'x-kueuer-request-id' || HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    if (lower === 'content-length' && !directHasLength && value === String(res.body.length)) continue;
    pairs.push([name, value]);
  }
  const order = [...new Set(pairs.map(([n]) => n.toLowerCase()))].sort();
  const grouped = order.flatMap((lower) => pairs.filter(([n]) => n.toLowerCase() === lower).map(([, v]): [string, string] => [lower, v]));
  // Short bodies as text so a diff stays readable; long ones with their length first.
  const body = res.body.length <= 4096 ? res.body.toString('latin1') : `${res.body.length} bytes: ${res.body.toString('base64')}`;
  return { status: res.status, headers: grouped, body };
}
