/** Request envelopes the transport tests publish. */
import { encodeRequest, type WireMessage } from '../../shared/envelope.js';
import { newRequestId } from '../../shared/request-id.js';

/** An encoded `GET /` with no headers and no body on `queue`, due in 60 s; what is in it does not matter to the broker. */
export function emptyGet(queue: string, id: string = newRequestId(), replyTo = 'kueuer.reply.x'): WireMessage {
  return encodeRequest({
    id,
    queue,
    replyTo,
    deadline: Date.now() + 60_000,
    enqueuedAt: Date.now(),
    method: 'GET',
    path: '/',
    headers: [],
    body: Buffer.alloc(0),
  });
}
