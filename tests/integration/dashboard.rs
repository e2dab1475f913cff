//! `findemo dashboard` in a real headless Chromium against a real stack with generated
//! data: the tiles equal ClickHouse's figures and follow the stream without a reload,
//! search and paging, the SQL pad (read-only for real, CSV), XSS rendered as text, a
//! row's change history, the pipeline view with Verify, and a ClickHouse restart
//! survived. Also the command's own errors, which need no stack.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::browser::Browser;
use crate::harness::{clickhouse, postgres, rt, Bed};

/// A `findemo dashboard` process; stopped with SIGINT (Ctrl-C) when dropped.
pub(crate) struct Dashboard {
    child: Child,
    url: String,
}

impl Dashboard {
    pub(crate) fn start(bed: &Bed) -> Dashboard {
        let port = free_port();
        let mut child = bed.spawn(&["dashboard", "--port", &port.to_string()]);
        // The first line on stdout is the URL, printed once it listens.
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read stdout");
        assert!(
            line.contains(&format!("http://127.0.0.1:{port}/")),
            "{line}"
        );
        Dashboard {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        }
    }

    pub(crate) fn get(&self, path: &str) -> (u16, Value) {
        http(reqwest::Method::GET, &format!("{}{path}", self.url), None)
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        http(
            reqwest::Method::POST,
            &format!("{}{path}", self.url),
            Some(body),
        )
    }

    /// Ctrl-C: the server stops by itself, open pages and all, with exit code 0.
    pub(crate) fn stop(mut self) {
        let status = interrupt(&mut self.child);
        assert!(
            status.success(),
            "dashboard exited with {status} after Ctrl-C"
        );
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGINT (Ctrl-C) and waits up to 10 s for the process to end.
fn interrupt(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id() as i32;
    // SAFETY: sending a signal to a child we started and have not reaped.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running 10 s after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn http(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    rt().block_on(async {
        let mut request = crate::harness::http_client().request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    })
}

fn number(text: Option<String>) -> Option<f64> {
    text?.parse().ok()
}

const XSS_NAME: &str = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">";
const HISTORY_TX: &str = "0d5e7a10-0000-4000-8000-00000000abcd";

#[test]
fn dashboard_in_a_browser() {
    let bed = Bed::new("dash");
    bed.run(&["up"]).success();
    bed.run(&["generate", "--count", "3000", "--rate", "max"])
        .success();
    // A merchant whose name is markup, and one transaction inserted, updated, deleted.
    rt().block_on(async {
        let pg = postgres(&bed).await;
        pg.execute(
            "INSERT INTO raw_merchants VALUES ('MERXSS', $1, 'Retail', 'DE', 5)",
            &[&XSS_NAME],
        )
        .await
        .expect("insert merchant");
        pg.batch_execute(&format!(
            "INSERT INTO raw_transactions VALUES ('{HISTORY_TX}', 'ACC000123', now(), 42.50, 'EUR', \
                 'MERXSS', 'pending', '192.0.2.9', 'dev-h');
             UPDATE raw_transactions SET status = 'success' WHERE transaction_id = '{HISTORY_TX}';
             UPDATE raw_transactions SET amount = 43.00 WHERE transaction_id = '{HISTORY_TX}';
             DELETE FROM raw_transactions WHERE transaction_id = '{HISTORY_TX}';"
        ))
        .await
        .expect("change a transaction");
    });
    bed.run(&["verify", "--timeout", "120"]).success();

    let dash = Dashboard::start(&bed);
    let browser = Browser::start();

    // ---- overview: the tiles equal ClickHouse's own figures
    browser.goto(&dash.url);
    let expected: f64 = clickhouse(&bed, "SELECT sum(transactions) FROM gold.daily_kpis")
        .parse()
        .expect("a count");
    browser.wait(30, "the transactions tile to equal gold.daily_kpis", |b| {
        (number(b.attr("[data-kpi=transactions]", "data-value")) == Some(expected)).then_some(())
    });
    let eur: f64 = clickhouse(
        &bed,
        "SELECT toFloat64(sum(total_eur)) FROM gold.daily_kpis",
    )
    .parse()
    .expect("a sum");
    let shown = number(browser.attr("[data-kpi=volume_eur]", "data-value")).expect("volume tile");
    assert!(
        (shown - eur).abs() < 0.01,
        "volume tile {shown} vs gold {eur}"
    );
    assert!(
        browser.count("#chart-tps svg") > 0,
        "no transactions-per-second chart"
    );
    browser.screenshot("overview");

    // ---- pipeline view and Verify, while nothing is being written
    browser.goto(&format!("{}#/pipeline", dash.url));
    browser.wait(20, "the pipeline stages", |b| {
        (b.attr("[data-stage=connector]", "data-state").as_deref() == Some("ok")).then_some(())
    });
    assert_eq!(
        browser
            .attr("[data-stage=postgres]", "data-state")
            .as_deref(),
        Some("ok")
    );
    browser.click("#verify-button");
    browser.wait(60, "Verify to agree", |b| {
        b.attr("#verify-result", "data-agree")
            .filter(|a| a == "true")
    });
    // Kafka, per topic: every event of the transactions topic is in bronze, and
    // ClickHouse's group has committed past it (its commit can trail the block).
    let row = format!(
        "[data-stage=kafka] tr[data-topic='{}.public.raw_transactions']",
        bed.stack
    );
    assert_eq!(browser.count("[data-stage=kafka] tr[data-topic]"), 6);
    // (The card is redrawn every 2 s: read its cells again until both are there.)
    let end = browser
        .wait(30, "the transactions topic's lag to reach 0", |b| {
            b.attr(&row, "data-lag").filter(|lag| lag == "0")?;
            b.text(&format!("{row} [data-field=end_offset]"))
        })
        .replace(',', "");
    assert_eq!(
        end,
        clickhouse(&bed, "SELECT count() FROM bronze.raw_transactions")
    );
    browser.screenshot("pipeline");

    // ---- the tiles follow the stream without a reload
    browser.goto(&dash.url);
    browser.wait(30, "the overview", |b| {
        b.attr("[data-kpi=transactions]", "data-value")
    });
    browser.js("window.__sameDocument = true; return null;", vec![]);
    let before = number(browser.attr("[data-kpi=transactions]", "data-value")).expect("tile");
    let mut generate = bed.spawn(&["generate", "--rate", "300", "--duration", "40s"]);
    let after = browser.wait(
        60,
        "the transactions tile to grow while generate runs",
        |b| number(b.attr("[data-kpi=transactions]", "data-value")).filter(|n| *n > before),
    );
    assert!(after > before);
    assert_eq!(
        browser.js("return window.__sameDocument === true;", vec![]),
        json!(true),
        "the page reloaded"
    );
    browser.screenshot("overview-live");
    interrupt(&mut generate);

    // ---- analytics: search finds a known account; paging through a known count
    browser.goto(&format!("{}#/analytics/accounts", dash.url));
    browser.wait(20, "the accounts table", |b| {
        (b.count("#results tr[data-row]") > 0).then_some(())
    });
    browser.type_into("#search", "ACC000123");
    browser.wait(20, "the account to be found", |b| {
        let total = b.attr("#page-info", "data-total")?;
        let text = b.text("#results")?;
        (total == "1" && text.contains("ACC000123")).then_some(())
    });
    browser.screenshot("analytics-accounts");

    browser.goto(&format!("{}#/analytics/transactions", dash.url));
    browser.wait(20, "the transactions table", |b| {
        (b.count("#results tr[data-row]") > 0).then_some(())
    });
    browser.select("#filter-status", "failed");
    let failed: u64 = clickhouse(
        &bed,
        "SELECT count() FROM silver.transactions_current WHERE status = 'failed'",
    )
    .parse()
    .expect("a count");
    assert!(failed > 25, "too few failed transactions to page: {failed}");
    let shown_total = browser.wait(20, "the failed transactions' total", |b| {
        b.attr("#page-info", "data-total")
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|t| *t <= failed && *t + 200 > failed)
    });
    browser.click("#next");
    browser.wait(20, "page 2", |b| {
        b.text("#page-info").filter(|t| t.starts_with("26"))
    });
    assert!(shown_total > 25);
    browser.screenshot("analytics-transactions");

    // ---- the figures the server keeps per minute equal silver's own: per merchant,
    // and the total of a currency filter (the page above keeps them fresh)
    bed.run(&["verify", "--timeout", "120"]).success();
    let per_merchant = clickhouse(
        &bed,
        "SELECT merchant_id, count() FROM silver.transactions_current \
         GROUP BY merchant_id ORDER BY merchant_id FORMAT TSV",
    );
    let usd = clickhouse(
        &bed,
        "SELECT count() FROM silver.transactions_current WHERE currency = 'USD'",
    );
    browser.wait(30, "the merchants' figures to equal silver's", |_| {
        let (_, page) = dash.get("api/merchants?size=200");
        let shown: Vec<String> = page["rows"]
            .as_array()?
            .iter()
            .filter(|r| r["transactions"].as_u64() > Some(0))
            .map(|r| {
                format!(
                    "{}\t{}",
                    r["merchant_id"].as_str().unwrap_or(""),
                    r["transactions"]
                )
            })
            .collect();
        (shown.join("\n") == per_merchant).then_some(())
    });
    browser.wait(30, "the USD total to equal silver's", |_| {
        let (_, page) = dash.get("api/transactions?currency=USD");
        (page["total"].as_u64() == usd.parse().ok()).then_some(())
    });
    // An account id typed into the search is looked up in the by-account layout.
    let busiest = clickhouse(
        &bed,
        "SELECT account_id FROM silver.transactions_current \
         GROUP BY account_id ORDER BY count() DESC, account_id LIMIT 1",
    );
    let of_account = clickhouse(
        &bed,
        &format!("SELECT count() FROM silver.transactions_current WHERE account_id = '{busiest}'"),
    );
    assert_ne!(of_account, "0");
    let (_, page) = dash.get(&format!(
        "api/transactions?q={}&size=200",
        busiest.to_lowercase()
    ));
    assert_eq!(page["total"].to_string(), of_account, "{page}");
    let rows = page["rows"].as_array().expect("rows");
    assert_eq!(rows.len().to_string(), of_account);
    assert!(
        rows.iter().all(|r| r["account_id"] == busiest.as_str()),
        "{page}"
    );
    let one = clickhouse(
        &bed,
        "SELECT toString(transaction_id) FROM silver.transactions_current \
         ORDER BY transaction_id LIMIT 1",
    );
    let (_, page) = dash.get(&format!("api/transactions?q={}", one.to_uppercase()));
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["rows"][0]["transaction_id"], one.as_str(), "{page}");
    let (_, accounts) = dash.get(&format!("api/accounts?q={busiest}"));
    assert_eq!(
        accounts["rows"][0]["transactions"].to_string(),
        of_account,
        "{accounts}"
    );

    // ---- XSS: a merchant named with markup shows as text and runs nothing
    browser.goto(&format!("{}#/analytics/merchants?q=MERXSS", dash.url));
    browser.wait(20, "the markup merchant", |b| {
        b.text("#results")
            .filter(|t| t.contains("<script>window.__xss=1</script>"))
    });
    assert_eq!(
        browser.js("return window.__xss === undefined;", vec![]),
        json!(true)
    );
    browser.screenshot("analytics-merchants");

    // ---- row history: insert, two updates, delete, in LSN order
    browser.goto(&format!("{}#/tx/{HISTORY_TX}", dash.url));
    browser.wait(20, "four change events", |b| {
        (b.count("#tx-events tr[data-lsn]") == 4).then_some(())
    });
    let lsns = browser.js(
        "return Array.from(document.querySelectorAll('#tx-events tr[data-lsn]')).map(r => Number(r.dataset.lsn));",
        vec![],
    );
    let lsns: Vec<f64> = serde_json::from_value(lsns).expect("numbers");
    assert!(
        lsns.windows(2).all(|w| w[0] < w[1]),
        "not in LSN order: {lsns:?}"
    );
    assert_eq!(
        browser.attr("#tx-current", "data-deleted").as_deref(),
        Some("true")
    );
    browser.screenshot("row-history");

    // ---- SQL pad: a query with statistics; DROP TABLE refused by ClickHouse; CSV
    browser.goto(&format!("{}#/sql", dash.url));
    browser.type_into(
        "#sql-input",
        "SELECT merchant_id, merchant_name, '=1+1' AS formula FROM silver.merchants_current \
         WHERE merchant_id IN ('MERXSS', 'MER0001') ORDER BY merchant_id",
    );
    browser.click("#sql-run");
    browser.wait(20, "the query's rows", |b| {
        (b.count("#sql-result tbody tr") == 2).then_some(())
    });
    let stats = browser.text("#sql-stats").unwrap_or_default();
    assert!(stats.contains("rows"), "statistics line: {stats}");
    browser.click("#sql-csv");
    let csv = browser.js("return window.__lastCsv;", vec![]);
    let csv = csv.as_str().expect("CSV text");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"merchant_id,merchant_name,formula"),
        "{csv}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("MER0001,") && l.ends_with(",'=1+1")),
        "{csv}"
    );
    assert!(csv.contains("window.__xss=1"), "{csv}");
    browser.screenshot("sql");

    browser.type_into("#sql-input", "DROP TABLE silver.merchants");
    browser.click("#sql-run");
    let error = browser.wait(20, "ClickHouse's refusal", |b| {
        b.text("#sql-error").filter(|t| !t.is_empty())
    });
    assert!(
        error.contains("readonly") || error.contains("Code: 164"),
        "{error}"
    );
    assert_eq!(clickhouse(&bed, "EXISTS TABLE silver.merchants"), "1");
    browser.screenshot("sql-refused");

    // The API says the same without a browser: bad SQL with its position, the row cap.
    let (status, body) = dash.post("api/sql", json!({"sql": "SELEC 1"}));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("Syntax error"),
        "{body}"
    );
    assert!(body["position"].is_number(), "{body}");
    let (status, body) = dash.post(
        "api/sql",
        json!({"sql": "SELECT number FROM system.numbers LIMIT 20000"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["truncated"], true, "{body}");
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(10_000));

    // ---- ClickHouse restarts while the page is open: it says so, then resumes
    browser.goto(&dash.url);
    browser.wait(30, "the overview", |b| {
        b.attr("[data-kpi=transactions]", "data-value")
    });
    let container = format!("{}-clickhouse", bed.stack);
    let stop = Command::new("docker")
        .args(["stop", "-t", "5", &container])
        .output()
        .expect("docker stop");
    assert!(stop.status.success(), "{stop:?}");
    browser.wait(30, "the page to say ClickHouse is down", |b| {
        b.text("#service-alert")
            .filter(|t| t.to_lowercase().contains("clickhouse"))
    });
    browser.screenshot("clickhouse-down");
    let start = Command::new("docker")
        .args(["start", &container])
        .output()
        .expect("docker start");
    assert!(start.status.success(), "{start:?}");
    browser.wait(60, "the page to recover", |b| {
        let alert = b.text("#service-alert").unwrap_or_default();
        (alert.trim().is_empty() && b.attr("[data-kpi=transactions]", "data-value").is_some())
            .then_some(())
    });

    drop(browser);
    dash.stop();
}

#[test]
fn dashboard_needs_a_stack_and_a_free_port() {
    let bed = Bed::new("dasherr");
    bed.run(&["dashboard"])
        .failure()
        .stderr_has("run `findemo up` first");

    // Credentials but no services: it serves, and says which services are down.
    let creds = json!({
        "postgres_user": "findemo", "postgres_password": "x",
        "clickhouse_user": "findemo", "clickhouse_password": "x",
        "kafka_cluster_id": "AAAAAAAAAAAAAAAAAAAAAA"
    });
    std::fs::create_dir_all(bed.state_dir()).expect("state dir");
    std::fs::write(
        bed.state_dir()
            .join(format!("{}.credentials.json", bed.stack)),
        creds.to_string(),
    )
    .expect("credentials");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    bed.run(&["dashboard", "--port", &port])
        .failure()
        .stderr_has(&format!("port {port}"))
        .stderr_has("--port");
    drop(taken);

    let dash = Dashboard::start(&bed);
    let (status, overview) = dash.get("api/overview");
    assert_eq!(status, 200);
    assert!(
        overview["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{overview}"
    );
    let (status, page) = dash.get("");
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap_or("").contains("findemo"));
    let (status, body) = dash.get("api/tx/not-a-uuid");
    assert_eq!(status, 400, "{body}");
    dash.stop();
}
