import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { computeLag, kafkaAuth, parseKafkaUrl } from '../../shared/transport/kafka-config.js';
import { ContiguousOffsets } from '../../shared/transport/kafka.js';

describe('kafka backend URL', () => {
  it('takes one or more brokers and the tls and sasl parameters', () => {
    expect(parseKafkaUrl('kafka://k1:9092,k2:9093')).toEqual({ brokers: ['k1:9092', 'k2:9093'], tls: false });
    expect(parseKafkaUrl('kafka://k1:9092?tls=true&sasl=scram-sha-512')).toEqual({ brokers: ['k1:9092'], tls: true, sasl: 'scram-sha-512' });
  });

  it.each([
    ['kafka://', /no broker/],
    ['kafka://k1', /not host:port/],
    ['kafka://user:pw@k1:9092', /credentials do not go in the URL/],
    ['kafka://k1:9092?sasl=gssapi', /no GSSAPI/],
    ['kafka://k1:9092?acks=1', /unknown parameter "acks"/],
  ])('refuses %s', (url, message) => expect(() => parseKafkaUrl(url)).toThrow(message));
});

describe('kafka credentials', () => {
  it('come from env vars or mounted files, never the URL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kafka-auth-'));
    writeFileSync(join(dir, 'password'), 's3cret\n');
    const spec = parseKafkaUrl('kafka://k1:9092?sasl=plain');
    expect(kafkaAuth(spec, { KUEUER_KAFKA_USERNAME: 'app', KUEUER_KAFKA_PASSWORD_FILE: join(dir, 'password') })).toEqual({
      sasl: { mechanism: 'plain', username: 'app', password: 's3cret' },
    });
    expect(() => kafkaAuth(spec, {})).toThrow(/needs KUEUER_KAFKA_USERNAME and KUEUER_KAFKA_PASSWORD/);
    expect(kafkaAuth(parseKafkaUrl('kafka://k1:9092?tls=true'), {})).toEqual({ ssl: true });
  });
});

describe('lag', () => {
  it('is latest minus committed, summed over partitions, counting uncommitted partitions from their start', () => {
    expect(
      computeLag(
        [
          { partition: 0, offset: '100', low: '0' },
          { partition: 1, offset: '50', low: '10' },
          { partition: 2, offset: '7', low: '0' },
        ],
        [
          { partition: 0, offset: '90' },
          { partition: 1, offset: '-1' },
          { partition: 2, offset: '7' },
        ],
      ),
    ).toBe(10 + 40 + 0);
  });
});

describe('contiguous offsets', () => {
  it('moves the commit position only past offsets that are all done', () => {
    const o = new ContiguousOffsets(5n);
    expect(o.complete(7n)).toBeNull();
    expect(o.complete(6n)).toBeNull();
    expect(o.complete(5n)).toBe(8n);
    expect(o.complete(9n)).toBeNull();
    expect(o.complete(8n)).toBe(10n);
  });
});
