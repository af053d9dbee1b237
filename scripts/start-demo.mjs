#!/usr/bin/env node
// `npm start`: the demo app (random 0–2 s per request) behind `kueuer local` on the embedded backend.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (!existsSync(join(root, 'dist/cli/main.js'))) {
  console.error('dist/ is missing: run `npm ci` (it builds) or `npm run build` first.');
  process.exit(1);
}
const appPort = process.env.DEMO_APP_PORT ?? '3000';
const listen = process.env.KUEUER_LISTEN ?? '127.0.0.1:8080';
const admin = process.env.KUEUER_ADMIN_LISTEN ?? '127.0.0.1:9090';

/** Each port the demo needs, checked before anything starts, so a busy one is named with the variable that moves it. */
const ports = [
  { what: 'the demo app', variable: 'DEMO_APP_PORT', host: '127.0.0.1', port: Number(appPort), other: (p) => String(p) },
  ...[
    ['kueuer local', 'KUEUER_LISTEN', listen],
    ['its metrics', 'KUEUER_ADMIN_LISTEN', admin],
  ].map(([what, variable, address]) => {
    const m = /^(?:\[(.+)\]|([^:]+)):(\d+)$/.exec(address);
    const host = m?.[1] ?? m?.[2] ?? '127.0.0.1';
    const shown = host.includes(':') ? `[${host}]` : host;
    return { what, variable, host, port: Number(m?.[3] ?? NaN), other: (p) => `${shown}:${p}` };
  }),
];
for (const { what, variable, host, port, other } of ports) {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(
      `npm start: ${variable}=${process.env[variable]} is not a port (${variable === 'DEMO_APP_PORT' ? 'a number such as 3000' : 'HOST:PORT such as 127.0.0.1:8080'})`,
    );
    process.exit(1);
  }
  const problem = await new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err) => resolve(err.code));
    probe.listen(port, host, () => probe.close(() => resolve(null)));
  });
  if (problem === 'EADDRINUSE') {
    console.error(`npm start: port ${port} (${what}) is already in use; set ${variable} to use another, e.g. ${variable}=${other(port + 1)} npm start`);
    process.exit(1);
  }
  if (problem) {
    console.error(`npm start: cannot listen on ${other(port)} (${what}): ${problem}; set ${variable} to another address`);
    process.exit(1);
  }
}

/*
 * Stopping: the children run in their own process group, so the terminal's
 * Ctrl-C reaches this script alone and each child gets exactly one signal,
 * in order: `kueuer local` first (it drains: every request it holds is
 * answered, which needs the app), the demo app once it has exited. A second
 * Ctrl-C passes a second signal on, which makes `kueuer local` stop at once.
 */
const children = [];
let stopping = false;
let exitCode = 0;
function run(args, label) {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  child.exited = new Promise((resolve) => child.on('exit', resolve));
  child.on('exit', (code, signal) => {
    if (stopping) return;
    console.error(`${label} exited (${signal ?? code}); stopping`);
    exitCode = code ?? 1;
    void stop();
  });
  children.push(child);
  return child;
}
function signal(child, name) {
  if (child.exitCode === null && child.signalCode === null) child.kill(name);
}
async function stop() {
  if (stopping) {
    for (const c of children) signal(c, 'SIGTERM');
    return;
  }
  stopping = true;
  // children[1] is `kueuer local`, children[0] the demo app it calls.
  for (const c of [...children].reverse()) {
    signal(c, 'SIGTERM');
    await c.exited;
  }
  process.exit(exitCode);
}
for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(name, () => void stop());
// An unexpected end of this script must not leave the children holding the ports.
process.on('exit', () => {
  for (const c of children) signal(c, 'SIGKILL');
});

run([join(root, 'dist/demo/echo-app.js'), appPort, '0', '2000'], 'demo app');
run([join(root, 'bin/kueuer.js'), 'local', '--listen', listen, '--app', `127.0.0.1:${appPort}`, '--concurrency', '4', '--admin-listen', admin], 'kueuer local');
// The banner comes once kueuer local accepts connections, so the URL it prints answers at once.
const [, localPort] = ports;
const accepts = () =>
  new Promise((resolve) => {
    const socket = net.connect(localPort.port, localPort.host, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
const bannerBy = Date.now() + 60_000;
while (!stopping && !(await accepts())) {
  if (Date.now() > bannerBy) {
    console.error(`npm start: kueuer local does not accept connections on ${listen} after 60 s; stopping`);
    exitCode = 1;
    await stop();
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
if (!stopping) {
  console.log(
    `\nKueuer is queuing requests for the demo app. Try:\n  curl -i 'http://${listen}/hello?name=kueuer' -d 'some body'\nMetrics: http://${admin}/metrics   Stop: Ctrl-C\n`,
  );
}
