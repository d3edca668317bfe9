//! `hpa`: the Kubernetes HPA replica calculation (placeholder: holds current replicas).

use leadtime_guest::{export_policy, Request, Response};

/// The policy.
pub fn decide(req: &Request) -> Response {
    Response::new(
        req.replicas.current,
        "hpa: not implemented yet, holding current",
    )
}

export_policy!(decide);
