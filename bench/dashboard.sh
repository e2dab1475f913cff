#!/usr/bin/env bash
# Benchmark of `findemo dashboard` as the data grows: what each request costs, how
# often the live figures refresh, what ClickHouse reads for them, and what the server
# costs with 1 and with 10 pages open.
#
#   bench/dashboard.sh [-c CONFIG] [--rows "1000000 5000000"] [--samples N] [--keep]
#
# It brings up its own stack, findemo-dbench (CONFIG's images; on a machine without a
# registry use -c tests/testbed/demo.yaml), and removes it at the end unless --keep.
# For each row count (cumulative: the same seed grows to it):
#   1. `generate --rate max --count N`, then `verify` until ClickHouse has caught up;
#   2. starts the dashboard, keeps one page listening, and times every data endpoint
#      over --samples requests (p50, p95);
#   3. time to a filled overview in headless Chromium (WebDriver, a fresh profile);
#   4. with 1 and then 10 pages listening (server-sent event streams) for 20 s: the
#      dashboard's RSS and CPU, the overview's refresh interval as a page received it,
#      ClickHouse's queries, and the rows it selected per refresh (its SelectedMarks
#      counter x 8,192: an upper bound, all queries on the server included);
#   5. where chdb is installed (tests/test.sh installs it): the queries the dashboard
#      sent, timed on the stack's ClickHouse and on a current release holding the same
#      rows (bench/dashboard_current.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

config=demo.yaml
counts="1000000 5000000"
samples=20
keep=0
stack=findemo-dbench
while [ $# -gt 0 ]; do
    case $1 in
        -c|--config) config=$2; shift 2 ;;
        --rows) counts=$2; shift 2 ;;
        --samples) samples=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

findemo=${FINDEMO:-target/release/findemo}
if [ -z "${FINDEMO:-}" ]; then
    cargo build --release --quiet
fi
fd() { "$findemo" -c "$config" --stack "$stack" "$@"; }
fd_cmd=("$findemo" -c "$config" --stack "$stack")
state_dir=${FINDEMO_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/findemo}
creds="$state_dir/$stack.credentials.json"
dash_pid=""
tmp=$(mktemp -d)
cleanup() {
    if [ -n "$dash_pid" ]; then kill "$dash_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
    if [ "$keep" = 0 ]; then fd -q reset --yes >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

ch() { # a query on the stack's ClickHouse as its user; the answer on stdout
    python3 - "$creds" "$ch_port" "$1" <<'PY'
import json, sys, urllib.request
creds = json.load(open(sys.argv[1]))
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[2]}/", data=sys.argv[3].encode(),
    headers={"X-ClickHouse-User": creds["clickhouse_user"], "X-ClickHouse-Key": creds["clickhouse_password"]})
print(urllib.request.urlopen(req).read().decode().strip())
PY
}
# ClickHouse's own counters: queries run, and index marks (8,192-row granules) selected.
counters() {
    ch "SELECT sumIf(value, event = 'Query'), sumIf(value, event = 'SelectedMarks') FROM system.events FORMAT TSV"
}
percentile() { # percentile P of the seconds on stdin, in ms
    sort -n | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; printf "%.0f", v[i] * 1000 }'
}
# Milliseconds from opening URL in a fresh headless Chromium to a filled overview.
first_paint() {
    python3 - "$1" <<'PY'
import json, socket, subprocess, sys, tempfile, time, urllib.request
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def call(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"content-type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read())["value"]
try:
    for _ in range(100):
        try:
            call("GET", "/status")
            break
        except Exception:
            time.sleep(0.1)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}"]
    caps = {"alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}
    sid = call("POST", "/session", {"capabilities": caps})["sessionId"]
    started = time.time()
    call("POST", f"/session/{sid}/url", {"url": sys.argv[1]})
    filled = "const t = document.querySelector('[data-kpi=transactions]'); return !!(t && t.dataset.value);"
    while not call("POST", f"/session/{sid}/execute/sync", {"script": filled, "args": []}):
        time.sleep(0.02)
    print(f"{(time.time() - started) * 1000:.0f}")
    call("DELETE", f"/session/{sid}")
finally:
    driver.kill()
PY
}

fd up >/dev/null
ch_port=$(fd status --json | python3 -c 'import json, sys; print([s for s in json.load(sys.stdin)["services"] if s["name"] == "clickhouse"][0]["endpoint"].rsplit(":", 1)[1])')
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"

echo "| rows | endpoint | p50 ms | p95 ms |"
echo "|---|---|---|---|"
summary=()
current=()
for n in $counts; do
    echo "bench: generating up to $n transactions, then waiting for ClickHouse" >&2
    fd -q generate --rate max --count "$n" >/dev/null
    fd -q verify --timeout 3600 >/dev/null
    # Not through fd(): $! must be the dashboard itself, for its CPU and memory.
    FINDEMO_LOG=findemo::clickhouse=debug NO_COLOR=1 "${fd_cmd[@]}" -q dashboard --port "$port" \
        >/dev/null 2>"$tmp/dashboard-$n.log" &
    dash_pid=$!
    until curl -fsS "$url/" >/dev/null 2>&1; do sleep 0.2; done
    some_tx=$(ch "SELECT toString(transaction_id) FROM silver.transactions_by_time ORDER BY ts DESC LIMIT 1")

    # The overview is served from the shared snapshot: one page keeps it fresh.
    curl -sN "$url/api/live" >/dev/null 2>&1 &
    page_pid=$!
    until [ "$(curl -s "$url/api/overview" | head -c 20)" != "" ]; do sleep 0.2; done
    sleep 5
    for endpoint in "api/overview" "api/pipeline" "api/transactions" "api/transactions?status=failed&page=3" \
        "api/transactions?currency=USD" "api/transactions?q=ACC00012" "api/merchants" \
        "api/accounts" "api/accounts?q=ACC00012" "api/tx/$some_tx"; do
        times=$(for _ in $(seq "$samples"); do curl -s -o /dev/null -w '%{time_total}\n' "$url/$endpoint"; done)
        echo "| $n | /$endpoint | $(echo "$times" | percentile 50) | $(echo "$times" | percentile 95) |"
    done
    times=$(for _ in $(seq "$samples"); do
        curl -s -o /dev/null -w '%{time_total}\n' -H 'content-type: application/json' \
            -d '{"sql":"SELECT status, count() FROM silver.transactions_current GROUP BY status"}' "$url/api/sql"
    done)
    echo "| $n | /api/sql (status counts over silver) | $(echo "$times" | percentile 50) | $(echo "$times" | percentile 95) |"
    kill "$page_pid" 2>/dev/null || true
    wait "$page_pid" 2>/dev/null || true
    paint=$(first_paint "$url/")

    for pages in 1 10; do
        pids=()
        for i in $(seq "$pages"); do
            curl -sN "$url/api/live" >"$tmp/live-$pages-$i.sse" 2>/dev/null &
            pids+=($!)
        done
        sleep 5
        read -r q0 m0 <<<"$(counters)"
        cpu0=$(awk '{ print $14 + $15 }' "/proc/$dash_pid/stat")
        sleep 20
        cpu1=$(awk '{ print $14 + $15 }' "/proc/$dash_pid/stat")
        read -r q1 m1 <<<"$(counters)"
        rss=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$dash_pid/status")
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
        # The overview snapshots' own timestamps, as one page received them.
        ats=$(grep -A1 '^event: overview' "$tmp/live-$pages-1.sse" | sed -n 's/^data: {"at":\([0-9.]*\).*/\1/p')
        interval=$(echo "$ats" | awk 'NR > 1 { print $1 - prev } { prev = $1 }' | sort -n |
            awk '{ v[NR] = $1 } END { if (!NR) { print "none"; exit } printf "%.2f / %.2f", v[int((NR + 1) / 2)], v[int(NR * 0.95 + 0.999)] }')
        refreshes=$(echo "$ats" | grep -c . || true)
        cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) / hz / 20 * 100 }')
        per_refresh=$(awk -v m="$((m1 - m0))" -v r="$refreshes" 'BEGIN { printf "%.0f", m * 8192 / (r > 0 ? r * 20 / 25 : 1) }')
        summary+=("| $n | $pages | $rss | $cpu | $interval | $((q1 - q0)) | $per_refresh | $paint |")
    done
    kill "$dash_pid" 2>/dev/null || true
    wait "$dash_pid" 2>/dev/null || true
    dash_pid=""
    # The same queries on a current ClickHouse (chdb) with the same rows.
    chdb_python=${FINDEMO_CHDB_PYTHON:-${FINDEMO_TESTBED_CACHE:-/var/cache/findemo-testbed}/chdb-venv/bin/python}
    if [ -x "$chdb_python" ]; then
        echo "bench: timing the dashboard's queries on chdb too" >&2
        current+=("$("$chdb_python" bench/dashboard_current.py "$tmp/dashboard-$n.log" "$ch_port" "$creds" 3)")
    fi
done
echo
echo "| rows | pages open | dashboard RSS MiB | dashboard CPU % of a core | overview interval p50 / p95 s | ClickHouse queries in 20 s | rows selected per refresh (at most) | filled overview in Chromium ms |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${summary[@]}"
for table in "${current[@]}"; do
    echo
    echo "$table"
done
