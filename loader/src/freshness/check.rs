//! One freshness check, the same from the command line (`loader freshness`) and from the
//! function's schedule: read the sources, judge them, and store an alert for each quiet one
//! through the document sink (which publishes the alerts it creates).

use super::query::{FreshnessError, sightings};
use super::{Assessed, State, assess, quiet_alert};
use crate::config::Config;
use crate::deliver::DocumentSink;
use crate::setup::Http;
use crate::sink::{BulkItem, Origin};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shared::metrics::Metrics;
use std::time::Duration;

/// How far back a source counts as one that was sending, unless told otherwise.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(14 * 86400);

/// What to read.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    /// Comma-separated index patterns (default: every configured type's).
    pub indices: String,
    /// Sources with no document this recent are no longer reported.
    pub lookback: Duration,
    /// Sources per search request.
    pub page: usize,
}

impl CheckSettings {
    pub fn new(config: &Config) -> Self {
        Self {
            indices: super::query::index_patterns(config),
            lookback: DEFAULT_LOOKBACK,
            page: super::query::PAGE,
        }
    }
}

/// What a check found and did.
#[derive(Debug, Clone, Default)]
pub struct CheckOutcome {
    pub assessed: Vec<Assessed>,
    /// Alerts stored now: silences not reported before.
    pub alerts_created: u64,
    /// Silences already reported by an earlier check.
    pub alerts_known: u64,
    /// Alerts that could not be stored, with the reason (the next check tries again).
    pub alert_failures: Vec<String>,
}

impl CheckOutcome {
    pub fn quiet(&self) -> impl Iterator<Item = &Assessed> {
        self.assessed.iter().filter(|a| a.state == State::Quiet)
    }

    /// `SourcesSeen` and `QuietSourceCount`, with the dimension `Function=loader`.
    pub fn metrics(&self, base: Metrics) -> Metrics {
        let mut metrics = base.dimension("Function", "loader");
        metrics.count("SourcesSeen", self.assessed.len() as u64);
        metrics.count("QuietSourceCount", self.quiet().count() as u64);
        metrics.count("QuietSourceAlertsCreated", self.alerts_created);
        metrics
    }

    /// The function's answer: counts and the quiet sources.
    pub fn summary(&self) -> Value {
        let quiet: Vec<Value> = self
            .quiet()
            .map(|a| {
                json!({
                    "log_type": a.sighting.source.log_type,
                    "account": a.sighting.source.account,
                    "region": a.sighting.source.region,
                    "newest_event": crate::pipeline::format_time(a.sighting.newest_event),
                    "silent_for": super::duration_text(a.silent_for),
                })
            })
            .collect();
        json!({
            "sources": self.assessed.len(),
            "quiet": quiet,
            "alerts_created": self.alerts_created,
            "alerts_known": self.alerts_known,
            "alert_failures": self.alert_failures,
        })
    }
}

/// Reads and judges every source; with a sink, stores an alert for each quiet one.
pub async fn check(
    http: &dyn Http,
    sink: Option<&dyn DocumentSink>,
    config: &Config,
    settings: &CheckSettings,
    now: DateTime<Utc>,
) -> Result<CheckOutcome, FreshnessError> {
    let since = now - chrono::Duration::from_std(settings.lookback).unwrap_or_default();
    let found = sightings(http, &settings.indices, since, settings.page).await?;
    let mut outcome = CheckOutcome {
        assessed: assess(found, config, now),
        ..CheckOutcome::default()
    };
    for a in outcome.quiet() {
        tracing::warn!(
            log_type = a.sighting.source.log_type,
            account = a.sighting.source.account.as_deref().unwrap_or(""),
            region = a.sighting.source.region.as_deref().unwrap_or(""),
            newest_event = %a.sighting.newest_event,
            "source {} is quiet: nothing for {}",
            a.sighting.source,
            super::duration_text(a.silent_for)
        );
    }
    let Some(sink) = sink else {
        return Ok(outcome);
    };
    let items: Vec<BulkItem> = outcome
        .quiet()
        .enumerate()
        .map(|(n, a)| {
            BulkItem::from_document(
                quiet_alert(a, now),
                Origin::new("freshness check", n as u64),
            )
        })
        .collect();
    if items.is_empty() {
        return Ok(outcome);
    }
    let written = sink.write(items).await;
    outcome.alerts_created = written.stats.created;
    outcome.alerts_known = written.stats.duplicates;
    outcome.alert_failures = written
        .failures
        .iter()
        .map(|f| f.error.to_string())
        .collect();
    if written.stats.quarantined > 0 {
        outcome.alert_failures.push(format!(
            "{} alert(s) refused by OpenSearch",
            written.stats.quarantined
        ));
    }
    Ok(outcome)
}
