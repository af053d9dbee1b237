/**
 * An AMQP URL naming several brokers of one cluster:
 * `amqp://user:pass@host1:5672,host2:5672,host3/vhost?heartbeat=10`. Each
 * host gets the same credentials, vhost and query; the transport connects to
 * the first that answers and, when a connection is lost, tries the next one.
 * A single host (a load-balanced Service) is the one-element case. Pure: no
 * amqplib.
 */
// The userinfo runs to the last '@' of the authority: a password may hold a raw '@' (WHATWG URLs and amqplib take it).
const MULTI = /^(amqps?):\/\/(?:([^/?#]*)@)?([^/?#@]*)([/?#].*)?$/;

/** The single-host URLs of a (possibly comma-separated) amqp URL, in order; throws on a malformed one. */
export function amqpHostUrls(url: string): string[] {
  const m = MULTI.exec(url);
  if (!m) throw new Error(`expected amqp://[user:pass@]host[:port][,host[:port]...][/vhost], got ${JSON.stringify(redactRaw(url))}`);
  const [, scheme, auth, hosts, rest] = m;
  const list = hosts!.split(',');
  if (list.some((h) => h.trim() === '')) throw new Error('the amqp URL has an empty host (two commas, or a comma at an end)');
  return list.map((host) => {
    const single = `${scheme}://${auth !== undefined ? `${auth}@` : ''}${host.trim()}${rest ?? ''}`;
    let parsed: URL;
    try {
      parsed = new URL(single);
    } catch {
      throw new Error(`the amqp URL has a bad host or port: ${JSON.stringify(host.trim())}`);
    }
    if (!parsed.hostname) throw new Error('the amqp URL has no host');
    return single;
  });
}

/** The URL (any scheme) with its password hidden, without parsing it as one URL (it may have several hosts or be malformed). */
export function redactRaw(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*:)[^/?#]*@/i, '$1***@');
}

/** What amqplib's connect takes for one host: the object form, so the transport can point it at another host before a reconnect. */
export interface ConnectTarget {
  protocol: string;
  hostname: string;
  port: number;
  username?: string;
  password?: string;
  /** As in the URL's path (amqplib unescapes it). */
  vhost: string;
  heartbeat?: number;
  frameMax?: number;
  channelMax?: number;
  locale?: string;
}

/**
 * The AMQP heartbeat (seconds) unless the URL sets `heartbeat=` (0 turns it off). Without one amqplib
 * takes the broker's proposal, RabbitMQ's 60 s, and a peer that is gone without a FIN or RST (a node
 * powered off, a partition, a blackholed address) is noticed only after two missed intervals, 2-3 min.
 * 20 s, the top of RabbitMQ's advised 5-20 s, notices it within 40-60 s and costs one 8-byte frame
 * each way per 10 s of silence.
 */
export const DEFAULT_HEARTBEAT_S = 20;

/** The object form of a single-host amqp URL, with what amqplib reads from a URL string (credentials, vhost, query), and the heartbeat default. */
export function connectTarget(url: string): ConnectTarget {
  const u = new URL(url);
  const protocol = u.protocol.replace(/:$/, '');
  const target: ConnectTarget = {
    protocol,
    hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : protocol === 'amqps' ? 5671 : 5672,
    vhost: u.pathname.slice(1),
    heartbeat: DEFAULT_HEARTBEAT_S,
  };
  if (u.username !== '' || u.password !== '') {
    target.username = decodeURIComponent(u.username);
    target.password = decodeURIComponent(u.password);
  }
  for (const key of ['heartbeat', 'frameMax', 'channelMax'] as const) {
    const raw = u.searchParams.get(key);
    if (raw !== null) target[key] = parseInt(raw, 10);
  }
  const locale = u.searchParams.get('locale');
  if (locale !== null) target.locale = locale;
  return target;
}
