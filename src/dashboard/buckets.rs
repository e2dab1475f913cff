//! The overview's figures kept up to date incrementally: per-second detail over the
//! last hour (the live charts), per-minute detail before that (the tiles, the totals
//! per status and currency and the merchants table cover the whole history),
//! recomputed only for the seconds that changed since the last refresh.
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

use crate::clients::clickhouse::{ChError, ClickHouse};
use crate::commands::verify::decimal;

/// Seconds of per-second detail kept: the longest live chart.
pub const DETAIL_SECS: u32 = 3600;
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

/// How many current transactions there are, per status and currency over the whole
/// history and per second of the last hour (what a page of the newest transactions
/// needs to know how far back to read), and each merchant's figures. Taken after a
/// refresh; `at` says when.
#[derive(Debug, Default)]
pub struct CountIndex {
    pub at: u32,
    mix: Vec<StatusCount>,
    /// Newest second first.
    recent: Vec<(u32, Vec<StatusCount>)>,
    pub merchants: BTreeMap<String, MerchantTotals>,
}

/// A merchant's current transactions over the whole history.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct MerchantTotals {
    pub n: u64,
    pub failed: u64,
    pub eur: i128,
}

impl CountIndex {
    /// Current transactions with `status` and `currency` (any when empty).
    pub fn total(&self, status: &str, currency: &str) -> u64 {
        self.mix
            .iter()
            .filter(|(s, c, _)| {
                (status.is_empty() || s == status) && (currency.is_empty() || c == currency)
            })
            .map(|(_, _, n)| n)
            .sum()
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

/// One second's (or minute's) transactions at one merchant.
#[derive(Debug, Clone, PartialEq)]
pub struct MerchantCell {
    pub merchant_id: String,
    pub n: u64,
    pub failed: u64,
    pub eur: i128,
}

/// A minute's transactions per status and currency, and per merchant.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Minute {
    pub cells: Vec<Cell>,
    pub merchants: Vec<MerchantCell>,
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
    pub minutes: BTreeMap<u32, Minute>,
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

/// A second's or a minute's (`start`) transactions of one status and currency.
#[derive(Deserialize, clickhouse::Row)]
struct CellRow {
    start: u32,
    status: String,
    currency: String,
    n: u64,
    eur: String,
}

/// A second's or a minute's (`start`) transactions at one merchant.
#[derive(Deserialize, clickhouse::Row)]
struct MerchantRow {
    start: u32,
    merchant_id: String,
    n: u64,
    failed: u64,
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
        self.fold(detail_from);
        let Some(band) = &self.band else {
            return self.read_all(ch, detail_from).await;
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
        }
        self.band = Some(next);
        self.fx_mark_ms = fx.iter().map(|f| f.newest).fold(self.fx_mark_ms, i64::max);
        Ok(())
    }

    /// The first refresh: the whole history, then the band from the newest commit.
    async fn read_all(&mut self, ch: &ClickHouse, detail_from: u32) -> Result<(), ChError> {
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
        let (cells, merchants) = read_cells(ch, "toStartOfMinute(ts)", filter).await?;
        for m in replace {
            self.minutes.remove(m);
        }
        for (start, cell) in cells {
            self.minutes.entry(start).or_default().cells.push(cell);
        }
        for (start, cell) in merchants {
            self.minutes.entry(start).or_default().merchants.push(cell);
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
        let (cells, merchants) = read_cells(ch, "ts", filter).await?;
        for s in replace {
            self.seconds.remove(s);
            self.merchants.remove(s);
        }
        for (start, cell) in cells {
            self.seconds.entry(start).or_default().push(cell);
        }
        for (start, cell) in merchants {
            self.merchants.entry(start).or_default().push(cell);
        }
        Ok(())
    }

    /// Folds seconds before `detail_from` (whole minutes) into minutes.
    fn fold(&mut self, detail_from: u32) {
        let kept = self.seconds.split_off(&detail_from);
        for (second, cells) in std::mem::replace(&mut self.seconds, kept) {
            let minute = self.minutes.entry(minute_of(second)).or_default();
            for c in cells {
                match minute
                    .cells
                    .iter_mut()
                    .find(|m| m.status == c.status && m.currency == c.currency)
                {
                    Some(m) => {
                        m.n += c.n;
                        m.eur += c.eur;
                    }
                    None => minute.cells.push(c),
                }
            }
        }
        let kept = self.merchants.split_off(&detail_from);
        for (second, cells) in std::mem::replace(&mut self.merchants, kept) {
            let minute = self.minutes.entry(minute_of(second)).or_default();
            for c in cells {
                match minute
                    .merchants
                    .iter_mut()
                    .find(|m| m.merchant_id == c.merchant_id)
                {
                    Some(m) => {
                        m.n += c.n;
                        m.failed += c.failed;
                        m.eur += c.eur;
                    }
                    None => minute.merchants.push(c),
                }
            }
        }
    }

    /// The counts a page of the newest transactions needs, as of `now`.
    pub fn index(&self, now: u32) -> CountIndex {
        let mut mix: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        let cells = self.minutes.values().flat_map(|m| &m.cells);
        for c in cells.chain(self.seconds.values().flatten()) {
            *mix.entry((&c.status, &c.currency)).or_default() += c.n;
        }
        let mut merchants: BTreeMap<String, MerchantTotals> = BTreeMap::new();
        let cells = self.minutes.values().flat_map(|m| &m.merchants);
        for c in cells.chain(self.merchants.values().flatten()) {
            let m = merchants.entry(c.merchant_id.clone()).or_default();
            m.n += c.n;
            m.failed += c.failed;
            m.eur += c.eur;
        }
        CountIndex {
            at: now,
            mix: mix
                .into_iter()
                .map(|((s, c), n)| (s.to_string(), c.to_string(), n))
                .collect(),
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
            merchants,
        }
    }

    /// Totals over the whole history.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        let cells = self.minutes.values().flat_map(|m| &m.cells);
        for c in cells.chain(self.seconds.values().flatten()) {
            totals.add(c.totals());
        }
        totals
    }
}

/// Current transactions matching `filter` per `start` (a second or a minute of `ts`):
/// per status and currency, and per merchant.
async fn read_cells(
    ch: &ClickHouse,
    start: &str,
    filter: &str,
) -> Result<(Vec<(u32, Cell)>, Vec<(u32, MerchantCell)>), ChError> {
    let cells: Vec<CellRow> = ch
        .fetch(
            "status and currency detail",
            ch.query(&format!(
                "SELECT toUInt32({start}) AS start, status, currency, count() AS n, \
                        toString(sum(amount_eur)) AS eur \
                 FROM {} GROUP BY start, status, currency",
                current(filter, "ts, status, currency")
            )),
        )
        .await?;
    let merchants: Vec<MerchantRow> = ch
        .fetch(
            "merchant detail",
            ch.query(&format!(
                "SELECT toUInt32({start}) AS start, merchant_id, count() AS n, \
                        countIf(status = 'failed') AS failed, toString(sum(amount_eur)) AS eur \
                 FROM {} GROUP BY start, merchant_id",
                current(filter, "ts, status, merchant_id")
            )),
        )
        .await?;
    Ok((
        cells
            .into_iter()
            .map(|r| {
                let cell = Cell {
                    eur: eur(&r.eur),
                    status: r.status,
                    currency: r.currency,
                    n: r.n,
                };
                (r.start, cell)
            })
            .collect(),
        merchants
            .into_iter()
            .map(|r| {
                let cell = MerchantCell {
                    eur: eur(&r.eur),
                    merchant_id: r.merchant_id,
                    n: r.n,
                    failed: r.failed,
                };
                (r.start, cell)
            })
            .collect(),
    ))
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

    fn at(merchant_id: &str, n: u64, failed: u64, eur: i128) -> MerchantCell {
        MerchantCell {
            merchant_id: merchant_id.into(),
            n,
            failed,
            eur,
        }
    }

    #[test]
    fn old_seconds_fold_into_minutes_and_totals_hold() {
        let mut b = Buckets::default();
        b.minutes.insert(
            0,
            Minute {
                cells: vec![cell("failed", 1, 100), cell("success", 1, 50)],
                merchants: vec![at("M1", 2, 1, 150)],
            },
        );
        b.seconds
            .insert(61, vec![cell("failed", 1, 10), cell("success", 3, 30)]);
        b.seconds.insert(62, vec![cell("success", 2, 5)]);
        b.seconds.insert(125, vec![cell("success", 5, 50)]);
        b.merchants
            .insert(61, vec![at("M1", 1, 1, 10), at("M2", 3, 0, 30)]);
        b.merchants.insert(62, vec![at("M2", 2, 0, 5)]);
        b.merchants.insert(125, vec![at("M1", 5, 0, 50)]);
        let before = b.totals();
        let index_before = b.index(200);
        assert_eq!(
            before,
            Totals {
                n: 13,
                failed: 2,
                pending: 0,
                eur: 245
            }
        );
        b.fold(120);
        assert_eq!(b.totals(), before, "folding keeps the totals");
        let index = b.index(200);
        assert_eq!(
            index.merchants, index_before.merchants,
            "and the merchants'"
        );
        assert_eq!(index.total("success", "EUR"), 11);
        assert_eq!(
            b.minutes.get(&60),
            Some(&Minute {
                cells: vec![cell("failed", 1, 10), cell("success", 5, 35)],
                merchants: vec![at("M1", 1, 1, 10), at("M2", 5, 0, 35)],
            })
        );
        assert_eq!(b.seconds.keys().copied().collect::<Vec<_>>(), [125]);
        assert_eq!(b.merchants.keys().copied().collect::<Vec<_>>(), [125]);
        assert_eq!(
            index.merchants.get("M1"),
            Some(&MerchantTotals {
                n: 8,
                failed: 2,
                eur: 210
            })
        );
    }

    #[test]
    fn the_index_finds_how_far_back_a_page_reaches() {
        let mut b = Buckets::default();
        b.seconds
            .insert(100, vec![cell("failed", 2, 0), cell("success", 5, 0)]);
        b.seconds.insert(101, vec![cell("success", 4, 0)]);
        b.seconds
            .insert(102, vec![cell("pending", 1, 0), cell("success", 3, 0)]);
        b.seconds.get_mut(&101).unwrap().push(Cell {
            currency: "USD".into(),
            ..cell("success", 2, 0)
        });
        let index = b.index(103);
        assert_eq!(index.total("", ""), 17);
        assert_eq!(index.total("failed", ""), 2);
        assert_eq!(index.total("success", ""), 14);
        assert_eq!(index.total("success", "USD"), 2);
        assert_eq!(index.total("", "GBP"), 0);
        assert_eq!(index.total("bogus", ""), 0);
        assert_eq!(index.since("", "", 4), Some(102));
        assert_eq!(index.since("", "", 5), Some(101));
        assert_eq!(index.since("failed", "", 2), Some(100));
        assert_eq!(index.since("failed", "", 3), None);
        assert_eq!(index.since("", "USD", 2), Some(101));
        assert_eq!(index.since("", "USD", 3), None);
    }
}
