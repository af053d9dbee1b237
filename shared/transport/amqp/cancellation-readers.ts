/**
 * The connection a sidecar reads its queue's cancellation stream on (cancellations.ts), apart from the
 * connection its requests and replies use. While a stream's writer node is down, RabbitMQ 3.10 may
 * leave the stream's other replicas stopped (its coordinator retries, every 10 s, to stop the member
 * on the dead node), and a consume on a node whose replica is stopped is refused with a connection
 * exception ("queue 'kueuer_cancel.<queue>' … does not have a running local replica"). On the
 * requests' connection that took the consumers and the publisher with it, on every node tried, for
 * as long as the node was down; on this connection only the reading of cancellations waits (a
 * cancelled request then falls back to the deadline skip), and it moves on to the next node.
 */
import amqp from 'amqplib';
import type { ChannelModel, RecoveringChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import type { CancellationWatch } from '../transport.js';
import { CANCEL_CATCH_UP_WAIT_MS, CancellationWatcher } from './cancellations.js';
import { connectTarget } from './url.js';

/** How long the first watcher waits for this connection's first attempt (a connect, then reading up to now). */
const FIRST_WAIT_MS = 3_000 + CANCEL_CATCH_UP_WAIT_MS;

export class CancellationReaders {
  private readonly watchers = new Set<CancellationWatcher>();
  private connection: RecoveringChannelModel | null = null;
  private model: ChannelModel | null = null;

  constructor(
    private readonly hosts: string[],
    private readonly firstHost: number,
    private readonly connectOptions: { timeout: number; ca?: string[] },
    private readonly log: Logger,
  ) {}

  /** Reads `queue`'s cancellations; resolves once read up to now (or after FIRST_WAIT_MS on a first connection). */
  async watch(queue: string, onCancel: (id: string) => void, capacity?: number): Promise<CancellationWatch> {
    const watcher: CancellationWatcher = new CancellationWatcher(queue, onCancel, this.log, capacity, () => this.watchers.delete(watcher));
    this.watchers.add(watcher);
    if (this.model) await watcher.attach(this.model);
    else await this.open(); // its set-up attaches every watcher
    return watcher;
  }

  private async open(): Promise<void> {
    if (this.connection) return;
    let index = this.firstHost;
    const target = connectTarget(this.hosts[index]!);
    const next = (): void => {
      if (this.hosts.length < 2) return;
      index = (index + 1) % this.hosts.length;
      Object.assign(target, connectTarget(this.hosts[index]!));
    };
    const connection = await amqp.connect(target, {
      noDelay: true,
      ...this.connectOptions,
      recovery: {
        initialDelay: 100,
        maxDelay: 5_000,
        waitForConnect: false,
        setup: async (model: ChannelModel) => {
          model.on('error', () => undefined); // a refused stream consume closes this connection: set-up then fails below
          for (const watcher of this.watchers) await watcher.attach(model);
          // A watcher never rejects: whether the connection outlived its consume is checked here.
          await (await model.createChannel()).close();
        },
      },
    });
    this.connection = connection;
    connection.on('connect', (model: ChannelModel) => (this.model = model));
    connection.on('disconnect', (err: Error) => {
      this.model = null;
      this.log.warn({ err: err?.message }, 'lost the connection the cancellation streams are read on; reconnecting');
      next();
    });
    connection.on('connect-failed', (err: Error) => {
      this.log.warn({ err: err.message }, 'cannot read the cancellation streams through this node now; trying the next (requests are served meanwhile)');
      next();
    });
    connection.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, FIRST_WAIT_MS);
      function done(): void {
        clearTimeout(timer);
        connection.off('connect', done).off('connect-failed', done);
        resolve();
      }
      connection.once('connect', done).once('connect-failed', done);
    });
  }

  async close(): Promise<void> {
    this.model = null;
    await this.connection?.close().catch(() => undefined);
  }
}
