/**
 * Kubernetes resource quantities (k8s.io/apimachinery resource.Quantity): the
 * one grammar that every option and annotation taking a quantity is validated
 * with, and that the sidecar's heap sizing reads the value of. A quantity is
 * kept as written (the apiserver canonicalises it when it stores the pod).
 *
 *   quantity ::= ["+"] number [suffix]
 *   number   ::= digits | digits "." [digits] | "." digits
 *   suffix   ::= Ki | Mi | Gi | Ti | Pi | Ei              (binary)
 *              | n | u | m | k | M | G | T | P | E       (decimal)
 *              | ("e" | "E") ["+" | "-"] digits          (decimal exponent)
 *
 * The subset of Kubernetes' grammar: no sign "-" (a resource is never
 * negative, which the apiserver refuses as well), at least one digit, no
 * spaces, and a value of at most 2^63 - 1 (Kubernetes' int64 bound).
 */

const QUANTITY = /^\+?(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

const FACTOR: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const MAX_VALUE = 2 ** 63 - 1;
const USE = 'use a Kubernetes quantity such as 100m, 0.5, 128Mi or 1Gi (no spaces)';

/** The value of a quantity (bytes for memory, cores for CPU); throws an Error that says what is accepted. */
export function quantityValue(raw: string): number {
  const refused = (why: string) => new Error(`${JSON.stringify(raw)} is not accepted${why}; ${USE}`);
  if (/^-/.test(raw)) throw refused(': a resource quantity is never negative');
  const m = QUANTITY.exec(raw);
  if (!m) throw refused('');
  const suffix = m[2] ?? '';
  const factor = FACTOR[suffix] ?? 10 ** Number(suffix.slice(1));
  const n = Number(m[1]);
  const value = n === 0 ? 0 : n * factor;
  if (!Number.isFinite(value) || value > MAX_VALUE) throw refused(': larger than Kubernetes allows (2^63 - 1)');
  return value;
}

/** A Kubernetes quantity (`100m`, `0.5`, `128Mi`, `1e3`, `+1Gi`), validated and kept as written. */
export function parseQuantity(raw: string): string {
  quantityValue(raw);
  return raw;
}
