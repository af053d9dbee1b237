#!/usr/bin/env bash
# `npm run bench`: build, make sure wrk and Knative's queue-proxy are there, then run
# the benchmark (as root: it runs every process in a private network namespace and
# starts its own RabbitMQ and Kafka nodes there).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v wrk >/dev/null; then
  echo "wrk is not installed; installing Debian's package" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2 || true
  $sudo apt-get install -y -qq wrk >&2
fi
bash scripts/bench/queue-proxy.sh > /dev/null
npm run --silent build
node dist/scripts/bench/bench.js
