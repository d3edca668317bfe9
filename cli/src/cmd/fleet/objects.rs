//! The workloads of a fleet file: KEDA ScaledObjects as `kubectl get scaledobjects -A -o yaml`
//! prints them (a `List`, one object, or several YAML documents), or a plain list of
//! `{name, query, targetPerPod, readySeconds, min, max}`. Triggers are read as the scaler reads
//! them: leadtime's external triggers with their metadata (`leadtime_serve::metadata::Spec`), and
//! KEDA's own `prometheus` triggers (query and threshold) as the reactive baseline the workload
//! runs today. Anything else is skipped, with why.

use leadtime::Params;
use leadtime_serve::metadata::Spec;
use serde_norway::Value;
use std::collections::{BTreeMap, HashMap};

/// One workload to backtest.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// `namespace/name`, or the list entry's name.
    pub name: String,
    /// PromQL of its load (one series).
    pub query: String,
    /// Load one pod carries.
    pub target_per_pod: f64,
    /// A fixed ready time, seconds.
    pub ready_seconds: Option<f64>,
    /// PromQL of its pods' ready times, one series per pod.
    pub ready_query: Option<String>,
    /// The policy leadtime runs (or would run) for it.
    pub policy: String,
    /// The policy's params.
    pub params: Params,
    /// Replica bounds.
    pub min: u32,
    /// Highest replicas, when given.
    pub max: Option<u32>,
    /// Where it comes from: `leadtime` (an external trigger of leadtime's), `prometheus` (KEDA's
    /// own trigger: the HPA at its threshold is what runs today) or `list`.
    pub source: &'static str,
}

/// A trigger or entry that is not backtested, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Skipped {
    /// The object (`namespace/name`) or entry.
    pub object: String,
    /// The trigger's type, or `entry`.
    pub trigger: String,
    /// Why.
    pub why: String,
}

/// The workloads of `text` (one file) and what was skipped; `defaults` stand under every
/// leadtime trigger's metadata, as the scaler's config `defaults` do. `Err` only when the file
/// is not YAML at all.
pub fn read(
    text: &str,
    source: &str,
    defaults: &BTreeMap<String, String>,
) -> Result<(Vec<Workload>, Vec<Skipped>), String> {
    let mut workloads = Vec::new();
    let mut skipped = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let value = <Value as serde::Deserialize>::deserialize(document)
            .map_err(|e| format!("{source}: {e}"))?;
        match &value {
            Value::Sequence(entries) => {
                for (i, entry) in entries.iter().enumerate() {
                    match entry_workload(entry) {
                        Ok(w) => workloads.push(w),
                        Err(why) => skipped.push(Skipped {
                            object: format!("{source} entry {}", i + 1),
                            trigger: "entry".into(),
                            why,
                        }),
                    }
                }
            }
            Value::Mapping(_) if value["kind"].as_str() == Some("List") => {
                for item in value["items"].as_sequence().into_iter().flatten() {
                    object(item, defaults, &mut workloads, &mut skipped);
                }
            }
            Value::Mapping(_) if value["kind"].as_str() == Some("ScaledObject") => {
                object(&value, defaults, &mut workloads, &mut skipped);
            }
            Value::Null => {}
            _ => skipped.push(Skipped {
                object: source.to_string(),
                trigger: "document".into(),
                why: format!(
                    "a document of kind {:?}: neither a ScaledObject, a List of them, nor a list \
                     of workloads",
                    value["kind"].as_str().unwrap_or("none")
                ),
            }),
        }
    }
    Ok((workloads, skipped))
}

/// The workloads of one ScaledObject: each leadtime trigger, else its `prometheus` triggers.
fn object(
    so: &Value,
    defaults: &BTreeMap<String, String>,
    workloads: &mut Vec<Workload>,
    skipped: &mut Vec<Skipped>,
) {
    let name = format!(
        "{}/{}",
        so["metadata"]["namespace"].as_str().unwrap_or("default"),
        so["metadata"]["name"].as_str().unwrap_or("?")
    );
    if so["kind"].as_str() != Some("ScaledObject") {
        skipped.push(Skipped {
            object: name,
            trigger: "object".into(),
            why: format!(
                "a {}, not a ScaledObject",
                so["kind"].as_str().unwrap_or("?")
            ),
        });
        return;
    }
    let spec = &so["spec"];
    let min = spec["minReplicaCount"].as_u64().unwrap_or(1) as u32;
    let max = spec["maxReplicaCount"].as_u64().map(|m| m as u32);
    let triggers = spec["triggers"].as_sequence().cloned().unwrap_or_default();
    let several = triggers.len() > 1;
    for (i, trigger) in triggers.iter().enumerate() {
        let kind = trigger["type"].as_str().unwrap_or("?").to_string();
        let label = if several {
            format!("{name}#{}", i + 1)
        } else {
            name.clone()
        };
        let metadata: HashMap<String, String> = trigger["metadata"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), scalar(v)?)))
            .collect();
        let skip = |why: String| Skipped {
            object: name.clone(),
            trigger: kind.clone(),
            why,
        };
        let workload = match kind.as_str() {
            "external" | "external-push" if metadata.contains_key("query") => {
                leadtime_trigger(&label, &metadata, defaults, min, max)
            }
            "external" | "external-push" => Err(
                "an external trigger without `query`: not one of leadtime's (docs: serve/README.md)"
                    .into(),
            ),
            "prometheus" => prometheus_trigger(&label, &metadata, defaults, min, max),
            other => Err(format!(
                "a `{other}` trigger: only leadtime's external triggers and KEDA's `prometheus` \
                 ones carry a load query to replay"
            )),
        };
        match workload {
            Ok(w) => workloads.push(w),
            Err(why) => skipped.push(skip(why)),
        }
    }
}

fn leadtime_trigger(
    name: &str,
    metadata: &HashMap<String, String>,
    defaults: &BTreeMap<String, String>,
    min: u32,
    max: Option<u32>,
) -> Result<Workload, String> {
    let spec = Spec::parse(metadata, defaults).map_err(|e| e.to_string())?;
    Ok(Workload {
        name: name.to_string(),
        query: spec.query,
        target_per_pod: spec.target_per_pod,
        ready_seconds: spec.ready_seconds,
        ready_query: spec.ready_time_query,
        policy: spec.policy,
        params: spec.params,
        min: if metadata.contains_key("minReplicas") {
            spec.min_replicas
        } else {
            min
        },
        max: if metadata.contains_key("maxReplicas") {
            Some(spec.max_replicas)
        } else {
            max
        },
        source: "leadtime",
    })
}

/// KEDA's `prometheus` trigger: `query` and `threshold` (the value per replica, as an
/// AverageValue target); the predictive policy of the defaults is what it is compared with.
fn prometheus_trigger(
    name: &str,
    metadata: &HashMap<String, String>,
    defaults: &BTreeMap<String, String>,
    min: u32,
    max: Option<u32>,
) -> Result<Workload, String> {
    let query = metadata
        .get("query")
        .filter(|q| !q.trim().is_empty())
        .ok_or("a `prometheus` trigger without `query`")?;
    let threshold: f64 = metadata
        .get("threshold")
        .ok_or("a `prometheus` trigger without `threshold`")?
        .trim()
        .parse()
        .map_err(|_| format!("`threshold` {:?} is not a number", metadata["threshold"]))?;
    if !(threshold.is_finite() && threshold > 0.0) {
        return Err(format!("`threshold` {threshold} is not above 0"));
    }
    // The trigger as leadtime's would carry it, read by the scaler's own parser with the
    // defaults under it (their policy, params and ready time).
    let as_leadtime: HashMap<String, String> = [
        ("query".to_string(), query.trim().to_string()),
        ("targetPerPod".to_string(), threshold.to_string()),
    ]
    .into();
    let mut workload = leadtime_trigger(name, &as_leadtime, defaults, min, max)?;
    workload.source = "prometheus";
    Ok(workload)
}

/// An entry of a plain list: `{name, query, targetPerPod, readySeconds, min, max}`.
fn entry_workload(entry: &Value) -> Result<Workload, String> {
    let text = |key: &str| entry[key].as_str().map(str::to_string);
    let number = |key: &str| match &entry[key] {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let name = text("name").ok_or("no `name`")?;
    let query = text("query").ok_or_else(|| format!("{name}: no `query`"))?;
    let target_per_pod = number("targetPerPod")
        .filter(|t| t.is_finite() && *t > 0.0)
        .ok_or_else(|| format!("{name}: `targetPerPod` must be a number above 0"))?;
    for key in entry
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.as_str())
    {
        if ![
            "name",
            "query",
            "targetPerPod",
            "readySeconds",
            "readyTimeQuery",
            "min",
            "max",
            "policy",
        ]
        .contains(&key)
        {
            return Err(format!("{name}: unknown key `{key}`"));
        }
    }
    Ok(Workload {
        name,
        query,
        target_per_pod,
        ready_seconds: number("readySeconds"),
        ready_query: text("readyTimeQuery"),
        policy: text("policy").unwrap_or_else(|| "predictive".into()),
        params: Params::new(),
        min: number("min").map_or(1, |m| m as u32),
        max: number("max").map(|m| m as u32),
        source: "list",
    })
}

/// A metadata value as the string KEDA forwards.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: keda.sh/v1alpha1
  kind: ScaledObject
  metadata: {name: llm, namespace: shop}
  spec:
    scaleTargetRef: {name: llm}
    minReplicaCount: 2
    maxReplicaCount: 40
    triggers:
    - type: external
      metadata:
        scalerAddress: leadtime-scaler.leadtime.svc:9090
        query: sum(rate(http_requests_total{namespace="shop",deployment="llm"}[1m]))
        targetPerPod: "20"
        readySeconds: "240"
        param.quantile: "0.99"
- apiVersion: keda.sh/v1alpha1
  kind: ScaledObject
  metadata: {name: web, namespace: shop}
  spec:
    scaleTargetRef: {name: web}
    triggers:
    - type: prometheus
      metadata:
        serverAddress: http://prometheus.monitoring:9090
        query: sum(rate(http_requests_total{namespace="shop",deployment="web"}[1m]))
        threshold: "50"
    - type: cpu
      metricType: Utilization
      metadata: {value: "60"}
- apiVersion: keda.sh/v1alpha1
  kind: ScaledObject
  metadata: {name: broken, namespace: shop}
  spec:
    scaleTargetRef: {name: broken}
    triggers:
    - type: external
      metadata: {scalerAddress: x:9090, query: up, targetPerPod: "-3"}
    - type: prometheus
      metadata: {query: up}
"#;

    #[test]
    fn scaled_objects_as_kubectl_prints_them() {
        let (workloads, skipped) = read(KUBECTL, "so.yaml", &BTreeMap::new()).unwrap();
        let names: Vec<(&str, &str, f64, u32, Option<u32>)> = workloads
            .iter()
            .map(|w| (w.name.as_str(), w.source, w.target_per_pod, w.min, w.max))
            .collect();
        assert_eq!(
            names,
            [
                ("shop/llm", "leadtime", 20.0, 2, Some(40)),
                ("shop/web#1", "prometheus", 50.0, 1, None),
            ]
        );
        assert_eq!(workloads[0].ready_seconds, Some(240.0));
        assert_eq!(
            workloads[0].params.get("quantile"),
            Some(&leadtime::Param::Number(0.99))
        );
        let why: Vec<(&str, &str)> = skipped
            .iter()
            .map(|s| (s.object.as_str(), s.trigger.as_str()))
            .collect();
        assert_eq!(
            why,
            [
                ("shop/web", "cpu"),
                ("shop/broken", "external"),
                ("shop/broken", "prometheus")
            ]
        );
        assert!(skipped[1].why.contains("targetPerPod"), "{:?}", skipped[1]);
        assert!(skipped[2].why.contains("threshold"), "{:?}", skipped[2]);
    }

    #[test]
    fn defaults_stand_under_leadtime_triggers_as_in_the_scaler() {
        let defaults: BTreeMap<String, String> =
            [("policy", "holt-winters"), ("readySeconds", "90")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let (workloads, _) = read(KUBECTL, "so.yaml", &defaults).unwrap();
        assert_eq!(workloads[0].policy, "holt-winters");
        assert_eq!(workloads[0].ready_seconds, Some(240.0), "the metadata wins");
        assert_eq!(workloads[1].policy, "holt-winters");
    }

    #[test]
    fn a_plain_list_and_its_mistakes() {
        let text = "- {name: api, query: 'sum(rate(x[1m]))', targetPerPod: 30, readySeconds: 120, min: 2, max: 20}\n\
                    - {name: bad, query: up}\n\
                    - {name: typo, query: up, targetPerPod: 1, maxx: 3}\n";
        let (workloads, skipped) = read(text, "list.yaml", &BTreeMap::new()).unwrap();
        assert_eq!(workloads.len(), 1);
        assert_eq!(
            (
                workloads[0].min,
                workloads[0].max,
                workloads[0].ready_seconds
            ),
            (2, Some(20), Some(120.0))
        );
        assert!(skipped[0].why.contains("targetPerPod"), "{skipped:?}");
        assert!(skipped[1].why.contains("unknown key `maxx`"), "{skipped:?}");
        assert!(read("{{{", "bad.yaml", &BTreeMap::new()).is_err());
    }
}
