/** The RabbitMQ backend's pure parts: cluster URLs, queue-type arguments, the broker's type-mismatch message, and the queue-type annotation. */
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parsePodSettings } from '../../shared/annotations.js';
import { parseBackend } from '../../shared/transport/backend.js';
import { existingQueueType, mismatchAdvice, queueArguments } from '../../shared/transport/amqp/queues.js';
import { amqpHostUrls, connectTarget, DEFAULT_HEARTBEAT_S, redactRaw } from '../../shared/transport/amqp/url.js';
import { decidePod } from '../../webhook/admission/pod-injection.js';
import { testInjectionConfig } from '../helpers/webhook.js';

describe('amqp cluster URLs', () => {
  it('splits several hosts, each with the credentials, vhost and query of the URL', () => {
    expect(amqpHostUrls('amqp://u:p%40ss@r1:5672,r2:5673,r3/prod?heartbeat=10')).toEqual([
      'amqp://u:p%40ss@r1:5672/prod?heartbeat=10',
      'amqp://u:p%40ss@r2:5673/prod?heartbeat=10',
      'amqp://u:p%40ss@r3/prod?heartbeat=10',
    ]);
    expect(amqpHostUrls('amqps://rabbit.svc')).toEqual(['amqps://rabbit.svc']);
    expect(parseBackend('amqp://u:p@r1,r2/')).toEqual({ kind: 'amqp', url: 'amqp://u:p@r1,r2/' });
  });

  it('refuses an empty host or a bad port, naming the problem, and hides the password', () => {
    expect(() => parseBackend('amqp://u:secret@r1,/')).toThrow(/empty host/);
    expect(() => parseBackend('amqp://u:secret@r1,r2:99999/')).toThrow();
    expect(redactRaw('amqp://u:secret@r1,r2/')).toBe('amqp://u:***@r1,r2/');
  });

  it("never puts the password in an error or a log's URL, even unescaped '@' in it, and gives it whole to every node", () => {
    // One host with a bad port: the message used to echo the whole URL.
    const bad = (() => {
      try {
        parseBackend('amqp://u:s3cret@rabbit:99999/');
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    })();
    expect(bad).toMatch(/amqp/);
    expect(bad).not.toContain('s3cret');
    // A password with a raw '@' (WHATWG URLs and amqplib take it): the redaction stopped at the first '@'.
    expect(redactRaw('amqp://u:p@ss@r1,r2/')).toBe('amqp://u:***@r1,r2/');
    expect(redactRaw('amqp://u:p@ss@rabbit/prod')).toBe('amqp://u:***@rabbit/prod');
    // ... and the second node got the password cut at it ("p"), so a failover to it was refused as a bad login.
    expect(amqpHostUrls('amqp://u:p@ss@r1,r2/').map((u) => connectTarget(u).password)).toEqual(['p@ss', 'p@ss']);
  });

  it('gives amqplib the object form of one host with what the URL string carried', () => {
    expect(connectTarget('amqp://u:p%40ss@r2:5673/prod%2Fa?heartbeat=10&frameMax=8192')).toEqual({
      protocol: 'amqp',
      hostname: 'r2',
      port: 5673,
      username: 'u',
      password: 'p@ss',
      vhost: 'prod%2Fa',
      heartbeat: 10,
      frameMax: 8192,
    });
    expect(connectTarget('amqps://r1')).toEqual({ protocol: 'amqps', hostname: 'r1', port: 5671, vhost: '', heartbeat: DEFAULT_HEARTBEAT_S });
  });
});

describe('queue types', () => {
  it('declares quorum queues with a delivery limit on request queues only, and classic queues with no arguments', () => {
    expect(queueArguments('quorum', 'request')).toEqual({ 'x-queue-type': 'quorum', 'x-delivery-limit': 20 });
    expect(queueArguments('quorum', 'dead-letter')).toEqual({ 'x-queue-type': 'quorum' });
    expect(queueArguments('classic', 'request')).toEqual({});
  });

  it("reads the existing type from RabbitMQ's PRECONDITION_FAILED", () => {
    const classic =
      "Channel closed by server: 406 (PRECONDITION-FAILED) with message \"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received the value 'quorum' of type 'longstr' but current is none\"";
    expect(existingQueueType(classic)).toBe('classic');
    const quorum =
      "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received none but current is the value 'quorum' of type 'longstr'";
    expect(existingQueueType(quorum)).toBe('quorum');
    expect(existingQueueType("PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'q'")).toBe('the same type with other arguments');
    expect(existingQueueType('NOT_FOUND - no queue')).toBeNull();
  });

  it('advises a migration that stops nothing: same type everywhere, then delete once empty; copies of a dead-letter queue kept first', () => {
    const request = mismatchAdvice('shop.web', 'quorum', 'classic', 'PRECONDITION_FAILED');
    expect(request).toMatch(
      /^queue shop\.web already exists as classic \(declared as quorum here\); using it as it is\. To make it quorum without stopping anything/,
    );
    expect(request).toContain('rabbitmqctl delete_queue --if-empty shop.web');
    expect(request).not.toMatch(/stop the responders|restart the sidecars/);
    expect(request).toContain('Or set that type to classic to keep it');
    const deadLetter = mismatchAdvice('shop.web.dead-letter', 'quorum', 'classic', 'PRECONDITION_FAILED');
    expect(deadLetter).toContain('rabbitmqadmin get queue=shop.web.dead-letter ackmode=ack_requeue_true');
    expect(deadLetter).not.toContain('--if-empty'); // nothing empties a dead-letter queue
  });
});

describe('kueuer.io/queue-type', () => {
  const pod = (annotations: Record<string, string>): V1Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'api', namespace: 'shop', labels: { 'kueuer.io/inject': 'true' }, annotations },
    spec: { containers: [{ name: 'app', image: 'example.com/api:1', ports: [{ containerPort: 8080, name: 'http' }] }] },
  });

  it('sets the sidecar KUEUER_RABBITMQ_QUEUE_TYPE, and refuses anything but quorum or classic', () => {
    expect(parsePodSettings({ 'kueuer.io/queue-type': 'classic' })).toEqual({ ok: true, value: { queueType: 'classic', resources: {} } });
    expect(parsePodSettings({ 'kueuer.io/queue-type': 'stream' })).toEqual({
      ok: false,
      problems: ['kueuer.io/queue-type: "stream" is not accepted; use quorum or classic (RabbitMQ only)'],
    });
    const d = decidePod(pod({ 'kueuer.io/queue-type': 'classic' }), 'shop', testInjectionConfig);
    expect(JSON.stringify(d)).toContain('{"name":"KUEUER_RABBITMQ_QUEUE_TYPE","value":"classic"}');
    expect(JSON.stringify(decidePod(pod({}), 'shop', testInjectionConfig))).not.toContain('KUEUER_RABBITMQ_QUEUE_TYPE');
  });
});
