/**
 * The RabbitMQ backend's request consumer (prefetch = concurrency, ack when
 * the handler resolves; the reply inbox is in inbox.ts). It is re-attached on
 * every new connection by the transport; a request consumer that the broker cancels while the connection lives on (its queue
 * was deleted, or a classic queue's node went down) re-attaches itself,
 * retrying with backoff until the queue can be consumed again.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import { META } from '../../envelope.js';
import type { ConsumeOptions, Consumer, DeliveryHandler, ReplyInbox } from '../transport.js';
import { closedChannels, metaFromHeaders, track } from './channels.js';
import { declareDurableQueue, type QueueType } from './queues.js';
import { Resumer } from './resume.js';

/** Set by a publisher on a request it published again after losing the first publish's confirm: that copy may be a second one. */
export const REPUBLISHED_HEADER = 'x-kueuer-republished';

/** What the consumers need of their transport: the live connection (null while reconnecting) and the declared queue type. */
export interface ConsumerHost {
  currentModel(): ChannelModel | null;
  readonly queueType: QueueType;
  /** x-expires of the reply inboxes (replicated ones). */
  readonly inboxExpiresMs: number;
  /** How long the connection was lost before the one being set up (0 when none was lost). */
  outageMs(): number;
  forgetConsumer(consumer: Consumer): void;
  forgetInbox(inbox: ReplyInbox): void;
}

export class AmqpConsumer implements Consumer {
  private channel: Channel | null = null;
  private consumerTag: string | null = null;
  private running = 0;
  private readonly perChannel = new WeakMap<Channel, number>();
  private stopping = false;
  private readonly resumer: Resumer;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly queue: string,
    private readonly options: ConsumeOptions,
    private readonly handler: DeliveryHandler,
    private readonly host: ConsumerHost,
    private readonly log: Logger,
  ) {
    this.resumer = new Resumer(() => this.reattach(), log, 'amqp consumer', { queue });
  }

  get inFlight(): number {
    return this.running;
  }

  async attach(model: ChannelModel): Promise<void> {
    if (this.stopping) return;
    this.resumer.cancel();
    await declareDurableQueue(model, this.queue, this.host.queueType, 'request', this.log);
    const channel = track(await model.createChannel(), this.log, 'consumer');
    await channel.prefetch(this.options.concurrency);
    const { consumerTag } = await channel.consume(this.queue, (msg) => {
      if (msg) this.run(channel, msg);
      else this.cancelled(channel);
    });
    this.channel = channel;
    this.consumerTag = consumerTag;
  }

  /** The broker cancelled this consumer but the connection lives on: consume again once the queue is back. */
  private cancelled(channel: Channel): void {
    if (this.stopping || channel !== this.channel) return;
    this.channel = null;
    this.consumerTag = null;
    this.log.warn({ queue: this.queue }, 'amqp consumer cancelled by the broker (queue deleted or its node down); consuming again');
    this.retire(channel);
    this.resumer.start();
  }

  /** The resumer's attempt: false when there is nothing to do (no connection: the transport re-attaches on reconnect). */
  private async reattach(): Promise<boolean> {
    const model = this.host.currentModel();
    if (!model || this.stopping || (this.channel && !closedChannels.has(this.channel))) return false;
    await this.attach(model);
    return true;
  }

  /** Closes a channel this consumer no longer takes deliveries on once its last delivery is settled. */
  private retire(channel: Channel): void {
    if ((this.perChannel.get(channel) ?? 0) === 0 && !closedChannels.has(channel)) void channel.close().catch(() => undefined);
  }

  private run(channel: Channel, msg: ConsumeMessage): void {
    this.running++;
    this.perChannel.set(channel, (this.perChannel.get(channel) ?? 0) + 1);
    const headers = msg.properties.headers;
    const redelivered = msg.fields.redelivered || headers?.[REPUBLISHED_HEADER] !== undefined;
    this.handler({ message: { meta: metaFromHeaders(headers), body: msg.content }, redelivered })
      .then(
        () => {
          if (!closedChannels.has(channel)) channel.ack(msg);
        },
        (err: unknown) => {
          this.log.warn({ err: (err as Error)?.message, reqId: headers?.[META.id] }, 'handler failed; requeueing');
          if (!closedChannels.has(channel)) channel.nack(msg, false, true);
        },
      )
      .finally(() => {
        this.running--;
        this.perChannel.set(channel, (this.perChannel.get(channel) ?? 1) - 1);
        if (channel !== this.channel) this.retire(channel);
        if (this.running === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.resumer.cancel();
    const channel = this.channel;
    if (channel && this.consumerTag && !closedChannels.has(channel)) {
      await channel.cancel(this.consumerTag).catch(() => undefined);
    }
    if (this.running > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.host.forgetConsumer(this);
    if (channel && !closedChannels.has(channel)) await channel.close().catch(() => undefined);
  }
}
