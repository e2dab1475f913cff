//! One stack on the Docker engine: bringing a service to a ready container, and telling
//! how each service is doing. The commands compose these steps.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::docker::{ContainerStatus, DockerError, Engine, ServiceSpec};
use crate::endpoints::Endpoints;
use crate::probe::{NotReady, WaitFor};
use crate::progress::{Printer, Task};
use crate::retry::{Backoff, Limit};
use crate::service::{Service, CLICKHOUSE_CONSUMER_SESSION};
use crate::state::{Credentials, StateError};

/// How many log lines an error about a service shows.
const LOG_LINES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "port {port} on 127.0.0.1 is already in use, so {service} cannot publish it ({source}).\n\
         Stop whatever holds it, or give {service} another port: services.{service}.port in demo.yaml."
    )]
    PortTaken {
        port: u16,
        service: Service,
        source: std::io::Error,
    },
    #[error(
        "{service} did not become ready within {}s (waiting for {what}); last answer: {reason}\n{logs}\
         Try: `findemo logs {service}`; a longer wait with `findemo up --timeout SECONDS`; {hint}.",
        waited.as_secs()
    )]
    NotReady {
        service: Service,
        what: &'static str,
        waited: Duration,
        reason: String,
        logs: String,
        hint: &'static str,
    },
    #[error(
        "{service} is up but refuses findemo: {reason}\n{logs}\
         Waiting will not help. Try: {hint}."
    )]
    Refused {
        service: Service,
        reason: String,
        logs: String,
        hint: &'static str,
    },
    #[error(
        "{service}'s container stopped while starting ({state}, exit code {exit_code}).\n{logs}\
         Try: `findemo logs {service}`; {hint}."
    )]
    Exited {
        service: Service,
        state: String,
        exit_code: i64,
        logs: String,
        hint: &'static str,
    },
}

/// What `up` had to do for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AlreadyUp,
    Started,
    Created,
    Recreated,
}

impl Action {
    pub fn describe(self) -> &'static str {
        match self {
            Action::AlreadyUp => "already up",
            Action::Started => "started",
            Action::Created => "created",
            Action::Recreated => "recreated: config changed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ready {
    pub service: Service,
    pub action: Action,
    pub detail: String,
    pub took: Duration,
}

pub struct Stack<'a> {
    pub engine: &'a Engine,
    pub config: &'a Config,
    pub creds: &'a Credentials,
    /// The services as findemo reaches them: [`Endpoints::docker`] of `config` and `creds`.
    pub endpoints: &'a Endpoints,
    pub printer: &'a Printer,
}

impl Stack<'_> {
    pub fn spec(&self, service: Service) -> ServiceSpec {
        service.spec(self.config, self.creds)
    }

    /// Makes the service's container match its spec, runs it, and waits until it is ready.
    pub async fn bring_up(&self, service: Service) -> Result<Ready, StackError> {
        let started = Instant::now();
        let spec = self.spec(service);
        let task = self.printer.task(service.name(), "checking container");
        // When the old container stopped, for a service whose clients must expire.
        let (action, stopped_at) = match self.engine.inspect(&spec.container).await? {
            None => {
                task.message("creating container");
                self.engine.create(&spec).await?;
                (Action::Created, None)
            }
            Some(status) if status.fingerprint.as_deref() != Some(&spec.fingerprint()) => {
                task.message("config changed: recreating container (data volume kept)");
                self.engine.remove_container(&spec.container).await?;
                self.engine.create(&spec).await?;
                let stopped_at = match status.running {
                    true => Some(SystemTime::now()),
                    false => status.finished_at,
                };
                (Action::Recreated, stopped_at)
            }
            Some(status) if status.running => (Action::AlreadyUp, None),
            Some(status) => (Action::Started, status.finished_at),
        };
        if let (Service::Clickhouse, Some(stopped_at)) = (service, stopped_at) {
            outwait_old_consumers(stopped_at, &task).await;
        }
        if action != Action::AlreadyUp {
            task.message("starting");
            self.engine.start(&spec.container).await?;
        }
        let wait = WaitFor::of(service, self.endpoints);
        task.message(&format!("waiting for {}", wait.describe()));
        match self.wait_ready(service, &spec, &wait).await {
            Ok(detail) => {
                let took = started.elapsed();
                task.done(&format!(
                    "ready in {:.1}s: {detail} ({})",
                    took.as_secs_f64(),
                    action.describe()
                ));
                Ok(Ready {
                    service,
                    action,
                    detail,
                    took,
                })
            }
            Err(err) => {
                task.failed("not ready");
                Err(err)
            }
        }
    }

    /// Stops the service's container and brings it up again.
    pub async fn restart(&self, service: Service) -> Result<Ready, StackError> {
        let container = service.container_name(&self.config.stack);
        let task = self.printer.task(service.name(), "stopping");
        self.engine.stop(&container, RESTART_GRACE_SECS).await?;
        task.done("stopped");
        self.bring_up(service).await
    }

    /// Probes until ready, the container stops, or the timeout passes. No fixed sleeps:
    /// the pause between attempts grows from 100 ms to 1 s.
    async fn wait_ready(
        &self,
        service: Service,
        spec: &ServiceSpec,
        wait: &WaitFor,
    ) -> Result<String, StackError> {
        let mut backoff = Backoff::new(
            Limit::Until(self.config.ready_timeout),
            Duration::from_millis(100),
            Duration::from_secs(1),
        );
        loop {
            let reason = match wait.probe().await {
                Ok(detail) => return Ok(detail),
                Err(NotReady::Yet(reason)) => reason,
                Err(NotReady::Refused(reason)) => {
                    return Err(StackError::Refused {
                        service,
                        reason,
                        logs: self.log_excerpt(&spec.container).await,
                        hint: service.hint(),
                    })
                }
            };
            tracing::debug!(%service, %reason, "not ready yet");
            if let Some(status) = self.engine.inspect(&spec.container).await? {
                if !status.running {
                    return Err(self.exited(service, spec, status).await);
                }
            }
            if !backoff.wait().await {
                return Err(StackError::NotReady {
                    service,
                    what: wait.describe(),
                    waited: self.config.ready_timeout,
                    reason,
                    logs: self.log_excerpt(&spec.container).await,
                    hint: service.hint(),
                });
            }
        }
    }

    async fn exited(&self, service: Service, spec: &ServiceSpec, s: ContainerStatus) -> StackError {
        StackError::Exited {
            service,
            state: s.state,
            exit_code: s.exit_code.unwrap_or(-1),
            logs: self.log_excerpt(&spec.container).await,
            hint: service.hint(),
        }
    }

    /// The container's last lines, indented, for an error message.
    pub async fn log_excerpt(&self, container: &str) -> String {
        match self.engine.logs_tail(container, LOG_LINES).await {
            Ok(lines) if lines.is_empty() => format!("({container} wrote no log lines)\n"),
            Ok(lines) => {
                let mut text = format!("Last log lines of {container}:\n");
                for line in lines {
                    let _ = writeln!(text, "  | {line}");
                }
                text
            }
            Err(err) => format!("(could not read its logs: {err})\n"),
        }
    }
}

/// How long a restarted service may take to stop before it is killed.
const RESTART_GRACE_SECS: i32 = 10;

/// ClickHouse 18.16 stops without leaving its Kafka consumer groups. A consumer that
/// joins while a member of the stopped ClickHouse still counts can be left without
/// partitions for good (tansu, README "Known limits of the test bed"). So ClickHouse
/// starts only once the broker has expired the old members: a session timeout after
/// it stopped, and a margin for the broker's and the engine's clocks.
async fn outwait_old_consumers(stopped_at: SystemTime, task: &Task) {
    let expired_at = stopped_at + CLICKHOUSE_CONSUMER_SESSION + Duration::from_secs(2);
    if let Ok(left) = expired_at.duration_since(SystemTime::now()) {
        task.message(&format!(
            "waiting {:.0}s for the broker to expire the Kafka consumers it had before it stopped",
            left.as_secs_f64().ceil()
        ));
        tokio::time::sleep(left).await;
    }
}

/// Fails if the host port a service would publish is held by something else.
pub fn check_port_free(service: Service, port: u16) -> Result<(), StackError> {
    std::net::TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .map_err(|source| StackError::PortTaken {
            port,
            service,
            source,
        })
}
