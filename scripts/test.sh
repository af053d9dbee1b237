#!/usr/bin/env bash
# `npm test`: build, type-check, lint, check formatting, then every vitest test. The vitest
# global setup starts the services the tests need (a private RabbitMQ node,
# installed from Debian if missing); a service that cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache

npm run --silent build
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check

status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest-results.json "$@" || status=$?

# One plain summary line that any CI log reader understands.
node -e '
  const r = require("./.cache/vitest-results.json");
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' || true
exit "$status"
