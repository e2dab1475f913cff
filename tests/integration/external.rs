//! `runtime: external`: findemo on services it did not start. The four test-bed images
//! run here with plain `docker run`, as a team's own services would: no findemo labels,
//! their own private network with their own host names (`xpg`, `xkafka`, ...), random
//! host ports, their own users and random passwords, and a Kafka Connect worker without
//! findemo's environment variable or config providers (findemo sends the database
//! password in the connector config). PostgreSQL, ClickHouse and Connect also speak TLS
//! with a certificate of a CA the bed makes. An external-runtime demo.yaml points
//! findemo at them; the whole flow runs twice with `reset` between (the second time over
//! verified TLS), each bad input the test bed can produce is refused with nothing
//! created, and ClickHouse runs as a two-replica cluster with ZooKeeper.
//!
//! Containers are named `xbed-<unique>-<service>` and removed, with their network and
//! volumes, when the [`ExternalBed`] is dropped (`XBED_KEEP=1` leaves them running).
//! `reset` deleting findemo's topics and no others also proves the test bed's fix of
//! tansu 0.6.0's DeleteTopics, which deleted every topic (tests/testbed/README.md).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;

use crate::harness::{http_client, rt, Run, IMAGES};

/// Host names of the services on the bed's network (deliberately not the names
/// findemo's own containers have, so nothing can work by accident).
const PG_ALIAS: &str = "xpg";
const KAFKA_ALIAS: &str = "xkafka";
const CONNECT_ALIAS: &str = "xconnect";
const CLICKHOUSE_ALIAS: &str = "xch";
/// The second ClickHouse replica and ZooKeeper of [`ExternalBed::start_cluster`].
const CLICKHOUSE2_ALIAS: &str = "xch2";
const ZOOKEEPER_ALIAS: &str = "xzk";
const ZOOKEEPER_IMAGE: &str = "findemo-testbed/zookeeper:3.8";
/// The password of the Connect worker's keystore (a test key's, thrown away).
const KEYSTORE_PASSWORD: &str = "xbed-keystore";
/// The cluster both replicas are in: one shard, two replicas.
const CLUSTER: &str = "xbed_cluster";
/// The broker's listener for Connect and ClickHouse, on the bed's network.
const KAFKA_INTERNAL_PORT: u16 = 29092;
/// Environment variables the demo.yaml names for the passwords.
const PG_PASSWORD_ENV: &str = "XBED_PG_PASSWORD";
const CH_PASSWORD_ENV: &str = "XBED_CH_PASSWORD";
/// A ClickHouse user that may read but not create databases (readonly=1).
const CH_READER: &str = "xreader";
const CH_READER_PASSWORD_ENV: &str = "XBED_CH_READER_PASSWORD";
const DEBEZIUM_POSTGRES: &str = "io.debezium.connector.postgresql.PostgresConnector";
/// Every ClickHouse database findemo's SQL files create.
const CLICKHOUSE_DATABASES: [&str; 4] = ["bronze", "silver", "gold", "findemo_meta"];
/// How long the bed's services get to answer after `docker run`.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// The same files findemo's docker runtime gives its ClickHouse (src/service.rs).
const CLICKHOUSE_KAFKA_XML: &str =
    "<yandex>\n  <kafka>\n    <auto_offset_reset>smallest</auto_offset_reset>\n    \
     <session_timeout_ms>10000</session_timeout_ms>\n  </kafka>\n</yandex>\n";
const CLICKHOUSE_STREAM_XML: &str = "<yandex>\n  <profiles>\n    <default>\n      \
    <stream_flush_interval_ms>250</stream_flush_interval_ms>\n    </default>\n  \
    </profiles>\n</yandex>\n";

fn image(service: &str) -> &'static str {
    IMAGES
        .iter()
        .find(|(s, _)| *s == service)
        .map(|(_, image)| *image)
        .expect("test-bed image")
}

/// A random password of letters and digits.
fn password() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// A port that is free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// `docker ARGS`: its trimmed stdout, or what went wrong.
fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("docker {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The four test-bed services started without findemo, removed when dropped.
pub struct ExternalBed {
    /// `xbed-<pid>-<seq>-<random>`: prefix of every container, and the network's name.
    pub id: String,
    pub dir: tempfile::TempDir,
    network: String,
    /// Every container started, removed on drop.
    containers: Vec<String>,
    pub pg_port: u16,
    pub kafka_port: u16,
    pub connect_port: u16,
    /// The Connect worker's HTTPS port (a certificate of the bed's CA).
    pub connect_https_port: u16,
    pub clickhouse_port: u16,
    /// The first ClickHouse's HTTPS port (a certificate of the bed's CA).
    pub clickhouse_https_port: u16,
    /// The second replica's HTTP port, on a bed started with [`ExternalBed::start_cluster`].
    pub clickhouse2_port: Option<u16>,
    pub pg_user: String,
    pub pg_password: String,
    pub ch_user: String,
    pub ch_password: String,
    pub ch_reader_password: String,
    seq: u32,
}

/// How a bed's PostgreSQL offers TLS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PgTls {
    Off,
    On,
    /// Every connection without TLS is refused (`hostnossl ... reject`).
    Required,
}

/// A PostgreSQL started beside the bed's own (same network, user and password).
pub struct ExtraPostgres {
    pub alias: String,
    pub port: u16,
}

impl ExternalBed {
    /// Starts the four services and waits until each answers.
    pub fn start() -> ExternalBed {
        ExternalBed::start_with(false)
    }

    /// As [`ExternalBed::start`], with ClickHouse as a cluster: two replicas of one
    /// shard ([`CLUSTER`]) and the ZooKeeper they need.
    pub fn start_cluster() -> ExternalBed {
        ExternalBed::start_with(true)
    }

    fn start_with(cluster: bool) -> ExternalBed {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!(
            "xbed-{}-{seq}-{}",
            std::process::id(),
            password()[..4].to_lowercase()
        );
        let mut bed = ExternalBed {
            network: format!("{id}-net"),
            id,
            dir: tempfile::tempdir().expect("temp dir"),
            containers: Vec::new(),
            pg_port: free_port(),
            kafka_port: free_port(),
            connect_port: free_port(),
            connect_https_port: free_port(),
            clickhouse_port: free_port(),
            clickhouse_https_port: free_port(),
            clickhouse2_port: cluster.then(free_port),
            pg_user: "xbank".into(),
            pg_password: password(),
            ch_user: "xwarehouse".into(),
            ch_password: password(),
            ch_reader_password: password(),
            seq,
        };
        let started = Instant::now();
        docker(&["network", "create", &bed.network]).expect("create the bed's network");
        bed.start_postgres("postgres", PG_ALIAS, bed.pg_port, true, PgTls::On);
        bed.start_kafka();
        if cluster {
            let zookeeper = (free_port(), 2181);
            bed.run_container(
                "zookeeper",
                ZOOKEEPER_ALIAS,
                zookeeper,
                &[],
                &[],
                ZOOKEEPER_IMAGE,
                &[],
            );
        }
        let port = bed.clickhouse_port;
        bed.start_clickhouse("clickhouse", CLICKHOUSE_ALIAS, port, cluster);
        if let Some(port2) = bed.clickhouse2_port {
            bed.start_clickhouse("clickhouse2", CLICKHOUSE2_ALIAS, port2, cluster);
        }
        bed.start_connect("connect", CONNECT_ALIAS, bed.connect_port, true);
        bed.wait_ready();
        eprintln!(
            "external bed {} ready in {:.1}s: postgres 127.0.0.1:{} kafka localhost:{} \
             connect 127.0.0.1:{} clickhouse 127.0.0.1:{}",
            bed.id,
            started.elapsed().as_secs_f64(),
            bed.pg_port,
            bed.kafka_port,
            bed.connect_port,
            bed.clickhouse_port
        );
        bed
    }

    fn container(&self, service: &str) -> String {
        format!("{}-{service}", self.id)
    }

    /// `docker run -d` on the bed's network; the container is removed on drop even if
    /// it fails to start.
    #[allow(clippy::too_many_arguments)]
    fn run_container(
        &mut self,
        service: &str,
        alias: &str,
        ports: (u16, u16),
        env: &[(&str, String)],
        extra: &[String],
        image: &str,
        cmd: &[&str],
    ) {
        let name = self.container(service);
        self.containers.push(name.clone());
        let mut args: Vec<String> = vec!["run".into(), "-d".into()];
        args.extend(
            [
                "--name",
                &name,
                "--network",
                &self.network,
                "--network-alias",
                alias,
                "-p",
            ]
            .map(String::from),
        );
        args.push(format!("127.0.0.1:{}:{}", ports.0, ports.1));
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(extra.iter().cloned());
        args.push(image.into());
        args.extend(cmd.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&refs).unwrap_or_else(|e| panic!("start {name}: {e}"));
    }

    /// PostgreSQL as a team might run it: with `logical_wal` as Debezium needs, and
    /// TLS off, on (a certificate of the bed's own CA), or required.
    fn start_postgres(
        &mut self,
        service: &str,
        alias: &str,
        port: u16,
        logical_wal: bool,
        tls: PgTls,
    ) {
        let env = [
            ("POSTGRES_USER", self.pg_user.clone()),
            ("POSTGRES_PASSWORD", self.pg_password.clone()),
            ("POSTGRES_DB", "financial".to_string()),
        ];
        let mut cmd = vec!["postgres"];
        if logical_wal {
            // Else PostgreSQL's default, wal_level=replica.
            cmd.extend([
                "-c",
                "wal_level=logical",
                "-c",
                "max_wal_senders=10",
                "-c",
                "max_replication_slots=10",
            ]);
        }
        let mut extra: Vec<String> = vec!["--shm-size".into(), "134217728".into()];
        if tls != PgTls::Off {
            cmd.extend([
                "-c",
                "ssl=on",
                "-c",
                "ssl_cert_file=/xcerts/server.pem",
                "-c",
                "ssl_key_file=/tmp/xserver.key",
            ]);
            // PostgreSQL wants its key private to its user: a copy it owns.
            let script = "install -o postgres -g postgres -m 600 /xcerts/server.key \
                          /tmp/xserver.key && exec bash /usr/local/bin/docker-entrypoint.sh \"$@\"";
            cmd.splice(0..0, ["-c", script, "bash"]);
            extra.extend(["--entrypoint".into(), "bash".into(), "-v".into()]);
            extra.push(format!("{}:/xcerts:ro", self.certs().display()));
        }
        if tls == PgTls::Required {
            let hba = self.dir.path().join(format!("{service}-hba.conf"));
            std::fs::write(
                &hba,
                "local all all trust\nhostnossl all all all reject\nhostssl all all all scram-sha-256\n",
            )
            .expect("write pg_hba.conf");
            extra.extend(["-v".into(), format!("{}:/xhba.conf:ro", hba.display())]);
            cmd.extend(["-c", "hba_file=/xhba.conf"]);
        }
        self.run_container(
            service,
            alias,
            (port, 5432),
            &env,
            &extra,
            image("postgres"),
            &cmd,
        );
    }

    /// The bed's CA (`ca.pem`) and the certificate it signed for `localhost`,
    /// `127.0.0.1` and the services' aliases (`server.pem`, `server.key`), made with
    /// the openssl command on first use.
    pub fn certs(&self) -> PathBuf {
        let dir = self.dir.path().join("certs");
        if dir.join("server.pem").exists() {
            return dir;
        }
        std::fs::create_dir_all(&dir).expect("certs dir");
        let san = format!(
            "subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:{PG_ALIAS},DNS:{CLICKHOUSE_ALIAS}\n"
        );
        std::fs::write(dir.join("ext.cnf"), san).expect("write ext.cnf");
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        for command in [
            format!("req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=xbed-ca"),
            format!("req {ec} -keyout server.key -out server.csr -subj /CN=localhost"),
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
             -out server.pem -days 2 -extfile ext.cnf"
                .to_string(),
            // Kafka Connect's REST server (Jetty) takes a PKCS12 keystore.
            format!(
                "pkcs12 -export -in server.pem -inkey server.key -out keystore.p12 \
                 -name server -passout pass:{KEYSTORE_PASSWORD}"
            ),
        ] {
            let args: Vec<&str> = command.split_whitespace().collect();
            let out = Command::new("openssl")
                .args(&args)
                .current_dir(&dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Read by ClickHouse's and Connect's users inside their containers (test keys,
        // thrown away).
        for file in ["server.key", "keystore.p12"] {
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o644);
            std::fs::set_permissions(dir.join(file), mode).expect("chmod a key");
        }
        dir
    }

    fn start_kafka(&mut self) {
        // As src/service.rs configures apache/kafka: the host listener on the same port
        // inside and outside, advertised as localhost; the internal one by alias.
        let hp = self.kafka_port;
        let env = [
            ("KAFKA_NODE_ID", "1".to_string()),
            ("KAFKA_PROCESS_ROLES", "broker,controller".into()),
            (
                "KAFKA_LISTENERS",
                format!("PLAINTEXT://:{KAFKA_INTERNAL_PORT},CONTROLLER://:29093,PLAINTEXT_HOST://:{hp}"),
            ),
            (
                "KAFKA_ADVERTISED_LISTENERS",
                format!(
                    "PLAINTEXT://{KAFKA_ALIAS}:{KAFKA_INTERNAL_PORT},PLAINTEXT_HOST://localhost:{hp}"
                ),
            ),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT".into(),
            ),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".into()),
            (
                "KAFKA_CONTROLLER_QUORUM_VOTERS",
                format!("1@{KAFKA_ALIAS}:29093"),
            ),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT".into()),
            ("CLUSTER_ID", format!("xbed{}", &password()[..18])),
            ("KAFKA_LOG_DIRS", "/var/lib/kafka/data".into()),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".into()),
            ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1".into()),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1".into()),
            ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".into()),
        ];
        self.run_container(
            "kafka",
            KAFKA_ALIAS,
            (hp, hp),
            &env,
            &[],
            image("kafka"),
            &[],
        );
    }

    /// One ClickHouse server; with `cluster`, a replica of [`CLUSTER`] named `alias`.
    fn start_clickhouse(&mut self, service: &str, alias: &str, port: u16, cluster: bool) {
        let dir = self.dir.path().join(service);
        std::fs::create_dir_all(&dir).expect("clickhouse config dir");
        let reader = format!(
            "<yandex>\n  <profiles>\n    <xbed_readonly><readonly>1</readonly></xbed_readonly>\n  \
             </profiles>\n  <users>\n    <{CH_READER}>\n      <password>{}</password>\n      \
             <networks><ip>::/0</ip></networks>\n      <profile>xbed_readonly</profile>\n      \
             <quota>default</quota>\n    </{CH_READER}>\n  </users>\n</yandex>\n",
            self.ch_reader_password
        );
        let mut files = vec![
            (
                "findemo-kafka.xml",
                "config.d/findemo-kafka.xml",
                CLICKHOUSE_KAFKA_XML.to_string(),
            ),
            (
                "findemo-stream.xml",
                "users.d/findemo-stream.xml",
                CLICKHOUSE_STREAM_XML.to_string(),
            ),
            ("xbed-reader.xml", "users.d/xbed-reader.xml", reader),
        ];
        let mut mounts = Vec::new();
        if port == self.clickhouse_port {
            let https = "<yandex>\n  <https_port>8443</https_port>\n  <openSSL><server>\
                         <certificateFile>/xcerts/server.pem</certificateFile>\
                         <privateKeyFile>/xcerts/server.key</privateKeyFile>\
                         <dhParamsFile></dhParamsFile><verificationMode>none</verificationMode>\
                         <loadDefaultCAFile>false</loadDefaultCAFile></server></openSSL>\n</yandex>\n";
            files.push((
                "xbed-https.xml",
                "config.d/xbed-https.xml",
                https.to_string(),
            ));
            mounts.extend([
                "-v".to_string(),
                format!("{}:/xcerts:ro", self.certs().display()),
                "-p".to_string(),
                format!("127.0.0.1:{}:8443", self.clickhouse_https_port),
            ]);
        }
        if cluster {
            let replica =
                |host: &str| format!("<replica><host>{host}</host><port>9000</port></replica>");
            let config = format!(
                "<yandex>\n  <zookeeper><node><host>{ZOOKEEPER_ALIAS}</host><port>2181</port></node></zookeeper>\n  \
                 <remote_servers><{CLUSTER}><shard><internal_replication>true</internal_replication>\
                 {}{}</shard></{CLUSTER}></remote_servers>\n  \
                 <macros><shard>01</shard><replica>{alias}</replica></macros>\n  \
                 <interserver_http_host>{alias}</interserver_http_host>\n</yandex>\n",
                replica(CLICKHOUSE_ALIAS),
                replica(CLICKHOUSE2_ALIAS)
            );
            files.push(("xbed-cluster.xml", "config.d/xbed-cluster.xml", config));
            // The name the replica knows itself by, as remote_servers has it.
            mounts.extend(["--hostname".to_string(), alias.to_string()]);
        }
        for (file, target, text) in files {
            let path = dir.join(file);
            std::fs::write(&path, text).expect("write clickhouse config");
            mounts.push("-v".to_string());
            mounts.push(format!(
                "{}:/etc/clickhouse-server/{target}:ro",
                path.display()
            ));
        }
        let env = [
            ("CLICKHOUSE_USER", self.ch_user.clone()),
            ("CLICKHOUSE_PASSWORD", self.ch_password.clone()),
            ("CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT", "1".to_string()),
        ];
        self.run_container(
            service,
            alias,
            (port, 8123),
            &env,
            &mounts,
            image("clickhouse"),
            &[],
        );
    }

    /// A distributed Connect worker as src/service.rs configures it, without
    /// findemo's password variable and config providers. `debezium: false` removes the
    /// Debezium PostgreSQL plugin's jar before Connect starts.
    fn start_connect(&mut self, service: &str, alias: &str, port: u16, debezium: bool) {
        let group = format!("{}-{service}", self.id);
        let env = [
            (
                "BOOTSTRAP_SERVERS",
                format!("{KAFKA_ALIAS}:{KAFKA_INTERNAL_PORT}"),
            ),
            ("GROUP_ID", group.clone()),
            ("CONFIG_STORAGE_TOPIC", format!("{group}.configs")),
            ("OFFSET_STORAGE_TOPIC", format!("{group}.offsets")),
            ("STATUS_STORAGE_TOPIC", format!("{group}.statuses")),
            ("CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR", "1".into()),
            ("CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR", "1".into()),
            ("CONNECT_STATUS_STORAGE_REPLICATION_FACTOR", "1".into()),
            (
                "KEY_CONVERTER",
                "org.apache.kafka.connect.json.JsonConverter".into(),
            ),
            (
                "VALUE_CONVERTER",
                "org.apache.kafka.connect.json.JsonConverter".into(),
            ),
            ("CONNECT_KEY_CONVERTER_SCHEMAS_ENABLE", "false".into()),
            ("CONNECT_VALUE_CONVERTER_SCHEMAS_ENABLE", "false".into()),
            ("OFFSET_FLUSH_INTERVAL_MS", "5000".into()),
            ("HEAP_OPTS", "-Xms128m -Xmx768m".into()),
        ];
        if debezium {
            // REST over HTTPS as well.
            let mut env = env.to_vec();
            env.extend([
                (
                    "CONNECT_LISTENERS",
                    "http://0.0.0.0:8083,https://0.0.0.0:8443".to_string(),
                ),
                ("CONNECT_LISTENERS_HTTPS_SSL_KEYSTORE_TYPE", "PKCS12".into()),
                (
                    "CONNECT_LISTENERS_HTTPS_SSL_KEYSTORE_LOCATION",
                    "/xcerts/keystore.p12".into(),
                ),
                (
                    "CONNECT_LISTENERS_HTTPS_SSL_KEYSTORE_PASSWORD",
                    KEYSTORE_PASSWORD.into(),
                ),
                (
                    "CONNECT_LISTENERS_HTTPS_SSL_KEY_PASSWORD",
                    KEYSTORE_PASSWORD.into(),
                ),
            ]);
            let extra = [
                "-v".to_string(),
                format!("{}:/xcerts:ro", self.certs().display()),
                "-p".to_string(),
                format!("127.0.0.1:{}:8443", self.connect_https_port),
            ];
            self.run_container(
                service,
                alias,
                (port, 8083),
                &env,
                &extra,
                image("connect"),
                &[],
            );
        } else {
            // The image runs as user kafka (1001), which cannot remove jars.
            let extra = ["--user", "root", "--entrypoint", "/bin/bash"].map(String::from);
            self.run_container(
                service,
                alias,
                (port, 8083),
                &env,
                &extra,
                image("connect"),
                &[
                    "-c",
                    "rm -f /kafka/libs/debezium-connector-postgres-*.jar && \
                     exec setpriv --reuid=1001 --regid=1001 --init-groups \
                     /bin/bash /docker-entrypoint.sh start",
                ],
            );
        }
    }

    /// A second PostgreSQL on the bed's network (for a bad-input case), ready.
    pub fn extra_postgres(&mut self, tag: &str, logical_wal: bool, tls: PgTls) -> ExtraPostgres {
        let service = format!("postgres-{tag}");
        let alias = format!("xpg-{tag}");
        let port = free_port();
        self.start_postgres(&service, &alias, port, logical_wal, tls);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match rt().block_on(self.try_pg(port)) {
                Ok(()) => break,
                // The test's client has no TLS: refused for it, the server is up.
                Err(e) if tls == PgTls::Required && e.contains("no encryption") => break,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "{service} not ready: {e}\n{}",
                    self.logs(&service)
                ),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        ExtraPostgres { alias, port }
    }

    /// A second Connect worker without the Debezium PostgreSQL plugin: its REST URL,
    /// once it answers.
    pub fn connect_without_debezium(&mut self) -> String {
        let port = free_port();
        self.start_connect("connect-nodbz", "xconnect-nodbz", port, false);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match http_get(&format!("{url}/connector-plugins")) {
                Ok((200, plugins)) => {
                    assert!(
                        !plugins.to_string().contains(DEBEZIUM_POSTGRES),
                        "the plugin is still there: {plugins}"
                    );
                    if http_get(&format!("{url}/connectors")).is_ok_and(|(code, _)| code == 200) {
                        return url;
                    }
                }
                other => assert!(
                    Instant::now() < deadline,
                    "connect without Debezium not ready: {other:?}\n{}",
                    self.logs("connect-nodbz")
                ),
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Waits until every service answers as a client would use it.
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pending: Vec<&str> = vec!["postgres", "kafka", "clickhouse", "connect"];
        if self.clickhouse2_port.is_some() {
            pending.push("clickhouse2");
        }
        while !pending.is_empty() {
            let mut why = Vec::new();
            pending.retain(|service| {
                let check = match *service {
                    "postgres" => rt().block_on(self.try_pg(self.pg_port)),
                    "kafka" => self.try_topics().map(|_| ()),
                    "clickhouse" => self.try_clickhouse(self.clickhouse_port),
                    "clickhouse2" => self.try_clickhouse(self.clickhouse2_port.unwrap_or(0)),
                    _ => self.try_connect(),
                };
                match check {
                    Ok(()) => false,
                    Err(e) => {
                        why.push(format!("{service}: {e}"));
                        true
                    }
                }
            });
            if pending.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = pending.iter().map(|s| self.logs(s)).collect();
                panic!(
                    "the external bed did not become ready in {READY_TIMEOUT:?}: {}\n{}",
                    why.join("; "),
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    async fn try_pg(&self, port: u16) -> Result<(), String> {
        let client = self.pg_client(port).await?;
        client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The server on `port` answers queries (and, in a cluster, reads ZooKeeper).
    fn try_clickhouse(&self, port: u16) -> Result<(), String> {
        match http_get(&format!("http://127.0.0.1:{port}/ping"))? {
            (200, Value::String(ok)) if ok.trim() == "Ok." => {}
            other => return Err(format!("/ping: {other:?}")),
        }
        let sql = match self.clickhouse2_port {
            Some(_) => "SELECT count() FROM system.zookeeper WHERE path = '/'",
            None => "SELECT 1",
        };
        self.try_ch_at(port, sql).map(|_| ())
    }

    fn try_connect(&self) -> Result<(), String> {
        let url = self.connect_url();
        let (code, plugins) = http_get(&format!("{url}/connector-plugins"))?;
        if code != 200 || !plugins.to_string().contains(DEBEZIUM_POSTGRES) {
            return Err(format!("/connector-plugins: {code} {plugins}"));
        }
        match http_get(&format!("{url}/connectors"))? {
            (200, _) => Ok(()),
            other => Err(format!("/connectors: {other:?}")),
        }
    }

    /// The last lines of a container's output, for a failure message.
    pub fn logs(&self, service: &str) -> String {
        let name = self.container(service);
        let out = Command::new("docker")
            .args(["logs", "--tail", "40", &name])
            .output();
        match out {
            Ok(out) => format!(
                "--- {name} ---\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("--- {name}: {e}"),
        }
    }

    pub fn connect_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.connect_port)
    }

    pub fn clickhouse_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.clickhouse_port)
    }

    pub fn kafka_bootstrap(&self) -> String {
        format!("localhost:{}", self.kafka_port)
    }

    /// A unique stack name (lowercase letters, digits and '-'), with `tag` in it.
    pub fn stack_name(&self, tag: &str) -> String {
        format!("x{}-{}-{tag}", std::process::id(), self.seq)
    }

    /// The demo.yaml for a stack on this bed, not written yet.
    pub fn yaml(&self, tag: &str) -> ExternalYaml {
        ExternalYaml {
            stack: self.stack_name(tag),
            pg_host: "127.0.0.1".into(),
            pg_port: self.pg_port,
            pg_user: self.pg_user.clone(),
            pg_password_env: PG_PASSWORD_ENV.into(),
            // The bed's PostgreSQL has TLS on: the whole flow runs over it.
            pg_sslmode: "require".into(),
            pg_ca_file: None,
            pg_internal_host: PG_ALIAS.into(),
            pg_internal_port: 5432,
            kafka_bootstrap: self.kafka_bootstrap(),
            kafka_internal: format!("{KAFKA_ALIAS}:{KAFKA_INTERNAL_PORT}"),
            connect_url: self.connect_url(),
            ch_url: self.clickhouse_url(),
            ch_user: self.ch_user.clone(),
            ch_password_env: CH_PASSWORD_ENV.into(),
            ch_cluster: self.clickhouse2_port.map(|_| CLUSTER.to_string()),
        }
    }

    /// A stack on this bed: its demo.yaml written, ready to run findemo with.
    pub fn stack(&self, tag: &str) -> ExternalStack<'_> {
        let stack = ExternalStack {
            bed: self,
            yaml: self.yaml(tag),
            config: self.dir.path().join(format!("{tag}.yaml")),
            env: vec![
                (PG_PASSWORD_ENV.into(), Some(self.pg_password.clone())),
                (CH_PASSWORD_ENV.into(), Some(self.ch_password.clone())),
                (
                    CH_READER_PASSWORD_ENV.into(),
                    Some(self.ch_reader_password.clone()),
                ),
            ],
        };
        stack.write();
        stack
    }

    async fn pg_client(&self, port: u16) -> Result<tokio_postgres::Client, String> {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(port)
            .user(&self.pg_user)
            .password(&self.pg_password)
            .dbname("financial")
            .connect_timeout(Duration::from_secs(5));
        let (client, conn) =
            config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| match e.as_db_error() {
                    Some(db) => format!("{}: {}", db.severity(), db.message()),
                    None => e.to_string(),
                })?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// The first column of every row `sql` returns, as text, from the PostgreSQL on
    /// `port` (the bed's own, or an extra one).
    pub fn pg_strings(&self, port: u16, sql: &str) -> Vec<String> {
        rt().block_on(async {
            let client = self.pg_client(port).await.expect("connect to postgres");
            client
                .query(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect()
        })
    }

    pub fn try_ch_at(&self, port: u16, sql: &str) -> Result<String, String> {
        rt().block_on(async {
            let response = http_client()
                .post(format!("http://127.0.0.1:{port}/"))
                .header("X-ClickHouse-User", &self.ch_user)
                .header("X-ClickHouse-Key", &self.ch_password)
                .timeout(Duration::from_secs(10))
                .body(sql.to_string())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let text = response.text().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(text.trim().to_string())
            } else {
                Err(format!("{status}: {text}"))
            }
        })
    }

    /// ClickHouse's trimmed answer to `sql`, as the bed's user.
    pub fn ch(&self, sql: &str) -> String {
        self.ch_at(self.clickhouse_port, sql)
    }

    /// The answer of the server on `port` (a replica of the cluster).
    pub fn ch_at(&self, port: u16, sql: &str) -> String {
        self.try_ch_at(port, sql)
            .unwrap_or_else(|e| panic!("{sql} on port {port}: {e}"))
    }

    /// The HTTP port of every ClickHouse server of the bed.
    pub fn clickhouse_ports(&self) -> Vec<u16> {
        std::iter::once(self.clickhouse_port)
            .chain(self.clickhouse2_port)
            .collect()
    }

    /// Names of the connectors Kafka Connect has.
    pub fn connectors(&self) -> Vec<String> {
        let url = format!("{}/connectors", self.connect_url());
        match http_get(&url) {
            Ok((200, Value::Array(names))) => names
                .iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect(),
            other => panic!("GET {url}: {other:?}"),
        }
    }

    fn try_topics(&self) -> Result<Vec<String>, String> {
        // Metadata only: tansu 0.6.0 fails DescribeGroups, and its host-listener proxy
        // keeps the dead connection (every later host client fails), so never list
        // groups through rdkafka here.
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.kafka_bootstrap())
            .set("log_level", "3")
            .create()
            .map_err(|e| e.to_string())?;
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| t.name().to_string())
            .collect())
    }

    /// Every topic the broker has, asked from the host.
    pub fn topics(&self) -> Vec<String> {
        self.try_topics().expect("broker metadata")
    }

    /// Creates a topic with `partitions` partitions, as someone else would.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.kafka_bootstrap())
            .create()
            .expect("admin client");
        let results = rt()
            .block_on(admin.create_topics(
                &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            ))
            .expect("create topics");
        for result in results {
            result.unwrap_or_else(|(topic, e)| panic!("create {topic}: {e}"));
        }
    }

    /// `(container, running)` for every container of the bed.
    pub fn running(&self) -> Vec<(String, bool)> {
        self.containers
            .iter()
            .map(|name| {
                let state = docker(&["inspect", "-f", "{{.State.Running}}", name]);
                (name.clone(), state.as_deref() == Ok("true"))
            })
            .collect()
    }

    /// Kafka Connect's own topics (configs, offsets, statuses) exist.
    fn connect_topics_exist(&self, topics: &[String]) -> bool {
        let group = format!("{}-connect", self.id);
        ["configs", "offsets", "statuses"]
            .iter()
            .all(|t| topics.contains(&format!("{group}.{t}")))
    }
}

impl Drop for ExternalBed {
    fn drop(&mut self) {
        if std::env::var_os("XBED_KEEP").is_some() {
            eprintln!(
                "XBED_KEEP: leaving {} running (remove with: docker rm -f -v {}; docker network rm {})",
                self.id,
                self.containers.join(" "),
                self.network
            );
            return;
        }
        if !self.containers.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(self.containers.iter().map(String::as_str));
            if let Err(e) = docker(&args) {
                eprintln!("{e}");
            }
        }
        if let Err(e) = docker(&["network", "rm", &self.network]) {
            eprintln!("{e}");
        }
    }
}

/// The external-runtime demo.yaml of one stack, field by field.
#[derive(Debug, Clone)]
pub struct ExternalYaml {
    pub stack: String,
    pub pg_host: String,
    pub pg_port: u16,
    pub pg_user: String,
    pub pg_password_env: String,
    pub pg_sslmode: String,
    pub pg_ca_file: Option<String>,
    pub pg_internal_host: String,
    pub pg_internal_port: u16,
    pub kafka_bootstrap: String,
    pub kafka_internal: String,
    pub connect_url: String,
    pub ch_url: String,
    pub ch_user: String,
    pub ch_password_env: String,
    pub ch_cluster: Option<String>,
}

impl ExternalYaml {
    pub fn render(&self) -> String {
        let ExternalYaml {
            stack,
            pg_host,
            pg_port,
            pg_user,
            pg_password_env,
            pg_sslmode,
            pg_ca_file,
            pg_internal_host,
            pg_internal_port,
            kafka_bootstrap,
            kafka_internal,
            connect_url,
            ch_url,
            ch_user,
            ch_password_env,
            ch_cluster,
        } = self;
        let ca_file = match pg_ca_file {
            Some(path) => format!("\n    ca_file: {path}"),
            None => String::new(),
        };
        let cluster = match ch_cluster {
            Some(name) => format!("    cluster: {name}\n"),
            None => String::new(),
        };
        format!(
            "stack: {stack}
runtime: external
ready_timeout_secs: 120
pipeline:
  canary_timeout_secs: 300
services:
  postgres:
    host: {pg_host}
    port: {pg_port}
    database: financial
    user: {pg_user}
    password_env: {pg_password_env}
    sslmode: {pg_sslmode}{ca_file}
    internal_host: {pg_internal_host}
    internal_port: {pg_internal_port}
  kafka:
    bootstrap_servers: {kafka_bootstrap}
    internal_bootstrap_servers: {kafka_internal}
  connect:
    url: {connect_url}
  clickhouse:
    url: {ch_url}
    user: {ch_user}
    password_env: {ch_password_env}
{cluster}"
        )
    }
}

/// One findemo stack on an [`ExternalBed`]: its demo.yaml and the environment the
/// binary runs with (the password variables set).
pub struct ExternalStack<'a> {
    pub bed: &'a ExternalBed,
    pub yaml: ExternalYaml,
    config: PathBuf,
    env: Vec<(String, Option<String>)>,
}

impl ExternalStack<'_> {
    pub fn name(&self) -> &str {
        &self.yaml.stack
    }

    fn write(&self) {
        std::fs::write(&self.config, self.yaml.render()).expect("write demo.yaml");
    }

    /// Changes the demo.yaml.
    pub fn edit(&mut self, change: impl FnOnce(&mut ExternalYaml)) {
        change(&mut self.yaml);
        self.write();
    }

    /// Sets (`Some`) or removes (`None`) an environment variable for the binary.
    pub fn env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.map(String::from)));
    }

    pub fn state_dir(&self) -> PathBuf {
        self.bed.dir.path().join("state")
    }

    /// `findemo -c demo.yaml ARGS`, not started yet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_findemo"));
        cmd.current_dir(self.bed.dir.path())
            .env("FINDEMO_STATE_DIR", self.state_dir())
            .env_remove("FINDEMO_STACK")
            .env_remove("FINDEMO_CONFIG")
            .stdin(Stdio::null());
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd.arg("-c").arg(&self.config).args(args);
        cmd
    }

    /// Runs `findemo ARGS` to its end; no password ever shows in its output.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Run {
        let run = Run::of(self.command(args));
        for secret in [
            &self.bed.pg_password,
            &self.bed.ch_password,
            &self.bed.ch_reader_password,
        ] {
            assert!(
                !run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()),
                "findemo {} printed a password\n{run}",
                args.join(" ")
            );
        }
        run
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start findemo")
    }

    /// What findemo may have created for this stack that exists on the services
    /// (PostgreSQL as this stack's demo.yaml reaches it).
    pub fn leftovers(&self) -> Vec<String> {
        let bed = self.bed;
        let stack = self.name();
        let mut found = Vec::new();
        let connector = format!("{stack}-postgres-source");
        if bed.connectors().contains(&connector) {
            found.push(format!("connector {connector}"));
        }
        let port = self.yaml.pg_port;
        let slot = format!("{}_cdc", stack.replace('-', "_"));
        for name in bed.pg_strings(port, "SELECT slot_name::text FROM pg_replication_slots") {
            if name == slot {
                found.push(format!("replication slot {name}"));
            }
        }
        for name in bed.pg_strings(
            port,
            "SELECT pubname::text FROM pg_publication WHERE pubname = 'findemo_cdc'",
        ) {
            found.push(format!("publication {name}"));
        }
        for name in bed.pg_strings(
            port,
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' \
             AND (tablename LIKE 'raw\\_%' OR tablename LIKE 'findemo\\_%')",
        ) {
            found.push(format!("table {name}"));
        }
        let heartbeat = format!("__debezium-heartbeat.{stack}");
        for topic in bed.topics() {
            if topic.starts_with(&format!("{stack}.")) || topic == heartbeat {
                found.push(format!("topic {topic}"));
            }
        }
        for port in bed.clickhouse_ports() {
            for db in bed.ch_at(port, "SELECT name FROM system.databases").lines() {
                // findemo's own, and any it made to try its rights (findemo_*).
                if CLICKHOUSE_DATABASES.contains(&db) || db.starts_with("findemo") {
                    found.push(format!("clickhouse database {db} (port {port})"));
                }
            }
        }
        if bed.clickhouse2_port.is_some() {
            // Dropping a table's last replica removes its node in ZooKeeper.
            let path = format!("/clickhouse/tables/01/findemo-{stack}");
            let sql = format!("SELECT name FROM system.zookeeper WHERE path = '{path}'");
            if let Ok(tables) = bed.try_ch_at(bed.clickhouse_port, &sql) {
                for table in tables.lines() {
                    found.push(format!("zookeeper node {path}/{table}"));
                }
            }
        }
        found
    }

    #[track_caller]
    pub fn assert_nothing_created(&self, allowed: &[String]) {
        let left: Vec<String> = self
            .leftovers()
            .into_iter()
            .filter(|l| !allowed.contains(l))
            .collect();
        assert!(left.is_empty(), "{}: left behind {left:?}", self.name());
    }
}

/// GET `url`: status and body (JSON when it parses, else a string).
fn http_get(url: &str) -> Result<(u16, Value), String> {
    rt().block_on(async {
        let response = http_client()
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    })
}

/// `findemo dashboard` on a free port: until the overview shows transactions, then
/// the pipeline view; stopped with Ctrl-C.
fn dashboard_serves_data(stack: &ExternalStack) {
    let port = free_port();
    let mut child = stack.spawn(&["dashboard", "--port", &port.to_string()]);
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read stdout");
    let url = format!("http://127.0.0.1:{port}/");
    if !line.contains(&url) {
        let _ = child.kill();
        let out = child.wait_with_output().expect("dashboard output");
        panic!(
            "dashboard printed {line:?}, not {url}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let overview = loop {
        let (code, overview) = http_get(&format!("{url}api/overview")).expect("api/overview");
        assert_eq!(code, 200, "{overview}");
        if overview["error"].is_null() && overview["kpis"]["transactions"].as_u64() > Some(0) {
            break overview;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the dashboard's overview shows no transactions: {overview}");
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    assert!(overview["services"].is_array(), "{overview}");
    let (code, pipeline) = http_get(&format!("{url}api/pipeline")).expect("api/pipeline");
    assert_eq!(code, 200, "{pipeline}");
    let stages = pipeline["stages"]
        .as_array()
        .unwrap_or_else(|| panic!("no stages: {pipeline}"));
    assert!(stages.iter().any(|s| s["id"] == "kafka"), "{pipeline}");
    for secret in [&stack.bed.pg_password, &stack.bed.ch_password] {
        assert!(
            !overview.to_string().contains(secret.as_str())
                && !pipeline.to_string().contains(secret.as_str()),
            "the dashboard sent a password to the browser"
        );
    }
    // Ctrl-C: exit 0 within 10 s.
    // SAFETY: a signal to a child we started and have not reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("dashboard still running 10 s after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "dashboard exited with {status}");
}

/// `up`, `generate`, `verify` green, `status --json`.
fn full_run(stack: &ExternalStack, round: u32) {
    let up = stack.run(&["up"]);
    assert_eq!(up.code, Some(0), "round {round}: up\n{up}");
    assert!(
        up.stdout.contains("reached ClickHouse silver in"),
        "round {round}: no canary\n{up}"
    );
    stack
        .run(&["generate", "--duration", "5s", "--rate", "500"])
        .success();
    stack
        .run(&["verify", "--timeout", "180"])
        .success()
        .stdout_has("Verified");
    let status = stack.run(&["status", "--json"]).success();
    let json = status.json();
    assert!(json["broken"].is_null(), "round {round}: {json}");
}

#[test]
fn external_full_flow_twice() {
    let bed = ExternalBed::start();
    let sentinel = format!("{}.not-findemo", bed.id);
    bed.create_topic(&sentinel, 1);
    let mut stack = bed.stack("flow");

    full_run(&stack, 1);
    // What findemo made is really on the services.
    let connector = format!("{}-postgres-source", stack.name());
    assert!(
        bed.connectors().contains(&connector),
        "{:?}",
        bed.connectors()
    );
    assert!(
        bed.ch("SELECT count() FROM silver.transactions_current")
            .parse::<u64>()
            .expect("a count")
            > 0
    );
    dashboard_serves_data(&stack);

    let down = stack.run(&["down"]).success();
    assert!(down.stdout.contains("nothing to stop"), "{down}");
    let logs = stack.run(&["logs", "kafka"]);
    assert!(
        matches!(logs.code, Some(0) | Some(1)),
        "logs: exit {:?}\n{logs}",
        logs.code
    );
    assert!(
        format!("{}{}", logs.stdout, logs.stderr)
            .to_lowercase()
            .contains("external"),
        "{logs}"
    );
    // Still streaming after `down`: the connector is untouched.
    assert!(bed.connectors().contains(&connector));

    let reset = stack.run(&["reset", "--yes"]);
    assert_eq!(reset.code, Some(0), "reset\n{reset}");
    stack.assert_nothing_created(&[]);
    for (name, running) in bed.running() {
        assert!(running, "{name} stopped after reset");
    }
    // Other people's things are untouched: the Connect worker's own topics and a
    // topic findemo never made (tansu 0.6.0 deleted them all: the test bed's broker
    // has findemo's fix, tests/testbed/kafka/topic_delete_by.sql).
    let topics = bed.topics();
    assert!(
        bed.connect_topics_exist(&topics) && topics.contains(&sentinel),
        "reset deleted topics that are not findemo's: {topics:?}"
    );

    // The same stack again, from nothing, over verified TLS: PostgreSQL's certificate
    // checked against the bed's CA and host name (verify-full), and ClickHouse and
    // Kafka Connect over HTTPS, their certificate trusted through SSL_CERT_FILE.
    let ca = bed.certs().join("ca.pem").display().to_string();
    stack.edit(|y| {
        y.pg_sslmode = "verify-full".into();
        y.pg_ca_file = Some(ca.clone());
        y.ch_url = format!("https://localhost:{}", bed.clickhouse_https_port);
        y.connect_url = format!("https://localhost:{}", bed.connect_https_port);
    });
    stack.env("SSL_CERT_FILE", Some(&ca));
    full_run(&stack, 2);
    let reset = stack.run(&["reset", "--yes"]);
    assert_eq!(reset.code, Some(0), "second reset\n{reset}");
    stack.assert_nothing_created(&[]);
}

/// `services.clickhouse.cluster`: findemo's layers on two replicas of one shard. Every
/// table is created on both (`ON CLUSTER`), each MergeTree one Replicated, so rows
/// consumed by either replica are on both; `reset` drops them on both and ZooKeeper
/// keeps nothing of the stack; then the whole flow runs again.
#[test]
fn external_cluster_replicates_every_layer() {
    let bed = ExternalBed::start_cluster();
    let mut stack = bed.stack("cluster");
    let ports = bed.clickhouse_ports();
    full_run(&stack, 1);

    let status = stack.run(&["status", "--json"]).success().json();
    let detail = status["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == "clickhouse"))
        .and_then(|ch| ch["detail"].as_str())
        .unwrap_or_default();
    assert!(
        detail.ends_with(&format!("cluster {CLUSTER} of 2 servers")),
        "{status}"
    );

    let tables = "SELECT database, name, engine FROM system.tables \
                  WHERE database IN ('bronze', 'silver', 'gold', 'findemo_meta') ORDER BY database, name";
    let on_first = bed.ch_at(ports[0], tables);
    for port in &ports {
        let listed = bed.ch_at(*port, tables);
        assert_eq!(listed, on_first, "the replicas have different tables");
        let merge_tree: Vec<&str> = listed
            .lines()
            .filter(|l| l.ends_with("MergeTree"))
            .collect();
        assert!(merge_tree.len() >= 10, "{listed}");
        for line in merge_tree {
            assert!(
                line.contains("\tReplicated"),
                "not replicated on port {port}: {line}"
            );
        }
    }
    // The rows are on both replicas, whichever consumed them.
    let count = "SELECT count() FROM silver.transactions";
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counts: Vec<String> = ports.iter().map(|p| bed.ch_at(*p, count)).collect();
        if counts[0] != "0" && counts.iter().all(|c| *c == counts[0]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replicas disagree: {counts:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    // findemo works against the other replica as well: what it applied is recorded
    // there too (nothing to apply again), and ClickHouse agrees with PostgreSQL.
    stack.edit(|y| y.ch_url = format!("http://127.0.0.1:{}", ports[1]));
    let up = stack.run(&["up"]).success();
    assert!(
        !up.stderr.contains("applying sql/clickhouse"),
        "applied again on the other replica\n{up}"
    );
    stack
        .run(&["verify", "--timeout", "180"])
        .success()
        .stdout_has("Verified");

    let reset = stack.run(&["reset", "--yes"]);
    assert_eq!(reset.code, Some(0), "reset\n{reset}");
    stack.assert_nothing_created(&[]);
    for (name, running) in bed.running() {
        assert!(running, "{name} stopped after reset");
    }

    // The same stack again, from nothing: the tables' ZooKeeper paths are free again.
    full_run(&stack, 2);
    let reset = stack.run(&["reset", "--yes"]);
    assert_eq!(reset.code, Some(0), "second reset\n{reset}");
    stack.assert_nothing_created(&[]);
}

/// `findemo up` on `stack`, which must fail; its message shows in the test's output.
#[track_caller]
fn refused(stack: &ExternalStack) -> Run {
    let run = stack.run(&["up"]).failure();
    eprintln!("--- {} refused:\n{}", stack.name(), run.stderr.trim_end());
    run
}

/// One bed, each bad input in turn, each on its own stack name: refused (exit code
/// not 0, the message names what is wrong), nothing created.
#[test]
fn external_bad_input_is_refused_before_anything_changes() {
    let mut bed = ExternalBed::start();
    let nowal = bed.extra_postgres("nowal", false, PgTls::Off);
    let tls_only = bed.extra_postgres("tlsonly", true, PgTls::Required);
    let nodbz = bed.connect_without_debezium();

    // A dry run checks everything and changes nothing.
    let stack = bed.stack("dry");
    stack
        .run(&["up", "--dry-run"])
        .success()
        .stdout_has("would apply sql/postgres/0001_tables.sql");
    stack.assert_nothing_created(&[]);

    // An endpoint nothing listens on.
    let closed = free_port();
    let mut stack = bed.stack("closed");
    stack.edit(|y| y.ch_url = format!("http://127.0.0.1:{closed}"));
    let run = refused(&stack);
    assert!(run.stderr.to_lowercase().contains("clickhouse"), "{run}");
    assert!(run.stderr.contains(&format!("127.0.0.1:{closed}")), "{run}");
    stack.assert_nothing_created(&[]);

    // A wrong PostgreSQL password.
    let mut stack = bed.stack("wrongpw");
    stack.env(PG_PASSWORD_ENV, Some("not-the-password"));
    let run = refused(&stack);
    assert!(run.stderr.to_lowercase().contains("postgres"), "{run}");
    assert!(!run.stderr.contains("not-the-password"), "{run}");
    stack.assert_nothing_created(&[]);

    // The variable demo.yaml names for a password is not set.
    let mut stack = bed.stack("noenv");
    let missing = format!("XBED_UNSET_{}", bed.seq);
    stack.edit(|y| y.ch_password_env = missing.clone());
    stack.env(&missing, None);
    refused(&stack).stderr_has(&missing);
    stack.assert_nothing_created(&[]);

    // TLS required, and the server offers none.
    let mut stack = bed.stack("tls");
    stack.edit(|y| {
        y.pg_port = nowal.port;
        y.pg_internal_host = nowal.alias.clone();
    });
    let run = refused(&stack);
    assert!(run.stderr.contains("sslmode"), "{run}");
    assert!(run.stderr.to_lowercase().contains("tls"), "{run}");
    stack.assert_nothing_created(&[]);

    // The reverse: a server that accepts the user over TLS only, and sslmode disable.
    let mut stack = bed.stack("notls");
    stack.edit(|y| {
        y.pg_sslmode = "disable".into();
        y.pg_port = tls_only.port;
        y.pg_internal_host = tls_only.alias.clone();
    });
    refused(&stack).stderr_has("TLS only").stderr_has("sslmode");
    // Nothing can be in a server findemo never got into; the bed's own is checked.
    stack.edit(|y| y.pg_port = bed.pg_port);
    stack.assert_nothing_created(&[]);

    // verify-full against a CA that did not sign the server's certificate (the
    // machine's public roots), and HTTPS to a ClickHouse whose CA this machine does
    // not trust.
    let mut stack = bed.stack("wrongca");
    stack.edit(|y| {
        y.pg_sslmode = "verify-full".into();
        y.pg_ca_file = Some("/etc/ssl/certs/ca-certificates.crt".into());
    });
    refused(&stack)
        .stderr_has("does not trust its TLS certificate")
        .stderr_has("UnknownIssuer")
        .stderr_has("ca_file");
    stack.assert_nothing_created(&[]);
    let mut stack = bed.stack("untrusted");
    stack.edit(|y| y.ch_url = format!("https://localhost:{}", bed.clickhouse_https_port));
    refused(&stack)
        .stderr_has("does not trust its TLS certificate")
        .stderr_has("SSL_CERT_FILE");
    stack.assert_nothing_created(&[]);

    // PostgreSQL without logical decoding.
    let mut stack = bed.stack("nowal");
    stack.edit(|y| {
        y.pg_sslmode = "disable".into();
        y.pg_port = nowal.port;
        y.pg_internal_host = nowal.alias.clone();
    });
    refused(&stack).stderr_has("wal_level");
    stack.assert_nothing_created(&[]);

    // A PostgreSQL user that may not replicate (but may create tables).
    let mut stack = bed.stack("norepl");
    let (user, password) = ("xnorepl", "norepl-password");
    for sql in [
        format!("CREATE ROLE {user} LOGIN PASSWORD '{password}'"),
        format!("GRANT CREATE ON DATABASE financial TO {user}"),
        format!("GRANT CREATE ON SCHEMA public TO {user}"),
    ] {
        bed.pg_strings(bed.pg_port, &sql);
    }
    stack.edit(|y| y.pg_user = user.into());
    stack.env(PG_PASSWORD_ENV, Some(password));
    refused(&stack).stderr_has(&format!("ALTER ROLE \"{user}\" WITH REPLICATION"));
    stack.assert_nothing_created(&[]);

    // A Connect cluster without the Debezium PostgreSQL plugin.
    let mut stack = bed.stack("nodbz");
    stack.edit(|y| y.connect_url = nodbz.clone());
    let run = refused(&stack);
    let stderr = run.stderr.to_lowercase();
    assert!(
        stderr.contains("debezium") && stderr.contains("postgres"),
        "{run}"
    );
    assert!(
        run.stderr.contains(nodbz.trim_start_matches("http://")),
        "the address tried\n{run}"
    );
    stack.assert_nothing_created(&[]);

    // A ClickHouse user without the right to create databases (readonly=1).
    let mut stack = bed.stack("chro");
    stack.edit(|y| {
        y.ch_user = CH_READER.into();
        y.ch_password_env = CH_READER_PASSWORD_ENV.into();
    });
    let run = refused(&stack);
    let stderr = run.stderr.to_lowercase();
    assert!(stderr.contains("clickhouse"), "{run}");
    assert!(
        stderr.contains(CH_READER)
            || stderr.contains("readonly")
            || stderr.contains("create database"),
        "which user, or what right is missing\n{run}"
    );
    stack.assert_nothing_created(&[]);

    // `cluster:` naming a cluster the server does not have, and one it has but that
    // cannot carry the layers: two shards, no macros, no ZooKeeper (Debian's
    // ClickHouse configuration has such test clusters).
    let mut stack = bed.stack("nocluster");
    stack.edit(|y| y.ch_cluster = Some("xbed_nosuch".into()));
    refused(&stack)
        .stderr_has("no cluster xbed_nosuch")
        .stderr_has("test_shard_localhost");
    stack.assert_nothing_created(&[]);
    let mut stack = bed.stack("twoshards");
    stack.edit(|y| y.ch_cluster = Some("test_cluster_two_shards_localhost".into()));
    refused(&stack)
        .stderr_has("2 shards")
        .stderr_has("no shard or replica macro")
        .stderr_has("ZooKeeper");
    stack.assert_nothing_created(&[]);

    // A topic findemo would create exists already with other settings.
    let stack = bed.stack("topic");
    let topic = format!("{}.public.raw_accounts", stack.name());
    bed.create_topic(&topic, 3);
    refused(&stack).stderr_has(&topic);
    stack.assert_nothing_created(&[format!("topic {topic}")]);

    for (name, running) in bed.running() {
        assert!(running, "{name} stopped");
    }
}
