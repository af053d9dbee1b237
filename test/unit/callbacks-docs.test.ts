/** The receiver code docs/async-callbacks.md shows verifies what Kueuer signs, and refuses what it did not. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CALLBACK_DEFAULTS, nextWaitMs } from '../../responder/callbacks/policy.js';
import { signCallback } from '../../responder/callbacks/signature.js';

const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'async-callbacks.md'), 'utf8');
const block = (marker: string) => new RegExp(`<!-- ${marker}[^\\n]*-->\\n\`\`\`\\w+\\n([\\s\\S]*?)\\n\`\`\``).exec(doc)?.[1];
const dir = mkdtempSync(join(tmpdir(), 'kueuer-callback-docs-'));
const key = Buffer.from('documentation-example-key-32-byt');
const secret = `whsec_${key.toString('base64')}`;
const id = 'e'.repeat(32);
const body = Buffer.from('{"total":12.5,"bytes":"\u00e9\u0000"}');

describe('docs/async-callbacks.md', () => {
  it("has a Node verifier that accepts Kueuer's signature and refuses a changed body, key or timestamp", async () => {
    const code = block('verify-callback.mjs');
    expect(code).toBeDefined();
    const file = join(dir, 'verify.mjs');
    writeFileSync(file, code!);
    const { verifyKueuerCallback } = (await import(pathToFileURL(file).href)) as {
      verifyKueuerCallback: (h: Record<string, string>, b: Buffer, s: string) => boolean;
    };
    const ts = Math.floor(Date.now() / 1000);
    const headers = { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signCallback(key, id, ts, body) };
    expect(verifyKueuerCallback(headers, body, secret)).toBe(true);
    expect(verifyKueuerCallback(headers, Buffer.concat([body, Buffer.from(' ')]), secret)).toBe(false);
    expect(verifyKueuerCallback(headers, body, `whsec_${Buffer.alloc(32).toString('base64')}`)).toBe(false);
    const old = ts - 301;
    expect(verifyKueuerCallback({ ...headers, 'webhook-timestamp': String(old), 'webhook-signature': signCallback(key, id, old, body) }, body, secret)).toBe(
      false,
    );
  });

  it('has an openssl one-liner that prints the signature Kueuer sends', () => {
    const line = block('openssl one-liner');
    expect(line).toBeDefined();
    writeFileSync(join(dir, 'body.bin'), body);
    const out = execFileSync('bash', ['-c', line!], { cwd: dir, env: { PATH: process.env.PATH!, ID: id, TS: '1700000000', SECRET: secret }, encoding: 'utf8' });
    expect(out.trim()).toBe(signCallback(key, id, 1700000000, body));
  });
});

describe('docs/async-callbacks.md delivery rules', () => {
  it('states the waits before a dead letter that the default retry policy gives', () => {
    const stated = /after (\d+) tries in all \(([\d.]+) to ([\d.]+) minutes of waiting between them/.exec(doc);
    expect(stated).not.toBeNull();
    const waits = (random: () => number) =>
      Array.from({ length: CALLBACK_DEFAULTS.maxAttempts - 1 }, (_, i) => nextWaitMs(i + 1, undefined, CALLBACK_DEFAULTS, random)).reduce((a, b) => a + b, 0) /
      60_000;
    expect(Number(stated![1])).toBe(CALLBACK_DEFAULTS.maxAttempts);
    expect(Number(stated![2])).toBe(waits(() => 0));
    expect(Number(stated![3])).toBe(waits(() => 1));
  });
});
