import { describe, expect, it } from 'vitest';
import { amqpEndpoint, describeAmqpConnectFailure, describeNetworkCause } from '../../shared/connect-errors.js';

const errno = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('connect errors', () => {
  it('names the network cause and its code', () => {
    expect(describeNetworkCause(errno('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'))).toBe(
      'connection refused: nothing listens on that port (ECONNREFUSED)',
    );
    expect(describeNetworkCause(errno('getaddrinfo ENOTFOUND x.invalid', 'ENOTFOUND'))).toBe('DNS lookup failed: no such host (ENOTFOUND)');
    // fetch wraps the socket error in `cause`; node-fetch only says it in the message
    expect(describeNetworkCause(new TypeError('fetch failed', { cause: errno('connect ETIMEDOUT', 'ETIMEDOUT') }))).toBe('connection timed out (ETIMEDOUT)');
    expect(describeNetworkCause(new Error('request to https://h/version failed, reason: connect EHOSTUNREACH 10.0.0.1:443'))).toBe(
      'host unreachable (EHOSTUNREACH)',
    );
    expect(
      describeNetworkCause(errno('80:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:x.c:350:\n', 'ERR_SSL_WRONG_VERSION_NUMBER')),
    ).toMatch(/^TLS handshake failed: .*wrong version number.* \(ERR_SSL_WRONG_VERSION_NUMBER\)$/);
    expect(describeNetworkCause(new Error('something else'))).toBe('something else');
  });

  it('reads host, port, vhost and user from an amqp URL with AMQP defaults', () => {
    expect(amqpEndpoint('amqp://u:p@rabbit:5673/v%2Fx')).toEqual({ host: 'rabbit', port: 5673, vhost: 'v/x', user: 'u' });
    expect(amqpEndpoint('amqps://rabbit')).toEqual({ host: 'rabbit', port: 5671, vhost: '/', user: 'guest' });
    expect(amqpEndpoint('amqp://[::1]')).toMatchObject({ host: '::1', port: 5672 });
  });

  it('tells refusals (not retried) from unreachable brokers (retried)', () => {
    const e = amqpEndpoint('amqp://app:pw@rabbit:5672/shop');
    const vhost = describeAmqpConnectFailure(new Error('Expected ConnectionOpenOk; got <ConnectionClose channel:0>'), e);
    expect(vhost).toMatchObject({ refused: true, cause: 'vhost "shop" does not exist or user "app" may not use it' });
    expect(vhost.reason).toMatch(/^RabbitMQ at rabbit:5672 refused to open vhost "shop"/);
    const login = describeAmqpConnectFailure(
      new Error('Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"'),
      e,
    );
    expect(login).toMatchObject({
      refused: true,
      reason: 'RabbitMQ at rabbit:5672 refused access for user "app": check the user and password in --backend (KUEUER_BACKEND)',
    });
    const down = describeAmqpConnectFailure(errno('connect ECONNREFUSED 10.0.0.1:5672', 'ECONNREFUSED'), e);
    expect(down).toEqual({
      refused: false,
      cause: 'connection refused: nothing listens on that port (ECONNREFUSED)',
      reason: 'cannot reach RabbitMQ at rabbit:5672: connection refused: nothing listens on that port (ECONNREFUSED)',
    });
  });
});
