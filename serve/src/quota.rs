//! What one call, one tenant and all callers together may cost the scaler: the caps, and the
//! checks of a call's identity and size that come before any state is made for it.
//!
//! Any pod that reaches the gRPC port can call it, so nothing a call names is trusted until it
//! passes these checks: a namespace and name are Kubernetes names, metadata is small, and new
//! workloads stop at a cap per namespace and in total while existing ones keep working.

use std::collections::HashMap;
use std::time::Duration;

/// The caps, each a named setting of the config file's `limits` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Quotas {
    /// Workload triggers held in total. Each holds its history (80 KiB at the defaults) and a
    /// policy instance (about 1.5 MiB): 500 fit the shipped Deployment's 1 GiB.
    pub workloads: usize,
    /// Workload triggers held per namespace, so one tenant cannot take every slot.
    pub workloads_per_namespace: usize,
    /// Distinct policies (a policy with its params) loaded at once, in total. Each keeps its own
    /// instances (up to the engine's `idle_instances`, 4, each at most its memory limit):
    /// workloads with the same policy and params share them.
    pub policies: usize,
    /// Distinct policies loaded at once for one namespace, so that params unique to each
    /// workload cost their tenant, not the scaler's memory.
    pub policies_per_namespace: usize,
    /// Keys in one trigger's metadata (KEDA's own and `param.*` included).
    pub metadata_keys: usize,
    /// Bytes of one metadata key.
    pub key_bytes: usize,
    /// Bytes of one metadata value (a `behavior` block is the longest in practice).
    pub value_bytes: usize,
    /// Bytes of one trigger's whole metadata, keys and values.
    pub metadata_bytes: usize,
    /// `param.*` keys of one trigger.
    pub params: usize,
    /// Bytes of one gRPC message: the transport refuses a larger one before decoding it.
    pub message_bytes: usize,
    /// gRPC connections open at once, from everyone.
    pub connections: usize,
    /// gRPC connections open at once from one IP address.
    pub connections_per_ip: usize,
    /// Concurrent gRPC streams (calls) on one connection.
    pub streams_per_connection: u32,
    /// `StreamIsActive` streams open at once, from everyone.
    pub streams: usize,
    /// A gRPC connection is closed (gracefully) after this long, idle or not, so a held
    /// connection frees its slot; KEDA reconnects at once.
    pub connection_age: Duration,
    /// Queries to Prometheus in flight at once: also the most connections to it.
    pub prometheus_concurrency: usize,
    /// Queries to Prometheus in flight at once for one namespace's workloads.
    pub prometheus_concurrency_per_namespace: usize,
    /// Bytes of one Prometheus answer.
    pub prometheus_body_bytes: usize,
    /// Series in one Prometheus answer.
    pub prometheus_series: usize,
    /// Answers held in the instant-query cache.
    pub cache_entries: usize,
    /// Policy modules compiling at once (each in a worker process of its own).
    pub compiles: usize,
    /// Memory of one compile's worker process; a module that needs more is refused.
    pub compile_memory_bytes: usize,
    /// Longest one policy module may take to compile (its worker is killed then).
    pub compile_time: Duration,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            workloads: 500,
            workloads_per_namespace: 100,
            policies: 32,
            policies_per_namespace: 8,
            metadata_keys: 64,
            key_bytes: 128,
            value_bytes: 8 * 1024,
            metadata_bytes: 32 * 1024,
            params: 32,
            message_bytes: 64 * 1024,
            connections: 256,
            connections_per_ip: 32,
            streams_per_connection: 100,
            streams: 1000,
            connection_age: Duration::from_secs(30 * 60),
            prometheus_concurrency: 8,
            prometheus_concurrency_per_namespace: 2,
            // A range chunk is at most `queries.maxSteps` points (~300 KiB as JSON); every
            // call in flight may hold this much.
            prometheus_body_bytes: 8 << 20,
            prometheus_series: 10_000,
            cache_entries: 4096,
            compiles: 2,
            // The built-in predictive policy compiles in 47 MB (peak RSS); an 85 KB module crafted to
            // blow up the compiler took 1.9 GB before it was capped.
            compile_memory_bytes: 256 << 20,
            compile_time: leadtime::Limits::default().get_compile_time(),
        }
    }
}

/// A call over a cap; becomes gRPC RESOURCE_EXHAUSTED naming the cap.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("over the scaler's `limits.{cap}` ({limit}): {detail}")]
pub struct QuotaError {
    /// The config key of the cap.
    pub cap: &'static str,
    /// Its value.
    pub limit: usize,
    /// What went over it.
    pub detail: String,
}

/// A namespace or name that is not a Kubernetes name; becomes gRPC INVALID_ARGUMENT.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("scaledObjectRef `{field}`: {message}")]
pub struct NameError {
    /// `namespace` or `name`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Checks that `namespace` is a DNS-1123 label and `name` a DNS-1123 subdomain, as the
/// Kubernetes API requires of every namespace and ScaledObject: then they are safe as metric
/// labels, log fields and map keys.
pub fn check_names(namespace: &str, name: &str) -> Result<(), NameError> {
    dns1123_label(namespace).map_err(|message| NameError {
        field: "namespace",
        message,
    })?;
    dns1123_subdomain(name).map_err(|message| NameError {
        field: "name",
        message,
    })
}

/// Checks a trigger's metadata against the size caps.
pub fn check_metadata(q: &Quotas, metadata: &HashMap<String, String>) -> Result<(), QuotaError> {
    let over = |cap, limit, detail: String| Err(QuotaError { cap, limit, detail });
    if metadata.len() > q.metadata_keys {
        return over(
            "metadataKeys",
            q.metadata_keys,
            format!("{} keys", metadata.len()),
        );
    }
    let mut total = 0;
    let mut params = 0;
    for (key, value) in metadata {
        if key.len() > q.key_bytes {
            return over(
                "keyBytes",
                q.key_bytes,
                format!("a key of {} bytes", key.len()),
            );
        }
        if value.len() > q.value_bytes {
            // The key is short and checked, so it can be named.
            return over(
                "valueBytes",
                q.value_bytes,
                format!("`{key}` is {} bytes", value.len()),
            );
        }
        total += key.len() + value.len();
        params += usize::from(key.starts_with("param."));
    }
    if total > q.metadata_bytes {
        return over(
            "metadataBytes",
            q.metadata_bytes,
            format!("{total} bytes of metadata"),
        );
    }
    if params > q.params {
        return over("params", q.params, format!("{params} param.* keys"));
    }
    Ok(())
}

/// A DNS-1123 label: at most 63 of `a-z`, `0-9` and `-`, starting and ending alphanumeric.
fn dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.len() > 63 {
        return Err(format!("is {} bytes, over 63", s.len()));
    }
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-';
    let b = s.as_bytes();
    if !b.iter().all(|&c| ok(c)) || b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Err(format!(
            "{} is not a DNS-1123 label (a-z, 0-9 and `-`, alphanumeric at both ends)",
            shown(s)
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 bytes of DNS-1123 labels joined by `.`.
fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.len() > 253 {
        return Err(format!("is {} bytes, over 253", s.len()));
    }
    for part in s.split('.') {
        dns1123_label(part).map_err(|_| {
            format!(
                "{} is not a DNS-1123 subdomain (labels of a-z, 0-9 and `-` joined by `.`)",
                shown(s)
            )
        })?;
    }
    Ok(())
}

/// A caller's text for an error message: quoted with control characters escaped, and cut.
pub fn shown(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    let more = if cut.len() < s.len() { "..." } else { "" };
    format!("{cut:?}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_names_table() {
        let cases = [
            ("team-a", "api", true),
            ("a", "web.v2", true),
            ("ns", "a-b-0.c-9", true),
            ("", "api", false),
            ("Team", "api", false),
            ("-ns", "api", false),
            ("ns-", "api", false),
            ("ns", "", false),
            ("ns", "api\nleadtime_desired_replicas 999", false),
            ("ns", "a..b", false),
            ("ns", "a_b", false),
            ("ns", "api\"", false),
            ("ns", "ok.", false),
        ];
        for (ns, name, ok) in cases {
            assert_eq!(check_names(ns, name).is_ok(), ok, "{ns:?}/{name:?}");
        }
        assert!(check_names(&"a".repeat(64), "x").is_err());
        assert!(check_names(&"a".repeat(63), "x").is_ok());
        assert!(check_names("x", &vec!["a".repeat(63); 3].join(".")).is_ok());
        assert!(check_names("x", &vec!["a".repeat(63); 4].join(".")).is_err());
    }

    #[test]
    fn metadata_caps_name_the_cap() {
        let q = Quotas::default();
        let meta = |pairs: Vec<(String, String)>| pairs.into_iter().collect::<HashMap<_, _>>();
        let ok = meta(vec![("query".into(), "sum(x)".into())]);
        assert_eq!(check_metadata(&q, &ok), Ok(()));
        let cases = [
            (
                meta((0..65).map(|i| (format!("k{i}"), String::new())).collect()),
                "metadataKeys",
            ),
            (meta(vec![("k".repeat(129), String::new())]), "keyBytes"),
            (meta(vec![("query".into(), "x".repeat(9000))]), "valueBytes"),
            (
                meta(
                    (0..5)
                        .map(|i| (format!("v{i}"), "x".repeat(8000)))
                        .collect(),
                ),
                "metadataBytes",
            ),
            (
                meta(
                    (0..33)
                        .map(|i| (format!("param.p{i}"), "1".into()))
                        .collect(),
                ),
                "params",
            ),
        ];
        for (metadata, cap) in cases {
            let err = check_metadata(&q, &metadata).unwrap_err();
            assert_eq!(err.cap, cap);
            assert!(err.to_string().contains(&format!("limits.{cap}")), "{err}");
        }
    }
}
