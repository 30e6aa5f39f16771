//! CloudWatch Logs subscription payloads: base64, then gzip, then JSON.
//!
//! Decompression is capped ([`DEFAULT_MAX_DECOMPRESSED`] unless told otherwise): a payload that
//! inflates beyond the cap is an error, never an out-of-memory crash. The JSON is read into
//! borrowed structs where possible, so a decoded payload costs little more than its text.

use base64::Engine;
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::Read;

/// Default cap on the decompressed size of one payload (or one stored object).
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// Why a payload could not be decoded. The caller adds which object or invocation it was.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is empty")]
    Empty,
    #[error("payload is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error(
        "payload is zlib-compressed, not gzip (CloudWatch Logs always sends gzip; this did not come from a subscription)"
    )]
    Zlib,
    #[error("payload is not gzip (it starts with bytes {0})")]
    NotGzip(String),
    #[error("gzip data is corrupt or truncated: {0}")]
    Gzip(std::io::Error),
    #[error("payload decompresses to more than the limit of {limit} bytes (decompression bomb?)")]
    TooLarge { limit: usize },
    #[error("payload is not a subscription message: {0}")]
    Json(#[from] serde_json::Error),
}

/// `messageType` of a subscription payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageType {
    /// Log events of one log stream.
    DataMessage,
    /// Sent by CloudWatch Logs to check that the destination is reachable; holds no log data.
    ControlMessage,
}

/// One subscription payload. Unknown fields (for example `policyLevel`) are accepted and
/// ignored. Strings borrow from the decompressed text when they need no unescaping; use
/// [`SubscriptionPayload::into_owned`] to keep one beyond the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionPayload<'a> {
    pub message_type: MessageType,
    #[serde(borrow)]
    pub owner: Cow<'a, str>,
    #[serde(borrow)]
    pub log_group: Cow<'a, str>,
    #[serde(borrow)]
    pub log_stream: Cow<'a, str>,
    #[serde(default, borrow)]
    pub subscription_filters: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    pub log_events: Vec<LogEvent<'a>>,
}

/// One log event of a payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

impl SubscriptionPayload<'_> {
    pub fn into_owned(self) -> SubscriptionPayload<'static> {
        SubscriptionPayload {
            message_type: self.message_type,
            owner: Cow::Owned(self.owner.into_owned()),
            log_group: Cow::Owned(self.log_group.into_owned()),
            log_stream: Cow::Owned(self.log_stream.into_owned()),
            subscription_filters: self
                .subscription_filters
                .into_iter()
                .map(|f| Cow::Owned(f.into_owned()))
                .collect(),
            log_events: self
                .log_events
                .into_iter()
                .map(|e| LogEvent {
                    id: Cow::Owned(e.id.into_owned()),
                    timestamp: e.timestamp,
                    message: Cow::Owned(e.message.into_owned()),
                })
                .collect(),
        }
    }
}

/// Decodes the base64 text of `awslogs.data` into the gzip bytes CloudWatch Logs compressed.
pub fn decode_base64(data: &str) -> Result<Vec<u8>, DecodeError> {
    let data = data.trim();
    if data.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(base64::engine::general_purpose::STANDARD.decode(data)?)
}

/// Decompresses gzip bytes (one or several concatenated members) into at most `limit` bytes.
pub fn gunzip(gz: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    match gz {
        [] => return Err(DecodeError::Empty),
        [0x1f, 0x8b, ..] => {}
        [0x78, second, ..] if (u16::from(0x78_u8) << 8 | u16::from(*second)) % 31 == 0 => {
            return Err(DecodeError::Zlib);
        }
        _ => {
            let head: Vec<String> = gz.iter().take(4).map(|b| format!("{b:02x}")).collect();
            return Err(DecodeError::NotGzip(head.join(" ")));
        }
    }
    let mut out = Vec::with_capacity(size_hint(gz, limit));
    // Reading one byte past the limit tells "exactly at the limit" from "over it".
    let read_cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    MultiGzDecoder::new(gz)
        .take(read_cap)
        .read_to_end(&mut out)
        .map_err(DecodeError::Gzip)?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

/// Capacity to reserve: the size the gzip trailer claims, bounded by the limit and by
/// deflate's best ratio, so a lying trailer cannot make us reserve much.
fn size_hint(gz: &[u8], limit: usize) -> usize {
    gzip_trailer_size(gz)
        .unwrap_or(0)
        .min(limit)
        .min(gz.len().saturating_mul(1032))
}

/// The uncompressed size recorded in the trailer of the last gzip member (modulo 4 GiB): exact
/// for a single member, a hint otherwise. Not verified until the data is decompressed.
pub fn gzip_trailer_size(gz: &[u8]) -> Option<usize> {
    let start = gz.len().checked_sub(4)?;
    let tail = <[u8; 4]>::try_from(gz.get(start..)?).ok()?;
    usize::try_from(u32::from_le_bytes(tail)).ok()
}

/// Parses the decompressed text of exactly one payload.
pub fn parse_payload(json: &[u8]) -> Result<SubscriptionPayload<'_>, DecodeError> {
    Ok(serde_json::from_slice(json)?)
}

/// Parses decompressed text holding one or more payloads back to back (Firehose concatenates
/// them without a separator).
pub fn parse_payloads(json: &[u8]) -> Result<Vec<SubscriptionPayload<'_>>, DecodeError> {
    let mut payloads = Vec::with_capacity(1);
    for payload in serde_json::Deserializer::from_slice(json).into_iter::<SubscriptionPayload<'_>>()
    {
        payloads.push(payload?);
    }
    if payloads.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(payloads)
}

/// The text of `awslogs.data`, decoded: the gzip bytes as delivered and their decompressed JSON.
#[derive(Debug, Clone)]
pub struct DecodedData {
    pub gzip: Vec<u8>,
    pub json: Vec<u8>,
}

impl DecodedData {
    /// The payload; exactly one is expected in what CloudWatch Logs sends to a function.
    pub fn payload(&self) -> Result<SubscriptionPayload<'_>, DecodeError> {
        parse_payload(&self.json)
    }
}

/// base64 -> gzip -> JSON text, with the decompressed size capped at `limit`.
pub fn decode_data(data: &str, limit: usize) -> Result<DecodedData, DecodeError> {
    let gzip = decode_base64(data)?;
    let json = gunzip(&gzip, limit)?;
    Ok(DecodedData { gzip, json })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::{GzEncoder, ZlibEncoder};
    use std::io::Write;

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    const DATA: &str = r#"{"messageType":"DATA_MESSAGE","owner":"111122223333",
        "logGroup":"/var/log/secure","logStream":"i-0123456789abcdef0",
        "subscriptionFilters":["to-collector"],"policyLevel":"ACCOUNT_LEVEL_POLICY",
        "logEvents":[
          {"id":"37000000000000000000000000000000000000000000000000000000","timestamp":1716200000000,
           "message":"May 20 10:13:20 host sshd[4242]: Failed password for root from 192.0.2.10 port 52144 ssh2"},
          {"id":"37000000000000000000000000000000000000000000000000000001","timestamp":1716200001000,
           "message":"{\"quoted\":\"value\"}"}]}"#;

    const CONTROL: &str = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs",
        "logGroup":"","logStream":"","subscriptionFilters":[],
        "logEvents":[{"id":"","timestamp":1716200000000,"message":"CWL CONTROL MESSAGE: Checking health of destination Lambda function."}]}"#;

    #[test]
    fn decodes_a_data_message() {
        let decoded = decode_data(&b64(&gzip(DATA.as_bytes())), DEFAULT_MAX_DECOMPRESSED).unwrap();
        let payload = decoded.payload().unwrap();
        assert_eq!(payload.message_type, MessageType::DataMessage);
        assert_eq!(payload.owner, "111122223333");
        assert_eq!(payload.log_group, "/var/log/secure");
        assert_eq!(payload.log_stream, "i-0123456789abcdef0");
        assert_eq!(payload.subscription_filters, vec!["to-collector"]);
        assert_eq!(payload.log_events.len(), 2);
        assert_eq!(payload.log_events[0].timestamp, 1_716_200_000_000);
        assert!(matches!(payload.log_events[0].message, Cow::Borrowed(_)));
        assert_eq!(payload.log_events[1].message, r#"{"quoted":"value"}"#);
        let owned = payload.clone().into_owned();
        assert_eq!(owned, payload);
    }

    #[test]
    fn decodes_a_control_message() {
        let decoded = decode_data(&b64(&gzip(CONTROL.as_bytes())), 1 << 20).unwrap();
        let payload = decoded.payload().unwrap();
        assert_eq!(payload.message_type, MessageType::ControlMessage);
        assert_eq!(payload.log_events.len(), 1);
    }

    #[test]
    fn concatenated_members_and_payloads_decode() {
        let mut gz = gzip(DATA.as_bytes());
        gz.extend(gzip(CONTROL.as_bytes()));
        let json = gunzip(&gz, 1 << 20).unwrap();
        let payloads = parse_payloads(&json).unwrap();
        assert_eq!(payloads.len(), 2);
        assert_eq!(payloads[1].message_type, MessageType::ControlMessage);
        // One payload was promised: trailing data is an error, not silently dropped.
        assert!(matches!(parse_payload(&json), Err(DecodeError::Json(_))));
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let gz = gzip(DATA.as_bytes());
        for cut in [gz.len() - 1, gz.len() - 8, gz.len() / 2, 11] {
            let error = gunzip(&gz[..cut], 1 << 20).unwrap_err();
            assert!(matches!(error, DecodeError::Gzip(_)), "cut {cut}: {error}");
        }
    }

    #[test]
    fn bad_base64_is_an_error() {
        let error = decode_data("H4sI***not base64***", 1 << 20).unwrap_err();
        assert!(matches!(error, DecodeError::Base64(_)), "{error}");
        assert!(error.to_string().contains("not valid base64"));
        assert!(matches!(
            decode_data("  ", 1 << 20),
            Err(DecodeError::Empty)
        ));
    }

    #[test]
    fn zlib_instead_of_gzip_is_named() {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(DATA.as_bytes()).unwrap();
        let zlib = encoder.finish().unwrap();
        let error = decode_data(&b64(&zlib), 1 << 20).unwrap_err();
        assert!(matches!(error, DecodeError::Zlib), "{error}");
        assert!(error.to_string().contains("zlib"));
        let error = gunzip(DATA.as_bytes(), 1 << 20).unwrap_err();
        assert!(matches!(error, DecodeError::NotGzip(_)), "{error}");
    }

    #[test]
    fn decompression_bomb_is_stopped_at_the_limit() {
        let one_mib = gzip(&vec![0u8; 1 << 20]);
        // 65 members of 1 MiB of zeros: about 66 KB that inflate past the 64 MiB default.
        let bomb: Vec<u8> = one_mib
            .iter()
            .copied()
            .cycle()
            .take(one_mib.len() * 65)
            .collect();
        assert!(bomb.len() < 100_000);
        let error = gunzip(&bomb, DEFAULT_MAX_DECOMPRESSED).unwrap_err();
        assert!(
            matches!(error, DecodeError::TooLarge { limit } if limit == 64 << 20),
            "{error}"
        );
        assert_eq!(gzip_trailer_size(&one_mib), Some(1 << 20));
        assert_eq!(gzip_trailer_size(&[1, 2]), None);
        // Exactly at the limit is fine.
        assert_eq!(gunzip(&one_mib, 1 << 20).unwrap().len(), 1 << 20);
        assert!(matches!(
            gunzip(&one_mib, (1 << 20) - 1),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn missing_fields_are_named() {
        let json = br#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logEvents":[]}"#;
        let error = parse_payload(json).unwrap_err();
        assert!(error.to_string().contains("logStream"), "{error}");
        let error = parse_payload(b"not json").unwrap_err();
        assert!(error.to_string().contains("not a subscription message"));
    }
}
