/**
 * A responder replica's reply inbox on RabbitMQ. With quorum queues (the default) it is a quorum
 * queue of its own (queues.ts, inboxDeclaration): replicated, so losing the node of its leader or of
 * the responder's connection loses no reply; the transport consumes it again on its new connection,
 * and the replies published meanwhile wait in it. Deliveries are acked once handed over, so one in
 * flight when a leader goes is delivered again (the responder drops a second copy as a late reply).
 * Closing the inbox deletes it, so replies to a responder that exited fail fast as "inbox gone"; one
 * that was killed leaves its inbox until x-expires (60 s unused), where its late replies are taken
 * and dropped with it. With classic queues it is today's exclusive, auto-deleted queue.
 */
import type { Channel, ChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import type { WireMessage } from '../../envelope.js';
import type { ReplyInbox } from '../transport.js';
import { closedChannels, metaFromHeaders, track } from './channels.js';
import type { ConsumerHost } from './consumer.js';
import { inboxDeclaration } from './queues.js';
import { Resumer } from './resume.js';

/** Unacked replies the broker may send ahead to one inbox (each is acked as soon as it is handed over). */
const INBOX_PREFETCH = 1000;

export class AmqpReplyInbox implements ReplyInbox {
  private channel: Channel | null = null;
  private closed = false;
  private readonly resumer: Resumer;

  constructor(
    readonly address: string,
    private readonly onReply: (message: WireMessage) => void,
    private readonly host: ConsumerHost,
    private readonly log: Logger,
  ) {
    this.resumer = new Resumer(() => this.reattach(), log, 'amqp reply inbox', { inbox: address });
  }

  private get replicated(): boolean {
    return this.host.queueType !== 'classic';
  }

  async attach(model: ChannelModel): Promise<void> {
    if (this.closed) return;
    this.resumer.cancel();
    const channel = track(await model.createChannel(), this.log, 'reply-inbox');
    await channel.assertQueue(this.address, inboxDeclaration(this.host.queueType));
    const noAck = !this.replicated;
    if (!noAck) await channel.prefetch(INBOX_PREFETCH);
    await channel.consume(
      this.address,
      (msg) => {
        if (!msg) return this.cancelled(channel);
        try {
          this.onReply({ meta: metaFromHeaders(msg.properties.headers), body: msg.content });
        } finally {
          if (!noAck && !closedChannels.has(channel)) channel.ack(msg);
        }
      },
      { noAck },
    );
    this.channel = channel;
  }

  /** Attaches on the transport's connection, or, if that fails now (a leader being elected), keeps trying. */
  attachOrResume(model: ChannelModel): Promise<void> {
    return this.attach(model).catch((err: unknown) => {
      this.log.warn({ inbox: this.address, err: (err as Error).message }, 'amqp reply inbox could not be consumed yet; retrying');
      this.resumer.start();
    });
  }

  /** The broker cancelled the consumer while the connection lives on (the inbox was deleted): declare and consume it again. */
  private cancelled(channel: Channel): void {
    if (this.closed || channel !== this.channel) return;
    this.channel = null;
    this.log.warn({ inbox: this.address }, 'amqp reply inbox cancelled by the broker (deleted); declaring it again');
    void channel.close().catch(() => undefined);
    this.resumer.start();
  }

  private async reattach(): Promise<boolean> {
    const model = this.host.currentModel();
    if (!model || this.closed || (this.channel && !closedChannels.has(this.channel))) return false;
    await this.attach(model);
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.resumer.cancel();
    this.host.forgetInbox(this);
    const channel = this.channel;
    this.channel = null;
    if (!channel || closedChannels.has(channel)) return;
    // A replicated inbox outlives its connection: delete it, so late replies to it fail fast as gone.
    if (this.replicated) await channel.deleteQueue(this.address).catch(() => undefined);
    await channel.close().catch(() => undefined);
  }
}
