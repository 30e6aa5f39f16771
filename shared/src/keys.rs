//! The central bucket key layout (a contract between the collector, which writes, and the
//! loader, which detects log types from keys).
//!
//! Collector-written objects:
//!
//! ```text
//! AWSLogs/<account>/CloudWatchLogs/<region>/<log-group-path>/YYYY/MM/DD/HH/<stream>-<first-event-id>.json.gz
//! AWSLogs/<account>/<event-source>/<region>/YYYY/MM/DD/HH/<event-id>.json.gz
//! ```
//!
//! # Encoding of names
//!
//! Keys stay readable and prefix-browsable, and [`parse`] gives back exactly what [`build`]
//! was given:
//!
//! - Bytes outside `A-Z a-z 0-9 - _ .` are percent-encoded (`%XX` of their UTF-8 bytes), so `#`
//!   becomes `%23`, `%` becomes `%25`, `$`, `[`, `]`, spaces and non-ASCII are escaped.
//! - In the log-group path a `/` stays a key separator when it sits between two non-empty parts
//!   of the name, so `/aws/lambda/app` is written `%2Faws/lambda/app`: the leading `/` (and any
//!   trailing or doubled `/`) becomes `%2F`, so the key never holds an empty segment and
//!   `/aws/x` and `aws/x` stay distinct. A part that is exactly `.` or `..` is written `%2E`/`%2E%2E`.
//! - In the stream name and the event id every `/` is `%2F` (one key segment); `-` is escaped in
//!   the event id, which is what separates it from the stream.
//! - Decoding is plain percent-decoding.
//!
//! # Length
//!
//! Keys never exceed [`MAX_KEY_LEN`] (S3's 1024 bytes). Each name has a fixed budget of encoded
//! bytes, so one log group always maps to the same path whatever its streams are called. A name
//! whose encoding does not fit is cut at a character boundary and suffixed with `!` and the first
//! 16 hex digits of the SHA-256 of the whole name ([`name_hash`]): two long names sharing a prefix
//! still get different keys. `!` never occurs unescaped otherwise, so [`parse`] recognises the cut
//! and returns [`Name::Truncated`] with the prefix that survived and the hash; [`Name::matches`]
//! checks a full name (for example the `logGroup` of the payload) against it.
//!
//! AWS-written objects (CloudTrail, VPC Flow Logs, WAF) are recognised far enough to give
//! account and region; see [`ObjectKey`].

use chrono::{DateTime, Datelike, Timelike, Utc};
use sha2::{Digest, Sha256};
use std::fmt;

/// S3's limit on key length, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Budget for the encoded log-group path: a 512-character log group name fits unless it holds
/// `#` or doubled `/` (each escaped into three bytes).
pub const MAX_LOG_GROUP_ENCODED: usize = 520;
/// Budget for the encoded first event id (CloudWatch ids are 56 digits).
pub const MAX_EVENT_ID_ENCODED: usize = 80;
/// Budget for the encoded stream name: what is left once everything else is at its maximum.
pub const MAX_STREAM_ENCODED: usize =
    MAX_KEY_LEN - (FIXED_CWL_LEN + MAX_REGION_LEN + MAX_LOG_GROUP_ENCODED + MAX_EVENT_ID_ENCODED);
/// Budget for the encoded EventBridge source of events that are not findings.
pub const MAX_SOURCE_ENCODED: usize = 256;
/// Budget for the encoded EventBridge event id (normally a UUID).
pub const MAX_EVENT_KEY_ID_ENCODED: usize = 128;
/// Longest region name accepted (the longest today has 15 characters).
pub const MAX_REGION_LEN: usize = 32;

/// `AWSLogs/` + account + `/CloudWatchLogs/` + `/` + `/YYYY/MM/DD/HH/` + `-` + `.json.gz`.
const FIXED_CWL_LEN: usize = 8 + 12 + 16 + 1 + 15 + 1 + 8;
const HASH_HEX_LEN: usize = 16;
const TRUNCATION_MARK: char = '!';
const SUFFIX: &str = ".json.gz";
/// Prefix of the source segment of events that are not Security Hub or GuardDuty findings; it
/// keeps custom sources from ever looking like `CloudTrail` or `CloudWatchLogs`.
const OTHER_EVENTS_PREFIX: &str = "events.";

/// Why a key could not be built or parsed. Every message names the key or the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("account id {0:?} is not 12 digits")]
    InvalidAccount(String),
    #[error("region {0:?} is not a region name (lowercase letters, digits and '-', at most 32)")]
    InvalidRegion(String),
    #[error("log group name is empty")]
    EmptyLogGroup,
    #[error("timestamp {0} ms is outside the years 0 to 9999")]
    TimestampOutOfRange(i64),
    #[error("key {key:?} is not in a layout this pipeline knows: {reason}")]
    Unrecognized { key: String, reason: &'static str },
}

/// A name as read back from a key: whole, or cut to fit the key length limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    Full(String),
    /// The first characters of the name and the first 16 hex digits of its SHA-256.
    Truncated {
        prefix: String,
        hash: String,
    },
}

impl Name {
    /// True when `full` is the name this was read from.
    pub fn matches(&self, full: &str) -> bool {
        match self {
            Name::Full(name) => name == full,
            Name::Truncated { prefix, hash } => {
                full.starts_with(prefix) && name_hash(full) == *hash
            }
        }
    }

    /// The name, or the prefix that survived truncation.
    pub fn as_str(&self) -> &str {
        match self {
            Name::Full(name) => name,
            Name::Truncated { prefix, .. } => prefix,
        }
    }

    pub fn is_truncated(&self) -> bool {
        matches!(self, Name::Truncated { .. })
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Full(name) => f.write_str(name),
            Name::Truncated { prefix, hash } => write!(f, "{prefix}…({hash})"),
        }
    }
}

/// First 16 hex digits of the SHA-256 of `name`: the suffix of a truncated name.
pub fn name_hash(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut hex = hex::encode(&digest[..HASH_HEX_LEN / 2]);
    hex.truncate(HASH_HEX_LEN);
    hex
}

/// What the collector knows when it stores a CloudWatch Logs subscription payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchLogsObject<'a> {
    /// The account the collector runs in (not the payload's `owner`).
    pub account: &'a str,
    pub region: &'a str,
    pub log_group: &'a str,
    pub log_stream: &'a str,
    pub first_event_id: &'a str,
    /// Timestamp of the first log event, milliseconds since the epoch: gives the hour folder.
    pub first_event_timestamp_ms: i64,
}

/// Where an EventBridge event is filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSource {
    /// `aws.securityhub` findings (imported or custom action), under `SecurityHub`.
    SecurityHub,
    /// `aws.guardduty` findings, under `GuardDuty`.
    GuardDuty,
    /// Any other event, under `events.<source>`.
    Other(String),
}

impl EventSource {
    /// Classifies an event by its `source` and `detail-type`: only findings go to the finding
    /// prefixes; every other event keeps its own source.
    pub fn classify(source: &str, detail_type: &str) -> Self {
        match source {
            "aws.securityhub" if detail_type.starts_with("Security Hub Findings") => {
                EventSource::SecurityHub
            }
            "aws.guardduty" if detail_type == "GuardDuty Finding" => EventSource::GuardDuty,
            other => EventSource::Other(other.to_owned()),
        }
    }
}

/// What the collector knows when it stores an EventBridge event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventObject<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub source: EventSource,
    pub event_id: &'a str,
    pub time: DateTime<Utc>,
}

/// Key of a stored CloudWatch Logs subscription payload.
pub fn build_cloudwatch_logs_key(object: &CloudWatchLogsObject<'_>) -> Result<String, KeyError> {
    check_account(object.account)?;
    check_region(object.region)?;
    if object.log_group.is_empty() {
        return Err(KeyError::EmptyLogGroup);
    }
    let time = DateTime::<Utc>::from_timestamp_millis(object.first_event_timestamp_ms)
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or(KeyError::TimestampOutOfRange(
            object.first_event_timestamp_ms,
        ))?;
    let group = fit(object.log_group, MAX_LOG_GROUP_ENCODED, encode_log_group);
    let stream = fit(object.log_stream, MAX_STREAM_ENCODED, |s| {
        encode_component(s, false)
    });
    let id = fit(object.first_event_id, MAX_EVENT_ID_ENCODED, |s| {
        encode_component(s, true)
    });
    let key = format!(
        "AWSLogs/{}/CloudWatchLogs/{}/{group}/{}/{stream}-{id}{SUFFIX}",
        object.account,
        object.region,
        hour_path(time)
    );
    debug_assert!(key.len() <= MAX_KEY_LEN);
    Ok(key)
}

/// Key of a stored EventBridge event.
pub fn build_event_key(object: &EventObject<'_>) -> Result<String, KeyError> {
    check_account(object.account)?;
    check_region(object.region)?;
    if !(0..=9999).contains(&object.time.year()) {
        return Err(KeyError::TimestampOutOfRange(
            object.time.timestamp_millis(),
        ));
    }
    let source = match &object.source {
        EventSource::SecurityHub => "SecurityHub".to_owned(),
        EventSource::GuardDuty => "GuardDuty".to_owned(),
        EventSource::Other(source) => {
            let budget = MAX_SOURCE_ENCODED - OTHER_EVENTS_PREFIX.len();
            format!(
                "{OTHER_EVENTS_PREFIX}{}",
                fit(source, budget, |s| encode_component(s, false))
            )
        }
    };
    let id = fit(object.event_id, MAX_EVENT_KEY_ID_ENCODED, |s| {
        encode_component(s, false)
    });
    Ok(format!(
        "AWSLogs/{}/{source}/{}/{}/{id}{SUFFIX}",
        object.account,
        object.region,
        hour_path(object.time)
    ))
}

/// A key of the central bucket, as far as its layout tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKey {
    CloudWatchLogs(CloudWatchLogsKey),
    Event(EventKey),
    CloudTrail(AwsLogKey),
    VpcFlowLogs(AwsLogKey),
    Waf(AwsLogKey),
}

impl ObjectKey {
    pub fn account(&self) -> &str {
        match self {
            ObjectKey::CloudWatchLogs(k) => &k.account,
            ObjectKey::Event(k) => &k.account,
            ObjectKey::CloudTrail(k) | ObjectKey::VpcFlowLogs(k) | ObjectKey::Waf(k) => &k.account,
        }
    }

    pub fn region(&self) -> &str {
        match self {
            ObjectKey::CloudWatchLogs(k) => &k.region,
            ObjectKey::Event(k) => &k.region,
            ObjectKey::CloudTrail(k) | ObjectKey::VpcFlowLogs(k) | ObjectKey::Waf(k) => &k.region,
        }
    }
}

/// A collector-written CloudWatch Logs payload key, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchLogsKey {
    pub account: String,
    pub region: String,
    pub log_group: Name,
    pub log_stream: Name,
    pub first_event_id: Name,
    /// Start of the hour folder the object is in.
    pub hour: DateTime<Utc>,
}

/// A collector-written EventBridge event key, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKey {
    pub account: String,
    pub region: String,
    /// For [`EventSource::Other`], the source as written (it may be a truncated prefix, see
    /// `source_truncated`).
    pub source: EventSource,
    pub source_truncated: bool,
    pub event_id: Name,
    pub hour: DateTime<Utc>,
}

/// An AWS-written object (CloudTrail, VPC Flow Logs, WAF), as far as account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsLogKey {
    /// Organization id of an organization trail's key.
    pub organization_id: Option<String>,
    pub account: String,
    /// The segment after `AWSLogs/<account>/`: `CloudTrail`, `CloudTrail-Digest`,
    /// `CloudTrail-Insight`, `vpcflowlogs` or `WAFLogs`.
    pub service: String,
    /// For WAF logs of CloudFront web ACLs this is `cloudfront`.
    pub region: String,
}

impl AwsLogKey {
    /// CloudTrail digest files prove integrity and hold no events.
    pub fn is_cloudtrail_digest(&self) -> bool {
        self.service == "CloudTrail-Digest"
    }
}

/// Parses a key of the central bucket. Keys of AWS-written objects may sit under a bucket prefix
/// before `AWSLogs/`; collector keys start with `AWSLogs/`. Firehose-delivered objects (whose
/// prefix is chosen by the user) are not recognised: the loader's configuration covers those.
pub fn parse(key: &str) -> Result<ObjectKey, KeyError> {
    let unrecognized = |reason| KeyError::Unrecognized {
        key: key.to_owned(),
        reason,
    };
    let segments: Vec<&str> = key.split('/').collect();
    let start = segments
        .iter()
        .position(|s| *s == "AWSLogs")
        .ok_or_else(|| unrecognized("no AWSLogs/ segment"))?;
    let rest = &segments[start + 1..];
    let (organization_id, rest) = match rest.first() {
        Some(s) if s.starts_with("o-") => (Some((*s).to_owned()), &rest[1..]),
        _ => (None, rest),
    };
    let [account, service, region, tail @ ..] = rest else {
        return Err(unrecognized(
            "fewer segments than AWSLogs/<account>/<service>/<region>",
        ));
    };
    if check_account(account).is_err() {
        return Err(unrecognized("no 12-digit account id after AWSLogs/"));
    }
    if check_region(region).is_err() {
        return Err(unrecognized("no region after the service"));
    }
    let aws_key = || AwsLogKey {
        organization_id: organization_id.clone(),
        account: (*account).to_owned(),
        service: (*service).to_owned(),
        region: (*region).to_owned(),
    };
    match *service {
        "CloudTrail" | "CloudTrail-Digest" | "CloudTrail-Insight" => {
            Ok(ObjectKey::CloudTrail(aws_key()))
        }
        "vpcflowlogs" => Ok(ObjectKey::VpcFlowLogs(aws_key())),
        "WAFLogs" => Ok(ObjectKey::Waf(aws_key())),
        _ if organization_id.is_some() || start != 0 => {
            Err(unrecognized("unknown service after AWSLogs/<account>/"))
        }
        "CloudWatchLogs" => parse_cloudwatch_logs(account, region, tail)
            .map(ObjectKey::CloudWatchLogs)
            .map_err(unrecognized),
        _ => parse_event(account, service, region, tail)
            .map(ObjectKey::Event)
            .map_err(unrecognized),
    }
}

fn parse_cloudwatch_logs(
    account: &str,
    region: &str,
    tail: &[&str],
) -> Result<CloudWatchLogsKey, &'static str> {
    let [group @ .., y, m, d, h, file] = tail else {
        return Err("CloudWatchLogs key without YYYY/MM/DD/HH/<file>");
    };
    if group.is_empty() {
        return Err("CloudWatchLogs key without a log group");
    }
    let hour = parse_hour(y, m, d, h)?;
    let log_group = decode_name(&group.join("/"))?;
    let stem = file
        .strip_suffix(SUFFIX)
        .ok_or("CloudWatchLogs object name does not end in .json.gz")?;
    let (stream, id) = stem
        .rsplit_once('-')
        .ok_or("CloudWatchLogs object name has no -<first-event-id>")?;
    Ok(CloudWatchLogsKey {
        account: account.to_owned(),
        region: region.to_owned(),
        log_group,
        log_stream: decode_name(stream)?,
        first_event_id: decode_name(id)?,
        hour,
    })
}

fn parse_event(
    account: &str,
    source: &str,
    region: &str,
    tail: &[&str],
) -> Result<EventKey, &'static str> {
    let [y, m, d, h, file] = tail else {
        return Err("event key without YYYY/MM/DD/HH/<event-id>.json.gz");
    };
    let hour = parse_hour(y, m, d, h)?;
    let (source, source_truncated) = match source {
        "SecurityHub" => (EventSource::SecurityHub, false),
        "GuardDuty" => (EventSource::GuardDuty, false),
        other => {
            let encoded = other
                .strip_prefix(OTHER_EVENTS_PREFIX)
                .ok_or("unknown service after AWSLogs/<account>/")?;
            let name = decode_name(encoded)?;
            let truncated = name.is_truncated();
            (EventSource::Other(name.as_str().to_owned()), truncated)
        }
    };
    let stem = file
        .strip_suffix(SUFFIX)
        .ok_or("event object name does not end in .json.gz")?;
    Ok(EventKey {
        account: account.to_owned(),
        region: region.to_owned(),
        source,
        source_truncated,
        event_id: decode_name(stem)?,
        hour,
    })
}

fn parse_hour(y: &str, m: &str, d: &str, h: &str) -> Result<DateTime<Utc>, &'static str> {
    let number = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (Some(y), Some(m), Some(d), Some(h)) =
        (number(y, 4), number(m, 2), number(d, 2), number(h, 2))
    else {
        return Err("date folders are not YYYY/MM/DD/HH");
    };
    chrono::NaiveDate::from_ymd_opt(y as i32, m, d)
        .and_then(|date| date.and_hms_opt(h, 0, 0))
        .map(|t| t.and_utc())
        .ok_or("date folders are not a valid date and hour")
}

fn hour_path(time: DateTime<Utc>) -> String {
    format!(
        "{:04}/{:02}/{:02}/{:02}",
        time.year(),
        time.month(),
        time.day(),
        time.hour()
    )
}

fn check_account(account: &str) -> Result<(), KeyError> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(KeyError::InvalidAccount(account.to_owned()))
    }
}

fn check_region(region: &str) -> Result<(), KeyError> {
    let ok = !region.is_empty()
        && region.len() <= MAX_REGION_LEN
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidRegion(region.to_owned()))
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn push_escaped(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        out.push('%');
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
}

/// Encodes a name that must stay one key segment. `escape_dash` also escapes `-` (event ids,
/// whose start is found by the last `-` of the object name).
fn encode_component(name: &str, escape_dash: bool) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if is_unreserved(b) && !(escape_dash && b == b'-') {
            out.push(b as char);
        } else {
            push_escaped(&mut out, &[b]);
        }
    }
    out
}

/// Encodes a log group name as a path: `/` between two non-empty parts stays a separator.
fn encode_log_group(name: &str) -> String {
    let parts: Vec<&str> = name.split('/').collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            if parts[i - 1].is_empty() || part.is_empty() {
                out.push_str("%2F");
            } else {
                out.push('/');
            }
        }
        if *part == "." || *part == ".." {
            out.push_str(&"%2E".repeat(part.len()));
        } else {
            out.push_str(&encode_component(part, false));
        }
    }
    out
}

/// Encodes `name` with `encode`; when that exceeds `budget` bytes, encodes the longest prefix
/// (cut at a character boundary) that leaves room for `!<hash>`.
fn fit(name: &str, budget: usize, encode: impl Fn(&str) -> String) -> String {
    let full = encode(name);
    if full.len() <= budget {
        return full;
    }
    let room = budget - 1 - HASH_HEX_LEN;
    // Each character costs at least as many bytes encoded as in UTF-8, so the prefix holds at
    // most `room` bytes of the name; shorten from there until its encoding fits.
    let mut end = room.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut prefix = encode(&name[..end]);
    while prefix.len() > room {
        end -= 1;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        prefix = encode(&name[..end]);
    }
    format!("{prefix}{TRUNCATION_MARK}{}", name_hash(name))
}

/// Reads an encoded name back, recognising the truncation mark.
fn decode_name(encoded: &str) -> Result<Name, &'static str> {
    match encoded.split_once(TRUNCATION_MARK) {
        None => Ok(Name::Full(percent_decode(encoded)?)),
        Some((prefix, hash)) => {
            if hash.len() != HASH_HEX_LEN || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("truncated name without a 16-digit hash after '!'");
            }
            Ok(Name::Truncated {
                prefix: percent_decode(prefix)?,
                hash: hash.to_owned(),
            })
        }
    }
}

fn percent_decode(encoded: &str) -> Result<String, &'static str> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("'%' not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escaped bytes are not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ACCOUNT: &str = "111122223333";

    fn cwl<'a>(group: &'a str, stream: &'a str, id: &'a str) -> CloudWatchLogsObject<'a> {
        CloudWatchLogsObject {
            account: ACCOUNT,
            region: "eu-west-1",
            log_group: group,
            log_stream: stream,
            first_event_id: id,
            first_event_timestamp_ms: 1_716_200_000_000,
        }
    }

    fn parse_cwl(key: &str) -> CloudWatchLogsKey {
        match parse(key) {
            Ok(ObjectKey::CloudWatchLogs(k)) => k,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn builds_the_documented_layout() {
        let key = build_cloudwatch_logs_key(&cwl(
            "/aws/lambda/app",
            "2024/05/20/[$LATEST]0123abcd",
            "31953106606966983378809025079804211143289615424298221568",
        ))
        .unwrap();
        assert_eq!(
            key,
            "AWSLogs/111122223333/CloudWatchLogs/eu-west-1/%2Faws/lambda/app/2024/05/20/10/\
             2024%2F05%2F20%2F%5B%24LATEST%5D0123abcd-\
             31953106606966983378809025079804211143289615424298221568.json.gz"
        );
        let parsed = parse_cwl(&key);
        assert_eq!(parsed.log_group, Name::Full("/aws/lambda/app".into()));
        assert_eq!(parsed.account, ACCOUNT);
        assert_eq!(parsed.region, "eu-west-1");
        assert_eq!(parsed.hour.to_rfc3339(), "2024-05-20T10:00:00+00:00");
    }

    #[test]
    fn awkward_log_group_characters_are_escaped() {
        let cases = [
            ("a#b", "a%23b"),
            ("a//b", "a%2F%2Fb"),
            ("a/", "a%2F"),
            ("/", "%2F"),
            ("./..", "%2E/%2E%2E"),
            ("var/log/secure", "var/log/secure"),
        ];
        for (name, expected) in cases {
            assert_eq!(encode_log_group(name), expected, "{name}");
            let key = build_cloudwatch_logs_key(&cwl(name, "s", "1")).unwrap();
            assert!(!key.contains("//"), "{key}");
            assert_eq!(parse_cwl(&key).log_group, Name::Full(name.into()));
        }
    }

    #[test]
    fn long_names_are_truncated_with_a_hash_and_stay_unique() {
        let a = format!("{}a", "#".repeat(511));
        let b = format!("{}b", "#".repeat(511));
        let key_a = build_cloudwatch_logs_key(&cwl(&a, "s", "1")).unwrap();
        let key_b = build_cloudwatch_logs_key(&cwl(&b, "s", "1")).unwrap();
        assert_ne!(key_a, key_b);
        let parsed = parse_cwl(&key_a);
        assert!(parsed.log_group.is_truncated());
        assert!(parsed.log_group.matches(&a));
        assert!(!parsed.log_group.matches(&b));
        assert_eq!(parsed.log_stream, Name::Full("s".into()));

        // The longest ordinary name, leading and trailing '/' included, is kept whole.
        let longest = format!("/{}/", "a".repeat(510));
        let key = build_cloudwatch_logs_key(&cwl(&longest, "s", "1")).unwrap();
        assert_eq!(parse_cwl(&key).log_group, Name::Full(longest));
    }

    #[test]
    fn rejects_bad_account_region_and_empty_group() {
        let mut object = cwl("g", "s", "1");
        object.account = "12345";
        assert!(matches!(
            build_cloudwatch_logs_key(&object),
            Err(KeyError::InvalidAccount(_))
        ));
        let mut object = cwl("g", "s", "1");
        object.region = "EU/1";
        assert!(matches!(
            build_cloudwatch_logs_key(&object),
            Err(KeyError::InvalidRegion(_))
        ));
        assert_eq!(
            build_cloudwatch_logs_key(&cwl("", "s", "1")),
            Err(KeyError::EmptyLogGroup)
        );
        let mut object = cwl("g", "s", "1");
        object.first_event_timestamp_ms = i64::MAX;
        assert!(matches!(
            build_cloudwatch_logs_key(&object),
            Err(KeyError::TimestampOutOfRange(_))
        ));
    }

    #[test]
    fn event_keys_file_findings_under_their_prefix() {
        let time = DateTime::parse_from_rfc3339("2024-05-27T03:37:40Z")
            .unwrap()
            .with_timezone(&Utc);
        let source = EventSource::classify("aws.securityhub", "Security Hub Findings - Imported");
        let key = build_event_key(&EventObject {
            account: ACCOUNT,
            region: "us-east-1",
            source,
            event_id: "1622bd23-7237-fdec-8fb0-a019cccfd3cb",
            time,
        })
        .unwrap();
        assert_eq!(
            key,
            "AWSLogs/111122223333/SecurityHub/us-east-1/2024/05/27/03/\
             1622bd23-7237-fdec-8fb0-a019cccfd3cb.json.gz"
        );
        let Ok(ObjectKey::Event(parsed)) = parse(&key) else {
            panic!("{key}")
        };
        assert_eq!(parsed.source, EventSource::SecurityHub);
        assert_eq!(
            parsed.event_id,
            Name::Full("1622bd23-7237-fdec-8fb0-a019cccfd3cb".into())
        );

        assert_eq!(
            EventSource::classify("aws.guardduty", "GuardDuty Finding"),
            EventSource::GuardDuty
        );
        assert_eq!(
            EventSource::classify("aws.securityhub", "Security Hub Findings - Custom Action"),
            EventSource::SecurityHub
        );
        // Not a finding: kept under its own source, never dropped or mixed with findings.
        assert_eq!(
            EventSource::classify("aws.securityhub", "Security Hub Insight Results"),
            EventSource::Other("aws.securityhub".into())
        );
        // A custom source named like an AWS layout folder cannot land there.
        let other = EventSource::classify("CloudTrail", "GuardDuty Finding");
        let key = build_event_key(&EventObject {
            account: ACCOUNT,
            region: "us-east-1",
            source: other.clone(),
            event_id: "e/1",
            time,
        })
        .unwrap();
        assert!(
            key.starts_with("AWSLogs/111122223333/events.CloudTrail/us-east-1/"),
            "{key}"
        );
        let Ok(ObjectKey::Event(parsed)) = parse(&key) else {
            panic!("{key}")
        };
        assert_eq!(parsed.source, other);
        assert_eq!(parsed.event_id, Name::Full("e/1".into()));
    }

    #[test]
    fn aws_written_keys_give_account_and_region() {
        let cases = [
            (
                "AWSLogs/o-abcde12345/111122223333/CloudTrail/us-east-1/2024/05/01/\
                 111122223333_CloudTrail_us-east-1_20240501T0000Z_abc.json.gz",
                "CloudTrail",
                Some("o-abcde12345"),
            ),
            (
                "prefix/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/x.json.gz",
                "CloudTrail-Digest",
                None,
            ),
            (
                "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/\
                 111122223333_vpcflowlogs_us-east-1_fl-1234_20240501T0000Z_hash.log.gz",
                "vpcflowlogs",
                None,
            ),
            (
                "AWSLogs/111122223333/WAFLogs/cloudfront/acl/2024/05/01/00/00/x.log.gz",
                "WAFLogs",
                None,
            ),
        ];
        for (key, service, org) in cases {
            let parsed = parse(key).unwrap();
            assert_eq!(parsed.account(), ACCOUNT, "{key}");
            match parsed {
                ObjectKey::CloudTrail(k) | ObjectKey::VpcFlowLogs(k) | ObjectKey::Waf(k) => {
                    assert_eq!(k.service, service);
                    assert_eq!(k.organization_id.as_deref(), org);
                }
                other => panic!("{key}: {other:?}"),
            }
        }
        assert!(matches!(
            parse("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/x"),
            Ok(ObjectKey::CloudTrail(k)) if k.is_cloudtrail_digest()
        ));
    }

    #[test]
    fn unknown_keys_are_named_in_the_error() {
        for key in [
            "aws-waf-logs-acl/2024/05/01/00/file.gz",
            "AWSLogs/1234/CloudTrail/us-east-1/x",
            "AWSLogs/111122223333/CloudWatchLogs/us-east-1/2024/05/01/00/s-1.json.gz",
            "AWSLogs/111122223333/CloudWatchLogs/us-east-1/g/2024/13/01/00/s-1.json.gz",
            "AWSLogs/111122223333/CloudWatchLogs/us-east-1/g/2024/05/01/00/s1.json.gz",
            "AWSLogs/111122223333/CloudWatchLogs/us-east-1/g%2/2024/05/01/00/s-1.json.gz",
            "AWSLogs/111122223333/Unknown/us-east-1/2024/05/01/00/id.json.gz",
        ] {
            let error = parse(key).unwrap_err();
            assert!(error.to_string().contains(key), "{error}");
        }
    }

    fn stream_name() -> impl Strategy<Value = String> {
        // CloudWatch Logs allows any character in a stream name except ':' and '*'.
        proptest::collection::vec(
            any::<char>().prop_filter("no : or *", |c| *c != ':' && *c != '*'),
            1..=512,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn parse_inverts_build(
            group in "[a-zA-Z0-9_\\-/.#]{1,512}",
            stream in stream_name(),
            id in "[0-9]{1,60}",
            ts in 0i64..253_402_300_799_000,
        ) {
            let object = CloudWatchLogsObject {
                account: ACCOUNT,
                region: "ap-southeast-5",
                log_group: &group,
                log_stream: &stream,
                first_event_id: &id,
                first_event_timestamp_ms: ts,
            };
            let key = build_cloudwatch_logs_key(&object).unwrap();
            prop_assert!(key.len() <= MAX_KEY_LEN, "{} bytes", key.len());
            prop_assert!(!key.contains("//"));
            let parsed = parse_cwl(&key);
            prop_assert!(parsed.log_group.matches(&group));
            prop_assert!(parsed.log_stream.matches(&stream));
            prop_assert_eq!(&parsed.first_event_id, &Name::Full(id.clone()));
            if encode_log_group(&group).len() <= MAX_LOG_GROUP_ENCODED {
                prop_assert_eq!(&parsed.log_group, &Name::Full(group.clone()));
            }
            if encode_component(&stream, false).len() <= MAX_STREAM_ENCODED {
                prop_assert_eq!(&parsed.log_stream, &Name::Full(stream.clone()));
            }
            let hour = DateTime::<Utc>::from_timestamp_millis(ts).unwrap();
            prop_assert_eq!(hour_path(parsed.hour), hour_path(hour));
        }

        #[test]
        fn longest_names_still_fit(
            group in "[#/]{512}",
            stream in proptest::collection::vec(any::<char>(), 512)
                .prop_map(|c| c.into_iter().collect::<String>()),
            id in ".{0,200}",
        ) {
            let object = CloudWatchLogsObject {
                account: ACCOUNT,
                region: &"a".repeat(MAX_REGION_LEN),
                log_group: &group,
                log_stream: &stream,
                first_event_id: &id,
                first_event_timestamp_ms: 0,
            };
            let key = build_cloudwatch_logs_key(&object).unwrap();
            prop_assert!(key.len() <= MAX_KEY_LEN, "{} bytes", key.len());
            let parsed = parse_cwl(&key);
            prop_assert!(parsed.log_group.matches(&group));
            prop_assert!(parsed.log_stream.matches(&stream));
            prop_assert!(parsed.first_event_id.matches(&id));
        }

        #[test]
        fn event_keys_invert(source in ".{1,300}", id in ".{0,200}") {
            let object = EventObject {
                account: ACCOUNT,
                region: "us-east-1",
                source: EventSource::Other(source.clone()),
                event_id: &id,
                time: DateTime::<Utc>::from_timestamp_millis(0).unwrap(),
            };
            let key = build_event_key(&object).unwrap();
            prop_assert!(key.len() <= MAX_KEY_LEN);
            let Ok(ObjectKey::Event(parsed)) = parse(&key) else { panic!("{key}") };
            prop_assert!(parsed.event_id.matches(&id));
            let EventSource::Other(parsed_source) = parsed.source else { panic!("{key}") };
            prop_assert!(source.starts_with(&parsed_source));
            prop_assert_eq!(parsed.source_truncated, parsed_source != source);
        }
    }
}
