/**
 * The "10,000 clients held at once" measurement of `npm run bench`, as its own
 * process inside the benchmark's network namespace. Opens COUNT connections to
 * one responder, sends one request on each (POST /held/<i>), and waits until
 * the responder's pending gauge says it holds every one not already answered:
 * then prints `{"held":N}` (the bench reads the responder's RSS and starts the
 * sidecar). Then reads every answer and prints one JSON line: how many were
 * answered 200 with their own request's echo, errors, answers carrying another
 * client's reply, and how far the answer order was from the publish order.
 *
 *   node dist/scripts/bench/bench-held-clients.js PORT ADMIN_PORT COUNT TIMEOUT_S
 */
import { connect, type Socket } from 'node:net';

const [portArg = '0', adminArg = '0', countArg = '10000', timeoutArg = '120'] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);

interface Outcome {
  status: number;
  url: string;
}

/** Reads one HTTP/1.1 answer with a Content-Length body from a socket. */
function answerOf(socket: Socket): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
      if (buf.length < end + 4 + length) return;
      const body = buf.subarray(end + 4, end + 4 + length).toString('utf8');
      let url = '';
      try {
        url = (JSON.parse(body) as { url?: string }).url ?? '';
      } catch {
        // not the echo app's answer
      }
      resolve({ status: Number(head.slice(9, 12)), url });
      socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('closed before an answer')));
  });
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminArg}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:{[^}]*})? (\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

const answers: Promise<Outcome>[] = [];
const order: number[] = [];
/** Answers that came back before the sidecar started: refusals (a publish timeout's 503) or cut connections. */
let early = 0;
for (let i = 0; i < count; i += 500) {
  // In batches, so the listen backlog never overflows.
  const batch = Array.from({ length: Math.min(500, count - i) }, (_, k) => {
    const n = i + k;
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    return new Promise<void>((resolve, reject) => {
      socket.once('connect', () => {
        const body = JSON.stringify({ i: n });
        socket.write(`POST /held/${n} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        const answer = answerOf(socket);
        answers[n] = answer;
        answer.then(
          () => {
            early++;
            order.push(n);
          },
          () => early++,
        );
        resolve();
      });
      socket.once('error', reject);
    });
  });
  await Promise.all(batch);
}
const until = Date.now() + Number(timeoutArg) * 1000;
// Every client is either held or already answered (refused) before the sidecar starts.
let held = 0;
while ((held = await metric('kueuer_responder_pending_requests')) + early < count) {
  if (Date.now() > until) throw new Error(`the responder held ${held} of ${count} clients (${early} answered early) after ${timeoutArg} s`);
  await new Promise((r) => setTimeout(r, 100));
}
// The responder's JS heap and its Buffers and other memory outside the heap, while it holds them.
const heapMb = (await metric('nodejs_heap_size_used_bytes')) / 2 ** 20;
const externalMb = (await metric('nodejs_external_memory_bytes')) / 2 ** 20;
console.log(JSON.stringify({ held, heapMb, externalMb }));
const started = performance.now();
const settled = await Promise.allSettled(answers);
const seconds = (performance.now() - started) / 1000;
let answered = 0;
let errors = 0;
let crossed = 0;
settled.forEach((s, n) => {
  if (s.status === 'rejected' || s.value.status !== 200) errors++;
  else if (s.value.url !== `/held/${n}`) crossed++;
  else answered++;
});
// Inversions between neighbours: 0 means answered exactly in publish order.
let inversions = 0;
for (let k = 1; k < order.length; k++) if (order[k]! < order[k - 1]!) inversions++;
console.log(JSON.stringify({ answered, errors, crossed, inversions, seconds }));
process.exit(0);
