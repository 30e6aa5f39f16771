//! The Lambda's settings, from its environment (OpenSearch settings are the sink's own, see
//! [`crate::sink::SinkConfig::from_env`]):
//!
//! - `LOADER_CONCURRENCY`: objects of one invocation loaded at once (default 4);
//! - `LOADER_CHUNK_DOCUMENTS`, `LOADER_CHUNK_BYTES`: documents handed to the sink at a time
//!   (default 5,000 documents or 8 MiB);
//! - `QUARANTINE_BUCKET`: bucket for documents OpenSearch refuses for good (default: the bucket
//!   the object came from); `QUARANTINE_PREFIX`: their prefix (default `quarantine/`, outside
//!   `AWSLogs/` so quarantined entries never trigger the loader);
//! - `LOADER_CONFIG`: the user configuration file, a path or an `s3://bucket/key` URL; without
//!   it, `/opt/user.ini` (a Lambda layer) when that file exists;
//! - `LOADER_EXCLUSIONS`: the `exclude_log_patterns.csv` rules, a path or an `s3://bucket/key`
//!   URL; without it, `/opt/exclude_log_patterns.csv` when that file exists;
//! - `GEOIP_DATABASE_DIR`: the folder or `s3://bucket/prefix` of `GeoLite2-City.mmdb` /
//!   `GeoLite2-ASN.mmdb` (kept fresh by `loader geoip update`); read at cold start and
//!   reloaded when they change (see [`crate::enrich::geo`]);
//! - `ORGANIZATION_ID`: the organization (`o-...`) whose trail alone may deliver CloudTrail
//!   objects; others are refused (see [`crate::provenance`]). Unset: any CloudTrail key loads.
//! - `LOADER_RULES`: `off` evaluates no detection rule; otherwise the bundled Sigma pack runs
//!   on every document (see [`crate::rules`]); `LOADER_DISABLED_RULES`: ids of rules to leave
//!   out, separated by commas.
//! - `LOADER_RULES_LOCATION`: folders of the user's Sigma rules, `s3://bucket/prefix/`
//!   separated by commas, read at cold start;
//! - `ALERT_TOPIC_ARN`: the SNS topic alerts are published to (see [`crate::notify`]);
//!   `ALERT_MIN_LEVEL`: the lowest Sigma level published (default `high`);
//!   `ALERT_MAX_PER_MINUTE`: the bound on messages a minute (default 120).

use crate::config::{Config, ConfigError};
use crate::deliver::ChunkLimits;
use crate::enrich::geo as geoip;
use crate::enrich::user_agent::UserAgents;
use crate::exclude::Exclusions;
use crate::lambda::HandlerSettings;
use crate::pipeline::Pipeline;
use crate::provenance::OrganizationId;
use crate::sink::{Quarantine, QuarantineError, QuarantinedDocument, S3Quarantine};
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};

/// Where a Lambda layer puts the user configuration file.
pub const LAYER_USER_FILE: &str = "/opt/user.ini";
/// `ALERT_TOPIC_ARN` (none or empty: alerts are only indexed), `ALERT_MIN_LEVEL`,
/// `ALERT_MAX_PER_MINUTE`.
fn alert_settings(
    get: &impl Fn(&'static str) -> Option<String>,
) -> Result<Option<crate::notify::NotifySettings>, SettingsError> {
    let Some(topic) = get("ALERT_TOPIC_ARN").filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    let level = get("ALERT_MIN_LEVEL").filter(|l| !l.trim().is_empty());
    let mut settings =
        crate::notify::NotifySettings::new(&topic, level.as_deref()).map_err(|e| {
            SettingsError::BadValue {
                name: match e {
                    crate::notify::NotifySettingsError::Topic(_) => "ALERT_TOPIC_ARN",
                    crate::notify::NotifySettingsError::Level(_) => "ALERT_MIN_LEVEL",
                },
                value: match e {
                    crate::notify::NotifySettingsError::Topic(_) => topic.clone(),
                    crate::notify::NotifySettingsError::Level(_) => {
                        level.clone().unwrap_or_default()
                    }
                },
                reason: e.to_string(),
            }
        })?;
    if let Some(max) = get("ALERT_MAX_PER_MINUTE") {
        settings.max_per_minute = max.trim().parse().map_err(|_| SettingsError::BadValue {
            name: "ALERT_MAX_PER_MINUTE",
            value: max.clone(),
            reason: "expected a whole number".into(),
        })?;
    }
    Ok(Some(settings))
}

/// Where a Lambda layer puts the exclusion rules.
pub const LAYER_EXCLUSIONS_FILE: &str = "/opt/exclude_log_patterns.csv";
pub const DEFAULT_QUARANTINE_PREFIX: &str = "quarantine/";

/// Where the user configuration file is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigLocation {
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl std::fmt::Display for ConfigLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaSettings {
    pub handler: HandlerSettings,
    /// `None`: each document is quarantined in the bucket of its object.
    pub quarantine_bucket: Option<String>,
    pub quarantine_prefix: String,
    pub user_config: Option<ConfigLocation>,
    pub exclusions: Option<ConfigLocation>,
    /// CloudTrail objects only from this organization's trail.
    pub organization: Option<OrganizationId>,
    /// Whether the detection rules run.
    pub rules: bool,
    /// Rule ids left out.
    pub disabled_rules: Vec<String>,
    /// Folders of the user's rules, as (bucket, prefix), evaluated next to the bundled pack.
    pub rule_folders: Vec<(String, String)>,
    /// Where alerts at or above a level are published, when a topic is set.
    pub alerts: Option<crate::notify::NotifySettings>,
    /// Threads one large object is normalized on (`LOADER_THREADS`, default: the vCPUs the
    /// function's memory size gives it).
    pub threads: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {name}={value:?}: {reason}")]
    BadValue {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot read the user configuration {location}: {reason}")]
    ReadConfig { location: String, reason: String },
    #[error("exclusion rules {location}: {source}")]
    Exclusions {
        location: String,
        #[source]
        source: Box<crate::exclude::ExclusionError>,
    },
    #[error("user configuration {location}: {source}")]
    Config {
        location: String,
        #[source]
        source: Box<ConfigError>,
    },
}

impl LambdaSettings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok(), |p| p.is_file())
    }

    /// Reads the settings through `env`; `exists` tells whether the layer file is there.
    /// Empty values count as unset, so a template can pass `""` for "default".
    pub fn from_lookup(
        env: impl Fn(&str) -> Option<String>,
        exists: impl Fn(&Path) -> bool,
    ) -> Result<Self, SettingsError> {
        let get = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let positive = |name: &'static str, default: usize| -> Result<usize, SettingsError> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    Ok(_) => Err(SettingsError::BadValue {
                        name,
                        value: v,
                        reason: "must be at least 1".into(),
                    }),
                    Err(e) => Err(SettingsError::BadValue {
                        name,
                        value: v,
                        reason: e.to_string(),
                    }),
                },
            }
        };
        let handler = HandlerSettings {
            concurrency: positive("LOADER_CONCURRENCY", super::handler::DEFAULT_CONCURRENCY)?,
            chunk: ChunkLimits {
                max_docs: positive("LOADER_CHUNK_DOCUMENTS", ChunkLimits::DEFAULT_MAX_DOCS)?,
                max_bytes: positive("LOADER_CHUNK_BYTES", ChunkLimits::DEFAULT_MAX_BYTES)?,
            },
        };
        let location = |name: &'static str, layer_file: &str| match get(name) {
            Some(v) => parse_location(&v)
                .map(Some)
                .ok_or_else(|| SettingsError::BadValue {
                    name,
                    value: v.clone(),
                    reason: "expected a path or s3://bucket/key".into(),
                }),
            None if exists(Path::new(layer_file)) => {
                Ok(Some(ConfigLocation::File(PathBuf::from(layer_file))))
            }
            None => Ok(None),
        };
        let user_config = location("LOADER_CONFIG", LAYER_USER_FILE)?;
        let exclusions = location("LOADER_EXCLUSIONS", LAYER_EXCLUSIONS_FILE)?;
        let organization = get("ORGANIZATION_ID")
            .map(|v| {
                OrganizationId::parse(&v).map_err(|e| SettingsError::BadValue {
                    name: "ORGANIZATION_ID",
                    value: v.clone(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        Ok(Self {
            handler,
            quarantine_bucket: get("QUARANTINE_BUCKET"),
            quarantine_prefix: get("QUARANTINE_PREFIX")
                .unwrap_or_else(|| DEFAULT_QUARANTINE_PREFIX.to_owned()),
            user_config,
            exclusions,
            organization,
            rules: match get("LOADER_RULES").as_deref().map(str::trim) {
                None | Some("on") => true,
                Some("off") => false,
                Some(other) => {
                    return Err(SettingsError::BadValue {
                        name: "LOADER_RULES",
                        value: other.to_owned(),
                        reason: "expected on or off".into(),
                    });
                }
            },
            disabled_rules: get("LOADER_DISABLED_RULES")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|id| !id.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            rule_folders: match get("LOADER_RULES_LOCATION") {
                None => Vec::new(),
                Some(value) => value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        s3_folder(v).ok_or_else(|| SettingsError::BadValue {
                            name: "LOADER_RULES_LOCATION",
                            value: v.to_owned(),
                            reason: "expected s3://bucket/prefix/ (several separated by commas)"
                                .into(),
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
            alerts: alert_settings(&get)?,
            threads: positive("LOADER_THREADS", crate::pipeline::cores())?,
        })
    }

    /// The alert notifier of these settings, publishing through `sdk`'s SNS client.
    pub fn notifier(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> Option<std::sync::Arc<crate::notify::Notifier>> {
        let settings = self.alerts.clone()?;
        Some(std::sync::Arc::new(crate::notify::Notifier::new(
            settings,
            Box::new(crate::notify::sns::SnsPublisher::from_conf(sdk)),
        )))
    }

    /// The quarantine these settings describe.
    pub fn quarantine(&self, client: aws_sdk_s3::Client) -> std::sync::Arc<dyn Quarantine> {
        match &self.quarantine_bucket {
            Some(bucket) => std::sync::Arc::new(S3Quarantine::new(
                client,
                bucket.clone(),
                &self.quarantine_prefix,
            )),
            None => std::sync::Arc::new(ObjectBucketQuarantine {
                client,
                prefix: self.quarantine_prefix.clone(),
            }),
        }
    }

    /// The built-in configuration with the user file read over it, when there is one.
    pub async fn load_config(&self, s3: &aws_sdk_s3::Client) -> Result<Config, SettingsError> {
        let Some(location) = &self.user_config else {
            return Config::builtin().map_err(|source| SettingsError::Config {
                location: "built-in".into(),
                source: Box::new(source),
            });
        };
        let name = location.to_string();
        let text = read_location(location, s3).await?;
        let config =
            Config::with_user_file(&name, &text).map_err(|source| SettingsError::Config {
                location: name.clone(),
                source: Box::new(source),
            })?;
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        Ok(config)
    }

    /// The exclusion rules, when a file is configured; rules for types `config` does not
    /// define are warned about.
    pub async fn load_exclusions(
        &self,
        s3: &aws_sdk_s3::Client,
        config: &Config,
    ) -> Result<Exclusions, SettingsError> {
        let Some(location) = &self.exclusions else {
            return Ok(Exclusions::default());
        };
        let name = location.to_string();
        let text = read_location(location, s3).await?;
        let exclusions =
            Exclusions::parse(&name, &text).map_err(|source| SettingsError::Exclusions {
                location: name.clone(),
                source: Box::new(source),
            })?;
        for warning in exclusions.warnings(config) {
            tracing::warn!("{warning}");
        }
        Ok(exclusions)
    }

    /// The pipeline of the function: configuration, exclusion rules, detection rules and the
    /// enrichers' data (`aws` for Organizations, `s3` for files kept in S3).
    pub async fn load_pipeline(
        &self,
        aws: &aws_config::SdkConfig,
        s3: &aws_sdk_s3::Client,
    ) -> Result<Pipeline, SettingsError> {
        let config = self.load_config(s3).await?;
        let exclusions = self.load_exclusions(s3, &config).await?;
        let geo = geoip::from_env(Some(s3.clone())).await;
        let rules = if self.rules {
            let mut user = Vec::new();
            for (bucket, prefix) in &self.rule_folders {
                user.extend(read_rule_folder_s3(s3, bucket, prefix, false).await?);
            }
            Some(std::sync::Arc::new(crate::rules::RuleSet::with_bundled(
                &config,
                &user,
                &self.disabled_rules,
            )))
        } else {
            None
        };
        Ok(Pipeline::new(config)
            .with_exclusions(exclusions)
            .with_geo_databases(geo)
            .with_threat_feeds(crate::enrich::threat::from_env(Some(s3.clone())).await)
            .with_org_context(crate::enrich::org::from_env(Some(aws), Some(s3.clone())).await)
            .with_user_agents(Some(UserAgents::shared()))
            .with_organization(self.organization.clone())
            .with_rules(rules)
            .with_threads(self.threads))
    }
}

/// The text of a configuration file: a local path or an S3 object.
pub async fn read_location(
    location: &ConfigLocation,
    s3: &aws_sdk_s3::Client,
) -> Result<String, SettingsError> {
    let read_err = |reason: String| SettingsError::ReadConfig {
        location: location.to_string(),
        reason,
    };
    match location {
        ConfigLocation::File(path) => tokio::fs::read_to_string(path)
            .await
            .map_err(|e| read_err(e.to_string())),
        ConfigLocation::S3 { bucket, key } => {
            let object = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| read_err(aws_sdk_s3::error::DisplayErrorContext(&e).to_string()))?;
            let bytes = object
                .body
                .collect()
                .await
                .map_err(|e| read_err(e.to_string()))?
                .into_bytes();
            String::from_utf8(bytes.to_vec()).map_err(|e| read_err(e.to_string()))
        }
    }
}

/// The Sigma rule files (`*.yml`, `*.yaml`; with `tests`, the `*.tests.json` files instead)
/// under an S3 prefix, as (`s3://bucket/key`, text), by key. A rule folder's objects are few
/// and small: they are read one after the other.
pub async fn read_rule_folder_s3(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    tests: bool,
) -> Result<Vec<(String, String)>, SettingsError> {
    let folder = format!("s3://{bucket}/{prefix}");
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| SettingsError::ReadConfig {
            location: folder.clone(),
            reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
        })?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let wanted = if tests {
                key.ends_with(".tests.json")
            } else {
                key.ends_with(".yml") || key.ends_with(".yaml")
            };
            if wanted {
                keys.push(key.to_owned());
            }
        }
    }
    keys.sort();
    let mut files = Vec::with_capacity(keys.len());
    for key in keys {
        let location = ConfigLocation::S3 {
            bucket: bucket.to_owned(),
            key,
        };
        let text = read_location(&location, s3).await?;
        files.push((location.to_string(), text));
    }
    Ok(files)
}

/// `s3://bucket/key` or a path.
pub fn parse_location(value: &str) -> Option<ConfigLocation> {
    match value.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, key) = rest.split_once('/')?;
            (!bucket.is_empty() && !key.is_empty()).then(|| ConfigLocation::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            })
        }
        None => Some(ConfigLocation::File(PathBuf::from(value))),
    }
}

/// (bucket, prefix) of `s3://bucket/prefix` (the prefix may be empty: the whole bucket).
pub fn s3_folder(value: &str) -> Option<(String, String)> {
    let rest = value.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_owned(), prefix.to_owned()))
}

/// The bucket of an `s3://bucket/key` object name.
pub fn bucket_of(object: &str) -> Option<&str> {
    object
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .map(|(bucket, _)| bucket)
        .filter(|b| !b.is_empty())
}

/// Quarantines each document under a prefix of the bucket its object came from (the log
/// bucket), for deployments that set no `QUARANTINE_BUCKET`.
struct ObjectBucketQuarantine {
    client: aws_sdk_s3::Client,
    prefix: String,
}

impl Quarantine for ObjectBucketQuarantine {
    fn put<'a>(
        &'a self,
        doc: &'a QuarantinedDocument<'a>,
    ) -> BoxFuture<'a, Result<String, QuarantineError>> {
        Box::pin(async move {
            let Some(bucket) = bucket_of(&doc.origin.object) else {
                return Err(QuarantineError::S3 {
                    bucket: String::new(),
                    key: crate::sink::quarantine::entry_name(doc),
                    reason: format!(
                        "{} is not an S3 object and QUARANTINE_BUCKET is not set",
                        doc.origin.object
                    ),
                });
            };
            S3Quarantine::new(self.client.clone(), bucket, &self.prefix)
                .put(doc)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)], layer: bool) -> Result<LambdaSettings, SettingsError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LambdaSettings::from_lookup(|n| vars.get(n).cloned(), |_| layer)
    }

    #[test]
    fn defaults() {
        let s = settings(&[], false).expect("defaults");
        assert_eq!(s.handler, HandlerSettings::default());
        assert_eq!(s.quarantine_bucket, None);
        assert_eq!(s.quarantine_prefix, "quarantine/");
        assert_eq!(s.user_config, None);
        assert_eq!(s.exclusions, None);
        assert_eq!(s.organization, None);
        let s = settings(&[], true).expect("layer file");
        assert_eq!(
            s.user_config,
            Some(ConfigLocation::File(PathBuf::from("/opt/user.ini")))
        );
        assert_eq!(
            s.exclusions,
            Some(ConfigLocation::File(PathBuf::from(
                "/opt/exclude_log_patterns.csv"
            )))
        );
    }

    #[test]
    fn values_from_the_environment() {
        let s = settings(
            &[
                ("LOADER_CONCURRENCY", "8"),
                ("LOADER_CHUNK_DOCUMENTS", "100"),
                ("LOADER_CHUNK_BYTES", "1048576"),
                ("QUARANTINE_BUCKET", "logs"),
                ("QUARANTINE_PREFIX", "rejected/"),
                ("LOADER_CONFIG", "s3://config-bucket/loader/user.ini"),
                ("ORGANIZATION_ID", "o-abc123defg"),
            ],
            true,
        )
        .expect("valid");
        assert_eq!(
            s.organization.as_ref().map(OrganizationId::as_str),
            Some("o-abc123defg")
        );
        assert_eq!(s.handler.concurrency, 8);
        assert_eq!(s.handler.chunk.max_docs, 100);
        assert_eq!(s.handler.chunk.max_bytes, 1 << 20);
        assert_eq!(s.quarantine_bucket.as_deref(), Some("logs"));
        assert_eq!(s.quarantine_prefix, "rejected/");
        assert_eq!(
            s.user_config,
            Some(ConfigLocation::S3 {
                bucket: "config-bucket".into(),
                key: "loader/user.ini".into()
            })
        );
        // An empty value means the default.
        let s = settings(
            &[("QUARANTINE_BUCKET", ""), ("LOADER_CONCURRENCY", " ")],
            false,
        )
        .expect("valid");
        assert_eq!(s.quarantine_bucket, None);
        assert_eq!(s.handler.concurrency, 4);
    }

    #[test]
    fn alert_topic_and_rule_folders_from_the_environment() {
        let s = settings(
            &[
                (
                    "ALERT_TOPIC_ARN",
                    "arn:aws:sns:eu-west-1:111122223333:alerts",
                ),
                ("ALERT_MIN_LEVEL", "Critical"),
                ("ALERT_MAX_PER_MINUTE", "30"),
                ("LOADER_RULES_LOCATION", "s3://rules/sigma/, s3://more"),
            ],
            false,
        )
        .expect("valid");
        let alerts = s.alerts.expect("alerts");
        assert_eq!(
            (alerts.min_level.as_str(), alerts.max_per_minute),
            ("critical", 30)
        );
        assert_eq!(
            s.rule_folders,
            [
                ("rules".to_owned(), "sigma/".to_owned()),
                ("more".to_owned(), String::new())
            ]
        );
        assert!(settings(&[], false).expect("valid").alerts.is_none());
        for (name, value) in [
            ("ALERT_MIN_LEVEL", "severe"),
            ("ALERT_MAX_PER_MINUTE", "many"),
            ("LOADER_RULES_LOCATION", "/opt/rules"),
        ] {
            let mut env = vec![("ALERT_TOPIC_ARN", "arn:aws:sns:eu-west-1:1:a")];
            env.push((name, value));
            let e = settings(&env, false).expect_err(name).to_string();
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("LOADER_CONCURRENCY", "0"),
            ("LOADER_CHUNK_BYTES", "lots"),
            ("LOADER_CONFIG", "s3://only-bucket"),
            ("LOADER_EXCLUSIONS", "s3://"),
            ("ORGANIZATION_ID", "111122223333"),
        ] {
            let err = settings(&[(name, value)], false)
                .expect_err(name)
                .to_string();
            assert!(err.contains(name) && err.contains(value), "{err}");
        }
    }

    #[test]
    fn buckets_of_object_names() {
        assert_eq!(bucket_of("s3://logs/AWSLogs/x"), Some("logs"));
        assert_eq!(bucket_of("/tmp/x"), None);
        assert_eq!(bucket_of("s3:///x"), None);
    }

    #[tokio::test]
    async fn the_user_file_is_read_over_the_built_in_types() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("user.ini");
        std::fs::write(
            &path,
            "[apache]\ns3_key = /apache/\nfile_format = text\nindex_name = log-apache\n",
        )
        .expect("write");
        let s = settings(&[("LOADER_CONFIG", &path.display().to_string())], false).expect("valid");
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .build();
        let config = s
            .load_config(&aws_sdk_s3::Client::from_conf(conf.clone()))
            .await
            .expect("config");
        assert!(config.get("apache").is_some());
        assert!(config.get("cloudtrail").is_some());

        let missing = settings(&[("LOADER_CONFIG", "/nonexistent/user.ini")], false)
            .expect("valid")
            .load_config(&aws_sdk_s3::Client::from_conf(conf))
            .await
            .expect_err("missing file")
            .to_string();
        assert!(missing.contains("/nonexistent/user.ini"), "{missing}");
    }

    #[tokio::test]
    async fn exclusion_rules_apply_to_the_pipeline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("exclude_log_patterns.csv");
        std::fs::write(
            &path,
            "log_type,field,pattern,pattern_type,comment\n\
             cloudtrail,eventName,GetObject,text,noisy\n",
        )
        .expect("write");
        let s =
            settings(&[("LOADER_EXCLUSIONS", &path.display().to_string())], false).expect("valid");
        let aws = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client = shared::aws::s3_client(&aws);
        let pipeline = s.load_pipeline(&aws, &client).await.expect("pipeline");
        assert_eq!(pipeline.exclusions().for_type("cloudtrail").len(), 1);
        assert_eq!(pipeline.organization(), None);
        let with_org = settings(
            &[
                ("LOADER_EXCLUSIONS", &path.display().to_string()),
                ("ORGANIZATION_ID", "o-abc123defg"),
            ],
            false,
        )
        .expect("valid")
        .load_pipeline(&aws, &client)
        .await
        .expect("pipeline");
        assert_eq!(
            with_org.organization().map(OrganizationId::as_str),
            Some("o-abc123defg")
        );

        std::fs::write(&path, "log_type,field,pattern,pattern_type,comment\nx,y\n").expect("write");
        let err = s
            .load_pipeline(&aws, &client)
            .await
            .expect_err("malformed row")
            .to_string();
        assert!(err.contains("exclude_log_patterns.csv"), "{err}");
    }
}
