#!/usr/bin/env bash
# `npm run bench`: build, then run the benchmark (it starts its own RabbitMQ node and processes).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
node dist/scripts/bench.js
