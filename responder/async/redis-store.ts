/**
 * The asynchronous requests' store on Redis: shared by every responder
 * replica and kept across their restarts (Redis's append-only file). One hash
 * per request (`kueuer:async:{<queue>}:<id>`), expiring with the request's
 * lifetime; one string per idempotency key, claimed with SET NX. A result is
 * written by a script only while its request is recorded and has none yet,
 * and announced on a channel that wakes long polls on every replica. Every
 * operation is one key lookup; nothing scans.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Waiters } from './waiters.js';
import {
  CANCEL_STATES,
  type AcceptOutcome,
  type AsyncBacklog,
  type AsyncRecord,
  type AsyncStore,
  type CancelOutcome,
  type CancelState,
  type IdempotencyClaim,
  type StoredResult,
} from './store.js';

const CHANNEL = 'kueuer:async:done';

const recordKey = (queue: string, id: string): string => `kueuer:async:{${queue}}:${id}`;
const claimKey = (queue: string, key: string): string => `kueuer:async:{${queue}}:key:${key}`;
/** The backlog indexes: in the queue's slot (hash tag), so a script may touch them with the record. */
const pendingKey = (queue: string): string => `kueuer:async:{${queue}}:index:pending`;
const doneKey = (queue: string): string => `kueuer:async:{${queue}}:index:done`;

/**
 * Lua: adds an id to a backlog index with its score, trims what is past `now`, and keeps the index
 * no longer than its latest entry (an index of a queue no longer used expires too).
 */
const INDEX = `
local function index(key, score, id, now)
  redis.call('ZADD', key, score, id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local ttl = tonumber(score) - tonumber(now)
  if ttl > 0 and redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end`;

/**
 * KEYS[1] record, KEYS[2] pending index, KEYS[3] the idempotency key (optional); ARGV: id, fingerprint,
 * ttl ms, acceptedAt, expiresAt, callback URL ('' for none), answer-by (epoch ms). Atomically: '' when
 * recorded, else the holder of the key ("<id>\n<fingerprint>").
 */
const ACCEPT = `${INDEX}
if #KEYS == 3 then
  local held = redis.call('GET', KEYS[3])
  if held then return held end
  redis.call('SET', KEYS[3], ARGV[1] .. '\\n' .. ARGV[2], 'PX', ARGV[3])
  redis.call('HSET', KEYS[1], 'claim', KEYS[3])
end
redis.call('HSET', KEYS[1], 'acceptedAt', ARGV[4], 'expiresAt', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'callback', ARGV[6]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
index(KEYS[2], ARGV[7], ARGV[1], ARGV[4])
return ''`;

/**
 * KEYS[1] record, KEYS[2] pending index, KEYS[3] done index; ARGV: status, reason, headers, trailers,
 * body, channel message, id, now. 1 when stored; a cancelled request's is noted as run, not stored.
 */
const COMPLETE = `${INDEX}
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'status') == 1 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'cancelledAt') == 1 then
  redis.call('HSET', KEYS[1], 'cancelApp', 'ran')
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'headers', ARGV[3], 'body', ARGV[5])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[2]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'trailers', ARGV[4]) end
redis.call('ZREM', KEYS[2], ARGV[7])
index(KEYS[3], redis.call('HGET', KEYS[1], 'expiresAt'), ARGV[7], ARGV[8])
redis.call('PUBLISH', '${CHANNEL}', ARGV[6])
return 1`;

/** KEYS[1] record; ARGV: now, channel message. Marks a request without a result cancelled, once. */
const CANCEL = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
if redis.call('HEXISTS', KEYS[1], 'status') == 1 then return 'done' end
if redis.call('HSETNX', KEYS[1], 'cancelledAt', ARGV[1]) == 0 then return 'already' end
redis.call('HSET', KEYS[1], 'cancelApp', 'queued')
redis.call('PUBLISH', '${CHANNEL}', ARGV[2])
return 'cancelled'`;

/** KEYS[1] record; ARGV: the new state, then every state in order. Moves a cancelled request's state on, never back. */
const NOTE_CANCEL = `
if redis.call('HEXISTS', KEYS[1], 'cancelledAt') == 0 then return 0 end
local rank = {}
for i = 2, #ARGV do rank[ARGV[i]] = i end
local current = redis.call('HGET', KEYS[1], 'cancelApp')
if (rank[ARGV[1]] or 0) > (rank[current] or 0) then redis.call('HSET', KEYS[1], 'cancelApp', ARGV[1]) end
return 1`;

/** KEYS[1] record, KEYS[2] pending index, KEYS[3] done index; ARGV[1] id. Deletes the record and the idempotency key that names it. */
const REMOVE = `
local claim = redis.call('HGET', KEYS[1], 'claim')
local n = redis.call('DEL', KEYS[1])
if claim then
  local v = redis.call('GET', claim)
  if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then redis.call('DEL', claim) end
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if n == 1 then redis.call('PUBLISH', '${CHANNEL}', ARGV[2]) end
return n`;

export class RedisAsyncStore implements AsyncStore {
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly waiters = new Waiters();
  private subscribed: Promise<unknown> | undefined;

  constructor(url: string, log: Logger) {
    // Fail a command at once while disconnected (the answer is a 503), and keep reconnecting.
    const options = { lazyConnect: false, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5_000 };
    this.redis = new Redis(url, options);
    this.subscriber = new Redis(url, { ...options, enableOfflineQueue: true });
    for (const [name, client] of [
      ['store', this.redis],
      ['subscriber', this.subscriber],
    ] as const) {
      client.on('error', (err: Error) => log.warn({ connection: name, err: err.message }, 'the asynchronous requests store (Redis) failed; reconnecting'));
    }
    this.subscriber.on('message', (_channel: string, key: string) => {
      this.waiters.wake(key);
    });
  }

  /** Resolves once both connections are up. */
  async ready(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.redis.status !== 'ready' || this.subscriber.status !== 'ready') {
      if (Date.now() > until) throw new Error(`Redis did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.subscribe();
  }

  private subscribe(): Promise<unknown> {
    return (this.subscribed ??= this.subscriber.subscribe(CHANNEL));
  }

  async accept(queue: string, id: string, ttlMs: number, claim?: IdempotencyClaim, callbackUrl?: string, answerBy?: number): Promise<AcceptOutcome> {
    const now = Date.now();
    const keys = [recordKey(queue, id), pendingKey(queue), ...(claim ? [claimKey(queue, claim.key)] : [])];
    const held = (await this.redis.eval(
      ACCEPT,
      keys.length,
      ...keys,
      id,
      claim?.fingerprint ?? '',
      String(ttlMs),
      String(now),
      String(now + ttlMs),
      callbackUrl ?? '',
      String(Math.min(answerBy ?? now + ttlMs, now + ttlMs)),
    )) as string;
    if (held === '') return { accepted: true };
    const [heldId = '', fingerprint = ''] = held.split('\n');
    return { accepted: false, id: heldId, fingerprint };
  }

  async complete(queue: string, id: string, result: StoredResult): Promise<boolean> {
    const args = [
      String(result.status),
      result.reason ?? '',
      JSON.stringify(result.headers),
      result.trailers ? JSON.stringify(result.trailers) : '',
      result.body,
      `${queue}\n${id}`,
      id,
      String(Date.now()),
    ];
    return (await this.redis.eval(COMPLETE, 3, recordKey(queue, id), pendingKey(queue), doneKey(queue), ...args)) === 1;
  }

  async get(queue: string, id: string): Promise<AsyncRecord | undefined> {
    const h = await this.redis.hgetallBuffer(recordKey(queue, id));
    if (!h.acceptedAt || !h.expiresAt) return undefined;
    const record: AsyncRecord = { id, acceptedAt: Number(h.acceptedAt.toString()), expiresAt: Number(h.expiresAt.toString()) };
    if (h.callback) record.callbackUrl = h.callback.toString();
    if (h.cancelledAt) {
      const app = h.cancelApp?.toString() as CancelState | undefined;
      record.cancelled = { at: Number(h.cancelledAt.toString()), app: app && CANCEL_STATES.includes(app) ? app : 'queued' };
    }
    if (h.status && h.headers && h.body) {
      record.result = {
        status: Number(h.status.toString()),
        headers: JSON.parse(h.headers.toString()) as StoredResult['headers'],
        body: h.body,
        ...(h.reason ? { reason: h.reason.toString('latin1') } : {}),
        ...(h.trailers ? { trailers: JSON.parse(h.trailers.toString()) as StoredResult['headers'] } : {}),
      };
    }
    return record;
  }

  async cancel(queue: string, id: string): Promise<CancelOutcome> {
    return (await this.redis.eval(CANCEL, 1, recordKey(queue, id), String(Date.now()), `${queue}\n${id}`)) as CancelOutcome;
  }

  async noteCancel(queue: string, id: string, app: CancelState): Promise<boolean> {
    return (await this.redis.eval(NOTE_CANCEL, 1, recordKey(queue, id), app, ...CANCEL_STATES)) === 1;
  }

  async remove(queue: string, id: string): Promise<boolean> {
    return (await this.redis.eval(REMOVE, 3, recordKey(queue, id), pendingKey(queue), doneKey(queue), id, `${queue}\n${id}`)) === 1;
  }

  async waitFor(queue: string, id: string, ms: number): Promise<void> {
    if (ms <= 0) return;
    await this.subscribe();
    // Stored (or removed) before this waiter listened: done at once.
    await this.waiters.wait(`${queue}\n${id}`, ms, (done) => {
      this.redis.hmget(recordKey(queue, id), 'status', 'cancelledAt').then(
        ([status, cancelledAt]) => (status !== null || cancelledAt !== null) && done(),
        () => done(),
      );
      this.redis.exists(recordKey(queue, id)).then(
        (n) => n === 0 && done(),
        () => done(),
      );
    });
  }

  async backlog(queue: string): Promise<AsyncBacklog> {
    return readRedisBacklog(this.redis, queue);
  }

  /** Keys in the Redis database: requests, results and idempotency keys (DBSIZE, no scan). */
  async size(): Promise<number> {
    return this.redis.dbsize();
  }

  async close(): Promise<void> {
    this.waiters.wakeAll();
    this.redis.disconnect();
    this.subscriber.disconnect();
  }
}

/** A queue's backlog from its two indexes: two counts, no scan. */
async function readRedisBacklog(redis: Redis, queue: string): Promise<AsyncBacklog> {
  const now = String(Date.now());
  const [pending, results] = await Promise.all([redis.zcount(pendingKey(queue), `(${now}`, '+inf'), redis.zcount(doneKey(queue), `(${now}`, '+inf')]);
  return { pending, results };
}

/**
 * Reads the backlogs of queues from a Redis store (`kueuer status`): one connection, commands failing
 * at once while it is down.
 */
export function openRedisBacklog(url: string): { read(queue: string): Promise<AsyncBacklog>; close(): void } {
  const redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 0, connectTimeout: 5_000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  return { read: (queue) => readRedisBacklog(redis, queue), close: () => redis.disconnect() };
}
