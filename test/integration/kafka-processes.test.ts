/**
 * Real `kueuer responder` and `kueuer sidecar` processes on the real Kafka
 * broker: a sidecar killed mid-request (at-least-once: another sidecar answers;
 * at-most-once: nobody runs it again and the client gets 504; transactional:
 * a request's offset is committed if and only if its reply is), and replies
 * that reach only the responder replica holding the client.
 */
import http from 'node:http';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { request } from '../helpers/http.js';
import { committedPositions, fenceTransactionalId, kafkaClient, readCommitted, topicsWithPrefix } from '../helpers/kafka.js';
import { isInboxTopic } from '../../shared/transport/kafka/config.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { uniqueQueue, waitFor } from '../helpers/stack.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

const kafkaUrl = inject('kafkaUrl');

describe('responder and sidecar processes on Kafka', () => {
  const started: KueuerProcess[] = [];
  const apps: TestApp[] = [];
  afterEach(async () => {
    for (const p of started.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    for (const a of apps.splice(0)) await a.close();
  });

  async function responder(queue: string, extra: string[] = []): Promise<{ url: string; admin: string }> {
    const proc = spawnKueuer([
      'responder',
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--backend',
      kafkaUrl,
      '--queue',
      queue,
      '--kafka-partitions',
      '2',
      ...extra,
    ]);
    started.push(proc);
    const ready = await proc.waitForLog(msgIs('responder ready'));
    await waitFor(async () => (await request(`http://${ready.admin}`, { path: '/readyz' })).status === 200, 20_000, 'responder ready');
    return { url: `http://${ready.listen}`, admin: `http://${ready.admin}` };
  }

  async function sidecar(queue: string, appPort: number, extra: string[] = []): Promise<KueuerProcess> {
    const proc = spawnKueuer([
      'sidecar',
      '--app',
      `127.0.0.1:${appPort}`,
      '--admin-listen',
      '127.0.0.1:0',
      '--backend',
      kafkaUrl,
      '--queue',
      queue,
      '--kafka-partitions',
      '2',
      ...extra,
    ]);
    started.push(proc);
    await proc.waitForLog(msgIs('sidecar ready'));
    return proc;
  }

  async function slowApp(ms: number): Promise<TestApp> {
    const app = await startTestApp();
    apps.push(app);
    app.handle((req, res) => setTimeout(() => res.end(`done ${req.url}`), ms));
    return app;
  }

  it("at-least-once: a SIGKILLed sidecar's request is answered by another sidecar", { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('kcrash');
    const app = await slowApp(1500);
    const front = await responder(queue, ['--timeout', '45s']);
    const doomed = await sidecar(queue, app.port);
    const pending = request(front.url, { path: '/survivor' });
    await waitFor(() => app.received.length === 1, 20_000, 'the request at the app');
    doomed.child.kill('SIGKILL');
    await sidecar(queue, app.port);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('done /survivor');
    expect(app.received).toHaveLength(2);
    expect(app.received[1]!.headers['x-kueuer-request-id']).toBe(app.received[0]!.headers['x-kueuer-request-id']);
  });

  it("at-most-once: a SIGKILLed sidecar's request is not run again; its client gets 504", { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('kamo');
    const app = await slowApp(1500);
    const front = await responder(queue, ['--timeout', '15s']);
    const doomed = await sidecar(queue, app.port, ['--delivery', 'at-most-once']);
    const pending = request(front.url, { path: '/once' });
    await waitFor(() => app.received.length === 1, 20_000, 'the request at the app');
    doomed.child.kill('SIGKILL');
    await sidecar(queue, app.port, ['--delivery', 'at-most-once']);
    const res = await pending;
    expect(res.status).toBe(504);
    expect(app.received).toHaveLength(1);
  });

  /** Sends `n` requests at once and resolves with every answer; `onAnswered` sees the running count. */
  async function burst(url: string, n: number, onAnswered: (count: number) => void): Promise<Array<{ status: number; body: string }>> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: n });
    let answered = 0;
    const results = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const r = await request(url, { path: `/burst/${i}`, agent });
        onAnswered(++answered);
        return { status: r.status, body: r.body.toString() };
      }),
    );
    agent.destroy();
    return results;
  }

  function randomDelayApp(minMs: number, maxMs: number): Promise<TestApp> {
    return startTestApp().then((app) => {
      apps.push(app);
      app.handle((req, res) => setTimeout(() => res.end(`done ${req.url}`), minMs + Math.random() * (maxMs - minMs)));
      return app;
    });
  }

  it('a sidecar SIGKILLed in the middle of 300 requests: every client gets its own answer', { timeout: 120_000 }, async () => {
    const queue = uniqueQueue('kburst');
    const app = await randomDelayApp(50, 200);
    const front = await responder(queue, ['--timeout', '60s']);
    const victim = await sidecar(queue, app.port, ['--concurrency', '8']);
    await sidecar(queue, app.port, ['--concurrency', '8']);
    let killed = false;
    const results = await burst(front.url, 300, (count) => {
      if (count === 100 && !killed) {
        killed = true;
        victim.child.kill('SIGKILL');
        void sidecar(queue, app.port, ['--concurrency', '8']);
      }
    });
    expect(killed).toBe(true);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body).toBe(`done /burst/${i}`);
    });
  });

  it('scaling from 1 to 3 sidecars during load (rebalances) loses nothing', { timeout: 120_000 }, async () => {
    const queue = uniqueQueue('kscale');
    const app = await randomDelayApp(20, 100);
    const front = await responder(queue, ['--timeout', '60s']);
    await sidecar(queue, app.port, ['--concurrency', '4']);
    let scaled = false;
    const results = await burst(front.url, 300, (count) => {
      if (count === 50 && !scaled) {
        scaled = true;
        void sidecar(queue, app.port, ['--concurrency', '4']);
        void sidecar(queue, app.port, ['--concurrency', '4']);
      }
    });
    expect(scaled).toBe(true);
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body).toBe(`done /burst/${i}`);
    });
    const metrics = (await request(front.admin, { path: '/metrics' })).body.toString();
    expect(metrics).toMatch(new RegExp(`kueuer_responder_requests_total\\{queue="${queue}",code="200"\\} 300\\b`));
  });

  it('replies reach only the responder replica that holds the client', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('kreplicas');
    const app = await slowApp(5);
    const [one, two] = await Promise.all([responder(queue), responder(queue)]);
    await sidecar(queue, app.port, ['--concurrency', '8']);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => request(i % 2 ? one.url : two.url, { path: `/r/${i}`, agent })));
    agent.destroy();
    results.forEach((r, i) => expect(r.body.toString()).toBe(`done /r/${i}`));
    for (const replica of [one, two]) {
      const metrics = (await request(replica.admin, { path: '/metrics' })).body.toString();
      expect(metrics).toMatch(new RegExp(`kueuer_responder_requests_total\\{queue="${queue}",code="200"\\} 20\\b`));
      expect(metrics).toMatch(new RegExp(`kueuer_responder_late_replies_total\\{queue="${queue}"\\} 0\\b`));
    }
  });

  it(
    "transactional: after a SIGKILL, a request's offset is committed if and only if its reply is; every client gets one answer",
    { timeout: 120_000 },
    async () => {
      const queue = uniqueQueue('ktx');
      const app = await randomDelayApp(20, 150);
      const front = await responder(queue, ['--timeout', '60s']);
      const txId = `kueuer-test.${queue}`;
      const txArgs = ['--delivery', 'transactional', '--kafka-transactional-id', txId, '--concurrency', '8'];
      const victim = await sidecar(queue, app.port, txArgs);
      let killed = false;
      let resume: () => void = () => undefined;
      const killedAt = new Promise<void>((r) => (resume = r));
      const answers = burst(front.url, 300, (count) => {
        if (count === 80 && !killed) {
          killed = true;
          victim.child.kill('SIGKILL');
          resume();
        }
      });
      await killedAt;
      // What the dead sidecar left: its open transaction is aborted (as a restart with the same id would), nothing else moves.
      const kafka = kafkaClient(kafkaUrl);
      await fenceTransactionalId(kafka, txId);
      const requestTopic = `kueuer.${queue}`;
      // The responder's inbox (the queue's cancellation topic `kueuer.reply.<queue>.cancel` is no reply topic).
      const replyTopics = (await topicsWithPrefix(kafka, `kueuer.reply.${queue}.`)).filter(isInboxTopic);
      expect(replyTopics).toHaveLength(1);
      const [requests, replies, positions] = await Promise.all([
        readCommitted(kafka, [requestTopic]),
        readCommitted(kafka, replyTopics),
        committedPositions(kafka, `kueuer.${queue}`, requestTopic),
      ]);
      expect(requests).toHaveLength(300);
      const replied = new Set(replies.map((r) => r.key));
      expect(replied.size).toBe(replies.length); // no request answered twice
      const committed = requests.filter((r) => r.offset < (positions.get(r.partition) ?? 0n));
      expect(committed.length).toBeGreaterThan(0);
      expect(committed.length).toBeLessThan(300);
      for (const r of requests)
        expect({ id: r.key, replied: replied.has(r.key) }).toEqual({ id: r.key, replied: r.offset < (positions.get(r.partition) ?? 0n) });

      // A replacement answers the rest; every client gets its own answer, and every request has exactly one committed reply.
      await sidecar(queue, app.port, txArgs);
      const results = await answers;
      results.forEach((r, i) => {
        expect(r.status).toBe(200);
        expect(r.body).toBe(`done /burst/${i}`);
      });
      const finalReplies = await readCommitted(kafka, replyTopics);
      expect(finalReplies.map((r) => r.key).sort()).toEqual(requests.map((r) => r.key).sort());
    },
  );
});
