/** The tests' one poll helper (test/helpers/poll.ts), which replaced stack.ts's waitFor and control-plane.ts's waitUntil (two argument orders). */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/poll.js';

describe('waitFor', () => {
  it('resolves with the first truthy value of the check', async () => {
    let n = 0;
    expect(await waitFor(() => (++n >= 3 ? `after ${n}` : null), 5000, 'three checks')).toBe('after 3');
  });

  it('fails after its time, naming what it waited for and the state described', async () => {
    await expect(waitFor(() => false, 100, 'the impossible', { describeState: () => 'state: none' })).rejects.toThrow(
      'timed out after 100 ms waiting for the impossible\nstate: none',
    );
  });

  it('a check that throws fails the wait, unless errors are tolerated', async () => {
    await expect(waitFor(() => Promise.reject(new Error('not listening')), 5000, 'x')).rejects.toThrow('not listening');
    let n = 0;
    const flaky = async () => {
      if (++n < 3) throw new Error('not listening');
      return true;
    };
    expect(await waitFor(flaky, 5000, 'x', { tolerateErrors: true })).toBe(true);
  });

  it('fails at once when the process waited for exits, with its log tail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kueuer-poll-'));
    writeFileSync(join(dir, 'log'), 'line 1\nfatal: no config\n');
    const child = spawn(process.execPath, ['-e', 'process.exit(3)']);
    await new Promise((r) => child.once('exit', r));
    const started = Date.now();
    await expect(waitFor(() => false, 60_000, 'the server', { child, logFile: join(dir, 'log') })).rejects.toThrow(
      'the server: the process exited (3) first; its log ends:\nline 1\nfatal: no config',
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
