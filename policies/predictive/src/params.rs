//! The policy's parameters: names, defaults, ranges, and the checks `init` runs.

use leadtime_guest::{Params, ParamsExt, DEFAULT_READY_SECONDS, READY_QUANTILE};

/// Every parameter the policy knows, for the error on an unknown one.
pub const KNOWN: &[&str] = &[
    "quantile",
    "lead_seconds",
    "default_ready_seconds",
    "ready_quantile",
    "decision_seconds",
    "lookback",
    "max_period",
    "scale_down",
    "observer",
    "headroom",
    "refit_seconds",
];

/// The parameters, checked, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// QoS quantile of the predicted load that capacity must cover.
    pub quantile: f64,
    /// Fixed lead time in seconds, overriding the ready-time estimate.
    pub lead_seconds: Option<f64>,
    /// Ready time assumed while no pod has reported one.
    pub default_ready_seconds: f64,
    /// Quantile of recent ready times taken as the lead time.
    pub ready_quantile: f64,
    /// Seconds between decisions when the policy cannot tell from its last call.
    pub decision_seconds: f64,
    /// Seconds of history used (older values are ignored).
    pub lookback: f64,
    /// Longest period searched for, in seconds.
    pub max_period: f64,
    /// Whether the policy may lower the replica count.
    pub scale_down: bool,
    /// Observer mode: answer reactively, report the predictive answer in the reason.
    pub observer: bool,
    /// Extra capacity as a fraction, on both paths.
    pub headroom: f64,
    /// Seconds between refits of the cached model (0 refits every call).
    pub refit_seconds: f64,
}

const DAY: f64 = 86_400.0;

impl Settings {
    /// Reads and checks `params`; the error names the parameter and the allowed range.
    pub fn from_params(params: &Params) -> Result<Settings, String> {
        params.only(KNOWN, "predictive")?;
        let lead_seconds = match params.get("lead_seconds") {
            None => None,
            Some(_) => Some(params.number_in("lead_seconds", 0.0, 0.0, DAY)?),
        };
        let s = Settings {
            quantile: params.number_in("quantile", 0.95, 0.5, 0.999)?,
            lead_seconds,
            default_ready_seconds: params.number_in(
                "default_ready_seconds",
                DEFAULT_READY_SECONDS,
                0.0,
                DAY,
            )?,
            ready_quantile: params.number_in("ready_quantile", READY_QUANTILE, 0.0, 1.0)?,
            decision_seconds: params.number_in("decision_seconds", 15.0, 1.0, 3600.0)?,
            lookback: params.number_in("lookback", 14.0 * DAY, 3600.0, 90.0 * DAY)?,
            max_period: params.number_in("max_period", 7.0 * DAY, 60.0, 90.0 * DAY)?,
            scale_down: params.flag("scale_down", true)?,
            observer: params.flag("observer", false)?,
            headroom: params.number_in("headroom", 0.0, 0.0, 10.0)?,
            refit_seconds: params.number_in("refit_seconds", 3600.0, 0.0, 30.0 * DAY)?,
        };
        if s.max_period * 2.0 > s.lookback {
            return Err(format!(
                "param `max_period` ({}s) must be at most half of `lookback` ({}s): a period is \
                 only learned from two of them",
                s.max_period, s.lookback
            ));
        }
        Ok(s)
    }

    /// The numbers a cached model depends on: a change refits.
    pub fn model_key(&self) -> [f64; 3] {
        [self.quantile, self.lookback, self.max_period]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadtime_guest::Param;

    fn with(name: &str, value: Param) -> Params {
        let mut p = Params::new();
        p.insert(name.into(), value);
        p
    }

    #[test]
    fn defaults() {
        let s = Settings::from_params(&Params::new()).unwrap();
        assert_eq!(s.quantile, 0.95);
        assert_eq!(s.lead_seconds, None);
        assert!(s.scale_down && !s.observer);
    }

    #[test]
    fn bad_params_are_named() {
        let cases = [
            ("quantile", Param::Number(1.5), "quantile"),
            ("quantile", Param::Text("high".into()), "quantile"),
            ("lead_seconds", Param::Number(-1.0), "lead_seconds"),
            ("scale_down", Param::Number(1.0), "scale_down"),
            ("observer", Param::Text("yes".into()), "observer"),
            ("lookback", Param::Number(10.0), "lookback"),
            ("max_period", Param::Number(20.0 * DAY), "max_period"),
            ("qantile", Param::Number(0.9), "unknown param `qantile`"),
        ];
        for (name, value, fragment) in cases {
            let err = Settings::from_params(&with(name, value)).unwrap_err();
            assert!(err.contains(fragment), "{name}: {err}");
        }
    }
}
