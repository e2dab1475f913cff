//! The little of the Kafka wire protocol findemo speaks itself: ApiVersions, to learn
//! which Metadata version the broker accepts, then Metadata, which a broker answers
//! only once it can serve clients. Written by hand so the binary carries no librdkafka.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const API_METADATA: i16 = 3;
const API_VERSIONS: i16 = 18;
const API_CREATE_TOPICS: i16 = 19;
/// The newest CreateTopics version without flexible (tagged) encoding.
const CREATE_TOPICS_MAX_PLAIN: i16 = 4;
/// CreateTopics error code for a topic that is already there.
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// The newest Metadata version without flexible (tagged) encoding.
const METADATA_MAX_PLAIN: i16 = 8;
const CLIENT_ID: &str = "findemo";

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot connect to the Kafka broker at {addr}: {source}")]
    Unreachable {
        addr: String,
        source: std::io::Error,
    },
    #[error("no answer from the Kafka broker at {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("Kafka broker at {addr}: {message}")]
    Protocol { addr: String, message: String },
    #[error("creating Kafka topic {topic} failed with error code {code}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    CreateTopic {
        topic: String,
        code: i16,
        detail: Option<String>,
    },
}

/// Connects, runs `exchange` on the connection, and gives it all `timeout`; the
/// exchange's own failures (plain text from the wire code) become `Protocol`.
async fn with_broker<T>(
    addr: &str,
    timeout: Duration,
    exchange: impl AsyncFnOnce(&mut TcpStream) -> Result<Result<T, KafkaError>, String>,
) -> Result<T, KafkaError> {
    let work = async {
        let mut conn =
            TcpStream::connect(addr)
                .await
                .map_err(|source| KafkaError::Unreachable {
                    addr: addr.to_string(),
                    source,
                })?;
        exchange(&mut conn)
            .await
            .map_err(|message| KafkaError::Protocol {
                addr: addr.to_string(),
                message,
            })?
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| KafkaError::Timeout {
            addr: addr.to_string(),
            timeout,
        })?
}

/// A broker as the cluster advertises it.
#[derive(Debug, Clone, PartialEq)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// Asks the broker at `addr` for cluster metadata and returns its brokers.
pub async fn metadata(addr: &str, timeout: Duration) -> Result<Vec<Broker>, KafkaError> {
    with_broker(addr, timeout, async |conn: &mut TcpStream| {
        let versions = call(conn, API_VERSIONS, 0, 1, &[]).await?;
        let version = metadata_version(&versions)?;
        let body = metadata_request(version);
        let reply = call(conn, API_METADATA, version, 2, &body).await?;
        parse_metadata(&reply, version).map(Ok)
    })
    .await
}

/// Creates each topic (one partition, replication factor 1) unless it exists.
/// Returns the names it created.
pub async fn create_topics(
    addr: &str,
    topics: &[String],
    timeout: Duration,
) -> Result<Vec<String>, KafkaError> {
    with_broker(addr, timeout, async |conn: &mut TcpStream| {
        let versions = call(conn, API_VERSIONS, 0, 1, &[]).await?;
        let version = api_version(&versions, API_CREATE_TOPICS, CREATE_TOPICS_MAX_PLAIN)?;
        let mut body = Vec::new();
        body.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for topic in topics {
            put_string(&mut body, topic);
            body.extend_from_slice(&1i32.to_be_bytes()); // partitions
            body.extend_from_slice(&1i16.to_be_bytes()); // replication factor
            body.extend_from_slice(&0i32.to_be_bytes()); // no manual assignment
            body.extend_from_slice(&0i32.to_be_bytes()); // no configs
        }
        body.extend_from_slice(&15_000i32.to_be_bytes()); // timeout_ms
        if version >= 1 {
            body.push(0); // validate_only = false
        }
        let reply = call(conn, API_CREATE_TOPICS, version, 2, &body).await?;
        let mut r = Reader(&reply);
        if version >= 2 {
            r.i32()?; // throttle_time_ms
        }
        let mut created = Vec::new();
        for _ in 0..r.i32()? {
            let name = r.string()?.unwrap_or_default();
            let code = r.i16()?;
            let message = if version >= 1 { r.string()? } else { None };
            match code {
                0 => created.push(name),
                TOPIC_ALREADY_EXISTS => {}
                _ => {
                    return Ok(Err(KafkaError::CreateTopic {
                        topic: name,
                        code,
                        detail: message,
                    }))
                }
            }
        }
        Ok(Ok(created))
    })
    .await
}

/// Sends one request and returns the response body after the correlation id.
async fn call(
    conn: &mut TcpStream,
    api_key: i16,
    version: i16,
    correlation: i32,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let mut frame = Vec::with_capacity(32 + body.len());
    frame.extend_from_slice(&api_key.to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&correlation.to_be_bytes());
    put_string(&mut frame, CLIENT_ID);
    frame.extend_from_slice(body);
    let mut message = (frame.len() as i32).to_be_bytes().to_vec();
    message.extend_from_slice(&frame);
    let io = |e: std::io::Error| format!("broker connection: {e}");
    conn.write_all(&message).await.map_err(io)?;
    let len = conn.read_i32().await.map_err(io)?;
    if !(4..=64 << 20).contains(&len) {
        return Err(format!("broker sent a frame of {len} bytes"));
    }
    let mut reply = vec![0; len as usize];
    conn.read_exact(&mut reply).await.map_err(io)?;
    let mut r = Reader(&reply);
    if r.i32()? != correlation {
        return Err("broker answered another request".into());
    }
    Ok(r.0.to_vec())
}

/// Picks the newest plain-encoded Metadata version from an ApiVersions v0 answer.
fn metadata_version(reply: &[u8]) -> Result<i16, String> {
    api_version(reply, API_METADATA, METADATA_MAX_PLAIN)
}

/// The newest version of `api` up to `newest` that the broker accepts, from an
/// ApiVersions v0 answer.
fn api_version(reply: &[u8], api: i16, newest: i16) -> Result<i16, String> {
    let mut r = Reader(reply);
    let error = r.i16()?;
    if error != 0 {
        return Err(format!("ApiVersions failed with error code {error}"));
    }
    for _ in 0..r.i32()? {
        let (key, min, max) = (r.i16()?, r.i16()?, r.i16()?);
        if key == api {
            let version = max.min(newest);
            return if version >= min {
                Ok(version)
            } else {
                Err(format!("broker needs API {api} v{min} or newer"))
            };
        }
    }
    Err(format!("broker does not offer API {api}"))
}

fn metadata_request(version: i16) -> Vec<u8> {
    let mut body = Vec::new();
    // All topics: an empty array in v0, a null array from v1 on.
    let topics: i32 = if version == 0 { 0 } else { -1 };
    body.extend_from_slice(&topics.to_be_bytes());
    if version >= 4 {
        body.push(0); // allow_auto_topic_creation = false
    }
    if version >= 8 {
        body.push(0); // include_cluster_authorized_operations
        body.push(0); // include_topic_authorized_operations
    }
    body
}

fn parse_metadata(reply: &[u8], version: i16) -> Result<Vec<Broker>, String> {
    let mut r = Reader(reply);
    if version >= 3 {
        r.i32()?; // throttle_time_ms
    }
    let count = r.i32()?;
    let mut brokers = Vec::new();
    for _ in 0..count.max(0) {
        let node_id = r.i32()?;
        let host = r.string()?.unwrap_or_default();
        let port = r.i32()?;
        if version >= 1 {
            r.string()?; // rack
        }
        brokers.push(Broker {
            node_id,
            host,
            port,
        });
    }
    if brokers.is_empty() {
        return Err("broker answered with no brokers yet".into());
    }
    Ok(brokers)
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as i16).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// Big-endian reads over a byte slice, failing on truncation.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("broker reply is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<Option<String>, String> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(len as usize)?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_newest_plain_metadata_version() {
        let mut reply = vec![0, 0, 0, 0, 0, 2];
        for (key, min, max) in [(18i16, 0i16, 3i16), (3, 0, 12)] {
            for v in [key, min, max] {
                reply.extend_from_slice(&v.to_be_bytes());
            }
        }
        assert_eq!(metadata_version(&reply), Ok(8));
        assert!(metadata_version(&[0, 35, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn parses_brokers_of_v8_reply() {
        let mut reply = Vec::new();
        reply.extend_from_slice(&0i32.to_be_bytes()); // throttle
        reply.extend_from_slice(&1i32.to_be_bytes()); // one broker
        reply.extend_from_slice(&1i32.to_be_bytes());
        put_string(&mut reply, "kafka");
        reply.extend_from_slice(&29092i32.to_be_bytes());
        reply.extend_from_slice(&(-1i16).to_be_bytes()); // null rack
        let brokers = parse_metadata(&reply, 8).unwrap();
        assert_eq!(
            brokers,
            vec![Broker {
                node_id: 1,
                host: "kafka".into(),
                port: 29092
            }]
        );
        assert!(parse_metadata(&reply[..6], 8).is_err());
    }

    #[test]
    fn request_shape_follows_version() {
        assert_eq!(metadata_request(0), vec![0, 0, 0, 0]);
        assert_eq!(metadata_request(8), vec![255, 255, 255, 255, 0, 0, 0]);
    }
}
