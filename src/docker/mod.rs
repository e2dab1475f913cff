//! A small wrapper around bollard: the few Docker Engine calls findemo makes, with
//! errors that say what was being done and to what.
//!
//! Everything it creates carries the stack label (see [`spec`]), so `reset` can sweep
//! by label instead of remembering names.

mod spec;

use std::collections::HashMap;
use std::time::SystemTime;

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, EndpointSettings, HostConfig,
    NetworkCreateRequest, NetworkingConfig, PortBinding, ResourcesUlimits, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, ListNetworksOptions,
    ListVolumesOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
    StopContainerOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt, TryStreamExt};
use time::format_description::well_known::Rfc3339;

pub use spec::{Labels, ServiceSpec, FINGERPRINT_LABEL, STACK_LABEL};

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "cannot reach the Docker engine at {host}: {source}\n\
         Is Docker running? Start it (for example `sudo systemctl start docker`, or `dockerd &`), \
         or point DOCKER_HOST at a running engine (e.g. DOCKER_HOST=unix:///var/run/docker.sock)."
    )]
    Unreachable { host: String, source: BollardError },
    #[error("cannot pull image {image}: {message}\nCheck the image name and your network; images already on this machine are never pulled.")]
    Pull { image: String, message: String },
    #[error("cannot pack the configuration files of {container}: {source}")]
    Files {
        container: String,
        source: std::io::Error,
    },
    #[error("cannot {action} {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        source: BollardError,
    },
}

type Result<T, E = DockerError> = std::result::Result<T, E>;

fn api(action: &'static str, object: &str) -> impl FnOnce(BollardError) -> DockerError {
    let object = object.to_string();
    move |source| DockerError::Api {
        action,
        object,
        source,
    }
}

fn is_not_found(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A time as the engine writes it (RFC 3339). Its zero time (`0001-01-01T00:00:00Z`,
/// a container that never stopped) is before the epoch, so `None` as well.
fn parse_time(text: &str) -> Option<SystemTime> {
    let at = time::OffsetDateTime::parse(text, &Rfc3339).ok()?;
    (at.year() >= 1970).then(|| at.into())
}

/// What findemo needs to know about an existing container.
#[derive(Debug, Clone)]
pub struct ContainerStatus {
    pub running: bool,
    /// Docker's word for the state: running, exited, created...
    pub state: String,
    pub exit_code: Option<i64>,
    /// When it last stopped, on the engine's clock (`None`: never stopped, or the
    /// engine did not say).
    pub finished_at: Option<SystemTime>,
    pub fingerprint: Option<String>,
}

/// Everything carrying a stack's label.
#[derive(Debug, Default)]
pub struct Labelled {
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
}

impl Labelled {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.volumes.is_empty() && self.networks.is_empty()
    }

    /// (containers, volumes, networks)
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.containers.len(),
            self.volumes.len(),
            self.networks.len(),
        )
    }
}

/// Progress of one image pull, summed over its layers.
#[derive(Debug, Clone, Default)]
pub struct PullProgress {
    pub current: u64,
    pub total: u64,
    pub status: String,
}

pub struct Engine {
    docker: Docker,
    host: String,
}

impl Engine {
    /// Connects to the engine named by DOCKER_HOST (or the local default socket) and
    /// agrees on an API version both sides speak (Debian's engine stops at 1.41).
    pub async fn connect() -> Result<Engine> {
        let host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
        let unreachable = |source| DockerError::Unreachable {
            host: host.clone(),
            source,
        };
        let docker = Docker::connect_with_host(&host).map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Engine { docker, host })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub async fn image_exists(&self, image: &str) -> Result<bool> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(err) if is_not_found(&err) => Ok(false),
            Err(err) => Err(api("inspect image", image)(err)),
        }
    }

    /// Pulls `image`, reporting progress as the layers arrive.
    pub async fn pull(&self, image: &str, mut progress: impl FnMut(&PullProgress)) -> Result<()> {
        let (repo, tag) = split_image(image);
        let options = CreateImageOptions {
            from_image: Some(repo.to_string()),
            tag: (!tag.is_empty()).then(|| tag.to_string()),
            ..Default::default()
        };
        let mut layers: HashMap<String, (u64, u64)> = HashMap::new();
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|err| DockerError::Pull {
                image: image.to_string(),
                message: pull_message(&err),
            })?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(DockerError::Pull {
                    image: image.to_string(),
                    message: detail,
                });
            }
            if let (Some(id), Some(detail)) = (info.id, info.progress_detail) {
                if let (Some(cur), Some(total)) = (detail.current, detail.total) {
                    layers.insert(id, (cur.max(0) as u64, total.max(0) as u64));
                }
            }
            let (current, total) = layers
                .values()
                .fold((0, 0), |(c, t), (lc, lt)| (c + lc, t + lt));
            progress(&PullProgress {
                current,
                total,
                status: info.status.unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Creates the network unless it exists. Returns whether it was created.
    pub async fn ensure_network(&self, name: &str, labels: &Labels) -> Result<bool> {
        match self.docker.inspect_network(name, None).await {
            Ok(_) => return Ok(false),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(api("inspect network", name)(err)),
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels.0.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map_err(api("create network", name))?;
        Ok(true)
    }

    /// Creates the volume unless it exists. Returns whether it was created.
    pub async fn ensure_volume(&self, name: &str, labels: &Labels) -> Result<bool> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => return Ok(false),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(api("inspect volume", name)(err)),
        }
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.0.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map_err(api("create volume", name))?;
        Ok(true)
    }

    /// The container's state, or `None` if there is no such container.
    pub async fn inspect(&self, container: &str) -> Result<Option<ContainerStatus>> {
        let info = match self.docker.inspect_container(container, None).await {
            Ok(info) => info,
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(api("inspect container", container)(err)),
        };
        let state = info.state.unwrap_or_default();
        let status = state.status.unwrap_or(ContainerStateStatusEnum::EMPTY);
        Ok(Some(ContainerStatus {
            running: state.running.unwrap_or(false),
            state: status.to_string(),
            exit_code: state.exit_code,
            finished_at: state.finished_at.as_deref().and_then(parse_time),
            fingerprint: info
                .config
                .and_then(|c| c.labels)
                .and_then(|mut l| l.remove(FINGERPRINT_LABEL)),
        }))
    }

    /// Creates the container described by `spec` (not started).
    pub async fn create(&self, spec: &ServiceSpec) -> Result<()> {
        // Packed first: nothing is created when the files cannot be.
        let archive = spec::tar(&spec.files).map_err(|source| DockerError::Files {
            container: spec.container.clone(),
            source,
        })?;
        let mut labels: HashMap<String, String> = spec.labels.0.clone().into_iter().collect();
        labels.insert(FINGERPRINT_LABEL.to_string(), spec.fingerprint());
        let port_bindings = spec
            .ports
            .iter()
            .map(|(host, ct)| {
                let binding = PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(host.to_string()),
                };
                (format!("{ct}/tcp"), Some(vec![binding]))
            })
            .collect();
        let host_config = HostConfig {
            port_bindings: Some(port_bindings),
            binds: Some(
                spec.volumes
                    .iter()
                    .map(|(vol, path)| format!("{vol}:{path}"))
                    .collect(),
            ),
            memory: spec.memory,
            shm_size: spec.shm_size,
            ulimits: spec.nofile.map(|n| {
                vec![ResourcesUlimits {
                    name: Some("nofile".into()),
                    soft: Some(n),
                    hard: Some(n),
                }]
            }),
            network_mode: Some(spec.network.clone()),
            ..Default::default()
        };
        let endpoint = EndpointSettings {
            aliases: Some(vec![spec.alias.clone()]),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            hostname: Some(spec.alias.clone()),
            env: Some(spec.env.clone()),
            cmd: spec.cmd.clone(),
            labels: Some(labels),
            exposed_ports: Some(
                spec.ports
                    .iter()
                    .map(|(_, ct)| format!("{ct}/tcp"))
                    .collect(),
            ),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(spec.network.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.container.clone()),
            ..Default::default()
        };
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(api("create container", &spec.container))?;
        if !spec.files.is_empty() {
            let options = UploadToContainerOptions {
                path: "/".into(),
                ..Default::default()
            };
            let archive = bollard::body_full(archive.into());
            let uploaded = self
                .docker
                .upload_to_container(&spec.container, Some(options), archive)
                .await;
            if let Err(err) = uploaded {
                // A container without its files must not be taken for a finished one.
                let _ = self.remove_container(&spec.container).await;
                return Err(api("write configuration files into", &spec.container)(err));
            }
        }
        Ok(())
    }

    pub async fn start(&self, container: &str) -> Result<()> {
        self.docker
            .start_container(container, None)
            .await
            .map_err(api("start container", container))
    }

    /// Stops the container, giving it `grace_secs` before it is killed.
    pub async fn stop(&self, container: &str, grace_secs: i32) -> Result<()> {
        let options = StopContainerOptions {
            t: Some(grace_secs),
            ..Default::default()
        };
        match self.docker.stop_container(container, Some(options)).await {
            Err(err) if !is_not_found(&err) => Err(api("stop container", container)(err)),
            _ => Ok(()),
        }
    }

    /// Removes the container (running or not), if it exists, with the anonymous
    /// volumes its image declared (official images declare some findemo does not
    /// mount); named volumes stay.
    pub async fn remove_container(&self, container: &str) -> Result<()> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(container, Some(options)).await {
            Err(err) if !is_not_found(&err) => Err(api("remove container", container)(err)),
            _ => Ok(()),
        }
    }

    pub async fn remove_volume(&self, volume: &str) -> Result<()> {
        let options = RemoveVolumeOptions { force: true };
        match self.docker.remove_volume(volume, Some(options)).await {
            Err(err) if !is_not_found(&err) => Err(api("remove volume", volume)(err)),
            _ => Ok(()),
        }
    }

    pub async fn remove_network(&self, network: &str) -> Result<()> {
        match self.docker.remove_network(network).await {
            Err(err) if !is_not_found(&err) => Err(api("remove network", network)(err)),
            _ => Ok(()),
        }
    }

    /// The last `lines` lines the container wrote (stdout and stderr).
    pub async fn logs_tail(&self, container: &str, lines: usize) -> Result<Vec<String>> {
        let chunks: Vec<String> = self.logs(container, lines, false).try_collect().await?;
        let text = chunks.concat();
        let all: Vec<&str> = text.lines().collect();
        let skip = all.len().saturating_sub(lines);
        Ok(all[skip..].iter().map(|l| l.to_string()).collect())
    }

    /// The container's log, as text chunks; with `follow`, until the container stops.
    pub fn logs(
        &self,
        container: &str,
        tail: usize,
        follow: bool,
    ) -> impl Stream<Item = Result<String>> + '_ {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.to_string(),
            ..Default::default()
        };
        let name = container.to_string();
        self.docker
            .logs(container, Some(options))
            .map_ok(|chunk| String::from_utf8_lossy(&chunk.into_bytes()).into_owned())
            .map_err(move |err| api("read logs of", &name)(err))
    }

    /// Every container, volume and network labelled with `stack`.
    pub async fn labelled(&self, stack: &str) -> Result<Labelled> {
        let filter = HashMap::from([("label".to_string(), vec![format!("{STACK_LABEL}={stack}")])]);
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filter.clone()),
                ..Default::default()
            }))
            .await
            .map_err(api("list containers of stack", stack))?
            .into_iter()
            .filter_map(|c| {
                c.names?
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
            })
            .collect();
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filter.clone()),
            }))
            .await
            .map_err(api("list volumes of stack", stack))?
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect();
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filter),
            }))
            .await
            .map_err(api("list networks of stack", stack))?
            .into_iter()
            .filter_map(|n| n.name)
            .collect();
        Ok(Labelled {
            containers,
            volumes,
            networks,
        })
    }
}

/// "repo/name:tag" -> ("repo/name", "tag"); no tag means "latest", as Docker does.
/// A digest reference ("name@sha256:...") is passed whole, with no tag.
fn split_image(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], &image[name_start + i + 1..]),
        None => (image, "latest"),
    }
}

fn pull_message(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_at_the_tag() {
        assert_eq!(split_image("postgres:18.1"), ("postgres", "18.1"));
        assert_eq!(
            split_image("quay.io/debezium/connect:3.6.0.Final"),
            ("quay.io/debezium/connect", "3.6.0.Final")
        );
        assert_eq!(
            split_image("localhost:5000/img"),
            ("localhost:5000/img", "latest")
        );
        assert_eq!(split_image("pg@sha256:ab12"), ("pg@sha256:ab12", ""));
    }

    #[test]
    fn stop_times_as_the_engine_writes_them() {
        let at = parse_time("2026-11-28T06:30:01.123456789Z").expect("a time");
        let secs = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970");
        assert_eq!(secs.as_secs(), 1_795_847_401);
        assert_eq!(secs.subsec_nanos(), 123_456_789);
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None, "never stopped");
        assert_eq!(parse_time("yesterday"), None);
    }
}
