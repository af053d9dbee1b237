/** amqplib helpers of the RabbitMQ backend: envelope headers, channel bookkeeping and confirmed publishes. */
import amqp from 'amqplib';
import type { Channel, ConfirmChannel } from 'amqplib';
import type { Logger } from 'pino';
import type { WireMessage } from '../../envelope.js';
import { KueuerError } from '../../errors.js';

export function metaFromHeaders(headers: Record<string, unknown> | undefined): Record<string, string> {
  const meta: Record<string, string> = {};
  if (!headers) return meta;
  for (const [key, value] of Object.entries(headers)) {
    if (typeof value === 'string') meta[key] = value;
    else if (Buffer.isBuffer(value)) meta[key] = value.toString('utf8');
    else if (typeof value === 'number') meta[key] = String(value);
  }
  return meta;
}

export const closedChannels = new WeakSet<Channel>();
/** Per publisher channel: message ids the broker returned as unroutable (basic.return comes before the ack). */
export const returnedIds = new WeakMap<Channel, Set<string>>();

/**
 * Channels whose write buffer is full (amqplib's 1,024 frames; publish returned false), each with the
 * publishes waiting for room: the broker is not reading (a memory or disk alarm blocks publishers, a
 * stalled network), and more frames would only pile up in memory until the process runs out of it.
 */
const saturated = new WeakMap<Channel, Set<() => void>>();

export function track<C extends Channel>(channel: C, log: Logger, what: string): C {
  channel.on('error', (err: Error) => log.warn({ err: err.message }, `amqp ${what} channel error`));
  const wake = (): void => {
    const waiters = saturated.get(channel);
    saturated.delete(channel);
    for (const resume of waiters ?? []) resume();
  };
  channel.on('drain', wake);
  channel.on('close', () => {
    closedChannels.add(channel);
    wake(); // the waiters then fail on the closed channel, as any publish on it does
  });
  return channel;
}

/** Resolves when `channel` takes frames again; rejects at the end of the budget (nothing was sent). */
function roomOn(channel: Channel, timeoutMs: number): Promise<void> {
  const waiters = saturated.get(channel);
  if (!waiters) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const resume = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      waiters.delete(resume);
      reject(
        new KueuerError(
          'KUEUER_ERR_PUBLISH_TIMEOUT',
          `the broker is not reading what it is sent (blocked by a memory or disk alarm, or the network stalls): not sent within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    waiters.add(resume);
  });
}

export async function confirmPublish(
  channel: ConfirmChannel,
  queue: string,
  message: WireMessage,
  props: amqp.Options.Publish,
  timeoutMs: number,
): Promise<void> {
  const started = Date.now();
  // Checked again after each wait, with no await between the check and the send: every publish of a
  // burst sees the buffer as the previous one left it.
  while (saturated.has(channel)) await roomOn(channel, Math.max(1, timeoutMs - (Date.now() - started)));
  timeoutMs = Math.max(1, timeoutMs - (Date.now() - started));
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new KueuerError('KUEUER_ERR_PUBLISH_TIMEOUT', `broker did not confirm within ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      const room = channel.sendToQueue(queue, message.body, { ...props, headers: message.meta }, (err: unknown) => {
        clearTimeout(timer);
        if (err)
          reject(new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', `broker refused the message: ${err instanceof Error ? err.message : JSON.stringify(err)}`));
        else resolve();
      });
      if (!room && !saturated.has(channel)) saturated.set(channel, new Set());
    } catch (err) {
      clearTimeout(timer);
      reject(new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', `publish failed: ${(err as Error).message}`, { cause: err }));
    }
  });
}
