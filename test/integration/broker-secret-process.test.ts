/**
 * The real `kueuer sidecar` given an operator's broker Secret as it is: the
 * RabbitMQ Cluster Operator's default-user Secret through envFrom (its keys
 * as the environment) connects to the real RabbitMQ node (the app is not up, so the log line, not /readyz, says so); a mounted Secret of
 * no known shape stops it with the Secret's name, its keys and the keys expected.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { msgIs, runKueuer, spawnKueuer, type KueuerProcess } from '../helpers/processes.js';
import { brokers, uniqueQueue } from '../helpers/stack.js';
import { rabbitmqDefaultUserFor } from '../helpers/broker-secrets.js';

describe('broker Secrets of an operator, in a component', () => {
  const started: KueuerProcess[] = [];
  afterAll(() => started.forEach((p) => p.child.kill('SIGKILL')));

  it("connects with the RabbitMQ operator's default-user Secret as its environment", { timeout: 60_000 }, async () => {
    const u = new URL(brokers().amqp);
    const admin = await freePort();
    // envFrom of the Secret the operator writes (internal/resource/default_user_secret.go), for the real node.
    const defaultUser = rabbitmqDefaultUserFor(u.toString());
    const sidecar = spawnKueuer(['sidecar', '--app', '127.0.0.1:9', '--queue', uniqueQueue('default-user'), '--admin-listen', `127.0.0.1:${admin}`], {
      ...defaultUser,
      KUEUER_BACKEND: '',
    });
    started.push(sidecar);
    const connected = await sidecar.waitForLog(msgIs('connected to broker'), 45_000);
    expect(connected).toMatchObject({ backend: 'amqp', host: u.hostname, port: Number(u.port), url: `amqp://${u.username}:***@${u.hostname}:${u.port}` });
  });

  it('stops, naming the Secret, its keys and the keys expected, when a mounted Secret has no known shape', { timeout: 30_000 }, async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'kueuer-mounted-')), 'mq-creds');
    mkdirSync(dir);
    writeFileSync(join(dir, 'user'), 'u');
    writeFileSync(join(dir, 'pass'), 'p');
    const r = await runKueuer(['sidecar', '--app', '127.0.0.1:9', '--queue', 'q', '--backend', brokers().amqp], { KUEUER_BROKER_SECRET_DIRS: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^kueuer sidecar: the broker Secret mq-creds has the keys \[pass, user\], which match no broker Secret Kueuer reads; expected one of: KUEUER_BACKEND/,
    );
  });
});
