/**
 * A Service's callback settings (its two annotations), and the signing key
 * from the Secret they name. The key is read through a `readSecret`
 * dependency, so the responder passes its cluster client and tests a stub.
 * RBAC: the responder's ServiceAccount needs `get` on `secrets` in each
 * namespace with callbacks (a Role per namespace, or a ClusterRole; a
 * resourceNames list narrows it to the named Secrets).
 */
import { ANNOTATIONS, type Annotations, type Parsed } from '../../shared/annotations.js';
import { settleWithin } from '../../shared/timers.js';
import { parseAllowList, type AllowList } from './allow-list.js';
import { parseSigningKey } from './signature.js';

export const SECRET_ANNOTATION = ANNOTATIONS.asyncCallbackSecret;
export const DEFAULT_SECRET_KEY = 'key';

export interface SecretRef {
  name: string;
  key: string;
}

export interface CallbackSettings {
  allow: AllowList;
  secret: SecretRef;
}

/**
 * Reads a Secret's `.data` (values base64-encoded, as the API returns them);
 * resolves undefined when the Secret does not exist (404) and rejects on any
 * other failure (its message is passed on).
 */
export type ReadSecret = (namespace: string, name: string) => Promise<Record<string, string> | undefined>;

const SECRET_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/** `name[/key]`: a Secret in the Service's namespace, and the data key holding the signing key (default "key"). */
export function parseSecretRef(raw: string): { ok: true; value: SecretRef } | { ok: false; problem: string } {
  const parts = raw.trim().split('/');
  const [name, key = DEFAULT_SECRET_KEY] = parts;
  if (parts.length > 2 || !name || name.length > 253 || !SECRET_NAME.test(name) || key.length > 253 || !SECRET_KEY.test(key)) {
    return {
      ok: false,
      problem: `${SECRET_ANNOTATION}: ${JSON.stringify(raw)} is not accepted; use name or name/key: a Secret in the Service's namespace (lower-case DNS name) and its data key (letters, digits, "-", "_", ".")`,
    };
  }
  return { ok: true, value: { name, key } };
}

/** The callback settings of a Service, or undefined when it has none; problems name the annotation. */
export function parseCallbackSettings(annotations: Annotations): Parsed<CallbackSettings | undefined> {
  const rawAllow = annotations?.[ANNOTATIONS.asyncCallbackAllow];
  const rawSecret = annotations?.[SECRET_ANNOTATION];
  if (rawAllow === undefined && rawSecret === undefined) return { ok: true, value: undefined };
  const problems: string[] = [];
  const allow = parseAllowList(rawAllow);
  if (!allow.ok) problems.push(allow.problem);
  const secret = rawSecret === undefined ? undefined : parseSecretRef(rawSecret);
  if (secret && !secret.ok) problems.push(secret.problem);
  if (rawSecret === undefined) {
    problems.push(
      `${ANNOTATIONS.asyncCallbackAllow} needs ${SECRET_ANNOTATION} naming the Secret with the key that signs callbacks (callbacks are never sent unsigned)`,
    );
  }
  if (rawAllow === undefined)
    problems.push(`${SECRET_ANNOTATION} has no effect without ${ANNOTATIONS.asyncCallbackAllow}: add the destinations callbacks may go to`);
  if (problems.length || !allow.ok || !secret?.ok) return { ok: false, problems };
  return { ok: true, value: { allow: allow.value, secret: secret.value } };
}

export type LoadedKey = { ok: true; key: Buffer } | { ok: false; problem: string };

/** The signing key from the Secret `ref` names in `namespace`, or a problem naming the Secret and the fix. */
export async function loadCallbackKey(readSecret: ReadSecret, namespace: string, ref: SecretRef): Promise<LoadedKey> {
  const where = `Secret ${namespace}/${ref.name}`;
  let data: Record<string, string> | undefined;
  try {
    data = await readSecret(namespace, ref.name);
  } catch (err) {
    return {
      ok: false,
      problem: `${where} could not be read: ${(err as Error).message}; the responder's ServiceAccount needs RBAC: get on secrets in namespace ${namespace}`,
    };
  }
  if (data === undefined)
    return { ok: false, problem: `${where} does not exist; create it (named by ${SECRET_ANNOTATION}) with the signing key under "${ref.key}"` };
  const value = data[ref.key];
  if (value === undefined) {
    return {
      ok: false,
      problem: `${where} has no key "${ref.key}" (it has: ${Object.keys(data).join(', ') || 'nothing'}); name the key in ${SECRET_ANNOTATION} as name/key`,
    };
  }
  const key = parseSigningKey(Buffer.from(value, 'base64'));
  return key.ok ? key : { ok: false, problem: `${where} key "${ref.key}": ${key.problem}` };
}

/**
 * Signing keys by namespace and Secret, each kept for `ttlMs` (default 60 s)
 * so a delivery does not read the Secret each time and a rotated key is
 * picked up within a minute. A failure is kept for `failureTtlMs` (default
 * 5 s), and callers asking at once share one read: a flood of requests to a
 * Service whose Secret is missing or unreadable, or a burst when a key
 * expires under load, is at most one API read per Secret at a time. A read
 * that has not answered within `loadTimeoutMs` (default 10 s) is a failure,
 * so a hung API call is not shared by every later caller.
 */
export class CallbackKeys {
  private readonly cache = new Map<string, { loaded: Promise<LoadedKey>; until: number }>();
  private readonly ttlMs: number;
  private readonly failureTtlMs: number;
  private readonly loadTimeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly readSecret: ReadSecret,
    options: { ttlMs?: number; failureTtlMs?: number; loadTimeoutMs?: number; now?: () => number } = {},
  ) {
    this.ttlMs = options.ttlMs ?? 60_000;
    this.failureTtlMs = options.failureTtlMs ?? 5_000;
    this.loadTimeoutMs = options.loadTimeoutMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  get(namespace: string, ref: SecretRef): Promise<LoadedKey> {
    const id = `${namespace}/${ref.name}/${ref.key}`;
    const hit = this.cache.get(id);
    if (hit && hit.until >= this.now()) return hit.loaded;
    const late = () => new Error(`Secret ${namespace}/${ref.name} could not be read within ${this.loadTimeoutMs} ms; is the API server reachable?`);
    const loaded = settleWithin(loadCallbackKey(this.readSecret, namespace, ref), this.loadTimeoutMs, late).catch((err: Error): LoadedKey => ({
      ok: false,
      problem: err.message,
    }));
    const slot = { loaded, until: Infinity };
    this.cache.set(id, slot);
    void loaded.then((key) => (slot.until = this.now() + (key.ok ? this.ttlMs : this.failureTtlMs)));
    return loaded;
  }
}
