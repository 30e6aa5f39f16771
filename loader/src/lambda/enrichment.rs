//! The enrichers' data in a running function: GeoIP databases, threat feeds and the
//! organization context are looked at again between invocations ([`EnrichmentData`]), and the
//! scheduled GeoIP update runs here: an EventBridge schedule sends `{"task": "geoip-update"}`;
//! the function reads the MaxMind credentials from Secrets Manager
//! (`GEOIP_LICENSE_SECRET_ARN`), puts fresh databases at `GEOIP_DATABASE_DIR` (an `s3://`
//! prefix) and reloads its own copy at once. Other execution environments reload theirs
//! within [`crate::enrich::geo::REFRESH_EVERY`].

use crate::enrich::files::{Files, Location};
use crate::enrich::geo::{GeoDatabases, REFRESH_EVERY};
use crate::enrich::geo_update::{self, Credentials, DEFAULT_ENDPOINT, GeoUpdateError, Installed};
use crate::enrich::org::OrgContext;
use crate::enrich::threat::ThreatFeeds;
use crate::pipeline::Pipeline;
use serde_json::{Value, json};
use std::sync::Arc;

/// The schedule's event.
pub const TASK: &str = "geoip-update";

pub fn is_geoip_update(event: &Value) -> bool {
    event.get("task").and_then(Value::as_str) == Some(TASK)
}

/// Where the credentials are and where the databases go.
#[derive(Debug, Clone)]
pub struct GeoUpdateSettings {
    pub secret_arn: String,
    pub location: Location,
    pub endpoint: String,
}

impl GeoUpdateSettings {
    /// From `GEOIP_LICENSE_SECRET_ARN`, `GEOIP_DATABASE_DIR` and `MAXMIND_ENDPOINT` (a mirror);
    /// `None` when the function has no secret to download with.
    pub fn from_env() -> Option<Self> {
        let secret_arn = std::env::var("GEOIP_LICENSE_SECRET_ARN")
            .ok()
            .filter(|s| !s.trim().is_empty())?;
        let location = std::env::var(crate::enrich::geo::DIR_ENV)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Location::parse(s.trim()))?;
        Some(Self {
            secret_arn,
            location,
            endpoint: std::env::var("MAXMIND_ENDPOINT")
                .ok()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
        })
    }
}

/// What a function's enrichers read, with what it is read through.
pub struct EnrichmentData {
    geo: Option<Arc<GeoDatabases>>,
    feeds: Option<Arc<ThreatFeeds>>,
    org: Option<Arc<OrgContext>>,
    files: Files,
    aws: aws_config::SdkConfig,
    update: Option<GeoUpdateSettings>,
    secrets: aws_sdk_secretsmanager::Client,
    s3: aws_sdk_s3::Client,
}

impl EnrichmentData {
    pub fn new(pipeline: &Pipeline, aws: &aws_config::SdkConfig, s3: aws_sdk_s3::Client) -> Self {
        Self {
            geo: pipeline.geo_databases().cloned(),
            feeds: pipeline.threat_feeds().cloned(),
            org: pipeline.org_context().cloned(),
            files: Files {
                s3: Some(s3.clone()),
            },
            aws: aws.clone(),
            update: GeoUpdateSettings::from_env(),
            secrets: aws_sdk_secretsmanager::Client::new(aws),
            s3,
        }
    }

    /// Reads again what changed or aged since the last look (each at its own pace).
    pub async fn refresh_if_due(&self) {
        if let Some(geo) = &self.geo {
            geo.refresh_if_due(&self.files, REFRESH_EVERY).await;
        }
        if let Some(feeds) = &self.feeds {
            feeds.refresh_if_due(&self.files, REFRESH_EVERY).await;
        }
        if let Some(org) = &self.org {
            org.refresh_if_due(Some(&self.aws), &self.files).await;
        }
    }

    /// The scheduled GeoIP update ([`run`]) with this function's settings.
    pub async fn geoip_update(&self) -> Result<Value, GeoUpdateError> {
        run(
            self.update.as_ref(),
            &self.secrets,
            &self.s3,
            self.geo.as_deref(),
        )
        .await
    }
}

/// Runs one scheduled update; the response names what was installed.
pub async fn run(
    settings: Option<&GeoUpdateSettings>,
    secrets: &aws_sdk_secretsmanager::Client,
    s3: &aws_sdk_s3::Client,
    databases: Option<&GeoDatabases>,
) -> Result<Value, GeoUpdateError> {
    let settings = settings.ok_or_else(|| {
        GeoUpdateError::Credentials(
            "GEOIP_LICENSE_SECRET_ARN and GEOIP_DATABASE_DIR must both be set".to_owned(),
        )
    })?;
    let secret = secrets
        .get_secret_value()
        .secret_id(&settings.secret_arn)
        .send()
        .await
        .map_err(|e| {
            GeoUpdateError::Credentials(format!(
                "{}: {}",
                settings.secret_arn,
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            ))
        })?;
    let text = secret.secret_string().unwrap_or_default();
    let credentials = Credentials::from_secret(text)?;
    let installed = geo_update::update(
        &settings.endpoint,
        &credentials,
        &settings.location,
        Some(s3),
    )
    .await?;
    if let Some(databases) = databases
        && let Err(e) = databases
            .refresh(&Files {
                s3: Some(s3.clone()),
            })
            .await
    {
        tracing::warn!("{e}; the GeoIP databases read before stay in use");
    }
    for Installed {
        edition,
        bytes,
        target,
    } in &installed
    {
        tracing::info!(edition, bytes, target, "GeoIP database installed");
    }
    Ok(json!({
        "installed": installed
            .iter()
            .map(|i| json!({"edition": i.edition, "bytes": i.bytes, "target": i.target}))
            .collect::<Vec<_>>()
    }))
}
