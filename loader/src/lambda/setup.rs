//! `loader setup` as a CloudFormation custom resource of the central stack: the function that
//! can reach the cluster (and is mapped in its access control) prepares it at every
//! deployment of a new loader version, before the queue starts feeding it.
//!
//! Create and Update apply the content, Delete leaves everything in place (templates and
//! policies of indices that keep their data). The answer is sent in every case: FAILED when
//! the properties are wrong, the cluster cannot be reached, or nothing could be applied;
//! SUCCESS naming the failures when only some artifacts failed (a re-deployment or `loader
//! setup` finishes them), so one refused template never rolls the whole stack back.
//!
//! Properties (strings, as CloudFormation passes them): `Enabled` (`false` answers SUCCESS
//! without doing anything), `Shards`, `Replicas`, `RefreshInterval`, `RetentionDays`
//! (`DAYS` or `TYPE=DAYS` entries separated by commas), `Skip` (`templates`, `retention`,
//! `dashboards`, separated by commas), `DashboardsEndpoint` (empty: `<endpoint>/_dashboards`
//! for Amazon OpenSearch Service, none elsewhere; `none`: no dashboards), `AlertTopicArn` and
//! `AlertRoleArn` (the SNS topic the threshold rules' monitors send to, through a
//! Notifications channel, and the role OpenSearch publishes with), `MonitorIntervalMinutes`.
//! Skip also takes `monitors`. Any other property
//! (the code version) only makes CloudFormation send an Update.

use crate::config::Config;
use crate::content::{Content, Options};
use crate::rules::RuleSet;
use crate::rules::monitors::MonitorOptions;
use crate::setup::options::{self, Part};
use crate::setup::{self, Http, Report, Targets};
use crate::sink::{OpenSearchTransport, SinkConfig};
use serde_json::{Value, json};
use shared::cfn::{Responder, Response, ResponseError, Status};
use std::sync::Arc;

/// Whether an event is a CloudFormation custom resource request.
pub fn is_custom_resource(event: &Value) -> bool {
    shared::cfn::is_custom_resource(event)
}

/// The settings a custom resource gives.
#[derive(Debug, Clone, PartialEq)]
pub struct SetupProperties {
    pub enabled: bool,
    pub options: Options,
    pub skip: Vec<Part>,
    /// Dashboards' URL; `None`: no saved objects.
    pub dashboards: Option<String>,
    /// Where the monitors of the threshold rules send their alerts.
    pub monitors: MonitorOptions,
    /// A role to assume for the setup (the domain's master user under fine-grained access
    /// control), so the function's own role needs only to write documents.
    pub setup_role: Option<String>,
}

/// Reads the properties of a request; the error says which one is wrong.
pub fn properties(
    event: &Value,
    config: &Config,
    endpoint: &str,
) -> Result<SetupProperties, String> {
    let props = &event["ResourceProperties"];
    let text = |name: &str| {
        props[name]
            .as_str()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .or_else(|| props[name].as_u64().map(|n| n.to_string()))
    };
    let number = |name: &str, default: u32| -> Result<u32, String> {
        match text(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("{name}: `{v}` is not a whole number")),
        }
    };
    let list = |name: &str| -> Vec<String> {
        text(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let enabled = match text("Enabled").as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => return Err(format!("Enabled: `{other}` is not true or false")),
    };
    let defaults = Options::default();
    let refresh_interval = text("RefreshInterval").unwrap_or(defaults.refresh_interval);
    options::check_refresh_interval(&refresh_interval)
        .map_err(|reason| format!("RefreshInterval: {reason}"))?;
    let retention = options::parse_retention(config, &list("RetentionDays"))
        .map_err(|reason| format!("RetentionDays: {reason}"))?;
    let skip = list("Skip")
        .iter()
        .map(|p| Part::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| format!("Skip: {reason}"))?;
    let dashboards = match text("DashboardsEndpoint").as_deref() {
        Some("none") => None,
        Some(url) => Some(url.to_owned()),
        None => default_dashboards(endpoint),
    };
    Ok(SetupProperties {
        enabled,
        options: Options {
            shards: number("Shards", defaults.shards)?,
            replicas: number("Replicas", defaults.replicas)?,
            refresh_interval,
            retention,
            snapshots: snapshot_options(&text, &number)?,
            security: crate::content::security::SecurityOptions {
                writers: list("WriterBackendRoles"),
                analysts: list("AnalystBackendRoles"),
            },
        },
        skip,
        dashboards,
        monitors: MonitorOptions {
            channel_id: None,
            sns: text("AlertTopicArn").zip(text("AlertRoleArn")),
            interval_minutes: number("MonitorIntervalMinutes", 5)?,
        },
        setup_role: text("SetupRoleArn"),
    })
}

/// `SnapshotBucket` (with `SnapshotPrefix`, `SnapshotRoleArn`, `SnapshotRegion`,
/// `SnapshotSchedule`, `SnapshotRetentionDays`); none without a bucket.
fn snapshot_options(
    text: &dyn Fn(&str) -> Option<String>,
    number: &dyn Fn(&str, u32) -> Result<u32, String>,
) -> Result<Option<crate::content::snapshots::SnapshotOptions>, String> {
    use crate::content::snapshots::{DEFAULT_KEEP_DAYS, SnapshotOptions};
    let Some(bucket) = text("SnapshotBucket") else {
        return Ok(None);
    };
    let prefix = text("SnapshotPrefix").unwrap_or_default();
    let mut options = SnapshotOptions::at(&format!("s3://{bucket}/{prefix}"))
        .map_err(|reason| format!("SnapshotBucket: {reason}"))?;
    if let Some(schedule) = text("SnapshotSchedule") {
        SnapshotOptions::check_schedule(&schedule)
            .map_err(|reason| format!("SnapshotSchedule: {reason}"))?;
        options.schedule = schedule;
    }
    options.keep_days = number("SnapshotRetentionDays", DEFAULT_KEEP_DAYS)?.max(1);
    options.role_arn = text("SnapshotRoleArn");
    options.region = text("SnapshotRegion");
    Ok(Some(options))
}

/// Amazon OpenSearch Service serves Dashboards under the domain's own endpoint.
fn default_dashboards(endpoint: &str) -> Option<String> {
    let host = endpoint
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or_default();
    host.ends_with(".es.amazonaws.com")
        .then(|| format!("{}/_dashboards", endpoint.trim_end_matches('/')))
}

#[derive(Debug, thiserror::Error)]
pub enum SetupResourceError {
    #[error(transparent)]
    Response(#[from] ResponseError),
}

impl SetupResourceError {
    pub fn kind(&self) -> &'static str {
        "CustomResourceResponseFailed"
    }
}

/// The custom resource: the cluster settings of the sink, the configuration of the pipeline.
pub struct SetupResource<R> {
    config: Config,
    sink: SinkConfig,
    aws: Option<aws_config::SdkConfig>,
    responder: R,
    /// The function's detection rules: their correlations become monitors.
    rules: Option<Arc<RuleSet>>,
}

impl<R: Responder> SetupResource<R> {
    pub fn new(
        config: Config,
        sink: SinkConfig,
        aws: Option<aws_config::SdkConfig>,
        responder: R,
    ) -> Self {
        Self {
            config,
            sink,
            aws,
            responder,
            rules: None,
        }
    }

    /// The rules whose correlations become monitors.
    pub fn with_rules(mut self, rules: Option<Arc<RuleSet>>) -> Self {
        self.rules = rules;
        self
    }

    /// Handles one request and answers CloudFormation; the error is only that the answer could
    /// not be sent.
    pub async fn handle(&self, event: &Value) -> Result<Value, SetupResourceError> {
        let (status, reason, report) = self.run(event).await;
        match status {
            Status::Success => tracing::info!(%reason, "OpenSearch setup"),
            Status::Failed => tracing::error!(%reason, "OpenSearch setup failed"),
        }
        let mut response = Response::for_request(event, "loader-setup", status, &reason);
        if let Some(report) = &report {
            for (key, value) in counts(report) {
                response.data.insert(key.to_owned(), value.to_string());
            }
        }
        let url = event["ResponseURL"].as_str().unwrap_or_default();
        self.responder.send(url, &response).await?;
        Ok(json!({"status": response.status, "reason": response.reason}))
    }

    async fn run(&self, event: &Value) -> (Status, String, Option<Report>) {
        let request = event["RequestType"].as_str().unwrap_or_default();
        match request {
            "Create" | "Update" => {}
            "Delete" => {
                return (
                    Status::Success,
                    "templates, policies and dashboards are left in place with the indices".into(),
                    None,
                );
            }
            other => {
                return (
                    Status::Failed,
                    format!("unknown RequestType `{other}`"),
                    None,
                );
            }
        }
        let props = match properties(event, &self.config, &self.sink.endpoint) {
            Ok(props) => props,
            Err(reason) => return (Status::Failed, reason, None),
        };
        if !props.enabled {
            return (Status::Success, "setup is off (Enabled=false)".into(), None);
        }
        let mut skip = props.skip.clone();
        if setup::is_serverless(&self.sink) {
            skip.push(Part::Retention);
        }
        let content = match Content::bundled() {
            Ok(c) => c,
            Err(e) => return (Status::Failed, e.to_string(), None),
        };
        // The setup role's credentials when there is one, the function's own otherwise.
        let aws = match (&props.setup_role, &self.aws) {
            (Some(role), Some(base)) => Some(
                shared::aws::assumed_role_config(base, role, "org-security-logs-setup", None).await,
            ),
            _ => self.aws.clone(),
        };
        let cluster = match OpenSearchTransport::connect(&self.sink, aws.as_ref()).await {
            Ok(c) => c,
            Err(e) => return (Status::Failed, format!("OpenSearch: {e}"), None),
        };
        let dashboards = match &props.dashboards {
            None => None,
            Some(url) => match setup::dashboards_client(&self.sink, url, aws.as_ref()).await {
                Ok(d) => Some(d),
                Err(e) => return (Status::Failed, format!("Dashboards: {e}"), None),
            },
        };
        if dashboards.is_none() {
            skip.push(Part::Dashboards);
        }
        let detections = self.rules.as_deref().map(|rules| options::Detections {
            rules,
            monitors: props.monitors.clone(),
        });
        let artifacts = match options::artifacts(
            &self.config,
            &content,
            &props.options,
            &skip,
            detections.as_ref(),
        ) {
            Ok(a) => a,
            Err(e) => return (Status::Failed, e.to_string(), None),
        };
        let report = setup::apply(
            &artifacts,
            &Targets {
                cluster: Some(&cluster as &dyn Http),
                dashboards: dashboards.as_ref().map(|d| d as &dyn Http),
                dry_run: false,
            },
        )
        .await;
        for line in report.to_string().lines() {
            tracing::info!(line, "setup");
        }
        let failed = report.failed();
        let status = if failed > 0 && failed == report.entries.len() {
            Status::Failed
        } else {
            Status::Success
        };
        let mut reason = report.summary();
        let failures: Vec<String> = report
            .entries
            .iter()
            .filter_map(|e| match &e.outcome {
                setup::Outcome::Failed(why) => {
                    Some(format!("{} {}: {why}", e.kind.label(), e.name))
                }
                _ => None,
            })
            .take(5)
            .collect();
        if !failures.is_empty() {
            reason.push_str("; ");
            reason.push_str(&failures.join("; "));
        }
        (status, reason, Some(report))
    }
}

fn counts(report: &Report) -> [(&'static str, usize); 4] {
    [
        ("Created", report.count(|o| *o == setup::Outcome::Created)),
        ("Updated", report.count(|o| *o == setup::Outcome::Updated)),
        (
            "Unchanged",
            report.count(|o| *o == setup::Outcome::Unchanged),
        ),
        ("Failed", report.failed()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(props: Value) -> Value {
        json!({"RequestType": "Create", "ResponseURL": "http://x", "ResourceProperties": props})
    }

    #[test]
    fn properties_default_like_the_command_line() {
        let config = Config::builtin().expect("config");
        let p = properties(
            &event(json!({"ServiceToken": "arn", "LoaderCodeKey": "v1/loader.zip"})),
            &config,
            "https://search-logs-abc.eu-west-1.es.amazonaws.com",
        )
        .expect("valid");
        assert!(p.enabled);
        assert_eq!(p.options, Options::default());
        assert!(p.skip.is_empty());
        assert_eq!(
            p.dashboards.as_deref(),
            Some("https://search-logs-abc.eu-west-1.es.amazonaws.com/_dashboards")
        );
        // Elsewhere there is no Dashboards URL to guess.
        let p = properties(
            &event(json!({})),
            &config,
            "https://opensearch.internal:9200",
        )
        .expect("valid");
        assert_eq!(p.dashboards, None);
    }

    #[test]
    fn security_properties_map_the_loader_and_analysts_and_name_the_setup_role() {
        let config = Config::builtin().expect("config");
        let p = properties(
            &event(
                json!({"WriterBackendRoles": "arn:aws:iam::111122223333:role/loader",
                "AnalystBackendRoles": "arn:aws:iam::111122223333:role/analyst, analysts",
                "SetupRoleArn": "arn:aws:iam::111122223333:role/admin"}),
            ),
            &config,
            "https://x",
        )
        .expect("valid");
        assert_eq!(
            p.options.security.writers,
            ["arn:aws:iam::111122223333:role/loader"]
        );
        assert_eq!(
            p.options.security.analysts,
            ["arn:aws:iam::111122223333:role/analyst", "analysts"]
        );
        assert_eq!(
            p.setup_role.as_deref(),
            Some("arn:aws:iam::111122223333:role/admin")
        );
        let p =
            properties(&event(json!({"SetupRoleArn": ""})), &config, "https://x").expect("valid");
        assert!(p.options.security.is_empty());
        assert_eq!(p.setup_role, None);
    }

    #[test]
    fn snapshot_properties_name_the_bucket_role_and_days() {
        let config = Config::builtin().expect("config");
        let p = properties(
            &event(
                json!({"SnapshotBucket": "snaps-111122223333", "SnapshotPrefix": "opensearch",
                "SnapshotRoleArn": "arn:aws:iam::111122223333:role/snapshots",
                "SnapshotRetentionDays": "45", "SnapshotSchedule": "30 2 * * *"}),
            ),
            &config,
            "https://search-x.eu-west-1.es.amazonaws.com",
        )
        .expect("valid");
        let s = p.options.snapshots.expect("snapshots");
        assert_eq!(
            (s.bucket.as_str(), s.base_path.as_str()),
            ("snaps-111122223333", "opensearch")
        );
        assert_eq!(
            s.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/snapshots")
        );
        assert_eq!((s.keep_days, s.schedule.as_str()), (45, "30 2 * * *"));
        // No bucket, no snapshots; a schedule that is not cron is refused by name.
        let p =
            properties(&event(json!({"SnapshotBucket": ""})), &config, "https://x").expect("valid");
        assert_eq!(p.options.snapshots, None);
        let err = properties(
            &event(json!({"SnapshotBucket": "b", "SnapshotSchedule": "daily"})),
            &config,
            "https://x",
        )
        .expect_err("not cron");
        assert!(err.starts_with("SnapshotSchedule:"), "{err}");
    }

    #[test]
    fn properties_are_read_and_checked() {
        let config = Config::builtin().expect("config");
        let p = properties(
            &event(
                json!({"Shards": "3", "Replicas": "0", "RefreshInterval": "5s",
                "RetentionDays": "400, vpcflowlogs=30", "Skip": "dashboards",
                "DashboardsEndpoint": "none", "Enabled": "true"}),
            ),
            &config,
            "https://search-x.eu-west-1.es.amazonaws.com",
        )
        .expect("valid");
        assert_eq!((p.options.shards, p.options.replicas), (3, 0));
        assert_eq!(p.options.refresh_interval, "5s");
        assert_eq!(p.options.retention.get("*"), Some(&400));
        assert_eq!(p.options.retention.get("vpcflowlogs"), Some(&30));
        assert_eq!(p.skip, [Part::Dashboards]);
        assert_eq!(p.dashboards, None);
        assert_eq!(p.monitors.destination(), None);
        let p = properties(
            &event(json!({"AlertTopicArn": "arn:aws:sns:eu-west-1:1:alerts",
                "AlertRoleArn": "arn:aws:iam::1:role/publish", "MonitorIntervalMinutes": "10",
                "Skip": "monitors"})),
            &config,
            "https://x",
        )
        .expect("valid");
        assert_eq!(
            p.monitors.sns,
            Some((
                "arn:aws:sns:eu-west-1:1:alerts".to_owned(),
                "arn:aws:iam::1:role/publish".to_owned()
            ))
        );
        assert_eq!(p.monitors.destination(), Some("org-security-logs-alerts"));
        assert_eq!(p.monitors.interval_minutes, 10);
        assert_eq!(p.skip, [Part::Monitors]);
        for (props, named) in [
            (json!({"Shards": "many"}), "Shards"),
            (json!({"RefreshInterval": "soon"}), "RefreshInterval"),
            (json!({"RetentionDays": "nope=3"}), "RetentionDays"),
            (json!({"Skip": "indices"}), "Skip"),
            (json!({"Enabled": "maybe"}), "Enabled"),
            (
                json!({"MonitorIntervalMinutes": "often"}),
                "MonitorIntervalMinutes",
            ),
        ] {
            let err = properties(&event(props), &config, "https://x").expect_err(named);
            assert!(err.starts_with(named), "{err}");
        }
    }
}
