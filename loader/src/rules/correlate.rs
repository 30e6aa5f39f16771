//! Thresholds and sequences decided over a whole input (`loader detect`, the rules' own tests):
//! the correlation rules of a [`RuleSet`] run in rsigma's correlation engine, one engine per
//! log type, on documents given in time order. A correlation fires once per crossing: its
//! window starts again after it fired, so 40 launches in ten minutes are one alert of a burst
//! rule at 20, and again at 40, not 21 alerts.

use super::{RuleMatch, RuleSet, level_name};
use chrono::DateTime;
use rsigma_eval::{
    CorrelationAction, CorrelationConfig, CorrelationEngine, JsonEvent, TimestampFallback,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A correlation that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationAlert {
    pub rule: RuleMatch,
    /// `event_count`, `temporal_ordered`, ...
    pub correlation_type: String,
    /// The group-by fields and their values (`source.ip` = `198.51.100.7`).
    pub group: Vec<(String, String)>,
    /// The count (or distinct count, sum ...) that met the condition.
    pub value: f64,
    pub window_seconds: u64,
    /// `@timestamp` of the document that completed it.
    pub time: String,
    pub log_type: String,
}

/// The correlation engines of a rule set, with their window state.
pub struct Correlator {
    engines: BTreeMap<String, CorrelationEngine>,
}

impl std::fmt::Debug for Correlator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Correlator")
            .field("log_types", &self.engines.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn config() -> CorrelationConfig {
    CorrelationConfig {
        timestamp_fields: vec!["@timestamp".to_owned()],
        // Replayed logs: wall-clock time means nothing, a document without a time is left out.
        timestamp_fallback: TimestampFallback::Skip,
        action_on_match: CorrelationAction::Reset,
        emit_detections: false,
        ..CorrelationConfig::default()
    }
}

impl Correlator {
    /// The engines of `set`'s correlations (none when it has none).
    pub fn new(set: &RuleSet) -> Self {
        let mut engines: BTreeMap<String, CorrelationEngine> = BTreeMap::new();
        let mut added: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        // Correlations are kept in an order where what one counts comes before it.
        for correlation in set.correlations() {
            for log_type in &correlation.info.log_types {
                let engine = engines
                    .entry(log_type.clone())
                    .or_insert_with(|| CorrelationEngine::new(config()));
                let seen = added.entry(log_type.clone()).or_default();
                for reference in &correlation.rule.rules {
                    if let Some(rule) = set.base_rule(reference)
                        && seen.insert(reference.clone())
                        && let Err(e) = engine.add_rule(rule)
                    {
                        tracing::warn!(rule = %reference, error = %e, "rule left out of the correlations");
                    }
                }
                if let Err(e) = engine.add_correlation(&correlation.rule) {
                    tracing::warn!(rule = %correlation.info.id, error = %e, "correlation left out");
                }
            }
        }
        Self { engines }
    }

    /// Adds one document of `log_type` (documents must come in time order); returns the
    /// correlations it completed.
    pub fn process(&mut self, log_type: &str, doc: &Value) -> Vec<CorrelationAlert> {
        let Some(engine) = self.engines.get_mut(log_type) else {
            return Vec::new();
        };
        let Some(time) = doc.get("@timestamp").and_then(Value::as_str) else {
            return Vec::new();
        };
        let Ok(at) = DateTime::parse_from_rfc3339(time) else {
            return Vec::new();
        };
        engine
            .process_event_at(&JsonEvent::borrow(doc), at.timestamp())
            .into_iter()
            .filter_map(|result| {
                let body = result.as_correlation()?.clone();
                Some(CorrelationAlert {
                    rule: RuleMatch {
                        id: result.header.rule_id.clone().unwrap_or_default(),
                        title: result.header.rule_title.clone(),
                        level: level_name(result.header.level.as_ref()),
                        tags: result.header.tags.clone(),
                    },
                    correlation_type: body.correlation_type.as_str().to_owned(),
                    group: body.group_key,
                    value: body.aggregated_value,
                    window_seconds: body.timespan_secs,
                    time: time.to_owned(),
                    log_type: log_type.to_owned(),
                })
            })
            .collect()
    }
}

/// The `@timestamp` of a document as seconds, for ordering (documents without one sort first).
pub fn time_of(doc: &Value) -> i64 {
    doc.get("@timestamp")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(i64::MIN, |t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    const BURST: &str = "title: Launch\nname: launch\nid: t-launch\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventName: RunInstances}\n  condition: s\n---\ntitle: Burst\nid: t-burst\nlevel: high\ncorrelation:\n  type: event_count\n  rules: [launch]\n  group-by: [userIdentity.arn]\n  timespan: 10m\n  condition: {gte: 3}\n";

    fn doc(arn: &str, minute: u32, second: u32) -> Value {
        json!({
            "@timestamp": format!("2026-12-01T10:{minute:02}:{second:02}.000Z"),
            "eventName": "RunInstances",
            "userIdentity": {"arn": arn}
        })
    }

    #[test]
    fn a_threshold_fires_once_per_crossing_per_group_within_its_window() {
        let config = Config::builtin().expect("config");
        let set = RuleSet::build(&config, [("burst.yml", BURST)], &[]);
        assert!(set.problems().is_empty(), "{:?}", set.problems());
        // The counted rule alerts on nothing by itself.
        assert!(set.evaluate("cloudtrail", &doc("a", 0, 0)).is_empty());
        let mut c = Correlator::new(&set);
        let mut fired = Vec::new();
        for (arn, minute, second) in [
            ("a", 0, 0),
            ("b", 0, 5),
            ("a", 1, 0),
            ("a", 2, 0),
            ("a", 2, 30),
            ("b", 30, 0),
            ("b", 45, 0),
        ] {
            fired.extend(c.process("cloudtrail", &doc(arn, minute, second)));
        }
        assert_eq!(fired.len(), 1, "{fired:#?}");
        assert_eq!(fired[0].rule.id, "t-burst");
        assert_eq!(
            fired[0].group,
            [("userIdentity.arn".to_owned(), "a".to_owned())]
        );
        assert_eq!(fired[0].value, 3.0);
        assert_eq!(fired[0].time, "2026-12-01T10:02:00.000Z");
        assert!(c.process("waf", &doc("a", 3, 0)).is_empty());
    }
}
