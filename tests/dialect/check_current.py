"""Applies findemo's ClickHouse SQL files to a current ClickHouse (in-process, chdb)
and runs the gold views over sample change events, so the SQL never drifts into a
dialect only ClickHouse 18.16 (the test bed's server) accepts.

The Kafka engine needs a broker, so each Kafka table is created with the Null engine
instead: inserting into it fires the same materialized views a consumed message does.
Everything else runs exactly as written. Exit code 0 when every check passes.

Usage: python3 check_current.py REPO_DIR
"""
import json
import re
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from chdb import session


def render(text):
    values = {
        "kafka_broker": "kafka:29092",
        "topic_prefix": "check",
        "group_prefix": "check-clickhouse",
        # What findemo adds on servers from 21 on.
        "kafka_settings": ",\n    kafka_max_block_size = 1024,\n    kafka_flush_interval_ms = 250",
    }

    def fill(match):
        name = match.group(1).strip()
        if name not in values:
            sys.exit(f"unknown placeholder {name}")
        return values[name]

    return re.sub(r"\{\{([^}]*)\}\}", fill, text)


def statements(text):
    """Same rule as src/migrate.rs: a statement ends on a line ending with ';'."""
    out, current = [], []
    for line in text.splitlines():
        stripped = line.rstrip()
        if not stripped.strip() or stripped.strip().startswith("--"):
            continue
        current.append(stripped)
        if stripped.endswith(";"):
            out.append("\n".join(current)[:-1])
            current = []
    if current:
        out.append("\n".join(current))
    return out


KAFKA_ENGINE = re.compile(r"ENGINE = Kafka SETTINGS.*\Z", re.S)


def main():
    repo = Path(sys.argv[1])
    files = sorted((repo / "sql" / "clickhouse").glob("*.sql"))
    if not files:
        sys.exit("no sql/clickhouse/*.sql files")
    sess = session.Session(tempfile.mkdtemp(prefix="findemo-chdb-"))
    version = sess.query("SELECT version()", "CSV").bytes().decode().strip()
    print(f"ClickHouse {version} (chdb)")
    for path in files:
        for n, stmt in enumerate((render(s) for s in statements(path.read_text())), 1):
            if "ENGINE = Kafka" in stmt:
                assert "kafka_flush_interval_ms" in stmt
                stmt = KAFKA_ENGINE.sub("ENGINE = Null", stmt)
            try:
                sess.query(stmt)
            except Exception as err:  # noqa: BLE001 - report any refusal
                first = stmt.strip().splitlines()[0]
                sys.exit(f"FAIL {path.name} statement {n} ({first}): {err}")
        print(f"applied {path.name}")

    def insert(table, rows):
        lines = "\n".join(json.dumps(r) for r in rows)
        sess.query(f"INSERT INTO bronze.{table}_queue FORMAT JSONEachRow\n{lines}")

    def event(row, op, lsn, deleted=False):
        # The shape Debezium's ExtractNewRecordState gives with our connector file.
        return dict(row, __deleted="true" if deleted else "false", __op=op,
                    __source_ts_ms=1714557600000 + lsn, __lsn=lsn)

    day = 19844  # 2024-05-01, days since the epoch
    micros = day * 86400 * 1_000_000 + 3_600_000_000
    insert("raw_merchants", [event({"merchant_id": "m1", "merchant_name": "Shop", "merchant_category": "Retail",
                                    "country": "DE", "risk_rating": 2}, "r", 1)])
    insert("raw_accounts", [event({"account_id": "a1", "user_name": "Ann", "email": "a@x.test",
                                   "country": "DE", "signup_date": day - 10}, "r", 2)])
    insert("raw_ip_geo", [event({"ip": "10.0.0.1", "country": "FR", "city": "Paris", "is_proxy_or_vpn": True}, "r", 3)])
    insert("raw_fx_rates", [event({"date": day, "currency": "USD", "rate_to_eur": "0.900000"}, "r", 4)])

    def tx(tid, amount, currency, status, lsn, op="c", deleted=False):
        return event({"transaction_id": tid, "account_id": "a1", "timestamp": micros, "amount": amount,
                      "currency": currency, "merchant_id": "m1", "status": status, "ip": "10.0.0.1",
                      "device_id": "d1"}, op, lsn, deleted)

    t = ["00000000-0000-4000-8000-00000000000" + str(i) for i in range(1, 5)]
    insert("raw_transactions", [
        tx(t[0], "100.00", "USD", "pending", 10),
        tx(t[1], "50.00", "EUR", "success", 11),
        tx(t[2], "2000.00", "GBP", "success", 12),   # its FX rate arrives later
        tx(t[3], "1.10", "USD", "failed", 13),
    ])
    insert("raw_transactions", [
        tx(t[0], "100.00", "USD", "success", 20, op="u"),    # pending -> success
        tx(t[1], "50.00", "EUR", "success", 30, op="d", deleted=True),
    ])
    insert("raw_fx_rates", [event({"date": day, "currency": "GBP", "rate_to_eur": "1.150000"}, "c", 40)])

    def one(sql):
        out = sess.query(sql + " FORMAT JSONEachRow", "JSONEachRow").bytes().decode().strip().splitlines()
        return [json.loads(line) for line in out]

    failures = []

    def check(what, got, want):
        ok = got == want
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {got}" + ("" if ok else f" (want {want})"))
        if not ok:
            failures.append(what)

    kpi = one("SELECT toString(day) AS day, transactions, succeeded, failed, toString(amount_sum) AS s, "
              "toString(total_eur) AS e FROM gold.daily_kpis")
    check("daily_kpis rows", len(kpi), 1)
    row = kpi[0]
    check("transactions after update and delete", int(row["transactions"]), 3)
    check("succeeded", int(row["succeeded"]), 2)
    check("failed", int(row["failed"]), 1)
    check("amount_sum", Decimal(row["s"]), Decimal("2101.10"))
    # 100*0.9 + 2000*1.15 (rate loaded after the transaction) + 1.10*0.9
    check("total_eur", Decimal(row["e"]), Decimal("90") + Decimal("2300") + Decimal("0.99"))
    merchant = one("SELECT merchant_name, transactions, failed FROM gold.merchant_metrics")
    check("merchant_metrics", merchant, [{"merchant_name": "Shop", "transactions": "3", "failed": "1"}]
          if isinstance(merchant[0]["transactions"], str) else
          [{"merchant_name": "Shop", "transactions": 3, "failed": 1}])
    fraud = one("SELECT account_id, transactions, high_value, proxy_transactions, countries FROM gold.account_fraud_features")
    got = {k: int(v) if k != "account_id" else v for k, v in fraud[0].items()}
    check("account_fraud_features", got,
          {"account_id": "a1", "transactions": 3, "high_value": 1, "proxy_transactions": 3, "countries": 1})
    silver = one("SELECT count() AS n FROM silver.transactions_current")
    check("silver current transactions", int(silver[0]["n"]), 3)
    bronze = one("SELECT count() AS n FROM bronze.raw_transactions")
    check("bronze keeps every change event", int(bronze[0]["n"]), 6)
    unversioned = one("SELECT countIf(version = 0) AS n FROM silver.transactions")
    check("every silver row versioned by its LSN", int(unversioned[0]["n"]), 0)
    if failures:
        sys.exit(f"{len(failures)} check(s) failed on ClickHouse {version}")
    print(f"all checks passed on ClickHouse {version}")


if __name__ == "__main__":
    main()
