//! What a trigger's PromQL may ask: only series of the ScaledObject's own namespace, over
//! bounded ranges.
//!
//! A trigger's query runs with the scaler's access to Prometheus, and its answer shapes the
//! reply, so an unchecked query is a reader of every tenant's metrics. The rule the operator sets
//! (config `queries`): every series selector carries `<namespaceLabel>="<namespace>"`, an exact
//! match on the caller's namespace, and no selector or subquery reaches back further than
//! `maxRange`. The query is parsed here (GreptimeDB's `promql-parser`) so that the rule holds for
//! whatever Prometheus version answers; a query it cannot parse is refused.

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use std::time::Duration;

/// The operator's rule for queries.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRules {
    /// The label every selector must match exactly to the ScaledObject's namespace; `None` turns
    /// tenant isolation off (only for a scaler that serves one trusted team).
    pub namespace_label: Option<String>,
    /// The longest range a selector (`x[5m]`), subquery or offset may reach back.
    pub max_range: Duration,
    /// The most evaluation steps one evaluation of the query may take: each subquery evaluates
    /// its inner expression at every step of its range, and nested subqueries multiply.
    pub max_steps: u64,
}

/// Default of [`QueryRules::max_steps`]: Prometheus' own cap on the points of one range query's
/// series. `max_over_time(vector(1)[1h:1ms])` asks 3.6 million; `[1h:1m]` asks 61.
pub const DEFAULT_MAX_STEPS: u64 = 11_000;

/// The step a subquery without one is taken to have: Prometheus uses its global evaluation
/// interval (1 m by default), which the scaler cannot see, so the cost is counted as if it were
/// as fine as a second.
const UNKNOWN_STEP: Duration = Duration::from_secs(1);

impl Default for QueryRules {
    fn default() -> Self {
        QueryRules {
            namespace_label: Some("namespace".into()),
            max_range: Duration::from_secs(3600),
            max_steps: DEFAULT_MAX_STEPS,
        }
    }
}

/// Checks `query` against `rules` for a ScaledObject in `namespace`; what is wrong, if anything.
pub fn check(query: &str, namespace: &str, rules: &QueryRules) -> Result<(), String> {
    let expr = parser::parse(query).map_err(|e| format!("does not parse as PromQL: {e}"))?;
    let mut problems = Vec::new();
    walk(&expr, &mut |node| match node {
        Node::Selector(vs) => {
            if let Some(label) = &rules.namespace_label {
                if !isolated(vs, label, namespace) {
                    problems.push(format!(
                        "selector `{vs}` must match {label}=\"{namespace}\" exactly (the \
                         ScaledObject's namespace)"
                    ));
                }
            }
            if let Some(offset) = reach(&vs.offset) {
                if offset > rules.max_range {
                    problems.push(format!(
                        "`{vs}` reaches back {offset:?}, over queries.maxRange {:?}",
                        rules.max_range
                    ));
                }
            }
        }
        Node::Range(what, range) => {
            if range > rules.max_range {
                problems.push(format!(
                    "{what} of {range:?} is over queries.maxRange {:?}",
                    rules.max_range
                ));
            }
        }
    });
    // What Prometheus would evaluate, bounded before it is asked: a query the scaler gives up
    // on keeps Prometheus busy long after (issue #30: 80 s and 1 GB per query).
    let cost = steps(&expr);
    if cost > rules.max_steps as f64 {
        problems.push(format!(
            "evaluating it takes {} steps (subquery ranges over their steps, nested ones \
             multiplied), over queries.maxSteps {}: use a coarser subquery step",
            shown_steps(cost),
            rules.max_steps
        ));
    }
    match problems.into_iter().next() {
        None => Ok(()),
        Some(first) => Err(first),
    }
}

enum Node<'a> {
    Selector(&'a VectorSelector),
    Range(&'static str, Duration),
}

fn walk<'a>(expr: &'a Expr, visit: &mut impl FnMut(Node<'a>)) {
    match expr {
        Expr::Aggregate(a) => {
            walk(&a.expr, visit);
            if let Some(p) = &a.param {
                walk(p, visit);
            }
        }
        Expr::Unary(u) => walk(&u.expr, visit),
        Expr::Binary(b) => {
            walk(&b.lhs, visit);
            walk(&b.rhs, visit);
        }
        Expr::Paren(p) => walk(&p.expr, visit),
        Expr::Subquery(s) => {
            visit(Node::Range(
                "a subquery",
                s.range + reach(&s.offset).unwrap_or_default(),
            ));
            walk(&s.expr, visit);
        }
        Expr::VectorSelector(vs) => visit(Node::Selector(vs)),
        Expr::MatrixSelector(m) => {
            visit(Node::Range(
                "a range selector",
                m.range + reach(&m.vs.offset).unwrap_or_default(),
            ));
            visit(Node::Selector(&m.vs));
        }
        Expr::Call(c) => {
            for arg in &c.args.args {
                walk(arg, visit);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// The evaluation steps one evaluation of `expr` takes: 1 per leaf, summed over operands, and a
/// subquery's inner cost times the steps of its range. A float: a hostile query's product can
/// exceed any integer.
fn steps(expr: &Expr) -> f64 {
    match expr {
        Expr::Aggregate(a) => steps(&a.expr) + a.param.as_deref().map_or(0.0, steps),
        Expr::Unary(u) => steps(&u.expr),
        Expr::Binary(b) => steps(&b.lhs) + steps(&b.rhs),
        Expr::Paren(p) => steps(&p.expr),
        Expr::Subquery(s) => {
            let step = s.step.filter(|d| !d.is_zero()).unwrap_or(UNKNOWN_STEP);
            let points = (s.range.as_secs_f64() / step.as_secs_f64()).floor() + 1.0;
            points * steps(&s.expr)
        }
        Expr::Call(c) => c.args.args.iter().map(|a| steps(a)).sum::<f64>().max(1.0),
        Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => 1.0,
    }
}

/// A step count for a message: whole below a billion, else in powers of ten.
fn shown_steps(cost: f64) -> String {
    if cost < 1e9 {
        format!("{cost:.0}")
    } else {
        format!("{cost:.1e}")
    }
}

/// How far back an offset moves a selector (a negative offset looks ahead: no reach).
fn reach(offset: &Option<parser::Offset>) -> Option<Duration> {
    match offset {
        Some(parser::Offset::Pos(d)) => Some(*d),
        _ => None,
    }
}

/// Whether every alternative of the selector's matchers has `label="namespace"`.
fn isolated(vs: &VectorSelector, label: &str, namespace: &str) -> bool {
    let exact = |matchers: &[promql_parser::label::Matcher]| {
        matchers
            .iter()
            .any(|m| matches!(m.op, MatchOp::Equal) && m.name == label && m.value == namespace)
    };
    let m = &vs.matchers;
    if m.or_matchers.is_empty() {
        exact(&m.matchers)
    } else {
        // `{a="x" or b="y"}`: each alternative selects on its own, so each needs the match.
        m.or_matchers
            .iter()
            .all(|group| exact(group) || exact(&m.matchers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_isolation_table() {
        let rules = QueryRules::default();
        let cases = [
            (
                r#"sum(rate(http_requests_total{namespace="shop"}[2m]))"#,
                true,
            ),
            (r#"sum(x{namespace="shop", job="api"})"#, true),
            (
                r#"sum(a{namespace="shop"}) / sum(b{namespace="shop"} offset 5m)"#,
                true,
            ),
            (r#"vector(4e9)"#, true),
            (r#"scalar(x{namespace="shop"}) * 2"#, true),
            // Another tenant's series, or any namespace.
            (r#"sum(x{namespace="bank"})"#, false),
            (r#"sum(x)"#, false),
            (r#"sum(x{namespace=~"shop|bank"})"#, false),
            (r#"sum(x{namespace!="shop"})"#, false),
            (
                r#"sum(x{namespace="shop"}) + on() group_left secret_total"#,
                false,
            ),
            (
                r#"label_replace(secret{job="x"}, "a", "$1", "b", "(.*)")"#,
                false,
            ),
            (r#"sum(x{namespace="shop"}) or max(y)"#, false),
            (r#"max_over_time(x[5m:1m])"#, false),
            (r#"{__name__=~".+"}"#, false),
            // Not PromQL.
            (r#"sum(x{namespace="shop"}"#, false),
        ];
        for (query, ok) in cases {
            let got = check(query, "shop", &rules);
            assert_eq!(got.is_ok(), ok, "{query}: {got:?}");
        }
    }

    #[test]
    fn ranges_and_offsets_are_bounded() {
        let rules = QueryRules::default();
        let cases = [
            (r#"rate(x{namespace="s"}[5m])"#, true),
            (r#"rate(x{namespace="s"}[1h])"#, true),
            (r#"rate(x{namespace="s"}[30d])"#, false),
            (r#"rate(x{namespace="s"}[50m] offset 20m)"#, false),
            (r#"x{namespace="s"} offset 2h"#, false),
            (r#"max_over_time(rate(x{namespace="s"}[1m])[30m:1m])"#, true),
            (r#"max_over_time(rate(x{namespace="s"}[1m])[7d:1m])"#, false),
        ];
        for (query, ok) in cases {
            let got = check(query, "s", &rules);
            assert_eq!(got.is_ok(), ok, "{query}: {got:?}");
        }
        // Steps: each subquery multiplies its inner cost by the points of its range.
        let open = QueryRules {
            namespace_label: None,
            ..QueryRules::default()
        };
        let cases = [
            ("max_over_time(vector(1)[1h:1m])", true),
            ("max_over_time(vector(1)[1h:1s])", true),
            ("max_over_time(vector(1)[1h:100ms])", false),
            (
                "max_over_time(max_over_time(vector(1)[1h:1ms])[1h:1ms])",
                false,
            ),
            (
                "max_over_time(max_over_time(vector(1)[1h:1m])[1h:1m])",
                true,
            ),
            (
                "max_over_time(max_over_time(vector(1)[1h:1s])[1h:1m])",
                false,
            ),
            // No step: counted as a second's.
            ("max_over_time(vector(1)[1h:])", true),
            ("max_over_time(max_over_time(vector(1)[1h:])[1h:])", false),
            ("vector(1) + max_over_time(vector(1)[1h:1s])", true),
        ];
        for (query, ok) in cases {
            let got = check(query, "s", &open);
            assert_eq!(got.is_ok(), ok, "{query}: {got:?}");
        }
        let err = check("max_over_time(vector(1)[1h:1ms])", "s", &open).unwrap_err();
        assert!(
            err.contains("3600001 steps") && err.contains("queries.maxSteps"),
            "{err}"
        );
        let err = check(
            "max_over_time(max_over_time(vector(1)[1h:1ms])[1h:1ms])",
            "s",
            &open,
        )
        .unwrap_err();
        assert!(err.contains("1.3e13 steps"), "{err}");

        let open = QueryRules {
            namespace_label: None,
            ..QueryRules::default()
        };
        assert!(check("sum(x)", "s", &open).is_ok());
        let err = check(r#"sum(x{namespace="bank"})"#, "shop", &rules).unwrap_err();
        assert!(err.contains(r#"namespace="shop""#), "{err}");
    }
}
