/** Responder settings for a test on a loopback port: the defaults most tests write out, with what the test changes. */
import type { ResponderSettings } from '../../responder/config.js';
import type { HostPort } from '../../shared/options.js';

export function responderSettings(queue: string, over: Partial<ResponderSettings> = {}): ResponderSettings & { listen: HostPort } {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    queue,
    timeoutMs: 10_000,
    maxBodyBytes: 1024 * 1024,
    maxPending: 100,
    publishTimeoutMs: 1_000,
    headersTimeoutMs: 60_000,
    bodyTimeoutMs: 30_000,
    sendTimeoutMs: 30_000,
    ...over,
  };
}
