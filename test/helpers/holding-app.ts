/**
 * A test app, started once per file, that holds each request under /held until the test releases
 * it (`held.shift()!()`) and answers the others at once; after each test the held ones are
 * released and the cleanups run, last first.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startTestApp, type TestApp, type TestHandler } from './test-app.js';

export interface HoldingApp {
  /** The running app (set before the first test). */
  app: TestApp;
  held: Array<() => void>;
  cleanups: Array<() => Promise<void>>;
}

export function holdingApp(respond: TestHandler): HoldingApp {
  const ctx: HoldingApp = { app: undefined as unknown as TestApp, held: [], cleanups: [] };
  beforeAll(async () => {
    ctx.app = await startTestApp();
    ctx.app.handle((req, res) => {
      const answer = () => respond(req, res);
      if (req.url.startsWith('/held')) ctx.held.push(answer);
      else answer();
    });
  });
  afterAll(async () => ctx.app.close());
  afterEach(async () => {
    for (const f of ctx.held.splice(0)) f();
    for (const c of ctx.cleanups.splice(0).reverse()) await c();
  });
  return ctx;
}
