//! The Lambda handler, generic over where objects come from and where documents go.
//!
//! Invoked by SQS, it answers with a partial batch response: exactly the messages that name an
//! object that failed (or that name nothing the loader understands) are reported, so SQS
//! delivers only those again and one bad object never makes the others retry. Invoked directly
//! (S3, SNS or EventBridge as the trigger), it fails the invocation when any object failed, so
//! Lambda's own retries apply. An object refused for its key (see [`crate::provenance`]) is
//! counted and logged but fails nothing: a retry cannot change where it is. Before the
//! invocation's deadline, objects not loaded yet are given up and their messages reported.

use super::events::{self, EventError};
use crate::deliver::{
    ChunkLimits, DeliveryOutcome, DocumentSink, ObjectRef, ObjectReport, ObjectSource,
    deliver_object,
};
use crate::pipeline::Pipeline;
use crate::sink::stats::{QUARANTINED_LOG_COUNT, WRITE_REJECTED_COUNT};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::Utc;
use futures::StreamExt;
use serde_json::Value;
use shared::metrics::Metrics;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::time::Instant;

/// Of the time an invocation has `left`, how long objects may load: all but ten seconds to
/// answer, or all but a fifth of a short timeout.
pub fn time_to_load(left: std::time::Duration) -> std::time::Duration {
    let margin = std::time::Duration::from_secs(10).min(left / 5);
    left.saturating_sub(margin)
}

/// Default number of objects of one invocation loaded at once.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// How an invocation is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerSettings {
    /// Objects of one invocation loaded at once.
    pub concurrency: usize,
    pub chunk: ChunkLimits,
}

impl Default for HandlerSettings {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            chunk: ChunkLimits::default(),
        }
    }
}

/// Why a whole invocation fails.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("the event is not an SQS event: {0}")]
    NotSqs(String),
    #[error("message {index} of the batch failed and has no messageId to report it by: {reason}")]
    NoMessageId { index: usize, reason: String },
    #[error("{}", describe_failed(.0))]
    ObjectsFailed(Vec<String>),
    #[error("the event names no object: {0}")]
    BadEvent(#[from] EventError),
}

impl HandlerError {
    /// Short name for the Lambda error type.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotSqs(_) => "NotSqsEvent",
            Self::NoMessageId { .. } => "NoMessageId",
            Self::ObjectsFailed(_) => "ObjectsFailed",
            Self::BadEvent(_) => "BadEvent",
        }
    }
}

fn describe_failed(reasons: &[String]) -> String {
    format!("{} object(s) failed: {}", reasons.len(), reasons.join("; "))
}

/// What one invocation did, over all its objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationSummary {
    pub loaded: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Objects refused for their key: never read, never retried.
    pub refused: usize,
    /// Messages that named nothing the loader understands.
    pub invalid_messages: usize,
    /// Documents OpenSearch refused for good (now in the quarantine), over all objects.
    pub quarantined: u64,
    /// Documents OpenSearch answered 429, over all objects and attempts.
    pub write_rejected: u64,
}

/// The loader's Lambda handler.
pub struct Handler<S, K> {
    pipeline: Arc<Pipeline>,
    source: S,
    sink: K,
    settings: HandlerSettings,
}

impl<S: ObjectSource, K: DocumentSink> Handler<S, K> {
    pub fn new(pipeline: Arc<Pipeline>, source: S, sink: K, settings: HandlerSettings) -> Self {
        Self {
            pipeline,
            source,
            sink,
            settings,
        }
    }

    pub fn sink(&self) -> &K {
        &self.sink
    }

    /// Handles any event the function may be invoked with: an SQS batch gets a partial batch
    /// response, a direct event a summary (or an error when an object failed).
    pub async fn handle(&self, event: Value) -> Result<Value, HandlerError> {
        self.handle_until(event, None).await
    }

    /// [`Handler::handle`] with a deadline for an SQS batch: objects not loaded by then are
    /// given up, and their messages reported as failures (SQS delivers them again), so the
    /// invocation answers before Lambda stops it and fails the whole batch.
    pub async fn handle_until(
        &self,
        event: Value,
        deadline: Option<Instant>,
    ) -> Result<Value, HandlerError> {
        if events::is_sqs_event(&event) {
            let sqs: SqsEvent =
                serde_json::from_value(event).map_err(|e| HandlerError::NotSqs(e.to_string()))?;
            let response = self.run_sqs(sqs, deadline).await?.0;
            return Ok(serde_json::to_value(response).unwrap_or(Value::Null));
        }
        let summary = self.handle_direct(&event).await?;
        Ok(serde_json::json!({
            "loaded": summary.loaded,
            "skipped": summary.skipped,
            "refused": summary.refused,
        }))
    }

    /// One SQS batch: each message's objects are loaded (all objects of the batch concurrently,
    /// up to the bound); the response names each message with a failed object or a body that
    /// could not be understood.
    pub async fn handle_sqs(&self, event: SqsEvent) -> Result<SqsBatchResponse, HandlerError> {
        self.run_sqs(event, None)
            .await
            .map(|(response, _)| response)
    }

    /// [`Handler::handle_sqs`] with what the batch came to.
    async fn run_sqs(
        &self,
        event: SqsEvent,
        deadline: Option<Instant>,
    ) -> Result<(SqsBatchResponse, InvocationSummary), HandlerError> {
        let mut failed = vec![false; event.records.len()];
        let mut reasons: Vec<Option<String>> = vec![None; event.records.len()];
        let mut summary = InvocationSummary::default();
        // The same object named twice in one batch is loaded once, for all its messages.
        let mut objects: BTreeMap<ObjectRef, Vec<usize>> = BTreeMap::new();
        for (index, message) in event.records.iter().enumerate() {
            let id = message.message_id.as_deref().unwrap_or("?");
            let parsed = match message.body.as_deref() {
                Some(body) => events::parse_body(body),
                None => Err(EventError::NoBody),
            };
            match parsed {
                Ok(notice) => {
                    for reason in &notice.ignored {
                        tracing::info!(message_id = id, %reason, "ignored");
                    }
                    for object in notice.objects {
                        objects.entry(object).or_default().push(index);
                    }
                }
                Err(error) => {
                    tracing::error!(message_id = id, %error, "message names no object to load");
                    summary.invalid_messages += 1;
                    failed[index] = true;
                    reasons[index] = Some(format!("message {id}: {error}"));
                }
            }
        }

        let reports = self
            .deliver_all(objects.keys().cloned().collect(), deadline)
            .await;
        for report in &reports {
            count(&mut summary, report);
            if let DeliveryOutcome::Failed(reason) = &report.outcome {
                for &index in objects.get(&report.object).into_iter().flatten() {
                    failed[index] = true;
                    reasons[index].get_or_insert_with(|| reason.clone());
                }
            }
        }
        // Objects the deadline cut: their messages come back, never silently dropped.
        let done: BTreeSet<&ObjectRef> = reports.iter().map(|r| &r.object).collect();
        for (object, indices) in &objects {
            if done.contains(object) {
                continue;
            }
            tracing::warn!(
                object = %object.name(),
                "not loaded before the invocation's deadline: its message is reported as failed"
            );
            summary.failed += 1;
            for &index in indices {
                failed[index] = true;
                reasons[index].get_or_insert_with(|| {
                    format!("{}: not loaded before the deadline", object.name())
                });
            }
        }
        emit_invocation_metrics(&summary, event.records.len());

        let mut response = SqsBatchResponse::default();
        for (index, message) in event.records.iter().enumerate() {
            if !failed[index] {
                continue;
            }
            let Some(id) = message.message_id.clone() else {
                return Err(HandlerError::NoMessageId {
                    index,
                    reason: reasons[index].clone().unwrap_or_default(),
                });
            };
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        tracing::info!(
            messages = event.records.len(),
            objects = reports.len(),
            loaded = summary.loaded,
            skipped = summary.skipped,
            failed_objects = summary.failed,
            refused_objects = summary.refused,
            invalid_messages = summary.invalid_messages,
            failed_messages = response.batch_item_failures.len(),
            "batch done"
        );
        Ok((response, summary))
    }

    /// An event delivered without SQS (S3, SNS or EventBridge invoking the function).
    pub async fn handle_direct(&self, event: &Value) -> Result<InvocationSummary, HandlerError> {
        let notice = match events::parse_value(event) {
            Ok(notice) => notice,
            Err(error) => {
                let summary = InvocationSummary {
                    invalid_messages: 1,
                    ..InvocationSummary::default()
                };
                emit_invocation_metrics(&summary, 1);
                return Err(error.into());
            }
        };
        for reason in &notice.ignored {
            tracing::info!(%reason, "ignored");
        }
        let mut objects = notice.objects;
        objects.sort();
        objects.dedup();
        let reports = self.deliver_all(objects, None).await;
        let mut summary = InvocationSummary::default();
        let mut failures = Vec::new();
        for report in &reports {
            count(&mut summary, report);
            if let DeliveryOutcome::Failed(reason) = &report.outcome {
                failures.push(reason.clone());
            }
        }
        emit_invocation_metrics(&summary, 1);
        if failures.is_empty() {
            Ok(summary)
        } else {
            Err(HandlerError::ObjectsFailed(failures))
        }
    }

    /// Loads `objects`, up to the concurrency bound at once, in no particular order.
    /// With a deadline, the objects not done by then are dropped (their bulk requests were
    /// `create`s with fixed ids: loading them again duplicates nothing) and have no report.
    async fn deliver_all(
        &self,
        objects: Vec<ObjectRef>,
        deadline: Option<Instant>,
    ) -> Vec<ObjectReport> {
        let ingested = Utc::now();
        let pipeline = &self.pipeline;
        let source = &self.source;
        let sink = &self.sink;
        let chunk = self.settings.chunk;
        let reports = futures::stream::iter(objects)
            .map(|object| async move {
                deliver_object(pipeline, source, sink, &object, ingested, chunk).await
            })
            .buffer_unordered(self.settings.concurrency.max(1));
        match deadline {
            Some(at) => {
                reports
                    .take_until(tokio::time::sleep_until(at))
                    .collect()
                    .await
            }
            None => reports.collect().await,
        }
    }
}

fn count(summary: &mut InvocationSummary, report: &ObjectReport) {
    summary.quarantined += report.sink.quarantined;
    summary.write_rejected += report.sink.rejected;
    match report.outcome {
        DeliveryOutcome::Loaded => summary.loaded += 1,
        DeliveryOutcome::Skipped(_) => summary.skipped += 1,
        DeliveryOutcome::Failed(_) => summary.failed += 1,
        DeliveryOutcome::Refused(_) => summary.refused += 1,
    }
}

/// Counters of the invocation as a whole (the per-object metrics carry the log type).
fn emit_invocation_metrics(summary: &InvocationSummary, messages: usize) {
    invocation_metrics(Metrics::from_env(), summary, messages).flush();
}

fn invocation_metrics(base: Metrics, summary: &InvocationSummary, messages: usize) -> Metrics {
    let mut metrics = base.dimension("Function", "loader");
    metrics.count("MessageCount", messages as u64);
    metrics.count("InvalidMessageCount", summary.invalid_messages as u64);
    metrics.count("FailedObjectCount", summary.failed as u64);
    metrics.count("SkippedObjectCount", summary.skipped as u64);
    metrics.count("RefusedObjectCount", summary.refused as u64);
    // Also per log type in the objects' metrics; summed here so one alarm covers every type.
    metrics.count(QUARANTINED_LOG_COUNT, summary.quarantined);
    metrics.count(WRITE_REJECTED_COUNT, summary.write_rejected);
    metrics
}

#[cfg(test)]
mod tests;
