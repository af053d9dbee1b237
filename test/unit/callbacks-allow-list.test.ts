/** Callback destinations: the allow-list annotation's grammar, the submit-time URL check and the address policy. */
import { describe, expect, it } from 'vitest';
import { addressRefusal } from '../../responder/callbacks/address-policy.js';
import { matchAllowList, parseAllowList } from '../../responder/callbacks/allow-list.js';
import { checkCallbackUrl } from '../../responder/callbacks/callback-url.js';

function list(raw: string) {
  const parsed = parseAllowList(raw);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.value;
}

describe('parseAllowList', () => {
  it('reads origins and wildcard suffixes, with default ports', () => {
    const l = list(' https://hooks.example.com , http://10.0.0.7:8080,https://*.partner.io:8443, https://[::1]');
    expect(l.entries.map((e) => [e.scheme, e.host, e.port, e.wildcard])).toEqual([
      ['https:', 'hooks.example.com', 443, false],
      ['http:', '10.0.0.7', 8080, false],
      ['https:', 'partner.io', 8443, true],
      ['https:', '[::1]', 443, false],
    ]);
  });

  it('allows nothing when the annotation is absent or empty', () => {
    expect(list('').entries).toEqual([]);
    const absent = parseAllowList(undefined);
    expect(absent.ok && absent.value.entries).toEqual([]);
  });

  it.each([
    ['ftp://x.example.com', /entry 1 "ftp:\/\/x.example.com".*https:\/\/host\[:port\]/],
    ['example.com', /entry 1 "example.com"/],
    ['https://a.example.com,,https://b.example.com', /entry 2 is empty/],
    ['https://user:pw@example.com', /entry 1 .*user/],
    ['https://example.com/hooks', /entry 1 .*path/],
    ['https://example.com?x=1', /entry 1 .*path/],
    ['https://*.com', /entry 1 .*at least two labels/],
    ['https://a.*.example.com', /entry 1 .*"\*\." only as the first label/],
    ['https://*.10.0.0.1', /entry 1 .*IP address/],
    ['https://example.com:99999', /entry 1/],
    ['http://169.254.169.254', /entry 1 .*never/],
    ['http://0.0.0.0:80', /entry 1 .*never/],
  ])('refuses %j naming the entry', (raw, message) => {
    const parsed = parseAllowList(raw);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.problem).toMatch(/^kueuer\.io\/async-callback-allow: /);
      expect(parsed.problem).toMatch(message);
    }
  });

  it('matches scheme, host and port exactly, and wildcards only strictly below the domain', () => {
    const l = list('https://hooks.example.com,https://*.partner.io');
    expect(matchAllowList(new URL('https://hooks.example.com/a?b'), l)?.wildcard).toBe(false);
    expect(matchAllowList(new URL('https://HOOKS.example.com./a'), l)).toBeDefined();
    expect(matchAllowList(new URL('http://hooks.example.com/'), l)).toBeUndefined();
    expect(matchAllowList(new URL('https://hooks.example.com:444/'), l)).toBeUndefined();
    expect(matchAllowList(new URL('https://x.hooks.example.com/'), l)).toBeUndefined();
    expect(matchAllowList(new URL('https://a.b.partner.io/'), l)?.wildcard).toBe(true);
    expect(matchAllowList(new URL('https://partner.io/'), l)).toBeUndefined();
    expect(matchAllowList(new URL('https://evilpartner.io/'), l)).toBeUndefined();
  });
});

describe('checkCallbackUrl (submit time)', () => {
  const l = list('https://hooks.example.com,https://*.partner.io,http://127.0.0.1:9000,http://[::1]:9000');

  it('accepts an allowed URL and says whether its host is named exactly', () => {
    const ok = checkCallbackUrl('https://hooks.example.com/cb?t=1', l);
    expect(ok).toMatchObject({ ok: true, target: { exact: true } });
    expect(checkCallbackUrl('https://a.partner.io/cb', l)).toMatchObject({ ok: true, target: { exact: false } });
    expect(checkCallbackUrl('http://127.0.0.1:9000/cb', l)).toMatchObject({ ok: true, target: { exact: true } });
  });

  it.each([
    ['not a url', 'malformed'],
    ['/relative', 'malformed'],
    ['https://hooks.example.com/' + 'a'.repeat(2100), 'malformed'],
    ['file:///etc/passwd', 'scheme'],
    ['gopher://hooks.example.com/', 'scheme'],
    ['https://user:pw@hooks.example.com/', 'userinfo'],
    ['https://user@hooks.example.com/', 'userinfo'],
    ['https://hooks.example.com/#frag', 'fragment'],
    ['https://other.example.com/', 'not_allowed'],
    ['https://partner.io.evil.com/', 'not_allowed'],
    ['http://127.0.0.1:9001/', 'not_allowed'],
    ['http://169.254.169.254/latest/meta-data', 'not_allowed'],
  ])('refuses %s by rule %s', (raw, rule) => {
    const r = checkCallbackUrl(raw, l);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.rule).toBe(rule);
      expect(r.message.length).toBeGreaterThan(20);
    }
  });

  it('matches an IP literal (in any spelling WHATWG URL reads) only to an entry naming it, never to a wildcard', () => {
    const literal = list('http://10.1.2.3,https://*.example.com');
    expect(checkCallbackUrl('http://0x0a.1.2.3/', literal)).toMatchObject({ ok: true, target: { exact: true } });
    expect(checkCallbackUrl('http://167838211/', literal)).toMatchObject({ ok: true, target: { exact: true } });
    expect(checkCallbackUrl('http://10.1.2.4/', literal)).toMatchObject({ ok: false, rule: 'not_allowed' });
    expect(checkCallbackUrl('https://[::ffff:a01:203]/', literal)).toMatchObject({ ok: false, rule: 'not_allowed' });
  });

  it('says that nothing is allowed when the list is empty', () => {
    const r = checkCallbackUrl('https://hooks.example.com/', list(''));
    expect(r).toMatchObject({ ok: false, rule: 'not_allowed' });
    if (!r.ok) expect(r.message).toMatch(/allows no callback destination/);
  });

  it('refuses a multi-valued header', () => {
    expect(checkCallbackUrl(['https://hooks.example.com/', 'https://hooks.example.com/'], l)).toMatchObject({ ok: false, rule: 'malformed' });
  });
});

describe('addressRefusal (delivery time)', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['10.3.4.5', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd00::1', 'private'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
  ])('refuses %s (%s) unless its host is named exactly', (ip, kind) => {
    expect(addressRefusal(ip, false)).toMatch(new RegExp(kind));
    expect(addressRefusal(ip, true)).toBeUndefined();
  });

  it.each(['169.254.169.254', 'fd00:ec2::254', '0.0.0.0', '::', '::ffff:169.254.169.254', '224.0.0.1', '255.255.255.255', 'ff02::1'])(
    'always refuses %s (metadata, unspecified, multicast, broadcast)',
    (ip) => {
      expect(addressRefusal(ip, true)).toBeDefined();
      expect(addressRefusal(ip, false)).toBeDefined();
    },
  );

  it.each([
    ['169.254.170.23', 'EKS Pod Identity Agent'],
    ['fd00:ec2::23', 'EKS Pod Identity Agent, IPv6'],
    ['100.100.100.200', 'Alibaba Cloud metadata'],
    ['168.63.129.16', 'Azure WireServer (a public address: a wildcard name could reach it)'],
    ['::ffff:168.63.129.16', 'Azure WireServer, IPv4-mapped'],
  ])('always refuses %s (%s) as a cloud metadata address', (ip) => {
    expect(addressRefusal(ip, true)).toMatch(/metadata/);
    expect(addressRefusal(ip, false)).toMatch(/metadata/);
  });

  it('lets public addresses through', () => {
    expect(addressRefusal('93.184.216.34', false)).toBeUndefined();
    expect(addressRefusal('2606:2800:220:1:248:1893:25c8:1946', false)).toBeUndefined();
  });
});
