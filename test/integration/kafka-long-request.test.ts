/**
 * A request that takes two minutes, far beyond the consumer's 10 s session
 * timeout, on the real Kafka broker: the sidecar heartbeats while the app
 * works, so its group never rebalances and the request runs once.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { request } from '../helpers/http.js';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { uniqueQueue, waitFor } from '../helpers/stack.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

const kafkaUrl = inject('kafkaUrl');
const REQUEST_MS = 125_000;

describe('a 2-minute request on Kafka', () => {
  const procs: KueuerProcess[] = [];
  let app: TestApp | undefined;
  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await app?.close();
  });

  it('is answered once, with no rebalance on the way', { timeout: REQUEST_MS + 60_000 }, async () => {
    const queue = uniqueQueue('klong');
    app = await startTestApp();
    app.handle((req, res) => setTimeout(() => res.end(`finally ${req.url}`), REQUEST_MS));
    const front = spawnKueuer([
      'responder',
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--backend',
      kafkaUrl,
      '--queue',
      queue,
      '--timeout',
      '4m',
    ]);
    const side = spawnKueuer(['sidecar', '--app', `127.0.0.1:${app.port}`, '--admin-listen', '127.0.0.1:0', '--backend', kafkaUrl, '--queue', queue]);
    procs.push(front, side);
    const ready = await front.waitForLog(msgIs('responder ready'));
    await waitFor(async () => (await request(`http://${ready.admin}`, { path: '/readyz' })).status === 200, 20_000, 'responder ready');
    await side.waitForLog(msgIs('joined the consumer group'), 30_000);

    const res = await request(`http://${ready.listen}`, { path: '/slow' });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('finally /slow');
    expect(app.received).toHaveLength(1);
    expect(side.logs.filter(msgIs('joined the consumer group'))).toHaveLength(1);
  });
});
