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

export function track<C extends Channel>(channel: C, log: Logger, what: string): C {
  channel.on('error', (err: Error) => log.warn({ err: err.message }, `amqp ${what} channel error`));
  channel.on('close', () => closedChannels.add(channel));
  return channel;
}

export function confirmPublish(channel: ConfirmChannel, queue: string, message: WireMessage, props: amqp.Options.Publish, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new KueuerError('KUEUER_ERR_PUBLISH_TIMEOUT', `broker did not confirm within ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      channel.sendToQueue(queue, message.body, { ...props, headers: message.meta }, (err: unknown) => {
        clearTimeout(timer);
        if (err)
          reject(new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', `broker refused the message: ${err instanceof Error ? err.message : JSON.stringify(err)}`));
        else resolve();
      });
    } catch (err) {
      clearTimeout(timer);
      reject(new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', `publish failed: ${(err as Error).message}`, { cause: err }));
    }
  });
}
