//! What a policy call produces once the guardrails have had their say.

use leadtime_wire::Forecast;
use serde::Serialize;

/// A replica target for one workload, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The target, within `[min, max]`.
    pub replicas: u32,
    /// What the policy asked for before the guardrails.
    pub proposed: u32,
    /// Why: the policy's reason, then any guardrail that changed the target.
    pub reason: String,
    /// The load the policy expects, when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<Forecast>,
    /// Fuel the call used (about one unit per wasm instruction).
    pub fuel: u64,
    /// Opaque state the policy asked to get back next call.
    #[serde(skip)]
    pub state: Option<Vec<u8>>,
}
