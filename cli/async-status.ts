/**
 * `kueuer status`, asynchronous requests: for each Service with kueuer.io/async,
 * the requests accepted and awaiting their answer and the results stored,
 * read from the store the responders use (KUEUER_ASYNC_STORE). Read from the
 * store rather than from the responders' metrics: with Redis the replicas
 * share one store, so a request accepted on one replica is completed on
 * another, a restarted replica's counters start again at zero and Redis
 * expires results itself; only the store knows the backlog. Its two counts
 * per queue are two sorted-set lookups (responder/async/redis-store.ts).
 */
import type { V1Service } from '@kubernetes/client-node';
import { openRedisBacklog } from '../responder/async/redis-store.js';
import type { AsyncBacklog } from '../responder/async/store.js';
import { routesFromServices } from '../shared/service-routes.js';
import { alignedTable } from './workload-status.js';

export interface AsyncRow {
  service: string;
  queue: string;
  mode: string;
  pending: string;
  results: string;
  /** Why a count is unknown. */
  note?: string;
}

/** The store named by --async-store or KUEUER_ASYNC_STORE of the backend Secret, or why none can be read. */
export type AsyncStoreChoice = { url: URL } | { unknown: string };

/** A URL without its credentials, for output. */
export const withoutCredentials = (u: URL): string => `${u.protocol}//${u.host}`;

/** The Services (of those read) that answer asynchronously: one route each. */
export function asyncRoutes(services: readonly V1Service[]) {
  return routesFromServices(services).routes.filter((r) => r.async !== undefined);
}

/** One row per Service with kueuer.io/async, its counts read from the store within `withinTimeout`. */
export async function readAsyncRows(
  services: readonly V1Service[],
  store: AsyncStoreChoice,
  withinTimeout: <T>(work: Promise<T>, what: string) => Promise<T>,
): Promise<AsyncRow[]> {
  const routes = asyncRoutes(services);
  if (routes.length === 0) return [];
  const reader = 'url' in store ? openRedisBacklog(store.url.href) : undefined;
  try {
    return await Promise.all(
      routes.map(async (r): Promise<AsyncRow> => {
        const base = { service: r.service, queue: r.queue, mode: r.async!.mode };
        if (!reader) return { ...base, pending: 'unknown', results: 'unknown', note: (store as { unknown: string }).unknown };
        let b: AsyncBacklog;
        try {
          b = await withinTimeout(reader.read(r.queue), `reading the asynchronous requests of ${r.queue} from Redis`);
        } catch (err) {
          const why = `the store at ${withoutCredentials((store as { url: URL }).url)} did not answer: ${(err as Error).message}`;
          return { ...base, pending: 'unknown', results: 'unknown', note: why };
        }
        return { ...base, pending: String(b.pending), results: String(b.results) };
      }),
    );
  } finally {
    reader?.close();
  }
}

/** The store of the responders: the flag, else the Secret's KUEUER_ASYNC_STORE, else memory (unreadable from here). */
export function asyncStoreChoice(
  flag: 'memory' | URL | undefined,
  secretValue: string | undefined,
  parse: (raw: string) => 'memory' | URL,
  where: string,
): AsyncStoreChoice {
  let choice: 'memory' | URL;
  try {
    choice = flag ?? parse(secretValue ?? 'memory');
  } catch (err) {
    return { unknown: `KUEUER_ASYNC_STORE in ${where}: ${(err as Error).message}` };
  }
  if (choice === 'memory') {
    return {
      unknown:
        `the responders keep asynchronous requests in their own memory (KUEUER_ASYNC_STORE in ${where} is memory, or not set), out of reach from here; ` +
        'each replica counts them in kueuer_responder_async_accepted_total and _completed_total on its admin port',
    };
  }
  return { url: choice };
}

/** The rows as an aligned table, then a line per unknown count. */
export function formatAsyncRows(rows: readonly AsyncRow[]): string {
  if (rows.length === 0) return '';
  const lines = alignedTable(
    ['SERVICE', 'QUEUE', 'ASYNC', 'PENDING', 'RESULTS'],
    rows.map((r) => [r.service, r.queue, r.mode, r.pending, r.results]),
  );
  const notes = rows.filter((r) => r.note !== undefined).map((r) => `service/${r.service}: asynchronous backlog unknown: ${r.note}`);
  return `\nAsynchronous requests: PENDING accepted and awaiting the app's answer, RESULTS stored and not yet expired or deleted\n${lines.join('\n')}\n${notes.length > 0 ? `\n${notes.join('\n')}\n` : ''}`;
}
