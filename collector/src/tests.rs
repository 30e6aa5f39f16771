use super::*;
use std::io::Read;
use std::sync::Mutex;

const FUNCTION_ARN: &str =
    "arn:aws:lambda:eu-west-1:111122223333:function:org-security-logs-collector";
const SUBSCRIPTION_EVENT: &str = include_str!("../fixtures/subscription-event.json");
const SECURE_PAYLOAD: &str = include_str!("../fixtures/secure-log-payload.json");
const CONTROL_EVENT: &str = include_str!("../fixtures/control-message-event.json");
const SECURITY_HUB_EVENT: &str = include_str!("../fixtures/securityhub-finding-event.json");
const GUARDDUTY_EVENT: &str = include_str!("../fixtures/guardduty-finding-event.json");

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Put {
    pub(crate) key: String,
    pub(crate) body: Vec<u8>,
    pub(crate) content_type: String,
    pub(crate) content_encoding: Option<String>,
}

/// Keeps every write in memory; `fail` makes every write fail like a refused PutObject.
#[derive(Default)]
pub(crate) struct MemoryStore {
    pub(crate) puts: Mutex<Vec<Put>>,
    pub(crate) fail: bool,
}

impl ObjectStore for MemoryStore {
    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        content_encoding: Option<&str>,
    ) -> Result<(), StoreError> {
        if self.fail {
            return Err(StoreError {
                uri: self.uri(key),
                reason: "AccessDenied".into(),
            });
        }
        self.puts.lock().unwrap().push(Put {
            key: key.to_owned(),
            body,
            content_type: content_type.to_owned(),
            content_encoding: content_encoding.map(str::to_owned),
        });
        Ok(())
    }

    fn uri(&self, key: &str) -> String {
        format!("mem://bucket/{key}")
    }
}

fn invocation() -> Invocation<'static> {
    Invocation {
        function_arn: FUNCTION_ARN,
        request_id: "req-1",
    }
}

async fn run(event: &str) -> (Result<Outcome, CollectError>, Vec<Put>, Metrics) {
    let collector = Collector::new(MemoryStore::default(), payload::DEFAULT_MAX_DECOMPRESSED);
    let mut metrics = Metrics::new("Test");
    let result = collector.handle(event, invocation(), &mut metrics).await;
    let puts = collector.store().puts.lock().unwrap().clone();
    (result, puts, metrics)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn event_data(event: &str) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_str(event).unwrap();
    payload::decode_base64(value["awslogs"]["data"].as_str().unwrap()).unwrap()
}

fn subscription_event(payload_json: &str) -> String {
    let data = bench::encode_data(payload_json.as_bytes());
    serde_json::json!({"awslogs": {"data": data}}).to_string()
}

#[tokio::test]
async fn data_message_is_stored_as_delivered() {
    let (result, puts, metrics) = run(SUBSCRIPTION_EVENT).await;
    let outcome = result.unwrap();
    let key = "AWSLogs/111122223333/CloudWatchLogs/eu-west-1/%2Fvar/log/secure/2024/05/20/10/\
               i-0a1b2c3d4e5f60718-38273462897203948723049823749823749827349827349827340000.json.gz";
    assert_eq!(
        outcome,
        Outcome::Stored {
            uri: format!("mem://bucket/{key}"),
            log_events: 4,
            bytes: event_data(SUBSCRIPTION_EVENT).len(),
        }
    );
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].key, key);
    assert_eq!(puts[0].body, event_data(SUBSCRIPTION_EVENT));
    assert_eq!(puts[0].content_type, "application/json");
    assert_eq!(puts[0].content_encoding.as_deref(), Some("gzip"));
    let stored: serde_json::Value = serde_json::from_slice(&gunzip(&puts[0].body)).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(SECURE_PAYLOAD).unwrap();
    assert_eq!(stored, fixture);
    assert_eq!(metrics.value("PayloadsStored"), Some(1.0));
    assert_eq!(metrics.value("LogEventsStored"), Some(4.0));
    assert_eq!(metrics.value("OwnerMismatch"), None);
}

#[tokio::test]
async fn retry_writes_the_same_key() {
    let (_, first, _) = run(SUBSCRIPTION_EVENT).await;
    let (_, second, _) = run(SUBSCRIPTION_EVENT).await;
    assert_eq!(first, second);
}

#[tokio::test]
async fn control_message_is_acknowledged_and_not_stored() {
    let (result, puts, metrics) = run(CONTROL_EVENT).await;
    assert_eq!(result.unwrap(), Outcome::ControlMessage);
    assert!(puts.is_empty());
    assert_eq!(metrics.value("ControlMessages"), Some(1.0));
}

#[tokio::test]
async fn key_account_is_the_functions_not_the_owners() {
    let foreign = SECURE_PAYLOAD.replace("\"111122223333\"", "\"444455556666\"");
    let (result, puts, metrics) = run(&subscription_event(&foreign)).await;
    result.unwrap();
    assert!(
        puts[0].key.starts_with("AWSLogs/111122223333/"),
        "{}",
        puts[0].key
    );
    assert_eq!(metrics.value("OwnerMismatch"), Some(1.0));
}

#[tokio::test]
async fn bad_input_fails_with_a_named_reason_and_is_counted() {
    let not_json = subscription_event("this is not json");
    let no_events = subscription_event(
        r#"{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"g","logStream":"s","logEvents":[]}"#,
    );
    let missing =
        subscription_event(r#"{"messageType":"DATA_MESSAGE","owner":"1","logEvents":[]}"#);
    let cases = [
        (r#"{"awslogs":{"data":"%%% not base64"}}"#.to_owned(), "InvalidPayload", "base64"),
        (not_json, "InvalidPayload", "not a subscription message"),
        (missing, "InvalidPayload", "logGroup"),
        (no_events, "NoLogEvents", "holds no log events"),
        (r#"{"hello":"world"}"#.to_owned(), "UnknownEvent", "req-1"),
        ("[1,2".to_owned(), "UnknownEvent", "req-1"),
        (
            r#"{"source":"aws.securityhub","detail-type":"Security Hub Findings - Imported","id":"x","time":"yesterday"}"#
                .to_owned(),
            "InvalidEvent",
            "yesterday",
        ),
    ];
    for (event, kind, text) in cases {
        let (result, puts, metrics) = run(&event).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        assert!(error.to_string().contains(text), "{error}");
        assert!(puts.is_empty());
        assert_eq!(metrics.value("InvalidInput"), Some(1.0), "{error}");
    }
}

#[tokio::test]
async fn over_the_size_limit_is_rejected() {
    let collector = Collector::new(MemoryStore::default(), 100);
    let mut metrics = Metrics::new("Test");
    let error = collector
        .handle(SUBSCRIPTION_EVENT, invocation(), &mut metrics)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("limit of 100 bytes"), "{error}");
    assert_eq!(metrics.value("InvalidInput"), Some(1.0));
}

#[tokio::test]
async fn store_errors_fail_the_invocation() {
    let store = MemoryStore {
        fail: true,
        ..MemoryStore::default()
    };
    let collector = Collector::new(store, payload::DEFAULT_MAX_DECOMPRESSED);
    let mut metrics = Metrics::new("Test");
    let error = collector
        .handle(SUBSCRIPTION_EVENT, invocation(), &mut metrics)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "StoreError");
    assert!(
        error
            .to_string()
            .contains("mem://bucket/AWSLogs/111122223333/"),
        "{error}"
    );
    assert_eq!(metrics.value("StoreErrors"), Some(1.0));
}

#[tokio::test]
async fn findings_are_stored_under_their_prefix() {
    for (event, prefix) in [
        (
            SECURITY_HUB_EVENT,
            "AWSLogs/111122223333/SecurityHub/eu-west-1/2024/05/20/09/",
        ),
        (
            GUARDDUTY_EVENT,
            "AWSLogs/111122223333/GuardDuty/eu-west-1/2024/05/20/11/",
        ),
    ] {
        let (result, puts, metrics) = run(event).await;
        assert!(matches!(result.unwrap(), Outcome::StoredEvent { .. }));
        assert_eq!(puts.len(), 1);
        assert!(puts[0].key.starts_with(prefix), "{}", puts[0].key);
        assert_eq!(puts[0].content_encoding.as_deref(), Some("gzip"));
        assert_eq!(gunzip(&puts[0].body), event.as_bytes());
        assert_eq!(metrics.value("EventsStored"), Some(1.0));
    }
}

#[tokio::test]
async fn other_events_are_kept_under_their_source() {
    let event = r#"{"version":"0","id":"7bf73129-1428-4cd3-a780-95db273d1602","detail-type":"AWS Health Event","source":"aws.health","account":"111122223333","time":"2024-05-20T12:00:00Z","region":"eu-west-1","resources":[],"detail":{}}"#;
    let (result, puts, _) = run(event).await;
    result.unwrap();
    assert_eq!(
        puts[0].key,
        "AWSLogs/111122223333/events.aws.health/eu-west-1/2024/05/20/12/7bf73129-1428-4cd3-a780-95db273d1602.json.gz"
    );
}

#[test]
fn function_arn_gives_account_and_region() {
    assert_eq!(
        account_and_region("arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:f:live")
            .unwrap(),
        ("111122223333", "us-gov-west-1")
    );
    for arn in [
        "",
        "arn:aws:s3:::bucket",
        "arn:aws:lambda:eu-west-1:111122223333:layer:x",
    ] {
        assert!(
            matches!(account_and_region(arn), Err(CollectError::FunctionArn(_))),
            "{arn}"
        );
    }
}

#[test]
fn settings_come_from_the_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let settings = Settings::from_lookup(env(&[
        ("BUCKET", "central-logs"),
        ("KMS_KEY_ARN", "arn:aws:kms:eu-west-1:999988887777:key/abc"),
        ("EXPECTED_BUCKET_OWNER", "999988887777"),
        ("WRITER_ROLE_ARN", ""),
    ]))
    .unwrap();
    assert_eq!(settings.bucket, "central-logs");
    assert_eq!(
        settings.expected_bucket_owner.as_deref(),
        Some("999988887777")
    );
    assert_eq!(settings.writer_role_arn, None);
    assert_eq!(settings.max_decompressed, 64 << 20);
    assert_eq!(
        Settings::from_lookup(env(&[])),
        Err(SettingsError::MissingBucket)
    );
    assert!(matches!(
        Settings::from_lookup(env(&[("BUCKET", "b"), ("MAX_DECOMPRESSED_BYTES", "lots")])),
        Err(SettingsError::InvalidLimit(_))
    ));
}

#[test]
fn decode_for_display_reads_every_form() {
    let fixture: serde_json::Value = serde_json::from_str(SECURE_PAYLOAD).unwrap();
    let gz = event_data(SUBSCRIPTION_EVENT);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &gz);
    let limit = payload::DEFAULT_MAX_DECOMPRESSED;
    for input in [
        SUBSCRIPTION_EVENT.as_bytes().to_vec(),
        gz.clone(),
        b64.into_bytes(),
        SECURE_PAYLOAD.as_bytes().to_vec(),
    ] {
        let texts = decode_for_display(&input, limit).unwrap();
        assert_eq!(texts.len(), 1);
        let value: serde_json::Value = serde_json::from_str(&texts[0]).unwrap();
        assert_eq!(value, fixture);
        assert!(texts[0].starts_with("{\n  \"messageType\""), "{}", texts[0]);
    }
    let two = format!("{SECURE_PAYLOAD}{SECURE_PAYLOAD}");
    assert_eq!(decode_for_display(two.as_bytes(), limit).unwrap().len(), 2);
    let event = decode_for_display(SECURITY_HUB_EVENT.as_bytes(), limit).unwrap();
    let event: serde_json::Value = serde_json::from_str(&event[0]).unwrap();
    assert_eq!(event["source"], "aws.securityhub");
    assert!(decode_for_display(b"\x01\x02garbage", limit).is_err());
}

#[test]
fn decode_for_display_names_binary_input() {
    let limit = payload::DEFAULT_MAX_DECOMPRESSED;
    // Neither gzip nor UTF-8: 0xff can never appear in UTF-8 text.
    let binary = b"\x01\x02\x03\xff\xfe\x00garbage";
    let error = decode_for_display(binary, limit).unwrap_err();
    assert!(
        matches!(error, DisplayError::Binary { offset: 3, .. }),
        "{error}"
    );
    let message = error.to_string();
    for part in [
        "neither gzip",
        "01 02 03 ff",
        "UTF-8",
        "offset 3",
        "Lambda event, base64 text or payload JSON",
    ] {
        assert!(message.contains(part), "{part:?} missing in: {message}");
    }
    assert!(!message.contains("empty"), "{message}");

    // A multi-byte sequence cut short counts as invalid from its first byte.
    let error = decode_for_display("ok é".as_bytes()[..4].as_ref(), limit).unwrap_err();
    assert!(
        matches!(error, DisplayError::Binary { offset: 3, .. }),
        "{error}"
    );

    // zlib is binary too, but named as what it is.
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(SECURE_PAYLOAD.as_bytes()).unwrap();
    let error = decode_for_display(&zlib.finish().unwrap(), limit).unwrap_err();
    assert!(
        matches!(error, DisplayError::Decode(DecodeError::Zlib)),
        "{error}"
    );

    assert!(matches!(
        decode_for_display(b" \n", limit),
        Err(DisplayError::Empty)
    ));
}
