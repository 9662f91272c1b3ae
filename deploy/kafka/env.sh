# Sourced by fetch.sh, start.sh and perf tooling: where the Kafka jars live and which version.
# NOCTUA_KAFKA_VERSION picks the broker version (see README.md for why this default);
# NOCTUA_KAFKA_HOME is the cache dir outside git holding libs/ (one dir per version).
NOCTUA_KAFKA_VERSION="${NOCTUA_KAFKA_VERSION:-4.4.0}"
NOCTUA_KAFKA_HOME="${NOCTUA_KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/noctua/kafka-$NOCTUA_KAFKA_VERSION}"
NOCTUA_KAFKA_LIBS="$NOCTUA_KAFKA_HOME/libs"
_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Kafka 3.x logs through reload4j (log4j 1 syntax), 4.x through log4j2: give each its own file.
KAFKA_LOG_OPTS="-Dlog4j.configuration=file:$_here/log4j.properties -Dlog4j2.configurationFile=$_here/log4j2.properties"
export NOCTUA_KAFKA_VERSION NOCTUA_KAFKA_HOME NOCTUA_KAFKA_LIBS KAFKA_LOG_OPTS
