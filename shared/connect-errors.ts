/**
 * What went wrong when connecting to a broker or the Kubernetes API, in words
 * an operator can act on. Pure: classifies errors, touches nothing.
 */

const NETWORK_CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing listens on that port',
  ENOTFOUND: 'DNS lookup failed: no such host',
  EAI_AGAIN: 'DNS lookup failed (temporary failure of the resolver)',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset by the peer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed by the peer',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
};

interface ErrnoLike {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
}

/** The first `code` found on the error or its causes (fetch wraps the socket error). */
function codeOf(err: unknown): string | undefined {
  for (let e = err as ErrnoLike | undefined, depth = 0; e && depth < 5; e = e.cause as ErrnoLike | undefined, depth++) {
    if (typeof e.code === 'string' && e.code !== '') return e.code;
  }
  return undefined;
}

function firstLine(err: unknown): string {
  const message = (err as ErrnoLike | undefined)?.message;
  return (typeof message === 'string' ? message : String(err)).split('\n')[0]!.trim();
}

/** `connection refused: nothing listens on that port (ECONNREFUSED)`, `TLS handshake failed: … (CODE)`, or the error's own first line. */
export function describeNetworkCause(err: unknown): string {
  const code = codeOf(err) ?? /\b(E[A-Z]{4,}|UND_ERR_[A-Z_]+)\b/.exec(firstLine(err))?.[1];
  if (code && NETWORK_CAUSES[code]) return `${NETWORK_CAUSES[code]} (${code})`;
  if (code && (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /CERT|SIGNATURE|SELF_SIGNED/.test(code))) {
    return `TLS handshake failed: ${firstLine(err).replace(/^[0-9A-F]+:error:[0-9A-F]+:/, '')} (${code})`;
  }
  return code ? `${firstLine(err)} (${code})` : firstLine(err);
}

export interface AmqpEndpoint {
  host: string;
  port: number;
  vhost: string;
  user: string;
}

/** Host, port, vhost and user of an amqp(s) URL, with AMQP's defaults (5672/5671, vhost `/`, user `guest`). */
export function amqpEndpoint(url: string): AmqpEndpoint {
  const u = new URL(url);
  const vhost = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : u.protocol === 'amqps:' ? 5671 : 5672,
    vhost: vhost === '' ? '/' : vhost,
    user: u.username ? decodeURIComponent(u.username) : 'guest',
  };
}

export interface ConnectFailure {
  /** Retrying cannot help: the broker answered and refused (credentials, vhost). */
  refused: boolean;
  /** One line: where, what, and what to do. */
  reason: string;
  /** The cause alone, e.g. `connection refused: nothing listens on that port (ECONNREFUSED)`. */
  cause: string;
}

/** Why an AMQP connection attempt failed, and whether it is worth retrying. */
export function describeAmqpConnectFailure(err: unknown, e: AmqpEndpoint): ConnectFailure {
  const where = `${e.host}:${e.port}`;
  const message = firstLine(err);
  if (/ACCESS[-_]REFUSED/.test(message)) {
    const cause = `access refused for user "${e.user}"`;
    return {
      refused: true,
      cause,
      reason: `RabbitMQ at ${where} refused access for user "${e.user}": check the user and password in --backend (KUEUER_BACKEND)`,
    };
  }
  // RabbitMQ closes the connection at connection.open when the vhost is missing or the user may not use it;
  // amqplib only reports the unexpected ConnectionClose.
  if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(message) || /\b530\b|NOT[-_]ALLOWED/.test(message)) {
    return {
      refused: true,
      cause: `vhost "${e.vhost}" does not exist or user "${e.user}" may not use it`,
      reason: `RabbitMQ at ${where} refused to open vhost "${e.vhost}": it does not exist or user "${e.user}" has no permission on it; create it (rabbitmqctl add_vhost) and grant access (rabbitmqctl set_permissions), or fix the vhost in --backend (KUEUER_BACKEND)`,
    };
  }
  const cause = describeNetworkCause(err);
  return { refused: false, cause, reason: `cannot reach RabbitMQ at ${where}: ${cause}` };
}
