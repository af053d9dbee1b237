/**
 * A TCP proxy in front of the shared broker that a test can break the way networks break:
 * `cut()` drops the open connections and refuses new ones until `restore()` (a partition the
 * kernel reports), `silence()` lets the bytes stop flowing both ways with the sockets kept open
 * (a partition nobody reports: only a heartbeat notices).
 */
import net from 'node:net';

export interface BrokerProxy {
  port: number;
  cut(): void;
  silence(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function brokerProxy(brokerUrl: string): Promise<BrokerProxy> {
  const target = new URL(brokerUrl);
  const sockets = new Set<net.Socket>();
  let state: 'open' | 'cut' | 'silent' = 'open';
  const server = net.createServer((client) => {
    if (state === 'cut') return client.destroy();
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('error', () => undefined);
      from.on('data', (chunk: Buffer) => void (state === 'open' ? to.write(chunk) : undefined));
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      state = 'cut';
      for (const s of sockets) s.destroy();
    },
    silence() {
      state = 'silent';
    },
    restore() {
      state = 'open';
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** `brokerUrl` with its host and port those of the proxy. */
export function throughProxy(brokerUrl: string, proxy: BrokerProxy): string {
  const url = new URL(brokerUrl);
  url.host = `127.0.0.1:${proxy.port}`;
  return url.toString();
}
