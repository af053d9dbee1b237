/** The sidecar's one configuration source: flags, then KUEUER_* env vars, then defaults. */
import { adminListenOption, appOption, backendOption, concurrencyOption, kafkaOptions, logLevelOption, queueOption } from '../shared/common-options.js';
import { byteSizeIn, integerIn, oneOf, type OptionSpec, type OptionValues } from '../shared/options.js';

/** The sidecar's admin port: its own default and the port the webhook injects (--sidecar-admin-port) unless told otherwise. */
export const SIDECAR_ADMIN_PORT = 9091;

export function maxResponseOption(): OptionSpec<number> {
  return {
    flag: 'max-response',
    env: 'KUEUER_MAX_RESPONSE',
    description: 'largest app response body sent back; a larger one is answered 502',
    defaultValue: '10MiB',
    parse: byteSizeIn(0, 100 * 1024 ** 2),
  };
}

/** `500,502-504` (or `none`) → the statuses the sidecar retries before giving up (empty: none). */
export function parseStatusList(raw: string): number[] {
  if (raw.trim() === '' || raw.trim() === 'none') return [];
  const out = new Set<number>();
  for (const part of raw.split(',').map((p) => p.trim())) {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(part);
    const from = m ? Number(m[1]) : NaN;
    const to = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || from < 500 || to > 599 || from > to) throw new Error(`expected 5xx statuses or ranges such as "500,502-504", got ${JSON.stringify(raw)}`);
    for (let s = from; s <= to; s++) out.add(s);
  }
  return [...out].sort();
}

/** What the sidecar does with app answers it may retry, and with requests it gives up on. */
export function retryOptions() {
  return {
    retryStatuses: {
      flag: 'retry-statuses',
      env: 'KUEUER_RETRY_STATUSES',
      description: 'app statuses retried with backoff (5xx, e.g. "500,502-504"); none: every answer goes straight to the client',
      defaultValue: 'none',
      parse: parseStatusList,
    },
    maxAttempts: {
      flag: 'max-attempts',
      env: 'KUEUER_MAX_ATTEMPTS',
      description:
        'calls of the app per request for --retry-statuses answers; after the last, the request goes to the dead-letter queue and the client gets the last answer',
      defaultValue: '3',
      parse: integerIn(1, 20),
    },
    deadLetter: {
      flag: 'dead-letter',
      env: 'KUEUER_DEAD_LETTER',
      description: 'copy requests that exhausted --max-attempts to the queue <queue>.dead-letter (on) or only log them (off)',
      defaultValue: 'on',
      parse: oneOf(['on', 'off'] as const),
    },
  } satisfies Record<string, OptionSpec<unknown>>;
}

export const sidecarOptions = {
  app: appOption(),
  backend: backendOption(),
  queue: queueOption(),
  concurrency: concurrencyOption(),
  maxResponseBytes: maxResponseOption(),
  ...retryOptions(),
  adminListen: adminListenOption(`0.0.0.0:${SIDECAR_ADMIN_PORT}`),
  ...kafkaOptions(),
  kafkaTransactionalId: {
    flag: 'kafka-transactional-id',
    env: 'KUEUER_KAFKA_TRANSACTIONAL_ID',
    description:
      "kafka, transactional delivery: the producer's transactional id, unique per sidecar and stable across its restarts (default kueuer.<queue>.<hostname>)",
    optional: true as const,
    parse: (raw: string): string => {
      if (!/^[A-Za-z0-9._-]{1,200}$/.test(raw)) throw new Error('use 1 to 200 letters, digits, ".", "_" or "-"');
      return raw;
    },
  },
  drainToken: {
    flag: 'drain-token',
    env: 'KUEUER_DRAIN_TOKEN',
    description:
      'the bearer token GET /drain requires (the webhook sets a random one per pod and sends it from the preStop hook); without one, /drain is refused',
    optional: true as const,
    parse: parseDrainToken,
  },
  logLevel: logLevelOption(),
};

/** A drain token: 16 to 256 characters of a bearer token (RFC 6750's b64token). */
export function parseDrainToken(raw: string): string {
  if (!/^[A-Za-z0-9._~+/-]{16,256}=*$/.test(raw)) throw new Error('use 16 to 256 letters, digits or "-._~+/" (the webhook generates one)');
  return raw;
}

export type SidecarOptions = OptionValues<typeof sidecarOptions>;
type RetryValues = OptionValues<ReturnType<typeof retryOptions>>;

/**
 * What one sidecar component needs, from its options. The retry options come all
 * together or not at all; without them no answer is retried (--retry-statuses none).
 */
export type SidecarSettings = Pick<SidecarOptions, 'app' | 'queue' | 'concurrency' | 'maxResponseBytes'> &
  (RetryValues | { [K in keyof RetryValues]?: undefined });
