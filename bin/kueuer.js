#!/usr/bin/env node
// The one CLI entry point; the TypeScript sources are compiled to dist/ by `npm ci` (prepare).
import { main } from '../dist/cli/main.js';

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
