//! The generated world: reference data (accounts, merchants, IP geolocation, FX rates)
//! and transactions, each row a pure function of its number.
//!
//! Reference row `i` depends only on `i` (never on `--seed`), so every seed shares one
//! world and re-inserting it is idempotent. Transaction `seq` depends only on the seed,
//! `seq` and the pools, so a run can stop anywhere and a later run recomputes exactly
//! what comes next (and which earlier transactions to settle or delete).

use std::sync::Arc;

use fake::faker::company::raw::CompanyName;
use fake::faker::name::raw::{FirstName, LastName};
use fake::locales::{Data, DE_DE, EN, FR_FR, IT_IT, PT_PT};
use fake::Fake;

use super::clock;
use super::rng::{mix, SeqRng, Stream, Zipf};
use crate::config::GeneratorConfig;

/// The schema's merchant categories.
pub const CATEGORIES: [&str; 4] = ["Retail", "Food", "Travel", "Electronics"];
const CATEGORY_WEIGHTS: [u32; 4] = [35, 30, 15, 20];
/// Median amount in EUR and the log-normal spread of each category.
const AMOUNT_SHAPE: [(f64, f64); 4] = [(45.0, 0.8), (18.0, 0.6), (380.0, 0.8), (220.0, 0.9)];
const TRAVEL: u8 = 2;
const ELECTRONICS: u8 = 3;
/// Amounts stay below 10 million, well inside numeric(12, 2).
const MAX_CENTS: i64 = 999_999_999;
const MIN_CENTS: i64 = 50;

/// The schema's currencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Currency {
    Eur,
    Usd,
    Gbp,
}

impl Currency {
    pub const ALL: [Currency; 3] = [Currency::Eur, Currency::Usd, Currency::Gbp];

    pub fn code(self) -> &'static str {
        match self {
            Currency::Eur => "EUR",
            Currency::Usd => "USD",
            Currency::Gbp => "GBP",
        }
    }

    /// EUR for one unit, around which the daily rates move.
    fn base_rate(self) -> f64 {
        match self {
            Currency::Eur => 1.0,
            Currency::Usd => 0.92,
            Currency::Gbp => 1.17,
        }
    }
}

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

#[derive(Debug, Clone, Copy)]
enum Locale {
    En,
    De,
    Fr,
    It,
    Pt,
}

struct Country {
    code: &'static str,
    /// Share of accounts and merchants; 0 for countries only seen as IP origins.
    home_weight: u32,
    /// Share of IP addresses.
    ip_weight: u32,
    currency: Currency,
    locale: Locale,
    cities: &'static [&'static str],
}

const fn country(
    code: &'static str,
    home_weight: u32,
    ip_weight: u32,
    currency: Currency,
    locale: Locale,
    cities: &'static [&'static str],
) -> Country {
    Country {
        code,
        home_weight,
        ip_weight,
        currency,
        locale,
        cities,
    }
}

use Currency::{Eur, Gbp, Usd};
use Locale::{De, En, Fr, It, Pt};

/// A European bank's customers, and the places fraud tends to come from.
const COUNTRIES: &[Country] = &[
    country(
        "DE",
        18,
        17,
        Eur,
        De,
        &["Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt"],
    ),
    country(
        "FR",
        15,
        14,
        Eur,
        Fr,
        &["Paris", "Lyon", "Marseille", "Toulouse", "Lille"],
    ),
    country(
        "GB",
        15,
        14,
        Gbp,
        En,
        &["London", "Manchester", "Birmingham", "Leeds", "Glasgow"],
    ),
    country(
        "US",
        10,
        12,
        Usd,
        En,
        &["New York", "Chicago", "Los Angeles", "Houston", "Seattle"],
    ),
    country(
        "NL",
        8,
        7,
        Eur,
        En,
        &["Amsterdam", "Rotterdam", "Utrecht", "The Hague"],
    ),
    country(
        "ES",
        8,
        7,
        Eur,
        En,
        &["Madrid", "Barcelona", "Valencia", "Seville"],
    ),
    country("IT", 8, 7, Eur, It, &["Rome", "Milan", "Naples", "Turin"]),
    country("BE", 4, 3, Eur, Fr, &["Brussels", "Antwerp", "Ghent"]),
    country("IE", 4, 3, Eur, En, &["Dublin", "Cork", "Galway"]),
    country("AT", 4, 3, Eur, De, &["Vienna", "Graz", "Salzburg"]),
    country("PT", 3, 3, Eur, Pt, &["Lisbon", "Porto", "Braga"]),
    country("PL", 3, 3, Eur, En, &["Warsaw", "Krakow", "Gdansk"]),
    country("RU", 0, 2, Eur, En, &["Moscow", "Saint Petersburg"]),
    country("NG", 0, 2, Eur, En, &["Lagos", "Abuja"]),
    country("BR", 0, 1, Eur, Pt, &["Sao Paulo", "Rio de Janeiro"]),
    country("CN", 0, 1, Eur, En, &["Shanghai", "Shenzhen"]),
    country("VN", 0, 1, Eur, En, &["Hanoi", "Ho Chi Minh City"]),
];

/// First octets of public address blocks; the other 24 bits are a bijection of the
/// index, so pool addresses are unique.
const FIRST_OCTETS: [u32; 20] = [
    23, 31, 37, 46, 51, 62, 77, 81, 85, 91, 109, 151, 176, 185, 188, 193, 195, 212, 213, 217,
];

/// An account, as the transaction generator needs it.
#[derive(Debug, Clone, Copy)]
pub struct Account {
    pub country: u8,
    /// How many devices the customer uses (1..=3).
    pub devices: u8,
    /// Two addresses (pool indexes) the customer usually connects from.
    pub home_ips: [u32; 2],
}

#[derive(Debug, Clone, Copy)]
pub struct Merchant {
    pub category: u8,
    pub country: u8,
    /// 1 (low) ..= 5 (high).
    pub risk: i16,
}

#[derive(Debug, Clone, Copy)]
pub struct Ip {
    pub addr: u32,
    pub country: u8,
    pub proxy: bool,
}

/// Everything transaction generation looks up, built once from the pools.
pub struct World {
    accounts: u32,
    home_weights: Vec<u32>,
    merchants: Vec<Merchant>,
    merchant_popularity: Zipf,
    risky_merchants: Vec<u32>,
    ips: Vec<Ip>,
    /// Pool indexes of addresses that are not proxies, by country.
    clean_ips_by_country: Vec<Vec<u32>>,
    clean_ips: Vec<u32>,
    proxies: Vec<u32>,
    /// Addresses in countries where no account lives.
    foreign_ips: Vec<u32>,
}

/// Merchant popularity: a few big merchants take most transactions.
const MERCHANT_ZIPF_S: f64 = 1.1;
/// Multiplier for account ranks: prime, so a bijection of 0..n for any n below it.
const ACCOUNT_SPREAD: u64 = 1_000_003;

impl World {
    pub fn new(config: &GeneratorConfig) -> World {
        let home_weights: Vec<u32> = COUNTRIES.iter().map(|c| c.home_weight).collect();
        let ip_weights: Vec<u32> = COUNTRIES.iter().map(|c| c.ip_weight).collect();

        let merchants: Vec<Merchant> = (0..config.merchants)
            .map(|i| {
                let mut rng = SeqRng::new(0, Stream::Merchant, i.into());
                let category = rng.weighted(&CATEGORY_WEIGHTS) as u8;
                let country = rng.weighted(&home_weights) as u8;
                let base: i16 = match category {
                    TRAVEL | ELECTRONICS => 2,
                    _ => 1,
                };
                let risk = (base + rng.weighted(&[50, 30, 15, 5]) as i16).min(5);
                Merchant {
                    category,
                    country,
                    risk,
                }
            })
            .collect();
        let risky_merchants: Vec<u32> = (0..config.merchants)
            .filter(|&i| matches!(merchants[i as usize].category, TRAVEL | ELECTRONICS))
            .collect();

        let ips: Vec<Ip> = (0..config.ips)
            .map(|i| {
                let mut rng = SeqRng::new(0, Stream::Ip, i.into());
                let country = rng.weighted(&ip_weights) as u8;
                let risky = COUNTRIES[usize::from(country)].home_weight == 0;
                let proxy = rng.chance(if risky {
                    config.proxy_share.max(0.3)
                } else {
                    config.proxy_share
                });
                Ip {
                    addr: ip_addr(i),
                    country,
                    proxy,
                }
            })
            .collect();
        let mut clean_ips_by_country = vec![Vec::new(); COUNTRIES.len()];
        let (mut clean_ips, mut proxies, mut foreign_ips) = (Vec::new(), Vec::new(), Vec::new());
        for (i, ip) in ips.iter().enumerate() {
            let i = i as u32;
            if ip.proxy {
                proxies.push(i);
            } else {
                clean_ips_by_country[usize::from(ip.country)].push(i);
                clean_ips.push(i);
            }
            if COUNTRIES[usize::from(ip.country)].home_weight == 0 {
                foreign_ips.push(i);
            }
        }

        World {
            accounts: config.accounts,
            home_weights,
            merchant_popularity: Zipf::new(merchants.len(), MERCHANT_ZIPF_S),
            merchants,
            risky_merchants,
            ips,
            clean_ips_by_country,
            clean_ips,
            proxies,
            foreign_ips,
        }
    }

    pub fn ip(&self, index: u32) -> Ip {
        self.ips[index as usize]
    }

    pub fn merchant(&self, index: u32) -> Merchant {
        self.merchants[index as usize]
    }

    /// Account `i`'s profile (computed, not stored: pools can be large).
    pub fn account(&self, i: u32) -> Account {
        let mut rng = SeqRng::new(0, Stream::Account, i.into());
        let country = rng.weighted(&self.home_weights) as u8;
        let devices = 1 + rng.weighted(&[60, 30, 10]) as u8;
        let home_ips = [
            self.home_ip(country, &mut rng),
            self.home_ip(country, &mut rng),
        ];
        Account {
            country,
            devices,
            home_ips,
        }
    }

    fn home_ip(&self, country: u8, rng: &mut SeqRng) -> u32 {
        let local = &self.clean_ips_by_country[usize::from(country)];
        if !local.is_empty() {
            return pick(local, rng);
        }
        if !self.clean_ips.is_empty() {
            return pick(&self.clean_ips, rng);
        }
        rng.below(self.ips.len() as u64) as u32
    }

    /// Activity is skewed: the busiest 1% of accounts make about 10% of transactions.
    fn pick_account(&self, rng: &mut SeqRng) -> u32 {
        let n = u64::from(self.accounts);
        let u = rng.unit();
        let rank = ((n as f64 * u * u) as u64).min(n - 1);
        ((rank * ACCOUNT_SPREAD + 12_345) % n) as u32
    }

    fn pick_ip(&self, list: &[u32], rng: &mut SeqRng) -> u32 {
        if list.is_empty() {
            rng.below(self.ips.len() as u64) as u32
        } else {
            pick(list, rng)
        }
    }

    pub fn account_row(&self, i: u32) -> AccountRow {
        let account = self.account(i);
        let home = &COUNTRIES[usize::from(account.country)];
        let mut rng = SeqRng::new(0, Stream::AccountName, i.into());
        let (first, last) = match home.locale {
            En => person(EN, &mut rng),
            De => person(DE_DE, &mut rng),
            Fr => person(FR_FR, &mut rng),
            It => person(IT_IT, &mut rng),
            Pt => person(PT_PT, &mut rng),
        };
        let (f, l) = (email_part(first), email_part(last));
        let local = match rng.weighted(&[50, 30, 20]) {
            0 => format!("{f}.{l}"),
            1 => format!("{f}{l}{}", 60 + rng.below(40)),
            _ => format!("{}.{l}{}", &f[..f.len().min(1)], rng.below(100)),
        };
        let providers = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com"];
        let local_provider = match home.code {
            "DE" | "AT" => "web.de",
            "FR" | "BE" => "orange.fr",
            "IT" => "libero.it",
            "GB" | "IE" => "btinternet.com",
            "PT" => "sapo.pt",
            _ => "proton.me",
        };
        let provider = match rng.below(5) {
            4 => local_provider,
            k => providers[k as usize],
        };
        let signup = clock::days_from_civil(2016, 1, 1) + rng.below(3_000) as i64;
        AccountRow {
            id: account_id(i),
            user_name: format!("{first} {last}"),
            email: format!("{local}@{provider}"),
            country: home.code,
            signup_date: clock::date_string(signup),
        }
    }

    pub fn merchant_row(&self, i: u32) -> MerchantRow {
        let m = self.merchant(i);
        let home = &COUNTRIES[usize::from(m.country)];
        let mut rng = SeqRng::new(1, Stream::Merchant, i.into());
        let name = if rng.chance(0.5) {
            CompanyName(EN).fake_with_rng::<String, _>(&mut rng)
        } else {
            let nouns: &[&str] = match m.category {
                0 => &["Store", "Boutique", "Market", "Outlet", "Shop"],
                1 => &["Bistro", "Cafe", "Kitchen", "Bakery", "Grill"],
                2 => &["Travel", "Tours", "Airways", "Hotels", "Rail"],
                _ => &["Electronics", "Tech", "Digital", "Devices", "Computers"],
            };
            let surname: &str = match home.locale {
                En => LastName(EN).fake_with_rng(&mut rng),
                De => LastName(DE_DE).fake_with_rng(&mut rng),
                Fr => LastName(FR_FR).fake_with_rng(&mut rng),
                It => LastName(IT_IT).fake_with_rng(&mut rng),
                Pt => LastName(PT_PT).fake_with_rng(&mut rng),
            };
            format!(
                "{surname} {}",
                nouns[rng.below(nouns.len() as u64) as usize]
            )
        };
        MerchantRow {
            id: merchant_id(i),
            name,
            category: CATEGORIES[usize::from(m.category)],
            country: home.code,
            risk: m.risk,
        }
    }

    pub fn ip_row(&self, i: u32) -> IpRow {
        let ip = self.ip(i);
        let home = &COUNTRIES[usize::from(ip.country)];
        let mut rng = SeqRng::new(1, Stream::Ip, i.into());
        IpRow {
            ip: ip_string(ip.addr),
            country: home.code,
            city: home.cities[rng.below(home.cities.len() as u64) as usize],
            proxy: ip.proxy,
        }
    }
}

fn pick(list: &[u32], rng: &mut SeqRng) -> u32 {
    list[rng.below(list.len() as u64) as usize]
}

fn person<L: Data + Copy>(locale: L, rng: &mut SeqRng) -> (&'static str, &'static str) {
    (
        FirstName(locale).fake_with_rng(rng),
        LastName(locale).fake_with_rng(rng),
    )
}

/// Lower-case ASCII letters of a name ("Müller-Lüdenscheidt" -> "muellerluedenscheidt"
/// is not attempted: diacritics are transliterated, other marks dropped).
fn email_part(name: &str) -> String {
    let ascii = deunicode::deunicode(name);
    let part: String = ascii
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if part.is_empty() {
        "user".into()
    } else {
        part
    }
}

pub struct AccountRow {
    pub id: String,
    pub user_name: String,
    pub email: String,
    pub country: &'static str,
    pub signup_date: String,
}

pub struct MerchantRow {
    pub id: String,
    pub name: String,
    pub category: &'static str,
    pub country: &'static str,
    pub risk: i16,
}

pub struct IpRow {
    pub ip: String,
    pub country: &'static str,
    pub city: &'static str,
    pub proxy: bool,
}

pub fn account_id(i: u32) -> String {
    format!("ACC{i:06}")
}

pub fn merchant_id(i: u32) -> String {
    format!("MER{i:04}")
}

/// The address of pool entry `i`: unique for every `i` below 20 * 2^24.
pub fn ip_addr(i: u32) -> u32 {
    let k = FIRST_OCTETS.len() as u32;
    let first = FIRST_OCTETS[(i % k) as usize];
    // Each step is a bijection of 24-bit numbers (odd multipliers, xor-shifts), so
    // distinct indexes keep distinct addresses, spread over the whole block.
    const MASK: u32 = 0xff_ffff;
    let mut x = (i / k).wrapping_mul(0x9e_3779).wrapping_add(0x5a_5a5a) & MASK;
    x ^= x >> 12;
    x = x.wrapping_mul(0x2c_1b3d) & MASK;
    x ^= x >> 11;
    (first << 24) | x
}

pub fn ip_string(addr: u32) -> String {
    std::net::Ipv4Addr::from(addr).to_string()
}

/// A device id, `dev-` and 12 hex digits.
pub fn device_string(device: u64) -> String {
    format!("dev-{:012x}", device & 0xffff_ffff_ffff)
}

/// The device account `account` uses in slot `slot`.
fn account_device(account: u32, slot: u8) -> u64 {
    mix((u64::from(account) << 2 | u64::from(slot)) ^ 0xde71_ce00)
}

/// EUR for one unit of `currency` on day `day` (days since 1970-01-01): a smooth
/// seasonal path with a little daily noise, a pure function of the day.
pub fn fx_rate(day: i64, currency: Currency) -> f64 {
    if currency == Currency::Eur {
        return 1.0;
    }
    let t = day as f64;
    let phase = currency as u8 as f64 * 1.3;
    let noise = ((mix(day as u64 ^ (currency as u64) << 56) >> 11) as f64 / (1u64 << 53) as f64
        - 0.5)
        * 0.004;
    let tau = std::f64::consts::TAU;
    let rate = currency.base_rate()
        * (1.0
            + 0.03 * (tau * t / 365.25 + phase).sin()
            + 0.01 * (tau * t / 29.5 + phase).sin()
            + noise);
    (rate * 1e6).round() / 1e6
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

    #[test]
    fn reference_rows_are_stable_and_plausible() {
        let c = config(100, 10, 200);
        let w = World::new(&c);
        let a = w.account_row(42);
        assert_eq!(a.id, "ACC000042");
        assert_eq!(a.user_name, World::new(&c).account_row(42).user_name);
        assert!(a.email.contains('@') && a.email.is_ascii(), "{}", a.email);
        assert_eq!(a.country.len(), 2);
        assert_eq!(a.signup_date.len(), 10);
        let m = w.merchant_row(3);
        assert_eq!(m.id, "MER0003");
        assert!(CATEGORIES.contains(&m.category) && (1..=5).contains(&m.risk));
        let addrs: HashSet<String> = (0..200).map(|i| w.ip_row(i).ip).collect();
        assert_eq!(addrs.len(), 200);
        let distinct: HashSet<u32> = (0..1_000_000).step_by(97).map(ip_addr).collect();
        assert_eq!(distinct.len(), (0..1_000_000).step_by(97).count());
        let proxies = (0..200).filter(|&i| w.ip_row(i).proxy).count();
        assert!((1..40).contains(&proxies), "{proxies}");
    }

    #[test]
    fn fx_rates_are_smooth_and_eur_is_one() {
        let day = clock::days_from_civil(2025, 6, 1);
        assert_eq!(fx_rate(day, Currency::Eur), 1.0);
        for c in [Currency::Usd, Currency::Gbp] {
            for d in day..day + 365 {
                let (a, b) = (fx_rate(d, c), fx_rate(d + 1, c));
                assert!((a / c.base_rate() - 1.0).abs() < 0.05);
                assert!((a - b).abs() / a < 0.01);
            }
        }
    }
}
