/**
 * Starts the services the integration tests need, once per `vitest run`:
 * a private RabbitMQ node (installed from Debian when missing) via
 * scripts/rabbitmq.sh. KUEUER_TEST_AMQP_URL points the tests at an existing
 * broker instead. A broker that cannot start fails the run; nothing is skipped.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    amqpUrl: string;
  }
}

const script = join(import.meta.dirname, '..', 'scripts', 'rabbitmq.sh');

export default function setup(project: TestProject): () => void {
  const external = process.env.KUEUER_TEST_AMQP_URL;
  if (external) {
    project.provide('amqpUrl', external);
    return () => undefined;
  }
  const out = execFileSync('bash', [script, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const url = out.trim().split('\n').pop() ?? '';
  if (!url.startsWith('amqp://')) throw new Error(`scripts/rabbitmq.sh start printed no amqp URL:\n${out}`);
  project.provide('amqpUrl', url);
  return () => {
    if (process.env.KUEUER_TEST_KEEP_RABBITMQ) return;
    execFileSync('bash', [script, 'stop'], { stdio: 'inherit' });
  };
}
