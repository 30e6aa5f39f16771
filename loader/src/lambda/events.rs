//! What the Lambda is told to load, read from the event shapes AWS delivers: pure functions
//! over JSON text.
//!
//! An SQS message body (or a direct invocation's event) may be
//! - an S3 event notification (`Records[].s3.bucket.name` / `.object.key`): keys are
//!   form-URL-encoded by S3 (`+` is a space, `%XX` a byte), so they are decoded here;
//! - an SNS notification whose `Message` is one of these (S3 -> SNS -> SQS), or an SNS event
//!   (`Records[].Sns.Message`, S3 -> SNS -> Lambda);
//! - an EventBridge "Object Created" event from `aws.s3` (`detail.bucket.name` /
//!   `detail.object.key`; EventBridge keys are not encoded);
//! - the `s3:TestEvent` S3 sends when a notification is configured: nothing to load.
//!
//! Anything else is an error naming what was found, so the message fails and ends in the
//! dead-letter queue instead of vanishing.

use crate::deliver::ObjectRef;
use serde_json::Value;

/// SNS envelopes inside SNS envelopes are not a thing AWS makes; a bound stops a crafted loop.
const MAX_DEPTH: usize = 3;

/// The objects one message names, and what it held that is deliberately not loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notice {
    pub objects: Vec<ObjectRef>,
    /// Why parts of the message were ignored (`s3:TestEvent`, an `ObjectRemoved` record, ...).
    pub ignored: Vec<String>,
}

/// Why a message names no object the loader can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the message body is not JSON: {0}")]
    NotJson(String),
    #[error("the message has no body")]
    NoBody,
    #[error("{what} has no {field}")]
    MissingField { what: String, field: &'static str },
    #[error("object key {key:?} of bucket {bucket} is not valid percent-encoded UTF-8")]
    BadKey { bucket: String, key: String },
    #[error(
        "not an S3 event notification, an SNS notification carrying one, or an EventBridge \
         Object Created event (top-level fields: {fields})"
    )]
    Unknown { fields: String },
    #[error("SNS notifications nested more than {MAX_DEPTH} deep")]
    TooDeep,
}

/// The objects named by one SQS message body (or a whole direct event).
pub fn parse_body(body: &str) -> Result<Notice, EventError> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| EventError::NotJson(e.to_string()))?;
    let mut notice = Notice::default();
    collect(&value, 0, &mut notice)?;
    Ok(notice)
}

/// [`parse_body`] over an already parsed value.
pub fn parse_value(value: &Value) -> Result<Notice, EventError> {
    let mut notice = Notice::default();
    collect(value, 0, &mut notice)?;
    Ok(notice)
}

/// True when the Lambda was invoked by SQS (its records come from `aws:sqs`); anything else is
/// handled as a direct event.
pub fn is_sqs_event(value: &Value) -> bool {
    value
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

fn collect(value: &Value, depth: usize, notice: &mut Notice) -> Result<(), EventError> {
    if depth > MAX_DEPTH {
        return Err(EventError::TooDeep);
    }
    let Some(object) = value.as_object() else {
        return Err(EventError::Unknown {
            fields: format!("not an object but {}", kind(value)),
        });
    };
    // The test event S3 sends when a notification configuration is saved.
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        let bucket = object.get("Bucket").and_then(Value::as_str).unwrap_or("?");
        notice
            .ignored
            .push(format!("s3:TestEvent of bucket {bucket}"));
        return Ok(());
    }
    if let Some(records) = object.get("Records").and_then(Value::as_array) {
        for (index, record) in records.iter().enumerate() {
            collect_record(record, index, depth, notice)?;
        }
        return Ok(());
    }
    // An SNS notification as SQS receives it (raw message delivery off).
    if let Some(kind) = object.get("Type").and_then(Value::as_str) {
        return match kind {
            "Notification" => {
                let message = str_field(object.get("Message"), "SNS notification", "Message")?;
                let inner: Value = serde_json::from_str(message)
                    .map_err(|e| EventError::NotJson(format!("SNS Message: {e}")))?;
                collect(&inner, depth + 1, notice)
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                notice.ignored.push(format!("SNS {kind}"));
                Ok(())
            }
            _ => Err(unknown(object)),
        };
    }
    if object.get("source").and_then(Value::as_str) == Some("aws.s3")
        && let Some(detail_type) = object.get("detail-type").and_then(Value::as_str)
    {
        if detail_type != "Object Created" {
            notice
                .ignored
                .push(format!("EventBridge {detail_type} event"));
            return Ok(());
        }
        let what = "EventBridge Object Created event";
        let detail = object.get("detail");
        let bucket = str_field(
            detail.and_then(|d| d.pointer("/bucket/name")),
            what,
            "detail.bucket.name",
        )?;
        let key = str_field(
            detail.and_then(|d| d.pointer("/object/key")),
            what,
            "detail.object.key",
        )?;
        notice.objects.push(ObjectRef::s3(bucket, key));
        return Ok(());
    }
    Err(unknown(object))
}

fn collect_record(
    record: &Value,
    index: usize,
    depth: usize,
    notice: &mut Notice,
) -> Result<(), EventError> {
    // S3 -> SNS -> Lambda: the S3 event is the SNS record's message.
    if let Some(sns) = record.get("Sns") {
        let message = str_field(
            sns.get("Message"),
            &format!("SNS record {index}"),
            "Sns.Message",
        )?;
        let inner: Value = serde_json::from_str(message)
            .map_err(|e| EventError::NotJson(format!("SNS record {index} Message: {e}")))?;
        return collect(&inner, depth + 1, notice);
    }
    let what = format!("S3 event record {index}");
    let Some(s3) = record.get("s3") else {
        return Err(EventError::MissingField { what, field: "s3" });
    };
    if let Some(name) = record.get("eventName").and_then(Value::as_str)
        && !name.starts_with("ObjectCreated")
    {
        notice.ignored.push(format!("{what}: {name}"));
        return Ok(());
    }
    let bucket = str_field(s3.pointer("/bucket/name"), &what, "s3.bucket.name")?;
    let raw_key = str_field(s3.pointer("/object/key"), &what, "s3.object.key")?;
    let key = decode_key(raw_key).ok_or_else(|| EventError::BadKey {
        bucket: bucket.to_owned(),
        key: raw_key.to_owned(),
    })?;
    notice.objects.push(ObjectRef::s3(bucket, key));
    Ok(())
}

/// An S3 notification key as stored: `+` is a space, `%XX` a byte, the bytes UTF-8.
pub fn decode_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

fn str_field<'v>(
    value: Option<&'v Value>,
    what: &str,
    field: &'static str,
) -> Result<&'v str, EventError> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| EventError::MissingField {
            what: what.to_owned(),
            field,
        })
}

fn unknown(object: &serde_json::Map<String, Value>) -> EventError {
    let mut fields: Vec<&str> = object.keys().map(String::as_str).take(12).collect();
    if fields.is_empty() {
        fields.push("none");
    }
    EventError::Unknown {
        fields: fields.join(", "),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/fixtures/events/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    const CW_KEY: &str = "AWSLogs/111122223333/CloudWatchLogs/us-east-1/my app/logs/2024/05/01/10/i-0abc+1-37.json.gz";

    #[test]
    fn s3_notification_keys_are_form_url_decoded() {
        let notice = parse_body(&fixture("s3-object-created.json")).expect("S3 event");
        assert_eq!(
            notice.objects,
            [ObjectRef::s3(
                "org-security-logs-111122223333-us-east-1",
                CW_KEY
            )]
        );
        assert!(notice.ignored.is_empty());
    }

    #[test]
    fn several_records_and_removed_objects() {
        let notice = parse_body(&fixture("s3-several-records.json")).expect("S3 event");
        let keys: Vec<&str> = notice.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/a.log.gz",
                "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/b.log.gz",
            ]
        );
        assert_eq!(notice.ignored.len(), 1);
        assert!(notice.ignored[0].contains("ObjectRemoved:Delete"));
    }

    #[test]
    fn s3_events_wrapped_in_sns() {
        let notice = parse_body(&fixture("sns-notification-s3.json")).expect("SNS envelope");
        assert_eq!(
            notice.objects,
            [ObjectRef::s3(
                "org-security-logs-111122223333-us-east-1",
                CW_KEY
            )]
        );
        let notice = parse_body(&fixture("sns-lambda-event-s3.json")).expect("SNS event");
        assert_eq!(
            notice.objects,
            [ObjectRef::s3(
                "org-security-logs-111122223333-us-east-1",
                CW_KEY
            )]
        );
    }

    #[test]
    fn eventbridge_object_created_keys_are_taken_as_they_are() {
        let notice = parse_body(&fixture("eventbridge-object-created.json")).expect("event");
        assert_eq!(
            notice.objects,
            [ObjectRef::s3(
                "org-security-logs-111122223333-us-east-1",
                "AWSLogs/111122223333/WAFLogs/us-east-1/acl+1/2024/05/01/10/05/a b%20c.log.gz"
            )]
        );
    }

    #[test]
    fn the_s3_test_event_is_ignored() {
        let notice = parse_body(&fixture("s3-test-event.json")).expect("test event");
        assert!(notice.objects.is_empty());
        assert_eq!(
            notice.ignored,
            ["s3:TestEvent of bucket org-security-logs-111122223333-us-east-1"]
        );
    }

    #[test]
    fn sqs_events_are_told_from_direct_events() {
        let sqs: Value = serde_json::from_str(&fixture("sqs-event.json")).expect("json");
        assert!(is_sqs_event(&sqs));
        let s3: Value = serde_json::from_str(&fixture("s3-object-created.json")).expect("json");
        assert!(!is_sqs_event(&s3));
        // Each SQS message body is itself an event.
        let event: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_value(sqs).expect("SQS event");
        let bodies: Vec<Notice> = event
            .records
            .iter()
            .map(|m| parse_body(m.body.as_deref().unwrap_or("")).expect("body"))
            .collect();
        assert_eq!(bodies[0].objects.len(), 1);
        assert_eq!(bodies[1].ignored.len(), 1);
    }

    #[test]
    fn other_bodies_fail_with_a_clear_error() {
        let cases = [
            ("not json", "not JSON"),
            ("[1,2]", "not an object but an array"),
            (r#"{"hello":"world"}"#, "top-level fields: hello"),
            (
                r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"}}}]}"#,
                "S3 event record 0 has no s3.object.key",
            ),
            (
                r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%FF%FE"}}}]}"#,
                "\"%FF%FE\" of bucket b is not valid",
            ),
            (
                r#"{"Type":"Notification","Message":"{\"x\":1}"}"#,
                "top-level fields: x",
            ),
            (
                r#"{"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":"b"}}}"#,
                "has no detail.object.key",
            ),
        ];
        for (body, expected) in cases {
            let err = parse_body(body).expect_err(body).to_string();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let mut body = fixture("s3-object-created.json");
        for _ in 0..5 {
            body = serde_json::json!({"Type": "Notification", "Message": body}).to_string();
        }
        assert_eq!(parse_body(&body), Err(EventError::TooDeep));
    }

    #[test]
    fn keys_decode_like_forms() {
        assert_eq!(decode_key("a+b%2Bc%2Fd").as_deref(), Some("a b+c/d"));
        assert_eq!(decode_key("%E2%9C%93").as_deref(), Some("\u{2713}"));
        assert_eq!(decode_key("%FF"), None);
    }
}
