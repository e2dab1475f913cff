//! Per-stack state kept on the user's machine: the credentials generated at the first
//! `up`. The file is readable by its owner only (0600, in a 0700 directory), because no
//! service gets a well-known password.

use std::path::{Path, PathBuf};

use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({source}); remove it with `findemo reset`")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Secrets of one stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Credentials {
    pub postgres_user: String,
    pub postgres_password: String,
    pub clickhouse_user: String,
    pub clickhouse_password: String,
    /// KRaft cluster id: 16 random bytes, base64url without padding (22 characters).
    pub kafka_cluster_id: String,
}

impl Credentials {
    pub fn generate() -> Credentials {
        let mut rng = rand::rng();
        let mut id = [0u8; 16];
        // Like Kafka's own Uuid.randomUuid: never start with '-', which command lines
        // would read as an option.
        while {
            rng.fill_bytes(&mut id);
            base64url(&id).starts_with('-')
        } {}
        Credentials {
            postgres_user: "findemo".into(),
            postgres_password: Alphanumeric.sample_string(&mut rng, 24),
            clickhouse_user: "findemo".into(),
            clickhouse_password: Alphanumeric.sample_string(&mut rng, 24),
            kafka_cluster_id: base64url(&id),
        }
    }
}

/// Where a stack's credentials live.
pub fn credentials_path(state_dir: &Path, stack: &str) -> PathBuf {
    state_dir.join(format!("{stack}.credentials.json"))
}

/// Reads the stack's credentials, if any were generated.
pub fn load(path: &Path) -> Result<Option<Credentials>, StateError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StateError::Corrupt {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads the stack's credentials, generating and saving them on first use.
pub fn load_or_create(path: &Path) -> Result<Credentials, StateError> {
    if let Some(creds) = load(path)? {
        return Ok(creds);
    }
    let creds = Credentials::generate();
    save(path, &creds)?;
    Ok(creds)
}

fn save(path: &Path, creds: &Credentials) -> Result<(), StateError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    let werr = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(werr)?;
    }
    let json = serde_json::to_vec_pretty(creds).expect("credentials serialize");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(werr)?;
    file.write_all(&json).map_err(werr)?;
    file.sync_all().map_err(werr)
}

/// Forgets the stack's credentials (after `reset` removed the data they protect).
pub fn remove(path: &Path) -> Result<(), StateError> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(StateError::Write {
            path: path.to_path_buf(),
            source: err,
        }),
        _ => Ok(()),
    }
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn cluster_id_is_22_base64url_chars() {
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        let id = Credentials::generate().kafka_cluster_id;
        assert_eq!(id.len(), 22);
        for _ in 0..500 {
            assert!(!Credentials::generate().kafka_cluster_id.starts_with('-'));
        }
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn credentials_are_private_stable_and_removable() {
        let dir = tempfile::tempdir().unwrap();
        let path = credentials_path(&dir.path().join("state"), "s1");
        let first = load_or_create(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap(), first);
        assert_ne!(
            first.postgres_password,
            Credentials::generate().postgres_password
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        remove(&path).unwrap();
        assert_eq!(load(&path).unwrap(), None);
        remove(&path).unwrap();
    }
}
