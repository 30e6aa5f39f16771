//! No input makes the loader panic: arbitrary bytes (plain and gzip) through detection,
//! decoding, splitting and every type's normalizer, and arbitrary JSON shaped like the real
//! records straight into each parser.

use chrono::{DateTime, Utc};
use flate2::{Compression, write::GzEncoder};
use loader::config::Config;
use loader::parsers::{
    Context, cloudtrail, cloudwatch, guardduty, linux_secure, securityhub, vpcflow, waf,
};
use loader::pipeline::{Pipeline, load_bytes};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::io::Write;
use std::sync::OnceLock;

/// One key per type, so every splitter and normalizer is reached.
const KEYS: &[&str] = &[
    "AWSLogs/111122223333/CloudWatchLogs/us-east-1/app/2024/05/01/00/s-1.json.gz",
    "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/x.json.gz",
    "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/x.log.gz",
    "AWSLogs/111122223333/WAFLogs/us-east-1/acl/2024/05/01/00/00/x.log.gz",
    "AWSLogs/111122223333/SecurityHub/us-east-1/2024/05/01/00/x.json.gz",
    "AWSLogs/111122223333/GuardDuty/us-east-1/2024/05/01/00/x.json.gz",
    "linux/web-1/var/log/secure",
];

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| Pipeline::new(Config::builtin().expect("bundled configuration")))
}

fn ingested() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).expect("write");
    enc.finish().expect("finish")
}

/// Field names and values the parsers look at, so random objects hit real code paths.
const NAMES: &[&str] = &[
    "Records",
    "eventTime",
    "eventID",
    "eventName",
    "eventSource",
    "eventType",
    "errorCode",
    "sourceIPAddress",
    "userIdentity",
    "type",
    "arn",
    "userName",
    "sessionContext",
    "sessionIssuer",
    "responseElements",
    "ConsoleLogin",
    "insightDetails",
    "messageType",
    "owner",
    "logGroup",
    "logStream",
    "logEvents",
    "id",
    "timestamp",
    "message",
    "detail",
    "findings",
    "detail-type",
    "Id",
    "SchemaVersion",
    "ProductArn",
    "UpdatedAt",
    "Severity",
    "httpRequest",
    "clientIp",
    "headers",
    "action",
    "terminatingRuleId",
    "version",
    "srcaddr",
    "dstport",
    "protocol",
    "start",
    "end",
    "service",
    "resource",
    "updatedAt",
];

const STRINGS: &[&str] = &[
    "",
    "-",
    "DATA_MESSAGE",
    "CONTROL_MESSAGE",
    "2024-05-01T00:00:00Z",
    "not a time",
    "192.0.2.1",
    "2001:db8::1",
    "ec2.amazonaws.com",
    "AssumedRole",
    "Root",
    "ACCEPT",
    "NODATA",
    "Failure",
    "Security Hub Findings - Imported",
    "GuardDuty Finding",
    "aws-cloudtrail-logs",
    "/var/log/secure",
    "vpcflow",
    "{\"a\":",
    "2 111122223333 eni-1 192.0.2.1 192.0.2.2 1 2 6 1 1 1 2 ACCEPT OK",
    "May  1 00:00:00 h sshd[1]: Failed password for root from 192.0.2.9 port 22 ssh2",
    "arn:aws:sts::111122223333:assumed-role/r/s",
    "\u{0}\u{ffff}",
    "99999999999999999999",
];

const KEYS_VPC: &str = "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/x.log";

/// Header names beyond the default format's: more known fields, names that meet under
/// aws.vpcflow, names the document reserves, a name that needs escaping.
const MORE_FLOW_FIELDS: &[&str] = &[
    "type",
    "tcp-flags",
    "tcp_flags",
    "tcp_flags_array",
    "flow-direction",
    "region",
    "event",
    "source",
    "aws",
    "tags",
    "@timestamp",
    "ecs-cluster-name",
    "pkt-srcaddr",
    "traffic-path",
    "x\"y",
];

fn flow_fields() -> Vec<&'static str> {
    vpcflow::DEFAULT_FIELDS
        .iter()
        .chain(MORE_FLOW_FIELDS)
        .copied()
        .collect()
}

const FLOW_VALUES: &[&str] = &[
    "-",
    "2",
    "0",
    "65535",
    "65536",
    "-1",
    "1714521600",
    "99999999999999999999",
    "ACCEPT",
    "REJECT",
    "NODATA",
    "192.0.2.1",
    "2001:db8::1",
    "egress",
    "IPv6",
    "a\\b",
    "\"",
    "\u{7f}",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(NAMES), inner), 0..8).prop_map(|pairs| {
                let mut map = Map::new();
                for (k, v) in pairs {
                    map.insert(k.to_owned(), v);
                }
                Value::Object(map)
            }),
        ]
    })
}

fn ctx() -> Context<'static> {
    Context {
        s3_key: KEYS[0],
        key_account: Some("111122223333"),
        key_region: Some("us-east-1"),
        ingested: ingested(),
        reference: ingested(),
        key_time: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), which in 0..KEYS.len(), compress in any::<bool>()) {
        let data = if compress { gzip(&bytes) } else { bytes };
        let (docs, stats, _) = load_bytes(pipeline(), KEYS[which], &data, ingested());
        prop_assert!(stats.documents() as usize == docs.len());
    }

    #[test]
    fn arbitrary_json_objects_never_panic(values in prop::collection::vec(json_value(), 0..4), which in 0..KEYS.len(), wrap in any::<bool>()) {
        let mut text = Vec::new();
        if wrap {
            text.extend_from_slice(b"{\"Records\":");
            serde_json::to_writer(&mut text, &values).expect("serialize");
            text.push(b'}');
        } else {
            for v in &values {
                serde_json::to_writer(&mut text, v).expect("serialize");
                text.push(b'\n');
            }
        }
        let _ = load_bytes(pipeline(), KEYS[which], &gzip(&text), ingested());
    }

    #[test]
    fn arbitrary_text_lines_never_panic(lines in prop::collection::vec(prop_oneof![prop::sample::select(STRINGS).prop_map(str::to_owned), ".{0,80}"], 0..8), which in 0..KEYS.len()) {
        let text = lines.join("\n");
        let _ = load_bytes(pipeline(), KEYS[which], text.as_bytes(), ingested());
    }

    /// Any header (known fields, reserved names, repeats, names that meet under aws.vpcflow)
    /// and any values: the flow log writer either refuses the record or writes a JSON object
    /// with no key twice, which is what the pipeline loads; and the pipeline loads every line of
    /// such an object or reports it.
    #[test]
    fn flow_log_lines_write_valid_json_without_repeated_keys(
        header in prop::collection::vec(prop::sample::select(flow_fields()), 1..12),
        lines in prop::collection::vec(prop::collection::vec(prop::sample::select(FLOW_VALUES), 1..12), 1..4),
    ) {
        let mut writer = vpcflow::Writer::new(&header);
        for values in &lines {
            let mut out = Vec::new();
            if writer.write(values, None, &mut out).is_ok() {
                out.push(b'}');
                let doc: serde_json::Map<String, Value> = serde_json::from_slice(&out)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&out))))?;
                prop_assert_eq!(loader::json_write::map_to_vec(&doc).len(), out.len());
            } else {
                prop_assert!(out.is_empty());
            }
        }
        let text = std::iter::once(header.join(" "))
            .chain(lines.iter().map(|v| v.join(" ")))
            .collect::<Vec<_>>()
            .join("\n");
        let (docs, stats, _) = load_bytes(pipeline(), KEYS_VPC, text.as_bytes(), ingested());
        let t = &stats.per_type["vpcflowlogs"];
        prop_assert_eq!(t.records, lines.len() as u64);
        prop_assert_eq!(t.documents + t.errors, t.records);
        prop_assert_eq!(docs.len() as u64, t.documents);
    }

    #[test]
    fn parsers_accept_any_value_without_panicking(value in json_value()) {
        let ctx = ctx();
        let mut out = Vec::new();
        let _ = cloudtrail::normalize(value.clone(), &ctx, &mut out);
        let _ = cloudwatch::normalize(value.clone(), &ctx, &mut out);
        let _ = vpcflow::normalize(value.clone(), &ctx, &mut out);
        let _ = waf::normalize(value.clone(), &ctx, &mut out);
        let _ = securityhub::normalize(value.clone(), &ctx, &mut out);
        let _ = guardduty::normalize(value.clone(), &ctx, &mut out);
        let _ = linux_secure::normalize(value, &ctx, &mut out);
    }
}
