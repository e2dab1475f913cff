//! Where each service is and how findemo signs in, resolved once per command from the
//! runtime: the Docker runtime's containers on loopback with the stack's generated
//! credentials, or the endpoints demo.yaml gives for `runtime: external` with the
//! passwords read from the environment or files. Every client is built from these;
//! no other code writes an address.

use std::fmt;
use std::path::PathBuf;

use crate::config::{Config, ExternalConfig, Secret, SslMode};
use crate::service::{Service, KAFKA_INTERNAL_PORT, POSTGRES_DB};
use crate::state::Credentials;

/// A password: shown as `***` by `Debug`, so it never reaches a log.
#[derive(Clone, PartialEq)]
pub struct Password(String);

impl Password {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone)]
pub struct PgEndpoint {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Password,
    pub sslmode: SslMode,
    pub tls: PgTls,
    /// The database as Kafka Connect reaches it: the connector's `database.hostname`
    /// and `database.port`.
    pub internal_host: String,
    pub internal_port: u16,
    /// The connector's `database.password`: on Docker a reference to the Connect
    /// worker's environment (so the password never shows in the connector's config),
    /// elsewhere the password itself, which Connect needs and keeps.
    pub connector_password: Password,
}

/// PostgreSQL's TLS connector, built once from `sslmode` and the CA file.
#[derive(Clone)]
pub struct PgTls(pub tokio_postgres_rustls::MakeRustlsConnect);

impl fmt::Debug for PgTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PgTls")
    }
}

impl PgEndpoint {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone)]
pub struct KafkaEndpoint {
    /// `host:port,...` as this machine reaches the brokers.
    pub bootstrap: String,
    /// As Kafka Connect and ClickHouse reach them.
    pub internal: String,
    pub security_protocol: String,
    /// (mechanism, user, password) for SASL.
    pub sasl: Option<(String, String, Password)>,
    /// The Docker runtime's broker advertises `localhost`: stay on IPv4, as published.
    pub ipv4_only: bool,
}

#[derive(Debug, Clone)]
pub struct ConnectEndpoint {
    /// Base URL of the REST API, without a trailing '/'.
    pub url: String,
    pub auth: Option<(String, Password)>,
}

#[derive(Debug, Clone)]
pub struct ClickHouseEndpoint {
    /// Base URL of the HTTP interface, without a trailing '/'.
    pub url: String,
    pub user: String,
    pub password: Password,
    /// Set when DDL goes to a cluster (`runtime: external` with `cluster:`).
    pub cluster: Option<ClickHouseCluster>,
}

/// A ClickHouse cluster findemo's DDL is issued on.
#[derive(Debug, Clone, PartialEq)]
pub struct ClickHouseCluster {
    /// Its name in the servers' `remote_servers`.
    pub name: String,
    /// The ZooKeeper path of the stack's Replicated tables, one table below it each;
    /// `{shard}` is filled in by each server from its macros.
    pub tables_path: String,
}

/// The four services of a stack, as findemo reaches them.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub postgres: PgEndpoint,
    pub kafka: KafkaEndpoint,
    pub connect: ConnectEndpoint,
    pub clickhouse: ClickHouseEndpoint,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "services.{service}.password_env: the environment variable {var} is not set.\n\
         findemo reads {service}'s password from it (passwords are never written in demo.yaml): \
         `export {var}=...` and run the command again."
    )]
    MissingVar { service: Service, var: String },
    #[error("services.postgres: {0}")]
    Tls(String),
    #[error("services.{service}.password_file: cannot read {path}: {source}")]
    File {
        service: Service,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Endpoints {
    /// The Docker runtime: every service published on 127.0.0.1, reached inside the
    /// stack's network by its service name, with the stack's generated credentials.
    pub fn docker(config: &Config, creds: &Credentials) -> Endpoints {
        let port = |service: Service| config.service(service).port;
        let local = |service: Service| format!("http://127.0.0.1:{}", port(service));
        Endpoints {
            postgres: PgEndpoint {
                host: "127.0.0.1".into(),
                port: port(Service::Postgres),
                database: POSTGRES_DB.into(),
                user: creds.postgres_user.clone(),
                password: Password(creds.postgres_password.clone()),
                sslmode: SslMode::Disable,
                tls: pg_tls(SslMode::Disable, None).expect("a TLS config without files"),
                internal_host: Service::Postgres.name().into(),
                internal_port: 5432,
                connector_password: Password("${env:FINDEMO_POSTGRES_PASSWORD}".into()),
            },
            kafka: KafkaEndpoint {
                bootstrap: format!("127.0.0.1:{}", port(Service::Kafka)),
                internal: format!("{}:{KAFKA_INTERNAL_PORT}", Service::Kafka.name()),
                security_protocol: "PLAINTEXT".into(),
                sasl: None,
                ipv4_only: true,
            },
            connect: ConnectEndpoint {
                url: local(Service::Connect),
                auth: None,
            },
            clickhouse: ClickHouseEndpoint {
                url: local(Service::Clickhouse),
                user: creds.clickhouse_user.clone(),
                password: Password(creds.clickhouse_password.clone()),
                cluster: None,
            },
        }
    }

    /// `runtime: external`: demo.yaml's endpoints, with each password read from the
    /// variable or file it names.
    pub fn external(ext: &ExternalConfig, stack: &str) -> Result<Endpoints, EndpointError> {
        let pg = &ext.postgres;
        let pg_password = read_secret(Service::Postgres, &pg.password)?;
        let kafka_sasl = match &ext.kafka.sasl {
            Some(sasl) => Some((
                sasl.mechanism.clone(),
                sasl.user.clone(),
                read_secret(Service::Kafka, &sasl.password)?,
            )),
            None => None,
        };
        let connect_auth = match &ext.connect.auth {
            Some(auth) => Some((
                auth.user.clone(),
                read_secret(Service::Connect, &auth.password)?,
            )),
            None => None,
        };
        Ok(Endpoints {
            postgres: PgEndpoint {
                host: pg.host.clone(),
                port: pg.port,
                database: pg.database.clone(),
                user: pg.user.clone(),
                connector_password: pg_password.clone(),
                password: pg_password,
                sslmode: pg.sslmode,
                tls: pg_tls(pg.sslmode, pg.ca_file.as_deref())?,
                internal_host: pg.internal_host.clone(),
                internal_port: pg.internal_port,
            },
            kafka: KafkaEndpoint {
                bootstrap: ext.kafka.bootstrap_servers.clone(),
                internal: ext.kafka.internal_bootstrap_servers.clone(),
                security_protocol: ext.kafka.security_protocol.clone(),
                sasl: kafka_sasl,
                ipv4_only: false,
            },
            connect: ConnectEndpoint {
                url: ext.connect.url.clone(),
                auth: connect_auth,
            },
            clickhouse: ClickHouseEndpoint {
                url: ext.clickhouse.url.clone(),
                user: ext.clickhouse.user.clone(),
                password: read_secret(Service::Clickhouse, &ext.clickhouse.password)?,
                cluster: ext
                    .clickhouse
                    .cluster
                    .as_ref()
                    .map(|name| ClickHouseCluster {
                        name: name.clone(),
                        tables_path: format!("/clickhouse/tables/{{shard}}/findemo-{stack}"),
                    }),
            },
        })
    }

    /// Where a service is, for messages.
    pub fn address(&self, service: Service) -> String {
        match service {
            Service::Postgres => self.postgres.address(),
            Service::Kafka => self.kafka.bootstrap.clone(),
            Service::Connect => self.connect.url.clone(),
            Service::Clickhouse => self.clickhouse.url.clone(),
        }
    }
}

fn pg_tls(sslmode: SslMode, ca_file: Option<&std::path::Path>) -> Result<PgTls, EndpointError> {
    crate::clients::tls::postgres(sslmode, ca_file)
        .map(PgTls)
        .map_err(EndpointError::Tls)
}

fn read_secret(service: Service, secret: &Secret) -> Result<Password, EndpointError> {
    match secret {
        Secret::Env(var) => match std::env::var(var) {
            Ok(value) => Ok(Password(value)),
            Err(_) => Err(EndpointError::MissingVar {
                service,
                var: var.clone(),
            }),
        },
        Secret::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => Ok(Password(text.trim_end_matches(['\n', '\r']).to_string())),
            Err(source) => Err(EndpointError::File {
                service,
                path: path.clone(),
                source,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, Runtime};
    use std::path::Path;

    #[test]
    fn docker_endpoints_are_loopback_and_service_names() {
        let config = Config::parse(
            "services:\n  kafka: {port: 19092}\n",
            Path::new("t"),
            &Overrides::default(),
        )
        .unwrap();
        let ep = Endpoints::docker(&config, &Credentials::generate());
        assert_eq!(ep.kafka.bootstrap, "127.0.0.1:19092");
        assert_eq!(ep.kafka.internal, "kafka:29092");
        assert_eq!(ep.postgres.internal_host, "postgres");
        assert_eq!(ep.clickhouse.url, "http://127.0.0.1:8123");
        assert!(!format!("{ep:?}").contains(ep.postgres.password.expose()));
    }

    #[test]
    fn external_passwords_come_from_the_environment_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ch");
        std::fs::write(&file, "s3cret\n").unwrap();
        let yaml = format!(
            "runtime: external\nservices:\n  postgres: {{host: db, user: u, password_env: FINDEMO_TEST_UNSET_VAR}}\n  \
             kafka: {{bootstrap_servers: 'b:9092'}}\n  connect: {{url: 'http://c:8083'}}\n  \
             clickhouse: {{url: 'http://ch:8123', user: u, password_file: {}}}\n",
            file.display()
        );
        let config = Config::parse(&yaml, Path::new("t"), &Overrides::default()).unwrap();
        let Runtime::External(ext) = &config.runtime else {
            panic!("not external")
        };
        let err = Endpoints::external(ext, "s").unwrap_err().to_string();
        assert!(err.contains("FINDEMO_TEST_UNSET_VAR is not set"), "{err}");
        let mut ext = ext.clone();
        ext.postgres.password = Secret::File(file);
        let ep = Endpoints::external(&ext, "s").unwrap();
        assert_eq!(ep.clickhouse.password.expose(), "s3cret");
        assert_eq!(ep.postgres.connector_password.expose(), "s3cret");
        assert_eq!(ep.kafka.internal, "b:9092");
        assert_eq!(ep.address(Service::Connect), "http://c:8083");
    }
}
