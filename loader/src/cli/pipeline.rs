//! What every command that loads needs: the configuration, the exclusion rules and the GeoIP
//! databases, put together into a [`Pipeline`].

use super::{CliError, load_config};
use crate::config::Config;
use crate::enrich::files::Location;
use crate::enrich::geo::{self as geoip, GeoDatabases};
use crate::enrich::org::{self, OrgContext};
use crate::enrich::threat::{self, ThreatFeeds};
use crate::enrich::user_agent::UserAgents;
use crate::exclude::Exclusions;
use crate::lambda::settings::{ConfigLocation, parse_location, read_location};
use crate::pipeline::Pipeline;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The text of a configuration file given on the command line: a local path, or an
/// `s3://bucket/key` URL (the same files the Lambda reads, where a team keeps them).
pub fn read_text(path: &Path) -> Result<String, io::Error> {
    let name = path.to_string_lossy();
    let Some(location @ ConfigLocation::S3 { .. }) = name
        .starts_with("s3://")
        .then(|| parse_location(&name))
        .flatten()
    else {
        return std::fs::read_to_string(path);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let s3 = shared::aws::s3_client(&shared::aws::sdk_config().await);
        read_location(&location, &s3)
            .await
            .map_err(io::Error::other)
    })
}

/// Reads an `exclude_log_patterns.csv` file; its rules for types the configuration does not
/// define are warned about.
pub fn load_exclusions(path: &Path, config: &Config) -> Result<Exclusions, CliError> {
    let text = read_text(path).map_err(|source| CliError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let exclusions = Exclusions::parse(&path.display().to_string(), &text)?;
    for warning in exclusions.warnings(config) {
        tracing::warn!("{warning}");
    }
    Ok(exclusions)
}

/// The pipeline of a command line: built-in and user configuration, exclusions, GeoIP from
/// `GEOIP_DATABASE_DIR` and user agents.
pub fn build_pipeline(
    config: Option<&Path>,
    exclusions: Option<&Path>,
) -> Result<Pipeline, CliError> {
    let config = load_config(config)?;
    let exclusions = match exclusions {
        Some(path) => load_exclusions(path, &config)?,
        None => Exclusions::default(),
    };
    Ok(Pipeline::new(config)
        .with_exclusions(exclusions)
        .with_geo_databases(geo_databases())
        .with_threat_feeds(threat_feeds())
        .with_org_context(org_context())
        .with_user_agents(Some(UserAgents::shared())))
}

/// The organization context of `ORG_CONTEXT` (Organizations needs the AWS configuration, and a
/// mapping file may be in S3).
pub fn org_context() -> Option<Arc<OrgContext>> {
    std::env::var(org::ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())?;
    on_own_runtime(|| async {
        let aws = shared::aws::sdk_config().await;
        let s3 = shared::aws::s3_client(&aws);
        org::from_env(Some(&aws), Some(s3)).await
    })
}

/// The threat feeds of `THREAT_INTEL_FEEDS`, read as [`geo_databases`] reads its files.
pub fn threat_feeds() -> Option<Arc<ThreatFeeds>> {
    on_own_runtime(|| async { threat::from_env(s3_client_for(threat::FEEDS_ENV).await).await })
}

/// The GeoIP databases of `GEOIP_DATABASE_DIR`, read on a thread of their own (an `s3://`
/// location needs a runtime, and callers may be inside one).
pub fn geo_databases() -> Option<Arc<GeoDatabases>> {
    on_own_runtime(|| async { geoip::from_env(s3_client_for(geoip::DIR_ENV).await).await })
}

/// An S3 client when the location named by the variable `env` is in S3.
async fn s3_client_for(env: &str) -> Option<aws_sdk_s3::Client> {
    let text = std::env::var(env).ok()?;
    Location::parse(text.trim()).s3_client().await
}

/// Runs `load` on a thread and runtime of its own: callers may be inside a runtime already.
fn on_own_runtime<T, F>(load: impl FnOnce() -> F + Send + 'static) -> Option<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = Option<T>>,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(load())
    })
    .join()
    .ok()
    .flatten()
}
