//! `loader verify`: lists objects as `loader load` does, learns the documents each yields by
//! running the pipeline again, and compares them with what the cluster or the local index
//! holds under the object's key (see [`crate::verify`]). Exits 0 only when everything matches.

use super::list::parse_s3_url;
use super::progress::Progress;
use super::run::{self, Job, Sources};
use super::sources::CliSource;
use super::{CliError, build_pipeline, multi_thread_runtime, objects_at_once, sink_config};
use crate::deliver::{
    ChunkLimits, DeliveryOutcome, LocalSource, ObjectSource, S3Source, deliver_quietly,
};
use crate::index::{LocalIndex, field_table};
use crate::pipeline::Pipeline;
use crate::provenance::OrganizationId;
use crate::sink::OpenSearchTransport;
use crate::verify::{
    DocumentStore, ExpectedSink, LocalIndexStore, ObjectCheck, OpenSearchStore, StoreError,
    VerifyReport,
};
use chrono::Utc;
use futures::StreamExt;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The command line of `loader verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Files, folders, or `s3://bucket/prefix` URLs: the objects to verify.
    #[arg(required_unless_present = "list", value_name = "PATH|S3_URL")]
    pub sources: Vec<String>,
    /// A list of objects, as for `loader load --list`.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// The bucket of plain keys in `--list`.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The OpenSearch endpoint the objects were loaded to (authentication and TLS from the
    /// `OPENSEARCH_*` environment).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "index",
        conflicts_with = "index"
    )]
    pub opensearch: Option<String>,
    /// Read the OpenSearch basic-auth credentials from this Secrets Manager secret.
    #[arg(long, value_name = "ARN", requires = "opensearch")]
    pub opensearch_secret_arn: Option<String>,
    /// The local index the objects were loaded to (`loader load ... --index DIR`).
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
    /// The indices to look in.
    #[arg(long, value_name = "PATTERN", default_value = "log-*")]
    pub index_pattern: String,
    /// Also report documents whose `@log_s3key` starts with this prefix and that no object
    /// named yields (an `s3://bucket/prefix` source is such a prefix already).
    #[arg(long, value_name = "KEY_PREFIX")]
    pub scope: Vec<String>,
    /// The user configuration the objects were loaded with.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The exclusion rules the objects were loaded with.
    #[arg(long)]
    pub exclusions: Option<PathBuf>,
    /// The organization the load was restricted to (refused objects are reported).
    #[arg(long, env = "ORGANIZATION_ID", value_name = "o-ID")]
    pub organization_id: Option<OrganizationId>,
    /// Objects checked at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<(), CliError> {
    let pipeline = Arc::new(
        build_pipeline(args.config.as_deref(), args.exclusions.as_deref())?
            .with_organization(args.organization_id.clone()),
    );
    let sources = Sources {
        args: args.sources.clone(),
        list: args.list.clone(),
        bucket: args.bucket.clone(),
        ..Sources::default()
    };
    let mut scopes = args.scope.clone();
    for arg in &args.sources {
        if let Some(Ok((_, prefix))) = parse_s3_url(arg) {
            scopes.push(prefix);
        }
    }
    let runtime = multi_thread_runtime()?;
    let report = runtime.block_on(async {
        let aws = if sources.needs_aws() || args.opensearch_secret_arn.is_some() {
            Some(shared::aws::sdk_config().await)
        } else {
            None
        };
        let store: Arc<dyn DocumentStore> = match (&args.opensearch, &args.index) {
            (Some(endpoint), _) => {
                let config = sink_config(endpoint, args.opensearch_secret_arn.as_deref())?;
                let http = OpenSearchTransport::connect(&config, aws.as_ref()).await?;
                Arc::new(
                    OpenSearchStore::open(http, &args.index_pattern)
                        .await
                        .map_err(|e| CliError::Verify(e.to_string()))?,
                )
            }
            (None, Some(dir)) => {
                let content = crate::content::Content::bundled()?;
                let index = LocalIndex::open(dir, field_table(&content))?;
                Arc::new(LocalIndexStore::new(index).map_err(|e| CliError::Verify(e.to_string()))?)
            }
            (None, None) => {
                return Err(CliError::Verify(
                    "give --opensearch URL or --index DIR".to_owned(),
                ));
            }
        };
        let s3 = aws
            .as_ref()
            .filter(|_| sources.needs_aws())
            .map(|aws| S3Source::new(shared::aws::s3_client(aws)));
        let report = verify(
            &sources,
            pipeline,
            s3,
            Arc::clone(&store),
            objects_at_once(args.concurrency),
            &scopes,
        )
        .await;
        store.close().await;
        Ok(report)
    })?;
    out.write_all(report.text().as_bytes())
        .map_err(CliError::Write)?;
    if report.success() {
        Ok(())
    } else {
        Err(CliError::NotVerified)
    }
}

/// What checking one object came to.
enum Checked {
    Compared(ObjectCheck),
    NoType,
    Unreadable(String, String),
}

/// Checks every object of `sources` against `store`, then looks for keys under `scopes` that
/// no object explains.
pub async fn verify(
    sources: &Sources,
    pipeline: Arc<Pipeline>,
    s3: Option<S3Source>,
    store: Arc<dyn DocumentStore>,
    concurrency: usize,
    scopes: &[String],
) -> VerifyReport {
    let progress = Arc::new(Progress::new());
    let (tx, rx) = mpsc::channel::<Job>(1024);
    let (problem_tx, mut problem_rx) = mpsc::unbounded_channel::<(String, String)>();
    // The listing and the reading share the one S3 client.
    let lister = s3.as_ref().map(|s| s.client().clone());
    let source: Arc<dyn ObjectSource> = Arc::new(CliSource {
        s3,
        local: LocalSource::new(),
    });
    let producer = {
        let sources = sources.clone();
        let progress = Arc::clone(&progress);
        tokio::spawn(async move {
            run::produce(
                &sources,
                lister.as_ref(),
                None,
                |_| Ok(Vec::new()),
                &tx,
                &problem_tx,
                &progress,
            )
            .await;
            progress.listing_done();
        })
    };
    let mut report = VerifyReport::default();
    let mut keys = HashSet::new();
    let mut checks = run::tokio_stream_of(rx)
        .map(|job| {
            let (pipeline, source, store) = (
                Arc::clone(&pipeline),
                Arc::clone(&source),
                Arc::clone(&store),
            );
            async move {
                let key = job.target.key.clone();
                (key, check_object(&pipeline, &*source, &*store, &job).await)
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((key, checked)) = checks.next().await {
        keys.insert(key);
        match checked {
            Checked::Compared(check) => {
                progress.object_done(check.expected, check.missing > 0 || check.extra > 0);
                report.add(check);
            }
            Checked::NoType => {
                progress.object_done(0, false);
                report.skipped += 1;
            }
            Checked::Unreadable(object, reason) => {
                progress.object_done(0, true);
                report.unreadable.push((object, reason));
            }
        }
    }
    let _ = producer.await;
    progress.finish();
    while let Ok((what, reason)) = problem_rx.try_recv() {
        report.problems.push(format!("{what}: {reason}"));
    }
    for prefix in scopes {
        match store.keys_under(prefix).await {
            Ok(found) => report
                .unexplained
                .extend(found.into_iter().filter(|(key, _)| !keys.contains(key))),
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    report
}

async fn check_object(
    pipeline: &Arc<Pipeline>,
    source: &dyn ObjectSource,
    store: &dyn DocumentStore,
    job: &Job,
) -> Checked {
    let object = &job.target;
    let name = object.name();
    let expected = ExpectedSink::default();
    let delivered = deliver_quietly(
        pipeline,
        source,
        &expected,
        object,
        Utc::now(),
        ChunkLimits::default(),
    )
    .await;
    match delivered.outcome {
        DeliveryOutcome::Loaded => {}
        DeliveryOutcome::Skipped(_) => return Checked::NoType,
        DeliveryOutcome::Failed(reason) | DeliveryOutcome::Refused(reason) => {
            return Checked::Unreadable(name, reason);
        }
    }
    let compared = async {
        let stored = store.ids_of(&object.key).await?;
        let (mut check, missing) =
            ObjectCheck::compare(&name, &object.key, &expected.into_ids(), &stored);
        if !missing.is_empty() {
            let held = store.held(&missing).await?;
            check.found_elsewhere(&missing, &held);
        }
        Ok::<_, StoreError>(check)
    };
    match compared.await {
        Ok(check) => Checked::Compared(check),
        Err(e) => Checked::Unreadable(name, e.to_string()),
    }
}
