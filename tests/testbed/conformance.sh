#!/usr/bin/env bash
# The test-bed broker keeps Kafka's promises (tests/testbed/conformance.py says which),
# checked with librdkafka from the host through the broker's host listener, across a
# restart of its container with its data on a volume, as findemo runs it.
#
# Usage: bash tests/testbed/conformance.sh   (after build.sh; tests/test.sh runs it)
# TANSU_STORAGE_ENGINE=memory://tansu/ runs it on tansu's in-memory engine instead,
# which breaks promises 1 to 3.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE=${FINDEMO_TESTBED_CACHE:-/var/cache/findemo-testbed}
IMAGE=findemo-testbed/kafka:tansu-0.6.0
CONFLUENT_KAFKA_VERSION=2.16.1
NAME=findemo-conformance-$$
VENV="$CACHE/kafka-venv"

die() { echo "conformance.sh: error: $*" >&2; exit 1; }

if ! "$VENV/bin/python" -c "import confluent_kafka, sys; sys.exit(confluent_kafka.version() != '$CONFLUENT_KAFKA_VERSION')" 2>/dev/null; then
    echo "conformance.sh: installing confluent-kafka $CONFLUENT_KAFKA_VERSION into $VENV" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "confluent-kafka==$CONFLUENT_KAFKA_VERSION" || die "pip install confluent-kafka failed"
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    docker volume rm -f "$NAME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The same environment contract findemo gives apache/kafka.
docker run -d --name "$NAME" --hostname kafka -p "127.0.0.1:$port:$port" -v "$NAME:/var/lib/kafka/data" \
    -e KAFKA_LISTENERS="PLAINTEXT://:29092,CONTROLLER://:29093,PLAINTEXT_HOST://:$port" \
    -e KAFKA_ADVERTISED_LISTENERS="PLAINTEXT://kafka:29092,PLAINTEXT_HOST://localhost:$port" \
    -e KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER -e KAFKA_LOG_DIRS=/var/lib/kafka/data \
    -e CLUSTER_ID=conformanceAAAAAAAAAAA ${TANSU_STORAGE_ENGINE:+-e TANSU_STORAGE_ENGINE=$TANSU_STORAGE_ENGINE} \
    "$IMAGE" >/dev/null || die "cannot start $IMAGE"

wait_ready() {
    local deadline=$((SECONDS + 30))
    until python3 "$HERE/kafka_probe.py" 127.0.0.1 "$port" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            docker logs --tail 30 "$NAME" >&2 || true
            die "the broker did not answer on 127.0.0.1:$port within 30s"
        fi
        sleep 0.3
    done
}

status=0
wait_ready
"$VENV/bin/python" "$HERE/conformance.py" "localhost:$port" before || status=1
docker restart -t 10 "$NAME" >/dev/null
wait_ready
"$VENV/bin/python" "$HERE/conformance.py" "localhost:$port" after || status=1
if [ "$status" != 0 ]; then
    echo "---- broker log ----" >&2
    docker logs --tail 40 "$NAME" >&2 || true
    die "the test-bed broker broke a promise (above)"
fi
echo "conformance.sh: the test-bed broker keeps every checked promise"
