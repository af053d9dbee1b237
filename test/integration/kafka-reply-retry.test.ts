/**
 * Who tries again on Kafka (issue 22, item 12; docs/kafka.md, "Who tries again"): a reply the
 * broker will not take for longer than REPLY_RETRY_WINDOW_MS, while the request still has time,
 * is retried by the reply layer until the deadline. Kafka cannot hand one record back, so rerunning
 * the handler would only call the app again for an answer it already gave (and, before this, did so
 * without `x-kueuer-redelivered`). On the real broker; the sidecar's transport refuses replies
 * for a while (a transport hook), as a broker that has lost the reply topic's leader would.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startResponder, startSidecar } from '../helpers/components.js';
import { KueuerError } from '../../shared/errors.js';
import type { Transport } from '../../shared/transport/transport.js';
import { REPLY_RETRY_WINDOW_MS } from '../../sidecar/worker.js';
import { newTransport, silentLog, uniqueQueue, waitFor } from '../helpers/stack.js';
import { startTestApp } from '../helpers/test-app.js';

/** The transport, but publishReply fails while `refusing()` is true. */
function refusingReplies(transport: Transport, refusing: () => boolean): Transport {
  return new Proxy(transport, {
    get(target, key, receiver) {
      if (key === 'publishReply')
        return (...args: Parameters<Transport['publishReply']>) =>
          refusing() ? Promise.reject(new KueuerError('KUEUER_ERR_BROKER_UNAVAILABLE', 'test: the broker refuses replies')) : target.publishReply(...args);
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('a reply Kafka will not take for a while', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    cleanups.length = 0;
  });

  it('is retried until it is published; the app is called once', async () => {
    const app = await startTestApp();
    cleanups.push(() => app.close());
    app.handle((req, res) => res.end(`done ${req.url}`));
    const queue = uniqueQueue('kreply');
    const refuseUntil = { at: Number.POSITIVE_INFINITY };
    const sidecarTransport = refusingReplies(await newTransport('kafka'), () => Date.now() < refuseUntil.at);
    cleanups.push(() => sidecarTransport.close());
    const sidecar = await startSidecar(
      { app: { host: '127.0.0.1', port: app.port }, queue, concurrency: 1, maxResponseBytes: 1 << 20 },
      sidecarTransport,
      new Registry(),
      silentLog,
    );
    cleanups.push(() => sidecar.stop());
    const responderTransport = await newTransport('kafka');
    cleanups.push(() => responderTransport.close());
    const responder = await startResponder(
      {
        listen: { host: '127.0.0.1', port: 0 },
        queue,
        timeoutMs: REPLY_RETRY_WINDOW_MS + 40_000,
        maxBodyBytes: 1 << 20,
        maxPending: 100,
        publishTimeoutMs: 5_000,
        bodyTimeoutMs: 30_000,
        sendTimeoutMs: 30_000,
        headersTimeoutMs: 60_000,
      },
      responderTransport,
      new Registry(),
      silentLog,
    );
    cleanups.push(() => responder.responder.drain(1_000));
    await waitFor(() => responderTransport.isReady(), 30_000, 'the responder to be ready');
    await sidecar.consuming;

    const answer = fetch(`http://127.0.0.1:${responder.address.port}/once`).then(async (r) => ({ status: r.status, body: await r.text() }));
    await waitFor(() => app.received.length === 1, 30_000, 'the request at the app');
    // Past the reply layer's own window (the handler used to give up there and run the app again).
    refuseUntil.at = Date.now() + REPLY_RETRY_WINDOW_MS + 5_000;
    expect(await answer).toEqual({ status: 200, body: 'done /once' });
    // Every later call of the app (none is expected) would have to say it is one.
    const later = app.received.slice(1).map((r) => r.headers['x-kueuer-redelivered']);
    expect(later).toEqual([]);
    expect(app.received.map((r) => r.url)).toEqual(['/once']);
  }, 120_000);
});
