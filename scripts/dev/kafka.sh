#!/usr/bin/env bash
# A single-node Apache Kafka 4.x broker (KRaft, broker+controller in one
# process) on loopback, for tests and benchmarks. The broker's jars and their
# runtime dependencies are resolved from Maven Central with mvn and cached in
# .cache/kafka/<version>/libs; every start formats a fresh log dir.
#
#   scripts/dev/kafka.sh start   # prints host:port on its last line
#   scripts/dev/kafka.sh stop
#   scripts/dev/kafka.sh libs    # fetches the jars, prints their directory (scripts/dev/kafka-cluster.sh)
# KUEUER_KAFKA_PORT (default 29092) and KUEUER_KAFKA_DIR select another node;
# KUEUER_KAFKA_HOST (default 127.0.0.1) is the address its client listener binds
# and advertises (the real-node tests use the node bridge's, which pods reach).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
version="${KUEUER_KAFKA_VERSION:-4.1.1}"
port="${KUEUER_KAFKA_PORT:-29092}"
host="${KUEUER_KAFKA_HOST:-127.0.0.1}"
controller_port="$((port + 1))"
libs="$root/.cache/kafka/$version/libs"
base="${KUEUER_KAFKA_DIR:-$root/.cache/kafka/node-$port}"
pidfile="$base/kafka.pid"

fetch_jars() {
  [ -f "$libs/.complete" ] && return 0
  command -v mvn >/dev/null || { echo "mvn is needed to fetch the Kafka jars" >&2; exit 1; }
  command -v java >/dev/null || { echo "java (17+) is needed to run Kafka" >&2; exit 1; }
  echo "fetching Kafka $version and its dependencies from Maven Central (first run only)" >&2
  local work="$root/.cache/kafka/$version/pom"
  mkdir -p "$work" "$libs"
  cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.kueuer</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>2.0.17</version></dependency>
  </dependencies>
</project>
POM
  (cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" >&2)
  # Kafka 4 brings log4j2's slf4j binding; keep one binding so slf4j does not complain.
  rm -f "$libs"/log4j-slf4j2-impl-*.jar
  touch "$libs/.complete"
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

case "${1:-}" in
  start)
    fetch_jars
    if ! running; then
      if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
        echo "port $port is already taken (another Kafka broker, perhaps from another checkout); stop it or set KUEUER_KAFKA_PORT" >&2
        exit 1
      fi
      rm -rf "$base"
      mkdir -p "$base/logs"
      cat > "$base/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=PLAINTEXT://$host:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://$host:$port,CONTROLLER://127.0.0.1:$controller_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$base/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
PROPS
      cp=("-cp" "$libs/*")
      java_opts=(-Xms256m -Xmx768m -XX:+UseG1GC -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info)
      cluster_id="$(java "${cp[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
      java "${cp[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$base/server.properties" > "$base/logs/format.log" 2>&1 \
        || { echo "formatting Kafka storage failed:" >&2; cat "$base/logs/format.log" >&2; exit 1; }
      nohup java "${java_opts[@]}" "${cp[@]}" kafka.Kafka "$base/server.properties" > "$base/logs/server.log" 2>&1 &
      echo $! > "$pidfile"
      for _ in $(seq 1 120); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then break; fi
        if ! running; then echo "Kafka exited while starting; its log:" >&2; tail -n 40 "$base/logs/server.log" >&2; exit 1; fi
        sleep 0.5
      done
      (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null || { echo "Kafka did not listen on $port within 60 s" >&2; tail -n 40 "$base/logs/server.log" >&2; exit 1; }
    fi
    echo "$host:$port"
    ;;
  stop)
    if running; then
      pid="$(cat "$pidfile")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    ;;
  libs)
    fetch_jars
    echo "$libs"
    ;;
  *)
    echo "usage: $0 start|stop|libs" >&2
    exit 2
    ;;
esac
