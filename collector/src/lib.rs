//! The collector: runs in every member account and region and writes CloudWatch Logs
//! subscription payloads and EventBridge events (Security Hub and GuardDuty findings) to the
//! central log bucket, at the deterministic keys of [`shared::keys`].
//!
//! - A DATA_MESSAGE becomes one object whose body is the gzip bytes exactly as CloudWatch Logs
//!   delivered them; a retried invocation writes the same key again.
//! - A CONTROL_MESSAGE is acknowledged and counted; nothing is written.
//! - An EventBridge event is gzipped and written under its source.
//! - Bad input fails the invocation with an error that names the problem, so CloudWatch Logs
//!   retries or the event reaches the function's on-failure destination; nothing is dropped
//!   silently.

pub mod bench;
pub mod redrive;
pub mod store;

use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use shared::keys::{self, CloudWatchLogsObject, EventObject, EventSource, KeyError};
use shared::metrics::Metrics;
use shared::payload::{self, DecodeError, MessageType};
use std::borrow::Cow;
use std::io::Write;
pub use store::{ObjectStore, S3Store, StoreError};

/// Content type of every object the collector writes (JSON, gzip-encoded).
pub const CONTENT_TYPE: &str = "application/json";
pub const CONTENT_ENCODING: &str = "gzip";

/// Settings from the environment of the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `BUCKET`: the central log bucket.
    pub bucket: String,
    /// `KMS_KEY_ARN`: SSE-KMS key for every object (optional).
    pub kms_key_id: Option<String>,
    /// `EXPECTED_BUCKET_OWNER`: account that must own the bucket (optional).
    pub expected_bucket_owner: Option<String>,
    /// `WRITER_ROLE_ARN`: role in the central account to write through (optional).
    pub writer_role_arn: Option<String>,
    /// `WRITER_ROLE_EXTERNAL_ID`: external id for that role (optional).
    pub writer_role_external_id: Option<String>,
    /// `MAX_DECOMPRESSED_BYTES`: cap on a payload's decompressed size (default 64 MiB).
    pub max_decompressed: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("environment variable BUCKET is not set: name the central log bucket")]
    MissingBucket,
    #[error("environment variable MAX_DECOMPRESSED_BYTES={0:?} is not a positive number of bytes")]
    InvalidLimit(String),
}

impl Settings {
    /// Reads the settings through `var` (the process environment in `main`); empty values count
    /// as unset, so a template can pass `""` for "none".
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let max_decompressed = match get("MAX_DECOMPRESSED_BYTES") {
            None => payload::DEFAULT_MAX_DECOMPRESSED,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(SettingsError::InvalidLimit(text))?,
        };
        Ok(Self {
            bucket: get("BUCKET").ok_or(SettingsError::MissingBucket)?,
            kms_key_id: get("KMS_KEY_ARN"),
            expected_bucket_owner: get("EXPECTED_BUCKET_OWNER"),
            writer_role_arn: get("WRITER_ROLE_ARN"),
            writer_role_external_id: get("WRITER_ROLE_EXTERNAL_ID"),
            max_decompressed,
        })
    }

    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// What the Lambda context tells about one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
    pub function_arn: &'a str,
    pub request_id: &'a str,
}

/// Why an invocation failed. Every message names what was wrong and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("invoked function ARN {0:?} is not a Lambda function ARN")]
    FunctionArn(String),
    #[error(
        "event of request {request_id} is neither a CloudWatch Logs subscription event (awslogs.data) nor an EventBridge event (source, detail-type, id, time): {reason}"
    )]
    UnknownEvent { request_id: String, reason: String },
    #[error("CloudWatch Logs subscription data of request {request_id}: {source}")]
    Payload {
        request_id: String,
        #[source]
        source: DecodeError,
    },
    #[error("DATA_MESSAGE from log group {log_group:?}, stream {log_stream:?} holds no log events")]
    NoLogEvents {
        log_group: String,
        log_stream: String,
    },
    #[error(
        "EventBridge event {event_id} from {source_name}: time {time:?} is not an RFC 3339 time"
    )]
    EventTime {
        event_id: String,
        source_name: String,
        time: String,
    },
    #[error("no key for {what}: {source}")]
    Key {
        what: String,
        #[source]
        source: KeyError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CollectError {
    /// Short name for the Lambda error type and the metric.
    pub fn kind(&self) -> &'static str {
        match self {
            CollectError::FunctionArn(_) => "FunctionArn",
            CollectError::UnknownEvent { .. } => "UnknownEvent",
            CollectError::Payload { .. } => "InvalidPayload",
            CollectError::NoLogEvents { .. } => "NoLogEvents",
            CollectError::EventTime { .. } => "InvalidEvent",
            CollectError::Key { .. } => "InvalidKey",
            CollectError::Store(_) => "StoreError",
        }
    }

    /// True when the input itself is bad (as opposed to the bucket being unreachable).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, CollectError::Store(_) | CollectError::FunctionArn(_))
    }
}

/// What one invocation did; returned as the function's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A DATA_MESSAGE written.
    Stored {
        uri: String,
        log_events: usize,
        bytes: usize,
    },
    /// An EventBridge event written.
    StoredEvent { uri: String, bytes: usize },
    /// A CONTROL_MESSAGE acknowledged.
    ControlMessage,
}

/// Account and region of the function, from its ARN.
pub fn account_and_region(function_arn: &str) -> Result<(&str, &str), CollectError> {
    let parts: Vec<&str> = function_arn.splitn(7, ':').collect();
    match parts.as_slice() {
        [
            "arn",
            _partition,
            "lambda",
            region,
            account,
            "function",
            name,
        ] if !region.is_empty() && !account.is_empty() && !name.is_empty() => Ok((account, region)),
        _ => Err(CollectError::FunctionArn(function_arn.to_owned())),
    }
}

/// The fields of an incoming event the collector looks at; the rest stays in the raw text.
#[derive(Debug, Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    awslogs: Option<AwsLogs<'a>>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "detail-type")]
    detail_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    account: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct AwsLogs<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// The handler, generic over where objects go.
#[derive(Debug, Clone)]
pub struct Collector<S> {
    store: S,
    max_decompressed: usize,
}

impl<S: ObjectStore> Collector<S> {
    pub fn new(store: S, max_decompressed: usize) -> Self {
        Self {
            store,
            max_decompressed,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Handles one invocation whose event is the JSON text `event`. Counts what happened in
    /// `metrics` (the caller flushes them), failures included.
    pub async fn handle(
        &self,
        event: &str,
        invocation: Invocation<'_>,
        metrics: &mut Metrics,
    ) -> Result<Outcome, CollectError> {
        let result = self.handle_inner(event, invocation, metrics).await;
        match &result {
            Ok(Outcome::Stored {
                log_events, bytes, ..
            }) => {
                metrics.count("PayloadsStored", 1);
                metrics.count("LogEventsStored", *log_events as u64);
                metrics.add("BytesStored", *bytes as f64, shared::metrics::Unit::Bytes);
            }
            Ok(Outcome::StoredEvent { bytes, .. }) => {
                metrics.count("EventsStored", 1);
                metrics.add("BytesStored", *bytes as f64, shared::metrics::Unit::Bytes);
            }
            Ok(Outcome::ControlMessage) => metrics.count("ControlMessages", 1),
            Err(error) if error.is_bad_input() => {
                tracing::error!(%error, kind = error.kind(), "rejected invalid input");
                metrics.count("InvalidInput", 1);
            }
            Err(error) => {
                tracing::error!(%error, kind = error.kind(), "could not store");
                metrics.count("StoreErrors", 1);
            }
        }
        result
    }

    async fn handle_inner(
        &self,
        event: &str,
        invocation: Invocation<'_>,
        metrics: &mut Metrics,
    ) -> Result<Outcome, CollectError> {
        let (account, region) = account_and_region(invocation.function_arn)?;
        let unknown = |reason: String| CollectError::UnknownEvent {
            request_id: invocation.request_id.to_owned(),
            reason,
        };
        let probe: Probe<'_> = serde_json::from_str(event).map_err(|e| unknown(e.to_string()))?;
        if let Some(awslogs) = &probe.awslogs {
            return self
                .store_subscription(&awslogs.data, account, region, invocation, metrics)
                .await;
        }
        match (&probe.source, &probe.detail_type, &probe.id, &probe.time) {
            (Some(source), Some(detail_type), Some(id), Some(time)) => {
                let time = DateTime::parse_from_rfc3339(time)
                    .map_err(|_| CollectError::EventTime {
                        event_id: id.to_string(),
                        source_name: source.to_string(),
                        time: time.to_string(),
                    })?
                    .with_timezone(&Utc);
                if let Some(owner) = probe.account.as_deref().filter(|owner| *owner != account) {
                    tracing::warn!(
                        event_account = owner,
                        function_account = account,
                        event_id = %id,
                        "EventBridge event is from another account than the collector's; filed under the collector's"
                    );
                    metrics.count("OwnerMismatch", 1);
                }
                let object = EventObject {
                    account,
                    region,
                    source: EventSource::classify(source, detail_type),
                    event_id: id,
                    time,
                };
                let key = keys::build_event_key(&object).map_err(|source| CollectError::Key {
                    what: format!("EventBridge event {id}"),
                    source,
                })?;
                let body = gzip(event.as_bytes());
                let bytes = body.len();
                self.store
                    .put_object(&key, body, CONTENT_TYPE, Some(CONTENT_ENCODING))
                    .await?;
                let uri = self.store.uri(&key);
                tracing::info!(%uri, source = %source, detail_type = %detail_type, "stored event");
                Ok(Outcome::StoredEvent { uri, bytes })
            }
            _ => Err(unknown(
                "no awslogs, and no source/detail-type/id/time".into(),
            )),
        }
    }

    async fn store_subscription(
        &self,
        data: &str,
        account: &str,
        region: &str,
        invocation: Invocation<'_>,
        metrics: &mut Metrics,
    ) -> Result<Outcome, CollectError> {
        let bad = |source| CollectError::Payload {
            request_id: invocation.request_id.to_owned(),
            source,
        };
        let decoded = payload::decode_data(data, self.max_decompressed).map_err(bad)?;
        let payload = decoded.payload().map_err(bad)?;
        if payload.message_type == MessageType::ControlMessage {
            tracing::info!(
                text = payload.log_events.first().map(|e| e.message.as_ref()),
                "control message acknowledged"
            );
            return Ok(Outcome::ControlMessage);
        }
        let first = payload
            .log_events
            .first()
            .ok_or_else(|| CollectError::NoLogEvents {
                log_group: payload.log_group.to_string(),
                log_stream: payload.log_stream.to_string(),
            })?;
        if payload.owner != account {
            tracing::warn!(
                payload_owner = %payload.owner,
                function_account = account,
                log_group = %payload.log_group,
                "payload owner differs from the collector's account; filed under the collector's"
            );
            metrics.count("OwnerMismatch", 1);
        }
        let object = CloudWatchLogsObject {
            account,
            region,
            log_group: &payload.log_group,
            log_stream: &payload.log_stream,
            first_event_id: &first.id,
            first_event_timestamp_ms: first.timestamp,
        };
        let key = keys::build_cloudwatch_logs_key(&object).map_err(|source| CollectError::Key {
            what: format!(
                "log group {:?}, stream {:?}",
                payload.log_group, payload.log_stream
            ),
            source,
        })?;
        let log_events = payload.log_events.len();
        let log_group = payload.log_group.to_string();
        drop(payload);
        // The body is the gzip exactly as delivered: no re-compression.
        let body = decoded.gzip;
        let bytes = body.len();
        self.store
            .put_object(&key, body, CONTENT_TYPE, Some(CONTENT_ENCODING))
            .await?;
        let uri = self.store.uri(&key);
        tracing::info!(%uri, %log_group, log_events, bytes, "stored subscription payload");
        Ok(Outcome::Stored {
            uri,
            log_events,
            bytes,
        })
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Why `collector decode` could not show its input.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("input is empty: nothing to decode")]
    Empty,
    /// Without this, binary input went down the base64 path as empty text and was reported as
    /// an empty payload.
    #[error(
        "input is neither gzip (it starts with bytes {head}, not 1f 8b) nor UTF-8 text (the byte at offset {offset} is not valid UTF-8), so it cannot be a Lambda event, base64 text or payload JSON"
    )]
    Binary { head: String, offset: usize },
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl From<serde_json::Error> for DisplayError {
    fn from(error: serde_json::Error) -> Self {
        DisplayError::Decode(DecodeError::Json(error))
    }
}

/// What `collector decode` prints for the content of `input`: a Lambda subscription event, an
/// EventBridge event, raw gzip bytes (as stored in the bucket), base64 text of them, or
/// already-decoded payload JSON. Each payload (several when concatenated) is one pretty JSON text,
/// fields in the order CloudWatch Logs sends them.
pub fn decode_for_display(input: &[u8], limit: usize) -> Result<Vec<String>, DisplayError> {
    let text = std::str::from_utf8(input).map(str::trim);
    let json: Cow<'_, [u8]> = match text {
        _ if input.starts_with(&[0x1f, 0x8b]) => Cow::Owned(payload::gunzip(input, limit)?),
        Ok("") => return Err(DisplayError::Empty),
        Ok(text) if text.starts_with('{') => {
            match serde_json::from_str::<Probe<'_>>(text) {
                Ok(Probe {
                    awslogs: Some(awslogs),
                    ..
                }) => Cow::Owned(payload::decode_data(&awslogs.data, limit)?.json),
                Ok(Probe {
                    source: Some(_), ..
                }) => {
                    // An EventBridge event: shown as it is.
                    let value: serde_json::Value = serde_json::from_str(text)?;
                    return Ok(vec![serde_json::to_string_pretty(&value)?]);
                }
                // Payload JSON, one or several back to back.
                _ => Cow::Borrowed(text.as_bytes()),
            }
        }
        Ok(text) => {
            let gz = payload::decode_base64(text)?;
            Cow::Owned(payload::gunzip(&gz, limit)?)
        }
        Err(invalid) => {
            // zlib bytes are never valid UTF-8; they get their own, more useful message.
            if let Err(DecodeError::Zlib) = payload::gunzip(input, limit) {
                return Err(DecodeError::Zlib.into());
            }
            let head: Vec<String> = input.iter().take(4).map(|b| format!("{b:02x}")).collect();
            return Err(DisplayError::Binary {
                head: head.join(" "),
                offset: invalid.valid_up_to(),
            });
        }
    };
    Ok(payload::parse_payloads(&json)?
        .iter()
        .map(serde_json::to_string_pretty)
        .collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests;
