/** The one reading of PEM text: certificates split out of a bundle, and parsed. */
import { X509Certificate } from 'node:crypto';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The certificate blocks of a PEM bundle, each ending in a newline; text between them is dropped. */
export function splitPem(bundle: string): string[] {
  return bundle.match(PEM_CERTIFICATE)?.map((c) => `${c}\n`) ?? [];
}

/** The certificate, or null when `pem` does not hold one node:crypto can read. */
export function parseCertificate(pem: string): X509Certificate | null {
  try {
    return new X509Certificate(pem);
  } catch {
    return null;
  }
}

/**
 * Every certificate of a PEM bundle; null when any block does not parse or
 * there is none. During a CA rotation the caBundle holds the old and the new
 * CA, and the serving certificate may be signed by either.
 */
export function parsePemBundle(pem: string): X509Certificate[] | null {
  const certs = splitPem(pem).map(parseCertificate);
  if (certs.length === 0 || certs.some((cert) => cert === null)) return null;
  return certs as X509Certificate[];
}
