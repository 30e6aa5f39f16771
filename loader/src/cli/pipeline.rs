//! What every command that loads needs: the configuration, the exclusion rules and the GeoIP
//! databases, put together into a [`Pipeline`].

use super::{CliError, load_config};
use crate::config::Config;
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
        .with_user_agents(UserAgents::shared()))
}

/// The organization context of `ORG_CONTEXT`, read on a thread and runtime of its own.
pub fn org_context() -> Option<Arc<OrgContext>> {
    std::env::var(org::ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())?;
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            let aws = shared::aws::sdk_config().await;
            let s3 = shared::aws::s3_client(&aws);
            org::from_env(Some(&aws), Some(s3)).await
        })
    })
    .join()
    .ok()
    .flatten()
}

/// The threat feeds of `THREAT_INTEL_FEEDS`, read as [`geo_databases`] reads its files.
pub fn threat_feeds() -> Option<Arc<ThreatFeeds>> {
    on_own_runtime(threat::FEEDS_ENV, threat::from_env)
}

/// The GeoIP databases of `GEOIP_DATABASE_DIR`, read on a thread of their own (an `s3://`
/// location needs a runtime, and callers may be inside one).
pub fn geo_databases() -> Option<Arc<GeoDatabases>> {
    on_own_runtime(geoip::DIR_ENV, geoip::from_env)
}

/// Runs `load` (given an S3 client when the location in `env` is in S3) on a thread and
/// runtime of its own: callers may be inside a runtime already.
fn on_own_runtime<T, F>(env: &'static str, load: fn(Option<aws_sdk_s3::Client>) -> F) -> Option<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = Option<T>> + 'static,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            let in_s3 = std::env::var(env).is_ok_and(|v| v.trim().starts_with("s3://"));
            let s3 = match in_s3 {
                true => Some(shared::aws::s3_client(&shared::aws::sdk_config().await)),
                false => None,
            };
            load(s3).await
        })
    })
    .join()
    .ok()
    .flatten()
}
