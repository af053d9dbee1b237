#!/usr/bin/env bash
# `npm test`: build, type-check, lint, check formatting, then every vitest test. The vitest
# global setup starts the services the tests need (a private RabbitMQ node,
# installed from Debian if missing); a service that cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .cache

npm run --silent build
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check
# The shell scripts, with Debian's shellcheck when it is installed (apt-get install shellcheck).
if command -v shellcheck >/dev/null; then
  shellcheck -x scripts/*.sh scripts/lib/*.sh scripts/dev/*.sh scripts/bench/*.sh
else
  echo "shellcheck is not installed (apt-get install shellcheck): the shell scripts are not checked" >&2
fi

status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest-results.json "$@" || status=$?

# One plain summary line that any CI log reader understands.
# shellcheck disable=SC2016 # a JavaScript template, not a shell expansion
node -e '
  const r = require("./.cache/vitest-results.json");
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' || true
exit "$status"
