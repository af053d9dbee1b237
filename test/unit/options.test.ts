import { describe, expect, it } from 'vitest';
import { responderOptions } from '../../responder/config.js';
import { sidecarOptions } from '../../sidecar/config.js';
import { apiTimeoutOption } from '../../cli/kube-call.js';
import { webhookCommand } from '../../cli/commands.js';
import { byteSizeIn, closestName, ConfigError, durationIn, helpText, integerIn, parseHostPort, parseOptions } from '../../shared/options.js';
import { webhookOptions } from '../../webhook/config.js';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('parseOptions', () => {
  it('takes a flag over its env var over the default', () => {
    const env = { KUEUER_QUEUE: 'from-env', KUEUER_BACKEND: 'amqp://h', KUEUER_TIMEOUT: '5s' };
    const v = parseOptions(responderOptions, ['--timeout', '2s'], env);
    expect(v.queue).toBe('from-env');
    expect(v.timeoutMs).toBe(2000);
    expect(v.maxBodyBytes).toBe(10 * 1024 * 1024);
    expect(v.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(v.backend).toEqual({ kind: 'amqp', url: 'amqp://h' });
  });

  it('names the flag and the env var of every bad or missing value', () => {
    const p = problems(() => parseOptions(sidecarOptions, ['--concurrency', '0', '--backend', 'redis://x'], { KUEUER_APP: 'nohost' }));
    expect(p).toEqual([
      'invalid --app (KUEUER_APP) from KUEUER_APP: expected HOST:PORT such as 127.0.0.1:8080, got "nohost"',
      expect.stringMatching(/^invalid --backend \(KUEUER_BACKEND\) from --backend: unsupported backend scheme "redis:"/),
      expect.stringMatching(/^missing --queue \(or KUEUER_QUEUE\)/),
      'invalid --concurrency (KUEUER_CONCURRENCY) from --concurrency: expected an integer from 1 to 1000, got "0"',
    ]);
  });

  it('refuses unknown flags, suggesting the closest', () => {
    expect(problems(() => parseOptions(sidecarOptions, ['--concurency', '2'], {}))).toEqual(['unknown flag --concurency; did you mean --concurrency?']);
    expect(problems(() => parseOptions(sidecarOptions, ['--concurency=2'], {}))).toEqual(['unknown flag --concurency; did you mean --concurrency?']);
    expect(problems(() => parseOptions(sidecarOptions, ['--zzz', '2'], {}))).toEqual(['unknown flag --zzz']);
    expect(problems(() => parseOptions(sidecarOptions, ['-c', '2'], {}))).toEqual(['unknown flag -c']);
  });

  it('suggests only close names', () => {
    expect(closestName('concurency', ['concurrency', 'queue'])).toBe('concurrency');
    expect(closestName('webhooks', ['responder', 'sidecar', 'local', 'webhook'])).toBe('webhook');
    expect(closestName('que', ['queue', 'app'])).toBe('queue');
    expect(closestName('banana', ['queue', 'app', 'listen'])).toBeUndefined();
  });
});

describe('value parsers', () => {
  it('parses durations', () => {
    const d = durationIn(0, 3_600_000);
    expect(d('500ms')).toBe(500);
    expect(d('60s')).toBe(60_000);
    expect(d('1.5s')).toBe(1500);
    expect(d('2m')).toBe(120_000);
    expect(() => d('60')).toThrow(/such as 500ms/);
    expect(() => d('2h')).toThrow(/from 0 ms to 3600000 ms/);
  });

  it('parses sizes', () => {
    const s = byteSizeIn(0, 1024 ** 3);
    expect(s('10MiB')).toBe(10 * 1024 * 1024);
    expect(s('512KiB')).toBe(512 * 1024);
    expect(s('1MB')).toBe(1_000_000);
    expect(s('1048576')).toBe(1048576);
    expect(() => s('10 parsecs')).toThrow(/such as 10MiB/);
  });

  it('parses HOST:PORT including IPv6', () => {
    expect(parseHostPort('127.0.0.1:80')).toEqual({ host: '127.0.0.1', port: 80 });
    expect(parseHostPort('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(() => parseHostPort('localhost')).toThrow(/HOST:PORT/);
    expect(() => parseHostPort('h:70000')).toThrow(/HOST:PORT/);
  });

  it('parses bounded integers', () => {
    expect(integerIn(1, 5)('5')).toBe(5);
    expect(() => integerIn(1, 5)('6')).toThrow(/from 1 to 5/);
    expect(() => integerIn(1, 5)('2.5')).toThrow();
  });
});

describe('help and durations (issue 22, item 21)', () => {
  it('keeps a gap between every flag column and its env var, however long the flag', () => {
    const text = helpText('kueuer webhook', 'summary', webhookOptions);
    const optionLines = text.split('\n').filter((l) => l.startsWith('  --') && l.includes('<value>'));
    expect(optionLines.length).toBe(Object.keys(webhookOptions).length);
    for (const line of optionLines) expect(line).toMatch(/^ {2}--[a-z-]+ <value> {2,}KUEUER_[A-Z_]+ \(/);
    // The columns line up: every env var starts in the same column.
    expect(new Set(optionLines.map((l) => l.indexOf('KUEUER_'))).size).toBe(1);
  });

  it('kueuer webhook --help speaks of opted-in objects (a label), not annotated ones', () => {
    const text = helpText(webhookCommand.usage, webhookCommand.summary, webhookOptions);
    expect(text).not.toMatch(/annotated/);
    expect(text).toContain('kueuer.io/inject');
  });

  it('--api-timeout takes a duration like every other duration flag, and a bare number of seconds as before', () => {
    const specs = { apiTimeout: apiTimeoutOption };
    expect(parseOptions(specs, ['--api-timeout', '10s'], {}).apiTimeout).toBe(10);
    expect(parseOptions(specs, ['--api-timeout', '1500ms'], {}).apiTimeout).toBe(1.5);
    expect(parseOptions(specs, ['--api-timeout', '2m'], {}).apiTimeout).toBe(120);
    expect(parseOptions(specs, ['--api-timeout', '2'], {}).apiTimeout).toBe(2);
    expect(parseOptions(specs, [], {}).apiTimeout).toBe(10);
    expect(problems(() => parseOptions(specs, ['--api-timeout', '11m'], {}))).toEqual([
      'invalid --api-timeout (KUEUER_API_TIMEOUT) from --api-timeout: expected a duration from 1000 ms to 600000 ms, got "11m"',
    ]);
    expect(problems(() => parseOptions(specs, ['--api-timeout', 'soon'], {}))[0]).toMatch(
      /expected a duration such as 500ms, 60s or 2m \(a bare number is seconds\), got "soon"/,
    );
  });

  it('reads a bare number as the unit given, only where one is given', () => {
    expect(durationIn(0, 60_000, 's')('3')).toBe(3000);
    expect(durationIn(0, 60_000, 's')('3s')).toBe(3000);
    expect(() => durationIn(0, 60_000)('3')).toThrow(/such as 500ms/);
  });
});
