/**
 * A responder replica's reply inbox on RabbitMQ. With quorum queues (the default) it is a quorum
 * queue of its own (queues.ts, inboxDeclaration): replicated, so losing the node of its leader or of
 * the responder's connection loses no reply; the transport consumes it again on its new connection,
 * and the replies published meanwhile wait in it. Deliveries are acked once handed over, so one in
 * flight when a leader goes is delivered again (the responder drops a second copy as a late reply).
 * Closing the inbox deletes it, so replies to a responder that exited fail fast as "inbox gone"; one
 * that was killed leaves its inbox until x-expires (60 s unused), where its late replies are taken
 * and dropped with it. With classic queues it is today's exclusive, auto-deleted queue.
 *
 * An inbox can still be lost under a living responder: its connection was cut for longer than
 * x-expires (a network partition), or an operator deleted it (the broker cancels its consumer).
 * Declaring it again would hide the loss, and the clients whose replies went to it would wait for
 * their deadline. So a re-attach first checks (passively) that the inbox it consumed still exists;
 * if not, or if a classic inbox was away longer than the sidecars keep trying a missing inbox, the
 * transport consumes a fresh inbox under a new name and reports the lost address (onLost), and the
 * responder answers the clients it held for it at once.
 */
import type { Channel, ChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import type { WireMessage } from '../../envelope.js';
import type { LostInbox, ReplyInbox } from '../transport.js';
import { closedChannels, metaFromHeaders, track } from './channels.js';
import type { ConsumerHost } from './consumer.js';
import { inboxDeclaration } from './queues.js';
import { Resumer } from './resume.js';

/** Unacked replies the broker may send ahead to one inbox (each is acked as soon as it is handed over). */
const INBOX_PREFETCH = 1000;

/**
 * How long sidecars keep retrying a reply whose inbox does not exist before they drop it (the
 * sidecar's REPLY_INBOX_GRACE_MS): a classic inbox, deleted with its connection, that was away
 * longer may have missed replies.
 */
export const SIDECAR_INBOX_GRACE_MS = 5_000;

/** Whether an amqplib error is the broker's 404 (no such queue). */
const isNotFound = (err: unknown): boolean => (err as { code?: unknown }).code === 404 || /NOT_FOUND/.test((err as Error).message);

export interface InboxHooks {
  /** A new inbox name, for the fresh inbox that replaces a lost one. */
  freshAddress: () => string;
  onLost?: (lost: LostInbox) => void;
}

export class AmqpReplyInbox implements ReplyInbox {
  private channel: Channel | null = null;
  private closed = false;
  private readonly resumer: Resumer;
  private current: string;
  /** The current address was consumed before: a later attach checks that it still exists. */
  private consumed = false;
  /** Inboxes found lost, not reported yet (reportLosses). */
  private readonly losses: LostInbox[] = [];

  constructor(
    address: string,
    private readonly onReply: (message: WireMessage) => void,
    private readonly host: ConsumerHost,
    private readonly log: Logger,
    private readonly hooks: InboxHooks,
  ) {
    this.current = address;
    this.resumer = new Resumer(() => this.reattach(), log, 'amqp reply inbox', { inbox: address });
  }

  get address(): string {
    return this.current;
  }

  private get replicated(): boolean {
    return this.host.queueType !== 'classic';
  }

  async attach(model: ChannelModel): Promise<void> {
    if (this.closed) return;
    this.resumer.cancel();
    if (this.consumed) {
      const cause = await this.lossOf(model);
      if (cause !== null) this.replace(cause);
    }
    const address = this.current;
    const channel = track(await model.createChannel(), this.log, 'reply-inbox');
    await channel.assertQueue(address, inboxDeclaration(this.host.queueType, this.host.inboxExpiresMs));
    const noAck = !this.replicated;
    if (!noAck) await channel.prefetch(INBOX_PREFETCH);
    await channel.consume(
      address,
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
    this.consumed = true;
  }

  /**
   * Why the inbox consumed before is lost (null when it is not): a replicated one that no longer
   * exists, a classic one (deleted with every connection) whose connection was away longer than the
   * sidecars keep trying a missing inbox. Throws when the broker cannot tell now.
   */
  private async lossOf(model: ChannelModel): Promise<string | null> {
    if (!this.replicated) {
      const awayMs = this.host.outageMs();
      return awayMs > SIDECAR_INBOX_GRACE_MS
        ? `the connection to the broker was lost for ${awayMs} ms, and a classic inbox is deleted with its connection; sidecars drop a reply to a missing inbox after ${SIDECAR_INBOX_GRACE_MS} ms`
        : null;
    }
    const check = await model.createChannel();
    check.on('error', () => undefined); // a 404 closes the channel; handled below
    try {
      await check.checkQueue(this.current);
      await check.close().catch(() => undefined);
      return null;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return `the broker no longer has it: it expired after ${this.host.inboxExpiresMs} ms unused (the connection was cut for longer), or it was deleted`;
    }
  }

  /** Moves to a fresh inbox (new requests name it); the lost one, whose replies will not come, is reported by reportLoss. */
  private replace(cause: string): void {
    const lost = this.current;
    this.current = this.hooks.freshAddress();
    this.consumed = false;
    this.log.error({ inbox: lost, fresh: this.current, cause }, 'amqp reply inbox lost; consuming a fresh one');
    this.losses.push({ address: lost, cause });
  }

  /**
   * Reports the inboxes lost so far, once the connection is usable again (the transport calls it when
   * it reports connected): a client answered reply_inbox_lost that retries at once is then served,
   * not refused as broker_unavailable while the rest of the connection's set-up finishes.
   */
  reportLosses(): void {
    for (const lost of this.losses.splice(0)) this.hooks.onLost?.(lost);
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
    this.log.warn({ inbox: this.address }, 'amqp reply inbox cancelled by the broker; checking whether it was deleted');
    void channel.close().catch(() => undefined);
    this.resumer.start();
  }

  private async reattach(): Promise<boolean> {
    const model = this.host.currentModel();
    if (!model || this.closed || (this.channel && !closedChannels.has(this.channel))) return false;
    await this.attach(model);
    this.reportLosses(); // on the transport's live connection
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
