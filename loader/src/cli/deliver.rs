//! One object of a `loader load` run: read it (local file, or S3 streamed), run the pipeline on
//! a blocking thread, and hand the documents to the sink (NDJSON lines, or the OpenSearch bulk
//! sink in chunks). The run only sees [`Delivery`], so it is tested with any implementation.

use super::list::Target;
use crate::pipeline::{Document, Outcome, Pipeline, Stats};
use crate::sink::{BulkItem, BulkSink, Origin, SinkStats};
use aws_sdk_s3::error::DisplayErrorContext;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What became of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectOutcome {
    /// Every document is in the sink (or quarantined, which counts as processed).
    Loaded,
    /// Not a log the configuration loads (unknown key, CloudTrail digest, ...).
    Skipped(String),
    /// To load again: the reason names the object and what went wrong.
    Failed(String),
}

/// One object's result and counters.
#[derive(Debug, Clone)]
pub struct ObjectResult {
    pub outcome: ObjectOutcome,
    pub stats: Stats,
    pub sink: Option<SinkStats>,
}

/// Loads one object, whatever the source and the sink.
pub trait Delivery: Send + Sync {
    fn deliver<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, ObjectResult>;
}

/// Where the documents go.
pub enum Output {
    /// NDJSON documents (or `_bulk` lines with `bulk`), to a file or stdout.
    Ndjson {
        writer: Arc<Mutex<Box<dyn Write + Send>>>,
        bulk: bool,
    },
    OpenSearch(Arc<BulkSink>),
}

/// Documents handed to the bulk sink at once: large enough for full requests, small enough that
/// an object of any size stays within a few MB of memory.
const BULK_CHUNK: usize = 2_000;
/// NDJSON output is written in blocks of whole lines this large.
const NDJSON_BLOCK: usize = 1 << 20;

/// The CLI's delivery: local files and S3 objects, to NDJSON or OpenSearch.
pub struct CliDelivery {
    pub pipeline: Arc<Pipeline>,
    pub s3: Option<aws_sdk_s3::Client>,
    pub output: Output,
    pub ingested: DateTime<Utc>,
}

impl Delivery for CliDelivery {
    fn deliver<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, ObjectResult> {
        Box::pin(self.deliver_one(target))
    }
}

impl CliDelivery {
    async fn deliver_one(&self, target: &Target) -> ObjectResult {
        let name = target.to_string();
        let reader: Box<dyn Read + Send> = match self.open(target).await {
            Ok(r) => r,
            Err(reason) => {
                let mut stats = Stats::default();
                stats.objects += 1;
                return ObjectResult {
                    outcome: ObjectOutcome::Failed(format!("{name}: {reason}")),
                    stats,
                    sink: None,
                };
            }
        };
        match &self.output {
            Output::Ndjson { writer, bulk } => {
                self.to_ndjson(target, name, reader, Arc::clone(writer), *bulk)
                    .await
            }
            Output::OpenSearch(sink) => {
                self.to_opensearch(target, name, reader, Arc::clone(sink))
                    .await
            }
        }
    }

    /// A reader over the object's bytes; S3 bodies are streamed, never held whole.
    async fn open(&self, target: &Target) -> Result<Box<dyn Read + Send>, String> {
        match target {
            Target::Local { path, .. } => std::fs::File::open(path)
                .map(|f| Box::new(f) as Box<dyn Read + Send>)
                .map_err(|e| format!("cannot open: {e}")),
            Target::S3 { bucket, key } => {
                let Some(s3) = &self.s3 else {
                    return Err("no S3 client".to_owned());
                };
                let object = s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| format!("cannot read: {}", DisplayErrorContext(&e)))?;
                let (tx, rx) = mpsc::channel(8);
                let mut body = object.body;
                tokio::spawn(async move {
                    while let Some(chunk) = body.next().await {
                        let chunk = chunk.map_err(|e| e.to_string());
                        let stop = chunk.is_err();
                        if tx.send(chunk).await.is_err() || stop {
                            break;
                        }
                    }
                });
                Ok(Box::new(ChunkReader {
                    rx,
                    current: Bytes::new(),
                }))
            }
        }
    }

    async fn to_ndjson(
        &self,
        target: &Target,
        name: String,
        reader: Box<dyn Read + Send>,
        writer: Arc<Mutex<Box<dyn Write + Send>>>,
        bulk: bool,
    ) -> ObjectResult {
        let pipeline = Arc::clone(&self.pipeline);
        let key = target.key().to_owned();
        let ingested = self.ingested;
        let joined = tokio::task::spawn_blocking(move || {
            let mut stats = Stats::default();
            let mut buf = Vec::with_capacity(NDJSON_BLOCK);
            let mut write_error: Option<io::Error> = None;
            let flush = |buf: &mut Vec<u8>, write_error: &mut Option<io::Error>| {
                if buf.is_empty() || write_error.is_some() {
                    buf.clear();
                    return;
                }
                let result = match writer.lock() {
                    Ok(mut w) => w.write_all(buf),
                    Err(_) => Err(io::Error::other("the output writer is poisoned")),
                };
                if let Err(e) = result {
                    *write_error = Some(e);
                }
                buf.clear();
            };
            let outcome = {
                let mut emit = |doc: Document| {
                    let written = if bulk {
                        doc.write_bulk(&mut buf)
                    } else {
                        doc.write_ndjson(&mut buf)
                    };
                    if let Err(e) = written {
                        write_error.get_or_insert(io::Error::other(e));
                    }
                    if buf.len() >= NDJSON_BLOCK {
                        flush(&mut buf, &mut write_error);
                    }
                };
                pipeline.load_object(&key, &name, reader, ingested, &mut stats, &mut emit)
            };
            flush(&mut buf, &mut write_error);
            if let Ok(mut w) = writer.lock()
                && let Err(e) = w.flush()
            {
                write_error.get_or_insert(e);
            }
            let outcome = match (outcome, write_error) {
                (_, Some(e)) => {
                    ObjectOutcome::Failed(format!("{name}: cannot write the output: {e}"))
                }
                (o, None) => outcome_of(&name, o),
            };
            ObjectResult {
                outcome,
                stats,
                sink: None,
            }
        })
        .await;
        joined.unwrap_or_else(|e| panicked(target, e))
    }

    async fn to_opensearch(
        &self,
        target: &Target,
        name: String,
        reader: Box<dyn Read + Send>,
        sink: Arc<BulkSink>,
    ) -> ObjectResult {
        let pipeline = Arc::clone(&self.pipeline);
        let key = target.key().to_owned();
        let ingested = self.ingested;
        let (tx, mut rx) = mpsc::channel::<Vec<BulkItem>>(2);
        let object: Arc<str> = Arc::from(name.as_str());
        let read = tokio::task::spawn_blocking(move || {
            let mut stats = Stats::default();
            let mut chunk = Vec::with_capacity(BULK_CHUNK);
            let mut serialize_error: Option<String> = None;
            // Documents are numbered in the order the object yields them: the position a
            // quarantine entry names.
            let mut position = 0u64;
            let mut sink_gone = false;
            let outcome = {
                let mut emit = |doc: Document| {
                    match BulkItem::from_document(&doc, Origin::new(Arc::clone(&object), position))
                    {
                        Ok(item) => chunk.push(item),
                        Err(e) => {
                            serialize_error.get_or_insert(format!(
                                "document {position} cannot be serialized: {e}"
                            ));
                        }
                    }
                    position += 1;
                    if chunk.len() >= BULK_CHUNK && !sink_gone {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(BULK_CHUNK));
                        sink_gone = tx.blocking_send(full).is_err();
                    }
                };
                pipeline.load_object(&key, &name, reader, ingested, &mut stats, &mut emit)
            };
            if !chunk.is_empty() && !sink_gone {
                let _ = tx.blocking_send(chunk);
            }
            (stats, outcome, serialize_error)
        });
        let write = async {
            let mut total = SinkStats::default();
            let mut first_failure: Option<String> = None;
            while let Some(items) = rx.recv().await {
                let outcome = sink.write(items).await;
                total.merge(&outcome.stats);
                if first_failure.is_none()
                    && let Some(f) = outcome.failures.first()
                {
                    first_failure = Some(f.error.to_string());
                }
            }
            (total, first_failure)
        };
        let (read, (sink_stats, sink_failure)) = tokio::join!(read, write);
        let (stats, outcome, serialize_error) = match read {
            Ok(r) => r,
            Err(e) => return panicked(target, e),
        };
        let name = target.to_string();
        let outcome = if let Some(reason) = sink_failure {
            ObjectOutcome::Failed(reason)
        } else if let Some(reason) = serialize_error {
            ObjectOutcome::Failed(format!("{name}: {reason}"))
        } else {
            outcome_of(&name, outcome)
        };
        ObjectResult {
            outcome,
            stats,
            sink: Some(sink_stats),
        }
    }
}

fn outcome_of(name: &str, outcome: Outcome) -> ObjectOutcome {
    match outcome {
        Outcome::Loaded { .. } => ObjectOutcome::Loaded,
        Outcome::Skipped(reason) => ObjectOutcome::Skipped(reason.to_string()),
        Outcome::Failed { reason, .. } => ObjectOutcome::Failed(format!("{name}: {reason}")),
    }
}

/// A panic in the pipeline fails the object, never the run.
fn panicked(target: &Target, e: tokio::task::JoinError) -> ObjectResult {
    let mut stats = Stats::default();
    stats.objects += 1;
    ObjectResult {
        outcome: ObjectOutcome::Failed(format!("{target}: the loader stopped on it: {e}")),
        stats,
        sink: None,
    }
}

/// A blocking reader over chunks a task receives from S3.
struct ChunkReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(reason)) => return Err(io::Error::other(reason)),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}
