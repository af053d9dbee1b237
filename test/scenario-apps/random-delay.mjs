// The origin report's fake service (HEIA-FR, 2021), written the plain way:
// every request takes a random 0-30 s of work, then answers 200 with how long
// it took. The work is synchronous (a busy loop standing for computation), so
// the process works on one request at a time, as a single-threaded server
// does, and a CPU HorizontalPodAutoscaler sees the load. It knows nothing of
// queues: it listens on $PORT (default 8080) and answers whatever comes.
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8080);
const maxSeconds = Number(process.env.MAX_SECONDS ?? 30);

function work(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x = (x * 31 + 7) % 1_000_003;
  return x;
}

const server = createServer((req, res) => {
  const start = Date.now();
  const ms = Math.round(Math.random() * maxSeconds * 1000);
  work(ms);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ path: req.url, workedMs: ms }));
  // An access log: one JSON line per request, with its headers.
  console.log(JSON.stringify({ start: new Date(start).toISOString(), workedMs: ms, method: req.method, url: req.url, headers: req.headers }));
});
server.listen(port, () => console.log(`random-delay listening on ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
