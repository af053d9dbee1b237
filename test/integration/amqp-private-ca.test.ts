/**
 * amqps:// to a broker whose certificate a private CA signed: trusted with
 * --rabbitmq-ca-file or the broker Secret's ca.crt, refused without, and a
 * bad CA file is a start-up error. The TLS listener is a node:tls proxy in
 * the test, with a CA and a certificate made by openssl, forwarding to the
 * shared RabbitMQ node.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerSecretEnv } from '../../shared/broker-secret/env.js';
import { kafkaOptions } from '../../shared/common-options.js';
import { openBackend } from '../../shared/open-backend.js';
import { ConfigError, parseOptions } from '../../shared/options.js';
import { parseBackend } from '../../shared/transport/backend.js';
import type { Transport } from '../../shared/transport/transport.js';
import { emptyGet } from '../helpers/envelopes.js';
import { brokers, uniqueQueue, waitFor } from '../helpers/stack.js';

let dir: string;
let proxy: tls.Server;
let port: number;

/** A CA, and a server certificate for localhost / 127.0.0.1 that it signed. */
function makeCa(at: string): void {
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: at, stdio: 'ignore' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=kueuer test private CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(at, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kueuer-private-ca-'));
  makeCa(dir);
  const broker = new URL(brokers().amqp);
  proxy = tls.createServer({ key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.crt')) }, (client) => {
    const upstream = net.connect(Number(broker.port), broker.hostname);
    for (const s of [client, upstream]) {
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  proxy.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  port = (proxy.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((r) => proxy.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

const amqpsUrl = (): string => {
  const u = new URL(brokers().amqp);
  return `amqps://${u.username}:${u.password}@localhost:${port}`;
};

/** The transport a component opens from its parsed options (argv, env), its log lines kept. */
async function open(argv: string[], env: Record<string, string> = {}): Promise<{ t: Transport; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const o = parseOptions(kafkaOptions(), argv, env);
  const saved = process.env.KUEUER_RABBITMQ_CA;
  if (env.KUEUER_RABBITMQ_CA !== undefined) process.env.KUEUER_RABBITMQ_CA = env.KUEUER_RABBITMQ_CA;
  try {
    const t = await openBackend({ ...o, backend: parseBackend(amqpsUrl()) }, log, 'sidecar');
    return { t, lines };
  } finally {
    if (saved === undefined) delete process.env.KUEUER_RABBITMQ_CA;
    else process.env.KUEUER_RABBITMQ_CA = saved;
  }
}

/** A transport opened with these options connects over TLS, and a request through it is confirmed. */
async function publishesWith(argv: string[], env: Record<string, string> = {}): Promise<void> {
  const { t } = await open(argv, env);
  try {
    await waitFor(() => t.isReady(), 20_000, 'the amqps transport to connect');
    const queue = uniqueQueue('private-ca');
    await t.publishRequest(queue, emptyGet(queue, '0'.repeat(32), `kueuer.reply.${queue}.0000000000000000`), { timeoutMs: 5000 });
  } finally {
    await t.close();
  }
}

describe('amqps with a private CA', () => {
  it('is refused without the CA: the TLS handshake fails, named in the log, and the transport never gets ready', async () => {
    const { t, lines } = await open([]);
    try {
      await waitFor(() => lines.some((l) => /TLS handshake failed/.test(String(l.msg))), 10_000, 'the TLS failure to be logged');
      expect(lines.find((l) => /TLS handshake failed/.test(String(l.msg)))?.msg).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
      expect(t.isReady()).toBe(false);
    } finally {
      await t.close();
    }
  });

  it('trusts the CA of --rabbitmq-ca-file (KUEUER_RABBITMQ_CA_FILE)', async () => {
    await publishesWith(['--rabbitmq-ca-file', join(dir, 'ca.crt')]);
    await publishesWith([], { KUEUER_RABBITMQ_CA_FILE: join(dir, 'ca.crt') });
  });

  it("trusts the ca.crt of a broker Secret mounted at /etc/kueuer/broker/<name> (cert-manager's or the operator's CA Secret)", async () => {
    const secretDir = join(dir, 'rabbit-ca');
    mkdirSync(secretDir);
    // cert-manager's Secret shape: ca.crt, tls.crt, tls.key.
    writeFileSync(join(secretDir, 'ca.crt'), readFileSync(join(dir, 'ca.crt')));
    writeFileSync(join(secretDir, 'tls.crt'), readFileSync(join(dir, 'server.crt')));
    writeFileSync(join(secretDir, 'tls.key'), readFileSync(join(dir, 'server.key')));
    const env = brokerSecretEnv({ KUEUER_BROKER_SECRET_DIRS: secretDir });
    expect(env.KUEUER_RABBITMQ_CA).toContain('BEGIN CERTIFICATE');
    await publishesWith([], { KUEUER_RABBITMQ_CA: env.KUEUER_RABBITMQ_CA! });
  });

  it('fails start-up on a CA file that is missing or holds no certificate, and on a bad ca.crt in the Secret', async () => {
    const notPem = join(dir, 'not-a-ca.crt');
    writeFileSync(notPem, 'hello\n');
    const parse = (argv: string[]): unknown => {
      try {
        parseOptions(kafkaOptions(), argv, {});
        return null;
      } catch (err) {
        return err;
      }
    };
    const missing = parse(['--rabbitmq-ca-file', join(dir, 'nope.crt')]);
    expect(missing).toBeInstanceOf(ConfigError);
    expect((missing as Error).message).toMatch(/invalid --rabbitmq-ca-file \(KUEUER_RABBITMQ_CA_FILE\)/);
    expect((missing as Error).message).toMatch(/cannot read the CA file .*nope\.crt: ENOENT/);
    expect((parse(['--rabbitmq-ca-file', notPem]) as Error).message).toMatch(/not-a-ca\.crt holds no PEM certificate/);
    await expect(open([], { KUEUER_RABBITMQ_CA: 'garbage' })).rejects.toThrow(/the broker Secret's ca\.crt \(KUEUER_RABBITMQ_CA\) holds no PEM certificate/);
  });
});
