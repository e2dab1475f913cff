//! Transactions: each row a pure function of the seed, its number and the world.
//!
//! Transaction `seq` depends only on the seed, `seq` and the pools, so a run can stop
//! anywhere and a later run recomputes exactly what comes next (and which earlier
//! transactions to settle or delete).

use std::sync::Arc;

use super::rng::{SeqRng, Stream};
use super::world::{account_device, device_string, pick, Currency, World, COUNTRIES};
use crate::config::GeneratorConfig;

/// Median amount in EUR and the log-normal spread of each category.
const AMOUNT_SHAPE: [(f64, f64); 4] = [(45.0, 0.8), (18.0, 0.6), (380.0, 0.8), (220.0, 0.9)];
/// Amounts stay below 10 million, well inside numeric(12, 2).
const MAX_CENTS: i64 = 999_999_999;
const MIN_CENTS: i64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Success,
    Pending,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Pending => "pending",
            Status::Failed => "failed",
        }
    }
}

/// What happens to a transaction over its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    pub id: [u8; 16],
    /// Status when inserted.
    pub status: Status,
    /// Where a pending transaction settles (`settle_after` transactions later).
    pub settles_to: Status,
    /// Deleted `delete_after` transactions later.
    pub deleted: bool,
}

/// One transaction row. Text columns are derived when encoding (see `batch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tx {
    pub id: [u8; 16],
    pub account: u32,
    /// Microseconds since the Unix epoch, UTC.
    pub ts_us: i64,
    pub cents: i64,
    pub currency: Currency,
    pub merchant: u32,
    pub status: Status,
    /// Pool index of the IP address.
    pub ip: u32,
    pub device: u64,
}

impl Tx {
    pub fn device_id(&self) -> String {
        device_string(self.device)
    }
}

/// Transactions are grouped in blocks; a block may hold one fraud-like burst.
const BLOCK: u64 = 256;
const BURST_MIN: u64 = 4;
const BURST_SPAN: u64 = 9; // lengths 4..=12, mean 8
/// A normal transaction's chance of coming through a proxy, or of being an outlier.
const PROXY_CHANCE: f64 = 0.01;
const TRAVEL_IP_CHANCE: f64 = 0.04;
const HOME_CURRENCY_CHANCE: f64 = 0.93;
const OUTLIER_CHANCE: f64 = 0.003;

/// A run of transactions from one account, in quick succession, from several
/// countries and new devices, through proxies, for high amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Burst {
    start: u64,
    len: u64,
    account: u32,
}

/// Transactions of one seed.
pub struct TxGenerator {
    world: Arc<World>,
    seed: u64,
    status_weights: [u32; 3],
    settle_weights: [u32; 2],
    delete_share: f64,
    burst_chance: f64,
    /// The last block looked at, and its burst.
    block: Option<(u64, Option<Burst>)>,
}

impl TxGenerator {
    pub fn new(world: Arc<World>, config: &GeneratorConfig) -> TxGenerator {
        let w = config.status_weights;
        TxGenerator {
            world,
            seed: config.seed,
            status_weights: [w.success, w.pending, w.failed],
            settle_weights: [w.success, w.failed],
            delete_share: config.delete_share,
            burst_chance: (config.fraud_share * BLOCK as f64
                / (BURST_MIN as f64 + (BURST_SPAN - 1) as f64 / 2.0))
                .min(1.0),
            block: None,
        }
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    /// Transaction `seq`'s id and fate: cheap, so that a batch can find which earlier
    /// transactions to settle or delete without rebuilding them.
    pub fn fate(&self, seq: u64) -> Fate {
        let mut rng = SeqRng::new(self.seed, Stream::Fate, seq);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&rand::RngCore::next_u64(&mut rng).to_be_bytes());
        id[8..].copy_from_slice(&rand::RngCore::next_u64(&mut rng).to_be_bytes());
        // A version 4 (random) UUID.
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        let status =
            [Status::Success, Status::Pending, Status::Failed][rng.weighted(&self.status_weights)];
        let settles_to = [Status::Success, Status::Failed][rng.weighted(&self.settle_weights)];
        let deleted = rng.chance(self.delete_share);
        Fate {
            id,
            status,
            settles_to,
            deleted,
        }
    }

    fn burst(&mut self, block: u64) -> Option<Burst> {
        if let Some((cached, burst)) = self.block {
            if cached == block {
                return burst;
            }
        }
        let mut rng = SeqRng::new(self.seed, Stream::Block, block);
        let burst = rng.chance(self.burst_chance).then(|| {
            let len = BURST_MIN + rng.below(BURST_SPAN);
            Burst {
                start: rng.below(BLOCK - len + 1),
                len,
                account: self.world.pick_account(&mut rng),
            }
        });
        self.block = Some((block, burst));
        burst
    }

    /// Transaction `seq`, stamped `ts_us`.
    pub fn row(&mut self, seq: u64, ts_us: i64) -> Tx {
        let fate = self.fate(seq);
        let (block, offset) = (seq / BLOCK, seq % BLOCK);
        let burst = self
            .burst(block)
            .filter(|b| (b.start..b.start + b.len).contains(&offset));
        let mut rng = SeqRng::new(self.seed, Stream::Row, seq);
        let world = &*self.world;
        let (account, merchant, cents, currency, ip, device);
        if let Some(b) = burst {
            account = b.account;
            merchant = if world.risky_merchants.is_empty() {
                world.merchant_popularity.sample(&mut rng) as u32
            } else {
                pick(&world.risky_merchants, &mut rng)
            };
            let category = world.merchant(merchant).category;
            currency = Currency::ALL[rng.below(3) as usize];
            cents = amount(category, currency, 3.0 + 7.0 * rng.unit(), &mut rng);
            ip = if offset % 2 == 0 {
                world.pick_ip(&world.proxies, &mut rng)
            } else {
                world.pick_ip(&world.foreign_ips, &mut rng)
            };
            device = rand::RngCore::next_u64(&mut rng);
        } else {
            account = world.pick_account(&mut rng);
            let profile = world.account(account);
            merchant = world.merchant_popularity.sample(&mut rng) as u32;
            let category = world.merchant(merchant).category;
            let home = COUNTRIES[usize::from(profile.country)].currency;
            currency = if rng.chance(HOME_CURRENCY_CHANCE) {
                home
            } else {
                Currency::ALL[rng.below(3) as usize]
            };
            let factor = if rng.chance(OUTLIER_CHANCE) {
                8.0 + 12.0 * rng.unit()
            } else {
                1.0
            };
            cents = amount(category, currency, factor, &mut rng);
            let where_from = rng.unit();
            ip = if where_from < PROXY_CHANCE {
                world.pick_ip(&world.proxies, &mut rng)
            } else if where_from < PROXY_CHANCE + TRAVEL_IP_CHANCE {
                rng.below(world.ips.len() as u64) as u32
            } else {
                profile.home_ips[rng.below(2) as usize]
            };
            let slot = (rng.weighted(&[70, 25, 5]) as u8).min(profile.devices - 1);
            device = account_device(account, slot);
        }
        Tx {
            id: fate.id,
            account,
            ts_us,
            cents,
            currency,
            merchant,
            status: fate.status,
            ip,
            device,
        }
    }
}

/// A log-normal amount for `category`, times `factor`, in `currency`, in cents.
fn amount(category: u8, currency: Currency, factor: f64, rng: &mut SeqRng) -> i64 {
    let (median, sigma) = AMOUNT_SHAPE[usize::from(category)];
    let eur = median * (sigma * rng.normal()).exp() * factor;
    let cents = (eur / currency.base_rate() * 100.0).round() as i64;
    cents.clamp(MIN_CENTS, MAX_CENTS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn config(accounts: u32, merchants: u32, ips: u32) -> GeneratorConfig {
        GeneratorConfig {
            accounts,
            merchants,
            ips,
            ..GeneratorConfig::default()
        }
    }

    fn generator(config: &GeneratorConfig) -> TxGenerator {
        TxGenerator::new(Arc::new(World::new(config)), config)
    }

    #[test]
    fn same_seed_same_rows_in_any_order() {
        let c = config(500, 20, 300);
        let mut a = generator(&c);
        let mut b = generator(&c);
        let forward: Vec<Tx> = (0..2_000).map(|s| a.row(s, 7)).collect();
        let backward: Vec<Tx> = (0..2_000).rev().map(|s| b.row(s, 7)).collect();
        assert!(forward.iter().eq(backward.iter().rev()));
        let other = generator(&GeneratorConfig { seed: 2, ..c });
        assert_ne!(forward[0].id, other.fate(0).id);
        let ids: HashSet<[u8; 16]> = forward.iter().map(|t| t.id).collect();
        assert_eq!(ids.len(), forward.len());
        // Version 4 UUIDs.
        assert!(ids.iter().all(|id| id[6] >> 4 == 4 && id[8] >> 6 == 2));
    }

    #[test]
    fn rows_respect_the_pools() {
        for (accounts, merchants, ips) in [(1, 1, 1), (7, 2, 3), (12_345, 56, 5_678)] {
            let c = config(accounts, merchants, ips);
            let mut g = generator(&c);
            for seq in 0..5_000 {
                let tx = g.row(seq, 0);
                assert!(tx.account < accounts);
                assert!(tx.merchant < merchants);
                assert!(tx.ip < ips);
                assert!((MIN_CENTS..=MAX_CENTS).contains(&tx.cents));
                assert!(tx.device_id().len() == 16);
            }
        }
    }

    #[test]
    fn statuses_and_deletes_follow_the_shares() {
        let c = GeneratorConfig {
            delete_share: 0.02,
            ..config(100, 10, 100)
        };
        let g = generator(&c);
        let n = 200_000;
        let mut counts: HashMap<Status, u32> = HashMap::new();
        let mut settled_failed = 0;
        let mut deleted = 0;
        for seq in 0..n {
            let f = g.fate(seq);
            *counts.entry(f.status).or_default() += 1;
            if f.status == Status::Pending && f.settles_to == Status::Failed {
                settled_failed += 1;
            }
            deleted += u32::from(f.deleted);
        }
        let share = |c: u32| f64::from(c) / n as f64;
        assert!((share(counts[&Status::Success]) - 0.90).abs() < 0.003);
        assert!((share(counts[&Status::Pending]) - 0.05).abs() < 0.002);
        assert!((share(counts[&Status::Failed]) - 0.05).abs() < 0.002);
        assert!((share(deleted) - 0.02).abs() < 0.002);
        // Pending settles like the rest: 5 in 95 fail.
        let failed_of_pending = f64::from(settled_failed) / f64::from(counts[&Status::Pending]);
        assert!(
            (failed_of_pending - 5.0 / 95.0).abs() < 0.015,
            "{failed_of_pending}"
        );
    }

    #[test]
    fn merchants_are_skewed_and_amounts_follow_categories() {
        let c = config(12_345, 56, 5_678);
        let mut g = generator(&c);
        let mut per_merchant = vec![0u32; 56];
        let mut per_category: Vec<Vec<i64>> = vec![Vec::new(); 4];
        for seq in 0..100_000 {
            let tx = g.row(seq, 0);
            per_merchant[tx.merchant as usize] += 1;
            if tx.currency == Currency::Eur {
                let category = g.world().merchant(tx.merchant).category;
                per_category[usize::from(category)].push(tx.cents);
            }
        }
        let mut sorted = per_merchant.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let top5: u32 = sorted[..5].iter().sum();
        assert!(top5 > 100_000 / 2, "top 5 merchants take {top5}");
        let median = |v: &mut Vec<i64>| {
            v.sort_unstable();
            v[v.len() / 2] as f64 / 100.0
        };
        for (category, (expected, _)) in AMOUNT_SHAPE.iter().enumerate() {
            let m = median(&mut per_category[category]);
            assert!((m / expected - 1.0).abs() < 0.15, "{category}: {m}");
        }
    }

    #[test]
    fn bursts_hit_one_account_from_many_countries_at_the_configured_share() {
        let c = config(12_345, 56, 5_678);
        let mut g = generator(&c);
        let n = 256 * 400;
        let mut in_bursts = 0;
        let mut countries_per_burst = Vec::new();
        for block in 0..n / BLOCK {
            if let Some(b) = g.burst(block) {
                in_bursts += b.len;
                let first = block * BLOCK + b.start;
                let rows: Vec<Tx> = (first..first + b.len).map(|s| g.row(s, 0)).collect();
                assert!(rows.iter().all(|t| t.account == b.account));
                let countries: HashSet<u8> =
                    rows.iter().map(|t| g.world().ip(t.ip).country).collect();
                let devices: HashSet<u64> = rows.iter().map(|t| t.device).collect();
                assert_eq!(devices.len(), rows.len());
                countries_per_burst.push(countries.len());
            }
        }
        let share = in_bursts as f64 / n as f64;
        assert!((share - 0.01).abs() < 0.003, "{share}");
        let mean =
            countries_per_burst.iter().sum::<usize>() as f64 / countries_per_burst.len() as f64;
        assert!(mean >= 3.0, "{mean}");
    }
}
