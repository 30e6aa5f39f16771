//! Delivery of one object: read it from a [`ObjectSource`] as a stream, run the synchronous
//! [`Pipeline`] over it on a blocking thread, and hand its documents in chunks through a
//! bounded channel to a [`DocumentSink`]. Memory stays bounded whatever the object's size: at
//! most a chunk being filled, one waiting and one being written per thread the pipeline
//! loads an object on ([`Pipeline::with_threads`]).
//!
//! The result is an [`ObjectReport`] the Lambda and the CLI share. An object fails as a whole
//! when it cannot be read to its end or when the sink could not account for all its documents
//! (so SQS delivers it again; the deterministic ids make that harmless); a bad record is
//! reported and counted but does not fail its object. An object whose key its type may not
//! come from (a CloudTrail key outside the organization trail's layout) is refused unread, and
//! not delivered again.

pub mod sink;
pub mod source;

pub use sink::{DocumentSink, NdjsonFormat, NdjsonSink};
pub use source::{BodyReader, LocalSource, ObjectBody, ObjectSource, S3Source, SourceError};

use crate::pipeline::{Document, ErrorReport, Outcome, Pipeline, Stats};
use crate::sink::{BulkItem, Origin, SinkStats};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use shared::metrics::{Metrics, Unit};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The EMF dimension of every per-object metric, as the es-loader names it.
pub const LOG_TYPE_DIMENSION: &str = "logtype";

/// One object to load.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The bucket of an S3 object; `None` for a local file.
    pub bucket: Option<String>,
    /// The object key, decoded (no percent-encoding): the log type is detected from it. For a
    /// local file, its path below the folder given (laid out like the bucket).
    pub key: String,
    /// For a local file: where it is, when that is not the key itself.
    pub path: Option<PathBuf>,
}

impl ObjectRef {
    pub fn new(bucket: Option<String>, key: impl Into<String>) -> Self {
        Self {
            bucket,
            key: key.into(),
            path: None,
        }
    }

    pub fn s3(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self::new(Some(bucket.into()), key)
    }

    /// A local file at `path` whose key (for detection) is `key`.
    pub fn local(path: impl Into<PathBuf>, key: impl Into<String>) -> Self {
        Self {
            bucket: None,
            key: key.into(),
            path: Some(path.into()),
        }
    }

    /// How users name the object: `s3://bucket/key`, or the local path.
    pub fn name(&self) -> String {
        match (&self.bucket, &self.path) {
            (Some(bucket), _) => format!("s3://{bucket}/{}", self.key),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => self.key.clone(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// How documents are handed to the sink: a chunk holds at most `max_docs` documents and at most
/// `max_bytes` bytes of bulk lines (action line and source, as the sink counts a request), so at
/// the sink's default limits (the same numbers) one chunk is exactly one bulk request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    pub max_docs: usize,
    pub max_bytes: usize,
}

impl ChunkLimits {
    pub const DEFAULT_MAX_DOCS: usize = 5_000;
    pub const DEFAULT_MAX_BYTES: usize = 8 * 1024 * 1024;
}

impl Default for ChunkLimits {
    fn default() -> Self {
        Self {
            max_docs: Self::DEFAULT_MAX_DOCS,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// What became of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Read to its end and every document stored, a duplicate or quarantined. Records that
    /// could not be normalized are counted in the report's `stats`.
    Loaded,
    /// Nothing to load (no log type claims the key, a digest file, ...): a success.
    Skipped(String),
    /// Unreadable, cut short, or documents not accounted for by the sink: to be delivered again.
    Failed(String),
    /// Not where objects of its type may come from (see [`crate::provenance`]): never read, and
    /// not delivered again, since no retry can change its key.
    Refused(String),
}

impl DeliveryOutcome {
    pub fn is_failed(&self) -> bool {
        matches!(self, Self::Failed(_))
    }

    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused(_))
    }

    fn label(&self) -> &'static str {
        match self {
            Self::Loaded => "loaded",
            Self::Skipped(_) => "skipped",
            Self::Failed(_) => "failed",
            Self::Refused(_) => "refused",
        }
    }
}

/// Everything known about one delivered object.
#[derive(Debug, Clone)]
pub struct ObjectReport {
    pub object: ObjectRef,
    /// The detected log type (`None` when the key claims none).
    pub log_type: Option<String>,
    pub outcome: DeliveryOutcome,
    /// The pipeline's counters for this object (records, documents, record errors).
    pub stats: Stats,
    /// The sink's counters for this object.
    pub sink: SinkStats,
    /// Bytes read from the object (compressed, as stored).
    pub input_bytes: u64,
    /// From the start of the delivery to the last document accounted for.
    pub duration: Duration,
    /// Time spent waiting for the sink.
    pub sink_duration: Duration,
}

impl ObjectReport {
    fn new(object: &ObjectRef, log_type: Option<String>, outcome: DeliveryOutcome) -> Self {
        Self {
            object: object.clone(),
            log_type,
            outcome,
            stats: Stats::default(),
            sink: SinkStats::default(),
            input_bytes: 0,
            duration: Duration::ZERO,
            sink_duration: Duration::ZERO,
        }
    }

    /// Adds this object's metrics under the es-loader's names (plus DuplicateLogCount,
    /// QuarantinedLogCount and RetryCount). Records that yielded no document because they were
    /// bad count as ErrorLogLoadCount, like documents OpenSearch refused.
    pub fn add_metrics(&self, metrics: &mut Metrics) {
        metrics.add("InputLogFileSize", self.input_bytes as f64, Unit::Bytes);
        metrics.count("TotalLogFileCount", 1);
        metrics.count("TotalLogCount", self.stats.records());
        self.sink.add_to(metrics);
        metrics.count(
            crate::sink::stats::ERROR_LOG_LOAD_COUNT,
            self.stats.error_count,
        );
        metrics.add(
            "TotalDurationTime",
            self.duration.as_secs_f64() * 1000.0,
            Unit::Milliseconds,
        );
    }

    /// The object's EMF metrics with the log type as dimension; `None` for a skipped or
    /// refused object (nothing was read; the invocation's metrics count them).
    pub fn metrics(&self, namespace_from: Metrics) -> Option<Metrics> {
        let log_type = self.log_type.as_deref()?;
        if matches!(
            self.outcome,
            DeliveryOutcome::Skipped(_) | DeliveryOutcome::Refused(_)
        ) {
            return None;
        }
        let mut metrics = namespace_from.dimension(LOG_TYPE_DIMENSION, log_type);
        self.add_metrics(&mut metrics);
        Some(metrics)
    }

    /// One log line for the object (a JSON object in Lambda) with its key, type, counts and
    /// timings.
    pub fn log(&self) {
        let name = self.object.name();
        let log_type = self.log_type.as_deref().unwrap_or("");
        let reason = match &self.outcome {
            DeliveryOutcome::Loaded => "",
            DeliveryOutcome::Skipped(r)
            | DeliveryOutcome::Failed(r)
            | DeliveryOutcome::Refused(r) => r.as_str(),
        };
        macro_rules! line {
            ($level:ident, $msg:literal) => {
                tracing::$level!(
                    s3_key = %self.object.key,
                    object = %name,
                    log_type,
                    outcome = self.outcome.label(),
                    reason,
                    input_bytes = self.input_bytes,
                    records = self.stats.records(),
                    documents = self.stats.documents(),
                    record_errors = self.stats.error_count,
                    loaded = self.sink.loaded(),
                    duplicates = self.sink.duplicates,
                    quarantined = self.sink.quarantined,
                    not_loaded = self.sink.failed,
                    retries = self.sink.retries,
                    duration_ms = self.duration.as_millis() as u64,
                    sink_ms = self.sink_duration.as_millis() as u64,
                    $msg
                )
            };
        }
        match self.outcome {
            DeliveryOutcome::Failed(_) => line!(error, "object failed"),
            DeliveryOutcome::Refused(_) => line!(error, "object refused"),
            DeliveryOutcome::Loaded | DeliveryOutcome::Skipped(_) => line!(info, "object done"),
        }
    }
}

/// Loads one object: see the module documentation. Logs the report and emits its metrics
/// before returning it.
pub async fn deliver_object<S, K>(
    pipeline: &Arc<Pipeline>,
    source: &S,
    sink: &K,
    object: &ObjectRef,
    ingested: DateTime<Utc>,
    limits: ChunkLimits,
) -> ObjectReport
where
    S: ObjectSource + ?Sized,
    K: DocumentSink + ?Sized,
{
    let report = deliver_quietly(pipeline, source, sink, object, ingested, limits).await;
    report.log();
    if let Some(mut metrics) = report.metrics(Metrics::from_env()) {
        metrics.flush();
    }
    report
}

/// [`deliver_object`] without the log line and the metrics (tests, callers that aggregate).
pub async fn deliver_quietly<S, K>(
    pipeline: &Arc<Pipeline>,
    source: &S,
    sink: &K,
    object: &ObjectRef,
    ingested: DateTime<Utc>,
    limits: ChunkLimits,
) -> ObjectReport
where
    S: ObjectSource + ?Sized,
    K: DocumentSink + ?Sized,
{
    let started = Instant::now();
    let name = object.name();

    // Skipped and refused objects are never downloaded.
    let log_type = match pipeline.log_type_of(&object.key) {
        Ok(t) => t,
        Err(reason) => {
            let mut report =
                ObjectReport::new(object, None, DeliveryOutcome::Skipped(reason.to_string()));
            report.stats.count_skipped(&reason);
            report.duration = started.elapsed();
            return report;
        }
    };
    if let Err(refusal) = pipeline.check_provenance(log_type, &object.key) {
        let mut report = ObjectReport::new(
            object,
            Some(log_type.name.clone()),
            DeliveryOutcome::Refused(format!("{name}: {refusal}")),
        );
        report.stats.count_refused(&refusal);
        report.duration = started.elapsed();
        return report;
    }
    let log_type = log_type.name.clone();

    let body = match source.open(object).await {
        Ok(body) => body,
        Err(e) => {
            let reason = e.to_string();
            let mut report = ObjectReport::new(
                object,
                Some(log_type.clone()),
                DeliveryOutcome::Failed(reason.clone()),
            );
            report.stats.count_unreadable(
                &log_type,
                ErrorReport {
                    object: name,
                    position: None,
                    reason: e.reason,
                },
            );
            report.duration = started.elapsed();
            return report;
        }
    };

    let counted = Arc::new(AtomicU64::new(0));
    let abort = Arc::new(AtomicBool::new(false));
    let modified = body.modified;
    let reader: Box<dyn Read + Send> = match body.reader {
        BodyReader::Blocking(r) => r,
        BodyReader::Async(r) => Box::new(tokio_util::io::SyncIoBridge::new(r)),
    };
    let reader = GuardedReader {
        inner: reader,
        counted: Arc::clone(&counted),
        abort: Arc::clone(&abort),
    };

    // One chunk waits in the channel while the next is filled and the previous is written.
    let (tx, mut rx) = mpsc::channel::<Vec<BulkItem>>(1);
    let producer = {
        let pipeline = Arc::clone(pipeline);
        let key = object.key.clone();
        let name = name.clone();
        let abort = Arc::clone(&abort);
        tokio::task::spawn_blocking(move || {
            let mut stats = Stats::default();
            let object: Arc<str> = Arc::from(name.as_str());
            let mut chunker = Chunker::new(limits, tx, abort);
            // Serialized on the thread that made the document; placed in order by the chunker.
            let prepare =
                |doc: Document| BulkItem::from_document(doc, Origin::new(Arc::clone(&object), 0));
            let outcome = pipeline.load_object_prepared(
                &key,
                &name,
                reader,
                ingested,
                modified,
                &mut stats,
                &prepare,
                &mut |item| chunker.push(item),
            );
            chunker.finish();
            (outcome, stats)
        })
    };

    let mut sink_stats = SinkStats::default();
    let mut sink_duration = Duration::ZERO;
    let mut sink_failure: Option<String> = None;
    {
        // An object loaded on several threads is also written (encoded, compressed, sent) as
        // several requests at once; their outcomes are taken in order.
        let chunks = futures::stream::poll_fn(|cx| rx.poll_recv(cx));
        let mut writes = chunks
            .map(|chunk| async move {
                let t = Instant::now();
                let outcome = sink.write(chunk).await;
                (outcome, t.elapsed())
            })
            .buffered(pipeline.threads());
        while let Some((outcome, took)) = writes.next().await {
            sink_duration += took;
            sink_stats.merge(&outcome.stats);
            if let Some(failure) = outcome.failures.into_iter().next() {
                // No use reading further: the object is delivered again as a whole.
                sink_failure = Some(failure.error.to_string());
                abort.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
    drop(rx);

    let (pipeline_outcome, stats) = match producer.await {
        Ok(done) => done,
        Err(e) => {
            let reason = format!("{name}: the pipeline stopped unexpectedly: {e}");
            let mut stats = Stats::default();
            stats.count_unreadable(
                &log_type,
                ErrorReport {
                    object: name.clone(),
                    position: None,
                    reason: reason.clone(),
                },
            );
            (
                Outcome::Failed {
                    log_type: log_type.clone(),
                    reason,
                },
                stats,
            )
        }
    };
    let mut stats = stats;
    if sink_failure.is_some() {
        forget_abort(&mut stats, &log_type);
    }
    let outcome = match (sink_failure, pipeline_outcome) {
        (Some(reason), _) => DeliveryOutcome::Failed(reason),
        (None, Outcome::Failed { reason, .. }) => {
            DeliveryOutcome::Failed(format!("{name}: {reason}"))
        }
        (None, Outcome::Skipped(reason)) => DeliveryOutcome::Skipped(reason.to_string()),
        (None, Outcome::Loaded { .. }) => DeliveryOutcome::Loaded,
    };
    ObjectReport {
        object: object.clone(),
        log_type: Some(log_type),
        outcome,
        stats,
        sink: sink_stats,
        input_bytes: counted.load(Ordering::Relaxed),
        duration: started.elapsed(),
        sink_duration,
    }
}

/// Why the read stops once the sink failed the object.
const ABORTED: &str = "delivery stopped: the sink failed this object";

/// Removes the read error the abort itself caused: the object's failure is the sink's, and
/// its documents are counted by the sink, not as bad records.
fn forget_abort(stats: &mut Stats, log_type: &str) {
    if let Some(pos) = stats
        .errors
        .iter()
        .rposition(|e| e.reason.contains(ABORTED))
    {
        stats.errors.remove(pos);
        stats.error_count = stats.error_count.saturating_sub(1);
        if let Some(t) = stats.per_type.get_mut(log_type) {
            t.errors = t.errors.saturating_sub(1);
        }
    }
}

/// Counts the bytes read, and stops the read with an error once the delivery was aborted (the
/// sink failed), so the pipeline does not normalize the rest of an object for nothing.
struct GuardedReader {
    inner: Box<dyn Read + Send>,
    counted: Arc<AtomicU64>,
    abort: Arc<AtomicBool>,
}

impl Read for GuardedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(std::io::Error::other(ABORTED));
        }
        let n = self.inner.read(buf)?;
        self.counted.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Collects the documents of one object into chunks and sends them (blocking) to the async
/// side.
struct Chunker {
    limits: ChunkLimits,
    tx: mpsc::Sender<Vec<BulkItem>>,
    abort: Arc<AtomicBool>,
    items: Vec<BulkItem>,
    bytes: usize,
    next: u64,
}

impl Chunker {
    fn new(limits: ChunkLimits, tx: mpsc::Sender<Vec<BulkItem>>, abort: Arc<AtomicBool>) -> Self {
        Self {
            limits: ChunkLimits {
                max_docs: limits.max_docs.max(1),
                max_bytes: limits.max_bytes.max(1),
            },
            tx,
            abort,
            items: Vec::new(),
            bytes: 0,
            next: 0,
        }
    }

    fn push(&mut self, mut item: BulkItem) {
        if self.abort.load(Ordering::Relaxed) {
            return;
        }
        // The origin's position is the document's place in the object's output.
        item.origin.record = self.next;
        self.next += 1;
        // Cut before the document that would overflow, as the sink plans its requests: cutting
        // after it left a request's worth plus one document, sent as a second, tiny request.
        let size = crate::sink::encoder::encoded_len(&item);
        if self.bytes + size > self.limits.max_bytes {
            self.send();
        }
        self.bytes += size;
        self.items.push(item);
        if self.items.len() >= self.limits.max_docs {
            self.send();
        }
    }

    fn send(&mut self) {
        if self.items.is_empty() {
            return;
        }
        // The next chunk is about as long: reserve it at once instead of growing by doubling.
        let next = Vec::with_capacity(self.items.len());
        let chunk = std::mem::replace(&mut self.items, next);
        self.bytes = 0;
        if self.tx.blocking_send(chunk).is_err() {
            // The receiver stopped: the sink failed this object.
            self.abort.store(true, Ordering::Relaxed);
        }
    }

    fn finish(mut self) {
        if !self.abort.load(Ordering::Relaxed) {
            self.send();
        }
    }
}

#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
mod tests;
