//! `loader ioc update`: the threat feeds of [`crate::enrich::feed_update`], from the command line.

use super::CliError;
use crate::enrich::feed_update::{self, FeedList, FeedOutcome};
use crate::enrich::files::Location;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The feeds to fetch: a TOML file of `[[feed]]` tables (`name`, `url`, optional `format`).
    #[arg(long, value_name = "FILE")]
    pub feeds: PathBuf,
    /// Where to put them (what `THREAT_INTEL_FEEDS` names): a folder or `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub to: String,
}

pub fn run(args: &UpdateArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let name = args.feeds.display().to_string();
    let text = std::fs::read_to_string(&args.feeds).map_err(|source| CliError::Read {
        path: name.clone(),
        source,
    })?;
    let list = FeedList::parse(&name, &text).map_err(|e| CliError::BadArgument {
        name: "--feeds",
        value: name.clone(),
        reason: e.to_string(),
    })?;
    let location = Location::parse(&args.to);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let outcomes = runtime.block_on(async {
        let s3 = location.s3_client().await;
        feed_update::update(&list, &location, s3.as_ref()).await
    });
    let mut failed = Vec::new();
    for outcome in outcomes {
        match outcome {
            FeedOutcome::Installed {
                name,
                indicators,
                target,
            } => writeln!(out, "{name}: {indicators} indicators -> {target}"),
            FeedOutcome::Failed { name, reason } => {
                failed.push(name.clone());
                writeln!(out, "{name}: FAILED: {reason} (the previous file stays)")
            }
        }
        .map_err(CliError::Write)?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::FeedsFailed(failed.join(", ")))
    }
}
