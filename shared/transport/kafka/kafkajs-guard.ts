/**
 * A guard for the one kafkajs 2.2.4 defect Kueuer meets on Node 24, applied
 * where kafkajs is loaded (client.ts, before any client exists), so it holds however
 * the package was installed (npm ci, the image's `npm ci --ignore-scripts`,
 * or Kueuer installed as a dependency).
 *
 * kafkajs's request queue schedules its next look at pending requests with
 * `setTimeout(fn, throttledUntil - Date.now())` even when nothing is pending
 * and no throttle is set (`throttledUntil` is -1): a delay of about
 * -Date.now(). Node clamps it to 1 ms, so the queue polled itself every
 * millisecond for nothing (kafkajs issue #1704), and Node 24 prints
 * `TimeoutNegativeWarning: -1796591689886 is a negative number` on the first
 * one (issue #1751, open upstream; the fix below is the one proposed on PR
 * #1768). With nothing pending and no throttle there is nothing to check: a
 * request queued later schedules its own check (RequestQueue#push).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The kafkajs version this guard was reviewed against; another one is left alone (a test says so). */
export const GUARDED_KAFKAJS_VERSION = '2.2.4';
/** kafkajs's own interval for pending requests (CHECK_PENDING_REQUESTS_INTERVAL). */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;

interface RequestQueueState {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
}

/** kafkajs's scheduleCheckPendingRequests, but never with a negative delay and never with nothing to wait for. */
export function scheduleCheckPendingRequests(this: RequestQueueState): void {
  if (this.throttleCheckTimeoutId) return;
  const throttledFor = this.throttledUntil - Date.now();
  let delay: number;
  if (this.pending.length > 0) delay = throttledFor > 0 ? throttledFor : CHECK_PENDING_REQUESTS_INTERVAL_MS;
  else if (throttledFor > 0) delay = throttledFor;
  else return;
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, delay);
}

export type GuardOutcome = 'guarded' | 'not-reviewed';

/** Replaces the method on kafkajs's RequestQueue (every broker connection's queue) for the reviewed version. */
export function guardKafkajs(): GuardOutcome {
  const { version } = require('kafkajs/package.json') as { version: string };
  if (version !== GUARDED_KAFKAJS_VERSION) return 'not-reviewed';
  const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: { scheduleCheckPendingRequests: unknown } };
  RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
  return 'guarded';
}
