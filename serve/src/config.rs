//! The config file of `leadtime serve` (YAML or JSON): Prometheus, metadata defaults, behavior.

use crate::auth::{Auth, Tls};
use crate::metadata::duration;
use crate::scaler::Settings;
use leadtime::Behavior;
use leadtime_prometheus::access::Access;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long a TLS handshake may take unless `tls.handshakeTimeout` says otherwise: a client that
/// connects and says nothing holds a connection slot only that long.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A config file that does not load; names the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// What is wrong, with the field.
    pub message: String,
}

/// The whole configuration, defaults filled in.
#[derive(Debug, Clone)]
pub struct Config {
    /// Prometheus base URL.
    pub prometheus: Option<String>,
    /// How to reach it: TLS, credentials, headers.
    pub prometheus_access: Access,
    /// Timeout of each Prometheus call.
    pub timeout: Duration,
    /// How often `StreamIsActive` re-checks.
    pub stream_interval: Duration,
    /// Shared scaler settings.
    pub settings: Settings,
    /// Who may call the gRPC port (`tls`); the server refuses to start until it is chosen.
    pub auth: Auth,
    /// `logFormat`: `text` or `json` (checked here, applied by the command line).
    pub log_format: Option<String>,
    /// How policies compile: in this program run as a worker child, capped by `limits.compiles`
    /// and `limits.compileMemoryBytes` (the command line sets its own executable); unset, on a
    /// thread of the scaler, which no cap can stop.
    pub compile_worker: Option<leadtime::CompileWorker>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            prometheus: None,
            prometheus_access: Access::default(),
            timeout: Duration::from_secs(2),
            stream_interval: Duration::from_secs(10),
            settings: Settings::default(),
            auth: Auth::Unset,
            log_format: None,
            compile_worker: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    #[serde(default)]
    prometheus: PrometheusFile,
    stream_interval: Option<String>,
    idle_after: Option<String>,
    log_interval: Option<String>,
    #[serde(default)]
    breaker: BreakerFile,
    #[serde(default)]
    defaults: BTreeMap<String, serde_norway::Value>,
    behavior: Option<serde_norway::Value>,
    schedule: Option<leadtime_schedule::Schedule>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    queries: QueriesFile,
    policy_dir: Option<String>,
    tls: Option<TlsFile>,
    log_format: Option<String>,
}

/// `tls`: mutual TLS on the gRPC port. Plain gRPC is only the `--insecure` flag, never a file's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TlsFile {
    cert_file: String,
    key_file: String,
    client_ca_file: String,
    allowed_clients: Vec<String>,
    handshake_timeout: Option<String>,
}

/// `limits`: every cap of [`crate::quota::Quotas`], by its name there in camelCase.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LimitsFile {
    workloads: Option<usize>,
    workloads_per_namespace: Option<usize>,
    policies: Option<usize>,
    policies_per_namespace: Option<usize>,
    metadata_keys: Option<usize>,
    key_bytes: Option<usize>,
    value_bytes: Option<usize>,
    metadata_bytes: Option<usize>,
    params: Option<usize>,
    message_bytes: Option<usize>,
    connections: Option<usize>,
    connections_per_ip: Option<usize>,
    streams_per_connection: Option<u32>,
    streams: Option<usize>,
    connection_age: Option<String>,
    prometheus_concurrency: Option<usize>,
    prometheus_concurrency_per_namespace: Option<usize>,
    prometheus_body_bytes: Option<usize>,
    prometheus_series: Option<usize>,
    cache_entries: Option<usize>,
    compiles: Option<usize>,
    compile_memory_bytes: Option<usize>,
    compile_time: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct QueriesFile {
    /// `""` turns tenant isolation off.
    namespace_label: Option<String>,
    max_range: Option<String>,
    max_steps: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrometheusFile {
    url: Option<String>,
    timeout: Option<String>,
    cache_ttl: Option<String>,
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    bearer_token_file: Option<String>,
    basic_auth: Option<BasicAuthFile>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// `prometheus.basicAuth`: the password only from a file, never written in the config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BasicAuthFile {
    username: String,
    password_file: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BreakerFile {
    failures: Option<u32>,
    open_for: Option<String>,
}

impl Config {
    /// Reads a config file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Config::parse(&text).map_err(|message| ConfigError {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses config text (YAML, or JSON which is YAML too).
    pub fn parse(text: &str) -> Result<Config, String> {
        let file: File = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        let mut config = Config::default();
        let dur = |field: &str, v: &Option<String>, default: Duration| {
            v.as_deref()
                .map(|s| duration(field, s).map_err(|e| e.message.clone()))
                .transpose()
                .map(|d| d.unwrap_or(default))
                .map_err(|m| format!("`{field}`: {m}"))
        };
        let p = &file.prometheus;
        config.prometheus_access = Access {
            ca_file: p.ca_file.clone().map(Into::into),
            client_cert: match (&p.cert_file, &p.key_file) {
                (Some(cert), Some(key)) => Some((cert.into(), key.into())),
                (None, None) => None,
                _ => {
                    return Err("`prometheus.certFile` and `prometheus.keyFile` go together".into())
                }
            },
            bearer_token_file: p.bearer_token_file.clone().map(Into::into),
            basic_auth: p
                .basic_auth
                .as_ref()
                .map(|b| (b.username.clone(), b.password_file.clone().into())),
            headers: p.headers.clone().into_iter().collect(),
        };
        config.prometheus = file.prometheus.url;
        config.log_format = match file.log_format.as_deref() {
            None | Some("text") | Some("json") => file.log_format.clone(),
            Some(other) => return Err(format!("`logFormat`: `{other}` is not text or json")),
        };
        config.timeout = dur(
            "prometheus.timeout",
            &file.prometheus.timeout,
            config.timeout,
        )?;
        let settings = &mut config.settings;
        settings.cache_ttl = dur(
            "prometheus.cacheTtl",
            &file.prometheus.cache_ttl,
            settings.cache_ttl,
        )?;
        settings.idle_after = dur("idleAfter", &file.idle_after, settings.idle_after)?;
        settings.log_interval = dur("logInterval", &file.log_interval, settings.log_interval)?;
        config.stream_interval = dur(
            "streamInterval",
            &file.stream_interval,
            config.stream_interval,
        )?;
        if let Some(n) = file.breaker.failures {
            if n == 0 {
                return Err("`breaker.failures` must be at least 1".into());
            }
            config.settings.breaker_failures = n;
        }
        config.settings.breaker_open_for = dur(
            "breaker.openFor",
            &file.breaker.open_for,
            config.settings.breaker_open_for,
        )?;
        for (key, value) in file.defaults {
            let text = match value {
                serde_norway::Value::String(s) => s,
                serde_norway::Value::Number(n) => n.to_string(),
                serde_norway::Value::Bool(b) => b.to_string(),
                _ => return Err(format!("`defaults.{key}` must be a string, number or bool")),
            };
            config.settings.defaults.insert(key, text);
        }
        let q = &mut config.settings.quotas;
        let l = &file.limits;
        let caps: [(&str, Option<usize>, &mut usize); 20] = [
            ("workloads", l.workloads, &mut q.workloads),
            (
                "workloadsPerNamespace",
                l.workloads_per_namespace,
                &mut q.workloads_per_namespace,
            ),
            ("policies", l.policies, &mut q.policies),
            (
                "policiesPerNamespace",
                l.policies_per_namespace,
                &mut q.policies_per_namespace,
            ),
            ("metadataKeys", l.metadata_keys, &mut q.metadata_keys),
            ("keyBytes", l.key_bytes, &mut q.key_bytes),
            ("valueBytes", l.value_bytes, &mut q.value_bytes),
            ("metadataBytes", l.metadata_bytes, &mut q.metadata_bytes),
            ("params", l.params, &mut q.params),
            ("messageBytes", l.message_bytes, &mut q.message_bytes),
            ("connections", l.connections, &mut q.connections),
            (
                "connectionsPerIp",
                l.connections_per_ip,
                &mut q.connections_per_ip,
            ),
            ("streams", l.streams, &mut q.streams),
            (
                "prometheusConcurrency",
                l.prometheus_concurrency,
                &mut q.prometheus_concurrency,
            ),
            (
                "prometheusConcurrencyPerNamespace",
                l.prometheus_concurrency_per_namespace,
                &mut q.prometheus_concurrency_per_namespace,
            ),
            (
                "prometheusBodyBytes",
                l.prometheus_body_bytes,
                &mut q.prometheus_body_bytes,
            ),
            (
                "prometheusSeries",
                l.prometheus_series,
                &mut q.prometheus_series,
            ),
            ("cacheEntries", l.cache_entries, &mut q.cache_entries),
            ("compiles", l.compiles, &mut q.compiles),
            (
                "compileMemoryBytes",
                l.compile_memory_bytes,
                &mut q.compile_memory_bytes,
            ),
        ];
        for (name, value, slot) in caps {
            if let Some(v) = value {
                if v == 0 {
                    return Err(format!("`limits.{name}` must be at least 1"));
                }
                *slot = v;
            }
        }
        if let Some(v) = l.streams_per_connection {
            if v == 0 {
                return Err("`limits.streamsPerConnection` must be at least 1".into());
            }
            q.streams_per_connection = v;
        }
        q.connection_age = dur("limits.connectionAge", &l.connection_age, q.connection_age)?;
        q.compile_time = dur("limits.compileTime", &l.compile_time, q.compile_time)?;
        let rules = &mut config.settings.queries;
        if let Some(label) = file.queries.namespace_label {
            rules.namespace_label = (!label.is_empty()).then_some(label);
        }
        rules.max_range = dur("queries.maxRange", &file.queries.max_range, rules.max_range)?;
        if let Some(steps) = file.queries.max_steps {
            rules.max_steps = steps;
        }
        config.settings.policy_dir = file.policy_dir.map(Into::into);
        if let Some(tls) = file.tls {
            if tls.allowed_clients.is_empty() {
                return Err("`tls.allowedClients` is empty: name the clients that may call".into());
            }
            config.auth = Auth::MutualTls(Tls {
                cert: tls.cert_file.into(),
                key: tls.key_file.into(),
                client_ca: tls.client_ca_file.into(),
                allowed_clients: tls.allowed_clients,
                handshake_timeout: dur(
                    "tls.handshakeTimeout",
                    &tls.handshake_timeout,
                    DEFAULT_HANDSHAKE_TIMEOUT,
                )?,
            });
        }
        if let Some(behavior) = file.behavior {
            let text = serde_norway::to_string(&behavior).map_err(|e| e.to_string())?;
            let behavior = Behavior::parse(&text).map_err(|e| format!("`behavior`: {e}"))?;
            behavior
                .validate()
                .map_err(|e| format!("`behavior`: {e}"))?;
            config.settings.behavior = behavior;
        }
        config.settings.schedule = file.schedule;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_access_reads_files_and_headers_and_refuses_inline_secrets() {
        let config = Config::parse(
            "prometheus:\n  url: https://mimir:8080/prometheus\n  caFile: /etc/ca.pem\n\
             \x20 certFile: /etc/tls.crt\n  keyFile: /etc/tls.key\n\
             \x20 bearerTokenFile: /var/run/token\n  headers:\n    X-Scope-OrgID: team-a\n",
        )
        .unwrap();
        let a = &config.prometheus_access;
        assert_eq!(a.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(
            a.client_cert,
            Some(("/etc/tls.crt".into(), "/etc/tls.key".into()))
        );
        assert_eq!(
            a.bearer_token_file.as_deref(),
            Some(Path::new("/var/run/token"))
        );
        assert_eq!(a.headers, vec![("X-Scope-OrgID".into(), "team-a".into())]);
        let basic = Config::parse(
            "prometheus:\n  basicAuth:\n    username: leadtime\n    passwordFile: /etc/pw\n",
        )
        .unwrap();
        assert_eq!(
            basic.prometheus_access.basic_auth,
            Some(("leadtime".into(), "/etc/pw".into()))
        );
        for (text, says) in [
            (
                "prometheus:\n  basicAuth:\n    username: u\n    password: hunter2\n",
                "unknown field `password`",
            ),
            (
                "prometheus:\n  certFile: /c\n",
                "certFile` and `prometheus.keyFile",
            ),
            (
                "prometheus:\n  bearerToken: abc\n",
                "unknown field `bearerToken`",
            ),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
            assert!(!e.contains("hunter2") && !e.contains("abc`"), "{e}");
        }
    }

    #[test]
    fn parses_every_section() {
        let config = Config::parse(
            "prometheus:\n  url: http://p:9090\n  timeout: 500ms\n  cacheTtl: 2s\n\
             streamInterval: 3s\nidleAfter: 1h\nlogInterval: 5m\nbreaker:\n  failures: 5\n  openFor: 1m\n\
             defaults:\n  policy: hpa\n  minReplicas: 2\n\
             behavior:\n  scaleDown:\n    stabilizationWindowSeconds: 60\n",
        )
        .unwrap();
        assert_eq!(config.prometheus.as_deref(), Some("http://p:9090"));
        assert_eq!(config.timeout, Duration::from_millis(500));
        assert_eq!(config.settings.cache_ttl, Duration::from_secs(2));
        assert_eq!(config.settings.idle_after, Duration::from_secs(3600));
        assert_eq!(config.settings.log_interval, Duration::from_secs(300));
        assert_eq!(config.stream_interval, Duration::from_secs(3));
        assert_eq!(config.settings.breaker_failures, 5);
        assert_eq!(config.settings.breaker_open_for, Duration::from_secs(60));
        assert_eq!(config.settings.defaults["minReplicas"], "2");
        let limited = Config::parse(
            "limits:\n  workloads: 7\n  streamsPerConnection: 3\n  connectionAge: 5m\n\
             queries:\n  namespaceLabel: \"\"\n  maxRange: 2h\npolicyDir: /policies\n",
        )
        .unwrap()
        .settings;
        assert_eq!(limited.quotas.workloads, 7);
        assert_eq!(limited.quotas.streams_per_connection, 3);
        assert_eq!(limited.quotas.connection_age, Duration::from_secs(300));
        assert_eq!(limited.queries.namespace_label, None);
        assert_eq!(limited.queries.max_range, Duration::from_secs(7200));
        assert_eq!(limited.policy_dir, Some("/policies".into()));
        assert!(matches!(config.auth, Auth::Unset));
        let tls = Config::parse(
            "tls:\n  certFile: /tls/tls.crt\n  keyFile: /tls/tls.key\n  clientCaFile: /tls/ca.crt\n\
             \x20 allowedClients: [keda-operator]\n",
        )
        .unwrap();
        match tls.auth {
            Auth::MutualTls(t) => {
                assert_eq!(t.allowed_clients, ["keda-operator"]);
                assert_eq!(t.client_ca, std::path::Path::new("/tls/ca.crt"));
                assert_eq!(t.handshake_timeout, DEFAULT_HANDSHAKE_TIMEOUT);
            }
            other => panic!("tls: {other:?}"),
        }
        assert_eq!(
            config.settings.behavior,
            Behavior::parse("scaleDown:\n  stabilizationWindowSeconds: 60\n").unwrap()
        );
        assert!(config.settings.schedule.is_none());
        let scheduled = Config::parse(
            "schedule:\n  timezone: Asia/Shanghai\n  windows:\n    - name: business-hours\n\
             \x20     cron: \"* 9-17 * * 1-5\"\n      min: 10\n",
        )
        .unwrap();
        let schedule = scheduled.settings.schedule.expect("a schedule");
        assert_eq!(schedule.windows[0].min, Some(10));
        assert_eq!(
            schedule.windows[0].to_string(),
            "window `business-hours` (* 9-17 * * 1-5 Asia/Shanghai)"
        );
    }

    #[test]
    fn the_shipped_config_map_parses_with_the_secure_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/scaler.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let doc = text.split("\n---\n").next().unwrap();
        let map: serde_norway::Value = serde_norway::from_str(doc).unwrap();
        let config = Config::parse(map["data"]["config.yaml"].as_str().unwrap()).unwrap();
        let s = &config.settings;
        assert_eq!(s.queries.namespace_label.as_deref(), Some("namespace"));
        assert_eq!(s.quotas.workloads, 500);
        assert_eq!(s.policy_dir, None);
        assert!(
            matches!(config.auth, Auth::MutualTls(_)),
            "{:?}",
            config.auth
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("prometheus:\n  timeout: soon\n", "prometheus.timeout"),
            ("breaker:\n  failures: 0\n", "breaker.failures"),
            ("idleAfter: never\n", "idleAfter"),
            ("defaults:\n  query: [a]\n", "defaults.query"),
            ("promethus: {}\n", "promethus"),
            ("limits:\n  workloads: 0\n", "limits.workloads"),
            ("limits:\n  workload: 5\n", "workload"),
            ("limits:\n  connectionAge: -1\n", "limits.connectionAge"),
            ("queries:\n  maxRange: forever\n", "queries.maxRange"),
            ("tls:\n  certFile: a\n", "keyFile"),
            (
                "tls:\n  certFile: a\n  keyFile: b\n  clientCaFile: c\n  allowedClients: []\n",
                "tls.allowedClients",
            ),
            ("tls:\n  insecure: true\n", "insecure"),
            (
                "behavior:\n  scaleUp:\n    selectPolicy: Most\n",
                "behavior",
            ),
            (
                "idleAfter: 1h\nschedule:\n  windows:\n    - name: a\n      cron: \"* 25 * * *\"\n      min: 1\n",
                "schedule.windows[0]",
            ),
            (
                "schedule:\n  windows:\n    - name: a\n      cron: \"* * * * *\"\n      mni: 1\n",
                "line 5",
            ),
        ];
        for (text, field) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(field), "{text:?}: {err}");
        }
    }
}
