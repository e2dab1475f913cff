"""The dashboard's own queries, timed on the stack's ClickHouse and on a current release
(chdb, in-process) holding the same rows.

The queries are the ones `findemo dashboard` sends, as it logs them with
FINDEMO_LOG=findemo::clickhouse=debug: the first read of each kind (the history, read
once at start) and the newest (what one refresh reads). The rows are copied from the
stack's silver tables into chdb, whose tables come from the same sql/clickhouse files
(tests/dialect/check_current.py's way: Kafka tables become Null tables).

Usage: python3 bench/dashboard_current.py DASHBOARD_LOG CLICKHOUSE_PORT CREDENTIALS_JSON [RUNS]
Prints a Markdown table: query, rows returned, ms on the stack's server, ms on chdb
(medians of RUNS, default 5).
"""
import json
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from chdb import session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "dialect"))
from check_current import KAFKA_ENGINE, render, statements  # noqa: E402

TABLES = ["accounts", "merchants", "ip_geo", "fx_rates", "transactions", "transactions_by_time"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LINE = re.compile(r'typed query what="?([^"=]+?)"? ms=\S+ rows=(\d+) sql=(.*)$')


def server(port, creds):
    def query(sql, fmt=None):
        body = sql + (f" FORMAT {fmt}" if fmt else "")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/",
            data=body.encode(),
            headers={"X-ClickHouse-User": creds["clickhouse_user"], "X-ClickHouse-Key": creds["clickhouse_password"]},
        )
        return urllib.request.urlopen(req).read()

    return query


def queries(log):
    """(what, sql) pairs: the first and the newest of each kind."""
    first, newest = {}, {}
    for line in Path(log).read_text(errors="replace").splitlines():
        m = LINE.search(ANSI.sub("", line))
        if m:
            what, sql = m.group(1).strip(), m.group(3).strip()
            first.setdefault(what, sql)
            newest[what] = sql
    out = []
    for what, sql in first.items():
        out.append((f"{what} (first read)" if newest[what] != sql else what, sql))
        if newest[what] != sql:
            out.append((f"{what} (one refresh)", newest[what]))
    return out


def main():
    log, port, creds_path = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    stack = server(port, json.load(open(creds_path)))
    chdb = session.Session()
    for f in sorted((REPO / "sql" / "clickhouse").glob("*.sql")):
        for st in statements(render(f.read_text())):
            if st.lstrip().upper().startswith("INSERT"):
                continue  # the copy below brings the rows
            chdb.query(KAFKA_ENGINE.sub("ENGINE = Null", st))
    for table in TABLES:
        data = stack(f"SELECT * FROM silver.{table}", "TabSeparated").decode()
        if data:
            chdb.query(f"INSERT INTO silver.{table} FORMAT TabSeparated\n{data}")
    count = stack("SELECT count() FROM silver.transactions_by_time").decode().strip()
    print(f"Rows copied: {count} transaction versions; runs per query: {runs}\n")
    print("| query | rows | ClickHouse 18.16 (test bed) ms | ClickHouse 26.9 (chdb) ms |")
    print("|---|---|---|---|")
    for what, sql in queries(log):
        old, new, rows = [], [], 0
        for _ in range(runs):
            t = time.perf_counter()
            stack(sql, "JSONCompact")
            old.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            answer = chdb.query(sql, "JSONCompact")
            new.append((time.perf_counter() - t) * 1000)
            rows = json.loads(answer.bytes())["rows"]
        print(f"| {what} | {rows} | {statistics.median(old):.0f} | {statistics.median(new):.0f} |")


if __name__ == "__main__":
    main()
