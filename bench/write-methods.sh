#!/bin/sh
# Ways to load the same rows into raw_transactions, timed in one run on one table:
# which keeps every row in its own WAL record (what Debezium needs to resume exactly
# after a Kafka Connect restart), and at what cost against plain COPY.
#
#   write-methods.sh ROWS BATCH DIR
#
# Runs where psql reaches the server over the local socket and both see DIR (inside
# the PostgreSQL container: bench/generate.sh copies it there; PGUSER and PGDATABASE
# say who and where). Takes the first ROWS rows of raw_transactions as they are now,
# then for each method empties the table, checkpoints and runs one psql script that
# sends the rows in transactions of BATCH rows, as a client would:
#   copy    binary COPY into the table (multi-insert WAL records: many rows, one LSN)
#   staged  binary COPY into a temporary table, INSERT ... SELECT from it (findemo's
#           default)
#   unnest  INSERT ... SELECT FROM unnest(one array per column), arrays as text
#   values  INSERT ... VALUES with BATCH rows, literals as text
# Prints, per method: rows/s, and the heap WAL records of raw_transactions per kind
# (pg_walinspect, when it can be created). Leaves raw_transactions holding the rows.
set -eu
rows=$1
batch=$2
dir=$3
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
cols='transaction_id, account_id, "timestamp", amount, currency, merchant_id, status, ip, device_id'

rm -rf "$dir"
mkdir -p "$dir"
chmod 777 "$dir"
# An unlogged helper table outside the CDC publication, numbered for batching.
psql -c "DROP TABLE IF EXISTS findemo_bench_rows" \
    -c "CREATE UNLOGGED TABLE findemo_bench_rows AS
        SELECT row_number() OVER () - 1 AS n, $cols FROM (SELECT * FROM raw_transactions LIMIT $rows) t" \
    -c "CREATE INDEX ON findemo_bench_rows (n)"
total=$(psql -At -c "SELECT count(*) FROM findemo_bench_rows")
batches=$(( (total + batch - 1) / batch ))

# Binary batch files, written by the server.
psql -c "DO \$\$ BEGIN FOR b IN 0..$batches - 1 LOOP
    EXECUTE format('COPY (SELECT $cols FROM findemo_bench_rows WHERE n >= %s AND n < %s ORDER BY n) TO %L (FORMAT binary)',
        b * $batch, (b + 1) * $batch, '$dir/' || b || '.bin');
END LOOP; END \$\$"
: >"$dir/copy.sql"
printf '%s\n' 'CREATE TEMPORARY TABLE findemo_staging (LIKE raw_transactions) ON COMMIT DELETE ROWS;' >"$dir/staged.sql"
b=0
while [ "$b" -lt "$batches" ]; do
    printf 'BEGIN;\n\\copy raw_transactions (%s) FROM %s/%s.bin (FORMAT binary)\nCOMMIT;\n' "$cols" "$dir" "$b" >>"$dir/copy.sql"
    printf 'BEGIN;\n\\copy findemo_staging (%s) FROM %s/%s.bin (FORMAT binary)\nINSERT INTO raw_transactions (%s) SELECT %s FROM findemo_staging;\nCOMMIT;\n' \
        "$cols" "$dir" "$b" "$cols" "$cols" >>"$dir/staged.sql"
    b=$((b + 1))
done
psql -At -c "SELECT format('BEGIN; INSERT INTO raw_transactions ($cols) SELECT * FROM unnest(%L::uuid[], %L::text[], %L::timestamp[], %L::numeric[], %L::char(3)[], %L::text[], %L::text[], %L::text[], %L::text[]); COMMIT;',
        array_agg(transaction_id ORDER BY n), array_agg(account_id ORDER BY n), array_agg(\"timestamp\" ORDER BY n),
        array_agg(amount ORDER BY n), array_agg(currency ORDER BY n), array_agg(merchant_id ORDER BY n),
        array_agg(status ORDER BY n), array_agg(ip ORDER BY n), array_agg(device_id ORDER BY n))
    FROM findemo_bench_rows GROUP BY n / $batch ORDER BY n / $batch" >"$dir/unnest.sql"
psql -At -c "SELECT 'BEGIN; INSERT INTO raw_transactions ($cols) VALUES '
        || string_agg(format('(%L,%L,%L,%L,%L,%L,%L,%L,%L)', transaction_id, account_id, \"timestamp\", amount,
            currency, merchant_id, status, ip, device_id), ',' ORDER BY n) || '; COMMIT;'
    FROM findemo_bench_rows GROUP BY n / $batch ORDER BY n / $batch" >"$dir/values.sql"

walinspect=0
if psql -c "CREATE EXTENSION IF NOT EXISTS pg_walinspect" 2>/dev/null; then walinspect=1; fi
for method in ${METHODS:-copy staged unnest values}; do
    psql -c "TRUNCATE raw_transactions" -c "CHECKPOINT"
    from=$(psql -At -c "SELECT pg_current_wal_lsn()")
    start=$(date +%s%N)
    psql -f "$dir/$method.sql"
    end=$(date +%s%N)
    to=$(psql -At -c "SELECT pg_current_wal_lsn()")
    loaded=$(psql -At -c "SELECT count(*) FROM raw_transactions")
    [ "$loaded" = "$total" ] || { echo "write-methods: $method loaded $loaded of $total rows" >&2; exit 1; }
    wal=""
    if [ "$walinspect" = 1 ]; then
        wal=$(psql -At -c "SELECT coalesce(string_agg(record_type || ' ' || n, ', ' ORDER BY record_type), 'none')
            FROM (SELECT record_type, count(*) AS n FROM pg_get_wal_records_info('$from', '$to')
                  WHERE resource_manager IN ('Heap', 'Heap2') AND record_type LIKE '%INSERT%'
                    AND block_ref LIKE '% rel %/' || pg_relation_filenode('raw_transactions') || ' %'
                  GROUP BY 1) r")
        wal=" | heap WAL records: $wal"
    fi
    awk -v m="$method" -v n="$total" -v ns="$((end - start))" -v w="$wal" \
        'BEGIN { printf "%-6s %9d rows/s (%d rows in %.2fs)%s\n", m, n / (ns / 1e9), n, ns / 1e9, w }'
done
psql -c "DROP TABLE findemo_bench_rows"
rm -rf "$dir"
