#!/usr/bin/env bash
# Starts a single-node Apache Kafka broker in KRaft mode (broker + controller in one JVM), on
# 127.0.0.1, from the jars deploy/kafka/fetch.sh put in the cache. No Docker, no ZooKeeper.
#
#   deploy/kafka/start.sh [DATA_DIR] [PORT] [CONTROLLER_PORT]
#
# Defaults (also settable by environment): KAFKA_DATA_DIR=./data/kafka, KAFKA_PORT=9092,
# KAFKA_CONTROLLER_PORT=9093, KAFKA_HEAP_OPTS="-Xmx512m -Xms128m". The data dir is formatted on
# first start (a new cluster id) and reused afterwards, so a restart keeps topics, messages and
# committed offsets. The script execs java: stopping its pid (SIGTERM) stops the broker cleanly.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

data_dir="${1:-${KAFKA_DATA_DIR:-./data/kafka}}"
port="${2:-${KAFKA_PORT:-9092}}"
controller_port="${3:-${KAFKA_CONTROLLER_PORT:-9093}}"

if ! compgen -G "$NOCTUA_KAFKA_LIBS/kafka_2.13-*.jar" > /dev/null; then
  echo "start.sh: no Kafka jars in $NOCTUA_KAFKA_LIBS; run deploy/kafka/fetch.sh first (needs mvn and java)" >&2
  exit 2
fi
command -v java > /dev/null || { echo "start.sh: java not found (Kafka $NOCTUA_KAFKA_VERSION needs Java 17)" >&2; exit 2; }

mkdir -p "$data_dir/logs"
data_dir="$(cd "$data_dir" && pwd)"
props="$data_dir/server.properties"

# Rewritten on every start so new ports apply; the log dir (and its cluster id) is kept.
cat > "$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controller_port}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=${data_dir}/logs
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Topics are created by noctua (ensureTopics) with the partitions it wants; a typo must not create one.
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=168
log.segment.bytes=268435456
PROPS

if [ ! -f "$data_dir/logs/meta.properties" ]; then
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  echo "start.sh: formatting $data_dir/logs (cluster id $cluster_id, Kafka $NOCTUA_KAFKA_VERSION)" >&2
  # --cluster-id=VALUE, not "-t VALUE": a base64url id may start with '-' and read as an option.
  java -Xmx256m -cp "$NOCTUA_KAFKA_LIBS/*" $KAFKA_LOG_OPTS kafka.tools.StorageTool format "--cluster-id=$cluster_id" -c "$props" --ignore-formatted >&2
fi

echo "start.sh: Kafka $NOCTUA_KAFKA_VERSION on 127.0.0.1:$port (controller $controller_port), data in $data_dir" >&2
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms128m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
  $KAFKA_LOG_OPTS -Dkafka.logs.dir="$data_dir" ${KAFKA_JVM_OPTS:-} \
  -cp "$NOCTUA_KAFKA_LIBS/*" kafka.Kafka "$props"
