//! `runtime: external` in demo.yaml: the services a team already runs, given by their
//! endpoints instead of images. This checks what the file says; reading the secrets it
//! names (`password_env`, `password_file`) is left to [`crate::endpoints`], so a
//! command that needs no password never fails for a missing one.

use std::path::PathBuf;

use super::{RawService, RawServices};
use crate::service::Service;

/// Where a password comes from. demo.yaml never holds one.
#[derive(Debug, Clone, PartialEq)]
pub enum Secret {
    /// An environment variable's value.
    Env(String),
    /// A file's content, without its trailing newline.
    File(PathBuf),
}

/// How findemo's PostgreSQL connections use TLS, as libpq's `sslmode` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS, without checking the server's certificate.
    Require,
    /// TLS, with the certificate checked against `ca_file` and the host name.
    VerifyFull,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExternalPostgres {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Secret,
    pub sslmode: SslMode,
    pub ca_file: Option<PathBuf>,
    /// The database as Kafka Connect reaches it (the connector's `database.hostname`).
    pub internal_host: String,
    pub internal_port: u16,
}

/// How findemo's own Kafka clients authenticate (Connect's and ClickHouse's are
/// configured on their servers).
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSasl {
    pub mechanism: String,
    pub user: String,
    pub password: Secret,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExternalKafka {
    /// `host:port,...` as this machine reaches the brokers.
    pub bootstrap_servers: String,
    /// As Kafka Connect and ClickHouse reach them (ClickHouse's Kafka tables use it).
    pub internal_bootstrap_servers: String,
    /// PLAINTEXT or SASL_PLAINTEXT.
    pub security_protocol: String,
    pub sasl: Option<KafkaSasl>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BasicAuth {
    pub user: String,
    pub password: Secret,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExternalConnect {
    /// The REST API's base URL, without a trailing '/'.
    pub url: String,
    pub auth: Option<BasicAuth>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExternalClickHouse {
    /// The HTTP(S) interface's base URL, without a trailing '/'.
    pub url: String,
    pub user: String,
    pub password: Secret,
    /// A cluster of the server's `remote_servers`: DDL is then issued `ON CLUSTER`,
    /// with Replicated engines.
    pub cluster: Option<String>,
}

/// The four endpoints of `runtime: external`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalConfig {
    pub postgres: ExternalPostgres,
    pub kafka: ExternalKafka,
    pub connect: ExternalConnect,
    pub clickhouse: ExternalClickHouse,
}

/// The keys each service takes under `runtime: external`.
fn allowed(service: Service) -> &'static [&'static str] {
    match service {
        Service::Postgres => &[
            "host",
            "port",
            "database",
            "user",
            "password_env",
            "password_file",
            "sslmode",
            "ca_file",
            "internal_host",
            "internal_port",
        ],
        Service::Kafka => &[
            "bootstrap_servers",
            "internal_bootstrap_servers",
            "security_protocol",
            "sasl_mechanism",
            "user",
            "password_env",
            "password_file",
        ],
        Service::Connect => &["url", "user", "password_env", "password_file"],
        Service::Clickhouse => &["url", "user", "password_env", "password_file", "cluster"],
    }
}

/// The keys that are set in one service's section.
pub(super) fn keys_set(raw: &RawService) -> Vec<&'static str> {
    let set = [
        ("image", raw.image.is_some()),
        ("port", raw.port.is_some()),
        ("memory", raw.memory.is_some()),
        ("env", !raw.env.is_empty()),
        ("host", raw.host.is_some()),
        ("database", raw.database.is_some()),
        ("user", raw.user.is_some()),
        ("password_env", raw.password_env.is_some()),
        ("password_file", raw.password_file.is_some()),
        ("sslmode", raw.sslmode.is_some()),
        ("ca_file", raw.ca_file.is_some()),
        ("internal_host", raw.internal_host.is_some()),
        ("internal_port", raw.internal_port.is_some()),
        ("bootstrap_servers", raw.bootstrap_servers.is_some()),
        (
            "internal_bootstrap_servers",
            raw.internal_bootstrap_servers.is_some(),
        ),
        ("security_protocol", raw.security_protocol.is_some()),
        ("sasl_mechanism", raw.sasl_mechanism.is_some()),
        ("url", raw.url.is_some()),
        ("cluster", raw.cluster.is_some()),
    ];
    set.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect()
}

/// The keys `runtime: docker` takes: the container's.
pub(super) const DOCKER_KEYS: [&str; 4] = ["image", "port", "memory", "env"];

/// Checks the `services:` section for `runtime: external`.
pub(super) fn validate_external(raw: &RawServices) -> Result<ExternalConfig, String> {
    for (service, section) in raw.sections() {
        if let Some(key) = keys_set(section)
            .into_iter()
            .find(|k| !allowed(service).contains(k))
        {
            return Err(format!(
                "services.{service}.{key} is not a setting of runtime: external \
                 (services.{service} takes {})",
                allowed(service).join(", ")
            ));
        }
    }
    Ok(ExternalConfig {
        postgres: postgres(&raw.postgres)?,
        kafka: kafka(&raw.kafka)?,
        connect: connect(&raw.connect)?,
        clickhouse: clickhouse(&raw.clickhouse)?,
    })
}

fn required<'a>(value: &'a Option<String>, service: Service, key: &str) -> Result<&'a str, String> {
    match value.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => Ok(text),
        _ => Err(format!(
            "services.{service}.{key} is required with runtime: external"
        )),
    }
}

/// `password_env` or `password_file`, exactly one of them (or none when optional).
fn secret(raw: &RawService, service: Service) -> Result<Option<Secret>, String> {
    match (&raw.password_env, &raw.password_file) {
        (Some(_), Some(_)) => Err(format!(
            "services.{service}: give password_env or password_file, not both"
        )),
        (Some(var), None) if var.trim().is_empty() => Err(format!(
            "services.{service}.password_env must name an environment variable"
        )),
        (Some(var), None) => Ok(Some(Secret::Env(var.trim().to_string()))),
        (None, Some(path)) => Ok(Some(Secret::File(path.clone()))),
        (None, None) => Ok(None),
    }
}

fn required_secret(raw: &RawService, service: Service) -> Result<Secret, String> {
    secret(raw, service)?.ok_or_else(|| {
        format!(
            "services.{service} needs password_env (an environment variable holding the \
             password) or password_file; passwords are never written in demo.yaml"
        )
    })
}

fn postgres(raw: &RawService) -> Result<ExternalPostgres, String> {
    let service = Service::Postgres;
    let host = required(&raw.host, service, "host")?.to_string();
    let port = nonzero(raw.port.unwrap_or(5432), "services.postgres.port")?;
    let sslmode = match raw.sslmode.as_deref().unwrap_or("disable") {
        "disable" => SslMode::Disable,
        "require" => SslMode::Require,
        "verify-full" => SslMode::VerifyFull,
        other => {
            return Err(format!(
                "services.postgres.sslmode {other:?} must be disable, require or verify-full"
            ))
        }
    };
    if sslmode == SslMode::VerifyFull && raw.ca_file.is_none() {
        return Err(
            "services.postgres.sslmode verify-full needs ca_file: the CA \
                    certificate (PEM) the server's certificate is checked against"
                .into(),
        );
    }
    if sslmode != SslMode::VerifyFull && raw.ca_file.is_some() {
        return Err("services.postgres.ca_file is only read with sslmode: verify-full".into());
    }
    Ok(ExternalPostgres {
        internal_host: raw.internal_host.clone().unwrap_or_else(|| host.clone()),
        internal_port: nonzero(
            raw.internal_port.unwrap_or(port),
            "services.postgres.internal_port",
        )?,
        host,
        port,
        database: raw
            .database
            .clone()
            .unwrap_or_else(|| crate::service::POSTGRES_DB.to_string()),
        user: required(&raw.user, service, "user")?.to_string(),
        password: required_secret(raw, service)?,
        sslmode,
        ca_file: raw.ca_file.clone(),
    })
}

fn kafka(raw: &RawService) -> Result<ExternalKafka, String> {
    let service = Service::Kafka;
    let bootstrap_servers = required(&raw.bootstrap_servers, service, "bootstrap_servers")?;
    let protocol = raw
        .security_protocol
        .as_deref()
        .unwrap_or("PLAINTEXT")
        .to_ascii_uppercase();
    let sasl = match protocol.as_str() {
        "PLAINTEXT" => {
            if raw.user.is_some() || raw.sasl_mechanism.is_some() || secret(raw, service)?.is_some()
            {
                return Err("services.kafka: user, sasl_mechanism and a password need \
                            security_protocol: SASL_PLAINTEXT"
                    .into());
            }
            None
        }
        "SASL_PLAINTEXT" => {
            let mechanism = raw.sasl_mechanism.as_deref().unwrap_or("PLAIN");
            if mechanism != "PLAIN" {
                return Err(format!(
                    "services.kafka.sasl_mechanism {mechanism:?}: findemo's Kafka client \
                     supports PLAIN (SCRAM needs TLS support findemo is not built with)"
                ));
            }
            Some(KafkaSasl {
                mechanism: mechanism.to_string(),
                user: required(&raw.user, service, "user")?.to_string(),
                password: required_secret(raw, service)?,
            })
        }
        "SSL" | "SASL_SSL" => {
            return Err(format!(
                "services.kafka.security_protocol {protocol}: findemo's Kafka client is built \
                 without TLS; use PLAINTEXT or SASL_PLAINTEXT (a listener for this machine)"
            ))
        }
        other => {
            return Err(format!(
                "services.kafka.security_protocol {other:?} must be PLAINTEXT or SASL_PLAINTEXT"
            ))
        }
    };
    Ok(ExternalKafka {
        internal_bootstrap_servers: raw
            .internal_bootstrap_servers
            .clone()
            .unwrap_or_else(|| bootstrap_servers.to_string()),
        bootstrap_servers: bootstrap_servers.to_string(),
        security_protocol: protocol,
        sasl,
    })
}

fn connect(raw: &RawService) -> Result<ExternalConnect, String> {
    let service = Service::Connect;
    let url = http_url(required(&raw.url, service, "url")?, "services.connect.url")?;
    let auth =
        match (&raw.user, secret(raw, service)?) {
            (Some(user), Some(password)) => Some(BasicAuth {
                user: user.clone(),
                password,
            }),
            (None, None) => None,
            _ => return Err(
                "services.connect: basic auth needs both user and password_env (or password_file)"
                    .into(),
            ),
        };
    Ok(ExternalConnect { url, auth })
}

fn clickhouse(raw: &RawService) -> Result<ExternalClickHouse, String> {
    let service = Service::Clickhouse;
    Ok(ExternalClickHouse {
        url: http_url(
            required(&raw.url, service, "url")?,
            "services.clickhouse.url",
        )?,
        user: required(&raw.user, service, "user")?.to_string(),
        password: required_secret(raw, service)?,
        cluster: raw.cluster.as_deref().map(cluster_name).transpose()?,
    })
}

/// A cluster name as `remote_servers` spells it: written into DDL between backquotes.
fn cluster_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !ok {
        return Err(format!(
            "services.clickhouse.cluster {name:?} must be a cluster name of the server's \
             remote_servers (letters, digits, '_', '-', '.')"
        ));
    }
    Ok(name.to_string())
}

fn http_url(text: &str, key: &str) -> Result<String, String> {
    let ok = (text.starts_with("http://") || text.starts_with("https://"))
        && reqwest::Url::parse(text).is_ok_and(|u| u.host_str().is_some());
    if !ok {
        return Err(format!(
            "{key} {text:?} must be an http:// or https:// URL such as http://host:8123"
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

fn nonzero(port: u16, key: &str) -> Result<u16, String> {
    match port {
        0 => Err(format!("{key} must not be 0")),
        port => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;
    use crate::config::Runtime;

    use super::*;

    const FULL: &str = "runtime: external
services:
  postgres: {host: db, port: 6432, user: app, password_env: PGPW, internal_host: pg}
  kafka: {bootstrap_servers: 'localhost:19092', internal_bootstrap_servers: 'kafka:29092'}
  connect: {url: 'http://connect:8083/'}
  clickhouse: {url: 'https://ch:8443', user: u, password_file: /run/ch}
";

    #[test]
    fn a_full_external_section() {
        let config = parse(FULL).unwrap();
        let Runtime::External(ext) = &config.runtime else {
            panic!("not external");
        };
        assert_eq!(ext.postgres.host, "db");
        assert_eq!(ext.postgres.internal_host, "pg");
        assert_eq!(ext.postgres.internal_port, 6432);
        assert_eq!(ext.postgres.database, "financial");
        assert_eq!(ext.postgres.password, Secret::Env("PGPW".into()));
        assert_eq!(ext.postgres.sslmode, SslMode::Disable);
        assert_eq!(ext.kafka.internal_bootstrap_servers, "kafka:29092");
        assert_eq!(ext.connect.url, "http://connect:8083");
        assert_eq!(ext.clickhouse.password, Secret::File("/run/ch".into()));
        assert_eq!(ext.clickhouse.cluster, None);
    }

    #[test]
    fn external_settings_are_checked() {
        let err = |yaml: &str| parse(yaml).unwrap_err().to_string();
        assert!(err("runtime: external\n").contains("services.postgres.host is required"));
        let no_pw = FULL.replace(", password_env: PGPW", "");
        assert!(err(&no_pw).contains("password_env"), "{}", err(&no_pw));
        let image = FULL.replace("url: 'http://connect:8083/'", "url: 'http://c', image: x");
        assert!(err(&image).contains("services.connect.image is not a setting"));
        let cluster =
            |name: &str| FULL.replace("/run/ch}", &format!("/run/ch, cluster: '{name}'}}"));
        assert!(err(&cluster("a b")).contains("services.clickhouse.cluster \"a b\""));
        let Runtime::External(ext) = parse(&cluster("main-1")).unwrap().runtime else {
            panic!("not external");
        };
        assert_eq!(ext.clickhouse.cluster.as_deref(), Some("main-1"));
        let url = FULL.replace("https://ch:8443", "ch:8443");
        assert!(err(&url).contains("http:// or https://"));
        let ssl = FULL.replace("internal_host: pg", "sslmode: verify-full");
        assert!(err(&ssl).contains("ca_file"));
        let sasl = FULL.replace("'kafka:29092'", "'k:1', security_protocol: SSL");
        assert!(err(&sasl).contains("without TLS"));
        assert!(err("runtime: cloud\n").contains("runtime"));
        let docker = "services:\n  postgres: {host: db}\n";
        assert!(err(docker).contains("runtime: external"), "{}", err(docker));
    }
}
