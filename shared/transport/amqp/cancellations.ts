/**
 * Cancelling queued requests on RabbitMQ. A message in a queue cannot be taken back, so a cancel
 * travels beside it: the responder appends `{id, deadline}` to the queue's cancellation stream
 * (`kueuer_cancel.<queue>`, a RabbitMQ stream, replicated like a quorum queue), and every sidecar
 * of the queue reads that stream into a bounded set of cancelled ids; a delivery whose id is in it
 * is acked without calling the app (sidecar/worker.ts).
 *
 * A stream rather than a fanout exchange: a fanout reaches only the queues bound when the cancel
 * is published, so a sidecar started later (scaling from zero, the very case of a queued request)
 * or restarted would miss it. Every sidecar reads the stream back over its retention (24 h, the
 * longest `kueuer.io/timeout`) when it starts and after each reconnection, and waits, bounded, to
 * have read up to now before it consumes requests: it publishes a marker of its own and is caught
 * up when it reads it back.
 *
 * Bounded: the stream by age (24 h) and size (16 MiB in 1 MiB segments), the set by CAPACITY ids
 * (about 10 MB at most); an id leaves the set at its request's deadline (clamped to 24 h), and when
 * the set is full the oldest cancel is evicted (counted): its request then falls back to the
 * deadline skip. Malformed entries (an id that is not 32 hex digits, a deadline that is no number)
 * are dropped.
 */
import { randomBytes } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import { KueuerError } from '../../errors.js';
import { isRequestId } from '../../request-id.js';
import { CANCEL_RETENTION_MS, CANCELLED_IDS_CAPACITY, CancelledIdsWatch } from '../cancelled-ids.js';
import type { CancellationWatch } from '../transport.js';
import { closedChannels, confirmPublish, track } from './channels.js';

/**
 * The stream of a queue's cancellations. Not under `kueuer.`: a Service in namespace `kueuer`
 * (`kueuer.io/queue: cancel.x`) could name that request queue, publish its clients' bodies into
 * another queue's cancellations and read them. A qualified queue name starts with a namespace,
 * which never holds `_`, so no request queue of the cluster can be this.
 */
export const cancellationStream = (queue: string): string => `kueuer_cancel.${queue}`;

const STREAM_ARGUMENTS = {
  'x-queue-type': 'stream',
  'x-max-age': '24h',
  'x-max-length-bytes': 16 * 1024 * 1024,
  'x-stream-max-segment-size-bytes': 1024 * 1024,
};
/** How long a sidecar waits to have read the stream up to now before consuming requests anyway. */
export const CANCEL_CATCH_UP_WAIT_MS = 5_000;
/** Unacked stream messages the broker may send ahead. */
const STREAM_PREFETCH = 1_000;

/** Declares the stream on a channel of its own (a refused declaration closes its channel). */
async function declareStream(model: ChannelModel, stream: string): Promise<void> {
  const channel = await model.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.assertQueue(stream, { durable: true, arguments: STREAM_ARGUMENTS });
  } catch (err) {
    // Declared before with other limits: use it as it is.
    if (!/PRECONDITION_FAILED/.test((err as Error).message)) throw err;
    const passive = await model.createChannel();
    passive.on('error', () => undefined);
    await passive.checkQueue(stream);
    await passive.close().catch(() => undefined);
    return;
  }
  await channel.close().catch(() => undefined);
}

/** Appends a cancellation to the queue's stream; resolves once the broker confirmed it. */
export async function publishCancellation(
  model: ChannelModel,
  channel: ConfirmChannel,
  declared: Set<string>,
  queue: string,
  id: string,
  deadline: number,
  timeoutMs: number,
): Promise<void> {
  if (!isRequestId(id)) throw new KueuerError('KUEUER_ERR_ENVELOPE', `not a request id: ${JSON.stringify(id.slice(0, 64))}`);
  if (!Number.isFinite(deadline)) throw new KueuerError('KUEUER_ERR_ENVELOPE', 'a cancellation needs the deadline of its request');
  const stream = cancellationStream(queue);
  if (!declared.has(stream)) {
    await declareStream(model, stream);
    declared.add(stream);
  }
  const body = Buffer.from(JSON.stringify({ id, deadline }));
  await confirmPublish(channel, stream, { meta: {}, body }, { persistent: true }, timeoutMs);
}

/** A sidecar's reader of the queue's cancellation stream, attached again on every new connection. */
export class CancellationWatcher extends CancelledIdsWatch implements CancellationWatch {
  private channel: Channel | null = null;
  private closed = false;
  /** The next stream offset to read after a reconnection; the retention window before the first. */
  private nextOffset: number | undefined;

  constructor(
    private readonly queue: string,
    private readonly onCancel: (id: string) => void,
    private readonly log: Logger,
    capacity = CANCELLED_IDS_CAPACITY,
    private readonly onClose: () => void = () => undefined,
  ) {
    super(capacity);
  }

  /**
   * Consumes the stream on `model`, and resolves once it read its own marker (caught up) or after
   * CANCEL_CATCH_UP_WAIT_MS. Never rejects: a stream that cannot be read (a user without permission on
   * it) leaves the sidecar consuming without cancellations, said in the log.
   */
  async attach(model: ChannelModel): Promise<void> {
    if (this.closed) return;
    try {
      await this.consumeStream(model);
    } catch (err) {
      this.log.error(
        { queue: this.queue, stream: cancellationStream(this.queue), err: (err as Error).message },
        "cannot read the queue's cancellations: a cancelled request reaches the app (its answer is discarded). Grant the broker user configure, write and read on the stream",
      );
    }
  }

  private async consumeStream(model: ChannelModel): Promise<void> {
    const stream = cancellationStream(this.queue);
    await declareStream(model, stream);
    const channel = track(await model.createChannel(), this.log, 'cancellations');
    await channel.prefetch(STREAM_PREFETCH);
    const marker = randomBytes(8).toString('hex');
    let caughtUp: () => void = () => undefined;
    const reached = new Promise<void>((resolve) => (caughtUp = resolve));
    const offset = this.nextOffset ?? { '!': 'timestamp', value: Math.floor((Date.now() - CANCEL_RETENTION_MS) / 1000) };
    await channel.consume(
      stream,
      (msg) => {
        if (!msg) {
          this.log.warn({ queue: this.queue }, 'the cancellation stream consumer was cancelled by the broker; reading it again on the next connection');
          return;
        }
        if (this.read(msg) === marker) caughtUp();
        if (!closedChannels.has(channel)) channel.ack(msg);
      },
      { noAck: false, arguments: { 'x-stream-offset': offset } },
    );
    this.channel = channel;
    channel.sendToQueue(stream, Buffer.from(JSON.stringify({ marker })));
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      reached.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), CANCEL_CATCH_UP_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (late)
      this.log.warn({ queue: this.queue, waitedMs: CANCEL_CATCH_UP_WAIT_MS }, 'the cancellation stream was not read up to now in time; consuming anyway');
  }

  /** Takes one stream entry; returns the marker it carries, if any. */
  private read(msg: ConsumeMessage): string | undefined {
    const offset: unknown = msg.properties.headers?.['x-stream-offset'];
    if (typeof offset === 'number') this.nextOffset = offset + 1;
    let entry: { id?: unknown; deadline?: unknown; marker?: unknown };
    try {
      entry = JSON.parse(msg.content.toString()) as typeof entry;
    } catch {
      return undefined;
    }
    if (typeof entry.marker === 'string') return entry.marker;
    if (typeof entry.id !== 'string' || typeof entry.deadline !== 'number') return undefined;
    if (this.ids.add(entry.id, entry.deadline)) this.onCancel(entry.id);
    return undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.onClose();
    this.stopSweeping();
    const channel = this.channel;
    this.channel = null;
    if (channel && !closedChannels.has(channel)) await channel.close().catch(() => undefined);
  }
}
