//! `loader load`: objects from local paths, S3 prefixes, a `--list` file or a queue, through the
//! pipeline to NDJSON or OpenSearch, `--concurrency` objects at once. Every object ends in the
//! finished or the failed report file, or, refused for its key, in the debug log alone; a queue
//! message is deleted only when none of its objects failed (a refused object does not keep it,
//! as in the Lambda: no retry can load it).

use super::CliError;
use super::list::{BadLine, Target, parse_line, parse_s3_url};
use super::progress::Progress;
use super::report::{Report, ReportPaths};
use super::sources::{Queue, QueueMessage, list_prefix};
use crate::deliver::{ChunkLimits, DeliveryOutcome, DocumentSink, ObjectSource, deliver_quietly};
use crate::pipeline::{Pipeline, Stats};
use crate::sink::SinkStats;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use shared::metrics::Metrics;
use std::collections::HashSet;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// What to load (the sources) and where the report goes.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Local files or folders, and `s3://bucket/prefix` URLs.
    pub args: Vec<String>,
    pub list: Option<PathBuf>,
    /// The bucket of plain keys in the list.
    pub bucket: Option<String>,
    /// A queue name or URL to drain.
    pub queue: Option<String>,
    pub report_dir: Option<PathBuf>,
    /// Skip the objects an earlier run's finished list names, and add to its files.
    pub resume: bool,
    /// Objects per commit of a sink durable only at commits (the local index).
    pub commit_every: usize,
}

impl Sources {
    pub fn report_paths(&self) -> ReportPaths {
        ReportPaths::new(self.list.as_deref(), self.report_dir.as_deref())
    }

    pub fn needs_aws(&self) -> bool {
        self.queue.is_some()
            || self.bucket.is_some()
            || self.args.iter().any(|a| a.starts_with("s3://"))
            || self.list.is_some()
    }
}

/// How each object is loaded: the delivery core's pieces.
pub struct Delivery {
    pub pipeline: Arc<Pipeline>,
    pub source: Arc<dyn ObjectSource>,
    pub sink: Arc<dyn DocumentSink>,
    pub ingested: DateTime<Utc>,
    pub limits: ChunkLimits,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub stats: Stats,
    pub sink: Option<SinkStats>,
    pub finished: u64,
    pub failed: u64,
    /// Objects refused for their key: in the debug log only, since a rerun cannot load them.
    pub refused: u64,
    /// Problems that name no object to retry: bad list lines, listing errors, queue messages
    /// that are not events.
    pub problems: Vec<String>,
    pub messages_deleted: u64,
    pub messages_kept: u64,
    pub report: Option<ReportPaths>,
    /// The alerts published to the alert topic, when one was given.
    pub notifications: Option<crate::notify::NotifyCounts>,
    /// The local index the documents went to.
    pub index: Option<PathBuf>,
    /// Objects an earlier run finished, skipped by `--resume`.
    pub resumed: usize,
}

impl RunSummary {
    /// Everything named was loaded (or skipped on purpose).
    pub fn success(&self) -> bool {
        self.failed == 0 && self.refused == 0 && self.problems.is_empty()
    }

    /// The summary printed on stderr: the pipeline's counters, the sink's, the report files.
    pub fn text(&self) -> String {
        let mut s = self.stats.summary();
        if let Some(sink) = &self.sink {
            s.push_str(&format!(
                "opensearch: created {}, duplicates {}, quarantined {}, not loaded {}, retries {}, requests {}, {:.1} MB sent\n",
                sink.created,
                sink.duplicates,
                sink.quarantined,
                sink.failed,
                sink.retries,
                sink.requests,
                sink.bytes_sent as f64 / 1e6
            ));
        }
        if let Some(dir) = &self.index {
            s.push_str(&format!(
                "index: {} (search it: loader search {} 'QUERY')\n",
                dir.display(),
                dir.display()
            ));
        }
        if let Some(n) = &self.notifications {
            s.push_str(&format!(
                "alert topic: published {}, failed {}, dropped over the per-minute bound {}\n",
                n.published, n.failed, n.dropped
            ));
        }
        if self.messages_deleted + self.messages_kept > 0 {
            s.push_str(&format!(
                "queue: {} messages loaded and deleted, {} kept\n",
                self.messages_deleted, self.messages_kept
            ));
        }
        for p in &self.problems {
            s.push_str(&format!("  problem: {p}\n"));
        }
        if self.resumed > 0 {
            s.push_str(&format!(
                "resumed: {} objects an earlier run finished are not loaded again\n",
                self.resumed
            ));
        }
        s.push_str(&format!(
            "objects finished: {}, failed: {}",
            self.finished, self.failed
        ));
        if self.refused > 0 {
            s.push_str(&format!(", refused: {}", self.refused));
        }
        s.push('\n');
        if let Some(r) = &self.report {
            s.push_str(&format!(
                "report: {} (finished), {} (failed: rerun with --list), {} (failure log)\n",
                r.finished.display(),
                r.failed.display(),
                r.debug.display()
            ));
        }
        s
    }
}

/// A queue message whose objects are being loaded: deleted when the last one loaded.
struct MessageTrack {
    message: QueueMessage,
    remaining: AtomicUsize,
    failed: AtomicBool,
}

/// One object to load, and the message it came from.
pub(super) struct Job {
    pub(super) target: Target,
    message: Option<Arc<MessageTrack>>,
}

/// Parses a queue message body into the objects it names (S3 event notifications, direct, in
/// SNS or EventBridge envelopes; a test event names none).
pub type MessageParser = fn(&str) -> Result<Vec<Target>, String>;

/// Runs a load over `sources` with `delivery`; the report files are written as objects finish.
pub async fn run(
    sources: &Sources,
    delivery: Arc<Delivery>,
    concurrency: usize,
    progress: Arc<Progress>,
    parse_message: MessageParser,
) -> Result<RunSummary, CliError> {
    let report_paths = sources.report_paths();
    let (mut report, done) = if sources.resume {
        Report::resume(report_paths.clone())?
    } else {
        (Report::create(report_paths.clone())?, HashSet::new())
    };
    let resumed = done.len();
    let aws = if sources.needs_aws() {
        Some(shared::aws::sdk_config().await)
    } else {
        None
    };
    let s3 = aws.as_ref().map(shared::aws::s3_client);
    let queue = match (&sources.queue, &aws) {
        (Some(name), Some(aws)) => Some(Arc::new(
            Queue::open(aws_sdk_sqs::Client::new(aws), name).await?,
        )),
        _ => None,
    };

    let (tx, rx) = mpsc::channel::<Job>(1024);
    let (problem_tx, mut problem_rx) = mpsc::unbounded_channel::<(String, String)>();
    let producer = {
        let sources = sources.clone();
        let progress = Arc::clone(&progress);
        let queue = queue.clone();
        tokio::spawn(async move {
            produce(
                &sources,
                s3.as_ref(),
                queue.as_deref(),
                parse_message,
                &tx,
                &problem_tx,
                &progress,
            )
            .await;
            progress.listing_done();
        })
    };

    let mut summary = RunSummary {
        report: Some(report_paths),
        resumed,
        ..RunSummary::default()
    };
    let mut sink_total = SinkStats::default();
    let done = Arc::new(done);
    let mut results = tokio_stream_of(rx)
        .filter(|job| futures::future::ready(!done.contains(&job.target.name())))
        .map(|job| {
            let d = Arc::clone(&delivery);
            async move {
                let report = deliver_quietly(
                    &d.pipeline,
                    &*d.source,
                    &*d.sink,
                    &job.target,
                    d.ingested,
                    d.limits,
                )
                .await;
                (job, report)
            }
        })
        .buffer_unordered(concurrency.max(1));
    let mut commits = Commits::new(delivery.sink.commits(), sources.commit_every);
    while let Some((job, object)) = results.next().await {
        while let Ok((what, reason)) = problem_rx.try_recv() {
            record_problem(&mut report, &mut summary, &what, &reason)?;
        }
        // The per-object log line and metrics, printed above the bar.
        progress.suspend(|| {
            object.log();
            if let Some(mut metrics) = object.metrics(Metrics::from_env()) {
                metrics.flush();
            }
        });
        let name = job.target.name();
        let failed = object.outcome.is_failed();
        progress.object_done(object.stats.records(), failed);
        sink_total.merge(&object.sink);
        let documents = object.stats.documents();
        summary.stats.merge(object.stats);
        match &object.outcome {
            DeliveryOutcome::Failed(reason) => {
                report.failed(&name, reason, Utc::now())?;
                summary.failed += 1;
            }
            DeliveryOutcome::Refused(reason) => {
                report.refused(&name, reason, Utc::now())?;
                summary.refused += 1;
            }
            DeliveryOutcome::Loaded | DeliveryOutcome::Skipped(_) => {
                if commits.enabled {
                    commits.pending.push(name);
                    commits.documents += documents;
                } else {
                    report.finished(&name)?;
                    summary.finished += 1;
                }
            }
        }
        if commits.due() {
            commits
                .commit(&*delivery.sink, &mut report, &mut summary)
                .await?;
        }
        if let Some(track) = &job.message {
            if failed {
                track.failed.store(true, Ordering::Relaxed);
            }
            if track.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                // A message is deleted only once its documents are durable.
                commits
                    .commit(&*delivery.sink, &mut report, &mut summary)
                    .await?;
                settle_message(queue.as_deref(), track, &mut report, &mut summary).await?;
            }
        }
        // On disk at once: a run killed at any moment is resumed from what it finished.
        report.flush()?;
    }
    commits
        .commit(&*delivery.sink, &mut report, &mut summary)
        .await?;
    // The producer is done once the channel closed; collect what it reported last.
    let _ = producer.await;
    while let Ok((what, reason)) = problem_rx.try_recv() {
        record_problem(&mut report, &mut summary, &what, &reason)?;
    }
    report.flush()?;
    summary.sink = Some(sink_total);
    Ok(summary)
}

/// Objects loaded into a sink that is durable only at a commit (the local index) are finished
/// once a commit covers them: every so many objects, documents or seconds, and at the end. A
/// run killed before that leaves them out of the finished list, so a rerun loads them again
/// (replacing, by id, whatever of them the index kept).
struct Commits {
    enabled: bool,
    objects: usize,
    pending: Vec<String>,
    documents: u64,
    since: std::time::Instant,
}

impl Commits {
    const DOCUMENTS: u64 = 500_000;
    const INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

    fn new(enabled: bool, objects: usize) -> Self {
        Self {
            enabled,
            objects: objects.max(1),
            pending: Vec::new(),
            documents: 0,
            since: std::time::Instant::now(),
        }
    }

    fn due(&self) -> bool {
        self.enabled
            && !self.pending.is_empty()
            && (self.pending.len() >= self.objects
                || self.documents >= Self::DOCUMENTS
                || self.since.elapsed() >= Self::INTERVAL)
    }

    async fn commit(
        &mut self,
        sink: &dyn DocumentSink,
        report: &mut Report,
        summary: &mut RunSummary,
    ) -> Result<(), CliError> {
        if !self.enabled {
            return Ok(());
        }
        let result = sink.commit().await;
        for name in std::mem::take(&mut self.pending) {
            match &result {
                Ok(()) => {
                    report.finished(&name)?;
                    summary.finished += 1;
                }
                Err(reason) => {
                    report.failed(&name, reason, Utc::now())?;
                    summary.failed += 1;
                }
            }
        }
        report.flush()?;
        self.documents = 0;
        self.since = std::time::Instant::now();
        Ok(())
    }
}

fn record_problem(
    report: &mut Report,
    summary: &mut RunSummary,
    what: &str,
    reason: &str,
) -> Result<(), CliError> {
    tracing::warn!(%what, %reason, "not loaded");
    report.problem(what, reason, Utc::now())?;
    summary.problems.push(format!("{what}: {reason}"));
    Ok(())
}

/// Deletes the message when all its objects loaded; keeps it (for a later redelivery or the
/// dead-letter queue) otherwise.
async fn settle_message(
    queue: Option<&Queue>,
    track: &MessageTrack,
    report: &mut Report,
    summary: &mut RunSummary,
) -> Result<(), CliError> {
    if track.failed.load(Ordering::Relaxed) {
        summary.messages_kept += 1;
        return Ok(());
    }
    let Some(queue) = queue else { return Ok(()) };
    match queue.delete(&track.message).await {
        Ok(()) => summary.messages_deleted += 1,
        Err(reason) => {
            summary.messages_kept += 1;
            record_problem(
                report,
                summary,
                &format!("queue message {}", track.message.id),
                &reason,
            )?;
        }
    }
    Ok(())
}

pub(super) fn tokio_stream_of<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Sends every object of every source into `tx`, in order: command-line arguments, the list,
/// then the queue. Problems go to `problems` as (what, reason).
pub(super) async fn produce(
    sources: &Sources,
    s3: Option<&aws_sdk_s3::Client>,
    queue: Option<&Queue>,
    parse_message: MessageParser,
    tx: &mpsc::Sender<Job>,
    problems: &mpsc::UnboundedSender<(String, String)>,
    progress: &Progress,
) {
    let problem = |what: String, reason: String| {
        let _ = problems.send((what, reason));
    };
    let send = |target: Target| async {
        tx.send(Job {
            target,
            message: None,
        })
        .await
        .is_ok()
    };
    for arg in &sources.args {
        if let Some(url) = parse_s3_url(arg) {
            let (bucket, prefix) = match url {
                Ok(parts) => parts,
                Err(e) => {
                    problem(arg.clone(), e.to_string());
                    continue;
                }
            };
            let Some(s3) = s3 else { continue };
            let (ltx, mut lrx) = mpsc::channel::<Target>(1000);
            let on_page = |n: u64| progress.discovered(n);
            let listing = async move { list_prefix(s3, &bucket, &prefix, &ltx, &on_page).await };
            let forward = async {
                while let Some(t) = lrx.recv().await {
                    if !send(t).await {
                        break;
                    }
                }
            };
            let (listed, ()) = tokio::join!(listing, forward);
            if let Err(e) = listed {
                problem(arg.clone(), e.to_string());
            }
            continue;
        }
        let path = PathBuf::from(arg);
        match super::objects(&path) {
            Ok(found) => {
                progress.discovered(found.len() as u64);
                for (path, key) in found {
                    if !send(Target::local(path, key)).await {
                        return;
                    }
                }
            }
            Err(e) => problem(arg.clone(), e.to_string()),
        }
    }
    if let Some(list) = &sources.list {
        match read_list(list, sources.bucket.as_deref()) {
            Ok((targets, bad)) => {
                for b in bad {
                    problem(
                        format!("{} line {}", list.display(), b.line),
                        b.error.to_string(),
                    );
                }
                progress.discovered(targets.len() as u64);
                for t in targets {
                    if !send(t).await {
                        return;
                    }
                }
            }
            Err(e) => problem(list.display().to_string(), e.to_string()),
        }
    }
    if let Some(queue) = queue {
        drain(queue, parse_message, tx, &problem, progress).await;
    }
}

/// The list, read line by line (a list of millions of keys is read once, not held as text).
fn read_list(
    path: &std::path::Path,
    bucket: Option<&str>,
) -> Result<(Vec<Target>, Vec<BadLine>), std::io::Error> {
    let file = std::fs::File::open(path)?;
    let mut targets = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        match parse_line(&line?, bucket) {
            Ok(Some(t)) => targets.push(t),
            Ok(None) => {}
            Err(error) => bad.push(BadLine { line: n + 1, error }),
        }
    }
    Ok((targets, bad))
}

/// Receives until the queue has no visible message left. A message that is not an event is
/// reported and kept; one that names no object (a test event) is deleted.
async fn drain(
    queue: &Queue,
    parse_message: MessageParser,
    tx: &mpsc::Sender<Job>,
    problem: &(dyn Fn(String, String) + Sync),
    progress: &Progress,
) {
    let mut seen = HashSet::new();
    loop {
        let batch = match queue.receive().await {
            Ok(batch) => batch,
            Err(e) => {
                problem(format!("queue {}", queue.url), e.to_string());
                return;
            }
        };
        let fresh: Vec<QueueMessage> = batch
            .into_iter()
            .filter(|m| seen.insert(m.id.clone()))
            .collect();
        if fresh.is_empty() {
            return;
        }
        for message in fresh {
            let targets = match parse_message(&message.body) {
                Ok(t) => t,
                Err(reason) => {
                    problem(format!("queue message {}", message.id), reason);
                    continue;
                }
            };
            if targets.is_empty() {
                if let Err(reason) = queue.delete(&message).await {
                    problem(format!("queue message {}", message.id), reason);
                }
                continue;
            }
            progress.discovered(targets.len() as u64);
            let track = Arc::new(MessageTrack {
                remaining: AtomicUsize::new(targets.len()),
                failed: AtomicBool::new(false),
                message,
            });
            for target in targets {
                let job = Job {
                    target,
                    message: Some(Arc::clone(&track)),
                };
                if tx.send(job).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::deliver::{LocalSource, NdjsonFormat, NdjsonSink};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).expect("gzip into memory");
        enc.finish().expect("gzip into memory")
    }

    fn cloudtrail(n: usize) -> Vec<u8> {
        let records: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"eventID":"e{i}","eventTime":"2024-05-01T00:00:00Z","eventName":"ListUsers","eventSource":"iam.amazonaws.com"}}"#
                )
            })
            .collect();
        gzip(format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes())
    }

    async fn load(sources: &Sources) -> (RunSummary, Vec<u8>) {
        let sink = Arc::new(NdjsonSink::new(Vec::new(), NdjsonFormat::Bulk));
        let delivery = Arc::new(Delivery {
            pipeline: Arc::new(Pipeline::new(Config::builtin().expect("config"))),
            source: Arc::new(LocalSource::new()),
            sink: Arc::clone(&sink) as Arc<dyn DocumentSink>,
            ingested: Utc::now(),
            limits: ChunkLimits::default(),
        });
        let summary = run(sources, delivery, 2, Arc::new(Progress::hidden()), |_| {
            Err("no queue here".into())
        })
        .await
        .expect("runs");
        let out = Arc::try_unwrap(sink)
            .ok()
            .expect("the run let go of the sink")
            .into_inner()
            .expect("output");
        (summary, out)
    }

    #[tokio::test]
    async fn a_failed_local_object_is_listed_and_its_list_reloads_only_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir
            .path()
            .join("bucket/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01");
        std::fs::create_dir_all(&logs).expect("mkdir");
        std::fs::write(logs.join("good.json.gz"), cloudtrail(5)).expect("write");
        let full = cloudtrail(300);
        let bad = logs.join("bad.json.gz");
        std::fs::write(&bad, &full[..full.len() / 2]).expect("write");
        let reports = dir.path().join("reports");
        let sources = Sources {
            args: vec![
                dir.path().join("bucket").display().to_string(),
                dir.path().join("missing").display().to_string(),
            ],
            report_dir: Some(reports.clone()),
            ..Sources::default()
        };
        let (summary, out) = load(&sources).await;
        assert!(!summary.success());
        assert_eq!((summary.finished, summary.failed), (1, 1));
        assert_eq!(summary.problems.len(), 1, "{:?}", summary.problems);
        assert!(
            summary.problems[0].contains("missing"),
            "{:?}",
            summary.problems
        );
        let paths = summary.report.expect("report paths");
        let failed = std::fs::read_to_string(&paths.failed).expect("failed list");
        assert_eq!(failed, format!("{}\n", bad.display()));
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.lines().filter(|l| l.contains("\"create\"")).count() >= 5);

        // Fixed, then only the failed list is loaded again.
        std::fs::write(&bad, &full).expect("write");
        let rerun = Sources {
            list: Some(paths.failed.clone()),
            report_dir: Some(reports.join("rerun")),
            ..Sources::default()
        };
        let (summary, out) = load(&rerun).await;
        assert!(summary.success(), "{}", summary.text());
        assert_eq!((summary.finished, summary.failed), (1, 0));
        assert_eq!(summary.stats.documents(), 300);
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(text.lines().count(), 600);
        let finished = std::fs::read_to_string(
            reports
                .join("rerun")
                .join("loader-load.error.log.finish.log"),
        )
        .expect("finished list");
        assert_eq!(finished, format!("{}\n", bad.display()));
    }
}
