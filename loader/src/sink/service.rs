//! The sink's loop: items -> requests -> answers -> per-item verdicts, retrying only what failed,
//! until everything is created, a duplicate, quarantined, or out of retry time.

use super::encoder::{RecycledBody, check_item, encoded_len};
use super::quarantine::{Quarantine, QuarantinedDocument};
use super::request_builder::{BatchLimits, BulkRequest, build_request, halve, plan_batches};
use super::response::{error_summary, parse_bulk_response};
use super::retry::{
    ItemAction, RequestAction, RequestOutcome, RetryPolicy, item_action, request_action,
};
use super::stats::SinkStats;
use super::transport::{BulkTransport, OpenSearchTransport, SendError, TransportError};
use super::{Auth, BulkItem, SinkConfig};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Why the documents of an object could not all be accounted for; the caller fails the object
/// as a whole (the ids make its redelivery harmless).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    #[error(
        "{object}: {items} document(s) not loaded after {attempts} attempt(s) in {elapsed:?}: {last_error}"
    )]
    RetriesExhausted {
        object: String,
        items: u64,
        attempts: u32,
        elapsed: Duration,
        last_error: String,
    },
    #[error("{object}: {items} document(s) not loaded: {reason}")]
    Refused {
        object: String,
        items: u64,
        reason: String,
    },
    #[error("{object}: record {record} could not be quarantined: {reason}")]
    QuarantineFailed {
        object: String,
        record: u64,
        reason: String,
    },
}

/// One object whose documents were not all loaded, with the first reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFailure {
    pub object: Arc<str>,
    pub error: SinkError,
}

/// The result of one [`BulkSink::write`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub stats: SinkStats,
    /// Objects to fail, one entry per object, in key order.
    pub failures: Vec<ObjectFailure>,
    /// Positions (in the items written) of the documents this write created, in order: not
    /// those that existed already, were quarantined or failed. What happens once per document
    /// (an alert's notification) follows these.
    pub created: Vec<usize>,
}

impl WriteOutcome {
    /// Every document is created, a duplicate, or quarantined.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }

    /// The failure of `object`, if it has one.
    pub fn failure_of(&self, object: &str) -> Option<&SinkError> {
        self.failures
            .iter()
            .find(|f| &*f.object == object)
            .map(|f| &f.error)
    }
}

/// The OpenSearch bulk sink. Cheap to share (`Arc`): concurrent writes (several objects at
/// once) share its bound on requests in flight.
pub struct BulkSink {
    transport: Arc<dyn BulkTransport>,
    quarantine: Arc<dyn Quarantine>,
    /// Target request size; lowered when the server answers 413, so later requests fit.
    max_bytes: AtomicUsize,
    request_max_bytes: usize,
    max_items: usize,
    gzip_level: u32,
    retry: RetryPolicy,
    in_flight: Semaphore,
}

/// A failed item and why, before grouping by object.
struct ItemFailure {
    position: usize,
    error: FailureKind,
}

enum FailureKind {
    Exhausted {
        attempts: u32,
        elapsed: Duration,
        last_error: String,
    },
    Refused(String),
    Quarantine(String),
}

/// What one batch came to.
#[derive(Default)]
struct BatchResult {
    stats: SinkStats,
    failed: Vec<ItemFailure>,
    created: Vec<usize>,
}

impl BulkSink {
    pub fn new(
        config: &SinkConfig,
        transport: Arc<dyn BulkTransport>,
        quarantine: Arc<dyn Quarantine>,
    ) -> Self {
        Self {
            transport,
            quarantine,
            max_bytes: AtomicUsize::new(config.bulk_max_bytes.max(1)),
            request_max_bytes: config.request_max_bytes.max(1),
            max_items: config.bulk_max_items.max(1),
            gzip_level: config.gzip_level,
            retry: config.retry,
            in_flight: Semaphore::new(config.max_in_flight.max(1)),
        }
    }

    /// The sink for `config` over the OpenSearch transport; with SigV4, or credentials in a
    /// Secrets Manager secret (read now), the AWS configuration comes from the default chain.
    pub async fn connect(
        config: &SinkConfig,
        quarantine: Arc<dyn Quarantine>,
    ) -> Result<Self, TransportError> {
        Self::connect_with(config, quarantine, None).await
    }

    /// [`BulkSink::connect`] with the AWS configuration the caller already loaded, when it has
    /// one (the Lambda builds all its clients from one).
    pub async fn connect_with(
        config: &SinkConfig,
        quarantine: Arc<dyn Quarantine>,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<Self, TransportError> {
        config.validate()?;
        let loaded = match (&config.auth, aws) {
            (Auth::SigV4 { .. } | Auth::BasicSecret { .. }, None) => {
                Some(shared::aws::sdk_config().await)
            }
            _ => None,
        };
        let transport = OpenSearchTransport::connect(config, aws.or(loaded.as_ref())).await?;
        Ok(Self::new(config, Arc::new(transport), quarantine))
    }

    /// Loads `items` (from one object or several) and accounts for every one of them. The items
    /// stay in memory until their verdict, so callers hand over a large object in chunks (a few
    /// thousand documents); concurrent calls share the in-flight bound.
    pub async fn write(&self, items: Vec<BulkItem>) -> WriteOutcome {
        let items = Arc::new(items);
        let mut result = BatchResult::default();

        // Documents no request could carry go to the quarantine before anything is sent.
        let mut sendable = Vec::with_capacity(items.len());
        for (pos, item) in items.iter().enumerate() {
            match check_item(item, self.request_max_bytes) {
                Ok(()) => sendable.push(pos),
                Err(e) => {
                    self.quarantine_item(
                        &items,
                        pos,
                        0,
                        "document_rejected_by_loader",
                        &e.to_string(),
                        &mut result,
                    )
                    .await
                }
            }
        }

        let batches = plan_batches(&items, &sendable, self.limits());
        let mut running: FuturesUnordered<_> = batches
            .into_iter()
            .map(|batch| self.send_batch(Arc::clone(&items), batch))
            .collect();
        while let Some(batch) = running.next().await {
            result.stats.merge(&batch.stats);
            result.failed.extend(batch.failed);
            result.created.extend(batch.created);
        }
        group_failures(&items, result)
    }

    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_bytes: self.max_bytes.load(Ordering::Relaxed),
            max_items: self.max_items,
        }
    }

    /// Sends one planned batch until each of its items has a final verdict.
    async fn send_batch(&self, items: Arc<Vec<BulkItem>>, batch: Vec<usize>) -> BatchResult {
        let mut result = BatchResult::default();
        // The retry time counts from the first failure, not from when the batch was queued
        // behind other requests.
        let mut first_failure: Option<Instant> = None;
        let mut attempt: u32 = 0;
        let mut pending: Vec<Vec<usize>> = vec![batch];
        loop {
            let mut retry_next: Vec<usize> = Vec::new();
            let mut last_error = String::new();
            while let Some(positions) = pending.pop() {
                // The permit covers encoding too, so at most `max_in_flight` bodies exist at once.
                // The semaphore is never closed; if it were, sending unbounded is still correct.
                let permit = self.in_flight.acquire().await.ok();
                // A 413 elsewhere may have lowered the size limit while this batch waited.
                let limits = self.limits();
                if positions.len() > 1 && batch_bytes(&items, &positions) > limits.max_bytes {
                    drop(permit);
                    let mut parts = plan_batches(&items, &positions, limits);
                    parts.reverse();
                    pending.extend(parts);
                    continue;
                }
                let count = positions.len();
                let Some(mut request) = self.encode(&items, positions.clone()).await else {
                    // Only a panic in the encoder gets here; account for the items anyway.
                    result
                        .failed
                        .extend(positions.into_iter().map(|position| ItemFailure {
                            position,
                            error: FailureKind::Refused(
                                "the bulk body could not be encoded".into(),
                            ),
                        }));
                    continue;
                };
                let (outcome, body) = self.send(&mut request, &mut result.stats).await;
                drop(permit);
                match request_action(outcome) {
                    RequestAction::ReadItems => match parse_bulk_response(&body, count) {
                        Ok(answers) => {
                            for (&pos, answer) in request.positions.iter().zip(answers) {
                                match item_action(answer.status) {
                                    ItemAction::Created => {
                                        result.stats.created += 1;
                                        result.created.push(pos);
                                    }
                                    ItemAction::Duplicate => result.stats.duplicates += 1,
                                    ItemAction::Retry => {
                                        if answer.status == 429 {
                                            result.stats.rejected += 1;
                                        }
                                        last_error = match &answer.error {
                                            Some(e) => {
                                                format!("HTTP {} for an item: {e}", answer.status)
                                            }
                                            None => format!("HTTP {} for an item", answer.status),
                                        };
                                        retry_next.push(pos);
                                    }
                                    ItemAction::Quarantine => {
                                        let (kind, reason) = match &answer.error {
                                            Some(e) => (e.kind.as_str(), e.reason.as_str()),
                                            None => ("http_error", "refused without a reason"),
                                        };
                                        self.quarantine_item(
                                            &items,
                                            pos,
                                            answer.status,
                                            kind,
                                            reason,
                                            &mut result,
                                        )
                                        .await;
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            last_error = e.to_string();
                            retry_next.extend(request.positions);
                        }
                    },
                    RequestAction::RetryAll => {
                        if outcome == RequestOutcome::Status(429) {
                            result.stats.rejected += count as u64;
                        }
                        last_error = describe(outcome, &body);
                        retry_next.extend(request.positions);
                    }
                    RequestAction::Split => match halve(&request.positions) {
                        Some((a, b)) => {
                            // Later requests start at the size that is known to be too big, halved.
                            self.max_bytes.fetch_min(
                                (request.uncompressed_len / 2).max(1),
                                Ordering::Relaxed,
                            );
                            tracing::warn!(
                                bytes = request.uncompressed_len,
                                items = count,
                                "OpenSearch answered 413 (request too large): halving the request"
                            );
                            result.stats.retries += count as u64;
                            pending.push(b);
                            pending.push(a);
                        }
                        None => {
                            let reason = format!(
                                "the request with this document alone ({} bytes) is too large for the server (HTTP 413)",
                                request.uncompressed_len
                            );
                            for &pos in &request.positions {
                                self.quarantine_item(
                                    &items,
                                    pos,
                                    413,
                                    "request_too_large",
                                    &reason,
                                    &mut result,
                                )
                                .await;
                            }
                        }
                    },
                    RequestAction::Fail(reason) => {
                        let reason = format!("{reason}; answer: {}", error_summary(&body));
                        result
                            .failed
                            .extend(request.positions.iter().map(|&position| ItemFailure {
                                position,
                                error: FailureKind::Refused(reason.clone()),
                            }));
                    }
                }
            }
            if retry_next.is_empty() {
                return result;
            }
            let elapsed = first_failure.get_or_insert_with(Instant::now).elapsed();
            match self.retry.next_delay(attempt, elapsed, fastrand::f64()) {
                Some(delay) => {
                    tracing::info!(
                        items = retry_next.len(),
                        attempt = attempt + 1,
                        delay_ms = delay.as_millis() as u64,
                        error = %last_error,
                        "retrying bulk items"
                    );
                    result.stats.retries += retry_next.len() as u64;
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    // Re-plan: the failed items are a subset, but the size limit may have dropped.
                    pending = plan_batches(&items, &retry_next, self.limits());
                    pending.reverse();
                }
                None => {
                    let attempts = attempt + 1;
                    tracing::warn!(
                        items = retry_next.len(),
                        attempts,
                        error = %last_error,
                        "bulk retries exhausted"
                    );
                    result
                        .failed
                        .extend(retry_next.into_iter().map(|position| ItemFailure {
                            position,
                            error: FailureKind::Exhausted {
                                attempts,
                                elapsed,
                                last_error: last_error.clone(),
                            },
                        }));
                    return result;
                }
            }
        }
    }

    /// Encodes and compresses off the async threads: a full 8 MiB body takes tens of ms.
    async fn encode(
        &self,
        items: &Arc<Vec<BulkItem>>,
        positions: Vec<usize>,
    ) -> Option<BulkRequest> {
        let items = Arc::clone(items);
        let level = self.gzip_level;
        tokio::task::spawn_blocking(move || build_request(&items, positions, level))
            .await
            .ok()
    }

    /// One HTTP request (the caller holds an in-flight permit); counts bytes, requests and
    /// response time.
    /// The body is moved out of `request` (it is not needed once sent).
    async fn send(
        &self,
        request: &mut BulkRequest,
        stats: &mut SinkStats,
    ) -> (RequestOutcome, bytes::Bytes) {
        stats.requests += 1;
        stats.bytes_sent += request.body.len() as u64;
        stats.bytes_uncompressed += request.uncompressed_len as u64;
        let started = Instant::now();
        let answer = self
            .transport
            .send_bulk(
                body_bytes(std::mem::take(&mut request.body), request.gzip),
                request.gzip,
            )
            .await;
        stats.response_time += started.elapsed();
        match answer {
            Ok(reply) => (RequestOutcome::Status(reply.status), reply.body),
            Err(SendError::Timeout(t)) => (
                RequestOutcome::Timeout,
                bytes::Bytes::from(format!("no answer within {t:?}")),
            ),
            Err(SendError::Connection(reason)) => {
                (RequestOutcome::Connection, bytes::Bytes::from(reason))
            }
        }
    }

    async fn quarantine_item(
        &self,
        items: &[BulkItem],
        pos: usize,
        status: u16,
        error_type: &str,
        reason: &str,
        result: &mut BatchResult,
    ) {
        let Some(item) = items.get(pos) else { return };
        let doc = QuarantinedDocument {
            index: &item.index,
            id: item.id.as_str(),
            source: &item.source,
            origin: &item.origin,
            status,
            error_type,
            reason,
        };
        match self.quarantine.put(&doc).await {
            Ok(location) => {
                tracing::warn!(
                    object = %item.origin.object,
                    record = item.origin.record,
                    index = %item.index,
                    id = %item.id,
                    status,
                    error_type,
                    reason,
                    location = %location,
                    "document quarantined"
                );
                result.stats.quarantined += 1;
            }
            Err(e) => result.failed.push(ItemFailure {
                position: pos,
                error: FailureKind::Quarantine(format!(
                    "{e} (the document was refused: {error_type}: {reason})"
                )),
            }),
        }
    }
}

/// Compressed bodies go back to the encoder's pool once sent; uncompressed ones (megabytes each,
/// gzip level 0) are not worth keeping.
fn body_bytes(body: Vec<u8>, gzip: bool) -> bytes::Bytes {
    if gzip {
        RecycledBody::into_bytes(body)
    } else {
        bytes::Bytes::from(body)
    }
}

fn batch_bytes(items: &[BulkItem], positions: &[usize]) -> usize {
    positions
        .iter()
        .filter_map(|&p| items.get(p))
        .map(encoded_len)
        .sum()
}

fn describe(outcome: RequestOutcome, body: &[u8]) -> String {
    match outcome {
        RequestOutcome::Status(s) => format!("HTTP {s}: {}", error_summary(body)),
        RequestOutcome::Timeout => String::from_utf8_lossy(body).into_owned(),
        RequestOutcome::Connection => {
            format!("connection error: {}", String::from_utf8_lossy(body))
        }
    }
}

/// One failure per object: the first reason, with the number of its documents not loaded.
fn group_failures(items: &[BulkItem], result: BatchResult) -> WriteOutcome {
    let mut stats = result.stats;
    stats.failed = result.failed.len() as u64;
    let mut created = result.created;
    created.sort_unstable();
    let mut by_object: BTreeMap<Arc<str>, (u64, Option<SinkError>)> = BTreeMap::new();
    for failure in result.failed {
        let Some(item) = items.get(failure.position) else {
            continue;
        };
        let entry = by_object
            .entry(Arc::clone(&item.origin.object))
            .or_insert((0, None));
        entry.0 += 1;
        if entry.1.is_none() {
            let object = item.origin.object.to_string();
            entry.1 = Some(match failure.error {
                FailureKind::Exhausted {
                    attempts,
                    elapsed,
                    last_error,
                } => SinkError::RetriesExhausted {
                    object,
                    items: 0,
                    attempts,
                    elapsed,
                    last_error,
                },
                FailureKind::Refused(reason) => SinkError::Refused {
                    object,
                    items: 0,
                    reason,
                },
                FailureKind::Quarantine(reason) => SinkError::QuarantineFailed {
                    object,
                    record: item.origin.record,
                    reason,
                },
            });
        }
    }
    let failures = by_object
        .into_iter()
        .filter_map(|(object, (count, error))| {
            let mut error = error?;
            match &mut error {
                SinkError::RetriesExhausted { items, .. } | SinkError::Refused { items, .. } => {
                    *items = count
                }
                SinkError::QuarantineFailed { .. } => {}
            }
            Some(ObjectFailure { object, error })
        })
        .collect();
    WriteOutcome {
        stats,
        failures,
        created,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Origin;
    use crate::sink::quarantine::QuarantineError;
    use crate::sink::transport::HttpReply;
    use futures::future::BoxFuture;
    use std::io::Read;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU32;

    /// One item as the server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        id: String,
        source: String,
    }

    type Script = dyn Fn(u32, &[Seen]) -> Result<HttpReply, SendError> + Send + Sync;

    /// A server that answers by script and remembers what it got.
    struct Scripted {
        script: Box<Script>,
        requests: AtomicU32,
        seen: Mutex<Vec<Vec<Seen>>>,
        now_in_flight: AtomicU32,
        max_in_flight: AtomicU32,
        /// How long the server takes to answer.
        latency: Duration,
    }

    impl Scripted {
        fn new(
            script: impl Fn(u32, &[Seen]) -> Result<HttpReply, SendError> + Send + Sync + 'static,
        ) -> Arc<Self> {
            Arc::new(Self {
                script: Box::new(script),
                requests: AtomicU32::new(0),
                seen: Mutex::new(Vec::new()),
                now_in_flight: AtomicU32::new(0),
                max_in_flight: AtomicU32::new(0),
                latency: Duration::from_millis(2),
            })
        }

        fn slow(
            latency: Duration,
            script: impl Fn(u32, &[Seen]) -> Result<HttpReply, SendError> + Send + Sync + 'static,
        ) -> Arc<Self> {
            let mut t = Arc::into_inner(Self::new(script)).expect("sole owner");
            t.latency = latency;
            Arc::new(t)
        }

        fn request_sizes(&self) -> Vec<usize> {
            self.seen
                .lock()
                .expect("lock")
                .iter()
                .map(Vec::len)
                .collect()
        }
    }

    fn decode(body: &[u8], gzip: bool) -> Vec<Seen> {
        let mut text = String::new();
        if gzip {
            flate2::read::GzDecoder::new(body)
                .read_to_string(&mut text)
                .expect("gzip body");
        } else {
            text = String::from_utf8(body.to_vec()).expect("utf-8 body");
        }
        assert!(text.ends_with('\n'), "bulk bodies end with a newline");
        let lines: Vec<&str> = text.lines().collect();
        lines
            .chunks(2)
            .map(|pair| {
                let action: serde_json::Value = serde_json::from_str(pair[0]).expect("action JSON");
                let create = action.get("create").expect("create operation");
                Seen {
                    id: create["_id"].as_str().expect("_id").to_owned(),
                    source: pair[1].to_owned(),
                }
            })
            .collect()
    }

    impl BulkTransport for Scripted {
        fn send_bulk(
            &self,
            body: bytes::Bytes,
            gzip: bool,
        ) -> BoxFuture<'_, Result<HttpReply, SendError>> {
            Box::pin(async move {
                let now = self.now_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_in_flight.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(self.latency).await;
                let n = self.requests.fetch_add(1, Ordering::SeqCst);
                let seen = decode(&body, gzip);
                self.seen.lock().expect("lock").push(seen.clone());
                let answer = (self.script)(n, &seen);
                self.now_in_flight.fetch_sub(1, Ordering::SeqCst);
                answer
            })
        }
    }

    fn reply(status: u16, body: String) -> Result<HttpReply, SendError> {
        Ok(HttpReply {
            status,
            body: bytes::Bytes::from(body),
        })
    }

    /// A bulk answer with one status per item.
    fn items_reply(statuses: impl Iterator<Item = u16>) -> Result<HttpReply, SendError> {
        let items: Vec<serde_json::Value> = statuses
            .map(|status| {
                let mut body = serde_json::json!({"status": status});
                if status >= 300 {
                    body["error"] = serde_json::json!({"type": format!("error_{status}"), "reason": format!("reason {status}")});
                }
                serde_json::json!({"create": body})
            })
            .collect();
        reply(
            200,
            serde_json::json!({"errors": true, "items": items}).to_string(),
        )
    }

    fn all_created(_: u32, seen: &[Seen]) -> Result<HttpReply, SendError> {
        items_reply(seen.iter().map(|_| 201))
    }

    /// id, object, record, status, error type.
    type Entry = (String, String, u64, u16, String);

    #[derive(Default)]
    struct MemoryQuarantine {
        entries: Mutex<Vec<Entry>>,
        fail: bool,
    }

    impl Quarantine for MemoryQuarantine {
        fn put<'a>(
            &'a self,
            doc: &'a QuarantinedDocument<'a>,
        ) -> BoxFuture<'a, Result<String, QuarantineError>> {
            Box::pin(async move {
                if self.fail {
                    return Err(QuarantineError::S3 {
                        bucket: "b".into(),
                        key: doc.id.into(),
                        reason: "access denied".into(),
                    });
                }
                self.entries.lock().expect("lock").push((
                    doc.id.to_owned(),
                    doc.origin.object.to_string(),
                    doc.origin.record,
                    doc.status,
                    doc.error_type.to_owned(),
                ));
                Ok(format!("memory/{}", doc.id))
            })
        }
    }

    fn config() -> SinkConfig {
        let mut c = SinkConfig::new("http://127.0.0.1:1");
        c.bulk_max_items = 10;
        c.retry = RetryPolicy {
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            max_elapsed: Duration::from_millis(300),
        };
        c
    }

    fn items(object: &str, n: usize) -> Vec<BulkItem> {
        (0..n)
            .map(|i| {
                BulkItem::new(
                    "log-test-2024-05",
                    format!("{object}-{i}"),
                    format!("{{\"n\":{i}}}").into_bytes(),
                    Origin::new(object, i as u64),
                )
            })
            .collect()
    }

    fn sink(config: &SinkConfig, t: &Arc<Scripted>, q: &Arc<MemoryQuarantine>) -> BulkSink {
        BulkSink::new(config, t.clone(), q.clone())
    }

    #[tokio::test]
    async fn everything_created_in_batches_of_the_configured_count() {
        let t = Scripted::new(all_created);
        let q = Arc::new(MemoryQuarantine::default());
        let out = sink(&config(), &t, &q).write(items("a", 25)).await;
        assert!(out.is_complete(), "{:?}", out.failures);
        assert_eq!(out.stats.created, 25);
        assert_eq!(out.stats.requests, 3);
        assert_eq!(
            (
                out.stats.retries,
                out.stats.quarantined,
                out.stats.duplicates
            ),
            (0, 0, 0)
        );
        let mut sizes = t.request_sizes();
        sizes.sort();
        assert_eq!(sizes, vec![5, 10, 10]);
        assert!(out.stats.bytes_sent > 0 && out.stats.bytes_sent < out.stats.bytes_uncompressed);
        let seen = t.seen.lock().expect("lock").concat();
        let mut ids: Vec<&str> = seen.iter().map(|s| s.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 25, "every id sent exactly once");
        assert!(
            seen.iter()
                .any(|s| s.id == "a-3" && s.source == "{\"n\":3}")
        );
    }

    #[tokio::test]
    async fn item_429_and_5xx_retry_only_those_items() {
        // First request: item 2 throttled, item 5 unavailable; later requests: all created.
        let t = Scripted::new(|n, seen| {
            if n == 0 {
                items_reply((0..seen.len()).map(|i| match i {
                    2 => 429,
                    5 => 503,
                    _ => 201,
                }))
            } else {
                all_created(n, seen)
            }
        });
        let q = Arc::new(MemoryQuarantine::default());
        let out = sink(&config(), &t, &q).write(items("a", 8)).await;
        assert!(out.is_complete(), "{:?}", out.failures);
        assert_eq!(out.stats.created, 8);
        assert_eq!(out.stats.retries, 2);
        assert_eq!(out.stats.rejected, 1, "only the 429 is a write rejection");
        let seen = t.seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 2);
        let retried: Vec<&str> = seen[1].iter().map(|s| s.id.as_str()).collect();
        assert_eq!(retried, vec!["a-2", "a-5"]);
    }

    #[tokio::test]
    async fn duplicates_are_counted_not_errors() {
        let t = Scripted::new(|_, seen| {
            items_reply(
                seen.iter()
                    .map(|s| if s.id.ends_with('1') { 409 } else { 201 }),
            )
        });
        let q = Arc::new(MemoryQuarantine::default());
        let out = sink(&config(), &t, &q).write(items("a", 3)).await;
        assert!(out.is_complete());
        assert_eq!(
            (out.stats.created, out.stats.duplicates, out.stats.loaded()),
            (2, 1, 3)
        );
        assert_eq!(out.stats.requests, 1);
    }

    #[tokio::test]
    async fn mapping_errors_are_quarantined_with_their_origin() {
        let t = Scripted::new(|_, seen| {
            items_reply(seen.iter().map(|s| if s.id == "a-4" { 400 } else { 201 }))
        });
        let q = Arc::new(MemoryQuarantine::default());
        let out = sink(&config(), &t, &q).write(items("a", 6)).await;
        assert!(
            out.is_complete(),
            "a quarantined document does not fail its object"
        );
        assert_eq!((out.stats.created, out.stats.quarantined), (5, 1));
        let entries = q.entries.lock().expect("lock").clone();
        assert_eq!(
            entries,
            vec![("a-4".into(), "a".into(), 4, 400, "error_400".into())]
        );
    }

    #[tokio::test]
    async fn whole_request_errors_and_timeouts_are_retried() {
        let t = Scripted::new(|n, seen| match n {
            0 => reply(503, "Service Unavailable".into()),
            1 => reply(
                429,
                r#"{"error":{"type":"too_many","reason":"slow down"}}"#.into(),
            ),
            2 => Err(SendError::Timeout(Duration::from_secs(1))),
            3 => Err(SendError::Connection("connection reset by peer".into())),
            4 => reply(200, "<html>not json</html>".into()),
            _ => all_created(n, seen),
        });
        let q = Arc::new(MemoryQuarantine::default());
        let out = sink(&config(), &t, &q).write(items("a", 4)).await;
        assert!(out.is_complete(), "{:?}", out.failures);
        assert_eq!(out.stats.created, 4);
        assert_eq!(out.stats.requests, 6);
        assert_eq!(
            out.stats.rejected, 4,
            "the whole-request 429 rejected its 4 documents"
        );
        assert_eq!(out.stats.retries, 20);
    }

    #[tokio::test]
    async fn http_413_halves_until_requests_fit_and_later_requests_start_smaller() {
        // The server takes at most 3 items per request.
        let t = Scripted::new(|n, seen| {
            if seen.len() > 3 {
                reply(413, String::new())
            } else {
                all_created(n, seen)
            }
        });
        let q = Arc::new(MemoryQuarantine::default());
        let s = sink(&config(), &t, &q);
        let out = s.write(items("a", 10)).await;
        assert!(out.is_complete(), "{:?}", out.failures);
        assert_eq!((out.stats.created, out.stats.quarantined), (10, 0));
        assert!(t.request_sizes().contains(&10));
        let before = t.request_sizes().len();
        // The learned size limit keeps the next write from sending 10 at once again.
        let out = s.write(items("b", 10)).await;
        assert_eq!(out.stats.created, 10);
        let later = &t.request_sizes()[before..];
        assert!(later.iter().all(|&n| n < 10), "{later:?}");
    }

    #[tokio::test]
    async fn a_single_document_too_large_for_the_server_is_quarantined() {
        let t = Scripted::new(|n, seen| {
            if seen.iter().any(|s| s.id == "a-1") {
                reply(413, String::new())
            } else {
                all_created(n, seen)
            }
        });
        let q = Arc::new(MemoryQuarantine::default());
        let out = sink(&config(), &t, &q).write(items("a", 4)).await;
        assert!(out.is_complete(), "{:?}", out.failures);
        assert_eq!((out.stats.created, out.stats.quarantined), (3, 1));
        assert_eq!(q.entries.lock().expect("lock")[0].4, "request_too_large");
    }

    #[tokio::test]
    async fn documents_no_request_can_carry_are_quarantined_before_sending() {
        let t = Scripted::new(all_created);
        let q = Arc::new(MemoryQuarantine::default());
        let mut config = config();
        config.bulk_max_bytes = 200;
        config.request_max_bytes = 300;
        let mut all = items("a", 3);
        all[0].source = b"{\"a\":\n1}".to_vec().into();
        all[2].source = format!("{{\"big\":\"{}\"}}", "x".repeat(400))
            .into_bytes()
            .into();
        let out = sink(&config, &t, &q).write(all).await;
        assert!(out.is_complete());
        assert_eq!((out.stats.created, out.stats.quarantined), (1, 2));
        let entries = q.entries.lock().expect("lock").clone();
        assert!(
            entries
                .iter()
                .all(|e| e.3 == 0 && e.4 == "document_rejected_by_loader")
        );
        assert_eq!(t.request_sizes(), vec![1]);
    }

    #[tokio::test]
    async fn exhausted_retries_fail_only_the_objects_concerned() {
        // Object b's documents are throttled forever; a's are created.
        let t = Scripted::new(|_, seen| {
            items_reply(
                seen.iter()
                    .map(|s| if s.id.starts_with("b-") { 429 } else { 201 }),
            )
        });
        let q = Arc::new(MemoryQuarantine::default());
        let mut all = items("a", 4);
        all.extend(items("b", 3));
        let started = Instant::now();
        let out = sink(&config(), &t, &q).write(all).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "bounded by the retry time"
        );
        assert_eq!(out.stats.created, 4);
        assert_eq!(out.stats.failed, 3);
        assert_eq!(out.failures.len(), 1);
        assert!(out.failure_of("a").is_none());
        match out.failure_of("b") {
            Some(SinkError::RetriesExhausted {
                object,
                items,
                attempts,
                last_error,
                ..
            }) => {
                assert_eq!((object.as_str(), *items), ("b", 3));
                assert!(*attempts > 1);
                assert!(last_error.contains("429"), "{last_error}");
            }
            other => panic!("expected RetriesExhausted for b, got {other:?}"),
        }
        let message = out.failures[0].error.to_string();
        assert!(
            message.starts_with("b: 3 document(s) not loaded"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn retry_time_counts_from_the_first_failure_not_from_queueing() {
        // One request at a time, 40 ms each: the last of 8 batches waits ~300 ms for its turn,
        // longer than the whole retry time, and must still get its retry.
        let seen_once = Mutex::new(std::collections::HashSet::new());
        let t = Scripted::slow(Duration::from_millis(40), move |n, seen| {
            if seen_once.lock().expect("lock").insert(seen[0].id.clone()) {
                reply(503, "busy".into())
            } else {
                all_created(n, seen)
            }
        });
        let q = Arc::new(MemoryQuarantine::default());
        let mut config = config();
        config.max_in_flight = 1;
        config.bulk_max_items = 1;
        config.retry.max_elapsed = Duration::from_millis(150);
        let out = sink(&config, &t, &q).write(items("a", 8)).await;
        assert!(out.is_complete(), "{:?}", out.failures);
        assert_eq!((out.stats.created, out.stats.retries), (8, 8));
    }

    #[tokio::test]
    async fn refused_requests_fail_at_once_without_retries() {
        let t = Scripted::new(|_, _| {
            reply(403, r#"{"error":{"type":"security_exception","reason":"no permissions for [indices:data/write/bulk]"}}"#.into())
        });
        let q = Arc::new(MemoryQuarantine::default());
        let out = sink(&config(), &t, &q).write(items("a", 3)).await;
        assert_eq!(out.stats.requests, 1);
        assert_eq!(out.stats.retries, 0);
        match out.failure_of("a") {
            Some(SinkError::Refused { items, reason, .. }) => {
                assert_eq!(*items, 3);
                assert!(
                    reason.contains("403") && reason.contains("no permissions"),
                    "{reason}"
                );
            }
            other => panic!("expected Refused, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_quarantine_that_cannot_be_written_fails_the_object() {
        let t = Scripted::new(|_, seen| {
            items_reply(seen.iter().map(|s| if s.id == "a-1" { 400 } else { 201 }))
        });
        let q = Arc::new(MemoryQuarantine {
            fail: true,
            ..Default::default()
        });
        let out = sink(&config(), &t, &q).write(items("a", 3)).await;
        assert_eq!(out.stats.created, 2);
        match out.failure_of("a") {
            Some(SinkError::QuarantineFailed { record, reason, .. }) => {
                assert_eq!(*record, 1);
                assert!(
                    reason.contains("access denied") && reason.contains("error_400"),
                    "{reason}"
                );
            }
            other => panic!("expected QuarantineFailed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn requests_in_flight_stay_within_the_bound_across_writes() {
        let t = Scripted::new(all_created);
        let q = Arc::new(MemoryQuarantine::default());
        let mut config = config();
        config.max_in_flight = 2;
        config.bulk_max_items = 1;
        let s = sink(&config, &t, &q);
        let (a, b) = tokio::join!(s.write(items("a", 12)), s.write(items("b", 12)));
        assert_eq!(a.stats.created + b.stats.created, 24);
        let max = t.max_in_flight.load(Ordering::SeqCst);
        assert!((1..=2).contains(&max), "max in flight {max}");
    }

    #[tokio::test]
    async fn uncompressed_bodies_when_gzip_is_off() {
        let t = Scripted::new(all_created);
        let q = Arc::new(MemoryQuarantine::default());
        let mut config = config();
        config.gzip_level = 0;
        let out = sink(&config, &t, &q).write(items("a", 2)).await;
        assert_eq!(out.stats.created, 2);
        assert_eq!(out.stats.bytes_sent, out.stats.bytes_uncompressed);
    }
}
