//! What a container should look like, declared once, and the labels that mark
//! everything findemo creates.

use std::collections::BTreeMap;

/// Label carrying the stack name; `reset` sweeps by it.
pub const STACK_LABEL: &str = "io.findemo.stack";
/// Label carrying the service name of a container.
pub const SERVICE_LABEL: &str = "io.findemo.service";
/// Label carrying the fingerprint of the spec a container was created from, so that a
/// changed config is noticed and the container recreated (its volume keeps the data).
pub const FINGERPRINT_LABEL: &str = "io.findemo.spec";

#[derive(Debug, Clone, PartialEq)]
pub struct Labels(pub BTreeMap<String, String>);

impl Labels {
    pub fn stack(stack: &str) -> Labels {
        Labels(BTreeMap::from([(
            STACK_LABEL.to_string(),
            stack.to_string(),
        )]))
    }

    pub fn service(stack: &str, service: &str) -> Labels {
        let mut labels = Labels::stack(stack);
        labels
            .0
            .insert(SERVICE_LABEL.to_string(), service.to_string());
        labels
    }
}

/// A container of the stack, as findemo wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub container: String,
    /// Name other containers reach it by on the network.
    pub alias: String,
    pub network: String,
    pub image: String,
    /// `KEY=value` pairs, sorted.
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    /// (host port on 127.0.0.1, container port).
    pub ports: Vec<(u16, u16)>,
    /// (named volume, mount path).
    pub volumes: Vec<(String, String)>,
    pub memory: Option<i64>,
    pub shm_size: Option<i64>,
    /// Open-files limit (soft = hard).
    pub nofile: Option<i64>,
    /// Files written into the container before it first starts: (absolute path, text).
    pub files: Vec<(String, String)>,
    pub labels: Labels,
}

impl ServiceSpec {
    /// A stable digest (64-bit FNV-1a) of everything that shapes the container.
    pub fn fingerprint(&self) -> String {
        use std::hash::Hasher;
        let mut hash = fnv::FnvHasher::default();
        hash.write(
            format!(
                "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}",
                self.image,
                self.env,
                self.cmd,
                self.ports,
                self.volumes,
                self.memory,
                self.shm_size,
                self.nofile,
                self.files,
                self.network,
                self.alias
            )
            .as_bytes(),
        );
        format!("{:016x}", hash.finish())
    }
}

/// A tar archive holding `files` (paths of any length), for the Docker archive API.
pub fn tar(files: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        archive.append_data(&mut header, path.trim_start_matches('/'), text.as_bytes())?;
    }
    archive.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceSpec {
        ServiceSpec {
            container: "s-postgres".into(),
            alias: "postgres".into(),
            network: "s-net".into(),
            image: "img:1".into(),
            env: vec!["A=1".into()],
            cmd: None,
            ports: vec![(5432, 5432)],
            volumes: vec![],
            memory: None,
            shm_size: None,
            nofile: None,
            files: vec![],
            labels: Labels::service("s", "postgres"),
        }
    }

    #[test]
    fn fingerprint_follows_the_shape_only() {
        let a = spec();
        assert_eq!(a.fingerprint(), spec().fingerprint());
        let mut b = spec();
        b.env.push("B=2".into());
        assert_ne!(a.fingerprint(), b.fingerprint());
        let mut c = spec();
        c.labels = Labels::service("s", "renamed");
        assert_eq!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn tar_holds_each_file_whole_even_with_a_long_path() {
        let long = format!("/etc/{}/x.xml", "d".repeat(120));
        let files = vec![
            ("/etc/x.xml".to_string(), "hello".to_string()),
            (long.clone(), "world".to_string()),
        ];
        let bytes = tar(&files).expect("an archive");
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut read = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("an entry");
            let path = entry.path().expect("a path").to_string_lossy().into_owned();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).expect("its text");
            read.push((format!("/{path}"), text));
        }
        assert_eq!(read, files);
    }
}
