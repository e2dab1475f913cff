#!/usr/bin/env bash
# Benchmark of `findemo generate` against PostgreSQL's own ceiling for the same write
# method, measured in the same run on the same table, plus peak memory and the
# accuracy of a paced rate.
#
#   bench/generate.sh [-c CONFIG] [--rows N] [--rounds N] [--method-rows N] [--rate N]
#                     [--rate-secs S] [--keep]
#
# It brings up its own stack, named findemo-bench (with CONFIG's images and ports; on
# a machine without a registry use -c tests/testbed/demo.yaml), and removes it at the
# end unless --keep. Each round (the order of 1 and 3 alternates between rounds):
#   1. times `findemo generate --rate max --count N` with the default write path (its
#      own measure: first batch to last commit; also wall time and peak RSS): binary
#      COPY into a temporary table, then INSERT ... SELECT, one WAL record per row;
#   2. copies the rows it wrote to a file inside the PostgreSQL container (binary COPY
#      TO), empties the table, and times the same method server-side: COPY that file
#      into a temporary table, then INSERT ... SELECT (timed by the server, no client,
#      no network): the default path's ceiling. Then the same for plain COPY FROM the
#      file into the table: COPY's ceiling;
#   3. times `generate` again with generator.write: copy (a copy of CONFIG with that
#      key), the same rows;
#   4. unless --method-rows 0, bench/write-methods.sh loads the first M rows (200,000)
#      each way a client could, in transactions of 10,000 rows: plain COPY, staged
#      COPY + INSERT ... SELECT, INSERT ... SELECT FROM unnest(arrays), multi-row
#      VALUES; rows/s and the heap WAL records each leaves (pg_walinspect).
# The ratios of each round and their medians are printed. Then one paced run (default
# path) reports achieved vs target rate. The whole pipeline (Debezium, ClickHouse)
# runs meanwhile, as it would for a user.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

config=demo.yaml
rows=1000000
rounds=3
method_rows=200000
rate=5000
rate_secs=60
keep=0
stack=findemo-bench
while [ $# -gt 0 ]; do
    case $1 in
        -c|--config) config=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --method-rows) method_rows=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --rate-secs) rate_secs=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

findemo=${FINDEMO:-target/release/findemo}
if [ -z "${FINDEMO:-}" ]; then
    cargo build --release --quiet
fi
# CONFIG with generator.write: copy (any write key of its generator section replaced),
# beside it so that relative paths in it still hold.
copy_config="$(dirname "$config")/.bench-copy-$$.yaml"
if grep -Eq '^generator:[[:space:]]*[^[:space:]#]' "$config"; then
    echo "bench: $config has a one-line generator section; write it as a block" >&2
    exit 2
fi
awk '
    /^generator:/ { print; print "  write: copy"; in_gen = 1; seen = 1; next }
    /^[^[:space:]#]/ { in_gen = 0 }
    in_gen && /^[[:space:]]+write:/ { next }
    { print }
    END { if (!seen) { print "generator:"; print "  write: copy" } }
' "$config" >"$copy_config"

fd() { "$findemo" -c "$config" --stack "$stack" "$@"; }
pg=$stack-postgres
# Inside the container, as the stack's user over the local socket.
psql_in() { docker exec -i "$pg" sh -c 'psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d financial "$@"' psql "$@"; }

calc() { awk "BEGIN { print $1 }"; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
peak_rss() { # the command's peak resident memory in MiB, from GNU time
    awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"
}
have_time=0
if /usr/bin/time -v true >/dev/null 2>&1; then have_time=1; fi

cleanup() {
    rm -f "$copy_config"
    if [ "$keep" = 0 ]; then fd -q reset --yes >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "bench: bringing up stack $stack ($config)" >&2
fd -q up >/dev/null
# Reference data once; it is not part of the measure.
fd -q generate --rate max --count 1 --seed 1 >/dev/null
docker exec -i "$pg" sh -c 'cat >/tmp/write-methods.sh' <bench/write-methods.sh

tmp=$(mktemp -d)
# generate ROUND CONFIG LABEL: empties the table, runs the generator, sets gen_rate,
# gen_secs, wall and rss.
generate() {
    local seed=$((1000 + $1))
    psql_in -c "TRUNCATE raw_transactions; DELETE FROM findemo_generator_progress" >/dev/null
    psql_in -c "CHECKPOINT" >/dev/null
    local start
    start=$(date +%s.%N)
    if [ "$have_time" = 1 ]; then
        /usr/bin/time -v -o "$tmp/time" "$findemo" -c "$2" --stack "$stack" -q \
            generate --rate max --count "$rows" --seed "$seed" >"$tmp/gen"
        rss=$(peak_rss "$tmp/time")
    else
        "$findemo" -c "$2" --stack "$stack" -q generate --rate max --count "$rows" --seed "$seed" >"$tmp/gen"
        rss="?"
    fi
    wall=$(calc "$(date +%s.%N) - $start")
    # "Seed S: wrote transactions 0..N in 12.3s: 81,234 rows/s (target max)."
    gen_secs=$(sed -n 's/.* in \([0-9.]*\)s: .*/\1/p' "$tmp/gen" | head -1)
    gen_rate=$(sed -n 's/.*s: \([0-9,]*\) rows\/s.*/\1/p' "$tmp/gen" | head -1 | tr -d ,)
    printf '  generate (%s): %s rows/s (%ss of batches, %.1fs wall, peak RSS %s MiB)\n' \
        "$3" "$gen_rate" "$gen_secs" "$wall" "$rss"
}
# server_ms SQL...: the server's summed statement times in ms (psql \timing).
server_ms() {
    local args=(-c '\timing on')
    local sql
    for sql in "$@"; do args+=(-c "$sql"); done
    psql_in "${args[@]}" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | awk '{ t += $1 } END { print t }'
}

r_default=() r_copy=() r_gen=() r_ceil=()
for round in $(seq 1 "$rounds"); do
    echo "round $round:"
    order="insert copy"
    if [ $((round % 2)) = 0 ]; then order="copy insert"; fi
    for method in $order; do
        if [ "$method" = insert ]; then
            generate "$round" "$config" "default: staged COPY + INSERT ... SELECT"
            ins_rate=$gen_rate
            # The rows just written, as a file the server can read.
            psql_in -c "COPY raw_transactions TO '/tmp/findemo-bench.copy' (FORMAT binary)" >/dev/null
            copied=$(psql_in -Atc "SELECT count(*) FROM raw_transactions")
        else
            generate "$round" "$copy_config" "generator.write: copy"
            copy_rate=$gen_rate
        fi
    done

    psql_in -c "TRUNCATE raw_transactions" -c "CHECKPOINT" >/dev/null
    ms=$(server_ms "CREATE TEMPORARY TABLE staging (LIKE raw_transactions)" \
        "COPY staging FROM '/tmp/findemo-bench.copy' (FORMAT binary)" \
        "INSERT INTO raw_transactions SELECT * FROM staging")
    # The CREATE is in the sum too: well under a millisecond.
    ceil_staged=$(calc "int($copied * 1000 / $ms)")
    psql_in -c "TRUNCATE raw_transactions" -c "CHECKPOINT" >/dev/null
    ms_copy=$(server_ms "COPY raw_transactions FROM '/tmp/findemo-bench.copy' (FORMAT binary)")
    ceil_copy=$(calc "int($copied * 1000 / $ms_copy)")
    printf '  server-side, same %s rows: staged COPY + INSERT ... SELECT %s rows/s (%.1fs) | COPY %s rows/s (%.1fs)\n' \
        "$copied" "$ceil_staged" "$(calc "$ms / 1000")" "$ceil_copy" "$(calc "$ms_copy / 1000")"

    r_default+=("$(calc "sprintf(\"%.2f\", $ins_rate / $ceil_staged)")")
    r_copy+=("$(calc "sprintf(\"%.2f\", $copy_rate / $ceil_copy)")")
    r_gen+=("$(calc "sprintf(\"%.2f\", $ins_rate / $copy_rate)")")
    r_ceil+=("$(calc "sprintf(\"%.2f\", $ceil_staged / $ceil_copy)")")
    printf '  ratios: default / its ceiling %s | copy / its ceiling %s | default / copy (generate) %s | staged / COPY (server) %s\n' \
        "${r_default[-1]}" "${r_copy[-1]}" "${r_gen[-1]}" "${r_ceil[-1]}"

    if [ "$method_rows" -gt 0 ]; then
        psql_in -c "TRUNCATE raw_transactions" -c "CHECKPOINT" >/dev/null
        psql_in -c "COPY raw_transactions FROM '/tmp/findemo-bench.copy' (FORMAT binary)" >/dev/null
        # Rotate the order between rounds, so that no method always runs first.
        methods="copy staged unnest values"
        for _ in $(seq 2 "$round"); do methods="${methods#* } ${methods%% *}"; done
        echo "  client-side, first $method_rows rows, transactions of 10,000 rows:"
        docker exec -e METHODS="$methods" -e PGOPTIONS="-c client_min_messages=warning" "$pg" sh -c \
            'PGUSER="$POSTGRES_USER" PGDATABASE=financial sh /tmp/write-methods.sh "$@"' sh \
            "$method_rows" 10000 /tmp/findemo-methods | sed 's/^/    /'
    fi
done
docker exec "$pg" rm -f /tmp/findemo-bench.copy /tmp/write-methods.sh
echo "medians: default / its ceiling $(median "${r_default[@]}") | copy / its ceiling $(median "${r_copy[@]}") | default / copy $(median "${r_gen[@]}") | staged / COPY server-side $(median "${r_ceil[@]}")"

if [ "$rate_secs" -gt 0 ]; then
    psql_in -c "TRUNCATE raw_transactions; DELETE FROM findemo_generator_progress" >/dev/null
    fd -q generate --rate "$rate" --duration "${rate_secs}s" --seed 2000 >"$tmp/rate"
    n=$(sed -n 's/.*wrote transactions [0-9,]*\.\.\([0-9,]*\) in.*/\1/p' "$tmp/rate" | tr -d ,)
    secs=$(sed -n 's/.* in \([0-9.]*\)s: .*/\1/p' "$tmp/rate")
    achieved=$(sed -n 's/.*s: \([0-9,]*\) rows\/s.*/\1/p' "$tmp/rate" | tr -d ,)
    off=$(calc "sprintf(\"%+.2f\", ($achieved - $rate) * 100 / $rate)")
    echo "paced: target $rate/s for ${rate_secs}s -> $n rows in ${secs}s = $achieved/s ($off% off target)"
fi
rm -rf "$tmp"
