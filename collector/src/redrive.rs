//! `collector redrive`: replays the collector's dead-letter queue through the handler the Lambda
//! function runs, so each event lands at the key a successful invocation would have written. An
//! event that did get stored after all is simply written again at the same key.
//!
//! Two kinds of messages reach that queue:
//! - Lambda on-failure destination records (asynchronous invocations, that is subscription
//!   deliveries and EventBridge invocations, that failed after Lambda's retries): the event is
//!   `requestPayload`, the function `requestContext.functionArn`.
//! - Dead letters of the EventBridge rule targets (a finding rule could not invoke the
//!   function): the body is the event itself, the function the `TARGET_ARN` attribute.
//!
//! A message is deleted only once its event is stored (or it was a CONTROL_MESSAGE); anything
//! else stays in the queue and is reported.

use crate::{Collector, Invocation, ObjectStore, Outcome, StoreError, account_and_region};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use shared::metrics::Metrics;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use tracing::Instrument;

/// Most messages one ReceiveMessage returns.
pub const RECEIVE_BATCH: usize = 10;
/// Failures and objects listed in the summary; the counts cover every message.
pub const MAX_LISTED: usize = 50;
/// Seconds a received message stays hidden from other receives. Messages left in the queue
/// are made visible again when the run ends, so this only matters if the run is killed.
pub const VISIBILITY_TIMEOUT_SECONDS: i32 = 300;
/// Long-polling wait of a receive: an empty answer after it means the queue is drained.
pub const WAIT_SECONDS: i32 = 1;

/// One message received from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    pub receipt_handle: String,
    pub body: String,
    /// String and Number message attributes by name (`TARGET_ARN`, `ERROR_MESSAGE`, ...).
    pub attributes: BTreeMap<String, String>,
}

/// Why a message holds nothing that can be replayed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("message body is empty")]
    Empty,
    #[error("message body is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("message body is JSON but not an object")]
    NotAnObject,
    #[error("message body has a field of an unexpected type: {0}")]
    Malformed(serde_json::Error),
    #[error(
        "message body is neither a Lambda on-failure record (requestContext, requestPayload), nor an EventBridge event (source, detail-type), nor a CloudWatch Logs subscription event (awslogs)"
    )]
    Unrecognised,
    #[error(
        "on-failure record of request {request_id} has no requestPayload: the event was not kept"
    )]
    NoPayload { request_id: String },
    #[error("{origin} {arn:?} is not a Lambda function ARN")]
    FunctionArn { origin: &'static str, arn: String },
    #[error(
        "no function to file the event under: the message has no requestContext.functionArn and no TARGET_ARN attribute, and no --function-arn was given"
    )]
    NoFunctionArn,
}

impl RecordError {
    /// Short name for the report.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordError::Empty => "EmptyMessage",
            RecordError::NotJson(_) | RecordError::NotAnObject | RecordError::Malformed(_) => {
                "NotJson"
            }
            RecordError::Unrecognised => "UnknownRecord",
            RecordError::NoPayload { .. } => "NoRequestPayload",
            RecordError::FunctionArn { .. } => "FunctionArn",
            RecordError::NoFunctionArn => "NoFunctionArn",
        }
    }
}

/// How the event reached the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSource {
    /// A Lambda on-failure destination record wrapping the event.
    OnFailureDestination,
    /// The event itself (an EventBridge target's dead letter).
    Event,
}

/// A dead letter, read: the event to replay and the function it was meant for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    /// JSON text of the event, exactly as it appears in the message.
    pub event: &'a str,
    /// The function's ARN without version or alias.
    pub function_arn: String,
    /// Lambda's request id of the failed invocation, when the record carries one.
    pub request_id: Option<String>,
    pub source: RecordSource,
    /// What went wrong the first time, as the record or the attributes tell it.
    pub original_error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(default)]
    request_context: Option<RequestContext>,
    #[serde(borrow, default)]
    request_payload: Option<&'a RawValue>,
    #[serde(default)]
    response_payload: Option<serde_json::Value>,
    #[serde(default)]
    response_context: Option<ResponseContext>,
    #[serde(default)]
    source: Option<IgnoredAny>,
    #[serde(default, rename = "detail-type")]
    detail_type: Option<IgnoredAny>,
    #[serde(default)]
    awslogs: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext {
    request_id: Option<String>,
    function_arn: Option<String>,
    condition: Option<String>,
    approximate_invoke_count: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseContext {
    function_error: Option<String>,
}

/// `arn:<partition>:lambda:<region>:<account>:function:<name>`, without the `:<version>` or
/// `:<alias>` a record may carry (`$LATEST`, `3`, `live`); `None` when it is no function ARN.
pub fn unqualified_function_arn(arn: &str) -> Option<&str> {
    let arn = arn.trim();
    let plain = match arn.match_indices(':').nth(6) {
        Some((end, _)) => arn.get(..end)?,
        None => arn,
    };
    account_and_region(plain).ok().map(|_| plain)
}

/// Reads one message: which event to replay, and under which function. The function comes
/// from the record (`requestContext.functionArn`), else the `TARGET_ARN` attribute, else
/// `fallback_function_arn`.
pub fn parse_dead_letter<'a>(
    body: &'a str,
    attributes: &BTreeMap<String, String>,
    fallback_function_arn: Option<&str>,
) -> Result<DeadLetter<'a>, RecordError> {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return Err(RecordError::Empty);
    }
    let parsed: Body<'a> = serde_json::from_str(body).map_err(|error| {
        if error.is_syntax() || error.is_eof() {
            RecordError::NotJson(error)
        } else if !trimmed.starts_with('{') {
            RecordError::NotAnObject
        } else {
            RecordError::Malformed(error)
        }
    })?;
    let attribute = |name: &str| {
        attributes
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let fallback = fallback_function_arn.filter(|arn| !arn.trim().is_empty());

    if parsed.request_context.is_some() || parsed.request_payload.is_some() {
        let context = parsed.request_context.unwrap_or_default();
        let Some(event) = parsed.request_payload else {
            return Err(RecordError::NoPayload {
                request_id: context.request_id.unwrap_or_else(|| "(none)".to_owned()),
            });
        };
        let function_arn = choose_function_arn([
            (
                context.function_arn.as_deref(),
                "requestContext.functionArn",
            ),
            (attribute("TARGET_ARN"), "TARGET_ARN attribute"),
            (fallback, "--function-arn"),
        ])?;
        let mut first_error = Vec::new();
        if let Some(condition) = &context.condition {
            first_error.push(match context.approximate_invoke_count {
                Some(n) => format!("{condition} after {n} attempts"),
                None => condition.clone(),
            });
        }
        let response = parsed.response_payload.as_ref();
        let text = |field: &str| response.and_then(|r| r.get(field)).and_then(|v| v.as_str());
        match (text("errorType"), text("errorMessage")) {
            (None, None) => first_error.extend(
                parsed
                    .response_context
                    .and_then(|c| c.function_error)
                    .map(|e| format!("function error {e}")),
            ),
            (kind, message) => first_error.extend(
                [kind, message]
                    .into_iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ),
        }
        return Ok(DeadLetter {
            event: event.get(),
            function_arn,
            request_id: context.request_id,
            source: RecordSource::OnFailureDestination,
            original_error: (!first_error.is_empty()).then(|| first_error.join(": ")),
        });
    }

    let is_event =
        (parsed.source.is_some() && parsed.detail_type.is_some()) || parsed.awslogs.is_some();
    if !is_event {
        return Err(RecordError::Unrecognised);
    }
    let function_arn = choose_function_arn([
        (attribute("TARGET_ARN"), "TARGET_ARN attribute"),
        (fallback, "--function-arn"),
    ])?;
    // EventBridge names its attributes ERROR_CODE / ERROR_MESSAGE; a function's own
    // dead-letter queue, ErrorCode / ErrorMessage.
    let original_error = [
        attribute("ERROR_CODE").or_else(|| attribute("ErrorCode")),
        attribute("ERROR_MESSAGE").or_else(|| attribute("ErrorMessage")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(": ");
    Ok(DeadLetter {
        event: body,
        function_arn,
        request_id: attribute("RequestID").map(str::to_owned),
        source: RecordSource::Event,
        original_error: (!original_error.is_empty()).then_some(original_error),
    })
}

/// The first ARN given, stripped of its qualifier; an invalid one is an error, not skipped, so
/// a wrong record is never filed under another function.
fn choose_function_arn<const N: usize>(
    candidates: [(Option<&str>, &'static str); N],
) -> Result<String, RecordError> {
    let (arn, origin) = candidates
        .into_iter()
        .find_map(|(arn, origin)| arn.map(|arn| (arn, origin)))
        .ok_or(RecordError::NoFunctionArn)?;
    unqualified_function_arn(arn)
        .map(str::to_owned)
        .ok_or_else(|| RecordError::FunctionArn {
            origin,
            arn: arn.to_owned(),
        })
}

/// Why the queue could not be used.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot find the queue {queue}: {reason}")]
    NotFound { queue: String, reason: String },
    #[error("cannot receive from the queue {queue}: {reason}")]
    Receive { queue: String, reason: String },
    #[error("cannot delete message {message_id} from {queue}: {reason}")]
    Delete {
        message_id: String,
        queue: String,
        reason: String,
    },
    #[error("cannot make message {message_id} visible again in {queue}: {reason}")]
    Release {
        message_id: String,
        queue: String,
        reason: String,
    },
}

/// What the redrive needs of the queue; narrow so the loop runs against a fake in tests.
pub trait DeadLetterQueue: Send + Sync {
    /// Up to `max` (at most [`RECEIVE_BATCH`]) messages, hidden from other receives for a
    /// while; none after a short wait means the queue is drained.
    fn receive(
        &self,
        max: usize,
    ) -> impl Future<Output = Result<Vec<QueueMessage>, QueueError>> + Send;

    fn delete(&self, message: &QueueMessage)
    -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Makes a received message visible again now; it stays in the queue.
    fn release(
        &self,
        message: &QueueMessage,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The dead-letter queue in SQS.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    /// `queue` is a name (looked up with GetQueueUrl) or a URL (used as it is).
    pub async fn open(client: aws_sdk_sqs::Client, queue: &str) -> Result<Self, QueueError> {
        if queue.starts_with("https://") || queue.starts_with("http://") {
            return Ok(Self {
                client,
                url: queue.to_owned(),
            });
        }
        let not_found = |reason: String| QueueError::NotFound {
            queue: queue.to_owned(),
            reason,
        };
        let answer = client
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .map_err(|e| not_found(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
        let url = answer
            .queue_url()
            .map(str::to_owned)
            .ok_or_else(|| not_found("GetQueueUrl answered without a URL".to_owned()))?;
        Ok(Self { client, url })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl DeadLetterQueue for SqsQueue {
    async fn receive(&self, max: usize) -> Result<Vec<QueueMessage>, QueueError> {
        let max = i32::try_from(max.clamp(1, RECEIVE_BATCH)).unwrap_or(1);
        let answer = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(WAIT_SECONDS)
            .visibility_timeout(VISIBILITY_TIMEOUT_SECONDS)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| QueueError::Receive {
                queue: self.url.clone(),
                reason: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(answer
            .messages()
            .iter()
            .filter_map(|m| {
                let attributes = m
                    .message_attributes()
                    .into_iter()
                    .flatten()
                    .filter_map(|(name, value)| {
                        Some((name.clone(), value.string_value()?.to_owned()))
                    })
                    .collect();
                Some(QueueMessage {
                    id: m.message_id()?.to_owned(),
                    receipt_handle: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    attributes,
                })
            })
            .collect())
    }

    async fn delete(&self, message: &QueueMessage) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Delete {
                message_id: message.id.clone(),
                queue: self.url.clone(),
                reason: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            })
    }

    async fn release(&self, message: &QueueMessage) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Release {
                message_id: message.id.clone(),
                queue: self.url.clone(),
                reason: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            })
    }
}

/// What a run does besides replaying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Stops after this many messages; `None` drains the queue.
    pub max_messages: Option<usize>,
    /// Decodes and names the objects, but writes and deletes nothing.
    pub dry_run: bool,
    /// The function of messages that name none.
    pub function_arn: Option<String>,
}

/// An object written, or in a dry run one that would be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectReport {
    pub message_id: String,
    pub uri: String,
}

/// A message left in the queue because it could not be replayed (or deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureReport {
    pub message_id: String,
    pub kind: String,
    pub reason: String,
    /// Why the first delivery failed, when the message tells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_error: Option<String>,
}

/// The outcome of a run, printed as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub queue: String,
    pub dry_run: bool,
    /// Distinct messages received.
    pub received: usize,
    /// Events written (dry run: that would be written).
    pub stored: usize,
    /// CONTROL_MESSAGEs, acknowledged without a write.
    pub acknowledged: usize,
    /// Messages whose event could not be replayed: not a dead letter, or it failed again.
    pub failed: usize,
    pub deleted: usize,
    /// Replayed messages that could not be deleted (so they will be replayed again).
    pub delete_failed: usize,
    /// The first [`MAX_LISTED`] objects.
    pub objects: Vec<ObjectReport>,
    /// The first [`MAX_LISTED`] failures, delete failures included.
    pub failures: Vec<FailureReport>,
    /// Set when a receive failed and the run stopped there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Summary {
    /// True when every message received was replayed and deleted (or, dry run, could be).
    pub fn is_success(&self) -> bool {
        self.failed == 0 && self.delete_failed == 0 && self.error.is_none()
    }

    fn fail(&mut self, report: FailureReport) {
        tracing::warn!(
            message_id = %report.message_id,
            kind = %report.kind,
            reason = %report.reason,
            original_error = report.original_error.as_deref(),
            "dead letter left in the queue"
        );
        if self.failures.len() < MAX_LISTED {
            self.failures.push(report);
        }
    }
}

/// The store of a redrive: writes through, or in a dry run only names the objects. Dry runs go
/// through the very same handler, so they name exactly the keys a real run writes.
struct ReplayStore<S> {
    inner: S,
    write: bool,
}

impl<S: ObjectStore> ObjectStore for ReplayStore<S> {
    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        content_encoding: Option<&str>,
    ) -> Result<(), StoreError> {
        if !self.write {
            return Ok(());
        }
        self.inner
            .put_object(key, body, content_type, content_encoding)
            .await
    }

    fn uri(&self, key: &str) -> String {
        self.inner.uri(key)
    }
}

/// Drains `queue` (named `queue_name` in the summary) into `store` with the collector's
/// handler. Messages left in the queue are made visible again at the end, so a later run (or
/// someone looking) sees them at once.
pub async fn redrive<Q: DeadLetterQueue, S: ObjectStore>(
    queue: &Q,
    queue_name: &str,
    store: S,
    max_decompressed: usize,
    options: &Options,
    metrics: &mut Metrics,
) -> Summary {
    let collector = Collector::new(
        ReplayStore {
            inner: store,
            write: !options.dry_run,
        },
        max_decompressed,
    );
    let mut summary = Summary {
        queue: queue_name.to_owned(),
        dry_run: options.dry_run,
        ..Summary::default()
    };
    // Messages handled and left in the queue, by id, with their latest receipt handle.
    let mut kept: Vec<QueueMessage> = Vec::new();
    let mut kept_index: HashMap<String, usize> = HashMap::new();
    let mut handled: HashSet<String> = HashSet::new();
    if options.dry_run {
        tracing::info!(queue = queue_name, "dry run: nothing is written or deleted");
    }

    loop {
        let want = match options.max_messages {
            Some(max) => max.saturating_sub(summary.received).min(RECEIVE_BATCH),
            None => RECEIVE_BATCH,
        };
        if want == 0 {
            break;
        }
        let batch = match queue.receive(want).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "receive failed; stopping");
                summary.error = Some(error.to_string());
                break;
            }
        };
        if batch.is_empty() {
            break;
        }
        let mut new_messages = 0;
        for message in batch {
            if !handled.insert(message.id.clone()) {
                // Seen already in this run (its hiding time ran out): keep the newest handle.
                if let Some(&i) = kept_index.get(&message.id) {
                    kept[i] = message;
                }
                continue;
            }
            new_messages += 1;
            summary.received += 1;
            let replayed = replay(&collector, &message, options, metrics).await;
            let keep = match replayed {
                Ok(outcome) => {
                    match outcome {
                        Outcome::ControlMessage => summary.acknowledged += 1,
                        Outcome::Stored { uri, .. } | Outcome::StoredEvent { uri, .. } => {
                            summary.stored += 1;
                            if summary.objects.len() < MAX_LISTED {
                                summary.objects.push(ObjectReport {
                                    message_id: message.id.clone(),
                                    uri,
                                });
                            }
                        }
                    }
                    options.dry_run || !delete(queue, &message, &mut summary).await
                }
                Err(report) => {
                    summary.failed += 1;
                    summary.fail(report);
                    true
                }
            };
            if keep {
                kept_index.insert(message.id.clone(), kept.len());
                kept.push(message);
            }
        }
        if new_messages == 0 {
            // Everything visible was handled already.
            break;
        }
    }

    for message in &kept {
        if let Err(error) = queue.release(message).await {
            tracing::warn!(%error, "message stays hidden until its visibility timeout");
        }
    }
    tracing::info!(
        received = summary.received,
        stored = summary.stored,
        acknowledged = summary.acknowledged,
        failed = summary.failed,
        deleted = summary.deleted,
        dry_run = summary.dry_run,
        "redrive finished"
    );
    summary
}

/// Reads one message and runs its event through the handler.
async fn replay<S: ObjectStore>(
    collector: &Collector<S>,
    message: &QueueMessage,
    options: &Options,
    metrics: &mut Metrics,
) -> Result<Outcome, FailureReport> {
    let failure = |kind: &str, reason: String, original_error: Option<String>| FailureReport {
        message_id: message.id.clone(),
        kind: kind.to_owned(),
        reason,
        original_error,
    };
    let letter = parse_dead_letter(
        &message.body,
        &message.attributes,
        options.function_arn.as_deref(),
    )
    .map_err(|error| failure(error.kind(), error.to_string(), None))?;
    tracing::info!(
        message_id = %message.id,
        function_arn = %letter.function_arn,
        source = ?letter.source,
        original_error = letter.original_error.as_deref(),
        "replaying dead letter"
    );
    let invocation = Invocation {
        function_arn: &letter.function_arn,
        request_id: letter.request_id.as_deref().unwrap_or(&message.id),
    };
    // The handler's own log lines ("stored event", ...) then name the message and, in a dry
    // run, say that nothing was written.
    let span = tracing::info_span!("replay", message_id = %message.id, dry_run = options.dry_run);
    collector
        .handle(letter.event, invocation, metrics)
        .instrument(span)
        .await
        .map_err(|error| {
            failure(
                error.kind(),
                error.to_string(),
                letter.original_error.clone(),
            )
        })
}

/// Deletes a replayed message; false (and reported) when SQS refused.
async fn delete<Q: DeadLetterQueue>(
    queue: &Q,
    message: &QueueMessage,
    summary: &mut Summary,
) -> bool {
    match queue.delete(message).await {
        Ok(()) => {
            summary.deleted += 1;
            true
        }
        Err(error) => {
            summary.delete_failed += 1;
            summary.fail(FailureReport {
                message_id: message.id.clone(),
                kind: "DeleteFailed".to_owned(),
                reason: error.to_string(),
                original_error: None,
            });
            false
        }
    }
}

#[cfg(test)]
mod tests;
