/**
 * The private CA an amqps:// connection trusts besides Node's own (a RabbitMQ
 * cluster whose certificate a private CA, e.g. cert-manager's or the
 * operator's, signed), without NODE_EXTRA_CA_CERTS: from
 * --rabbitmq-ca-file (KUEUER_RABBITMQ_CA_FILE), or else from a broker Secret's
 * `ca.crt` (shared/broker-secret/, which sets KUEUER_RABBITMQ_CA to its PEM).
 * Pure: no amqplib. A file or Secret that holds no PEM certificate is a
 * start-up error naming where it came from.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { KueuerError } from '../../errors.js';
import { parsePemBundle } from '../../pem.js';

/** The PEM of `where`, checked: every block a certificate, at least one. */
function checkedPem(pem: string, where: string): string {
  if (parsePemBundle(pem) === null) {
    throw new Error(`${where} holds no PEM certificate (expected the CA that signed the broker's certificate, "-----BEGIN CERTIFICATE-----" …)`);
  }
  return pem;
}

/** The option's parse: the CA file's PEM, or an error saying why it cannot be used (exit 2 names the flag and the variable). */
export function readCaFile(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the CA file ${path}: ${(err as Error).message}`);
  }
  return checkedPem(pem, `the CA file ${path}`);
}

/** The CA to trust: the file's (already read), else the broker Secret's ca.crt from the environment; undefined for none. */
export function rabbitmqCa(fromFile: string | undefined, env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (fromFile !== undefined) return fromFile;
  const fromSecret = env.KUEUER_RABBITMQ_CA;
  if (fromSecret === undefined || fromSecret.trim() === '') return undefined;
  try {
    return checkedPem(fromSecret, "the broker Secret's ca.crt (KUEUER_RABBITMQ_CA)");
  } catch (err) {
    throw new KueuerError('KUEUER_ERR_CONFIG', (err as Error).message);
  }
}

/** What tls.connect trusts with `ca`: Node's own CAs and the private one (as NODE_EXTRA_CA_CERTS would add it). */
export function trustedCas(ca: string): string[] {
  return [...rootCertificates, ca];
}
