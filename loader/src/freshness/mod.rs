//! Silent sources: a trail stopped, a flow log deleted, a Firehose stream broken. Nothing fails
//! when a source stops sending, so the loader looks for the silence itself.
//!
//! A *source* is one log type of one account in one region. Its newest event time comes from
//! what the loader has loaded: a composite aggregation over the type's indices, newest
//! `@timestamp` and newest `event.ingested` per `@log_type` × `cloud.account.id` ×
//! `cloud.region` over a look-back window ([`query`]). A source that sent within the window
//! and has sent nothing for longer than its type's `quiet_after` (configuration, with defaults
//! in the built-in `aws.ini`) is *quiet*. A source older than the window is no longer known:
//! the window is how long a silence keeps being reported.
//!
//! Each silence becomes one alert document ([`quiet_alert`]) whose id is a hash of the source
//! and its newest event time: the checks that follow (an hourly schedule in the central stack)
//! find it already stored and stay silent, and the notifying sink publishes only alerts it
//! created. A source that sends again and stops again is a new silence with a new alert.
//!
//! Assessing is pure ([`assess`]), so every rule is unit-tested; the HTTP edge is
//! [`crate::setup::Http`].

pub mod check;
pub mod query;

use crate::config::Config;
use crate::pipeline::{Document, Source as DocSource};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::time::Duration;

/// The alert's rule id, and the prefix of its title.
pub const RULE_ID: &str = "pipeline-source-quiet";
/// Sigma level of the alert: published at the default `AlertMinLevel`.
pub const LEVEL: &str = "high";

/// `quiet_after` of the configuration: a duration (`30m`, `6h`, `2d`); `0` for a type whose
/// silence is normal.
pub fn parse_quiet_after(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(None);
    }
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Ok(None),
        Ok(d) => Ok(Some(d)),
        Err(e) => Err(format!(
            "`{text}` is not a duration such as 30m, 6h or 2d, or 0 ({e})"
        )),
    }
}

/// One log type of one account in one region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId {
    pub log_type: String,
    /// `None` for documents without `cloud.account.id`.
    pub account: Option<String>,
    pub region: Option<String>,
}

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} in {}",
            self.log_type,
            self.account.as_deref().unwrap_or("no account"),
            self.region.as_deref().unwrap_or("no region")
        )
    }
}

/// What the indices say of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub source: SourceId,
    /// The newest `@timestamp` of its documents.
    pub newest_event: DateTime<Utc>,
    /// When its newest document was loaded (`event.ingested`): a source whose events stopped
    /// while loading went on is quiet; one whose loading stopped too points at the pipeline.
    pub last_loaded: Option<DateTime<Utc>>,
    /// Documents in the window.
    pub documents: u64,
}

/// Whether a source is sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Nothing for longer than its type's `quiet_after`.
    Quiet,
    Sending,
    /// Its type has no `quiet_after` (or is not in the configuration): never quiet.
    Unwatched,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Quiet => "QUIET",
            State::Sending => "ok",
            State::Unwatched => "-",
        }
    }
}

/// A source with its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessed {
    pub sighting: Sighting,
    pub quiet_after: Option<Duration>,
    pub state: State,
    /// Since its newest event (zero for an event from the future).
    pub silent_for: Duration,
}

/// Each sighting judged by its type's `quiet_after` at `now`: quiet ones first, then by type,
/// account and region.
pub fn assess(sightings: Vec<Sighting>, config: &Config, now: DateTime<Utc>) -> Vec<Assessed> {
    let mut out: Vec<Assessed> = sightings
        .into_iter()
        .map(|sighting| {
            let quiet_after = config
                .get(&sighting.source.log_type)
                .and_then(|t| t.quiet_after);
            let silent_for = (now - sighting.newest_event).to_std().unwrap_or_default();
            let state = match quiet_after {
                None => State::Unwatched,
                Some(limit) if silent_for > limit => State::Quiet,
                Some(_) => State::Sending,
            };
            Assessed {
                sighting,
                quiet_after,
                state,
                silent_for,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.state, &a.sighting.source).cmp(&(b.state, &b.sighting.source)));
    out
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A duration to the minute, as a person reads it (`2days 3h 5m`).
pub fn duration_text(d: Duration) -> String {
    let minutes = Duration::from_secs(d.as_secs() / 60 * 60);
    if minutes.is_zero() {
        return "0m".to_owned();
    }
    humantime::format_duration(minutes).to_string()
}

/// The table `loader freshness` prints: one line per source.
pub fn table(assessed: &[Assessed]) -> String {
    let mut rows = vec![[
        "STATE".to_owned(),
        "TYPE".to_owned(),
        "ACCOUNT".to_owned(),
        "REGION".to_owned(),
        "NEWEST EVENT".to_owned(),
        "SILENT FOR".to_owned(),
        "QUIET AFTER".to_owned(),
        "LAST LOADED".to_owned(),
        "DOCUMENTS".to_owned(),
    ]];
    for a in assessed {
        let s = &a.sighting;
        rows.push([
            a.state.label().to_owned(),
            s.source.log_type.clone(),
            s.source.account.clone().unwrap_or_else(|| "-".into()),
            s.source.region.clone().unwrap_or_else(|| "-".into()),
            time_text(s.newest_event),
            duration_text(a.silent_for),
            a.quiet_after.map_or_else(|| "-".into(), duration_text),
            s.last_loaded.map_or_else(|| "-".into(), time_text),
            s.documents.to_string(),
        ]);
    }
    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let quiet = assessed.iter().filter(|a| a.state == State::Quiet).count();
    out.push_str(&format!("{} sources, {quiet} quiet\n", assessed.len()));
    out
}

/// The alert of a quiet source, stored in `alert-<YYYY-MM>` of its newest event like a
/// detection alert (so the notifying sink publishes it once, when it is created).
pub fn quiet_alert(a: &Assessed, now: DateTime<Utc>) -> Document {
    let s = &a.sighting;
    let source = &s.source;
    let title = format!("Log source went quiet: {}", source.log_type);
    let mut cloud = json!({"provider": "aws"});
    if let Some(account) = &source.account {
        cloud["account"] = json!({"id": account});
    }
    if let Some(region) = &source.region {
        cloud["region"] = json!(region);
    }
    let now_text = crate::pipeline::format_time(now);
    let newest = crate::pipeline::format_time(s.newest_event);
    let mut doc = json!({
        "@timestamp": now_text,
        "cloud": cloud,
        "event": {
            "kind": "alert",
            "module": "pipeline",
            "dataset": "pipeline.freshness",
            "action": "source-quiet",
            "severity": crate::rules::alert::severity(LEVEL),
            "ingested": now_text,
            "start": newest,
        },
        "rule": {
            "id": RULE_ID,
            "name": title,
            "ruleset": "pipeline",
            "category": LEVEL,
            "description": format!(
                "No {} event from {} since {}: silent for {}, longer than the type's quiet_after of {}. A trail stopped, a flow log deleted or a delivery broken?",
                source.log_type,
                source.account.as_deref().unwrap_or("an unknown account"),
                time_text(s.newest_event),
                duration_text(a.silent_for),
                a.quiet_after.map_or_else(|| "-".into(), duration_text),
            ),
        },
        "message": format!("{title} ({source})"),
        "alert": {"source": {"log_type": source.log_type}},
        "freshness": {
            "newest_event": newest,
            "silent_for_seconds": a.silent_for.as_secs(),
            "quiet_after_seconds": a.quiet_after.map(|d| d.as_secs()),
        },
        "tags": ["source-quiet"],
        "@log_type": "alerts",
    });
    if let Some(loaded) = s.last_loaded {
        doc["freshness"]["last_loaded"] = Value::String(crate::pipeline::format_time(loaded));
    }
    // The same source silent since the same event is the same alert. It goes to the index of
    // the silence's start, not of the check: a silence over a month's end is still one alert
    // (its id is refused by the index that holds it already).
    let id = crate::rules::alert::alert_id(&[
        RULE_ID,
        &source.log_type,
        source.account.as_deref().unwrap_or(""),
        source.region.as_deref().unwrap_or(""),
        &newest,
    ]);
    Document {
        index: crate::rules::alert::alert_index(Some(&newest)),
        id,
        source: DocSource::Json(doc.to_string().into_bytes()),
    }
}

#[cfg(test)]
mod tests;
