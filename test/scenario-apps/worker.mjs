// The worker of the RabbitMQ origin project, written the plain way as an HTTP
// service: every request is 5 s of work, then 200. The work is synchronous (a
// busy loop standing for computation), so the process handles one request at
// a time and a CPU HorizontalPodAutoscaler sees the load. It knows nothing of
// queues: it listens on $PORT (default 8080) and answers whatever comes.
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8080);
const workMs = Number(process.env.WORK_MS ?? 5000);

function work(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x = (x * 31 + 7) % 1_000_003;
  return x;
}

const server = createServer((req, res) => {
  const start = Date.now();
  work(workMs);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ path: req.url, workedMs: workMs }));
  // An access log: one JSON line per request, with its headers.
  console.log(JSON.stringify({ start: new Date(start).toISOString(), workedMs: workMs, method: req.method, url: req.url, headers: req.headers }));
});
server.listen(port, () => console.log(`worker listening on ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
