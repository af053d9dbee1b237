#!/usr/bin/env bash
# A private 3-node RabbitMQ cluster for tests, on loopback, behind HAProxy (one
# TCP address that health-checks and balances like a Kubernetes Service). Own
# node names, ports, data and Erlang cookie under .cache/rabbitmq-cluster; it
# never touches scripts/dev/rabbitmq.sh's nodes. Installs Debian's rabbitmq-server
# and haproxy when missing.
#
#   scripts/dev/rabbitmq-cluster.sh start      # prints the nodes' URL (host1,host2,host3), then the HAProxy URL on its last line
#   scripts/dev/rabbitmq-cluster.sh stop
#   scripts/dev/rabbitmq-cluster.sh kill N     # SIGKILL node N (1-3), as a node crash
#   scripts/dev/rabbitmq-cluster.sh revive N   # start node N again with its data (it rejoins)
#   scripts/dev/rabbitmq-cluster.sh restart N  # an upgrade step, as the Cluster Operator's preStop does it: wait until
#                                          # stopping N keeps every quorum queue's majority, drain N, stop it, start
#                                          # it with its data, and wait until its quorum queue members are back
#   scripts/dev/rabbitmq-cluster.sh move-leader QUEUE N  # make node N the leader of quorum queue QUEUE (vhost /)
#   scripts/dev/rabbitmq-cluster.sh ctl N ARGS...  # rabbitmqctl against node N
# KUEUER_RABBITMQ_CLUSTER_LOG_LEVEL (default warning) is the nodes' log level; info logs each quorum
# queue's leader elections, with timestamps, in .cache/rabbitmq-cluster/PORT/nodeN/log.
# Ports (KUEUER_RABBITMQ_CLUSTER_PORT, default 22670): HAProxy on the port, node
# N's AMQP on port+1+N... precisely: node N AMQP = port+N+1 (22672-22674),
# distribution = port+N+11 (22682-22684), management = port+N+21
# (22692-22694), one epmd for the three on port+10 (22680). All below Linux's
# ephemeral range and apart from the single test nodes (20672, 21672, 26672-28675).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
port="${KUEUER_RABBITMQ_CLUSTER_PORT:-22670}"
base="${KUEUER_RABBITMQ_CLUSTER_DIR:-$root/.cache/rabbitmq-cluster/$port}"
export HOME="$base" # one Erlang cookie ($HOME/.erlang.cookie) for the three nodes and rabbitmqctl
export ERL_EPMD_PORT="$((port + 10))"
export ERL_EPMD_ADDRESS=127.0.0.1
bin=/usr/lib/rabbitmq/bin

node_name() { echo "kueuer-cluster$1-$port@localhost"; }
amqp_port() { echo "$((port + $1 + 1))"; }

# Exports the environment of node N (1-3).
node_env() {
  local n="$1" dir="$base/node$1"
  export RABBITMQ_NODENAME; RABBITMQ_NODENAME="$(node_name "$n")"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT; RABBITMQ_NODE_PORT="$(amqp_port "$n")"
  export RABBITMQ_DIST_PORT="$((port + n + 11))"
  export RABBITMQ_MNESIA_BASE="$dir/mnesia"
  export RABBITMQ_LOG_BASE="$dir/log"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$dir/rabbitmq"
  export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
  mkdir -p "$dir/log"
}

install_if_missing() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -x "$bin/rabbitmq-server" ] || ! command -v haproxy > /dev/null; then
    echo "installing Debian's rabbitmq-server and haproxy" >&2
    $sudo apt-get update -qq >&2 || true
    $sudo apt-get install -y -qq rabbitmq-server haproxy >&2
  fi
  if [ ! -x "$bin/rabbitmq-server" ] || ! command -v haproxy > /dev/null; then echo "rabbitmq-server or haproxy did not install" >&2; exit 1; fi
}

node_running() {
  node_env "$1"
  [ -f "$RABBITMQ_PID_FILE" ] && kill -0 "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null
}

# Starts node N's server (data kept) and waits until it runs.
start_node() {
  local n="$1"
  node_env "$n"
  echo '[rabbitmq_management].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
  cat > "$RABBITMQ_CONFIG_FILE.conf" <<CONF
loopback_users = none
listeners.tcp.default = 127.0.0.1:$RABBITMQ_NODE_PORT
log.console = false
log.file.level = ${KUEUER_RABBITMQ_CLUSTER_LOG_LEVEL:-warning}
management.tcp.ip = 127.0.0.1
management.tcp.port = $((port + n + 21))
collect_statistics_interval = 1000
cluster_partition_handling = pause_minority
CONF
  "$bin/rabbitmq-server" > "$base/node$n/log/startup.log" 2>&1 &
  if ! "$bin/rabbitmqctl" -n "$RABBITMQ_NODENAME" wait --timeout 90 "$RABBITMQ_PID_FILE" > "$base/node$n/log/wait.log" 2>&1; then
    echo "RabbitMQ node $n did not start; its output follows" >&2
    tail -n 30 "$base/node$n/log/startup.log" "$base/node$n/log/wait.log" >&2
    exit 1
  fi
}

start_haproxy() {
  local cfg="$base/haproxy.cfg"
  cat > "$cfg" <<CFG
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  option redispatch
  retries 3
listen amqp
  bind 127.0.0.1:$port
  balance roundrobin
  default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions
  server node1 127.0.0.1:$(amqp_port 1) check
  server node2 127.0.0.1:$(amqp_port 2) check
  server node3 127.0.0.1:$(amqp_port 3) check
CFG
  haproxy -f "$cfg" -D -p "$base/haproxy.pid"
}

urls() {
  echo "amqp://guest:guest@127.0.0.1:$(amqp_port 1),127.0.0.1:$(amqp_port 2),127.0.0.1:$(amqp_port 3)"
  echo "amqp://guest:guest@127.0.0.1:$port"
}

case "${1:-}" in
  start)
    install_if_missing
    # Already running (kept by an earlier run): revive any node a test killed, and reuse it.
    if [ -f "$base/haproxy.pid" ] && kill -0 "$(cat "$base/haproxy.pid")" 2>/dev/null; then
      for n in 1 2 3; do node_running "$n" || start_node "$n"; done
      urls
      exit 0
    fi
    for p in "$port" "$(amqp_port 1)" "$(amqp_port 2)" "$(amqp_port 3)"; do
      if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        echo "port $p is already taken; run '$0 stop' or set KUEUER_RABBITMQ_CLUSTER_PORT" >&2
        exit 1
      fi
    done
    rm -rf "$base"
    mkdir -p "$base"
    for n in 1 2 3; do start_node "$n"; done
    first="$(node_name 1)"
    for n in 2 3; do
      node="$(node_name "$n")"
      "$bin/rabbitmqctl" -n "$node" stop_app > /dev/null
      "$bin/rabbitmqctl" -n "$node" join_cluster "$first" > /dev/null
      "$bin/rabbitmqctl" -n "$node" start_app > /dev/null
    done
    # Nodes 2 and 3 met through node 1 only; connect them to each other now, so that losing node 1
    # leaves a connected majority at once (a fresh cluster's first kill of node 1 otherwise stalled
    # the quorum queues it led: no confirms for the 5 s publish timeout).
    "$bin/rabbitmqctl" -n "$(node_name 2)" eval "pong = net_adm:ping('$(node_name 3)')." > /dev/null
    start_haproxy
    urls
    ;;
  stop)
    if [ -f "$base/haproxy.pid" ]; then kill "$(cat "$base/haproxy.pid")" 2>/dev/null || true; fi
    for n in 3 2 1; do
      if node_running "$n"; then
        "$bin/rabbitmqctl" -n "$RABBITMQ_NODENAME" stop "$RABBITMQ_PID_FILE" > /dev/null 2>&1 || kill "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null || true
      fi
    done
    # The epmd started for this cluster's private port.
    epmd -port "$ERL_EPMD_PORT" -kill > /dev/null 2>&1 || true
    ;;
  kill)
    node_env "${2:?node number}"
    # The pid file, or the node's own word when it is missing (a second start of a running node removes it).
    pid="$(cat "$RABBITMQ_PID_FILE" 2>/dev/null || "$bin/rabbitmqctl" -n "$RABBITMQ_NODENAME" eval 'io:format("~s", [os:getpid()]).' 2>/dev/null | head -c 20)"
    kill -9 "${pid//[^0-9]/}"
    ;;
  revive)
    start_node "${2:?node number}"
    ;;
  restart)
    node_env "${2:?node number}"
    name="$RABBITMQ_NODENAME"
    "$bin/rabbitmq-upgrade" -n "$name" await_online_quorum_plus_one -t 300 > /dev/null
    "$bin/rabbitmq-upgrade" -n "$name" drain -t 300 > /dev/null
    "$bin/rabbitmqctl" -n "$name" stop "$RABBITMQ_PID_FILE" > /dev/null
    start_node "$2"
    "$bin/rabbitmq-upgrade" -n "$name" revive > /dev/null
    # Back in the cluster (all three running) with its quorum queue members online again.
    "$bin/rabbitmqctl" -n "$name" await_online_nodes 3 -t 300 > /dev/null
    "$bin/rabbitmq-upgrade" -n "$name" await_online_quorum_plus_one -t 300 > /dev/null
    ;;
  move-leader)
    queue="${2:?queue}"
    target="$(node_name "${3:?node number}")"
    for n in 1 2 3; do
      if node_running "$n"; then
        exec "$bin/rabbitmqctl" -n "$(node_name "$n")" eval \
          "{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<\"/\">>, queue, <<\"$queue\">>)), rabbit_quorum_queue:transfer_leadership(Q, '$target')."
      fi
    done
    echo "no node is running" >&2
    exit 1
    ;;
  ctl)
    n="${2:?node number}"
    shift 2
    exec "$bin/rabbitmqctl" -n "$(node_name "$n")" "$@"
    ;;
  *)
    echo "usage: $0 start|stop|kill N|revive N|restart N|move-leader QUEUE N|ctl N ARGS..." >&2
    exit 2
    ;;
esac
