//! `loader detect`: the detection rules over a whole input, nothing loaded. Objects (files,
//! folders, `s3://` prefixes, a `--list`) go through the same pipeline as a load, with every
//! single-event rule on every document; NDJSON files of documents a load wrote (`--out`) are
//! matched as they are. The documents the threshold and sequence rules count are kept, put in
//! time order once the whole input is read, and run through the correlations, which a
//! single invocation of the Lambda can never decide. Alerts are printed (a table on a
//! terminal, JSON lines otherwise) with counts per rule.

use super::rules::{RuleArgs, load_rules};
use super::run as runs;
use super::{CliError, build_pipeline};
use crate::deliver::{DocumentSink, S3Source};
use crate::notify::is_alert;
use crate::pipeline::{Document, Source};
use crate::provenance::OrganizationId;
use crate::rules::RuleSet;
use crate::rules::alert::{alert_document, correlation_alert_document};
use crate::rules::correlate::{Correlator, time_of};
use crate::sink::{BulkItem, Origin, WriteOutcome};
use chrono::{SecondsFormat, Utc};
use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How alerts are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table on a terminal, JSON lines otherwise.
    Auto,
    Table,
    Json,
}

/// The command line of `loader detect`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Files, folders or `s3://bucket/prefix` URLs of objects; `*.ndjson` / `*.jsonl` files
    /// of documents a load wrote.
    #[arg(required_unless_present = "list", value_name = "PATH|S3_URL|NDJSON")]
    pub sources: Vec<String>,
    /// A file of objects to read (as `loader load --list`).
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// The bucket of plain keys in `--list`.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub exclusions: Option<PathBuf>,
    #[arg(long, env = "ORGANIZATION_ID", value_name = "o-ID")]
    pub organization_id: Option<OrganizationId>,
    #[command(flatten)]
    pub rules: RuleArgs,
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    /// Objects read at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Also write the alerts into this local index (`loader search DIR '@log_type:alerts'`).
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
}

/// What the documents of a run leave for the verdict: the alerts of single-event rules, and
/// the documents the correlations count.
#[derive(Default)]
struct Found {
    alerts: Vec<Value>,
    /// The alerts as documents, for `--index`.
    documents: Vec<BulkItem>,
    counted: Vec<(String, Value)>,
}

/// A sink that keeps alerts and counted documents instead of storing anything.
struct DetectSink {
    rules: Arc<RuleSet>,
    found: Mutex<Found>,
}

impl DetectSink {
    fn keep(&self, log_type: &str, doc: Value) {
        if let Ok(mut found) = self.found.lock() {
            found.counted.push((log_type.to_owned(), doc));
        }
    }
}

impl DocumentSink for DetectSink {
    fn write(&self, items: Vec<BulkItem>) -> BoxFuture<'_, WriteOutcome> {
        Box::pin(async move {
            // Documents are read back only for alerts and when some correlation counts them.
            let counts = self.rules.counts_any();
            for item in items.iter().filter(|item| counts || is_alert(item)) {
                let Ok(doc) = serde_json::from_slice::<Value>(&item.source) else {
                    continue;
                };
                if is_alert(item) {
                    if let Ok(mut found) = self.found.lock() {
                        found.alerts.push(doc);
                        found.documents.push(item.clone());
                    }
                    continue;
                }
                let Some(log_type) = doc.get("@log_type").and_then(Value::as_str) else {
                    continue;
                };
                if self.rules.is_counted(log_type, &doc) {
                    let log_type = log_type.to_owned();
                    self.keep(&log_type, doc);
                }
            }
            let mut outcome = WriteOutcome::default();
            outcome.stats.created = items.len() as u64;
            outcome.created = (0..items.len()).collect();
            outcome
        })
    }
}

fn is_ndjson(source: &str) -> bool {
    !source.starts_with("s3://") && (source.ends_with(".ndjson") || source.ends_with(".jsonl"))
}

/// Matches the documents of an NDJSON file (`{"_index", "_id", "_source"}` lines as `load
/// --out` writes them, or bare documents); a line that is not a document is named, counted
/// and skipped.
fn read_ndjson(
    path: &Path,
    rules: &RuleSet,
    sink: &DetectSink,
    ingested: &str,
    problems: &mut Vec<String>,
) -> Result<u64, CliError> {
    let file = std::fs::File::open(path).map_err(|source| CliError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut documents = 0;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| CliError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{}:{}: not JSON: {e}", path.display(), n + 1));
                continue;
            }
        };
        let (index, id, mut doc) = match value.get("_source") {
            Some(source) => (
                value["_index"].as_str().unwrap_or_default().to_owned(),
                value["_id"].as_str().unwrap_or_default().to_owned(),
                source.clone(),
            ),
            None => (String::new(), String::new(), value),
        };
        let Some(log_type) = doc
            .get("@log_type")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            problems.push(format!(
                "{}:{}: no @log_type: not a document of the loader",
                path.display(),
                n + 1
            ));
            continue;
        };
        documents += 1;
        for matched in rules.evaluate(&log_type, &doc) {
            if let Value::Object(fields) = &mut doc {
                let alert = alert_document(&matched, &index, &id, &log_type, fields, ingested);
                let item = BulkItem::from_document(
                    alert.clone(),
                    Origin::new(path.display().to_string(), n as u64),
                );
                sink.found
                    .lock()
                    .map(|mut f| {
                        f.alerts.push(source_value(alert));
                        f.documents.push(item);
                    })
                    .ok();
            }
        }
        if rules.is_counted(&log_type, &doc) {
            sink.keep(&log_type, doc);
        }
    }
    Ok(documents)
}

/// Writes the alerts into a local index (as `loader load --index` would): replaced by id, so a
/// second run adds nothing.
fn index_alerts(dir: &Path, documents: Vec<BulkItem>) -> Result<usize, CliError> {
    let content = crate::content::Content::bundled()?;
    let index =
        crate::index::LocalIndex::open_or_create(dir, &crate::index::field_table(&content))?;
    let sink = crate::index::IndexSink::new(&index)?;
    let n = documents.len();
    // The index sink's futures do their work when polled: no runtime is needed.
    futures::executor::block_on(async {
        let outcome = sink.write(documents).await;
        if let Some(failure) = outcome.failures.first() {
            return Err(CliError::Rules(format!(
                "alerts not indexed: {}",
                failure.error
            )));
        }
        sink.commit().await.map_err(CliError::Rules)
    })?;
    sink.close()?;
    Ok(n)
}

fn source_value(doc: Document) -> Value {
    match doc.source {
        Source::Json(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        fields => Value::Object(fields.into_fields()),
    }
}

/// Runs `loader detect`: alerts to `out`, the summary to `err`.
pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let pipeline = build_pipeline(args.config.as_deref(), args.exclusions.as_deref())?;
    let Some(rules) = load_rules(pipeline.config(), &args.rules)? else {
        return Err(CliError::Rules(
            "--no-rules leaves nothing to detect".into(),
        ));
    };
    let pipeline = Arc::new(
        pipeline
            .with_organization(args.organization_id.clone())
            .with_rules(Some(Arc::clone(&rules))),
    );
    let ingested = Utc::now();
    let ingested_text = ingested.to_rfc3339_opts(SecondsFormat::Millis, true);
    let sink = Arc::new(DetectSink {
        rules: Arc::clone(&rules),
        found: Mutex::new(Found::default()),
    });
    let mut problems = Vec::new();
    let mut summary = String::new();

    let (ndjson, objects): (Vec<&String>, Vec<&String>) =
        args.sources.iter().partition(|s| is_ndjson(s));
    for path in ndjson {
        let n = read_ndjson(
            Path::new(path),
            &rules,
            &sink,
            &ingested_text,
            &mut problems,
        )?;
        summary.push_str(&format!("{path}: {n} documents\n"));
    }
    if !objects.is_empty() || args.list.is_some() {
        // The report files of the run go to a folder of its own, removed after.
        let reports = std::env::temp_dir().join(format!("loader-detect-{}", std::process::id()));
        let sources = runs::Sources {
            args: objects.into_iter().cloned().collect(),
            list: args.list.clone(),
            bucket: args.bucket.clone(),
            queue: None,
            report_dir: Some(reports.clone()),
            resume: false,
            commit_every: 500,
        };
        let concurrency = super::objects_at_once(args.concurrency);
        let runtime = super::multi_thread_runtime()?;
        let result = runtime.block_on(async {
            let s3 = if sources.needs_aws() {
                Some(S3Source::new(shared::aws::s3_client(
                    &shared::aws::sdk_config().await,
                )))
            } else {
                None
            };
            let sink = Arc::clone(&sink) as Arc<dyn DocumentSink>;
            super::run_objects(
                &sources,
                Arc::clone(&pipeline),
                sink,
                s3,
                ingested,
                concurrency,
            )
            .await
        });
        let _ = std::fs::remove_dir_all(&reports);
        let result = result?;
        summary.push_str(&result.stats.summary());
        problems.extend(result.problems.iter().cloned());
        if result.failed > 0 {
            problems.push(format!(
                "{} object(s) could not be read: see the errors above",
                result.failed
            ));
        }
    }

    let found = match Arc::try_unwrap(sink) {
        Ok(sink) => sink.found.into_inner().unwrap_or_default(),
        Err(sink) => std::mem::take(&mut *sink.found.lock().unwrap_or_else(|e| e.into_inner())),
    };
    let mut alerts = found.alerts;
    let mut documents = found.documents;
    let mut counted = found.counted;
    counted.sort_by_key(|(_, doc)| time_of(doc));
    let mut correlator = Correlator::new(&rules);
    for (log_type, doc) in &counted {
        for fired in correlator.process(log_type, doc) {
            let alert = correlation_alert_document(&fired, &ingested_text);
            documents.push(BulkItem::from_document(
                alert.clone(),
                Origin::new("correlations", documents.len() as u64),
            ));
            alerts.push(source_value(alert));
        }
    }
    alerts.sort_by(|a, b| {
        let time = |v: &Value| v["@timestamp"].as_str().unwrap_or_default().to_owned();
        time(a).cmp(&time(b))
    });

    let table = match args.format {
        Format::Table => true,
        Format::Json => false,
        Format::Auto => std::io::stdout().is_terminal(),
    };
    if table {
        write_table(out, &alerts).map_err(CliError::Write)?;
    } else {
        for alert in &alerts {
            writeln!(out, "{alert}").map_err(CliError::Write)?;
        }
    }
    let mut per_rule: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for alert in &alerts {
        let text = |path: &str| {
            path.split('.')
                .try_fold(alert, |v, k| v.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        *per_rule
            .entry((text("rule.category"), text("rule.id"), text("rule.name")))
            .or_default() += 1;
    }
    if let Some(dir) = &args.index {
        let written = index_alerts(dir, documents)?;
        summary.push_str(&format!(
            "index: {written} alerts written to {} (search them: loader search {} '@log_type:alerts')\n",
            dir.display(),
            dir.display()
        ));
    }
    write!(err, "{summary}").map_err(CliError::Write)?;
    for p in &problems {
        writeln!(err, "  problem: {p}").map_err(CliError::Write)?;
    }
    writeln!(
        err,
        "alerts: {} ({} from thresholds and sequences over {} counted documents)",
        alerts.len(),
        alerts
            .iter()
            .filter(|a| a.pointer("/alert/correlation").is_some())
            .count(),
        counted.len()
    )
    .map_err(CliError::Write)?;
    for ((level, id, name), n) in &per_rule {
        writeln!(err, "  {n:>6}  {level:<13} {id}  {name}").map_err(CliError::Write)?;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Rules(format!(
            "{} problem(s) while reading the input",
            problems.len()
        )))
    }
}

/// One line per alert: time, level, rule, where, and who (or the group of a threshold).
fn write_table(out: &mut dyn Write, alerts: &[Value]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<24}  {:<13}  {:<44}  {:<24}  WHO / GROUP",
        "TIME", "LEVEL", "RULE", "WHERE"
    )?;
    for a in alerts {
        let text = |path: &str| {
            path.split('.')
                .try_fold(a, |v, k| v.get(k))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        };
        let who = match a
            .pointer("/alert/correlation/group_by")
            .and_then(Value::as_array)
        {
            Some(fields) => {
                let value = a
                    .pointer("/alert/correlation/value")
                    .and_then(Value::as_f64)
                    .unwrap_or_default();
                let fields = fields
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|f| format!("{f}={}", text(f)))
                    .collect::<Vec<_>>()
                    .join(" ");
                if value.fract() == 0.0 {
                    format!("{fields} ({})", value as i64)
                } else {
                    format!("{fields} ({value})")
                }
            }
            None => [text("user.name"), text("source.ip")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        };
        let place = [text("cloud.account.id"), text("cloud.region")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        writeln!(
            out,
            "{:<24}  {:<13}  {:<44}  {:<24}  {}",
            text("@timestamp"),
            text("rule.category"),
            clip(&text("rule.name"), 44),
            place,
            who
        )?;
    }
    Ok(())
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width - 3).collect();
    out.push_str("...");
    out
}
