/** The pure parts of keeping KEDA's Secret kueuer-backlog-tls (webhook/certs/keda-ca-secret.ts) and its option. */
import { describe, expect, it } from 'vitest';
import { parseOptions } from '../../shared/options.js';
import { webhookOptions } from '../../webhook/config.js';
import { issueCa, issueClientCert } from '../../webhook/certs/issue.js';
import { kedaSecretData, usableClientPair } from '../../webhook/certs/keda-ca-secret.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const HOUR = 3_600_000;

describe("KEDA's CA Secret", () => {
  it('keeps a client pair only while it loads, matches and has not expired', async () => {
    const ca = await issueCa('test-ca', 10 * HOUR);
    const pair = await issueClientCert(ca, 'keda-kueuer-backlog', 2 * HOUR);
    const other = await issueClientCert(ca, 'keda-kueuer-backlog', 2 * HOUR);
    const data = (cert: string, key: string) => ({ 'tls.crt': b64(cert), 'tls.key': b64(key) });
    const now = Date.now();
    expect(usableClientPair(data(pair.cert, pair.key), now)).toEqual(pair);
    expect(usableClientPair(data(pair.cert, other.key), now)).toBeNull(); // a key of another certificate
    expect(usableClientPair(data(pair.cert, pair.key), now + 3 * HOUR)).toBeNull(); // expired
    expect(usableClientPair(data('not a certificate', pair.key), now)).toBeNull();
    expect(usableClientPair(undefined, now)).toBeNull();
  });

  it('a client certificate is for client auth and never outlives its CA', async () => {
    const ca = await issueCa('test-ca', HOUR);
    const { X509Certificate } = await import('node:crypto');
    const client = new X509Certificate((await issueClientCert(ca, 'keda-kueuer-backlog', 10 * HOUR)).cert);
    expect(client.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(client.checkIssued(new X509Certificate(ca.cert))).toBe(true);
    expect(Date.parse(client.validTo)).toBeLessThanOrEqual(Date.parse(new X509Certificate(ca.cert).validTo));
  });

  it('sets ca.crt, tls.crt and tls.key, keeping any other key', () => {
    const out = kedaSecretData({ 'ca.crt': b64('old'), note: b64('mine') }, 'BUNDLE', { cert: 'CERT', key: 'KEY' });
    expect(out).toEqual({ 'ca.crt': b64('BUNDLE'), 'tls.crt': b64('CERT'), 'tls.key': b64('KEY'), note: b64('mine') });
  });

  it('--keda-namespace defaults to keda and refuses a name that is not a DNS label', () => {
    expect(parseOptions(webhookOptions, [], {}).kedaNamespace).toBe('keda');
    expect(parseOptions(webhookOptions, [], { KUEUER_KEDA_NAMESPACE: 'autoscalers' }).kedaNamespace).toBe('autoscalers');
    expect(() => parseOptions(webhookOptions, ['--keda-namespace', 'Not_A_Namespace'], {})).toThrow(
      /invalid --keda-namespace \(KUEUER_KEDA_NAMESPACE\).*a namespace name \(a DNS label\), got "Not_A_Namespace"/,
    );
  });
});
