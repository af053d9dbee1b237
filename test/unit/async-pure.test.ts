/** Asynchronous requests, the pure parts: the Service annotations, RFC 7240 Prefer, the status target. */
import { describe, expect, it } from 'vitest';
import { isAsyncRequest, isReservedTarget, parseStatusTarget, pathForms, prefersRespondAsync, requestFingerprint } from '../../responder/async/protocol.js';
import { parsePodSettings, parseServiceSettings } from '../../shared/annotations.js';
import { routesFromServices } from '../../shared/service-routes.js';

const svc = (annotations: Record<string, string>) => ({
  metadata: {
    namespace: 'shop',
    name: 'web',
    labels: { 'kueuer.io/inject': 'true' },
    annotations: { 'kueuer.io/responder-port': '21000', ...annotations },
  },
});

describe('kueuer.io/async and kueuer.io/async-result-ttl', () => {
  it('reach the route: mode and result lifetime; off is no async at all', () => {
    expect(routesFromServices([svc({ 'kueuer.io/async': 'on-request', 'kueuer.io/async-result-ttl': '2h' })]).routes[0]?.async).toEqual({
      mode: 'on-request',
      resultTtlMs: 7_200_000,
    });
    expect(routesFromServices([svc({ 'kueuer.io/async': 'always' })]).routes[0]?.async).toEqual({ mode: 'always' });
    expect(routesFromServices([svc({ 'kueuer.io/async': 'off' })]).routes[0]).not.toHaveProperty('async');
    expect(routesFromServices([svc({})]).routes[0]).not.toHaveProperty('async');
  });

  it('refuses bad values naming the annotation and what it accepts, and refuses them on pods', () => {
    expect(parseServiceSettings({ 'kueuer.io/async': 'yes' })).toEqual({
      ok: false,
      problems: ['kueuer.io/async: "yes" is not accepted; use off, on-request, always'],
    });
    const ttl = parseServiceSettings({ 'kueuer.io/async-result-ttl': '90d' });
    expect(ttl.ok).toBe(false);
    expect(!ttl.ok && ttl.problems[0]).toMatch(/^kueuer\.io\/async-result-ttl: /);
    const pod = parsePodSettings({ 'kueuer.io/async': 'always' });
    expect(!pod.ok && pod.problems).toEqual(['kueuer.io/async: set it on the Service, where the responder applies it; it has no effect on a pod']);
  });
});

describe('RFC 7240 Prefer: respond-async', () => {
  it.each([
    ['respond-async', true],
    ['Respond-Async', true],
    ['wait=10, respond-async', true],
    ['respond-async; x=1', true],
    ['return=minimal', false],
    ['respond-asyncx', false],
  ])('%s -> %s', (value, expected) => {
    expect(prefersRespondAsync(value)).toBe(expected);
  });

  it('decides by mode: on-request asks Prefer, always does not', () => {
    expect(isAsyncRequest('on-request', undefined)).toBe(false);
    expect(isAsyncRequest('on-request', ['return=minimal', 'respond-async'])).toBe(true);
    expect(isAsyncRequest('always', undefined)).toBe(true);
  });
});

describe('the status target', () => {
  const id = 'a'.repeat(32);
  it('reads the id and a bounded ?wait=', () => {
    expect(parseStatusTarget(`/.kueuer/requests/${id}`)).toEqual({ ok: true, id, waitMs: 0 });
    expect(parseStatusTarget(`/.kueuer/requests/${id}?wait=30s`)).toEqual({ ok: true, id, waitMs: 30_000 });
    expect(parseStatusTarget(`/.kueuer/requests/${id}?wait=250ms`)).toEqual({ ok: true, id, waitMs: 250 });
    expect(parseStatusTarget(`/.kueuer/requests/${id}?wait=61s`)).toMatchObject({ ok: false, notFound: false });
    expect(parseStatusTarget(`/.kueuer/requests/${id}?wait=soon`)).toMatchObject({ ok: false, notFound: false });
  });
  it('calls a malformed id not found', () => {
    expect(parseStatusTarget('/.kueuer/requests/XYZ')).toMatchObject({ ok: false, notFound: true });
    expect(parseStatusTarget(`/.kueuer/requests/${id}/more`)).toMatchObject({ ok: false, notFound: true });
  });
  it("is Kueuer's when the path is under /.kueuer/ as sent, RFC 3986-normalized or loosely normalized; resolved on the loose form", () => {
    const cases: Array<[string, boolean, string]> = [
      // target, reserved, the form a status request is resolved on
      [`/.kueuer/requests/${id}`, true, `/.kueuer/requests/${id}`],
      [`//.kueuer/requests/${id}`, true, `/.kueuer/requests/${id}`],
      [`/./.kueuer/requests/${id}`, true, `/.kueuer/requests/${id}`],
      [`/%2ekueuer/requests/${id}?wait=1s`, true, `/.kueuer/requests/${id}`],
      [`/.kueuer%2Frequests%2F${id}`, true, `/.kueuer/requests/${id}`],
      [`/\\.kueuer\\requests\\${id}`, true, `/.kueuer/requests/${id}`],
      [`http://h.example:80/.kueuer/requests/${id}#x`, true, `/.kueuer/requests/${id}`],
      ['/.kueuer/../x', true, '/x'],
      ['/.kueuer', true, '/.kueuer'],
      ['/%2ekueuer/..%2f..%2fx', true, '/x'],
      ['/x/..', false, '/'],
      ['/x/.kueuer/', false, '/x/.kueuer/'],
      ['/.kueuerx', false, '/.kueuerx'],
      ['/%252ekueuer/', false, '/%2ekueuer/'],
      ['/x?p=/.kueuer/', false, '/x'],
      ['*', false, '/'],
    ];
    for (const [target, reserved, resolved] of cases) {
      expect(isReservedTarget(target), target).toBe(reserved);
      expect(pathForms(target).at(-1), target).toBe(resolved);
    }
    expect(parseStatusTarget(`/%2ekueuer/requests/${id}?wait=1s`)).toEqual({ ok: true, id, waitMs: 1_000 });
    expect(parseStatusTarget(`http://h/.kueuer/requests/${id}?wait=2s#f`)).toEqual({ ok: true, id, waitMs: 2_000 });
    expect(parseStatusTarget('/.kueuer/../x')).toMatchObject({ ok: false, notFound: true });
  });
  it('fingerprints method, target and body', () => {
    const f = requestFingerprint('POST', '/a', Buffer.from('x'));
    expect(requestFingerprint('POST', '/a', Buffer.from('x'))).toBe(f);
    expect(requestFingerprint('POST', '/a', Buffer.from('y'))).not.toBe(f);
    expect(requestFingerprint('PUT', '/a', Buffer.from('x'))).not.toBe(f);
  });
});

describe('--async-store', () => {
  it('takes memory or a redis:// URL and refuses anything else, hiding credentials', async () => {
    const { parseAsyncStore } = await import('../../responder/config.js');
    expect(parseAsyncStore('memory')).toBe('memory');
    expect(String(parseAsyncStore('redis://redis.kueuer:6379'))).toBe('redis://redis.kueuer:6379');
    expect(() => parseAsyncStore('http://redis:6379')).toThrow('expected memory or a redis:// or rediss:// URL, got the scheme http:');
    expect(() => parseAsyncStore('redis//user:secret@host')).toThrow('expected memory or a redis://host:port URL, got "redis//***@host"');
  });
});
