/**
 * Sending a request record until Kafka confirms it, without a silent
 * duplicate.
 *
 * The producer makes one attempt per send (kafkajs's own retries are off, see
 * transport.ts), so this loop decides each time what a failure means:
 *
 * - the broker refused the record before appending it (NOT_ENOUGH_REPLICAS,
 *   UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE), or no connection was
 *   made: nothing was written, and the request may go to another partition,
 *   as it is;
 * - anything else (request timeout, connection closed after sending,
 *   NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS_AFTER_APPEND): the record may
 *   be in the log. The copy
 *   sent again carries `x-kueuer-republished`, so the sidecar hands it to the
 *   app as a possible rerun, and it goes to the same partition: there it comes
 *   after the first copy, which the sidecar then runs first (a partition is
 *   dispatched in offset order), so the app never gets an unflagged copy after
 *   a flagged one;
 * - a refusal for good (authorization, record too large): given up at once.
 */
import { retry, type BackoffOptions } from '../../retry.js';
import { REPUBLISHED_HEADER, type OutgoingRecord } from './records.js';

export type SendFailure = 'not-written' | 'maybe-written' | 'refused';

/**
 * Broker error codes checked before the leader appends: the records are not in the log.
 * NOT_LEADER_OR_FOLLOWER is not one: a leader that appended and then lost its leadership while
 * waiting for the replicas (acks=all; a broker's controlled shutdown does exactly that) answers it
 * too, and the new leader may hold the records (the rolling restart row saw such requests run
 * twice, unflagged, when it counted as "not written").
 */
const NOT_APPENDED = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_ENOUGH_REPLICAS']);

/** Socket errors of a connection that was never made: no request went out on it. */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

interface KafkaJsError {
  name?: string;
  type?: string;
  code?: unknown;
  message?: string;
  retriable?: boolean;
  cause?: unknown;
}

/** What a failed single-attempt produce says about its records. */
export function sendFailure(err: unknown): SendFailure {
  let e = err as KafkaJsError | null;
  // kafkajs wraps the last error when its retries are spent (or the error is not retriable).
  while (e && (e.name === 'KafkaJSNumberOfRetriesExceeded' || e.name === 'KafkaJSNonRetriableError') && e.cause && e.cause !== e) e = e.cause;
  if (!e) return 'maybe-written';
  if (e.name === 'KafkaJSProtocolError') {
    if (e.retriable === false) return 'refused';
    return e.type !== undefined && NOT_APPENDED.has(e.type) ? 'not-written' : 'maybe-written';
  }
  if (e.name === 'KafkaJSConnectionError') {
    const neverConnected =
      (typeof e.code === 'string' && NEVER_CONNECTED.has(e.code)) ||
      e.message === 'Not connected' ||
      e.message === 'Connection timeout' ||
      e.message?.startsWith('Failed to connect') === true;
    return neverConnected ? 'not-written' : 'maybe-written';
  }
  // Never sent: the producer had no metadata or no broker for the partition.
  if (e.name === 'KafkaJSMetadataNotLoaded' || e.name === 'KafkaJSTopicMetadataNotLoaded' || e.name === 'KafkaJSBrokerNotFound') return 'not-written';
  if (e.name === 'KafkaJSNoBrokerAvailableError') return 'not-written';
  return e.retriable === false && e.name !== 'KafkaJSNonRetriableError' && e.name !== 'KafkaJSNumberOfRetriesExceeded' ? 'refused' : 'maybe-written';
}

/** Where request records go (backlog-route.ts, leaders.ts). */
export interface RequestRoute {
  /** The partition for a new request (the least backlogged, else by `key`), avoiding failed ones and unreachable leaders; undefined leaves kafkajs the choice. */
  partitionFor(topic: string, key: string, failed: ReadonlySet<number>): Promise<number | undefined>;
  refresh(topics: string[]): Promise<void>;
}

/** Between attempts: 50 ms doubling to 1 s, jittered (a dead broker refuses connections at once). */
const RESEND: BackoffOptions = { baseMs: 50, capMs: 1000, jitter: true };

/** Sends `record` until a broker confirms it, a refusal for good, or `deadline` (epoch ms). */
export async function sendRequestRecord(
  send: (topic: string, message: OutgoingRecord['message']) => Promise<void>,
  route: RequestRoute,
  topic: string,
  record: OutgoingRecord['message'],
  deadline: number,
  /** Told of each failed send and what it meant, before the next try (for a log line). */
  onFailure: (err: unknown, fate: SendFailure, partition: number | undefined) => void = () => undefined,
): Promise<void> {
  const failed = new Set<number>();
  let outgoing = record;
  /** Set once a send may have written the record: later copies go to the same partition, flagged. */
  let pinned: { partition: number | undefined } | null = null;
  await retry(
    async () => {
      // An undefined partition is kafkajs's choice, by the key's hash: the same one again.
      const partition = pinned ? pinned.partition : await route.partitionFor(topic, record.key ?? '', failed);
      try {
        await send(topic, partition === undefined ? outgoing : { ...outgoing, partition });
      } catch (err) {
        const fate = sendFailure(err);
        if (fate === 'maybe-written') {
          pinned ??= { partition };
          outgoing = { ...record, headers: { ...record.headers, [REPUBLISHED_HEADER]: '1' } };
        } else if (fate === 'not-written' && pinned === null && partition !== undefined) failed.add(partition);
        void route.refresh([topic]);
        onFailure(err, fate, partition);
        throw err;
      }
    },
    { ...RESEND, until: deadline, retryable: (err) => sendFailure(err) !== 'refused' },
  );
}
