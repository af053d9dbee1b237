/** `npm start` (scripts/start-demo.mjs): the demo app behind `kueuer local`, reachable at the URL it prints. */
import { spawn } from 'node:child_process';
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
      while (!out.includes(`curl -i http://127.0.0.1:${listen}/`)) {
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
});
