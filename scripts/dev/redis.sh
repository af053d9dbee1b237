#!/usr/bin/env bash
# A private Redis for tests and `kueuer local` experiments, on loopback, with
# its own port and data under .cache/redis, so it never touches a system-wide
# Redis. Installs Debian's redis-server when it is missing. Data survives a
# restart (append-only file, fsync every second): the asynchronous requests'
# tests restart it.
#
#   scripts/dev/redis.sh start   # prints the redis URL on its last line
#   scripts/dev/redis.sh stop
# KUEUER_REDIS_PORT (default 26379) and KUEUER_REDIS_DIR select another server.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
port="${KUEUER_REDIS_PORT:-26379}"
base="${KUEUER_REDIS_DIR:-$root/.cache/redis/$port}"
pidfile="$base/redis.pid"

install_if_missing() {
  command -v redis-server >/dev/null && return 0
  echo "redis-server is not installed; installing Debian's package" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2 || true
  $sudo apt-get install -y -qq redis-server >&2
  command -v redis-server >/dev/null || { echo "redis-server did not install" >&2; exit 1; }
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answers() {
  redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG
}

start() {
  install_if_missing
  mkdir -p "$base"
  if ! running; then
    redis-server --bind 127.0.0.1 --port "$port" --dir "$base" --pidfile "$pidfile" --daemonize yes \
      --logfile "$base/redis.log" --appendonly yes --appendfsync everysec --save "" --protected-mode yes >&2
  fi
  for _ in $(seq 1 100); do
    if answers; then
      echo "redis://127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  echo "redis did not answer on 127.0.0.1:$port; see $base/redis.log" >&2
  exit 1
}

stop() {
  running || return 0
  local pid
  pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "redis (pid $pid) did not stop" >&2
  exit 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
