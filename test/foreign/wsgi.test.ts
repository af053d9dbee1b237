/**
 * A WSGI app (Python's stdlib wsgiref, test/helpers/wsgi_environ.py) behind
 * the real `kueuer local`: the environ a WSGI/CGI app builds from a request
 * through Kueuer is the one it builds from the same request sent directly,
 * plus Kueuer's documented additions, and no client header can reach it as
 * one of Kueuer's own (issue 12, item 9: `X_Kueuer_Request_Id` becomes
 * HTTP_X_KUEUER_REQUEST_ID in a WSGI environ).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, rawHeader, startLocal, startWsgiEnvironApp, type ForeignApp, type LocalKueuer } from '../helpers/foreign.js';

let app: ForeignApp;
let kueuer: LocalKueuer;

beforeAll(async () => {
  app = await startWsgiEnvironApp();
  kueuer = await startLocal(app.port);
});
afterAll(async () => {
  await kueuer?.stop();
  await app?.close();
});

type Environ = Record<string, string>;
const environOf = (body: Buffer) => JSON.parse(body.toString('utf8')) as Environ;

describe('a WSGI app behind kueuer local', () => {
  it('sees the environ of the direct request, plus only x-kueuer-request-id, x-kueuer-deadline and X-Forwarded-For', async () => {
    const req = {
      method: 'POST',
      path: '/wsgi/p%C3%A4th?a=1&a=2',
      headers: [
        'Host',
        'wsgi.test',
        'User-Agent',
        'kueuer-foreign-suite/1',
        'Content-Type',
        'application/json',
        'X-Dup',
        '1',
        'X-Dup',
        '2',
        'Accept-Language',
        'de',
      ],
      body: Buffer.from('{"k":"v"}'),
    };
    const direct = environOf((await exchange(app.url, req)).body);
    const res = await exchange(kueuer.url, req);
    const through = environOf(res.body);
    expect(through.HTTP_X_KUEUER_REQUEST_ID).toBe(rawHeader(res, 'x-kueuer-request-id'));
    expect(Date.parse(through.HTTP_X_KUEUER_DEADLINE ?? '')).toBeGreaterThan(Date.now());
    expect(through.HTTP_X_FORWARDED_FOR).toBe('127.0.0.1');
    const without = (e: Environ, names: string[]) => Object.fromEntries(Object.entries(e).filter(([k]) => !names.includes(k)));
    // Connection is per hop: the client's `close` ends at Kueuer.
    expect(without(through, ['HTTP_X_KUEUER_REQUEST_ID', 'HTTP_X_KUEUER_DEADLINE', 'HTTP_X_FORWARDED_FOR', 'HTTP_CONNECTION'])).toEqual(
      without(direct, ['HTTP_CONNECTION']),
    );
  });

  it('never lets a client header become HTTP_X_KUEUER_* (X_Kueuer_Request_Id: forged, x-KUEUER-deadline, X_KUEUER_REDELIVERED)', async () => {
    const res = await exchange(kueuer.url, {
      path: '/forged',
      headers: ['Host', 'wsgi.test', 'X_Kueuer_Request_Id', 'forged', 'x-KUEUER-deadline', '2999-01-01T00:00:00Z', 'X_KUEUER_REDELIVERED', 'true'],
    });
    expect(res.status).toBe(200);
    const environ = environOf(res.body);
    const id = rawHeader(res, 'x-kueuer-request-id');
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    // wsgiref joins every header that maps to one key with commas: a forged spelling would show here.
    expect(environ.HTTP_X_KUEUER_REQUEST_ID).toBe(id);
    expect(environ.HTTP_X_KUEUER_DEADLINE).not.toContain('2999');
    expect(environ.HTTP_X_KUEUER_REDELIVERED).toBeUndefined();
  });
});
