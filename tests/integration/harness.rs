//! A throwaway stack for one test: a unique name, free ports, a private state
//! directory, a demo.yaml pointing at the test-bed images, and a way to run the binary.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use bollard::Docker;

/// The test-bed image standing in for each official image (tests/testbed/README.md).
pub const IMAGES: [(&str, &str); 4] = [
    ("postgres", "findemo-testbed/postgres:15"),
    ("kafka", "findemo-testbed/kafka:tansu-0.6.0"),
    ("connect", "findemo-testbed/connect:debezium-3.1.1"),
    ("clickhouse", "findemo-testbed/clickhouse:18.16"),
];

pub struct Bed {
    pub stack: String,
    pub dir: tempfile::TempDir,
    pub ports: [u16; 4],
}

impl Bed {
    /// A new stack using the test-bed images.
    pub fn new(name: &str) -> Bed {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let stack = format!(
            "t{}-{name}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = free_ports();
        // The canary may wait behind a backlog on a busy machine (tests run two at a
        // time on two cores).
        let mut yaml = format!(
            "stack: {stack}\nready_timeout_secs: 120\npipeline:\n  canary_timeout_secs: 300\nservices:\n"
        );
        for (i, (service, image)) in IMAGES.iter().enumerate() {
            yaml += &format!("  {service}:\n    image: {image}\n    port: {}\n", ports[i]);
        }
        std::fs::write(dir.path().join("demo.yaml"), yaml).expect("write demo.yaml");
        Bed { stack, dir, ports }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("demo.yaml")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn port(&self, service: &str) -> u16 {
        let i = IMAGES
            .iter()
            .position(|(s, _)| *s == service)
            .expect("service");
        self.ports[i]
    }

    /// `findemo -c demo.yaml ARGS` in the bed's directory, not started yet: the one way
    /// tests launch the binary ([`Bed::run`] and [`Bed::spawn`] start it). Add to it
    /// (an environment variable, say) and run it with [`Run::of`].
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_findemo"));
        cmd.current_dir(self.dir.path())
            .env("FINDEMO_STATE_DIR", self.state_dir())
            .env_remove("FINDEMO_STACK")
            .env_remove("FINDEMO_CONFIG")
            .arg("-c")
            .arg(self.config_path())
            .args(args);
        cmd
    }

    /// Runs `findemo -c demo.yaml ARGS` in the bed's directory and waits for it.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.command(args))
    }

    /// Starts `findemo ARGS` in the background, as [`Bed::run`] would run it.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start findemo")
    }

    /// Adds `section` (a top-level demo.yaml section, such as `generator:`) to the
    /// bed's demo.yaml.
    pub fn configure(&self, section: &str) {
        let mut yaml = std::fs::read_to_string(self.config_path()).expect("read demo.yaml");
        yaml.push_str(section);
        std::fs::write(self.config_path(), yaml).expect("write demo.yaml");
    }

    /// The credentials file `up` wrote, parsed.
    pub fn credentials(&self) -> serde_json::Value {
        let path = self
            .state_dir()
            .join(format!("{}.credentials.json", self.stack));
        let text = std::fs::read_to_string(&path).expect("credentials file");
        serde_json::from_str(&text).expect("credentials JSON")
    }

    /// Containers, volumes and networks carrying this stack's label, asked of Docker.
    pub fn labelled(&self) -> Vec<String> {
        labelled(&self.stack)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        // A failed test must not leave its stack running for the next one.
        if !labelled(&self.stack).is_empty() {
            let _ = self.run(&["reset", "--yes", "--quiet"]);
        }
    }
}

/// A finished run of the binary.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd` (from [`Bed::command`]) to its end.
    pub fn of(mut cmd: Command) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().expect("run findemo");
        Run {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(self.code, Some(0), "expected success\n{self}");
        self
    }

    #[track_caller]
    pub fn failure(self) -> Run {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "expected failure\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self}"
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn docker() -> Docker {
    Docker::connect_with_defaults().expect("docker client")
}

/// Names of everything labelled io.findemo.stack=STACK, through the Docker API.
pub fn labelled(stack: &str) -> Vec<String> {
    use bollard::query_parameters::{
        ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    };
    use std::collections::HashMap;
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("io.findemo.stack={stack}")],
    )]);
    rt().block_on(async {
        let docker = docker();
        let mut found = Vec::new();
        for c in docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .expect("list containers")
        {
            found.push(format!("container {:?}", c.names));
        }
        let volumes = docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters.clone()),
            }))
            .await
            .expect("list volumes");
        for v in volumes.volumes.unwrap_or_default() {
            found.push(format!("volume {}", v.name));
        }
        for n in docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .expect("list networks")
        {
            found.push(format!("network {:?}", n.name));
        }
        found
    })
}

/// Four distinct ports that are free right now.
fn free_ports() -> [u16; 4] {
    let listeners: Vec<std::net::TcpListener> = (0..4)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let mut ports = [0; 4];
    for (i, l) in listeners.iter().enumerate() {
        ports[i] = l.local_addr().expect("addr").port();
    }
    ports
}

/// Connects to the stack's PostgreSQL with the generated credentials.
pub async fn postgres(bed: &Bed) -> tokio_postgres::Client {
    let creds = bed.credentials();
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(bed.port("postgres"))
        .user(creds["postgres_user"].as_str().expect("user"))
        .password(creds["postgres_password"].as_str().expect("password"))
        .dbname("financial");
    let (client, conn) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to postgres");
    tokio::spawn(conn);
    client
}

/// The single value `sql` returns in the stack's PostgreSQL.
pub fn pg_query<T: for<'a> tokio_postgres::types::FromSql<'a>>(bed: &Bed, sql: &str) -> T {
    rt().block_on(async {
        postgres(bed)
            .await
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    })
}

/// ClickHouse query through its HTTP port, as the stack's user: the trimmed answer.
pub fn clickhouse(bed: &Bed, sql: &str) -> String {
    let creds = bed.credentials();
    rt().block_on(async {
        let response = http_client()
            .post(format!("http://127.0.0.1:{}/", bed.port("clickhouse")))
            .header(
                "X-ClickHouse-User",
                creds["clickhouse_user"].as_str().expect("user"),
            )
            .header(
                "X-ClickHouse-Key",
                creds["clickhouse_password"].as_str().expect("password"),
            )
            .body(sql.to_string())
            .send()
            .await
            .expect("ClickHouse answers");
        let status = response.status();
        let text = response.text().await.expect("ClickHouse's answer");
        assert!(status.is_success(), "{sql}: {text}");
        text.trim().to_string()
    })
}

/// An HTTP client: findemo's reqwest is built with rustls and no default crypto
/// provider, so the test binary installs ring first, as findemo's `main` does.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
