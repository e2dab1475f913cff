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

mod external;
mod generator;

pub use external::{ExternalConfig, Secret, SslMode};
use generator::{validate_generator, RawGenerator};
pub use generator::{GeneratorConfig, GeneratorFlags, Rate, WriteMethod};

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
    runtime: Option<String>,
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

impl RawServices {
    fn sections(&self) -> [(Service, &RawService); 4] {
        [
            (Service::Postgres, &self.postgres),
            (Service::Kafka, &self.kafka),
            (Service::Connect, &self.connect),
            (Service::Clickhouse, &self.clickhouse),
        ]
    }
}

/// One service's section: the container's keys (`runtime: docker`) and the endpoint's
/// (`runtime: external`); validation accepts each runtime's own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    image: Option<String>,
    port: Option<u16>,
    memory: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    host: Option<String>,
    database: Option<String>,
    user: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    sslmode: Option<String>,
    ca_file: Option<PathBuf>,
    internal_host: Option<String>,
    internal_port: Option<u16>,
    bootstrap_servers: Option<String>,
    internal_bootstrap_servers: Option<String>,
    security_protocol: Option<String>,
    sasl_mechanism: Option<String>,
    url: Option<String>,
    cluster: Option<String>,
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
    /// Who runs the services: findemo on Docker, or someone else.
    pub runtime: Runtime,
    /// How long `up` waits for one service to become ready.
    pub ready_timeout: Duration,
    /// Where per-stack state (generated credentials) is kept.
    pub state_dir: PathBuf,
    /// A folder with `sql/` and `connectors/` replacing the built-in pipeline files.
    pub pipeline_files: Option<PathBuf>,
    /// How long `up` waits for its canary change to reach ClickHouse.
    pub canary_timeout: Duration,
    /// The containers of `runtime: docker` (defaults under `runtime: external`).
    pub services: BTreeMap<Service, ServiceConfig>,
    /// Defaults of `findemo generate`.
    pub generator: GeneratorConfig,
    /// Port of `findemo dashboard` (`--port` wins).
    pub dashboard_port: u16,
}

/// Who runs the four services.
#[derive(Debug, Clone, PartialEq)]
pub enum Runtime {
    /// findemo, as containers on the Docker engine (the default).
    Docker,
    /// Someone else: demo.yaml gives each service's endpoint.
    External(Box<ExternalConfig>),
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

    let runtime = match raw.runtime.as_deref().unwrap_or("docker") {
        "docker" => {
            for (service, section) in raw.services.sections() {
                if let Some(key) = external::keys_set(section)
                    .into_iter()
                    .find(|k| !external::DOCKER_KEYS.contains(k))
                {
                    return Err(invalid(format!(
                        "services.{service}.{key} is a setting of runtime: external; with \
                         runtime: docker (the default) findemo runs the services and \
                         services.{service} takes {}",
                        external::DOCKER_KEYS.join(", ")
                    )));
                }
            }
            Runtime::Docker
        }
        "external" => Runtime::External(Box::new(
            external::validate_external(&raw.services).map_err(&invalid)?,
        )),
        other => {
            return Err(invalid(format!(
                "runtime {other:?} must be docker (findemo runs the services) or external \
                 (services you run, given by their endpoints)"
            )))
        }
    };
    let external = matches!(runtime, Runtime::External(_));

    let mut services = BTreeMap::new();
    let raw_services = [
        (Service::Postgres, raw.services.postgres),
        (Service::Kafka, raw.services.kafka),
        (Service::Connect, raw.services.connect),
        (Service::Clickhouse, raw.services.clickhouse),
    ];
    for (service, mut raw) in raw_services {
        if external {
            // The endpoint's settings were read above; the containers keep defaults.
            raw = RawService::default();
        }
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
        runtime,
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

    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
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
}
