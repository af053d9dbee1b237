/**
 * No Kafka component prints Node 24's TimeoutNegativeWarning (issue 22, item 10): kafkajs 2.2.4's
 * request queue set a timer of about -Date.now() ms (shared/transport/kafka/kafkajs-guard.ts). The
 * real `kueuer local` (dist/) on the shared broker, one request through it, then its stderr.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { msgIs, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { uniqueQueue, waitFor } from '../helpers/stack.js';
import { startTestApp } from '../helpers/test-app.js';

const kafkaUrl = inject('kafkaUrl');

describe('kafkajs on Node 24', () => {
  const procs: KueuerProcess[] = [];
  afterEach(() => {
    for (const p of procs) p.child.kill('SIGKILL');
  });

  it('a Kafka stack serves a request and prints no TimeoutNegativeWarning', async () => {
    // The warning exists from Node 24 on: this test means nothing on an older one.
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(24);
    const app = await startTestApp();
    app.handle((_req, res) => res.end('ok'));
    const local = spawnKueuer([
      'local',
      '--backend',
      kafkaUrl,
      '--queue',
      uniqueQueue('neg-timeout'),
      '--app',
      `127.0.0.1:${app.port}`,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
    ]);
    procs.push(local);
    const ready = await local.waitForLog(msgIs('local stack ready'), 60_000);
    const readyz = () =>
      fetch(`http://${ready.admin as string}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
    await waitFor(readyz, 60_000, 'the Kafka stack ready');
    const answer = await fetch(`http://${ready.listen as string}/x`, { signal: AbortSignal.timeout(30_000) });
    expect([answer.status, await answer.text()]).toEqual([200, 'ok']);
    local.child.kill('SIGTERM');
    expect((await local.exited).code).toBe(0);
    await app.close();
    expect(local.stderr.filter((l) => /Warning/.test(l))).toEqual([]);
  }, 90_000);
});
