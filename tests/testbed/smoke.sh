#!/usr/bin/env bash
# End-to-end proof of the test-bed images: starts the four services on a user-defined
# network with the environment findemo passes to the official images, checks each one
# from the host, then runs Postgres -> Debezium -> Kafka (tansu) -> ClickHouse.
#
# Everything it creates is named tbtest-* and removed on exit (KEEP=1 keeps it).
# Ports (127.0.0.1): PG_PORT 15432, KAFKA_PORT 19092, CONNECT_PORT 18083,
# CH_HTTP_PORT 18123, CH_NATIVE_PORT 19000. Needs: docker, curl, psql, python3.
# Usage: bash tests/testbed/smoke.sh   (build the images first with build.sh)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PG_PORT=${PG_PORT:-15432}
KAFKA_PORT=${KAFKA_PORT:-19092}
CONNECT_PORT=${CONNECT_PORT:-18083}
CH_HTTP_PORT=${CH_HTTP_PORT:-18123}
CH_NATIVE_PORT=${CH_NATIVE_PORT:-19000}
ROWS=${ROWS:-1000}

NET=tbtest-net
PG_PASSWORD='pg pass'
CH_USER=findemo
CH_PASSWORD='ch-secret'
TOPIC=tbtest.public.transactions

IMG_POSTGRES=findemo-testbed/postgres:15
IMG_KAFKA=findemo-testbed/kafka:tansu-0.6.0
IMG_CONNECT=findemo-testbed/connect:debezium-3.1.1
IMG_CLICKHOUSE=findemo-testbed/clickhouse:18.16

CONTAINERS=(tbtest-postgres tbtest-kafka tbtest-connect tbtest-clickhouse)
VOLUMES=(tbtest-pg tbtest-kafka tbtest-connect tbtest-ch)

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
ok() { echo "smoke: ok: $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

cleanup() {
    local rc=$?
    if [ "${KEEP:-0}" = 1 ]; then echo "smoke: KEEP=1, leaving tbtest-* in place"; return; fi
    if [ "$rc" != 0 ]; then
        for c in "${CONTAINERS[@]}"; do
            echo "---- docker logs $c (tail) ----" >&2
            docker logs --tail 25 "$c" >&2 2>&1 || true
        done
    fi
    docker rm -f -v "${CONTAINERS[@]}" >/dev/null 2>&1 || true
    docker volume rm "${VOLUMES[@]}" >/dev/null 2>&1 || true
    docker network rm "$NET" >/dev/null 2>&1 || true
}
trap cleanup EXIT
KEEP_SAVED=${KEEP:-0}; KEEP=0; cleanup; KEEP=$KEEP_SAVED # leftovers of an earlier run

for img in "$IMG_POSTGRES" "$IMG_KAFKA" "$IMG_CONNECT" "$IMG_CLICKHOUSE"; do
    docker image inspect "$img" >/dev/null 2>&1 || fail "image $img missing: run tests/testbed/build.sh"
done

docker network create "$NET" >/dev/null
for v in "${VOLUMES[@]}"; do docker volume create "$v" >/dev/null; done

pg() { PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U findemo -d findemo -v ON_ERROR_STOP=1 -Atq "$@"; }
ch() { # ch SQL: over HTTP with basic auth as the configured user
    curl -sS --fail-with-body -u "$CH_USER:$CH_PASSWORD" --data-binary "$1" "http://127.0.0.1:$CH_HTTP_PORT/"
}

# ---------------------------------------------------------------- start ---
T0=$(now)
docker run -d --name tbtest-postgres --network "$NET" --network-alias postgres --hostname postgres \
    -p "127.0.0.1:$PG_PORT:5432" --shm-size=128m -v tbtest-pg:/var/lib/postgresql \
    -e POSTGRES_USER=findemo -e POSTGRES_PASSWORD="$PG_PASSWORD" -e POSTGRES_DB=findemo \
    "$IMG_POSTGRES" postgres -c wal_level=logical -c max_wal_senders=10 -c max_replication_slots=10 >/dev/null

docker run -d --name tbtest-kafka --network "$NET" --network-alias kafka --hostname kafka \
    -p "127.0.0.1:$KAFKA_PORT:$KAFKA_PORT" -v tbtest-kafka:/var/lib/kafka/data \
    -e KAFKA_NODE_ID=1 -e KAFKA_PROCESS_ROLES=broker,controller \
    -e KAFKA_LISTENERS="PLAINTEXT://:29092,CONTROLLER://:29093,PLAINTEXT_HOST://:$KAFKA_PORT" \
    -e KAFKA_ADVERTISED_LISTENERS="PLAINTEXT://kafka:29092,PLAINTEXT_HOST://localhost:$KAFKA_PORT" \
    -e KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT \
    -e KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER -e KAFKA_CONTROLLER_QUORUM_VOTERS=1@kafka:29093 \
    -e KAFKA_INTER_BROKER_LISTENER_NAME=PLAINTEXT -e CLUSTER_ID=MkU3OEVBNTcwNTJENDM2Qk \
    -e KAFKA_LOG_DIRS=/var/lib/kafka/data -e KAFKA_HEAP_OPTS="-Xms256m -Xmx512m" \
    -e KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1 -e KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR=1 \
    -e KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=1 -e KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS=0 \
    "$IMG_KAFKA" >/dev/null

docker run -d --name tbtest-clickhouse --network "$NET" --network-alias clickhouse --hostname clickhouse \
    -p "127.0.0.1:$CH_HTTP_PORT:8123" -p "127.0.0.1:$CH_NATIVE_PORT:9000" -v tbtest-ch:/var/lib/clickhouse \
    -e CLICKHOUSE_USER="$CH_USER" -e CLICKHOUSE_PASSWORD="$CH_PASSWORD" -e CLICKHOUSE_DB=findemo \
    -e CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1 \
    "$IMG_CLICKHOUSE" >/dev/null

docker run -d --name tbtest-connect --network "$NET" --network-alias connect --hostname connect \
    -p "127.0.0.1:$CONNECT_PORT:8083" -v tbtest-connect:/kafka/data \
    -e BOOTSTRAP_SERVERS=kafka:29092 -e GROUP_ID=findemo-connect \
    -e CONFIG_STORAGE_TOPIC=findemo_connect_configs -e OFFSET_STORAGE_TOPIC=findemo_connect_offsets \
    -e STATUS_STORAGE_TOPIC=findemo_connect_statuses \
    -e KEY_CONVERTER=org.apache.kafka.connect.json.JsonConverter \
    -e VALUE_CONVERTER=org.apache.kafka.connect.json.JsonConverter \
    -e CONNECT_KEY_CONVERTER_SCHEMAS_ENABLE=false -e CONNECT_VALUE_CONVERTER_SCHEMAS_ENABLE=false \
    -e CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR=1 -e CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR=1 \
    -e CONNECT_STATUS_STORAGE_REPLICATION_FACTOR=1 -e OFFSET_FLUSH_INTERVAL_MS=5000 \
    -e HEAP_OPTS="-Xms128m -Xmx768m" \
    "$IMG_CONNECT" >/dev/null
echo "smoke: 4 containers started in $(since "$T0")s"

# ----------------------------------------------------------- readiness ---
wait_for() { # wait_for NAME SECONDS CMD...
    local name=$1 secs=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$name not ready within ${secs}s"
        sleep 0.1
    done
    echo "smoke: ready: $name at $(since "$T0")s after docker run"
}
ch_ping() { [ "$(curl -s "http://127.0.0.1:$CH_HTTP_PORT/ping")" = "Ok." ]; }
connect_ready() {
    curl -s "http://127.0.0.1:$CONNECT_PORT/connector-plugins" | grep -q 'io.debezium.connector.postgresql.PostgresConnector'
}
wait_for clickhouse 30 ch_ping
wait_for kafka 30 python3 "$HERE/kafka_probe.py" 127.0.0.1 "$KAFKA_PORT"
wait_for postgres 60 pg -c 'SELECT 1'
wait_for connect 120 connect_ready

# --------------------------------------------------------- per service ---
[ "$(pg -c 'SHOW wal_level')" = logical ] || fail "wal_level is not logical"
ok "postgres: psql with password, wal_level=$(pg -c 'SHOW wal_level'), $(pg -c 'SELECT version()' | cut -d' ' -f1-2)"
if PGPASSWORD=wrong psql -h 127.0.0.1 -p "$PG_PORT" -U findemo -d findemo -c 'SELECT 1' >/dev/null 2>&1; then
    fail "postgres accepted a wrong password"
fi
ok "postgres: wrong password refused"

ok "kafka: $(python3 "$HERE/kafka_probe.py" 127.0.0.1 "$KAFKA_PORT")"

plugins=$(curl -s "http://127.0.0.1:$CONNECT_PORT/connector-plugins")
ok "connect: $(echo "$plugins" | python3 -c 'import json,sys; print([p["class"]+" "+p["version"] for p in json.load(sys.stdin) if "postgres" in p["class"].lower()])')"
ok "connect: GET / -> $(curl -s "http://127.0.0.1:$CONNECT_PORT/")"

ok "clickhouse: /ping -> $(curl -s "http://127.0.0.1:$CH_HTTP_PORT/ping")"
ok "clickhouse: SELECT version() as $CH_USER -> $(ch 'SELECT version()')"
ok "clickhouse: X-ClickHouse-User/Key -> $(curl -sS -H "X-ClickHouse-User: $CH_USER" -H "X-ClickHouse-Key: $CH_PASSWORD" \
    --data-binary 'SELECT 1' "http://127.0.0.1:$CH_HTTP_PORT/")"
if curl -sf --data-binary 'SELECT 1' "http://127.0.0.1:$CH_HTTP_PORT/" >/dev/null; then
    fail "clickhouse: the default user was accepted from outside"
fi
ok "clickhouse: default user refused from outside: $(curl -s --data-binary 'SELECT 1' "http://127.0.0.1:$CH_HTTP_PORT/" | cut -c1-90)"
[ "$(ch "SELECT count() FROM system.databases WHERE name = 'findemo'")" = 1 ] \
    || fail "clickhouse: database findemo missing"
ok "clickhouse: database findemo exists"

# ---------------------------------------------------------- end to end ---
CONNECTOR_JSON=$(cat <<EOF
{
  "name": "tbtest-pg",
  "config": {
    "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
    "plugin.name": "pgoutput",
    "database.hostname": "postgres",
    "database.port": "5432",
    "database.user": "findemo",
    "database.password": "$PG_PASSWORD",
    "database.dbname": "findemo",
    "topic.prefix": "tbtest",
    "table.include.list": "public.transactions",
    "slot.name": "tbtest_slot",
    "publication.name": "tbtest_pub",
    "decimal.handling.mode": "string",
    "key.converter": "org.apache.kafka.connect.json.JsonConverter",
    "key.converter.schemas.enable": "false",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter.schemas.enable": "false",
    "transforms": "unwrap",
    "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
    "transforms.unwrap.add.fields": "op,source.ts_ms",
    "transforms.unwrap.delete.tombstone.handling.mode": "rewrite",
    "topic.creation.default.replication.factor": "1",
    "topic.creation.default.partitions": "1"
  }
}
EOF
)
T1=$(now)
code=$(curl -s -o /tmp/tbtest-connector.out -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data "$CONNECTOR_JSON" "http://127.0.0.1:$CONNECT_PORT/connectors")
[ "$code" = 201 ] || fail "POST /connectors -> $code: $(cat /tmp/tbtest-connector.out)"
connector_running() {
    curl -s "http://127.0.0.1:$CONNECT_PORT/connectors/tbtest-pg/status" \
        | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["connector"]["state"]=="RUNNING" and s["tasks"] and all(t["state"]=="RUNNING" for t in s["tasks"]) else 1)'
}
wait_for "connector+task RUNNING" 60 connector_running
ok "connector tbtest-pg RUNNING $(since "$T1")s after POST"

pg <<'SQL'
CREATE TABLE transactions (
    transaction_id uuid PRIMARY KEY,
    user_id integer NOT NULL,
    amount numeric(12,2) NOT NULL,
    currency text NOT NULL,
    created_at timestamp NOT NULL,
    booked_on date NOT NULL
);
ALTER TABLE transactions REPLICA IDENTITY FULL;
SQL

ch "CREATE TABLE findemo.transactions_queue (
    transaction_id String, user_id Int32, amount String, currency String,
    created_at Int64, booked_on Int32, __deleted String, __op String, __source_ts_ms UInt64
) ENGINE = Kafka SETTINGS kafka_broker_list = 'kafka:29092', kafka_topic_list = '$TOPIC',
    kafka_group_name = 'tbtest_clickhouse', kafka_format = 'JSONEachRow'"
ch "CREATE TABLE findemo.transactions (
    transaction_id String, user_id Int32, amount Decimal(12,2), currency String,
    created_at DateTime, booked_on Date, deleted UInt8, op String, version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY transaction_id"
ch "CREATE MATERIALIZED VIEW findemo.transactions_mv TO findemo.transactions AS
SELECT transaction_id, user_id, CAST(amount AS Decimal(12,2)) AS amount, currency,
    toDateTime(intDiv(created_at, 1000000)) AS created_at, toDate(booked_on) AS booked_on,
    __deleted = 'true' AS deleted, __op AS op, __source_ts_ms AS version
FROM findemo.transactions_queue"
# The raw messages too. 18.16 has no JSONAsString; a one-column TSV table keeps each
# message whole, but needs kafka_row_delimiter (messages carry no trailing newline;
# JSONEachRow copes without it). An MV on 18.16 must give every column of its TO table.
ch "CREATE TABLE findemo.raw_queue (raw String) ENGINE = Kafka SETTINGS kafka_broker_list = 'kafka:29092',
    kafka_topic_list = '$TOPIC', kafka_group_name = 'tbtest_raw', kafka_format = 'TSV',
    kafka_row_delimiter = '\n'"
ch "CREATE TABLE findemo.raw_events (raw String, at DateTime) ENGINE = MergeTree ORDER BY at"
ch "CREATE MATERIALIZED VIEW findemo.raw_mv TO findemo.raw_events AS SELECT raw, now() AS at FROM findemo.raw_queue"
ok "clickhouse: Kafka engine table + MV + ReplacingMergeTree created"

T2=$(now)
pg <<SQL
INSERT INTO transactions
SELECT md5('tx' || g)::uuid, g % 97, round((g * 1.37)::numeric, 2), (ARRAY['EUR','USD','GBP'])[1 + g % 3],
       timestamp '2024-05-01 10:00:00.123456' + g * interval '1 minute', date '2024-05-01' + (g % 30)
FROM generate_series(1, $ROWS) g;
UPDATE transactions SET amount = amount + 1000 WHERE user_id = 1;
DELETE FROM transactions WHERE user_id = 2;
SQL
echo "smoke: wrote $ROWS inserts, $(pg -c 'SELECT count(*) FROM transactions WHERE user_id = 1') updates, some deletes in $(since "$T2")s"
expected=$(pg -c "SELECT count(*) || ' ' || sum(amount) FROM transactions")
T3=$(now)
got=""
ch_agrees() {
    got=$(ch "SELECT toString(count()) || ' ' || toString(sum(amount)) FROM findemo.transactions FINAL WHERE deleted = 0")
    [ "$got" = "$expected" ]
}
deadline=$((SECONDS + 90))
until ch_agrees; do
    [ "$SECONDS" -lt "$deadline" ] || fail "clickhouse has '$got', postgres '$expected' after 90 s"
    sleep 0.2
done
ok "end to end: ClickHouse agrees with PostgreSQL (count sum = $expected) $(since "$T3")s after the last write"

echo "---- raw change events on $TOPIC (one of each op) ----"
for op in c u d; do
    ev=""
    deadline=$((SECONDS + 30))
    until [ -n "$ev" ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "no raw '$op' event in findemo.raw_events"
        ev=$(ch "SELECT raw FROM findemo.raw_events WHERE position(raw, '\"__op\":\"$op\"') > 0 LIMIT 1 FORMAT TSVRaw")
        [ -n "$ev" ] || sleep 0.2
    done
    echo "$ev"
done
echo "raw messages: $(ch 'SELECT count() FROM findemo.raw_events') (of which empty or null: $(ch "SELECT count() FROM findemo.raw_events WHERE raw IN ('', 'null')"))"
echo "---- the same rows in ClickHouse ----"
ch "SELECT * FROM findemo.transactions WHERE op IN ('u', 'd') ORDER BY op LIMIT 1 BY op FORMAT JSONEachRow"

# ------------------------------------------------------------- numbers ---
echo "---- image sizes ----"
docker images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep '^findemo-testbed/'
echo "---- docker stats ----"
docker stats --no-stream --format '{{.Name}}\t{{.MemUsage}}\t{{.CPUPerc}}' "${CONTAINERS[@]}"
echo "smoke: all checks passed"
