//! The config file of `leadtime serve` (YAML or JSON): Prometheus, metadata defaults, behavior.

use crate::metadata::duration;
use crate::scaler::Settings;
use leadtime::Behavior;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

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
    /// Timeout of each Prometheus call.
    pub timeout: Duration,
    /// How often `StreamIsActive` re-checks.
    pub stream_interval: Duration,
    /// Shared scaler settings.
    pub settings: Settings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            prometheus: None,
            timeout: Duration::from_secs(2),
            stream_interval: Duration::from_secs(10),
            settings: Settings::default(),
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
    #[serde(default)]
    breaker: BreakerFile,
    #[serde(default)]
    defaults: BTreeMap<String, serde_norway::Value>,
    behavior: Option<serde_norway::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrometheusFile {
    url: Option<String>,
    timeout: Option<String>,
    cache_ttl: Option<String>,
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
        config.prometheus = file.prometheus.url;
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
        if let Some(behavior) = file.behavior {
            let text = serde_norway::to_string(&behavior).map_err(|e| e.to_string())?;
            let behavior = Behavior::parse(&text).map_err(|e| format!("`behavior`: {e}"))?;
            behavior
                .validate()
                .map_err(|e| format!("`behavior`: {e}"))?;
            config.settings.behavior = behavior;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_section() {
        let config = Config::parse(
            "prometheus:\n  url: http://p:9090\n  timeout: 500ms\n  cacheTtl: 2s\n\
             streamInterval: 3s\nidleAfter: 1h\nbreaker:\n  failures: 5\n  openFor: 1m\n\
             defaults:\n  policy: hpa\n  minReplicas: 2\n\
             behavior:\n  scaleDown:\n    stabilizationWindowSeconds: 60\n",
        )
        .unwrap();
        assert_eq!(config.prometheus.as_deref(), Some("http://p:9090"));
        assert_eq!(config.timeout, Duration::from_millis(500));
        assert_eq!(config.settings.cache_ttl, Duration::from_secs(2));
        assert_eq!(config.settings.idle_after, Duration::from_secs(3600));
        assert_eq!(config.stream_interval, Duration::from_secs(3));
        assert_eq!(config.settings.breaker_failures, 5);
        assert_eq!(config.settings.breaker_open_for, Duration::from_secs(60));
        assert_eq!(config.settings.defaults["minReplicas"], "2");
        assert_eq!(
            config.settings.behavior,
            Behavior::parse("scaleDown:\n  stabilizationWindowSeconds: 60\n").unwrap()
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
            (
                "behavior:\n  scaleUp:\n    selectPolicy: Most\n",
                "behavior",
            ),
        ];
        for (text, field) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(field), "{text:?}: {err}");
        }
    }
}
