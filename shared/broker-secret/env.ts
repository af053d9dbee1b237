/**
 * Where a component finds the broker Secrets it reads by shape (shapes.ts):
 * - the directories in KUEUER_BROKER_SECRET_DIRS (comma-separated), each a
 *   Secret mounted as a volume (one file per key; the directory's name is the
 *   Secret's name). The webhook mounts the second and later Secrets a pod's
 *   `kueuer.io/backend` names there; keys such as `ca.crt` or
 *   `sasl.jaas.config` cannot be environment variables on every Kubernetes.
 * - the environment itself, when it has no KUEUER_BACKEND and holds a RabbitMQ
 *   Cluster Operator default-user Secret (`envFrom`: type=rabbitmq, username,
 *   password, host, port).
 * The settings fill only the KUEUER_* variables that are not set: a variable
 * set on the container wins.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { KueuerError } from '../errors.js';
import { brokerSettings, SHAPES, type NamedSecret } from './shapes.js';

/** A mounted Secret: one file per key; Kubernetes' own `..data` links and `..<time>` directories are not keys. */
export function readSecretDir(dir: string): NamedSecret {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('..') && statSync(join(dir, n)).isFile());
  } catch (err) {
    throw new KueuerError('KUEUER_ERR_CONFIG', `KUEUER_BROKER_SECRET_DIRS names ${dir}, which cannot be read: ${(err as Error).message}`, { cause: err });
  }
  return { name: basename(dir), data: Object.fromEntries(names.map((n) => [n, readFileSync(join(dir, n), 'utf8')])) };
}

/** The RabbitMQ default-user Secret a container got through envFrom, if that is what its environment holds. */
function defaultUserFromEnv(env: Readonly<Record<string, string | undefined>>): NamedSecret | undefined {
  if (env.KUEUER_BACKEND || env.type !== 'rabbitmq') return undefined;
  const keys = [...SHAPES['rabbitmq-default-user'].keys, 'type'];
  if (!keys.every((k) => env[k])) return undefined;
  return { name: 'the broker Secret (environment)', data: Object.fromEntries(keys.map((k) => [k, env[k]!])) };
}

/** The KUEUER_* values the broker Secrets add to `env` (those `env` already sets are left out). */
export function brokerSecretEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const dirs = (env.KUEUER_BROKER_SECRET_DIRS ?? '')
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '');
  const fromEnv = defaultUserFromEnv(env);
  const secrets = [...(fromEnv ? [fromEnv] : []), ...dirs.map(readSecretDir)];
  if (secrets.length === 0) return {};
  return Object.fromEntries(Object.entries(brokerSettings(secrets)).filter(([k]) => env[k] === undefined || env[k] === ''));
}
