//! The generated world: reference data (accounts, merchants, IP geolocation) and FX
//! rates, each row a pure function of its number or day.
//!
//! Reference row `i` depends only on `i` (never on `--seed`), so every seed shares one
//! world and re-inserting it is idempotent. Transactions ([`super::tx`]) draw from it.

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
const TRAVEL: u8 = 2;
const ELECTRONICS: u8 = 3;

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
    pub(super) fn base_rate(self) -> f64 {
        match self {
            Currency::Eur => 1.0,
            Currency::Usd => 0.92,
            Currency::Gbp => 1.17,
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

pub(super) struct Country {
    code: &'static str,
    /// Share of accounts and merchants; 0 for countries only seen as IP origins.
    home_weight: u32,
    /// Share of IP addresses.
    ip_weight: u32,
    pub(super) currency: Currency,
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
pub(super) const COUNTRIES: &[Country] = &[
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
    pub(super) merchant_popularity: Zipf,
    pub(super) risky_merchants: Vec<u32>,
    pub(super) ips: Vec<Ip>,
    /// Pool indexes of addresses that are not proxies, by country.
    clean_ips_by_country: Vec<Vec<u32>>,
    clean_ips: Vec<u32>,
    pub(super) proxies: Vec<u32>,
    /// Addresses in countries where no account lives.
    pub(super) foreign_ips: Vec<u32>,
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
    pub(super) fn pick_account(&self, rng: &mut SeqRng) -> u32 {
        let n = u64::from(self.accounts);
        let u = rng.unit();
        let rank = ((n as f64 * u * u) as u64).min(n - 1);
        ((rank * ACCOUNT_SPREAD + 12_345) % n) as u32
    }

    pub(super) fn pick_ip(&self, list: &[u32], rng: &mut SeqRng) -> u32 {
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

pub(super) fn pick(list: &[u32], rng: &mut SeqRng) -> u32 {
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
pub(super) fn account_device(account: u32, slot: u8) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn reference_rows_are_stable_and_plausible() {
        let c = GeneratorConfig {
            accounts: 100,
            merchants: 10,
            ips: 200,
            ..GeneratorConfig::default()
        };
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
