/**
 * A kafkajs client as Kueuer opens it, for the transport and the depth
 * reader alike: credentials from the environment (config.ts), sockets with
 * noDelay, and every broker that cannot be reached named with its cause.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { Kafka, logLevel, type Admin, type Consumer, type ISocketFactory } from 'kafkajs';
import type { Logger } from 'pino';
import { describeNetworkCause } from '../../connect-errors.js';
import { formatHostPort } from '../../options.js';
import { retry, type BackoffOptions } from '../../retry.js';
import { kafkaAuth, type KafkaSpec } from './config.js';
import { guardCoordinatorLoss } from './coordinator-guard.js';
import { guardKafkajs } from './kafkajs-guard.js';

/** kafkajs 2.2.4 on Node 24 set timers of about -Date.now() ms: guarded before any client exists (kafkajs-guard.ts). */
export const kafkajsGuard = guardKafkajs();
/** kafkajs 2.2.4 keeps a dead group coordinator until the consumer restarts: looked up again on a failure (coordinator-guard.ts). */
export const coordinatorGuard = guardCoordinatorLoss();

/** Another kafkajs than the reviewed one runs, but without the guards: said once per transport (docs/kafka.md says what they fix). */
export function warnIfUnguarded(log: Logger): void {
  if (kafkajsGuard === 'guarded' && coordinatorGuard === 'guarded') return;
  log.warn(
    { kafkajsGuard, coordinatorGuard },
    'kafkajs is not the version whose guards were reviewed (2.2.4): a dead group coordinator may stall consumers for ~30 s after a broker loss',
  );
}

/** Between attempts at connecting or setting up a topic or consumer: 200 ms doubling to 5 s. */
export const SETUP_RETRY: BackoffOptions = { baseMs: 200, capMs: 5000, jitter: false };

/**
 * kafkajs's retry of a consumer's fetch loop. A fetch from a partition's dead leader fails at once
 * (connection refused), and kafkajs refreshes its metadata on that failure but waits out its
 * backoff before fetching again; with the client's default (doubling from 100 ms, up to 30 s) the
 * wait after the failure that first saw the new leader was 6-13 s, so a reply inbox or a sidecar
 * went on reading nothing for that long after the broker had elected new leaders (a SIGKILL of a
 * leader stalled answers 18-23 s where the election took 9-12 s). Capped at 1 s, the fetch
 * resumes within about a second of the election. The retries count over the consumer's life
 * (kafkajs never resets them while it runs), and when they are spent kafkajs restarts the
 * consumer, which rejoins its group: 30 keep that at least as far off as the default's 8 did
 * (about 25 s of one outage). factor and multiplier are kafkajs's defaults, named because kafkajs
 * takes others when NODE_ENV is test.
 */
export const CONSUMER_RETRY = { initialRetryTime: 100, maxRetryTime: 1000, retries: 30, factor: 0.2, multiplier: 2 };

/** Says when kafkajs stops a consumer on an error it could not retry away (it then restarts it, as a new member of its group). */
export function logRestarts(consumer: Consumer, log: Logger, what: string): void {
  consumer.on(consumer.events.CRASH, (e) =>
    log.warn(
      { err: e.payload.error.message, restart: e.payload.restart },
      e.payload.restart ? `${what} stopped on an error; kafkajs restarts it` : `${what} stopped on an error kafkajs does not retry`,
    ),
  );
}

/** kafkajs's own sockets leave Nagle on; like AMQP's, ours set noDelay (one request at a time went from ~7 ms to ~2 ms). */
const noDelaySocket: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl ? tls.connect({ ...ssl, host, port, servername: ssl.servername ?? host }, onConnect) : net.connect({ host, port }, onConnect);
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 60_000);
  return socket;
};

export class KafkaClient {
  readonly kafka: Kafka;
  readonly admin: Admin;
  /** Brokers whose last connection attempt failed, with the cause: logged when it first fails or the cause changes. */
  private readonly unreachable = new Map<string, string>();
  /** When a connection to each broker last failed (host:port). */
  private readonly failedAt = new Map<string, number>();

  constructor(
    spec: KafkaSpec,
    private readonly log: Logger,
  ) {
    const auth = kafkaAuth(spec, process.env);
    this.kafka = new Kafka({
      clientId: `kueuer-${randomBytes(4).toString('hex')}`,
      brokers: spec.brokers,
      ...(auth.ssl ? { ssl: auth.ssl } : {}),
      ...(auth.sasl ? { sasl: auth.sasl as never } : {}),
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, retries: 8 },
      socketFactory: (args) => this.watchSocket(noDelaySocket(args), args.host, args.port),
    });
    this.admin = this.kafka.admin();
  }

  /** Names host, port and cause as soon as a socket to a broker fails (kafkajs only reports after its retries). */
  private watchSocket<S extends net.Socket>(socket: S, host: string, port: number): S {
    const key = formatHostPort({ host, port });
    socket.once(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => {
      this.unreachable.delete(key);
      this.failedAt.delete(key);
    });
    // A broker that dies closes its sockets (FIN, no error): a new request then should not wait on it.
    socket.once('end', () => this.failedAt.set(key, Date.now()));
    socket.once('error', (err: Error) => {
      this.failedAt.set(key, Date.now());
      const cause = describeNetworkCause(err);
      if (this.unreachable.get(key) === cause) return;
      this.unreachable.set(key, cause);
      this.log.warn({ host, port, cause }, `cannot reach Kafka broker ${key}: ${cause}; retrying`);
    });
    return socket;
  }

  /** Whether a connection to the broker (host:port) failed within the last `withinMs` without one succeeding since. */
  recentlyUnreachable(broker: string, withinMs = 15_000): boolean {
    const at = this.failedAt.get(broker);
    return at !== undefined && Date.now() - at < withinMs;
  }

  /** Runs `connect` until it resolves, saying after each failure which brokers cannot be reached. */
  connectWithRetry(connect: () => Promise<void>): Promise<void> {
    return retry(connect, {
      ...SETUP_RETRY,
      onRetry: (err) => {
        const causes = [...this.unreachable].map(([broker, cause]) => `${broker}: ${cause}`);
        this.log.warn({ err: (err as Error).message }, `cannot reach Kafka${causes.length ? ` (${causes.join('; ')})` : ''}; retrying`);
      },
    });
  }
}
