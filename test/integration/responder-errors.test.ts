/**
 * Every error answer goes through the error catalogue (issue 23, point 2):
 * the 503 to a request that arrives while the responder closes, and the
 * webhook's answer to a body that is not an AdmissionReview.
 */
import net from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startResponder } from '../helpers/components.js';
import { MemoryTransport } from '../../shared/transport/memory.js';
import { errorCode, header, parseResponses } from '../helpers/foreign.js';
import { silentLog, waitFor } from '../helpers/stack.js';
import { startWebhook } from '../helpers/webhook.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('error answers come from the catalogue', () => {
  it('answers a request that arrives while the responder closes with the catalogue 503 shutting_down', async () => {
    const transport = new MemoryTransport({ visibilityTimeoutMs: 5_000 });
    const { responder, address } = await startResponder(
      {
        listen: { host: '127.0.0.1', port: 0 },
        queue: 'closing',
        timeoutMs: 5_000,
        maxBodyBytes: 1 << 20,
        maxPending: 10,
        publishTimeoutMs: 1_000,
        headersTimeoutMs: 60_000,
        bodyTimeoutMs: 30_000,
        sendTimeoutMs: 30_000,
      },
      transport,
      new Registry(),
      silentLog,
    );
    cleanups.push(() => transport.close());
    // A request half sent (its headers not finished) keeps its connection open through the close.
    const socket = net.connect(address.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    const closed = new Promise((r) => socket.once('close', r));
    socket.write('GET /late HTTP/1.1\r\nHost: k\r\n');
    await new Promise((r) => setTimeout(r, 50));
    const draining = responder.drain(1_000);
    await new Promise((r) => setTimeout(r, 50));
    socket.write('\r\n');
    await waitFor(() => Buffer.concat(received).includes('\r\n\r\n{'), 5_000, 'the 503');
    await closed;
    await draining;
    const [res] = parseResponses(Buffer.concat(received), true).responses;
    expect(res?.status).toBe(503);
    expect(errorCode(res)).toBe('shutting_down');
    const body = JSON.parse(res?.body.toString() ?? '{}') as { requestId?: string };
    expect(body.requestId).toMatch(/^[0-9a-f]{32}$/);
    expect(header(res!, 'x-kueuer-request-id')).toBe(body.requestId);
    expect(header(res!, 'connection')).toBe('close');
    expect(Number(header(res!, 'content-length'))).toBe(res?.body.length);
  });

  it("gives the webhook's bad_admission_review the catalogue body, with a request id", async () => {
    const hook = await startWebhook();
    cleanups.push(() => hook.close());
    const res = await hook.post([]);
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('bad_admission_review');
    expect(typeof res.json.requestId).toBe('string');
  });
});
