//! Kafka, through librdkafka (the `rdkafka` crate): the only code that talks to the
//! broker: a metadata request (the readiness probe: a broker answers it only once it
//! can serve clients), topics' partition counts, topic creation and deletion (and
//! consumer groups') with the admin client, and a consumer group's lag read from
//! outside the group.
//!
//! librdkafka's calls block, so each runs on tokio's blocking pool, never on an async
//! worker. Lag is read as a non-member: a consumer with the group's `group.id` that
//! never subscribes asks for the group's committed offsets (it never joins, so the
//! group's members keep their partitions), and each partition's end comes from its
//! watermarks.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::endpoints::KafkaEndpoint;

const CLIENT_ID: &str = "findemo";

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("Kafka broker at {addr}: {what}: {source}")]
    Client {
        addr: String,
        what: String,
        /// Boxed: librdkafka's error is large, and every `Result` here carries it.
        source: Box<RdError>,
    },
    #[error("no answer from the Kafka broker at {addr} within {timeout:?} ({what})")]
    Timeout {
        addr: String,
        what: &'static str,
        timeout: Duration,
    },
    #[error("Kafka broker at {addr}: topic {topic} does not exist")]
    NoTopic { addr: String, topic: String },
    #[error("creating Kafka topic {topic} failed: {code}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("Kafka client task for {what} ended abnormally: {source}")]
    Task {
        what: String,
        source: tokio::task::JoinError,
    },
}

/// A broker as the cluster advertises it.
#[derive(Debug, Clone, PartialEq)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// A client configuration for the brokers at `ep`.
fn config(ep: &KafkaEndpoint, timeout: Duration) -> ClientConfig {
    let ms = timeout.as_millis().clamp(10, i32::MAX as u128).to_string();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &ep.bootstrap)
        .set("client.id", CLIENT_ID)
        .set("security.protocol", &ep.security_protocol)
        .set("socket.timeout.ms", &ms)
        .set("socket.connection.setup.timeout.ms", &ms);
    if ep.ipv4_only {
        config.set("broker.address.family", "v4");
    }
    if let Some((mechanism, user, password)) = &ep.sasl {
        config
            .set("sasl.mechanism", mechanism)
            .set("sasl.username", user)
            .set("sasl.password", password.expose());
    }
    config
}

/// Runs blocking librdkafka work on the blocking pool.
async fn blocking<T: Send + 'static>(
    what: String,
    work: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|source| KafkaError::Task { what, source })?
}

fn client_err(addr: &str, what: impl Into<String>) -> impl FnOnce(RdError) -> KafkaError + '_ {
    let what = what.into();
    move |source| KafkaError::Client {
        addr: addr.to_string(),
        what,
        source: Box::new(source),
    }
}

/// The whole cluster's metadata (brokers and topics), asked with a client of its own.
/// Blocking: call it on the blocking pool.
fn cluster_metadata(ep: &KafkaEndpoint, timeout: Duration) -> Result<Metadata, KafkaError> {
    let addr = &ep.bootstrap;
    let consumer: BaseConsumer = config(ep, timeout)
        .create()
        .map_err(client_err(addr, "create a client"))?;
    consumer
        .fetch_metadata(None, timeout)
        .map_err(client_err(addr, "metadata request"))
}

/// Asks the brokers at `ep` for cluster metadata and returns its brokers.
pub async fn metadata(ep: &KafkaEndpoint, timeout: Duration) -> Result<Vec<Broker>, KafkaError> {
    let (ep, addr) = (ep.clone(), ep.bootstrap.clone());
    blocking("a metadata request".into(), move || {
        let metadata = cluster_metadata(&ep, timeout)?;
        let brokers: Vec<Broker> = metadata
            .brokers()
            .iter()
            .map(|b| Broker {
                node_id: b.id(),
                host: b.host().to_string(),
                port: b.port(),
            })
            .collect();
        if brokers.is_empty() {
            return Err(KafkaError::Client {
                addr,
                what: "metadata request".into(),
                source: Box::new(RdError::MetadataFetch(RDKafkaErrorCode::BrokerNotAvailable)),
            });
        }
        Ok(brokers)
    })
    .await
}

/// Creates each topic (one partition, replication factor 1) unless it exists.
/// Returns the names it created.
pub async fn create_topics(
    ep: &KafkaEndpoint,
    topics: &[String],
    timeout: Duration,
) -> Result<Vec<String>, KafkaError> {
    let (ep, addr, topics) = (ep.clone(), ep.bootstrap.clone(), topics.to_vec());
    let runtime = tokio::runtime::Handle::current();
    // Creating and dropping the admin client start and join its threads: off the
    // async workers too, with the request's future driven from there.
    let results = blocking("create topics".into(), move || {
        let admin: AdminClient<DefaultClientContext> = config(&ep, timeout)
            .create()
            .map_err(client_err(&addr, "create an admin client"))?;
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout));
        runtime.block_on(async {
            tokio::time::timeout(timeout, admin.create_topics(&new, &options))
                .await
                .map_err(|_| KafkaError::Timeout {
                    addr: addr.clone(),
                    what: "create topics",
                    timeout,
                })?
                .map_err(client_err(&addr, "create topics"))
        })
    })
    .await?;
    let mut created = Vec::new();
    for result in results {
        match result {
            Ok(topic) => created.push(topic),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, code }),
        }
    }
    Ok(created)
}

/// Each topic's partition count, `None` for a topic the brokers do not have.
pub async fn partition_counts(
    ep: &KafkaEndpoint,
    topics: &[String],
    timeout: Duration,
) -> Result<Vec<(String, Option<usize>)>, KafkaError> {
    let (ep, topics) = (ep.clone(), topics.to_vec());
    blocking("describe topics".into(), move || {
        let metadata = cluster_metadata(&ep, timeout)?;
        Ok(topics
            .into_iter()
            .map(|name| {
                let count = metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == name && t.error().is_none())
                    .map(|t| t.partitions().len());
                (name, count)
            })
            .collect())
    })
    .await
}

/// What the admin client can delete: topics, or consumer groups.
#[derive(Debug, Clone, Copy)]
pub enum Deletable {
    Topics,
    Groups,
}

/// Deletes topics or consumer groups; one already gone is no error. Returns the names
/// the brokers refused, with why.
pub async fn delete(
    ep: &KafkaEndpoint,
    kind: Deletable,
    names: &[String],
    timeout: Duration,
) -> Result<Vec<(String, RDKafkaErrorCode)>, KafkaError> {
    let (ep, addr, names) = (ep.clone(), ep.bootstrap.clone(), names.to_vec());
    let runtime = tokio::runtime::Handle::current();
    blocking(format!("delete {kind:?}"), move || {
        let admin: AdminClient<DefaultClientContext> = config(&ep, timeout)
            .create()
            .map_err(client_err(&addr, "create an admin client"))?;
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let options = AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout));
        let results = runtime.block_on(async {
            let request = async {
                match kind {
                    Deletable::Topics => admin.delete_topics(&refs, &options).await,
                    Deletable::Groups => admin.delete_groups(&refs, &options).await,
                }
            };
            tokio::time::timeout(timeout, request)
                .await
                .map_err(|_| KafkaError::Timeout {
                    addr: addr.clone(),
                    what: "delete",
                    timeout,
                })?
                .map_err(client_err(&addr, format!("delete {kind:?}")))
        })?;
        Ok(results
            .into_iter()
            .filter_map(Result::err)
            .filter(|(_, code)| {
                !matches!(
                    code,
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::GroupIdNotFound
                )
            })
            .collect())
    })
    .await
}

/// One partition's end and a group's position in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionLag {
    pub partition: i32,
    /// The offset the next record will get (the high watermark).
    pub end_offset: i64,
    /// The group's committed offset, `None` when it has committed none.
    pub committed_offset: Option<i64>,
    pub lag_events: i64,
}

/// A consumer group's lag on one topic, summed over its partitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicLag {
    pub topic: String,
    pub group: String,
    pub end_offset: i64,
    /// Sum of the committed offsets; `None` when the group has committed none.
    pub committed_offset: Option<i64>,
    pub lag_events: i64,
    pub partitions: Vec<PartitionLag>,
}

/// Events a group has still to consume in one partition: from its committed offset
/// (or, with none, from the partition's start, where ClickHouse's consumers begin) to
/// the end. Never negative: the test bed's broker can report an end below a committed
/// offset (README, known limits).
pub fn partition_lag(end: i64, start: i64, committed: Option<i64>) -> i64 {
    (end - committed.unwrap_or(start)).max(0)
}

/// Sums partitions into the topic's figures.
pub fn topic_lag(topic: &str, group: &str, partitions: Vec<PartitionLag>) -> TopicLag {
    let committed: Vec<i64> = partitions
        .iter()
        .filter_map(|p| p.committed_offset)
        .collect();
    TopicLag {
        topic: topic.to_string(),
        group: group.to_string(),
        end_offset: partitions.iter().map(|p| p.end_offset).sum(),
        committed_offset: (!committed.is_empty()).then(|| committed.iter().sum()),
        lag_events: partitions.iter().map(|p| p.lag_events).sum(),
        partitions,
    }
}

/// How far consumer group `group` is behind on `topic`, read without joining it.
pub async fn group_lag(
    ep: &KafkaEndpoint,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<TopicLag, KafkaError> {
    let (ep, addr) = (ep.clone(), ep.bootstrap.clone());
    let (group, topic) = (group.to_string(), topic.to_string());
    blocking(format!("the lag of group {group}"), move || {
        let consumer: BaseConsumer = config(&ep, timeout)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(client_err(&addr, "create a consumer"))?;
        let ids = partition_ids(&consumer, &addr, &topic, timeout)?;
        let mut wanted = TopicPartitionList::new();
        for id in &ids {
            wanted.add_partition(&topic, *id);
        }
        let committed = consumer
            .committed_offsets(wanted, timeout)
            .map_err(client_err(
                &addr,
                format!("committed offsets of group {group}"),
            ))?;
        let mut partitions = Vec::new();
        for id in ids {
            let (start, end) = consumer
                .fetch_watermarks(&topic, id, timeout)
                .map_err(client_err(&addr, format!("end offsets of {topic}")))?;
            let offset = committed
                .find_partition(&topic, id)
                .map(|e| e.offset())
                .and_then(|o| match o {
                    Offset::Offset(n) if n >= 0 => Some(n),
                    _ => None,
                });
            partitions.push(PartitionLag {
                partition: id,
                end_offset: end,
                committed_offset: offset,
                lag_events: partition_lag(end, start, offset),
            });
        }
        Ok(topic_lag(&topic, &group, partitions))
    })
    .await
}

/// The ids of `topic`'s partitions; an error when the broker does not know it.
fn partition_ids(
    consumer: &BaseConsumer,
    addr: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, KafkaError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(client_err(addr, format!("metadata of topic {topic}")))?;
    let ids: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if ids.is_empty() {
        return Err(KafkaError::NoTopic {
            addr: addr.to_string(),
            topic: topic.to_string(),
        });
    }
    Ok(ids)
}

/// Reads a topic's end offset (summed over its partitions) again and again through one
/// client that never joins a group: cheaper than a client per reading, for `bench`.
#[derive(Clone)]
pub struct TopicEnd {
    consumer: Arc<BaseConsumer>,
    addr: String,
    topic: String,
    partitions: Vec<i32>,
}

impl TopicEnd {
    /// A reader of `topic` on the brokers at `ep`; an error if the topic is missing.
    pub async fn open(
        ep: &KafkaEndpoint,
        topic: &str,
        timeout: Duration,
    ) -> Result<TopicEnd, KafkaError> {
        let (ep, addr, topic) = (ep.clone(), ep.bootstrap.clone(), topic.to_string());
        blocking(format!("the partitions of {topic}"), move || {
            let consumer: BaseConsumer = config(&ep, timeout)
                .create()
                .map_err(client_err(&addr, "create a client"))?;
            let partitions = partition_ids(&consumer, &addr, &topic, timeout)?;
            Ok(TopicEnd {
                consumer: Arc::new(consumer),
                addr,
                topic,
                partitions,
            })
        })
        .await
    }

    /// The events the topic has received: the sum of its partitions' high watermarks.
    pub async fn end(&self, timeout: Duration) -> Result<i64, KafkaError> {
        let this = self.clone();
        blocking(format!("the end of {}", self.topic), move || {
            let mut total = 0;
            for &p in &this.partitions {
                let what = format!("end offset of {}", this.topic);
                let (_, high) = this
                    .consumer
                    .fetch_watermarks(&this.topic, p, timeout)
                    .map_err(client_err(&this.addr, what))?;
                total += high;
            }
            Ok(total)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_committed_offset_or_the_start() {
        assert_eq!(partition_lag(100, 0, Some(40)), 60);
        assert_eq!(partition_lag(100, 0, Some(100)), 0);
        assert_eq!(partition_lag(100, 10, None), 90);
        assert_eq!(partition_lag(0, 0, None), 0);
    }

    #[test]
    fn lag_is_never_negative() {
        // tansu's end offset can be below what a group committed (README).
        assert_eq!(partition_lag(106, 0, Some(115)), 0);
    }

    #[test]
    fn topic_sums_partitions() {
        let p = |partition, end_offset, committed_offset: Option<i64>| PartitionLag {
            partition,
            end_offset,
            committed_offset,
            lag_events: partition_lag(end_offset, 0, committed_offset),
        };
        let lag = topic_lag("s.public.t", "g", vec![p(0, 10, Some(4)), p(1, 5, None)]);
        assert_eq!(
            (lag.end_offset, lag.committed_offset, lag.lag_events),
            (15, Some(4), 11)
        );
        let none = topic_lag("s.public.t", "g", vec![p(0, 3, None)]);
        assert_eq!((none.committed_offset, none.lag_events), (None, 3));
    }
}
