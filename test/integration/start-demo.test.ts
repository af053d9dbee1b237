/** `npm start` (scripts/start-demo.mjs): the demo app behind `kueuer local`, reachable at the URL it prints. */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, request } from '../helpers/http.js';
import { freePort } from '../helpers/net.js';

describe('npm start', () => {
  it('serves the demo app through kueuer local and prints the URL to curl', async () => {
    const [app, listen, admin] = [await freePort(), await freePort(), await freePort()];
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'scripts', 'start-demo.mjs')], {
      env: { ...process.env, DEMO_APP_PORT: String(app), KUEUER_LISTEN: `127.0.0.1:${listen}`, KUEUER_ADMIN_LISTEN: `127.0.0.1:${admin}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const until = Date.now() + 15_000;
      while (!out.includes(`curl -i 'http://127.0.0.1:${listen}/hello?name=kueuer'`)) {
        if (Date.now() > until) throw new Error(`no URL printed:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const res = await request(`http://127.0.0.1:${listen}`, { method: 'POST', path: '/hello?name=kueuer', body: 'some body' });
      expect(res.status).toBe(200);
      const echoed = json(res);
      expect(echoed.url).toBe('/hello?name=kueuer');
      expect(echoed.body).toBe('some body');
      expect(echoed.requestId).toBe(res.headers['x-kueuer-request-id']);
      expect(echoed.delayMs).toBeLessThanOrEqual(2000);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });

  it('Ctrl-C (SIGINT to its process group) drains: every request in flight is answered 200, then it exits 0', async () => {
    const [app, listen, admin] = [await freePort(), await freePort(), await freePort()];
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'scripts', 'start-demo.mjs')], {
      env: { ...process.env, DEMO_APP_PORT: String(app), KUEUER_LISTEN: `127.0.0.1:${listen}`, KUEUER_ADMIN_LISTEN: `127.0.0.1:${admin}` },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const group = child.pid ?? 0;
    try {
      const until = Date.now() + 15_000;
      while (!out.includes('Stop: Ctrl-C')) {
        if (Date.now() > until) throw new Error(`no URL printed:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // The demo app takes 0–2 s a request: with four at a time, most of these are still running at the Ctrl-C.
      const inFlight = Array.from({ length: 6 }, (_, i) =>
        request(`http://127.0.0.1:${listen}`, { method: 'POST', path: `/slow-${i}`, body: String(i) }).then(
          (res) => res.status,
          (e: Error) => e.message,
        ),
      );
      await new Promise((r) => setTimeout(r, 300));
      process.kill(-group, 'SIGINT');
      expect(await Promise.all(inFlight), err).toEqual([200, 200, 200, 200, 200, 200]);
      expect(await exited, err).toBe(0);
    } finally {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, 30_000);

  it.each([
    ['the demo app', 'DEMO_APP_PORT', (p: number) => String(p)],
    ['kueuer local', 'KUEUER_LISTEN', (p: number) => `127.0.0.1:${p}`],
    ['its metrics', 'KUEUER_ADMIN_LISTEN', (p: number) => `127.0.0.1:${p}`],
  ])(
    'names the busy port of %s and the variable that moves it',
    async (what, variable, value) => {
      const busy = net.createServer();
      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
      const port = (busy.address() as net.AddressInfo).port;
      const env: Record<string, string> = {
        DEMO_APP_PORT: String(await freePort()),
        KUEUER_LISTEN: `127.0.0.1:${await freePort()}`,
        KUEUER_ADMIN_LISTEN: `127.0.0.1:${await freePort()}`,
        [variable]: value(port),
      };
      const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'scripts', 'start-demo.mjs')], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (c) => (out += c));
      child.stderr.on('data', (c) => (err += c));
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      clearTimeout(timer);
      busy.close();
      expect(code).toBe(1);
      expect(err).toBe(`npm start: port ${port} (${what}) is already in use; set ${variable} to use another, e.g. ${variable}=${value(port + 1)} npm start\n`);
      expect(out).toBe('');
    },
    15_000,
  );
});
