/** The responder's one configuration source: flags, then KUEUER_* env vars, then defaults. */
import type { AsyncMode, Parsed } from '../shared/annotations.js';
import type { CallbackSettings } from './callbacks/index.js';
import { adminListenOption, backendOption, kafkaOptions, logLevelOption, queueOption, timeoutOption } from '../shared/common-options.js';
import { parseTrustedProxies, type TrustedProxies } from '../shared/trusted-proxies.js';
import { byteSizeIn, durationIn, integerIn, oneOf, parseHostPort, type OptionSpec, type OptionValue, type OptionValues } from '../shared/options.js';

export function listenOption(defaultValue: string): OptionSpec<ReturnType<typeof parseHostPort>> {
  return { flag: 'listen', env: 'KUEUER_LISTEN', description: 'address clients connect to', defaultValue, parse: parseHostPort };
}

/** Responder behaviour options, shared by `kueuer responder` and `kueuer local`. */
export function responderBehaviourOptions() {
  return {
    timeoutMs: timeoutOption(),
    maxBodyBytes: {
      flag: 'max-body',
      env: 'KUEUER_MAX_BODY',
      description: 'largest request body accepted; larger ones get 413',
      defaultValue: '10MiB',
      parse: byteSizeIn(0, 100 * 1024 ** 2),
    },
    maxPending: {
      flag: 'max-pending',
      env: 'KUEUER_MAX_PENDING',
      description: 'clients held, and requests being published, at once by this replica; beyond it new requests get 503',
      defaultValue: '10000',
      parse: integerIn(1, 1_000_000),
    },
    publishTimeoutMs: {
      flag: 'publish-timeout',
      env: 'KUEUER_PUBLISH_TIMEOUT',
      description: 'how long to wait for the broker to confirm a request before answering 503 (never past the request --timeout)',
      defaultValue: '30s',
      parse: durationIn(10, 60_000),
    },
    headersTimeoutMs: {
      flag: 'headers-timeout',
      env: 'KUEUER_HEADERS_TIMEOUT',
      description: 'how long a client may take to send its request line and headers; slower ones get 408 (within 1 s of it) and are closed',
      defaultValue: '60s',
      parse: durationIn(1_000, 3_600_000),
    },
    bodyTimeoutMs: {
      flag: 'body-timeout',
      env: 'KUEUER_BODY_TIMEOUT',
      description: 'how long a client may take to send its whole request body; slower uploads get 408 and are closed',
      defaultValue: '30s',
      parse: durationIn(100, 3_600_000),
    },
    sendTimeoutMs: {
      flag: 'send-timeout',
      env: 'KUEUER_SEND_TIMEOUT',
      description: 'how long a client may take to read its answer once it is written; slower readers are disconnected',
      defaultValue: '30s',
      parse: durationIn(100, 3_600_000),
    },
    trustedProxies: {
      flag: 'trusted-proxies',
      env: 'KUEUER_TRUSTED_PROXIES',
      description:
        "comma-separated CIDRs of proxies in front of the responder (an ingress controller's pods); their X-Real-IP reaches the app as sent, anyone else's is replaced by the peer's address",
      defaultValue: '',
      parse: parseTrustedProxies,
    },
    drainTimeoutMs: {
      flag: 'drain-timeout',
      env: 'KUEUER_DRAIN_TIMEOUT',
      description: 'on SIGTERM, how long to keep waiting for the answers of held clients',
      defaultValue: '60s',
      parse: durationIn(0, 3_600_000),
    },
  } satisfies Record<string, OptionSpec<unknown>>;
}

export const responderOptions = {
  listen: listenOption('0.0.0.0:8080'),
  adminListen: adminListenOption('0.0.0.0:9090'),
  backend: backendOption(),
  queue: {
    ...queueOption(),
    optional: true as const,
    description: 'queue served on --listen; required unless --routes cluster (then optional)',
  },
  routes: {
    flag: 'routes',
    env: 'KUEUER_ROUTES',
    description: 'queue: serve --queue on --listen; cluster: also open one port per opted-in Service, as the webhook assigned them',
    defaultValue: 'queue',
    parse: oneOf(['queue', 'cluster'] as const),
  },
  asyncStore: {
    flag: 'async-store',
    env: 'KUEUER_ASYNC_STORE',
    description:
      'where asynchronous requests and results are kept (Services with kueuer.io/async): memory (this replica only) or redis://host:port shared by all replicas',
    defaultValue: 'memory',
    parse: parseAsyncStore,
  },
  ...responderBehaviourOptions(),
  ...kafkaOptions(),
  logLevel: logLevelOption(),
};

/** `memory`, or a redis:// / rediss:// URL (credentials allowed: it comes from a flag or a Secret-fed variable). */
export function parseAsyncStore(raw: string): 'memory' | URL {
  if (raw === 'memory') return 'memory';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`expected memory or a redis://host:port URL, got ${JSON.stringify(raw.replace(/\/\/[^@/]*@/, '//***@'))}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new Error(`expected memory or a redis:// or rediss:// URL, got the scheme ${url.protocol}`);
  return url;
}

export type ResponderOptions = OptionValues<typeof responderOptions>;

/** What one responder (one queue on one port) needs, from its options; draining is its starter's business. */
export type ResponderSettings = Omit<OptionValues<ReturnType<typeof responderBehaviourOptions>>, 'drainTimeoutMs' | 'trustedProxies'> & {
  queue: OptionValue<ReturnType<typeof queueOption>>;
  /** --trusted-proxies; none when left out. */
  trustedProxies?: TrustedProxies;
  /** Asynchronous requests (docs/async.md): from the Service's kueuer.io/async; absent when off. */
  async?: AsyncSettings;
};

export interface AsyncSettings {
  mode: Exclude<AsyncMode, 'off'>;
  /** How long a request and its result are kept (kueuer.io/async-result-ttl); default 24 h. */
  resultTtlMs?: number;
  /** Largest result kept; default 10 MiB, the sidecar's default --max-response. */
  maxResultBytes?: number;
  /** The Service's callback settings (kueuer.io/async-callback-allow, -secret), parsed once per Service change. */
  callbacks?: RouteCallbacks;
}

/** Where a Service's callbacks may go and what signs them: read in the Service's namespace. */
export interface RouteCallbacks {
  namespace: string;
  settings: Parsed<CallbackSettings | undefined>;
}

export const ASYNC_DEFAULTS = { resultTtlMs: 24 * 3_600_000, maxResultBytes: 10 * 1024 ** 2, storeMaxBytes: 256 * 1024 ** 2 } as const;
