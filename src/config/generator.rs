//! The `generator:` section of demo.yaml and the `findemo generate` flags over it,
//! checked into one [`GeneratorConfig`]. Parsing stays in the parent module (the only
//! user of the YAML crate); this is what the generator's settings mean.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `generator:` in demo.yaml: defaults of `findemo generate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGenerator {
    seed: Option<u64>,
    rate: Option<RawRate>,
    batch_rows: Option<u32>,
    accounts: Option<u32>,
    merchants: Option<u32>,
    ips: Option<u32>,
    fx_days: Option<u32>,
    #[serde(default)]
    status_weights: RawStatusWeights,
    settle_after: Option<u64>,
    delete_share: Option<f64>,
    delete_after: Option<u64>,
    fraud_share: Option<f64>,
    proxy_share: Option<f64>,
    retry_secs: Option<u64>,
    write: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRate {
    Number(f64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatusWeights {
    success: Option<u32>,
    pending: Option<u32>,
    failed: Option<u32>,
}

/// Transactions per second: a steady target, or as fast as PostgreSQL takes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    Max,
}

impl Rate {
    /// The highest steady rate accepted; above it, use `max`.
    pub const CEILING: f64 = 10_000_000.0;
    /// The lowest: one transaction a day.
    pub const FLOOR: f64 = 1.0 / 86_400.0;

    /// `max`, or a number of transactions per second above 0 (fractions allowed).
    pub fn parse(text: &str) -> Result<Rate, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        let n: f64 = text
            .parse()
            .map_err(|_| format!("{text:?} is not a number of transactions per second or `max`"))?;
        Rate::per_second(n)
    }

    fn per_second(n: f64) -> Result<Rate, String> {
        if !n.is_finite() || n <= 0.0 {
            return Err(format!("{n} must be above 0 (or `max`)"));
        }
        if n < Rate::FLOOR {
            return Err(format!("{n} is below one transaction a day"));
        }
        if n > Rate::CEILING {
            return Err(format!("{n} is above {}; use `max`", Rate::CEILING));
        }
        Ok(Rate::PerSecond(n))
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::PerSecond(n) => write!(f, "{n}/s"),
            Rate::Max => f.write_str("max"),
        }
    }
}

/// How the generator writes new transactions (`generator.write`).
///
/// Debezium's PostgreSQL connector (every release up to 3.6 at least) marks a WAL
/// position done after the first change event carrying it. `COPY` stores many rows
/// under one position (multi-insert WAL records), so a Kafka Connect restart in the
/// middle of such a transaction loses the rest of its rows. `Insert` gives every row
/// its own WAL record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMethod {
    /// Binary COPY into a per-connection temporary table (no WAL), then
    /// `INSERT ... SELECT` from it: one heap-insert WAL record per row.
    #[default]
    Insert,
    /// Binary COPY straight into `raw_transactions`: a little faster, but rows share
    /// WAL positions and can be lost across a Connect restart.
    Copy,
}

impl WriteMethod {
    /// `insert` or `copy`, as in demo.yaml.
    pub fn parse(text: &str) -> Result<WriteMethod, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "insert" => Ok(WriteMethod::Insert),
            "copy" => Ok(WriteMethod::Copy),
            _ => Err(format!("{text:?} is not `insert` or `copy`")),
        }
    }
}

impl std::fmt::Display for WriteMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteMethod::Insert => "insert",
            WriteMethod::Copy => "copy",
        })
    }
}

/// Initial status of a new transaction, as integer weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusWeights {
    pub success: u32,
    pub pending: u32,
    pub failed: u32,
}

/// The checked `generator:` section. The pools are the original demo's sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Seed of the transaction stream; a run resumes where the last run of its seed
    /// stopped.
    pub seed: u64,
    pub rate: Rate,
    /// Most transactions per batch (one database transaction each).
    pub batch_rows: u32,
    pub accounts: u32,
    pub merchants: u32,
    pub ips: u32,
    /// Days of FX rates before the first transaction's day.
    pub fx_days: u32,
    pub status_weights: StatusWeights,
    /// A pending transaction is settled (UPDATE to success or failed) this many
    /// transactions later.
    pub settle_after: u64,
    /// Share of transactions deleted later (0..1).
    pub delete_share: f64,
    /// A transaction chosen for deletion is deleted this many transactions later.
    pub delete_after: u64,
    /// Share of transactions that belong to fraud-like bursts (0..1).
    pub fraud_share: f64,
    /// Share of IP addresses flagged as proxy or VPN (0..1).
    pub proxy_share: f64,
    /// How long a batch is retried (reconnecting) before the run gives up.
    pub retry: Duration,
    pub write: WriteMethod,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 1,
            rate: Rate::PerSecond(1000.0),
            batch_rows: 10_000,
            accounts: 12_345,
            merchants: 56,
            ips: 5_678,
            fx_days: 365,
            status_weights: StatusWeights {
                success: 90,
                pending: 5,
                failed: 5,
            },
            settle_after: 1_000,
            delete_share: 0.005,
            delete_after: 2_000,
            fraud_share: 0.01,
            proxy_share: 0.03,
            retry: Duration::from_secs(120),
            write: WriteMethod::Insert,
        }
    }
}

/// `findemo generate` flags that override the `generator:` section.
#[derive(Debug, Default, Clone)]
pub struct GeneratorFlags {
    pub seed: Option<u64>,
    pub rate: Option<Rate>,
    pub accounts: Option<u32>,
    pub merchants: Option<u32>,
    pub ips: Option<u32>,
    pub fx_days: Option<u32>,
    pub write: Option<WriteMethod>,
}

impl GeneratorConfig {
    /// The section with the flags applied, checked again.
    pub fn with_flags(&self, flags: &GeneratorFlags) -> Result<GeneratorConfig, ConfigError> {
        let mut config = self.clone();
        config.seed = flags.seed.unwrap_or(config.seed);
        config.rate = flags.rate.unwrap_or(config.rate);
        config.accounts = flags.accounts.unwrap_or(config.accounts);
        config.merchants = flags.merchants.unwrap_or(config.merchants);
        config.ips = flags.ips.unwrap_or(config.ips);
        config.fx_days = flags.fx_days.unwrap_or(config.fx_days);
        config.write = flags.write.unwrap_or(config.write);
        check_generator(&config).map_err(|message| ConfigError::Invalid {
            path: "findemo generate".into(),
            message,
        })?;
        Ok(config)
    }
}

pub(super) fn validate_generator(raw: RawGenerator) -> Result<GeneratorConfig, String> {
    let d = GeneratorConfig::default();
    let rate = match raw.rate {
        None => Ok(d.rate),
        Some(RawRate::Number(n)) => Rate::per_second(n),
        Some(RawRate::Text(text)) => Rate::parse(&text),
    }
    .map_err(|e| format!("generator.rate: {e}"))?;
    let write = match raw.write {
        None => d.write,
        Some(text) => WriteMethod::parse(&text).map_err(|e| format!("generator.write: {e}"))?,
    };
    let w = raw.status_weights;
    let config = GeneratorConfig {
        seed: raw.seed.unwrap_or(d.seed),
        rate,
        batch_rows: raw.batch_rows.unwrap_or(d.batch_rows),
        accounts: raw.accounts.unwrap_or(d.accounts),
        merchants: raw.merchants.unwrap_or(d.merchants),
        ips: raw.ips.unwrap_or(d.ips),
        fx_days: raw.fx_days.unwrap_or(d.fx_days),
        status_weights: StatusWeights {
            success: w.success.unwrap_or(d.status_weights.success),
            pending: w.pending.unwrap_or(d.status_weights.pending),
            failed: w.failed.unwrap_or(d.status_weights.failed),
        },
        settle_after: raw.settle_after.unwrap_or(d.settle_after),
        delete_share: raw.delete_share.unwrap_or(d.delete_share),
        delete_after: raw.delete_after.unwrap_or(d.delete_after),
        fraud_share: raw.fraud_share.unwrap_or(d.fraud_share),
        proxy_share: raw.proxy_share.unwrap_or(d.proxy_share),
        retry: raw.retry_secs.map_or(d.retry, Duration::from_secs),
        write,
    };
    check_generator(&config)?;
    Ok(config)
}

/// Limits of the pools: far above the original's sizes, low enough that the
/// generator's in-memory tables stay small.
const MAX_ACCOUNTS: u32 = 1_000_000;
const MAX_MERCHANTS: u32 = 100_000;
const MAX_IPS: u32 = 1_000_000;

fn check_generator(c: &GeneratorConfig) -> Result<(), String> {
    let range = |name: &str, flag: &str, value: u64, max: u64| {
        if value == 0 || value > max {
            Err(format!(
                "generator.{name}{flag} is {value}; it must be between 1 and {max}"
            ))
        } else {
            Ok(())
        }
    };
    range(
        "accounts",
        " (--accounts)",
        c.accounts.into(),
        MAX_ACCOUNTS.into(),
    )?;
    range(
        "merchants",
        " (--merchants)",
        c.merchants.into(),
        MAX_MERCHANTS.into(),
    )?;
    range("ips", " (--ips)", c.ips.into(), MAX_IPS.into())?;
    range("fx_days", " (--fx-days)", c.fx_days.into(), 3_650)?;
    range("batch_rows", "", c.batch_rows.into(), 100_000)?;
    range("settle_after", "", c.settle_after, 1_000_000_000)?;
    range("delete_after", "", c.delete_after, 1_000_000_000)?;
    range("retry_secs", "", c.retry.as_secs(), 86_400)?;
    for (name, share) in [
        ("delete_share", c.delete_share),
        ("fraud_share", c.fraud_share),
        ("proxy_share", c.proxy_share),
    ] {
        if !(0.0..=1.0).contains(&share) {
            return Err(format!(
                "generator.{name} is {share}; it must be a share between 0 and 1"
            ));
        }
    }
    if c.fraud_share > 0.03 {
        return Err(format!(
            "generator.fraud_share is {}; at most 0.03 (one burst in every block of 256)",
            c.fraud_share
        ));
    }
    let w = c.status_weights;
    if w.success == 0 && w.failed == 0 {
        return Err(
            "generator.status_weights: success and failed cannot both be 0 (pending \
             transactions settle to one of them)"
                .into(),
        );
    }
    if c.delete_share > 0.0 && c.delete_after <= c.settle_after {
        return Err(format!(
            "generator.delete_after ({}) must be above generator.settle_after ({}): a \
             transaction is settled before it is deleted",
            c.delete_after, c.settle_after
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn generator_defaults_are_the_original_pools() {
        let g = parse("").unwrap().generator;
        assert_eq!(
            (g.accounts, g.merchants, g.ips, g.fx_days),
            (12_345, 56, 5_678, 365)
        );
        assert_eq!(
            g.status_weights,
            StatusWeights {
                success: 90,
                pending: 5,
                failed: 5
            }
        );
        assert_eq!(g, GeneratorConfig::default());
    }

    #[test]
    fn generator_section_is_read_and_checked() {
        let g = parse(
            "generator:\n  seed: 7\n  rate: max\n  accounts: 10\n  delete_share: 0.1\n  \
             status_weights: {pending: 20}\n",
        )
        .unwrap()
        .generator;
        assert_eq!((g.seed, g.rate, g.accounts), (7, Rate::Max, 10));
        assert_eq!(g.status_weights.pending, 20);
        assert_eq!(g.status_weights.success, 90);
        assert_eq!(
            parse("generator: {rate: 250}\n").unwrap().generator.rate,
            Rate::PerSecond(250.0)
        );

        for (yaml, needle) in [
            (
                "generator: {accounts: 0}\n",
                "generator.accounts (--accounts) is 0",
            ),
            ("generator: {merchants: 0}\n", "generator.merchants"),
            ("generator: {ips: 0}\n", "generator.ips"),
            (
                "generator: {rate: 0}\n",
                "generator.rate: 0 must be above 0",
            ),
            ("generator: {rate: -5}\n", "must be above 0"),
            ("generator: {rate: fast}\n", "not a number"),
            ("generator: {delete_share: 1.5}\n", "generator.delete_share"),
            (
                "generator: {settle_after: 10, delete_after: 5}\n",
                "delete_after",
            ),
            (
                "generator: {status_weights: {success: 0, failed: 0}}\n",
                "cannot both be 0",
            ),
        ] {
            let err = parse(yaml).unwrap_err().to_string();
            assert!(err.contains(needle), "{yaml}: {err}");
        }
        let err = parse("generator:\n  acounts: 5\n").unwrap_err().to_string();
        assert!(err.starts_with("demo.yaml:2:3: "), "{err}");
        let err = parse("generator:\n  accounts: -5\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("demo.yaml:2:13: "), "{err}");
    }

    #[test]
    fn write_method_is_insert_unless_copy_is_asked_for() {
        assert_eq!(parse("").unwrap().generator.write, WriteMethod::Insert);
        let copy = parse("generator: {write: copy}\n").unwrap().generator;
        assert_eq!(copy.write, WriteMethod::Copy);
        let insert = parse("generator:\n  write: INSERT\n").unwrap().generator;
        assert_eq!(insert.write, WriteMethod::Insert);
        let err = parse("generator: {write: fast}\n").unwrap_err().to_string();
        assert!(
            err.contains("generator.write: \"fast\" is not `insert` or `copy`"),
            "{err}"
        );
        assert_eq!(WriteMethod::Copy.to_string(), "copy");
        for m in [WriteMethod::Insert, WriteMethod::Copy] {
            assert_eq!(WriteMethod::parse(&m.to_string()), Ok(m));
        }
    }

    #[test]
    fn the_documented_demo_yaml_holds_the_generator_defaults() {
        let text = std::fs::read_to_string("demo.yaml").unwrap();
        let config = parse(&text).unwrap();
        assert_eq!(config.generator, GeneratorConfig::default());
        assert!(parse("generator: {fraud_share: 0.05}\n").is_err());
    }

    #[test]
    fn generator_flags_override_and_are_checked() {
        let g = GeneratorConfig::default();
        let flags = GeneratorFlags {
            seed: Some(9),
            rate: Some(Rate::Max),
            merchants: Some(3),
            ..Default::default()
        };
        let merged = g.with_flags(&flags).unwrap();
        assert_eq!(
            (merged.seed, merged.rate, merged.merchants),
            (9, Rate::Max, 3)
        );
        assert_eq!(merged.accounts, g.accounts);
        assert_eq!(merged.write, WriteMethod::Insert);
        let copy = GeneratorFlags {
            write: Some(WriteMethod::Copy),
            ..Default::default()
        };
        assert_eq!(g.with_flags(&copy).unwrap().write, WriteMethod::Copy);
        let zero = GeneratorFlags {
            ips: Some(0),
            ..Default::default()
        };
        assert!(g
            .with_flags(&zero)
            .unwrap_err()
            .to_string()
            .contains("--ips"));
    }

    #[test]
    fn rates() {
        assert_eq!(Rate::parse("max"), Ok(Rate::Max));
        assert_eq!(Rate::parse("MAX"), Ok(Rate::Max));
        assert_eq!(Rate::parse("5000"), Ok(Rate::PerSecond(5000.0)));
        assert_eq!(Rate::parse("0.5"), Ok(Rate::PerSecond(0.5)));
        for bad in ["0", "-1", "abc", "", "NaN", "inf", "1e12"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }
}
