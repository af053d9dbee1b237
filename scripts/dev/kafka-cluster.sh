#!/usr/bin/env bash
# Three Apache Kafka 4.x brokers in KRaft on loopback, each a combined
# broker+controller with its own node.id, ports and log dir, one cluster id
# and a static controller quorum: the replicated cluster of the fault rows
# (test/faults/kafka-cluster.test.ts). Jars from scripts/dev/kafka.sh.
#
#   scripts/dev/kafka-cluster.sh start     # prints host:port,host:port,host:port on its last line
#   scripts/dev/kafka-cluster.sh stop
#   scripts/dev/kafka-cluster.sh kill N [SIGNAL]   # node N (1-3), SIGKILL unless SIGNAL is given; waits until it is gone
#
# `start` formats a fresh cluster when no node runs; when some do, it starts
# the others with their data kept (a broker restart). It returns once every
# node listens (test/global-setup.ts then waits until all three are registered). KUEUER_KAFKA_CLUSTER_PORT (default 29101): client
# ports PORT..PORT+2, controller ports PORT+10..PORT+12 (below 32768, clear of
# scripts/dev/kafka.sh's 29092-29093); KUEUER_KAFKA_CLUSTER_DIR the data;
# KUEUER_KAFKA_CLUSTER_HOST (default 127.0.0.1) the address the client
# listeners bind and advertise (test/node/replicated-node.test.ts uses the node
# bridge's, which pods reach; the controllers stay on loopback).
#
# Everything that times a failover is Kafka's default, as users run it:
# broker.session.timeout.ms 9 s and broker.heartbeat.interval.ms 2 s (a dead
# broker is fenced, and its partitions get new leaders, 7-9 s after its last
# heartbeat), the KRaft quorum's election and fetch timeouts and
# replica.lag.time.max.ms. Three settings are not: 6 partitions each of
# __consumer_offsets and __transaction_state (50 by default) and
# group.initial.rebalance.delay.ms 0 (3 s). With the defaults, a fresh
# cluster's first group join took over 5 s (50 x 3 replicas created, then
# the delay), which the tests do not wait for: the first fault row on a
# fresh cluster got 503 for all 300 (the responder's reply inbox not ready
# yet) and test/node/replicated-node.test.ts's warm-up lost 4 of 12 (2026-12-07).
# The SIGKILL rows' failover times measured with the defaults are in
# docs/kafka.md "What a SIGKILL costs, step by step".
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
port="${KUEUER_KAFKA_CLUSTER_PORT:-29101}"
host="${KUEUER_KAFKA_CLUSTER_HOST:-127.0.0.1}"
base="${KUEUER_KAFKA_CLUSTER_DIR:-$root/.cache/kafka-cluster-$port}"
nodes=(1 2 3)
client_port() { echo $((port + $1 - 1)); }
controller_port() { echo $((port + 10 + $1 - 1)); }
pid_of() { cat "$base/node-$1/kafka.pid" 2>/dev/null || true; }
running() {
  local pid
  pid="$(pid_of "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}
listening() { (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }

write_config() {
  local n="$1" dir="$base/node-$1" voters=""
  for v in "${nodes[@]}"; do voters="${voters:+$voters,}$v@127.0.0.1:$(controller_port "$v")"; done
  mkdir -p "$dir/logs"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://$host:$(client_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")
advertised.listeners=PLAINTEXT://$host:$(client_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=6
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
PROPS
}

start_node() {
  local n="$1" dir="$base/node-$1"
  : > "$dir/logs/server.log"
  nohup java -Xms256m -Xmx512m -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
    > "$dir/logs/server.log" 2>&1 &
  echo $! > "$dir/kafka.pid"
}

case "${1:-}" in
  start)
    libs="$(bash "$root/scripts/dev/kafka.sh" libs | tail -1)"
    any=false
    for n in "${nodes[@]}"; do running "$n" && any=true; done
    if [ "$any" = false ]; then
      for n in "${nodes[@]}"; do
        for p in "$(client_port "$n")" "$(controller_port "$n")"; do
          if listening "$p"; then echo "port $p is already taken (a Kafka cluster from another checkout?); stop it or set KUEUER_KAFKA_CLUSTER_PORT" >&2; exit 1; fi
        done
      done
      rm -rf "$base"
      mkdir -p "$base"
      cluster_id="$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
      for n in "${nodes[@]}"; do
        write_config "$n"
        java -cp "$libs/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$base/node-$n/server.properties" > "$base/node-$n/logs/format.log" 2>&1 \
          || { echo "formatting node $n failed:" >&2; cat "$base/node-$n/logs/format.log" >&2; exit 1; }
      done
    fi
    started=()
    for n in "${nodes[@]}"; do
      if ! running "$n"; then start_node "$n"; started+=("$n"); fi
    done
    for n in "${started[@]}"; do
      log="$base/node-$n/logs/server.log"
      for _ in $(seq 1 240); do
        listening "$(client_port "$n")" "$host" && break
        if ! running "$n"; then echo "Kafka node $n exited while starting; its log:" >&2; tail -n 40 "$log" >&2; exit 1; fi
        sleep 0.5
      done
      listening "$(client_port "$n")" "$host" || { echo "Kafka node $n did not listen on $(client_port "$n") within 120 s" >&2; tail -n 40 "$log" >&2; exit 1; }
    done
    echo "$host:$(client_port 1),$host:$(client_port 2),$host:$(client_port 3)"
    ;;
  kill)
    n="${2:?usage: $0 kill N [SIGNAL]}"
    pid="$(pid_of "$n")"
    if running "$n"; then
      kill "-${3:-KILL}" "$pid"
      for _ in $(seq 1 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      if kill -0 "$pid" 2>/dev/null; then echo "Kafka node $n (pid $pid) did not exit" >&2; exit 1; fi
    fi
    ;;
  stop)
    for n in "${nodes[@]}"; do if running "$n"; then kill "$(pid_of "$n")" 2>/dev/null || true; fi; done
    for n in "${nodes[@]}"; do
      pid="$(pid_of "$n")"
      [ -n "$pid" ] || continue
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$base/node-$n/kafka.pid"
    done
    ;;
  *)
    echo "usage: $0 start|stop|kill N [SIGNAL]" >&2
    exit 2
    ;;
esac
