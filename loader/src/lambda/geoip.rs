//! The function's scheduled GeoIP refresh: an EventBridge schedule sends
//! `{"task": "geoip-update"}`; the function reads the MaxMind credentials from Secrets Manager
//! (`GEOIP_LICENSE_SECRET_ARN`), puts fresh databases at `GEOIP_DATABASE_DIR` (an `s3://`
//! prefix) and reloads its own copy at once. Other execution environments reload theirs
//! within [`crate::enrich::geo::REFRESH_EVERY`].

use crate::enrich::files::{Files, Location};
use crate::enrich::geo::GeoDatabases;
use crate::enrich::geo_update::{self, Credentials, DEFAULT_ENDPOINT, GeoUpdateError, Installed};
use serde_json::{Value, json};

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
