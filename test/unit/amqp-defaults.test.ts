/** Defaults of the RabbitMQ backend that follow the URL: the management API's scheme and port, the heartbeat. */
import { describe, expect, it } from 'vitest';
import { managementUrlFor, managementUrlsFor } from '../../shared/transport/amqp/depth.js';
import { connectTarget, DEFAULT_HEARTBEAT_S } from '../../shared/transport/amqp/url.js';

describe('the management API the autoscaler reads by default', () => {
  it('is https on 15671 for amqps, as RabbitMQ serves it with TLS, and http on 15672 for amqp', () => {
    expect(managementUrlFor('amqps://u:p@rabbit.svc:5671/prod').base).toBe('https://rabbit.svc:15671');
    expect(managementUrlFor('amqp://u:p@rabbit.svc:5672/prod').base).toBe('http://rabbit.svc:15672');
    expect(managementUrlsFor('amqps://u:p@r0:5671,r1:5671').map((n) => n.base)).toEqual(['https://r0:15671', 'https://r1:15671']);
  });

  it('is the one given when given, whatever the AMQP scheme', () => {
    expect(managementUrlFor('amqps://u:p@rabbit:5671', 'http://mgmt:15672').base).toBe('http://mgmt:15672');
  });
});

describe('the AMQP heartbeat', () => {
  it(`is ${DEFAULT_HEARTBEAT_S} s unless the URL sets one (amqplib would take the broker's 60 s: a dead peer unnoticed for 2-3 min)`, () => {
    expect(DEFAULT_HEARTBEAT_S).toBe(20);
    expect(connectTarget('amqp://u:p@h:5672').heartbeat).toBe(20);
    expect(connectTarget('amqp://u:p@h:5672?heartbeat=5').heartbeat).toBe(5);
    expect(connectTarget('amqp://u:p@h:5672?heartbeat=0').heartbeat).toBe(0); // off, as the user asked
  });
});
