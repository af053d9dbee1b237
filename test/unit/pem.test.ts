/** The one PEM module (shared/pem.ts) and the one `defined` (shared/defined.ts), used by the webhook's certificates, `kueuer check` and the annotation parsers. */
import { describe, expect, it } from 'vitest';
import { defined } from '../../shared/defined.js';
import { parseCertificate, parsePemBundle, splitPem } from '../../shared/pem.js';
import { issueCa } from '../../webhook/certs/issue.js';

describe('PEM', () => {
  it('splits a bundle into its certificates, each ending in a newline, dropping text between them', async () => {
    const [a, b] = [await issueCa('a', 3_600_000), await issueCa('b', 3_600_000)];
    const bundle = `# the old CA\n${a.cert.trim()}\n\nnoise\n${b.cert}`;
    expect(splitPem(bundle)).toEqual([`${a.cert.trim()}\n`, `${b.cert.trim()}\n`]);
    expect(parsePemBundle(bundle)?.map((c) => c.subject.split(' ')[0])).toEqual(['CN=a', 'CN=b']);
    expect(parseCertificate(a.cert)?.fingerprint256).toBe(parsePemBundle(a.cert)?.[0]?.fingerprint256);
  }, 30_000);

  it('a bundle with no certificate, or one block that does not parse, is null; so is a certificate that does not parse', () => {
    expect(splitPem('no certificate here')).toEqual([]);
    expect(parsePemBundle('')).toBeNull();
    expect(parsePemBundle('-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n')).toBeNull();
    expect(parseCertificate('not a certificate')).toBeNull();
  });
});

describe('defined', () => {
  it('drops the fields that are undefined and keeps every other value, falsy ones included', () => {
    expect(defined({ a: 1, b: undefined, c: 0, d: '', e: null, f: false })).toEqual({ a: 1, c: 0, d: '', e: null, f: false });
    expect(Object.keys(defined({ cpu: undefined, memory: '1Gi' }))).toEqual(['memory']);
  });
});
