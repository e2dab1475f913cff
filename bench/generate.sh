#!/usr/bin/env bash
# Benchmark of `findemo generate` against PostgreSQL's own COPY ceiling, measured in
# the same run on the same table, plus peak memory and the accuracy of a paced rate.
#
#   bench/generate.sh [-c CONFIG] [--rows N] [--rounds N] [--rate N] [--rate-secs S] [--keep]
#
# It brings up its own stack, named findemo-bench (with CONFIG's images and ports; on
# a machine without a registry use -c tests/testbed/demo.yaml), and removes it at the
# end unless --keep. Each round:
#   1. empties raw_transactions, then times `findemo generate --rate max --count N`
#      (its own measure: first batch to last commit; also wall time and peak RSS);
#   2. copies the rows it wrote to a file inside the PostgreSQL container (binary
#      COPY TO), empties the table, and times a server-side `COPY ... FROM` that file:
#      the same rows into the same table with no client and no network, the ceiling.
# Rounds alternate the two measures so that a noisy machine affects both alike; the
# ratio of each round and the median are printed. Then one paced run reports achieved
# vs target rate. The whole pipeline (Debezium, ClickHouse) runs meanwhile, as it
# would for a user.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

config=demo.yaml
rows=1000000
rounds=3
rate=5000
rate_secs=60
keep=0
stack=findemo-bench
while [ $# -gt 0 ]; do
    case $1 in
        -c|--config) config=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --rate-secs) rate_secs=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

findemo=${FINDEMO:-target/release/findemo}
if [ -z "${FINDEMO:-}" ]; then
    cargo build --release --quiet
fi
fd() { "$findemo" -c "$config" --stack "$stack" "$@"; }
pg=$stack-postgres
# Inside the container, as the stack's user over the local socket.
psql_in() { docker exec -i "$pg" sh -c 'psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d financial "$@"' psql "$@"; }

calc() { awk "BEGIN { print $1 }"; }
peak_rss() { # the command's peak resident memory in MiB, from GNU time
    awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"
}
have_time=0
if /usr/bin/time -v true >/dev/null 2>&1; then have_time=1; fi

cleanup() {
    if [ "$keep" = 0 ]; then fd -q reset --yes >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "bench: bringing up stack $stack ($config)" >&2
fd -q up >/dev/null
# Reference data once; it is not part of the measure.
fd -q generate --rate max --count 1 --seed 1 >/dev/null

tmp=$(mktemp -d)
ratios=()
for round in $(seq 1 "$rounds"); do
    seed=$((1000 + round))
    psql_in -c "TRUNCATE raw_transactions; DELETE FROM findemo_generator_progress" >/dev/null
    psql_in -c "CHECKPOINT" >/dev/null
    start=$(date +%s.%N)
    if [ "$have_time" = 1 ]; then
        /usr/bin/time -v -o "$tmp/time" "$findemo" -c "$config" --stack "$stack" -q \
            generate --rate max --count "$rows" --seed "$seed" >"$tmp/gen"
        rss=$(peak_rss "$tmp/time")
    else
        fd -q generate --rate max --count "$rows" --seed "$seed" >"$tmp/gen"
        rss="?"
    fi
    wall=$(calc "$(date +%s.%N) - $start")
    # "Seed S: wrote transactions 0..N in 12.3s: 81,234 rows/s (target max)."
    gen_secs=$(sed -n 's/.* in \([0-9.]*\)s: .*/\1/p' "$tmp/gen" | head -1)
    gen_rate=$(sed -n 's/.*s: \([0-9,]*\) rows\/s.*/\1/p' "$tmp/gen" | head -1 | tr -d ,)

    psql_in -c "COPY raw_transactions TO '/tmp/findemo-bench.copy' (FORMAT binary)" >/dev/null
    copied=$(psql_in -Atc "SELECT count(*) FROM raw_transactions")
    psql_in -c "TRUNCATE raw_transactions" >/dev/null
    psql_in -c "CHECKPOINT" >/dev/null
    ms=$(psql_in -c '\timing on' -c "COPY raw_transactions FROM '/tmp/findemo-bench.copy' (FORMAT binary)" \
        | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
    ceiling=$(calc "int($copied * 1000 / $ms)")
    ratio=$(calc "sprintf(\"%.2f\", $gen_rate / $ceiling)")
    ratios+=("$ratio")
    printf 'round %d: generate %s rows/s (%ss of COPY batches, %.1fs wall, peak RSS %s MiB) | server-side COPY %s rows/s (%s rows in %.1fs) | ratio %s\n' \
        "$round" "$gen_rate" "$gen_secs" "$wall" "$rss" "$ceiling" "$copied" "$(calc "$ms / 1000")" "$ratio"
done
docker exec "$pg" rm -f /tmp/findemo-bench.copy
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "median ratio generate / COPY ceiling: $median (target >= 0.75)"

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
