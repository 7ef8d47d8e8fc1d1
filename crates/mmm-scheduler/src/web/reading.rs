//! What the page shows of an executor's metrics document, read leniently:
//! executors of other versions may name or shape a field differently, and a
//! field that cannot be read is shown as unknown rather than failing the page.

use serde_json::Value;

/// The figures of one metrics document.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// Records per second consumed from the source.
    pub records_in_per_sec: Option<f64>,
    /// Records per second produced to the target.
    pub records_out_per_sec: Option<f64>,
    /// Consumer lag over all partitions, in records.
    pub lag: Option<f64>,
    /// When the executor last committed offsets (ms since the epoch).
    pub last_commit_ms: Option<u64>,
}

const RECORDS_IN: &[&str] = &["consume_rate", "records_in_per_sec"];
const RECORDS_OUT: &[&str] = &["produce_rate", "records_out_per_sec"];
const LAG: &[&str] = &["lag", "total_lag"];
const LAST_COMMIT: &[&str] = &["last_commit_unix_ms", "last_commit_ms"];

impl Reading {
    pub fn of(document: &Value) -> Reading {
        Reading {
            records_in_per_sec: first(document, RECORDS_IN, number),
            records_out_per_sec: first(document, RECORDS_OUT, number),
            lag: first(document, LAG, total),
            // 0 is the executor's "no commit yet".
            last_commit_ms: first(document, LAST_COMMIT, number)
                .filter(|ms| *ms >= 1.0)
                .map(|ms| ms as u64),
        }
    }
}

fn first(document: &Value, keys: &[&str], read: fn(&Value) -> Option<f64>) -> Option<f64> {
    keys.iter().find_map(|k| document.get(*k).and_then(read))
}

/// A finite, non-negative number, also when sent as a string.
fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// A number, or the sum of a `partition -> lag` object.
fn total(v: &Value) -> Option<f64> {
    match v {
        Value::Object(parts) => {
            let values: Vec<f64> = parts.values().filter_map(number).collect();
            (!values.is_empty() || parts.is_empty()).then(|| values.iter().sum())
        }
        other => number(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_executor_report() {
        let r = Reading::of(
            &json!({"kind": "metrics", "consume_rate": 10.5, "produce_rate": 9,
            "lag": {"t-0": 3, "t-1": 4}, "last_commit_unix_ms": 1_700_000_000_000u64}),
        );
        assert_eq!(r.records_in_per_sec, Some(10.5));
        assert_eq!(r.records_out_per_sec, Some(9.0));
        assert_eq!(r.lag, Some(7.0));
        assert_eq!(r.last_commit_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn odd_shapes_are_read_or_left_unknown() {
        let r = Reading::of(&json!({"records_out_per_sec": "12.5", "lag": 40,
            "consume_rate": "fast", "last_commit_unix_ms": 0}));
        assert_eq!(r.records_out_per_sec, Some(12.5));
        assert_eq!(r.lag, Some(40.0));
        assert_eq!(r.records_in_per_sec, None);
        assert_eq!(r.last_commit_ms, None);
        let r =
            Reading::of(&json!({"lag": {"t-0": "x"}, "produce_rate": -1, "consume_rate": null}));
        assert_eq!(r, Reading::default());
        assert_eq!(Reading::of(&json!("not an object")), Reading::default());
        assert_eq!(Reading::of(&json!({"lag": {}})).lag, Some(0.0));
    }
}
