/**
 * A lingering close, as nginx does after an early answer (a 413 before the
 * whole body arrived): the answer is sent, the write side is shut (FIN), and
 * what the client still sends is read and discarded for a bounded amount and
 * time before the connection closes. Closing at once, with the client's bytes
 * unread, makes the kernel reset the connection, and a client still writing
 * (Node's http, undici) loses the answer it has not read yet: it sees
 * ECONNRESET instead of the 413.
 */
import type { IncomingMessage } from 'node:http';

export interface LingerLimits {
  /** Bytes read and discarded at most. */
  maxBytes: number;
  /** Time the connection lingers at most. */
  maxMs: number;
  /** Time without a byte from the client after which it closes. */
  idleMs: number;
}

/** nginx lingers up to 30 s (lingering_time), 5 s without data (lingering_timeout); Kueuer also bounds the bytes. */
export const LINGER: LingerLimits = { maxBytes: 16 * 1024 * 1024, maxMs: 10_000, idleMs: 2_000 };

/**
 * Call before the answer is written (it must end with `Connection: close`):
 * Node ends such an answer with `socket.destroySoon()`, which closes the
 * descriptor as soon as the FIN is out; here it only sends the FIN, and the
 * connection closes when the client has sent everything and closed, or at
 * a bound.
 */
export function lingerAfterAnswer(req: IncomingMessage, limits: LingerLimits = LINGER): void {
  const socket = req.socket;
  socket.destroySoon = () => void socket.end();
  let read = 0;
  const close = (): void => {
    clearTimeout(total);
    clearTimeout(idle);
    socket.destroy();
  };
  const total = setTimeout(close, limits.maxMs);
  const idle = setTimeout(close, limits.idleMs);
  req.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > limits.maxBytes) close();
    else idle.refresh();
  });
  // A client that finished sending closes its side once it read the answer; half-open sockets then close.
  req.on('end', () => idle.refresh());
  socket.once('close', () => {
    clearTimeout(total);
    clearTimeout(idle);
  });
}
