/**
 * The demo app behind `npm start`: a slow service that takes a random time
 * (0–2 s by default) and echoes what it got, including the request id Kueuer
 * gave it. Also used by the benchmark with a zero delay.
 *
 *   node dist/demo/echo-app.js [PORT] [MIN_DELAY_MS] [MAX_DELAY_MS]
 */
import http from 'node:http';
import { pathToFileURL } from 'node:url';

export interface EchoAppOptions {
  host: string;
  port: number;
  minDelayMs: number;
  maxDelayMs: number;
}

export function createEchoApp(options: Omit<EchoAppOptions, 'host' | 'port'>): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const delay = options.minDelayMs + Math.random() * (options.maxDelayMs - options.minDelayMs);
      const reply = (): void => {
        const body = Buffer.concat(chunks);
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            method: req.method,
            url: req.url,
            requestId: req.headers['x-kueuer-request-id'] ?? null,
            delayMs: Math.round(delay),
            headers: req.headers,
            body: body.toString('utf8'),
          }) + '\n',
        );
      };
      if (delay <= 0) reply();
      else setTimeout(reply, delay);
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [port = '3000', min = '0', max = '2000'] = process.argv.slice(2);
  const server = createEchoApp({ minDelayMs: Number(min), maxDelayMs: Number(max) });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(port), '127.0.0.1', () => {
    console.log(`demo app listening on http://127.0.0.1:${port} (delay ${min}-${max} ms)`);
  });
  const stop = (): void => void server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
