/** The AMQP transport's own duties against the real broker. */
import { describe, expect, it } from 'vitest';
import { encodeResponse } from '../../shared/envelope.js';
import { isKueuerError } from '../../shared/errors.js';
import { newTransport, uniqueQueue } from '../helpers/stack.js';

describe('amqp transport', () => {
  it('a reply whose inbox does not exist fails as KUEUER_ERR_REPLY_INBOX_GONE (the sidecar retries briefly, then drops it without rerunning the app)', async () => {
    const t = await newTransport('amqp');
    try {
      const queue = uniqueQueue('noinbox');
      const reply = encodeResponse({ id: 'c'.repeat(32), queue, status: 200, headers: [], body: Buffer.from('x') });
      const err = await t.publishReply(`kueuer.reply.${queue}.0000000000000000`, reply, { timeoutMs: 5000 }).catch((e: unknown) => e);
      expect(isKueuerError(err, 'KUEUER_ERR_REPLY_INBOX_GONE')).toBe(true);
      expect((err as Error).message).toMatch(/does not exist/);
      // An inbox that exists takes it.
      const got: string[] = [];
      const inbox = await t.openReplyInbox(queue, (m) => got.push(m.body.toString()));
      await t.publishReply(inbox.address, reply, { timeoutMs: 5000 });
      await expect.poll(() => got, { timeout: 5000 }).toEqual(['x']);
      await inbox.close();
    } finally {
      await t.close();
    }
  });
});
