/**
 * What the self-issuer does next with the stored certificates: nothing, a new
 * serving certificate, a new CA, or everything from scratch. Pure: the
 * certificates in, a decision out.
 *
 * Each certificate is renewed at two thirds of its lifetime (or at once when
 * the configured lifetime became shorter than the one it has). A new CA joins
 * the bundle beside the old one, which stays until it expires, and the
 * serving certificate keeps its old signer until its own renewal: by then
 * every replica has put the new CA into the caBundles, so no caller ever
 * meets a certificate it cannot verify.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { parseCertificate as parse } from '../../shared/pem.js';
import type { KeyPair } from './issue.js';

export interface CertPolicy {
  caLifetimeMs: number;
  servingLifetimeMs: number;
  /** The names the serving certificate must carry (the webhook Service's DNS names). */
  dnsNames: readonly string[];
}

/** What the Secret holds: the current CA, every CA callers must trust (current first), and the serving pair. */
export interface StoredCerts {
  ca: KeyPair;
  bundle: readonly string[];
  serving: KeyPair;
}

export type CertAction = { action: 'none'; nextCheckAt: number } | { action: 'issue-all' | 'rotate-ca' | 'renew-serving'; reason: string };

const RENEW_AT = 2 / 3;

/** notBefore and notAfter in epoch ms. */
export function validityOf(cert: X509Certificate): { from: number; to: number } {
  return { from: cert.validFromDate.getTime(), to: cert.validToDate.getTime() };
}

/** When a certificate is due for renewal: two thirds into its validity. */
export function renewalDueAt(cert: X509Certificate): number {
  const { from, to } = validityOf(cert);
  return from + (to - from) * RENEW_AT;
}

/** Longer than the policy allows (X.509 times have one-second resolution, so a second of slack). */
function outlivesPolicy(cert: X509Certificate, lifetimeMs: number, now: number): boolean {
  return validityOf(cert).to > now + lifetimeMs + 1000;
}

function pairMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** The bundle after `current` became the CA: it first, then the older CAs that have not expired. */
export function bundleWith(current: string, previous: readonly string[], now: number): string[] {
  const currentFingerprint = parse(current)?.fingerprint256;
  const older = previous.filter((pem) => {
    const cert = parse(pem);
    return cert !== null && cert.fingerprint256 !== currentFingerprint && validityOf(cert).to > now;
  });
  return [current, ...older];
}

function signedByOneOf(serving: X509Certificate, bundle: readonly string[], now: number): boolean {
  return bundle.some((pem) => {
    const ca = parse(pem);
    return ca !== null && validityOf(ca).to > now && serving.checkIssued(ca) && serving.verify(ca.publicKey);
  });
}

export function planCerts(stored: StoredCerts | null, policy: CertPolicy, now: number): CertAction {
  if (!stored) return { action: 'issue-all', reason: 'no certificate stored yet' };
  const ca = parse(stored.ca.cert);
  if (!ca || !ca.ca || !pairMatches(ca, stored.ca.key)) return { action: 'issue-all', reason: 'the stored CA is not a CA certificate with its key' };
  if (validityOf(ca).to <= now) return { action: 'issue-all', reason: 'the stored CA has expired' };
  if (now >= renewalDueAt(ca)) return { action: 'rotate-ca', reason: 'the CA is two thirds through its lifetime' };
  if (outlivesPolicy(ca, policy.caLifetimeMs, now)) return { action: 'rotate-ca', reason: 'the CA outlives the configured --ca-lifetime' };
  const serving = parse(stored.serving.cert);
  if (!serving || !pairMatches(serving, stored.serving.key))
    return { action: 'renew-serving', reason: 'the stored serving certificate does not match its key' };
  if (!signedByOneOf(serving, stored.bundle, now)) return { action: 'renew-serving', reason: 'the serving certificate is not signed by a trusted CA' };
  const missing = policy.dnsNames.filter((name) => serving.checkHost(name, { subject: 'never' }) === undefined);
  if (missing.length > 0) return { action: 'renew-serving', reason: `the serving certificate lacks ${missing.join(', ')}` };
  if (now >= renewalDueAt(serving)) return { action: 'renew-serving', reason: 'the serving certificate is two thirds through its lifetime' };
  if (outlivesPolicy(serving, policy.servingLifetimeMs, now))
    return { action: 'renew-serving', reason: 'the serving certificate outlives the configured --cert-lifetime' };
  return { action: 'none', nextCheckAt: Math.min(renewalDueAt(serving), renewalDueAt(ca)) };
}
