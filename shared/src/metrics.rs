//! Metrics in CloudWatch Embedded Metric Format (EMF): one JSON line per flush, which CloudWatch
//! Logs turns into metrics without any API call from the function.

use serde_json::{Map, Value, json};
use std::io::Write;

/// Namespace used when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "OrgSecurityLogs";

/// Units EMF understands that this project uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// A set of metric values sharing one namespace and one set of dimensions.
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: String,
    dimensions: Vec<(String, String)>,
    values: Vec<(String, f64, Unit)>,
}

impl Metrics {
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            dimensions: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Namespace from `METRICS_NAMESPACE`, or [`DEFAULT_NAMESPACE`].
    pub fn from_env() -> Self {
        Self::new(std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| DEFAULT_NAMESPACE.into()))
    }

    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.push((name.into(), value.into()));
        self
    }

    /// Adds to a metric; the same name added twice is summed, so callers can count as they go.
    pub fn add(&mut self, name: &str, value: f64, unit: Unit) {
        match self.values.iter_mut().find(|(n, _, _)| n == name) {
            Some(entry) => entry.1 += value,
            None => self.values.push((name.to_owned(), value, unit)),
        }
    }

    pub fn count(&mut self, name: &str, value: u64) {
        self.add(name, value as f64, Unit::Count);
    }

    pub fn value(&self, name: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, _)| *v)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The EMF document for the values so far, stamped with `timestamp_ms`.
    pub fn to_emf(&self, timestamp_ms: i64) -> Value {
        let metric_defs: Vec<Value> = self
            .values
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": metric_defs,
                }],
            }),
        );
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, value, _) in &self.values {
            root.insert(name.clone(), json!(value));
        }
        Value::Object(root)
    }

    /// Writes the EMF line to `out` and clears the values (dimensions stay).
    pub fn flush_to(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if self.values.is_empty() {
            return Ok(());
        }
        let line = self.to_emf(chrono::Utc::now().timestamp_millis());
        writeln!(out, "{line}")?;
        self.values.clear();
        Ok(())
    }

    /// Emits to stdout in Lambda, where CloudWatch Logs extracts the metrics; on a terminal the
    /// values are logged at debug level instead, so a CLI's stdout stays clean for data.
    pub fn flush(&mut self) {
        if crate::telemetry::in_lambda() {
            let stdout = std::io::stdout();
            if let Err(error) = self.flush_to(&mut stdout.lock()) {
                tracing::warn!(%error, "could not write metrics");
            }
        } else if !self.values.is_empty() {
            tracing::debug!(metrics = %self.to_emf(chrono::Utc::now().timestamp_millis()), "metrics");
            self.values.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_names_every_metric_and_dimension() {
        let mut metrics = Metrics::new("Test").dimension("LogType", "cloudtrail");
        metrics.count("TotalLogCount", 3);
        metrics.count("TotalLogCount", 2);
        metrics.add("InputLogFileSize", 1024.0, Unit::Bytes);
        let doc = metrics.to_emf(1_700_000_000_000);
        assert_eq!(doc["LogType"], "cloudtrail");
        assert_eq!(doc["TotalLogCount"], 5.0);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Test");
        assert_eq!(directive["Dimensions"], json!([["LogType"]]));
        assert_eq!(
            directive["Metrics"][1],
            json!({"Name": "InputLogFileSize", "Unit": "Bytes"})
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
    }

    #[test]
    fn flush_writes_one_line_and_clears() {
        let mut metrics = Metrics::new("Test");
        metrics.count("A", 1);
        let mut out = Vec::new();
        metrics.flush_to(&mut out).unwrap();
        metrics.flush_to(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(metrics.is_empty());
    }
}
