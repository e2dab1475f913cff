//! The overview's figures kept up to date incrementally: per-second detail over the
//! last hour (the live charts), per-minute totals before that (the tiles cover the
//! whole history), recomputed only for the seconds that changed since the last refresh.
//!
//! Exact under updates, deletes and duplicated deliveries: a changed second is
//! recomputed from silver's current state (FINAL, deletes removed), never patched with
//! deltas. Which seconds changed is told by the change events' commit times
//! (`source_ts_ms`): events reach ClickHouse in commit order, so a change not yet taken
//! in commits at most a few milliseconds before the newest one taken in. Each refresh
//! counts the row versions per second whose commit time falls in a band reaching
//! [`BAND_MS`] back from the newest commit seen, and a second whose count moved is
//! recomputed. A duplicated delivery either falls outside the band or is recomputed to
//! the same figures. A new or changed FX rate (rare) marks its whole day.
//!
//! A refresh therefore reads the commit times of the band's rows (one column, no
//! FINAL) and the changed seconds' rows; the history is read once, at the start.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::clickhouse::{ChError, ClickHouse};
use crate::commands::verify::decimal;

/// Seconds of per-second detail kept: the longest live chart.
pub const DETAIL_SECS: u32 = 3600;
/// Seconds of per-merchant detail kept: the top-merchants window.
pub const MERCHANT_SECS: u32 = 900;
/// How far before the newest commit seen a late change is still looked for.
const BAND_MS: i64 = 5_000;
/// More changed ranges than this in one query are read as one span.
const MAX_RANGES: usize = 100;

/// Transactions, failed and pending ones, and EUR (in 10^-8 units) of a minute.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Totals {
    pub n: u64,
    pub failed: u64,
    pub pending: u64,
    pub eur: i128,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.n += other.n;
        self.failed += other.failed;
        self.pending += other.pending;
        self.eur += other.eur;
    }
}

/// Transactions of one status and currency.
type StatusCount = (String, String, u64);

/// How many current transactions there are, in all and per status, and per second of
/// the last hour: what a page of the newest transactions needs to know how far back
/// to read. Taken after a refresh; `at` says when.
#[derive(Debug, Default)]
pub struct CountIndex {
    pub at: u32,
    totals: Totals,
    /// Newest second first.
    recent: Vec<(u32, Vec<StatusCount>)>,
}

impl CountIndex {
    /// Current transactions with `status` (any when empty).
    pub fn total(&self, status: &str) -> Option<u64> {
        let t = &self.totals;
        match status {
            "" => Some(t.n),
            "failed" => Some(t.failed),
            "pending" => Some(t.pending),
            "success" => Some(t.n - t.failed - t.pending),
            _ => None,
        }
    }

    /// The latest second from which on at least `rows` transactions match `status` and
    /// `currency` (any when empty); None when the last hour holds fewer.
    pub fn since(&self, status: &str, currency: &str, rows: u64) -> Option<u32> {
        let mut seen = 0;
        for (second, cells) in &self.recent {
            seen += cells
                .iter()
                .filter(|(s, c, _)| {
                    (status.is_empty() || s == status) && (currency.is_empty() || c == currency)
                })
                .map(|(_, _, n)| n)
                .sum::<u64>();
            if seen >= rows {
                return Some(*second);
            }
        }
        None
    }
}

/// One second's transactions of one status and currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub status: String,
    pub currency: String,
    pub n: u64,
    pub eur: i128,
}

/// One second's transactions at one merchant.
#[derive(Debug, Clone, PartialEq)]
pub struct MerchantCell {
    pub merchant_id: String,
    pub n: u64,
    pub eur: i128,
}

/// Row versions per second whose commit time is at or after `from_ms`.
#[derive(Debug, Default)]
struct Band {
    from_ms: i64,
    newest_ms: i64,
    counts: BTreeMap<u32, u64>,
}

#[derive(Debug, Default)]
pub struct Buckets {
    band: Option<Band>,
    fx_mark_ms: i64,
    /// Whole minutes before the per-second detail.
    pub minutes: BTreeMap<u32, Totals>,
    pub seconds: BTreeMap<u32, Vec<Cell>>,
    pub merchants: BTreeMap<u32, Vec<MerchantCell>>,
}

#[derive(Deserialize, clickhouse::Row)]
struct Newest {
    newest: i64,
}

#[derive(Deserialize, clickhouse::Row)]
struct BandRow {
    second: u32,
    old_band: u64,
    new_band: u64,
    newest: i64,
}

#[derive(Deserialize, clickhouse::Row)]
struct FxDay {
    day: u32,
    newest: i64,
}

#[derive(Deserialize, clickhouse::Row)]
struct MinuteRow {
    minute: u32,
    n: u64,
    failed: u64,
    pending: u64,
    eur: String,
}

#[derive(Deserialize, clickhouse::Row)]
struct SecondRow {
    second: u32,
    status: String,
    currency: String,
    n: u64,
    eur: String,
}

#[derive(Deserialize, clickhouse::Row)]
struct MerchantRow {
    second: u32,
    merchant_id: String,
    n: u64,
    eur: String,
}

/// Current transactions matching `filter`, with their EUR amount, as a subquery.
fn current(filter: &str, columns: &str) -> String {
    format!(
        "(SELECT {columns}, amount * rate_to_eur AS amount_eur FROM (\
             SELECT ts, day, currency, amount, status, merchant_id \
             FROM silver.transactions_by_time FINAL WHERE ({filter}) AND is_deleted = 0) AS t \
         ANY LEFT JOIN (SELECT date AS day, currency, rate_to_eur FROM silver.fx_rates FINAL \
             WHERE is_deleted = 0) AS r USING (day, currency))"
    )
}

/// `ts` conditions covering `starts`, each `width` seconds long (merged where they
/// touch); one span from the first to the last when there are too many.
fn ranges(starts: &BTreeSet<u32>, width: u32) -> String {
    let mut spans: Vec<(u32, u32)> = Vec::new();
    for &s in starts {
        match spans.last_mut() {
            Some((_, end)) if *end >= s => *end = (*end).max(s + width),
            _ => spans.push((s, s + width)),
        }
    }
    if spans.len() > MAX_RANGES {
        spans = vec![(spans[0].0, spans[spans.len() - 1].1)];
    }
    let text: Vec<String> = spans
        .iter()
        .map(|(a, b)| format!("(ts >= toDateTime({a}) AND ts < toDateTime({b}))"))
        .collect();
    if text.is_empty() {
        "0".to_string()
    } else {
        text.join(" OR ")
    }
}

fn eur(text: &str) -> i128 {
    decimal(text).unwrap_or(0)
}

fn minute_of(second: u32) -> u32 {
    second - second % 60
}

impl Buckets {
    /// Takes in what changed since the last refresh; `now` is unix seconds.
    pub async fn refresh(&mut self, ch: &ClickHouse, now: u32) -> Result<(), ChError> {
        let detail_from = minute_of(now.saturating_sub(DETAIL_SECS));
        let merchant_from = now.saturating_sub(MERCHANT_SECS);
        self.fold(detail_from, merchant_from);
        let Some(band) = &self.band else {
            return self.read_all(ch, detail_from, merchant_from).await;
        };

        // Which seconds changed: their count of recent row versions moved.
        let new_from = band.from_ms.max(band.newest_ms - BAND_MS);
        let rows: Vec<BandRow> = ch
            .fetch(
                "changed seconds",
                ch.query(
                    "SELECT toUInt32(ts) AS second, count() AS old_band, \
                            countIf(source_ts_ms >= ?) AS new_band, max(source_ts_ms) AS newest \
                     FROM silver.transactions_by_time WHERE source_ts_ms >= ? GROUP BY second",
                )
                .bind(new_from)
                .bind(band.from_ms),
            )
            .await?;
        let mut dirty: BTreeSet<u32> = rows
            .iter()
            .filter(|r| band.counts.get(&r.second).copied().unwrap_or(0) != r.old_band)
            .map(|r| r.second)
            .collect();
        let next = Band {
            from_ms: new_from,
            newest_ms: rows.iter().map(|r| r.newest).fold(band.newest_ms, i64::max),
            counts: rows
                .iter()
                .filter(|r| r.new_band > 0)
                .map(|r| (r.second, r.new_band))
                .collect(),
        };

        // A new or changed FX rate changes the EUR amounts of its day.
        let fx: Vec<FxDay> = ch
            .fetch(
                "changed FX rates",
                ch.query(
                    "SELECT toUInt32(toUInt16(date)) AS day, max(source_ts_ms) AS newest \
                     FROM silver.fx_rates WHERE source_ts_ms > ? GROUP BY day",
                )
                .bind(self.fx_mark_ms),
            )
            .await?;
        for day in fx.iter().map(|f| f.day * 86_400) {
            let in_day = |s: &&u32| (day..day + 86_400).contains(*s);
            dirty.extend(self.seconds.keys().filter(in_day));
            dirty.extend(self.minutes.keys().filter(in_day));
        }

        let (recent, old): (BTreeSet<u32>, BTreeSet<u32>) =
            dirty.into_iter().partition(|s| *s >= detail_from);
        let old_minutes: BTreeSet<u32> = old.into_iter().map(minute_of).collect();
        if !old_minutes.is_empty() {
            self.read_minutes(ch, &ranges(&old_minutes, 60), &old_minutes)
                .await?;
        }
        if !recent.is_empty() {
            self.read_seconds(ch, &ranges(&recent, 1), &recent).await?;
            let merchants: BTreeSet<u32> =
                recent.into_iter().filter(|s| *s >= merchant_from).collect();
            if !merchants.is_empty() {
                self.read_merchants(ch, &ranges(&merchants, 1), &merchants)
                    .await?;
            }
        }
        self.band = Some(next);
        self.fx_mark_ms = fx.iter().map(|f| f.newest).fold(self.fx_mark_ms, i64::max);
        Ok(())
    }

    /// The first refresh: the whole history, then the band from the newest commit.
    async fn read_all(
        &mut self,
        ch: &ClickHouse,
        detail_from: u32,
        merchant_from: u32,
    ) -> Result<(), ChError> {
        let newest = |what: &'static str, sql: &'static str| async move {
            let rows: Vec<Newest> = ch.fetch(what, ch.query(sql)).await?;
            Ok::<i64, ChError>(rows.first().map_or(0, |r| r.newest))
        };
        // Read first: what commits meanwhile falls in the band and is taken in next.
        let newest_ms = newest(
            "newest transaction commit",
            "SELECT max(source_ts_ms) AS newest FROM silver.transactions_by_time",
        )
        .await?;
        let fx_mark_ms = newest(
            "newest FX commit",
            "SELECT max(source_ts_ms) AS newest FROM silver.fx_rates",
        )
        .await?;
        let from_ms = newest_ms - BAND_MS;
        let counts: Vec<BandRow> = ch
            .fetch(
                "recent commits",
                ch.query(
                    "SELECT toUInt32(ts) AS second, count() AS old_band, count() AS new_band, \
                            max(source_ts_ms) AS newest \
                     FROM silver.transactions_by_time WHERE source_ts_ms >= ? GROUP BY second",
                )
                .bind(from_ms),
            )
            .await?;
        self.minutes.clear();
        self.seconds.clear();
        self.merchants.clear();
        let before = format!("ts < toDateTime({detail_from})");
        self.read_minutes(ch, &before, &BTreeSet::new()).await?;
        let after = format!("ts >= toDateTime({detail_from})");
        self.read_seconds(ch, &after, &BTreeSet::new()).await?;
        let merchants = format!("ts >= toDateTime({merchant_from})");
        self.read_merchants(ch, &merchants, &BTreeSet::new())
            .await?;
        self.band = Some(Band {
            from_ms,
            newest_ms,
            counts: counts.into_iter().map(|r| (r.second, r.new_band)).collect(),
        });
        self.fx_mark_ms = fx_mark_ms;
        Ok(())
    }

    /// Recomputes whole minutes: those in `replace` (emptied first) and any `filter` finds.
    async fn read_minutes(
        &mut self,
        ch: &ClickHouse,
        filter: &str,
        replace: &BTreeSet<u32>,
    ) -> Result<(), ChError> {
        let rows: Vec<MinuteRow> = ch
            .fetch(
                "minute totals",
                ch.query(&format!(
                    "SELECT toUInt32(toStartOfMinute(ts)) AS minute, count() AS n, \
                            countIf(status = 'failed') AS failed, countIf(status = 'pending') AS pending, \
                            toString(sum(amount_eur)) AS eur \
                     FROM {} GROUP BY minute",
                    current(filter, "ts, status")
                )),
            )
            .await?;
        for m in replace {
            self.minutes.remove(m);
        }
        for r in rows {
            let totals = Totals {
                n: r.n,
                failed: r.failed,
                pending: r.pending,
                eur: eur(&r.eur),
            };
            self.minutes.insert(r.minute, totals);
        }
        Ok(())
    }

    /// Recomputes seconds: those in `replace` (emptied first) and any `filter` finds.
    async fn read_seconds(
        &mut self,
        ch: &ClickHouse,
        filter: &str,
        replace: &BTreeSet<u32>,
    ) -> Result<(), ChError> {
        let rows: Vec<SecondRow> = ch
            .fetch(
                "second detail",
                ch.query(&format!(
                    "SELECT toUInt32(ts) AS second, status, currency, count() AS n, \
                            toString(sum(amount_eur)) AS eur \
                     FROM {} GROUP BY second, status, currency",
                    current(filter, "ts, status, currency")
                )),
            )
            .await?;
        for s in replace {
            self.seconds.remove(s);
        }
        for r in rows {
            self.seconds.entry(r.second).or_default().push(Cell {
                eur: eur(&r.eur),
                status: r.status,
                currency: r.currency,
                n: r.n,
            });
        }
        Ok(())
    }

    /// Recomputes per-merchant seconds: those in `replace` and any `filter` finds.
    async fn read_merchants(
        &mut self,
        ch: &ClickHouse,
        filter: &str,
        replace: &BTreeSet<u32>,
    ) -> Result<(), ChError> {
        let rows: Vec<MerchantRow> = ch
            .fetch(
                "merchant detail",
                ch.query(&format!(
                    "SELECT toUInt32(ts) AS second, merchant_id, count() AS n, \
                            toString(sum(amount_eur)) AS eur \
                     FROM {} GROUP BY second, merchant_id",
                    current(filter, "ts, merchant_id")
                )),
            )
            .await?;
        for s in replace {
            self.merchants.remove(s);
        }
        for r in rows {
            self.merchants
                .entry(r.second)
                .or_default()
                .push(MerchantCell {
                    eur: eur(&r.eur),
                    merchant_id: r.merchant_id,
                    n: r.n,
                });
        }
        Ok(())
    }

    /// Folds seconds before `detail_from` (whole minutes) into minute totals and drops
    /// merchant detail before `merchant_from`.
    fn fold(&mut self, detail_from: u32, merchant_from: u32) {
        let kept = self.seconds.split_off(&detail_from);
        for (second, cells) in std::mem::replace(&mut self.seconds, kept) {
            let minute = self.minutes.entry(minute_of(second)).or_default();
            for c in cells {
                minute.add(c.totals());
            }
        }
        self.merchants = self.merchants.split_off(&merchant_from);
    }

    /// The counts a page of the newest transactions needs, as of `now`.
    pub fn index(&self, now: u32) -> CountIndex {
        CountIndex {
            at: now,
            totals: self.totals(),
            recent: self
                .seconds
                .iter()
                .rev()
                .map(|(second, cells)| {
                    let counts = cells
                        .iter()
                        .map(|c| (c.status.clone(), c.currency.clone(), c.n))
                        .collect();
                    (*second, counts)
                })
                .collect(),
        }
    }

    /// Totals over the whole history.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for t in self.minutes.values() {
            totals.add(*t);
        }
        for c in self.seconds.values().flatten() {
            totals.add(c.totals());
        }
        totals
    }
}

impl Cell {
    fn totals(&self) -> Totals {
        Totals {
            n: self.n,
            failed: if self.status == "failed" { self.n } else { 0 },
            pending: if self.status == "pending" { self.n } else { 0 },
            eur: self.eur,
        }
    }
}

/// 10^-8 units as a float, for display.
pub fn to_f64(eur: i128) -> f64 {
    eur as f64 / 1e8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(status: &str, n: u64, eur: i128) -> Cell {
        Cell {
            status: status.into(),
            currency: "EUR".into(),
            n,
            eur,
        }
    }

    #[test]
    fn touching_spans_merge_and_too_many_become_one() {
        let seconds: BTreeSet<u32> = [10, 11, 12, 20].into_iter().collect();
        assert_eq!(
            ranges(&seconds, 1),
            "(ts >= toDateTime(10) AND ts < toDateTime(13)) OR \
             (ts >= toDateTime(20) AND ts < toDateTime(21))"
        );
        let many: BTreeSet<u32> = (0..1000).map(|i| i * 10).collect();
        assert_eq!(
            ranges(&many, 1),
            "(ts >= toDateTime(0) AND ts < toDateTime(9991))"
        );
        assert_eq!(ranges(&BTreeSet::new(), 60), "0");
    }

    #[test]
    fn old_seconds_fold_into_minutes_and_totals_hold() {
        let mut b = Buckets::default();
        b.minutes.insert(
            0,
            Totals {
                n: 2,
                failed: 1,
                pending: 0,
                eur: 150,
            },
        );
        b.seconds
            .insert(61, vec![cell("failed", 1, 10), cell("success", 3, 30)]);
        b.seconds.insert(125, vec![cell("success", 5, 50)]);
        b.merchants.insert(61, Vec::new());
        b.merchants.insert(125, Vec::new());
        let before = b.totals();
        assert_eq!(
            before,
            Totals {
                n: 11,
                failed: 2,
                pending: 0,
                eur: 240
            }
        );
        b.fold(120, 100);
        assert_eq!(b.totals(), before, "folding keeps the totals");
        assert_eq!(
            b.minutes.get(&60),
            Some(&Totals {
                n: 4,
                failed: 1,
                pending: 0,
                eur: 40
            })
        );
        assert_eq!(b.seconds.keys().copied().collect::<Vec<_>>(), [125]);
        assert_eq!(b.merchants.keys().copied().collect::<Vec<_>>(), [125]);
    }

    #[test]
    fn the_index_finds_how_far_back_a_page_reaches() {
        let mut b = Buckets::default();
        b.seconds
            .insert(100, vec![cell("failed", 2, 0), cell("success", 5, 0)]);
        b.seconds.insert(101, vec![cell("success", 4, 0)]);
        b.seconds
            .insert(102, vec![cell("pending", 1, 0), cell("success", 3, 0)]);
        let index = b.index(103);
        assert_eq!(index.total(""), Some(15));
        assert_eq!(index.total("failed"), Some(2));
        assert_eq!(index.total("success"), Some(12));
        assert_eq!(index.total("bogus"), None);
        assert_eq!(index.since("", "", 4), Some(102));
        assert_eq!(index.since("", "", 5), Some(101));
        assert_eq!(index.since("failed", "", 2), Some(100));
        assert_eq!(index.since("failed", "", 3), None);
        assert_eq!(index.since("", "USD", 1), None);
    }
}
