#!/usr/bin/env bash
# A private RabbitMQ node for tests and benchmarks, on loopback, with its own
# ports, data and Erlang cookie under .cache/rabbitmq, so it never touches a
# system-wide RabbitMQ. Installs Debian's rabbitmq-server when it is missing.
#
#   scripts/dev/rabbitmq.sh start   # prints the amqp URL on its last line (management API on port + 3)
#   scripts/dev/rabbitmq.sh stop
#   scripts/dev/rabbitmq.sh ctl ARGS...   # rabbitmqctl against this node
# KUEUER_RABBITMQ_PORT (default 21672) and KUEUER_RABBITMQ_DIR select another
# node, so a test can restart its own broker without disturbing the others.
# The node takes the port and the three above it (Erlang distribution, epmd,
# management). The default is no RabbitMQ port (25672 is a system RabbitMQ's
# inter-node port, 15672 its management, 35672-35682 its CLI tools) and sits
# below Linux's ephemeral range (32768+); the soak, the benchmark, the fault
# matrix and the broker-restart test use 28672, 20672, 27672 and 26672.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
port="${KUEUER_RABBITMQ_PORT:-21672}"
# One directory per port: nodes on other ports never share a pid file, config or data.
base="${KUEUER_RABBITMQ_DIR:-$root/.cache/rabbitmq/$port}"
export HOME="$base"
export RABBITMQ_NODENAME="kueuer-test-$port@localhost"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$port"
export RABBITMQ_DIST_PORT="$((port + 1))"
export ERL_EPMD_PORT="$((port + 2))"
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_MNESIA_BASE="$base/mnesia"
export RABBITMQ_LOG_BASE="$base/log"
export RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins"
export RABBITMQ_CONFIG_FILE="$base/rabbitmq"
export RABBITMQ_PID_FILE="$base/rabbitmq.pid"
bin=/usr/lib/rabbitmq/bin

install_if_missing() {
  [ -x "$bin/rabbitmq-server" ] && return 0
  echo "rabbitmq-server is not installed; installing Debian's package" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # The package's own service start is refused without systemd; this script starts its own node.
  $sudo apt-get update -qq >&2 || true
  $sudo apt-get install -y -qq rabbitmq-server >&2
  [ -x "$bin/rabbitmq-server" ] || { echo "rabbitmq-server did not install" >&2; exit 1; }
}

running() {
  [ -f "$RABBITMQ_PID_FILE" ] && kill -0 "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null
}

case "${1:-}" in
  start)
    install_if_missing
    mkdir -p "$base/log"
    # The management API serves ready + unacked counts to Kueuer's autoscaler (port = AMQP port + 3).
    echo '[rabbitmq_management].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
    cat > "$base/rabbitmq.conf" <<CONF
loopback_users = none
listeners.tcp.default = 127.0.0.1:$port
log.console = false
log.file.level = warning
management.tcp.ip = 127.0.0.1
management.tcp.port = $((port + 3))
collect_statistics_interval = 1000
CONF
    if ! running; then
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is already taken (another RabbitMQ node, perhaps from another checkout); stop it or set KUEUER_RABBITMQ_PORT" >&2
        exit 1
      fi
      # A fresh node each start unless asked to keep its data (a restart test does).
      [ -n "${KUEUER_RABBITMQ_KEEP_DATA:-}" ] || rm -rf "$RABBITMQ_MNESIA_BASE"
      "$bin/rabbitmq-server" > "$base/log/startup.log" 2>&1 &
      if ! "$bin/rabbitmqctl" wait --timeout 60 "$RABBITMQ_PID_FILE" > "$base/log/wait.log" 2>&1; then
        echo "RabbitMQ did not start; its output follows" >&2
        tail -n 30 "$base/log/startup.log" "$base/log/wait.log" >&2
        exit 1
      fi
    fi
    echo "amqp://guest:guest@127.0.0.1:$port"
    ;;
  stop)
    if running; then
      "$bin/rabbitmqctl" stop "$RABBITMQ_PID_FILE" > /dev/null 2>&1 || kill "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null || true
    fi
    # epmd was started for this node's private port; end it too.
    pkill -f "epmd.*-port $ERL_EPMD_PORT" 2>/dev/null || true
    ;;
  ctl)
    shift
    exec "$bin/rabbitmqctl" "$@"
    ;;
  *)
    echo "usage: $0 start|stop|ctl ARGS..." >&2
    exit 2
    ;;
esac
