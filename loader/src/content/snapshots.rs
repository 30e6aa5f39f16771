//! Snapshots, so an index the retention policy deleted can be restored: a manual snapshot
//! repository in S3 and a snapshot management policy that takes a snapshot of the log and
//! alert indices every day and deletes those older than the days kept (never fewer than a
//! week's worth).
//!
//! On Amazon OpenSearch Service the repository names a role the domain assumes to reach the
//! bucket, and whoever registers it needs `iam:PassRole` on that role (the central stack gives
//! both to the loader).

use super::{Artifact, ArtifactKind, NAME_PREFIX};
use serde_json::{Value, json};

/// Where and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// The repository's name on the cluster.
    pub repository: String,
    pub bucket: String,
    /// The prefix in the bucket (no leading or trailing slash; may be empty).
    pub base_path: String,
    /// The bucket's region, when the cluster's own region is not it.
    pub region: Option<String>,
    /// The role OpenSearch Service assumes to write to the bucket.
    pub role_arn: Option<String>,
    /// Cron expression (minute hour day month weekday, UTC) of the daily snapshot.
    pub schedule: String,
    /// Snapshots older than this are deleted (at least [`MIN_KEPT`] remain).
    pub keep_days: u32,
}

/// Snapshots always kept, whatever their age: a cluster that stopped taking them keeps its
/// last week.
pub const MIN_KEPT: u32 = 7;
pub const DEFAULT_SCHEDULE: &str = "0 3 * * *";
pub const DEFAULT_KEEP_DAYS: u32 = 30;

impl SnapshotOptions {
    /// From `s3://bucket/prefix`, with the defaults for the rest.
    pub fn at(location: &str) -> Result<Self, String> {
        let rest = location
            .trim()
            .strip_prefix("s3://")
            .ok_or_else(|| format!("`{location}` is not an s3://bucket/prefix location"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("`{location}` names no bucket"));
        }
        Ok(Self {
            repository: NAME_PREFIX.to_owned(),
            bucket: bucket.to_owned(),
            base_path: prefix.trim_matches('/').to_owned(),
            region: None,
            role_arn: None,
            schedule: DEFAULT_SCHEDULE.to_owned(),
            keep_days: DEFAULT_KEEP_DAYS,
        })
    }

    /// A cron expression of five fields, as snapshot management takes it.
    pub fn check_schedule(schedule: &str) -> Result<(), String> {
        let fields = schedule.split_whitespace().count();
        if fields == 5 {
            Ok(())
        } else {
            Err(format!(
                "`{schedule}` is not a cron expression of five fields (minute hour day month weekday), such as {DEFAULT_SCHEDULE}"
            ))
        }
    }

    /// The name of the snapshot management policy.
    pub fn policy_name(&self) -> String {
        format!("{}-daily", self.repository)
    }
}

/// The repository, then the policy that uses it. Settings are strings, as the cluster answers
/// them, so what was applied compares equal to what is read back.
pub fn artifacts(options: &SnapshotOptions) -> Vec<Artifact> {
    // No `server_side_encryption`: it would ask S3 for its own keys on every file, over the
    // bucket's default encryption with the customer key.
    let mut settings = json!({
        "bucket": options.bucket,
        "base_path": options.base_path,
    });
    if let Some(region) = &options.region {
        settings["region"] = Value::String(region.clone());
    }
    if let Some(role) = &options.role_arn {
        settings["role_arn"] = Value::String(role.clone());
    }
    let repository = Artifact {
        kind: ArtifactKind::SnapshotRepository,
        name: options.repository.clone(),
        body: json!({"type": "s3", "settings": settings}),
        existing: None,
    };
    let indices = format!("log-*,{}-*", crate::rules::alert::ALERT_INDEX);
    let policy = Artifact {
        kind: ArtifactKind::SnapshotPolicy,
        name: options.policy_name(),
        body: json!({
            "description": format!(
                "Daily snapshot of the log and alert indices into {}; kept {} days (at least {MIN_KEPT} snapshots)",
                options.repository, options.keep_days
            ),
            "creation": {
                "schedule": {"cron": {"expression": options.schedule, "timezone": "UTC"}},
                "time_limit": "1h",
            },
            "deletion": {
                "schedule": {"cron": {"expression": options.schedule, "timezone": "UTC"}},
                "condition": {
                    "max_age": format!("{}d", options.keep_days),
                    "min_count": MIN_KEPT,
                },
                "time_limit": "1h",
            },
            "snapshot_config": {
                "date_format": "yyyy-MM-dd-HH-mm",
                "timezone": "UTC",
                "indices": indices,
                "repository": options.repository,
                "ignore_unavailable": "true",
                "include_global_state": "false",
                "partial": "true",
            },
            "enabled": true,
        }),
        existing: None,
    };
    vec![repository, policy]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_names_the_bucket_and_prefix() {
        let o = SnapshotOptions::at("s3://snaps-1/opensearch/daily/").expect("valid");
        assert_eq!(
            (o.bucket.as_str(), o.base_path.as_str()),
            ("snaps-1", "opensearch/daily")
        );
        assert_eq!(o.repository, "org-security-logs");
        let o = SnapshotOptions::at("s3://snaps-1").expect("valid");
        assert_eq!(o.base_path, "");
        assert!(SnapshotOptions::at("snaps-1/x").is_err());
        assert!(SnapshotOptions::at("s3:///x").is_err());
        assert!(SnapshotOptions::check_schedule("0 3 * * *").is_ok());
        assert!(SnapshotOptions::check_schedule("daily").is_err());
    }

    #[test]
    fn the_policy_snapshots_logs_and_alerts_into_the_repository_and_keeps_a_floor() {
        let mut o = SnapshotOptions::at("s3://snaps/os").expect("valid");
        o.role_arn = Some("arn:aws:iam::111122223333:role/snapshots".into());
        o.keep_days = 45;
        let a = artifacts(&o);
        assert_eq!(a[0].kind, ArtifactKind::SnapshotRepository);
        assert_eq!(a[0].body["type"], "s3");
        assert_eq!(a[0].body["settings"]["bucket"], "snaps");
        assert_eq!(a[0].body["settings"]["base_path"], "os");
        assert_eq!(
            a[0].body["settings"]["role_arn"],
            "arn:aws:iam::111122223333:role/snapshots"
        );
        assert!(a[0].body["settings"].get("region").is_none());
        assert!(
            a[0].body["settings"]
                .get("server_side_encryption")
                .is_none(),
            "the bucket's customer key encrypts the snapshots"
        );
        assert_eq!(a[1].kind, ArtifactKind::SnapshotPolicy);
        assert_eq!(a[1].name, "org-security-logs-daily");
        let p = &a[1].body;
        assert_eq!(p["snapshot_config"]["repository"], "org-security-logs");
        assert_eq!(p["snapshot_config"]["indices"], "log-*,alert-*");
        assert_eq!(p["deletion"]["condition"]["max_age"], "45d");
        assert_eq!(p["deletion"]["condition"]["min_count"], MIN_KEPT);
        assert_eq!(p["creation"]["schedule"]["cron"]["expression"], "0 3 * * *");
    }
}
