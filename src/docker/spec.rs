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
    /// A stable digest of everything that shapes the container.
    pub fn fingerprint(&self) -> String {
        crate::migrate::fnv1a(&format!(
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
        ))
    }
}

/// A tar archive (ustar) holding `files`, for the Docker archive API.
pub fn tar(files: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, text) in files {
        let name = path.trim_start_matches('/');
        let mut header = [0u8; 512];
        header[..name.len().min(100)].copy_from_slice(&name.as_bytes()[..name.len().min(100)]);
        let octal = |field: &mut [u8], value: u64| {
            let text = format!("{value:0width$o}\0", width = field.len() - 1);
            field.copy_from_slice(text.as_bytes());
        };
        octal(&mut header[100..108], 0o644);
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], text.len() as u64);
        octal(&mut header[136..148], 0);
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field as spaces.
        header[148..156].copy_from_slice(b"        ");
        let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
        let text_sum = format!("{sum:06o}\0 ");
        header[148..156].copy_from_slice(text_sum.as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(text.as_bytes());
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
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
    fn tar_has_header_content_and_trailer() {
        let archive = tar(&[("/etc/x.xml".into(), "hello".into())]);
        assert_eq!(archive.len(), 512 + 512 + 1024);
        assert_eq!(&archive[..9], b"etc/x.xml");
        assert_eq!(&archive[124..135], b"00000000005");
        assert_eq!(&archive[512..517], b"hello");
        let sum: u64 = archive[..512]
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        let field = std::str::from_utf8(&archive[148..154]).unwrap();
        assert_eq!(u64::from_str_radix(field, 8).unwrap(), sum);
    }
}
