//! A batch: a contiguous range of sequence numbers turned into what one database
//! transaction writes. New transactions as a PostgreSQL binary COPY stream (encoded
//! here, on the generator's thread, so the writer only moves bytes; the writer loads
//! it into a staging table or, opted in, straight into the table), the earlier
//! pending transactions this batch settles, the earlier ones it deletes, and FX rates
//! for days the batch reaches first.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::clock::{self, PG_EPOCH_UNIX_US};
use super::tx::{Status, Tx, TxGenerator};
use super::world;

/// The columns of `raw_transactions` in [`encode_tx`]'s field order.
pub const COLUMNS: &str =
    "transaction_id, account_id, \"timestamp\", amount, currency, merchant_id, status, ip, device_id";

/// Everything one database transaction writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Sequence numbers `first..end` are inserted.
    pub first: u64,
    pub end: u64,
    /// The rows, in PostgreSQL's binary COPY format (header and trailer included).
    pub copy: Bytes,
    /// Earlier pending transactions to settle: id and final status.
    pub settle: Vec<([u8; 16], Status)>,
    /// Earlier transactions to delete.
    pub delete: Vec<[u8; 16]>,
    /// Days (since 1970-01-01) whose FX rates this batch adds.
    pub fx_days: Range<i64>,
}

impl Batch {
    pub fn rows(&self) -> u64 {
        self.end - self.first
    }

    /// Extends this batch with the one that follows it (`next.first == self.end`), so
    /// that both are written in one database transaction.
    pub fn append(&mut self, next: Batch) {
        debug_assert_eq!(next.first, self.end);
        let mut copy = BytesMut::with_capacity(self.copy.len() + next.copy.len());
        // Our rows without the trailer, then theirs without the header.
        copy.put_slice(&self.copy[..self.copy.len() - TRAILER]);
        copy.put_slice(&next.copy[HEADER..]);
        self.copy = copy.freeze();
        self.end = next.end;
        self.settle.extend(next.settle);
        self.delete.extend(next.delete);
        // FX days only grow: this batch's range ends where the next one's starts.
        self.fx_days = self.fx_days.start..next.fx_days.end.max(self.fx_days.end);
    }
}

/// Bytes of the binary COPY header (signature, flags, extension length) and trailer.
const HEADER: usize = 19;
const TRAILER: usize = 2;

/// Where transaction timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clock {
    /// The wall clock when the batch is made, rows spaced `step_us` apart.
    Live { step_us: f64 },
    /// Transaction `seq` at `start_us + seq * step_us`: fully reproducible.
    Simulated { start_us: i64, step_us: f64 },
}

impl Clock {
    fn stamps(&self, first: u64) -> (i64, f64, u64) {
        match *self {
            Clock::Live { step_us } => (clock::now_us(), step_us, first),
            Clock::Simulated { start_us, step_us } => (start_us, step_us, 0),
        }
    }

    /// The timestamp of the first transaction a run starting at `first` writes.
    pub fn first_stamp(&self, first: u64) -> i64 {
        let (base, step, origin) = self.stamps(first);
        base + ((first - origin) as f64 * step) as i64
    }
}

/// Makes the batches of one run, in order.
pub struct BatchMaker {
    generator: TxGenerator,
    clock: Clock,
    settle_after: u64,
    delete_after: u64,
    /// FX rates exist up to (excluding) this day.
    fx_until: i64,
}

impl BatchMaker {
    /// `fx_until`: the first day without FX rates.
    pub fn new(
        generator: TxGenerator,
        clock: Clock,
        settle_after: u64,
        delete_after: u64,
        fx_until: i64,
    ) -> BatchMaker {
        BatchMaker {
            generator,
            clock,
            settle_after,
            delete_after,
            fx_until,
        }
    }

    pub fn make(&mut self, first: u64, end: u64) -> Batch {
        let rows = (end - first) as usize;
        let mut copy = BytesMut::with_capacity(19 + rows * 160 + 2);
        copy.put_slice(b"PGCOPY\n\xff\r\n\0");
        copy.put_i32(0); // flags
        copy.put_i32(0); // header extension length
        let (base, step, origin) = self.clock.stamps(first);
        let mut last_ts = base;
        for seq in first..end {
            let ts = base + ((seq - origin) as f64 * step) as i64;
            let tx = self.generator.row(seq, ts);
            encode_tx(&mut copy, &tx, &self.generator);
            last_ts = ts;
        }
        copy.put_i16(-1);

        let mut settle = Vec::new();
        for seq in earlier(first, end, self.settle_after) {
            let fate = self.generator.fate(seq);
            if fate.status == Status::Pending {
                settle.push((fate.id, fate.settles_to));
            }
        }
        let mut delete = Vec::new();
        for seq in earlier(first, end, self.delete_after) {
            let fate = self.generator.fate(seq);
            if fate.deleted {
                delete.push(fate.id);
            }
        }
        let last_day = clock::day_of(last_ts);
        let fx_days = self.fx_until..(last_day + 1).max(self.fx_until);
        self.fx_until = fx_days.end;

        Batch {
            first,
            end,
            copy: copy.freeze(),
            settle,
            delete,
            fx_days,
        }
    }
}

/// The sequence numbers `lag` behind `first..end`.
fn earlier(first: u64, end: u64, lag: u64) -> Range<u64> {
    first.saturating_sub(lag)..end.saturating_sub(lag)
}

/// Appends one row: 9 fields, each a big-endian length and the value in PostgreSQL's
/// binary send format.
fn encode_tx(buf: &mut BytesMut, tx: &Tx, generator: &TxGenerator) {
    let world = generator.world();
    buf.put_i16(9);
    // uuid: 16 bytes.
    buf.put_i32(16);
    buf.put_slice(&tx.id);
    // text fields: the UTF-8 bytes.
    put_text(buf, &world::account_id(tx.account));
    // timestamp: microseconds since 2000-01-01.
    buf.put_i32(8);
    buf.put_i64(tx.ts_us - PG_EPOCH_UNIX_US);
    put_numeric_cents(buf, tx.cents);
    put_text(buf, tx.currency.code());
    put_text(buf, &world::merchant_id(tx.merchant));
    put_text(buf, tx.status.as_str());
    put_text(buf, &world::ip_string(world.ip(tx.ip).addr));
    put_text(buf, &tx.device_id());
}

fn put_text(buf: &mut BytesMut, text: &str) {
    buf.put_i32(text.len() as i32);
    buf.put_slice(text.as_bytes());
}

/// numeric with scale 2, from cents: base-10000 digits, weight of the first digit,
/// sign, display scale. Leading and trailing zero digits are left out, as PostgreSQL
/// itself sends them.
fn put_numeric_cents(buf: &mut BytesMut, cents: i64) {
    let negative = cents < 0;
    let abs = cents.unsigned_abs();
    let (int, frac) = (abs / 100, abs % 100);
    // Digits from the most significant: the integer part in base 10000, then the
    // fraction as one base-10000 digit (".45" is 4500).
    let mut digits = [0u16; 6];
    let mut n = 0;
    let mut rest = int;
    let mut int_digits = [0u16; 5];
    let mut k = 0;
    while rest > 0 {
        int_digits[k] = (rest % 10_000) as u16;
        rest /= 10_000;
        k += 1;
    }
    for i in (0..k).rev() {
        digits[n] = int_digits[i];
        n += 1;
    }
    let mut weight = k as i16 - 1;
    digits[n] = (frac * 100) as u16;
    n += 1;
    // Strip leading zeros (moving the weight) and trailing zeros.
    let mut start = 0;
    while start < n && digits[start] == 0 {
        start += 1;
        weight -= 1;
    }
    while n > start && digits[n - 1] == 0 {
        n -= 1;
    }
    let ndigits = n - start;
    if ndigits == 0 {
        weight = 0;
    }
    buf.put_i32(8 + 2 * ndigits as i32);
    buf.put_i16(ndigits as i16);
    buf.put_i16(weight);
    buf.put_u16(if negative && ndigits > 0 { 0x4000 } else { 0 });
    buf.put_i16(2);
    for &d in &digits[start..n] {
        buf.put_u16(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GeneratorConfig;
    use crate::generate::world::World;
    use std::sync::Arc;

    fn numeric(cents: i64) -> Vec<u8> {
        let mut buf = BytesMut::new();
        put_numeric_cents(&mut buf, cents);
        buf.to_vec()
    }

    /// (ndigits, weight, sign, dscale, digits...) as PostgreSQL's numeric_send writes.
    fn expect(words: &[i16]) -> Vec<u8> {
        let mut out = ((words.len() * 2) as i32).to_be_bytes().to_vec();
        for w in words {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out
    }

    #[test]
    fn numeric_encoding_matches_postgres() {
        // SELECT numeric_send(1234.56::numeric(12,2)) = 0002 0000 0000 0002 04d2 15e0
        assert_eq!(numeric(123_456), expect(&[2, 0, 0, 2, 1234, 5600]));
        assert_eq!(numeric(0), expect(&[0, 0, 0, 2]));
        // 0.05: one digit 500 at weight -1.
        assert_eq!(numeric(5), expect(&[1, -1, 0, 2, 500]));
        // 10000.00: one digit 1 at weight 1.
        assert_eq!(numeric(1_000_000), expect(&[1, 1, 0, 2, 1]));
        // 99999999.99
        assert_eq!(
            numeric(9_999_999_999),
            expect(&[3, 1, 0, 2, 9999, 9999, 9900])
        );
        assert_eq!(numeric(-250), expect(&[2, 0, 0x4000, 2, 2, 5000]));
    }

    fn maker(config: &GeneratorConfig, clock: Clock) -> BatchMaker {
        let world = Arc::new(World::new(config));
        BatchMaker::new(
            TxGenerator::new(world, config),
            clock,
            config.settle_after,
            config.delete_after,
            0,
        )
    }

    #[test]
    fn batches_are_the_same_however_the_range_is_cut() {
        let config = GeneratorConfig {
            accounts: 50,
            settle_after: 30,
            delete_after: 60,
            delete_share: 0.1,
            ..GeneratorConfig::default()
        };
        let clock = Clock::Simulated {
            start_us: 1_700_000_000_000_000,
            step_us: 1000.0,
        };
        let whole = maker(&config, clock).make(0, 300);
        let mut m = maker(&config, clock);
        let parts = [m.make(0, 100), m.make(100, 101), m.make(101, 300)];
        let mut merged = parts[0].clone();
        merged.append(parts[1].clone());
        merged.append(parts[2].clone());
        assert_eq!(merged, whole);
        let body = |b: &Batch| b.copy[19..b.copy.len() - 2].to_vec();
        let joined: Vec<u8> = parts.iter().flat_map(body).collect();
        assert_eq!(body(&whole), joined);
        let settle: Vec<_> = parts.iter().flat_map(|b| b.settle.clone()).collect();
        assert_eq!(whole.settle, settle);
        let delete: Vec<_> = parts.iter().flat_map(|b| b.delete.clone()).collect();
        assert_eq!(whole.delete, delete);
        // Settles look 30 back: transactions 0..270 of 300.
        let g = TxGenerator::new(Arc::new(World::new(&config)), &config);
        let pending = (0..270)
            .filter(|&s| g.fate(s).status == Status::Pending)
            .count();
        assert_eq!(whole.settle.len(), pending);
        let deleted = (0..240).filter(|&s| g.fate(s).deleted).count();
        assert_eq!(whole.delete.len(), deleted);
        assert!(deleted > 0);
    }

    #[test]
    fn copy_stream_is_well_formed() {
        let config = GeneratorConfig::default();
        let b = maker(&config, Clock::Live { step_us: 200.0 }).make(10, 20);
        assert!(b.copy.starts_with(b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0"));
        assert!(b.copy.ends_with(&[0xff, 0xff]));
        // Walk the rows: 10 tuples of 9 length-prefixed fields.
        let mut at = 19;
        let mut rows = 0;
        loop {
            let fields = i16::from_be_bytes([b.copy[at], b.copy[at + 1]]);
            at += 2;
            if fields == -1 {
                break;
            }
            assert_eq!(fields, 9);
            for _ in 0..9 {
                let len = i32::from_be_bytes(b.copy[at..at + 4].try_into().unwrap());
                assert!(len > 0);
                at += 4 + len as usize;
            }
            rows += 1;
        }
        assert_eq!((rows, at), (10, b.copy.len()));
        assert_eq!(b.rows(), 10);
    }

    #[test]
    fn fx_days_are_added_once_as_the_clock_reaches_them() {
        let config = GeneratorConfig::default();
        let day_us = 86_400_000_000;
        // One transaction per hour from 2025-01-01.
        let start_us = clock::days_from_civil(2025, 1, 1) * day_us;
        let clock = Clock::Simulated {
            start_us,
            step_us: 3_600_000_000.0,
        };
        let first_day = clock::day_of(clock.first_stamp(0));
        let world = Arc::new(World::new(&config));
        let mut m = BatchMaker::new(
            TxGenerator::new(world, &config),
            clock,
            10,
            20,
            first_day + 1,
        );
        assert!(m.make(0, 24).fx_days.is_empty());
        assert_eq!(m.make(24, 30).fx_days, first_day + 1..first_day + 2);
        assert!(m.make(30, 48).fx_days.is_empty());
        assert_eq!(m.make(48, 100).fx_days, first_day + 2..first_day + 5);
    }
}
