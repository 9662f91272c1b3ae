#!/usr/bin/env bash
# Puts Apache Kafka's broker and perf-tool jars (deploy/kafka/pom.xml) into a cache dir outside git:
# $NOCTUA_KAFKA_HOME/libs (default ~/.cache/noctua/kafka-<version>/libs). Idempotent: does
# nothing when the jars are already there. Needs mvn and Java 17; only Maven Central is used.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

stamp="$NOCTUA_KAFKA_HOME/.complete"
if [ -f "$stamp" ] && compgen -G "$NOCTUA_KAFKA_LIBS/kafka_2.13-$NOCTUA_KAFKA_VERSION.jar" > /dev/null; then
  echo "[kafka] Kafka $NOCTUA_KAFKA_VERSION jars present in $NOCTUA_KAFKA_LIBS" >&2
  exit 0
fi

if ! command -v mvn > /dev/null || ! command -v java > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "[kafka] installing maven and a Java 17 runtime (apt-get)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends maven openjdk-17-jre-headless >&2
  else
    echo "[kafka] need mvn and java (17+): apt-get install maven openjdk-17-jre-headless" >&2
    exit 2
  fi
fi

echo "[kafka] resolving org.apache.kafka:kafka_2.13 and kafka-tools $NOCTUA_KAFKA_VERSION into $NOCTUA_KAFKA_LIBS (about 55 MB, first time only)" >&2
mkdir -p "$NOCTUA_KAFKA_LIBS"
# A partial earlier run may have left some jars: copy-dependencies overwrites, so just rerun.
mvn -q -B -f "$here/pom.xml" -Dkafka.version="$NOCTUA_KAFKA_VERSION" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$NOCTUA_KAFKA_LIBS" >&2
# Kafka 4.x ships log4j2 but its pom brings no SLF4J binding (the release tarball adds one): without
# it the broker logs nothing at all, not even why it failed to start. Match the log4j-core version.
if ! compgen -G "$NOCTUA_KAFKA_LIBS/slf4j-reload4j-*.jar" > /dev/null && ! compgen -G "$NOCTUA_KAFKA_LIBS/log4j-slf4j-impl-*.jar" > /dev/null; then
  core="$(find "$NOCTUA_KAFKA_LIBS" -name 'log4j-core-*.jar' | head -1 | sed 's/.*log4j-core-\(.*\)\.jar/\1/')"
  if [ -n "$core" ]; then
    echo "[kafka] adding the SLF4J binding log4j-slf4j-impl $core" >&2
    mvn -q -B -f "$here/pom.xml" dependency:copy -Dartifact="org.apache.logging.log4j:log4j-slf4j-impl:$core" -DoutputDirectory="$NOCTUA_KAFKA_LIBS" >&2
  fi
fi
n="$(find "$NOCTUA_KAFKA_LIBS" -name '*.jar' | wc -l)"
if ! compgen -G "$NOCTUA_KAFKA_LIBS/kafka_2.13-$NOCTUA_KAFKA_VERSION.jar" > /dev/null; then
  echo "[kafka] mvn finished but kafka_2.13-$NOCTUA_KAFKA_VERSION.jar is missing from $NOCTUA_KAFKA_LIBS" >&2
  exit 1
fi
date -u +%FT%TZ > "$stamp"
echo "[kafka] $n jars ready in $NOCTUA_KAFKA_LIBS" >&2
