//! The scheduled freshness check in a running function: an EventBridge schedule sends
//! `{"task": "freshness"}`; the function reads the sources from the cluster it loads into and
//! stores an alert for each new silence through its own sink, which publishes it to the alert
//! topic (see [`crate::freshness`]).

use crate::config::Config;
use crate::deliver::DocumentSink;
use crate::freshness::check::{CheckSettings, check};
use crate::freshness::query::FreshnessError;
use crate::sink::{OpenSearchTransport, SinkConfig};
use serde_json::Value;
use shared::metrics::Metrics;

/// The schedule's event.
pub const TASK: &str = "freshness";

pub fn is_freshness_check(event: &Value) -> bool {
    event.get("task").and_then(Value::as_str) == Some(TASK)
}

/// Why a check failed (the schedule's retries and dead-letter queue take it from there).
#[derive(Debug, thiserror::Error)]
pub enum FreshnessTaskError {
    #[error("cannot reach OpenSearch: {0}")]
    Connect(String),
    #[error(transparent)]
    Read(#[from] FreshnessError),
    #[error("{count} quiet-source alert(s) could not be stored: {first}")]
    Alerts { count: usize, first: String },
    #[error("FRESHNESS_LOOKBACK {value:?} is not a duration such as 14d: {reason}")]
    Lookback { value: String, reason: String },
}

/// What the check needs, built once per execution environment.
pub struct FreshnessTask {
    config: Config,
    cluster: SinkConfig,
    aws: aws_config::SdkConfig,
    settings: CheckSettings,
}

impl FreshnessTask {
    /// The window from `FRESHNESS_LOOKBACK` (default 14 days).
    pub fn new(
        config: Config,
        cluster: SinkConfig,
        aws: aws_config::SdkConfig,
    ) -> Result<Self, FreshnessTaskError> {
        let mut settings = CheckSettings::new(&config);
        if let Some(value) = std::env::var("FRESHNESS_LOOKBACK")
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            settings.lookback = humantime::parse_duration(value.trim()).map_err(|e| {
                FreshnessTaskError::Lookback {
                    value: value.clone(),
                    reason: e.to_string(),
                }
            })?;
        }
        Ok(Self {
            config,
            cluster,
            aws,
            settings,
        })
    }

    /// One check; the answer names the quiet sources. Metrics: `SourcesSeen`,
    /// `QuietSourceCount`, `QuietSourceAlertsCreated`.
    pub async fn run(&self, sink: &dyn DocumentSink) -> Result<Value, FreshnessTaskError> {
        let http = OpenSearchTransport::connect(&self.cluster, Some(&self.aws))
            .await
            .map_err(|e| FreshnessTaskError::Connect(e.to_string()))?;
        let outcome = check(
            &http,
            Some(sink),
            &self.config,
            &self.settings,
            chrono::Utc::now(),
        )
        .await?;
        outcome.metrics(Metrics::from_env()).flush();
        if let Some(first) = outcome.alert_failures.first() {
            return Err(FreshnessTaskError::Alerts {
                count: outcome.alert_failures.len(),
                first: first.clone(),
            });
        }
        Ok(outcome.summary())
    }
}
