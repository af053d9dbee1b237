/**
 * The client side of the real-node tests: plain HTTP/1.1 requests from this
 * machine to a Service ClusterIP (through kube-proxy), one connection per
 * request (no keep-alive, so a connection cut by a draining responder shows
 * as what it is), each tagged `?i=<n>` so every answer can be matched to its
 * request.
 */
import http from 'node:http';

export interface Answer {
  i: number;
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Set when no HTTP answer came (connection refused or reset, timeout). */
  error?: string;
  ms: number;
}

export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer; timeoutMs?: number } = {},
): Promise<Omit<Answer, 'i'>> {
  const started = Date.now();
  return new Promise((resolve) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false, timeout: options.timeoutMs ?? 90_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: Date.now() - started }));
      res.on('error', (err) => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), error: err.message, ms: Date.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (err) =>
      resolve({ status: 0, headers: {}, body: Buffer.alloc(0), error: (err as NodeJS.ErrnoException).code ?? err.message, ms: Date.now() - started }),
    );
    req.end(options.body);
  });
}

export interface LoadOptions {
  /** Requests to send at least. */
  count: number;
  concurrency: number;
  /** The request target for request i (the test appends `i`). */
  url: (i: number) => string;
  /** Keep sending (past `count`) until this resolves: a rollout that must be covered by load. */
  until?: Promise<unknown>;
  /** Called after each answer (e.g. to start a disruption once some answers arrived). */
  onAnswer?: (answered: number) => void;
}

/** Sends the requests with `concurrency` in flight; resolves with every answer, in request order. */
export async function load(options: LoadOptions): Promise<Answer[]> {
  let untilDone = options.until === undefined;
  void options.until?.finally(() => (untilDone = true));
  const answers: Answer[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.count || !untilDone) {
      const i = next++;
      const answer = await request(options.url(i));
      answers.push({ i, ...answer });
      options.onAnswer?.(answers.length);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return answers.sort((a, b) => a.i - b.i);
}

export interface LoadSummary {
  sent: number;
  /** 200 with the request's own `i` echoed back by go-httpbin. */
  ok: number;
  /** Everything else: no answer, another status, or another request's answer. */
  lost: number;
  /** Distinct failure kinds and their counts ("503", "ECONNRESET", "wrong answer"). */
  failures: Record<string, number>;
  maxMs: number;
}

/** go-httpbin echoes the query (`args.i`), so an answer proves which request it belongs to. */
export function echoedI(body: Buffer): string | undefined {
  try {
    const json = JSON.parse(body.toString('utf8')) as { args?: Record<string, string[]> };
    return json.args?.i?.[0];
  } catch {
    return undefined;
  }
}

export function summarize(answers: Answer[]): LoadSummary {
  const failures: Record<string, number> = {};
  let ok = 0;
  for (const a of answers) {
    let kind: string | undefined;
    if (a.error) kind = a.error;
    else if (a.status !== 200) kind = String(a.status);
    else if (echoedI(a.body) !== String(a.i)) kind = 'wrong answer';
    if (kind === undefined) ok++;
    else failures[kind] = (failures[kind] ?? 0) + 1;
  }
  return { sent: answers.length, ok, lost: answers.length - ok, failures, maxMs: Math.max(0, ...answers.map((a) => a.ms)) };
}
