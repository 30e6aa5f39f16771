//! `loader freshness`: the newest event of every source (log type × account × region) and
//! whether it went quiet (see [`crate::freshness`]). Exits 1 when a source is quiet.

use super::rules::AlertArgs;
use super::{CliError, load_config, multi_thread_runtime, sink_config};
use crate::deliver::DocumentSink;
use crate::freshness::check::{CheckSettings, check};
use crate::notify::{Notifier, NotifyingSink, sns::SnsPublisher};
use crate::sink::{BulkSink, FolderQuarantine, OpenSearchTransport};
use chrono::Utc;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// The command line of `loader freshness`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The OpenSearch endpoint the logs are loaded to (authentication and TLS from the
    /// `OPENSEARCH_*` environment).
    #[arg(long, env = "OPENSEARCH_ENDPOINT", value_name = "URL")]
    pub opensearch: String,
    /// Read the OpenSearch basic-auth credentials from this Secrets Manager secret.
    #[arg(long, value_name = "ARN")]
    pub opensearch_secret_arn: Option<String>,
    /// A user configuration: its `quiet_after` and index names count.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Sources with nothing this recent are not listed (how long a silence stays reported).
    #[arg(long, value_name = "DURATION", default_value = "14d", value_parser = humantime::parse_duration)]
    pub lookback: std::time::Duration,
    /// The indices to read (default: those of every configured type).
    #[arg(long, value_name = "PATTERNS")]
    pub index_pattern: Option<String>,
    /// Store an alert in the alert index for each quiet source not reported before (and
    /// publish it with `--alert-topic`).
    #[arg(long)]
    pub alert: bool,
    #[command(flatten)]
    pub alerts: AlertArgs,
    /// One JSON object per source instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<(), CliError> {
    let config = load_config(args.config.as_deref())?;
    let mut settings = CheckSettings::new(&config);
    settings.lookback = args.lookback;
    if let Some(pattern) = &args.index_pattern {
        settings.indices = pattern.clone();
    }
    let notify = args.alerts.settings()?;
    let runtime = multi_thread_runtime()?;
    let outcome = runtime.block_on(async {
        let cluster = sink_config(&args.opensearch, args.opensearch_secret_arn.as_deref())?;
        let aws = if args.opensearch_secret_arn.is_some() || notify.is_some() {
            Some(shared::aws::sdk_config().await)
        } else {
            None
        };
        let http = OpenSearchTransport::connect(&cluster, aws.as_ref()).await?;
        let sink: Option<Arc<dyn DocumentSink>> = if args.alert {
            // Only an alert the alert template refuses lands here; the check reports it too.
            let quarantine = Arc::new(FolderQuarantine::new(
                std::env::temp_dir().join("loader-freshness-quarantine"),
            ));
            let bulk: Arc<dyn DocumentSink> =
                Arc::new(BulkSink::connect(&cluster, quarantine).await?);
            Some(match (notify.clone(), &aws) {
                (Some(settings), Some(aws)) => Arc::new(NotifyingSink::new(
                    bulk,
                    Arc::new(Notifier::new(
                        settings,
                        Box::new(SnsPublisher::from_conf(aws)),
                    )),
                )),
                _ => bulk,
            })
        } else {
            None
        };
        check(&http, sink.as_deref(), &config, &settings, Utc::now())
            .await
            .map_err(|e| CliError::Freshness(e.to_string()))
    })?;
    if args.json {
        for a in &outcome.assessed {
            let s = &a.sighting;
            let line = serde_json::json!({
                "state": a.state.label(),
                "log_type": s.source.log_type,
                "account": s.source.account,
                "region": s.source.region,
                "newest_event": crate::pipeline::format_time(s.newest_event),
                "silent_for_seconds": a.silent_for.as_secs(),
                "quiet_after_seconds": a.quiet_after.map(|d| d.as_secs()),
                "last_loaded": s.last_loaded.map(crate::pipeline::format_time),
                "documents": s.documents,
            });
            writeln!(out, "{line}").map_err(CliError::Write)?;
        }
    } else {
        out.write_all(crate::freshness::table(&outcome.assessed).as_bytes())
            .map_err(CliError::Write)?;
        if args.alert {
            writeln!(
                out,
                "alerts: {} new, {} reported before",
                outcome.alerts_created, outcome.alerts_known
            )
            .map_err(CliError::Write)?;
        }
    }
    if let Some(failure) = outcome.alert_failures.first() {
        return Err(CliError::Freshness(format!(
            "{} alert(s) could not be stored: {failure}",
            outcome.alert_failures.len()
        )));
    }
    match outcome.quiet().count() {
        0 => Ok(()),
        quiet => Err(CliError::QuietSources(quiet)),
    }
}
