#!/usr/bin/env node
// The one CLI entry point; the TypeScript sources are compiled to dist/ by `npm ci` (prepare).
//
// `npx kueuer` runs this file on whatever `node` is first on PATH, which may be
// older than package.json's `engines` (npm only warns). Then the project's own
// Node (the `node` dev dependency, node_modules/node/bin/node, the one every
// `npm run` script uses) runs it instead; without one, a clear error.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const REEXEC = 'KUEUER_REEXEC_NODE';

/** The lowest version `engines.node` accepts (`>=22.12`, `>=22.12.0`, `^24`), as [major, minor, patch]; null if none is declared. */
function requiredNode() {
  let range;
  try {
    range = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines?.node;
  } catch {
    return null;
  }
  const m = /(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(typeof range === 'string' ? range : '');
  return m ? { range, version: [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] } : null;
}

function olderThan(running, required) {
  for (let i = 0; i < 3; i++) if (running[i] !== required[i]) return running[i] < required[i];
  return false;
}

/** Runs this file on `node` and ends with its exit (code, or the signal that ended it). */
function reexec(node) {
  const child = spawn(node, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [REEXEC]: '1' },
  });
  // The terminal's Ctrl-C and hang-up reach the child directly (same process
  // group); passing them on would be a second signal, which stops a draining
  // server at once. A SIGTERM is sent to one process: pass it on.
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('error', (err) => {
    console.error(`kueuer: cannot start ${node}: ${err.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    // A child ended by a signal exits as a shell reports it: 128 + the signal's number.
    process.exit(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1));
  });
}

const required = requiredNode();
const running = process.versions.node.split('.').map(Number);
if (required && olderThan(running, required.version)) {
  const projectNode = join(root, 'node_modules', 'node', 'bin', 'node');
  if (process.env[REEXEC] !== '1' && existsSync(projectNode)) {
    reexec(projectNode);
  } else {
    console.error(
      `kueuer: needs Node ${required.range} (package.json engines); ${process.execPath} is Node ${process.version}. ` +
        'Run `npm ci` in the project (it installs Node 24 as the `node` dev dependency, which this command then uses) or put Node 24 first on PATH.',
    );
    process.exit(1);
  }
} else {
  const { main } = await import('../dist/cli/main.js');
  main(process.argv.slice(2)).then(
    (code) => {
      // A number means the command ended (help, bad flags, failed start); servers return nothing.
      if (typeof code === 'number') process.exit(code);
    },
    (err) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}
