//! `loader setup`: prepares a cluster (and Dashboards) for the documents, or writes what it
//! would apply as files.

use super::{CliError, load_config, pipeline::read_text};
use crate::content::{self, Artifact, ArtifactKind, Content, Options};
use crate::rules::monitors::MonitorOptions;
use crate::setup::options::{self, Part};
use crate::setup::{self, Http, Report, Targets};
use crate::sink::{Auth, OpenSearchTransport};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The command line of `loader setup`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The cluster to prepare.
    #[arg(long, value_name = "URL")]
    pub opensearch: Option<String>,
    /// OpenSearch Dashboards (on Amazon OpenSearch Service `https://<domain>/_dashboards`),
    /// for the saved objects; same authentication as the cluster.
    #[arg(long, value_name = "URL", requires = "opensearch")]
    pub dashboards: Option<String>,
    /// Read what exists and print the requests that would change it; write nothing.
    /// Without --opensearch, every request.
    #[arg(long)]
    pub dry_run: bool,
    /// Also write every artifact as files under this folder (templates and policies as
    /// JSON, dashboards as importable NDJSON).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A user configuration: its types get templates, retention and index patterns too.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A field table of a type (`<type>.fields`: `<field> <type>` per line), added to the
    /// bundled one of that type. Repeatable.
    #[arg(long = "fields", value_name = "FILE")]
    pub fields: Vec<PathBuf>,
    /// A dashboard file (TOML, as the bundled ones); one with a bundled id replaces it.
    /// Repeatable.
    #[arg(long = "dashboard", value_name = "FILE")]
    pub dashboard_files: Vec<PathBuf>,
    /// Primary shards of every new index.
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Replicas of every new index.
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    /// How often new documents become searchable.
    #[arg(long, default_value = "30s")]
    pub refresh_interval: String,
    /// Days to keep: `DAYS` for every type, `TYPE=DAYS` for one (over `retention_days` of
    /// the configuration; 0 keeps for ever). Repeatable.
    #[arg(long = "retention-days", value_name = "[TYPE=]DAYS")]
    pub retention: Vec<String>,
    /// Leave out a part. Repeatable.
    #[arg(long, value_enum)]
    pub skip: Vec<Part>,
    /// Read the OpenSearch basic-auth credentials from this Secrets Manager secret.
    #[arg(long, value_name = "ARN", requires = "opensearch")]
    pub opensearch_secret_arn: Option<String>,
    /// The rules whose thresholds and sequences become Alerting monitors (the bundled pack
    /// and `--rules` folders).
    #[command(flatten)]
    pub rules: super::rules::RuleArgs,
    /// An existing Notifications channel the monitors send their alerts to.
    #[arg(long, value_name = "ID", conflicts_with = "alert_topic")]
    pub alert_channel: Option<String>,
    /// An SNS topic for the monitors' alerts: a Notifications channel of it is made (with
    /// `--alert-role`, the role OpenSearch publishes with).
    #[arg(long, value_name = "ARN", requires = "alert_role")]
    pub alert_topic: Option<String>,
    #[arg(long, value_name = "ARN", requires = "alert_topic")]
    pub alert_role: Option<String>,
    /// Minutes between two runs of a monitor.
    #[arg(long, value_name = "MINUTES", default_value_t = 5)]
    pub monitor_interval: u32,
    /// Register this S3 location as the snapshot repository and snapshot the log and alert
    /// indices there every day (snapshot management), so indices deleted by retention can be
    /// restored.
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub snapshot_repository: Option<String>,
    /// The role Amazon OpenSearch Service assumes to write the snapshots (the caller needs
    /// iam:PassRole on it).
    #[arg(long, value_name = "ARN", requires = "snapshot_repository")]
    pub snapshot_role: Option<String>,
    /// The bucket's region, when it is not the cluster's.
    #[arg(long, value_name = "REGION", requires = "snapshot_repository")]
    pub snapshot_region: Option<String>,
    /// When the daily snapshot is taken (cron, UTC).
    #[arg(long, value_name = "CRON", default_value = crate::content::snapshots::DEFAULT_SCHEDULE)]
    pub snapshot_schedule: String,
    /// On a cluster with fine-grained access control: a backend role (the loader's IAM role
    /// ARN) mapped to the role that may write only the log and alert indices. Repeatable.
    #[arg(long, value_name = "BACKEND_ROLE")]
    pub map_writer: Vec<String>,
    /// A backend role (an IAM role ARN, a SAML group) mapped to the read-only analyst role.
    /// Repeatable.
    #[arg(long, value_name = "BACKEND_ROLE")]
    pub map_analyst: Vec<String>,
    /// Days snapshots are kept (at least seven are always kept).
    #[arg(long, value_name = "DAYS", default_value_t = crate::content::snapshots::DEFAULT_KEEP_DAYS)]
    pub snapshot_keep_days: u32,
}

/// The snapshot settings of the command line, checked.
fn snapshot_options(
    args: &Args,
) -> Result<Option<crate::content::snapshots::SnapshotOptions>, CliError> {
    use crate::content::snapshots::SnapshotOptions;
    let Some(location) = &args.snapshot_repository else {
        return Ok(None);
    };
    let bad = |name, value: &str, reason| CliError::BadArgument {
        name,
        value: value.to_owned(),
        reason,
    };
    let mut options =
        SnapshotOptions::at(location).map_err(|r| bad("--snapshot-repository", location, r))?;
    SnapshotOptions::check_schedule(&args.snapshot_schedule)
        .map_err(|r| bad("--snapshot-schedule", &args.snapshot_schedule, r))?;
    options.schedule = args.snapshot_schedule.clone();
    options.keep_days = args.snapshot_keep_days.max(1);
    options.role_arn = args.snapshot_role.clone();
    options.region = args.snapshot_region.clone();
    Ok(Some(options))
}

/// Runs `loader setup`: the report goes to `out`.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<(), CliError> {
    let config = load_config(args.config.as_deref())?;
    let mut content = Content::bundled()?;
    for path in &args.fields {
        let text = read(path)?;
        content.add_type_fields(&path.display().to_string(), &text)?;
    }
    for path in &args.dashboard_files {
        let text = read(path)?;
        content.add_dashboard(&path.display().to_string(), &text)?;
    }
    options::check_refresh_interval(&args.refresh_interval).map_err(|reason| {
        CliError::BadArgument {
            name: "--refresh-interval",
            value: args.refresh_interval.clone(),
            reason,
        }
    })?;
    let retention = options::parse_retention(&config, &args.retention).map_err(|reason| {
        CliError::BadArgument {
            name: "--retention-days",
            value: args.retention.join(" "),
            reason,
        }
    })?;
    let options = Options {
        shards: args.shards,
        replicas: args.replicas,
        refresh_interval: args.refresh_interval.clone(),
        retention,
        snapshots: snapshot_options(args)?,
        security: crate::content::security::SecurityOptions {
            writers: args.map_writer.clone(),
            analysts: args.map_analyst.clone(),
        },
    };
    let mut skip = args.skip.clone();
    let cluster_config = match &args.opensearch {
        Some(endpoint) => Some(super::sink_config(
            endpoint,
            args.opensearch_secret_arn.as_deref(),
        )?),
        None => None,
    };
    if cluster_config.as_ref().is_some_and(setup::is_serverless) && !skip.contains(&Part::Retention)
    {
        writeln!(
            out,
            "OpenSearch Serverless has no ISM: retention is left to the collection's data lifecycle policy"
        )
        .map_err(CliError::Write)?;
        skip.push(Part::Retention);
    }
    let rules = super::rules::load_rules(&config, &args.rules)?;
    let detections = rules.as_deref().map(|rules| options::Detections {
        rules,
        monitors: MonitorOptions {
            channel_id: args.alert_channel.clone(),
            sns: args.alert_topic.clone().zip(args.alert_role.clone()),
            interval_minutes: args.monitor_interval,
        },
    });
    let artifacts = options::artifacts(&config, &content, &options, &skip, detections.as_ref())?;

    if let Some(dir) = &args.out {
        let written = write_files(dir, &artifacts)?;
        writeln!(out, "wrote {written} file(s) under {}", dir.display())
            .map_err(CliError::Write)?;
        if cluster_config.is_none() && !args.dry_run {
            return Ok(());
        }
    }
    if cluster_config.is_none() && !args.dry_run {
        return Err(CliError::SetupNoTarget);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let report = runtime.block_on(async {
        let aws = match &cluster_config {
            Some(c) if needs_aws(&c.auth) => Some(shared::aws::sdk_config().await),
            _ => None,
        };
        let cluster = match &cluster_config {
            Some(c) => Some(OpenSearchTransport::connect(c, aws.as_ref()).await?),
            None => None,
        };
        let dashboards = match (&args.dashboards, &cluster_config) {
            (Some(url), Some(c)) => Some(setup::dashboards_client(c, url, aws.as_ref()).await?),
            _ => None,
        };
        let targets = Targets {
            cluster: cluster.as_ref().map(|c| c as &dyn Http),
            dashboards: dashboards.as_ref().map(|d| d as &dyn Http),
            dry_run: args.dry_run,
        };
        Ok::<Report, CliError>(setup::apply(&artifacts, &targets).await)
    })?;
    if args.dry_run {
        for w in &report.writes {
            let body = serde_json::to_string_pretty(&w.body).unwrap_or_default();
            writeln!(out, "{} {} {}\n{body}\n", w.method, w.target, w.path)
                .map_err(CliError::Write)?;
        }
    }
    write!(out, "{report}").map_err(CliError::Write)?;
    match report.failed() {
        0 => Ok(()),
        failed => Err(CliError::SetupPartial {
            failed,
            total: report.entries.len(),
        }),
    }
}

fn read(path: &Path) -> Result<String, CliError> {
    read_text(path).map_err(|source| CliError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn needs_aws(auth: &Auth) -> bool {
    matches!(auth, Auth::SigV4 { .. } | Auth::BasicSecret { .. })
}

/// Every artifact as a file: templates and policies as the JSON body of their request, and
/// each dashboard as an NDJSON file importable in Dashboards (Saved objects, Import) with the
/// index patterns and visualizations it needs. Returns how many files were written.
pub fn write_files(dir: &Path, artifacts: &[Artifact]) -> Result<usize, CliError> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for a in artifacts {
        let folder = match a.kind {
            ArtifactKind::ComponentTemplate => "component_templates",
            ArtifactKind::IndexTemplate => "index_templates",
            ArtifactKind::IsmPolicy => "ism_policies",
            ArtifactKind::NotificationChannel => "notification_channels",
            ArtifactKind::Monitor => "monitors",
            ArtifactKind::SnapshotRepository => "snapshot_repositories",
            ArtifactKind::SnapshotPolicy => "snapshot_policies",
            ArtifactKind::SecurityRole => "security_roles",
            ArtifactKind::SecurityRoleMapping => "role_mappings",
            ArtifactKind::SavedObject => continue,
        };
        let text = serde_json::to_string_pretty(&a.body).unwrap_or_default() + "\n";
        let file: String = a
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        files.push((dir.join(folder).join(format!("{file}.json")), text));
    }
    let objects: Vec<Artifact> = artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::SavedObject)
        .cloned()
        .collect();
    let ndjson = |list: &[&Artifact]| {
        list.iter()
            .map(|a| a.body.to_string() + "\n")
            .collect::<String>()
    };
    let patterns: Vec<&Artifact> = objects
        .iter()
        .filter(|o| o.body["type"] == "index-pattern")
        .collect();
    if !patterns.is_empty() {
        files.push((
            dir.join("dashboards").join("index-patterns.ndjson"),
            ndjson(&patterns),
        ));
    }
    for board in objects.iter().filter(|o| o.body["type"] == "dashboard") {
        let id = board.body["id"].as_str().unwrap_or_default();
        let name = id
            .strip_prefix(&format!("{}-", content::NAME_PREFIX))
            .unwrap_or(id);
        files.push((
            dir.join("dashboards").join(format!("{name}.ndjson")),
            ndjson(&content::dashboards::with_references(&objects, board)),
        ));
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(CliError::Write)?;
        }
        std::fs::write(path, text).map_err(CliError::Write)?;
    }
    Ok(files.len())
}
