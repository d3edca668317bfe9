//! Checks applied to every policy's answer, whatever the policy: the request is sane, and
//! the target lies within `[min, max]`.

use crate::decision::Decision;
use crate::error::{Error, Result};
use leadtime_wire::{Replicas, Response};

/// Rejects requests no policy can answer sensibly.
pub fn check_request(replicas: &Replicas) -> Result<()> {
    if replicas.min > replicas.max {
        return Err(Error::BadRequest(format!(
            "replicas.min ({}) is greater than replicas.max ({})",
            replicas.min, replicas.max
        )));
    }
    Ok(())
}

/// `proposed` clamped to `[min, max]`, and a note saying which bound applied, if any.
pub fn clamp(proposed: u32, replicas: &Replicas) -> (u32, Option<String>) {
    if proposed > replicas.max {
        (
            replicas.max,
            Some(format!("clamped to max {}", replicas.max)),
        )
    } else if proposed < replicas.min {
        (
            replicas.min,
            Some(format!("clamped to min {}", replicas.min)),
        )
    } else {
        (proposed, None)
    }
}

/// Turns a policy's valid response into a decision within bounds.
pub fn check(replicas: &Replicas, response: Response) -> Result<Decision> {
    let proposed = response
        .replicas
        .ok_or_else(|| Error::BadResponse("response has no `replicas`".into()))?;
    let (target, note) = clamp(proposed, replicas);
    // The policy's own words, on their way to terminals and logs.
    let mut reason = match crate::text::escape_controls(&response.reason) {
        std::borrow::Cow::Borrowed(_) => response.reason,
        std::borrow::Cow::Owned(escaped) => escaped,
    };
    if let Some(note) = note {
        if reason.is_empty() {
            reason = format!("asked for {proposed}; {note}");
        } else {
            reason = format!("{reason}; asked for {proposed}, {note}");
        }
    }
    Ok(Decision {
        replicas: target,
        proposed,
        reason,
        forecast: response.forecast,
        fuel: 0,
        state: response.state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(min: u32, max: u32) -> Replicas {
        Replicas {
            current: 3,
            ready: 3,
            min,
            max,
        }
    }

    #[test]
    fn clamp_table() {
        let cases = [
            // (proposed, min, max, want, note)
            (5, 1, 10, 5, None),
            (0, 1, 10, 1, Some("clamped to min 1")),
            (11, 1, 10, 10, Some("clamped to max 10")),
            (u32::MAX, 0, 0, 0, Some("clamped to max 0")),
            (7, 7, 7, 7, None),
        ];
        for (proposed, min, max, want, note) in cases {
            let (got, got_note) = clamp(proposed, &bounds(min, max));
            assert_eq!(got, want, "clamp({proposed}, [{min}, {max}])");
            assert_eq!(got_note.as_deref(), note);
        }
    }

    #[test]
    fn a_reason_with_control_characters_is_escaped() {
        let response = Response {
            replicas: Some(4),
            reason: "ok\r\x1b[2Kforged line\x07".into(),
            ..Response::default()
        };
        let decision = check(&bounds(1, 10), response).unwrap();
        assert_eq!(decision.reason, "ok\\r\\u{1b}[2Kforged line\\u{7}");
    }

    #[test]
    fn min_above_max_is_a_bad_request() {
        let err = check_request(&bounds(5, 3)).unwrap_err();
        assert!(err.to_string().contains("replicas.min (5)"), "{err}");
    }
}
