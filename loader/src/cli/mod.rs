//! The command line: `loader load` (local paths, S3 prefixes, lists, a queue -> NDJSON or
//! OpenSearch), `loader setup` (templates, retention and dashboards for a cluster), `loader
//! bench` (throughput per core of every built-in type), `loader detect` and `loader rules`
//! (the detection rules), and the commands that check a user
//! configuration: `check-config`, `test` and `explain`.

mod check_config;
pub mod detect;
mod explain;
pub mod freshness;
pub mod geoip;
pub mod ioc;
pub mod list;
mod load;
mod pipeline;
pub mod progress;
pub mod report;
pub mod rules;
pub mod run;
pub mod search;
pub mod setup;
pub mod sources;
mod test;
pub mod verify;

pub use load::objects;
pub use pipeline::{build_pipeline, load_exclusions};
pub use test::diff;

use crate::deliver::{ChunkLimits, DocumentSink, LocalSource, NdjsonFormat, NdjsonSink, S3Source};
use crate::index::{IndexSink, LocalIndex};
use crate::notify::{Notifier, NotifyingSink, sns::SnsPublisher};
use crate::sink::{BulkSink, FolderQuarantine, SinkConfig};
use progress::Progress;
use std::sync::Arc;

use crate::bench;
use crate::config::{Config, ConfigError};
use crate::pipeline::Pipeline;
use crate::provenance::OrganizationId;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(
    name = "loader",
    version,
    about = "Turns objects of the central log bucket into ECS documents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Loads objects and writes their documents to OpenSearch (`--opensearch`) or as NDJSON
    /// (stdout or `--out`). Sources: local files or folders laid out like the bucket (the path
    /// below the folder is the object key), `s3://bucket/prefix`, a `--list` file, a `--queue`.
    /// Objects finished and failed go to report files; the exit code is 1 when any failed.
    Load {
        /// Files, folders, or `s3://bucket/prefix` URLs.
        #[arg(required_unless_present_any = ["list", "queue"], value_name = "PATH|S3_URL")]
        sources: Vec<String>,
        /// A list of objects, one per line: `s3://bucket/key`, a key (of `--bucket`), a local
        /// path, or a line of `aws s3 ls --recursive`. The failed-objects file of a run is one.
        #[arg(long, value_name = "FILE")]
        list: Option<PathBuf>,
        /// The bucket of plain keys in `--list`.
        #[arg(long, value_name = "NAME")]
        bucket: Option<String>,
        /// Drain this SQS queue (name or URL), such as the dead-letter queue: each message's
        /// objects are loaded and the message deleted when all of them loaded.
        #[arg(long, value_name = "NAME|URL")]
        queue: Option<String>,
        /// Send the documents to this OpenSearch endpoint (authentication, limits and TLS from
        /// the `OPENSEARCH_*` environment) instead of writing NDJSON.
        #[arg(long, value_name = "URL", conflicts_with_all = ["out", "bulk"])]
        opensearch: Option<String>,
        /// Folder for documents OpenSearch refuses (default: `quarantine` in the report folder).
        #[arg(long, value_name = "DIR", requires = "opensearch")]
        quarantine: Option<PathBuf>,
        /// Write the documents into a local search index in this folder (created when missing),
        /// instead of NDJSON: `loader search DIR QUERY` then finds them. Loading the same
        /// objects again replaces their documents; the report files go to `DIR/reports`.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["opensearch", "out", "bulk"])]
        index: Option<PathBuf>,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write OpenSearch bulk lines (`{"create":{..}}` + document) instead of documents.
        #[arg(long)]
        bulk: bool,
        /// Objects loaded at once (default: the number of cores).
        #[arg(long, value_name = "N")]
        concurrency: Option<usize>,
        /// Threads the records of one large object are normalized on (default: the number of
        /// cores; 1 loads each object on one thread).
        #[arg(long, env = "LOADER_THREADS", value_name = "N")]
        threads: Option<usize>,
        /// Go on where an earlier run with the same report files stopped (killed, interrupted):
        /// the objects its finished list names are not loaded again.
        #[arg(long, conflicts_with = "queue")]
        resume: bool,
        /// Objects per commit of `--index` (an object is finished once a commit covers it).
        #[arg(long, value_name = "N", default_value_t = 500, requires = "index")]
        commit_every: usize,
        /// Folder of the report files (default: next to the list, else the index's `reports`,
        /// else the state folder).
        #[arg(long, value_name = "DIR")]
        report_dir: Option<PathBuf>,
        /// A user configuration file in the es-loader's INI dialect, read over the built-in one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The load time to record (RFC 3339), for reproducible output. Default: now.
        #[arg(long)]
        ingested: Option<DateTime<Utc>>,
        /// Exclusion rules (`exclude_log_patterns.csv`): matching records are counted, not loaded.
        #[arg(long)]
        exclusions: Option<PathBuf>,
        /// Load CloudTrail objects only from this organization's trail
        /// (`AWSLogs/<o-id>/<account>/CloudTrail/<region>/...`); others are refused, since a
        /// member account can write CloudTrail-like keys under its own prefix.
        #[arg(long, env = "ORGANIZATION_ID", value_name = "o-ID")]
        organization_id: Option<OrganizationId>,
        /// Read the OpenSearch basic-auth credentials from this Secrets Manager secret
        /// (`{"username": .., "password": ..}`), again when OpenSearch answers 401.
        #[arg(long, value_name = "ARN", requires = "opensearch")]
        opensearch_secret_arn: Option<String>,
        #[command(flatten)]
        rules: rules::RuleArgs,
        #[command(flatten)]
        alerts: rules::AlertArgs,
    },
    /// Detection rules: the bundled Sigma pack and folders of your own.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Prepares OpenSearch for the documents, idempotently: component and index templates
    /// (explicit field types, one alias per log type over its rotated indices), ISM retention
    /// policies, and Dashboards saved objects (index patterns and dashboards). Reports what it
    /// created, updated or left unchanged; exits 1 when anything failed. Authentication and TLS
    /// as for `load --opensearch` (the `OPENSEARCH_*` environment).
    Setup(setup::Args),
    /// Runs the detection rules over objects (or NDJSON documents of a load) without loading
    /// anything, thresholds and sequences included, and prints the alerts with counts per rule.
    Detect(detect::Args),
    /// GeoIP databases: `update` downloads GeoLite2 City and ASN from MaxMind into a folder or
    /// an S3 prefix, where `GEOIP_DATABASE_DIR` points the loader.
    Geoip {
        #[command(subcommand)]
        action: GeoipAction,
    },
    /// Threat feeds: `update` downloads the feeds of a list into a folder or an S3 prefix,
    /// where `THREAT_INTEL_FEEDS` points the loader.
    Ioc {
        #[command(subcommand)]
        action: IocAction,
    },
    /// Searches a local index (`loader load ... --index DIR`) with OpenSearch Dashboards' query
    /// syntax: the newest matching documents as a table, their count, the top values of a
    /// field, or JSON.
    Search(search::Args),
    /// Proves a load: for objects (files, folders, `s3://` prefixes, a list) compares the
    /// documents each yields with those OpenSearch (or a local index) holds under its key, by
    /// `_id`, and names objects missing or partly loaded and documents no object explains.
    /// Exits 0 only when everything matches.
    Verify(verify::Args),
    /// Silent sources: the newest event of every log type in every account and region, from
    /// the indices, and whether it went quiet for longer than its type's `quiet_after` (a trail
    /// stopped, a flow log deleted). `--alert` stores an alert for each new silence (and
    /// publishes it with `--alert-topic`). Exits 1 when a source is quiet.
    Freshness(freshness::Args),
    /// Validates the built-in and user definitions (and exclusion rules), lists the types in
    /// detection order, or prints the effective settings of one type after overrides.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print every effective setting of this type, with where it was written.
        #[arg(long = "type")]
        type_name: Option<String>,
        #[arg(long)]
        exclusions: Option<PathBuf>,
    },
    /// Normalizes a sample file as one type and prints the documents (JSON); with
    /// `--expected`, compares them field by field. Exits non-zero on a difference or a record
    /// that does not load.
    Test {
        #[arg(long = "type")]
        type_name: String,
        file: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        /// The documents expected: the JSON array `loader test` prints (or a golden
        /// fixture's `expected.json`, documents under `documents`).
        #[arg(long)]
        expected: Option<PathBuf>,
        /// The object key to assume (account, region, `@log_s3key`). Default: the file path.
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        exclusions: Option<PathBuf>,
        /// The load time to record (RFC 3339). Default: now.
        #[arg(long)]
        ingested: Option<DateTime<Utc>>,
    },
    /// Says which type an object key is detected as, and why each type matches or not.
    Explain {
        key: String,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also say whether `load --organization-id` would refuse the key.
        #[arg(long, env = "ORGANIZATION_ID", value_name = "o-ID")]
        organization_id: Option<OrganizationId>,
    },
    /// Measures records per second on one core, from gzip bytes to bulk lines, on generated
    /// input.
    Bench {
        /// Records per type.
        #[arg(long, default_value_t = 50_000)]
        records: usize,
        /// Only these types (default: all benchmarked types).
        #[arg(long = "type")]
        types: Vec<String>,
        /// Write the generated gzip objects under this folder (at their bucket keys) instead of
        /// measuring: the input of the end-to-end benchmark (`loader load DIR --opensearch ..`).
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
        /// Measure the objects of this folder (laid out like the bucket, as `loader load DIR`
        /// reads it) instead of generated ones: `load` and `bench` on the same input.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["write", "types"])]
        dir: Option<PathBuf>,
        /// Evaluate the bundled detection rules on every document, as a load does.
        #[arg(long)]
        with_rules: bool,
        /// Enrich every document as a load does: user agents, GeoIP from `GEOIP_DATABASE_DIR`,
        /// threat feeds from `THREAT_INTEL_FEEDS` and the organization context of
        /// `ORG_CONTEXT` (`scripts/bench-enrichment` makes them at a real size).
        #[arg(long)]
        with_enrichment: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum GeoipAction {
    /// Downloads GeoLite2 City and ASN (`MAXMIND_LICENSE_KEY`, `MAXMIND_ACCOUNT_ID`), checks
    /// them, and puts them at `--to`.
    Update(geoip::UpdateArgs),
}

#[derive(Debug, Subcommand)]
pub enum IocAction {
    /// Downloads each feed of `--feeds`, checks that it holds indicators, and puts it at
    /// `--to`; exits 1 when a feed failed (its previous file stays).
    Update(ioc::UpdateArgs),
}

#[derive(Debug, Subcommand)]
pub enum RulesAction {
    /// Lists the rules a load evaluates (id, level, log types, title, file) and those left
    /// out with the reason.
    List {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        rules: rules::RuleArgs,
    },
    /// Runs every rule's test events (`<rule>.tests.json` next to `<rule>.yml`): the records
    /// are normalized as in a load, then must match, or not, as the file says.
    Test {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        rules: rules::RuleArgs,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read the configuration file {path}: {source}")]
    ReadConfig { path: String, source: io::Error },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot write the output: {0}")]
    Write(io::Error),
    #[error(transparent)]
    Report(#[from] report::ReportError),
    #[error(transparent)]
    Source(#[from] sources::SourceError),
    #[error(transparent)]
    SinkConfig(#[from] crate::sink::ConfigError),
    #[error("cannot set up the OpenSearch sink: {0}")]
    Sink(#[from] crate::sink::TransportError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    #[error(
        "{failed} object(s) failed, {refused} refused and {problems} other problem(s): see the summary; rerun the failed objects with --list {list}"
    )]
    NotAllLoaded {
        failed: u64,
        refused: u64,
        problems: usize,
        list: String,
    },
    #[error("unknown benchmark type `{name}` (known: {known})")]
    UnknownBenchType { name: String, known: String },
    #[error(transparent)]
    Exclusions(#[from] crate::exclude::ExclusionError),
    #[error("no log type named `{name}` (known: {known})")]
    UnknownType { name: String, known: String },
    #[error("{0}")]
    TestFailed(String),
    #[error("detection rules: {0}")]
    Rules(String),
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    #[error(transparent)]
    GeoUpdate(#[from] crate::enrich::geo_update::GeoUpdateError),
    #[error("threat feeds not updated: {0}")]
    FeedsFailed(String),
    #[error("{name} {value:?}: {reason}")]
    BadArgument {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("verify: {0}")]
    Verify(String),
    #[error("not verified: some objects' documents do not match (see above)")]
    NotVerified,
    #[error("{0}")]
    Freshness(String),
    #[error("{0} source(s) went quiet")]
    QuietSources(usize),
    #[error("nothing to set up: give --opensearch URL, --out DIR or --dry-run")]
    SetupNoTarget,
    #[error(
        "setup was partial: {failed} of {total} artifact(s) failed (see above); run it again once the cause is fixed"
    )]
    SetupPartial { failed: usize, total: usize },
}

impl CliError {
    /// `name` is not a type of `config`; the message lists those that are.
    pub fn unknown_type(config: &crate::config::Config, name: &str) -> Self {
        let known: Vec<&str> = config.types.iter().map(|t| t.name.as_str()).collect();
        Self::UnknownType {
            name: name.to_owned(),
            known: known.join(", "),
        }
    }

    /// The process exit code: 1 when the run finished but not everything loaded (the report
    /// files say what) or `loader test` found differences, 2 when it could not run.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::NotAllLoaded { .. }
            | CliError::TestFailed(_)
            | CliError::SetupPartial { .. }
            | CliError::NotVerified
            | CliError::QuietSources(_)
            | CliError::FeedsFailed(_) => 1,
            _ => 2,
        }
    }
}

/// The sink options of `loader load`.
struct LoadOutput {
    opensearch: Option<String>,
    /// Wins over `OPENSEARCH_SECRET_ARN`.
    opensearch_secret_arn: Option<String>,
    quarantine: Option<PathBuf>,
    out: Option<PathBuf>,
    bulk: bool,
    index: Option<PathBuf>,
    /// Where alerts are published besides the alert index.
    alerts: Option<crate::notify::NotifySettings>,
}

/// Sets up the sink and runs the load.
async fn load(
    pipeline: Arc<Pipeline>,
    sources: run::Sources,
    output: LoadOutput,
    concurrency: usize,
    ingested: DateTime<Utc>,
) -> Result<run::RunSummary, CliError> {
    let report = sources.report_paths();
    let mut ndjson: Option<Arc<NdjsonSink<Box<dyn Write + Send>>>> = None;
    let sink: Arc<dyn DocumentSink> = match (&output.opensearch, &output.index) {
        (_, Some(dir)) => {
            let content = crate::content::Content::bundled()?;
            let index = LocalIndex::open_or_create(dir, &crate::index::field_table(&content))?;
            Arc::new(IndexSink::new(&index)?)
        }
        (Some(endpoint), None) => {
            let config = sink_config(endpoint, output.opensearch_secret_arn.as_deref())?;
            let folder = output
                .quarantine
                .clone()
                .unwrap_or_else(|| report.dir().join("quarantine"));
            Arc::new(BulkSink::connect(&config, Arc::new(FolderQuarantine::new(folder))).await?)
        }
        (None, None) => {
            let writer: Box<dyn Write + Send> = match &output.out {
                Some(path) => Box::new(BufWriter::with_capacity(
                    1 << 20,
                    File::create(path).map_err(CliError::Write)?,
                )),
                None => Box::new(io::stdout()),
            };
            let format = if output.bulk {
                NdjsonFormat::Bulk
            } else {
                NdjsonFormat::Documents
            };
            let sink = Arc::new(NdjsonSink::new(writer, format));
            ndjson = Some(Arc::clone(&sink));
            sink
        }
    };
    let aws = if sources.needs_aws() || output.alerts.is_some() {
        Some(shared::aws::sdk_config().await)
    } else {
        None
    };
    let s3 = aws
        .as_ref()
        .filter(|_| sources.needs_aws())
        .map(|aws| S3Source::new(shared::aws::s3_client(aws)));
    let notifier = match (&output.alerts, &aws) {
        (Some(settings), Some(aws)) => Some(Arc::new(Notifier::new(
            settings.clone(),
            Box::new(SnsPublisher::from_conf(aws)),
        ))),
        _ => None,
    };
    let sink: Arc<dyn DocumentSink> = match &notifier {
        Some(notifier) => Arc::new(NotifyingSink::new(sink, Arc::clone(notifier))),
        None => sink,
    };
    let summary = run_objects(&sources, pipeline, sink, s3, ingested, concurrency).await;
    let mut summary = summary?;
    if let Some(ndjson) = ndjson {
        ndjson.flush().map_err(CliError::Write)?;
        // The sink counters of NDJSON output only repeat the document count.
        summary.sink = None;
    }
    if let Some(dir) = output.index {
        // The run committed at its end; the writer's merges finish when it is dropped.
        summary.sink = None;
        summary.index = Some(dir);
    }
    summary.notifications = notifier.map(|n| n.counts());
    Ok(summary)
}

/// `--concurrency`, or the number of cores.
fn objects_at_once(concurrency: Option<usize>) -> usize {
    concurrency
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

fn multi_thread_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// Runs `pipeline` over the objects of `sources` into `sink`, with the progress bar: the part
/// of a run `load` and `detect` share.
async fn run_objects(
    sources: &run::Sources,
    pipeline: Arc<Pipeline>,
    sink: Arc<dyn DocumentSink>,
    s3: Option<S3Source>,
    ingested: DateTime<Utc>,
    concurrency: usize,
) -> Result<run::RunSummary, CliError> {
    let progress = Arc::new(Progress::new());
    let delivery = Arc::new(run::Delivery {
        pipeline,
        source: Arc::new(sources::CliSource {
            s3,
            local: LocalSource::new(),
        }),
        sink: Arc::new(progress::CountingSink {
            inner: sink,
            progress: Arc::clone(&progress),
        }),
        ingested,
        limits: ChunkLimits::default(),
    });
    let summary = run::run(
        sources,
        delivery,
        concurrency,
        Arc::clone(&progress),
        parse_queue_message,
    )
    .await;
    progress.finish();
    summary
}

/// The sink settings of a command line: the `OPENSEARCH_*` environment, with the endpoint and
/// the secret (over `OPENSEARCH_SECRET_ARN`) of its flags.
fn sink_config(endpoint: &str, secret_arn: Option<&str>) -> Result<SinkConfig, CliError> {
    Ok(SinkConfig::from_lookup(Some(endpoint), |name| {
        match (name, secret_arn) {
            ("OPENSEARCH_SECRET_ARN", Some(arn)) => Some(arn.to_owned()),
            _ => std::env::var(name).ok(),
        }
    })?)
}

/// The objects of a queue message: the Lambda's event parser, so the CLI drains exactly what
/// the function would have loaded (a dead-letter queue holds the function's messages).
fn parse_queue_message(body: &str) -> Result<Vec<list::Target>, String> {
    let notice = crate::lambda::events::parse_body(body).map_err(|e| e.to_string())?;
    for reason in &notice.ignored {
        tracing::info!(%reason, "part of a queue message ignored");
    }
    Ok(notice.objects)
}

/// Builds the configuration: the bundled file, and the user's over it.
pub fn load_config(user: Option<&Path>) -> Result<Config, CliError> {
    let config = match user {
        None => Config::builtin()?,
        Some(path) => {
            let text = pipeline::read_text(path).map_err(|source| CliError::ReadConfig {
                path: path.display().to_string(),
                source,
            })?;
            Config::with_user_file(&path.display().to_string(), &text)?
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// Runs a parsed command line; the text of the summary goes to `err`.
pub fn run(cli: Cli, err: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Load {
            sources,
            list,
            bucket,
            queue,
            opensearch,
            quarantine,
            out,
            bulk,
            index,
            resume,
            commit_every,
            concurrency,
            threads,
            report_dir,
            config,
            ingested,
            exclusions,
            organization_id,
            opensearch_secret_arn,
            rules,
            alerts,
        } => {
            let pipeline = build_pipeline(config.as_deref(), exclusions.as_deref())?;
            let list_is_none = list.is_none();
            let alerts = alerts.settings()?;
            let rules = rules::load_rules(pipeline.config(), &rules)?;
            let pipeline = Arc::new(
                pipeline
                    .with_organization(organization_id)
                    .with_rules(rules)
                    .with_threads(threads.unwrap_or_else(crate::pipeline::cores)),
            );
            let sources = run::Sources {
                args: sources,
                list,
                bucket,
                queue,
                // A local index keeps its runs' reports with it.
                report_dir: report_dir.or_else(|| {
                    index
                        .as_ref()
                        .filter(|_| list_is_none)
                        .map(|dir| dir.join("reports"))
                }),
                resume,
                commit_every,
            };
            let concurrency = objects_at_once(concurrency);
            let runtime = multi_thread_runtime()?;
            let summary = runtime.block_on(load(
                pipeline,
                sources,
                LoadOutput {
                    opensearch,
                    opensearch_secret_arn,
                    quarantine,
                    out,
                    bulk,
                    index,
                    alerts,
                },
                concurrency,
                ingested.unwrap_or_else(Utc::now),
            ))?;
            err.write_all(summary.text().as_bytes())
                .map_err(CliError::Write)?;
            if summary.success() {
                Ok(())
            } else {
                Err(CliError::NotAllLoaded {
                    failed: summary.failed,
                    refused: summary.refused,
                    problems: summary.problems.len(),
                    list: summary
                        .report
                        .as_ref()
                        .map(|r| r.failed.display().to_string())
                        .unwrap_or_default(),
                })
            }
        }
        Command::Setup(args) => setup::run(&args, &mut io::stdout().lock()),
        Command::Detect(args) => detect::run(&args, &mut io::stdout().lock(), err),
        Command::Search(args) => search::run(&args, &mut io::stdout().lock(), err),
        Command::Verify(args) => verify::run(&args, &mut io::stdout().lock()),
        Command::Freshness(args) => freshness::run(&args, &mut io::stdout().lock()),
        Command::Geoip {
            action: GeoipAction::Update(args),
        } => geoip::run(&args, &mut io::stdout().lock()),
        Command::Ioc {
            action: IocAction::Update(args),
        } => ioc::run(&args, &mut io::stdout().lock()),
        Command::Rules { action } => match action {
            RulesAction::List { config, rules } => {
                rules::list(config.as_deref(), &rules, &mut io::stdout().lock())
            }
            RulesAction::Test { config, rules } => {
                rules::test(config.as_deref(), &rules, &mut io::stdout().lock())
            }
        },
        Command::CheckConfig {
            config,
            type_name,
            exclusions,
        } => check_config::run(
            config.as_deref(),
            type_name.as_deref(),
            exclusions.as_deref(),
            &mut io::stdout().lock(),
        ),
        Command::Test {
            type_name,
            file,
            config,
            expected,
            key,
            exclusions,
            ingested,
        } => test::run(
            &test::Args {
                type_name,
                file,
                config,
                expected,
                key,
                exclusions,
                ingested: ingested.unwrap_or_else(Utc::now),
            },
            &mut io::stdout().lock(),
            err,
        ),
        Command::Explain {
            key,
            config,
            organization_id,
        } => explain::run(
            &load_config(config.as_deref())?,
            &key,
            organization_id.as_ref(),
            &mut io::stdout().lock(),
        ),
        Command::Bench {
            records,
            types,
            write,
            dir,
            with_rules,
            with_enrichment,
        } => {
            let config = Config::builtin()?;
            let known: Vec<String> = config.types.iter().map(|t| t.name.clone()).collect();
            for t in &types {
                if !known.contains(t) {
                    return Err(CliError::UnknownBenchType {
                        name: t.clone(),
                        known: known.join(", "),
                    });
                }
            }
            let rules = with_rules.then(|| {
                let set = crate::rules::RuleSet::with_bundled(&config, &[], &[]);
                Arc::new(set)
            });
            let mut pipeline = Pipeline::new(config).with_rules(rules);
            if with_enrichment {
                pipeline = pipeline
                    .with_geo_databases(pipeline::geo_databases())
                    .with_threat_feeds(pipeline::threat_feeds())
                    .with_org_context(pipeline::org_context())
                    .with_user_agents(Some(crate::enrich::user_agent::UserAgents::shared()));
            }
            let selected: Vec<&str> = known
                .iter()
                .map(String::as_str)
                .filter(|t| types.is_empty() || types.iter().any(|s| s == t))
                .collect();
            if let Some(dir) = write {
                for t in selected {
                    let (key, raw) = bench::generate(t, records);
                    let path = dir.join(&key);
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(CliError::Write)?;
                    }
                    let gz = bench::gzip(&raw);
                    std::fs::write(&path, &gz).map_err(CliError::Write)?;
                    writeln!(
                        err,
                        "{t}: {} ({records} records, {:.1} MB, gzip {:.1} MB)",
                        path.display(),
                        raw.len() as f64 / 1e6,
                        gz.len() as f64 / 1e6
                    )
                    .map_err(CliError::Write)?;
                }
                return Ok(());
            }
            if let Some(dir) = dir {
                let files = objects(&dir)?;
                let (objects, raw_bytes) =
                    bench::read_objects(&files).map_err(|source| CliError::Read {
                        path: dir.display().to_string(),
                        source,
                    })?;
                let mut names: Vec<&str> = objects
                    .iter()
                    .filter_map(|o| pipeline.log_type_of(&o.key).ok().map(|t| t.name.as_str()))
                    .collect();
                names.sort_unstable();
                names.dedup();
                let label = if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(",")
                };
                let result = bench::run_on(
                    &pipeline,
                    &label,
                    &objects,
                    raw_bytes,
                    bench::MIN_MEASUREMENT,
                );
                writeln!(err, "{result}").map_err(CliError::Write)?;
                return Ok(());
            }
            for t in selected {
                let result = bench::run(&pipeline, t, records, bench::MIN_MEASUREMENT);
                writeln!(err, "{result}").map_err(CliError::Write)?;
            }
            Ok(())
        }
    }
}
