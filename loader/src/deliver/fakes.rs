//! Test doubles of the delivery's edges, shared by the delivery's and the handler's tests.

use super::*;
use crate::sink::{ObjectFailure, SinkError, WriteOutcome};
use futures::future::BoxFuture;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Mutex;

pub(crate) fn cloudtrail_key(n: u32) -> String {
    format!(
        "AWSLogs/o-abcdef1234/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T0000Z_{n}.json.gz"
    )
}

/// A CloudTrail object with `n` events `<prefix>-0..n`.
pub(crate) fn cloudtrail(prefix: &str, n: usize) -> Vec<u8> {
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "eventID": format!("{prefix}-{i}"),
                "eventTime": "2024-05-01T00:00:00Z",
                "eventName": "ListUsers",
                "eventSource": "iam.amazonaws.com",
            })
        })
        .collect();
    gzip(&serde_json::to_vec(&serde_json::json!({ "Records": records })).expect("json"))
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// Objects in memory; counts how often each is opened.
#[derive(Default)]
pub(crate) struct FakeSource {
    pub objects: HashMap<String, Vec<u8>>,
    pub opened: Mutex<Vec<String>>,
    /// Serve bodies as async streams (as S3 does) instead of blocking readers.
    pub streamed: bool,
    /// Objects whose GetObject does not answer for a minute (a hung connection).
    pub hung: std::collections::HashSet<String>,
}

impl FakeSource {
    pub fn with(mut self, key: &str, body: Vec<u8>) -> Self {
        self.objects.insert(key.to_owned(), body);
        self
    }
}

impl ObjectSource for FakeSource {
    fn open<'a>(&'a self, object: &'a ObjectRef) -> BoxFuture<'a, Result<ObjectBody, SourceError>> {
        Box::pin(async move {
            self.opened.lock().expect("lock").push(object.key.clone());
            if self.hung.contains(&object.key) {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            }
            match self.objects.get(&object.key) {
                Some(body) if self.streamed => Ok(ObjectBody {
                    reader: BodyReader::Async(Box::new(std::io::Cursor::new(body.clone()))),
                    size: None,
                    modified: None,
                }),
                Some(body) => Ok(ObjectBody::from_bytes(body.clone())),
                None => Err(SourceError {
                    object: object.name(),
                    reason: "NoSuchKey: The specified key does not exist.".into(),
                    not_found: true,
                }),
            }
        })
    }
}

/// Records every chunk; fails every chunk holding a document of an object in `fail`.
#[derive(Default)]
pub(crate) struct FakeSink {
    pub chunks: Mutex<Vec<Vec<BulkItem>>>,
    pub fail: HashSet<String>,
    /// Document ids refused for good, as OpenSearch does with a mapping error.
    pub quarantine: HashSet<String>,
    /// Documents each write reports as answered 429 before they went in.
    pub rejected_per_write: u64,
    /// Writes running now, and the most seen at once.
    pub in_flight: std::sync::atomic::AtomicUsize,
    pub max_in_flight: std::sync::atomic::AtomicUsize,
    /// How long a write waits for another one to start beside it (a test of concurrent
    /// writes, whatever the machine's load).
    pub wait_for_company: Option<Duration>,
}

impl DocumentSink for FakeSink {
    fn write(&self, items: Vec<BulkItem>) -> BoxFuture<'_, WriteOutcome> {
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            // Give other deliveries the chance to overlap with this write.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            if let Some(wait) = self.wait_for_company {
                let started = std::time::Instant::now();
                while self.max_in_flight.load(Ordering::SeqCst) < 2 && started.elapsed() < wait {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let mut outcome = WriteOutcome::default();
            let mut failed_objects: Vec<Arc<str>> = Vec::new();
            outcome.stats.rejected = self.rejected_per_write;
            for (position, item) in items.iter().enumerate() {
                if self.quarantine.contains(item.id.as_str()) {
                    outcome.stats.quarantined += 1;
                } else if self.fail.contains(&*item.origin.object) {
                    outcome.stats.failed += 1;
                    if !failed_objects.contains(&item.origin.object) {
                        failed_objects.push(Arc::clone(&item.origin.object));
                    }
                } else {
                    outcome.stats.created += 1;
                    outcome.created.push(position);
                }
            }
            outcome.failures = failed_objects
                .into_iter()
                .map(|object| ObjectFailure {
                    error: SinkError::RetriesExhausted {
                        object: object.to_string(),
                        items: 1,
                        attempts: 3,
                        elapsed: Duration::from_secs(1),
                        last_error: "HTTP 503".into(),
                    },
                    object,
                })
                .collect();
            self.chunks.lock().expect("lock").push(items);
            outcome
        })
    }
}

impl FakeSink {
    pub fn ids(&self) -> Vec<String> {
        self.chunks
            .lock()
            .expect("lock")
            .iter()
            .flatten()
            .map(|i| i.id.to_string())
            .collect()
    }

    pub fn chunk_sizes(&self) -> Vec<usize> {
        self.chunks
            .lock()
            .expect("lock")
            .iter()
            .map(Vec::len)
            .collect()
    }
}
