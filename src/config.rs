//! demo.yaml and the flags that override it, turned into one checked [`Config`].
//!
//! The raw file is parsed into serde structs that reject unknown keys; one validation
//! pass then produces the `Config` every command uses. The YAML crate is used here only,
//! so parse errors (with line and column) are shaped in one place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::service::Service;

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "demo.yaml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// demo.yaml as written. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    stack: Option<String>,
    ready_timeout_secs: Option<u64>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    services: RawServices,
    #[serde(default)]
    pipeline: RawPipeline,
    #[serde(default)]
    generator: RawGenerator,
    #[serde(default)]
    dashboard: RawDashboard,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDashboard {
    port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    files: Option<PathBuf>,
    canary_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServices {
    #[serde(default)]
    postgres: RawService,
    #[serde(default)]
    kafka: RawService,
    #[serde(default)]
    connect: RawService,
    #[serde(default)]
    clickhouse: RawService,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    image: Option<String>,
    port: Option<u16>,
    memory: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// Values given on the command line (or through `FINDEMO_*` variables), which win over
/// the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub stack: Option<String>,
    pub ready_timeout: Option<Duration>,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from, for messages ("defaults" when no file).
    pub source: String,
    /// Prefix of every container, volume and network, and the value of the stack label.
    pub stack: String,
    /// How long `up` waits for one service to become ready.
    pub ready_timeout: Duration,
    /// Where per-stack state (generated credentials) is kept.
    pub state_dir: PathBuf,
    /// A folder with `sql/` and `connectors/` replacing the built-in pipeline files.
    pub pipeline_files: Option<PathBuf>,
    /// How long `up` waits for its canary change to reach ClickHouse.
    pub canary_timeout: Duration,
    pub services: BTreeMap<Service, ServiceConfig>,
    /// Defaults of `findemo generate`.
    pub generator: GeneratorConfig,
    /// Port of `findemo dashboard` (`--port` wins).
    pub dashboard_port: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub image: String,
    /// Host port on 127.0.0.1.
    pub port: u16,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Extra environment, added to (and overriding) what findemo sets.
    pub env: BTreeMap<String, String>,
}

impl Config {
    /// Loads `path` (or `demo.yaml` if present, or the defaults) and applies overrides.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let path = match path {
            Some(path) => path,
            None if Path::new(DEFAULT_FILE).exists() => Path::new(DEFAULT_FILE),
            None => return validate(RawConfig::default(), "defaults".into(), overrides),
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path, overrides)
    }

    /// Parses YAML text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        validate(
            parse_raw(text, path)?,
            path.display().to_string(),
            overrides,
        )
    }

    pub fn service(&self, service: Service) -> &ServiceConfig {
        &self.services[&service]
    }
}

fn parse_raw(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    serde_norway::from_str(text).map_err(|err| {
        let (line, column) = err
            .location()
            .map(|loc| (loc.line(), loc.column()))
            .unwrap_or((1, 1));
        // The crate appends " at line L column C" itself; the prefix already says it.
        let message = err.to_string();
        let message = match message.find(" at line ") {
            Some(at) => message[..at].to_string(),
            None => message,
        };
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

fn validate(raw: RawConfig, source: String, ov: &Overrides) -> Result<Config, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        path: source.clone(),
        message,
    };

    let stack = ov
        .stack
        .clone()
        .or(raw.stack)
        .unwrap_or_else(|| "findemo".to_string());
    let valid_stack = !stack.is_empty()
        && stack.len() <= 40
        && stack.starts_with(|c: char| c.is_ascii_lowercase())
        && stack
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid_stack {
        return Err(invalid(format!(
            "stack name {stack:?} must start with a lowercase letter and hold only \
             lowercase letters, digits and '-' (at most 40 characters)"
        )));
    }

    let ready_timeout = match (ov.ready_timeout, raw.ready_timeout_secs) {
        (Some(t), _) => t,
        (None, Some(0)) => return Err(invalid("ready_timeout_secs must be above 0".into())),
        (None, Some(secs)) => Duration::from_secs(secs),
        (None, None) => Duration::from_secs(180),
    };

    let state_dir = match raw.state_dir {
        Some(dir) => dir,
        None => default_state_dir(),
    };

    let mut services = BTreeMap::new();
    let raw_services = [
        (Service::Postgres, raw.services.postgres),
        (Service::Kafka, raw.services.kafka),
        (Service::Connect, raw.services.connect),
        (Service::Clickhouse, raw.services.clickhouse),
    ];
    for (service, raw) in raw_services {
        let memory = match raw.memory {
            Some(text) => Some(parse_memory(&text).ok_or_else(|| {
                invalid(format!(
                    "services.{service}.memory: {text:?} is not a size such as 512m or 2g"
                ))
            })?),
            None => None,
        };
        let port = raw.port.unwrap_or(service.default_port());
        if port == 0 {
            return Err(invalid(format!("services.{service}.port must not be 0")));
        }
        // The broker's host listener shares the container with its inner ones.
        let inner = [
            crate::service::KAFKA_INTERNAL_PORT,
            crate::service::KAFKA_CONTROLLER_PORT,
        ];
        if service == Service::Kafka && inner.contains(&port) {
            return Err(invalid(format!(
                "services.kafka.port {port} is taken inside the broker's container by its \
                 internal listeners ({} and {}); pick another",
                inner[0], inner[1]
            )));
        }
        let image = raw
            .image
            .unwrap_or_else(|| service.default_image().to_string());
        if image.trim().is_empty() {
            return Err(invalid(format!(
                "services.{service}.image must not be empty"
            )));
        }
        services.insert(
            service,
            ServiceConfig {
                image,
                port,
                memory,
                env: raw.env,
            },
        );
    }
    for (a, ca) in &services {
        for (b, cb) in &services {
            if a < b && ca.port == cb.port {
                return Err(invalid(format!(
                    "services.{a}.port and services.{b}.port are both {}",
                    ca.port
                )));
            }
        }
    }

    let canary_timeout = match raw.pipeline.canary_timeout_secs {
        Some(0) => {
            return Err(invalid(
                "pipeline.canary_timeout_secs must be above 0".into(),
            ))
        }
        Some(secs) => Duration::from_secs(secs),
        None => Duration::from_secs(120),
    };

    let generator = validate_generator(raw.generator).map_err(invalid)?;
    let dashboard_port = match raw.dashboard.port {
        Some(0) => return Err(invalid("dashboard.port must be above 0".into())),
        Some(port) => port,
        None => DEFAULT_DASHBOARD_PORT,
    };

    Ok(Config {
        source,
        stack,
        ready_timeout,
        state_dir,
        pipeline_files: raw.pipeline.files,
        canary_timeout,
        services,
        generator,
        dashboard_port,
    })
}

/// `findemo dashboard`'s port, as the original demo's web UI had it.
pub const DEFAULT_DASHBOARD_PORT: u16 = 5173;

/// `generator:` in demo.yaml: defaults of `findemo generate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenerator {
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

fn validate_generator(raw: RawGenerator) -> Result<GeneratorConfig, String> {
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

/// `$FINDEMO_STATE_DIR`, else `$XDG_STATE_HOME/findemo`, else `~/.local/state/findemo`.
fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FINDEMO_STATE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("findemo");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/state/findemo")
}

/// "512m", "2g", "1048576" (bytes) -> bytes.
fn parse_memory(text: &str) -> Option<i64> {
    let text = text.trim().to_ascii_lowercase();
    let text = text.strip_suffix('b').unwrap_or(&text);
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: i64 = digits.parse().ok()?;
    let mult: i64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&b| b > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("demo.yaml"), &Overrides::default())
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.stack, "findemo");
        assert_eq!(config.service(Service::Postgres).port, 5432);
        assert_eq!(config.service(Service::Clickhouse).port, 8123);
        assert_eq!(config.ready_timeout, Duration::from_secs(180));
        assert!(config.service(Service::Kafka).image.contains(':'));
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = parse("stack: x\nservices:\n  postgres:\n    imagee: foo\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("demo.yaml:4:5: "), "{text}");
        assert!(text.contains("unknown field `imagee`"), "{text}");
    }

    #[test]
    fn malformed_yaml_names_line_and_column() {
        let err = parse("stack: x\nservices: [\n").unwrap_err();
        match err {
            ConfigError::Parse { line, .. } => assert!(line >= 2),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn wrong_type_is_a_parse_error() {
        let err = parse("services:\n  kafka:\n    port: lots\n").unwrap_err();
        assert!(err.to_string().starts_with("demo.yaml:3:11: "), "{err}");
    }

    #[test]
    fn overrides_win_over_the_file() {
        let ov = Overrides {
            stack: Some("other".into()),
            ready_timeout: Some(Duration::from_secs(5)),
        };
        let config = Config::parse(
            "stack: fromfile\nready_timeout_secs: 9\n",
            Path::new("d.yaml"),
            &ov,
        )
        .unwrap();
        assert_eq!(config.stack, "other");
        assert_eq!(config.ready_timeout, Duration::from_secs(5));
    }

    #[test]
    fn duplicate_ports_and_bad_names_are_rejected() {
        let err = parse("services:\n  kafka: {port: 5432}\n").unwrap_err();
        assert!(err.to_string().contains("both 5432"), "{err}");
        assert!(parse("stack: Bad_Name\n").is_err());
        assert!(parse("services:\n  kafka: {port: 0}\n").is_err());
        let err = parse("services:\n  kafka: {port: 29092}\n").unwrap_err();
        assert!(err.to_string().contains("internal listeners"), "{err}");
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512m"), Some(512 << 20));
        assert_eq!(parse_memory("2G"), Some(2 << 30));
        assert_eq!(parse_memory("1024"), Some(1024));
        assert_eq!(parse_memory("lots"), None);
        assert_eq!(parse_memory("0m"), None);
        let err = parse("services:\n  connect: {memory: big}\n").unwrap_err();
        assert!(err.to_string().contains("services.connect.memory"), "{err}");
    }

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
