import type { Logger } from 'pino';
import { KueuerError } from '../errors.js';
import { AmqpTransport } from './amqp.js';
import { MemoryTransport } from './memory.js';
import type { Transport } from './transport.js';

/** What `--backend` accepts; parsed once at start-up so a typo fails there. */
export type BackendSpec = { kind: 'memory' } | { kind: 'amqp'; url: string };

export function parseBackend(value: string): BackendSpec {
  if (value === 'memory') return { kind: 'memory' };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new KueuerError('KUEUER_ERR_BACKEND_URL', `expected "memory" or an amqp://… / amqps://… URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol === 'amqp:' || url.protocol === 'amqps:') {
    if (!url.hostname) throw new KueuerError('KUEUER_ERR_BACKEND_URL', 'the amqp URL has no host');
    return { kind: 'amqp', url: value };
  }
  throw new KueuerError(
    'KUEUER_ERR_BACKEND_URL',
    `unsupported backend scheme ${JSON.stringify(url.protocol)}; expected "memory", amqp:// or amqps://`,
  );
}

export interface TransportOptions {
  /** memory only: how long an unacked delivery stays invisible without a heartbeat. */
  visibilityTimeoutMs: number;
}

export async function createTransport(spec: BackendSpec, log: Logger, options: TransportOptions): Promise<Transport> {
  switch (spec.kind) {
    case 'memory':
      return new MemoryTransport({ visibilityTimeoutMs: options.visibilityTimeoutMs });
    case 'amqp':
      return AmqpTransport.connect(spec.url, log);
  }
}
