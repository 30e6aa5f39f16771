//! The bad-input corpus: objects broken in the ways real buckets hold them, each loaded as a
//! load does. For every case the error names the object, the position (when the object was
//! readable that far) and the reason; the good records of the same object still load; and the
//! counts add up (records = documents + record errors + excluded + skipped); documents name their
//! object by its key exactly as given.

use chrono::{DateTime, Utc};
use flate2::{Compression, write::GzEncoder};
use loader::config::Config;
use loader::pipeline::{Outcome, Pipeline, Stats};
use std::io::Write;

const CT: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/04/111122223333_CloudTrail_us-east-1_20260304T1200Z_bad.json.gz";
const VPC: &str = "AWSLogs/111122223333/vpcflowlogs/us-east-1/2026/03/04/111122223333_vpcflowlogs_us-east-1_fl-0a1b_20260304T1200Z_bad.log.gz";
const WAF: &str = "AWSLogs/111122223333/WAFLogs/us-east-1/acl/2026/03/04/12/00/bad.log.gz";
const CWL: &str = "AWSLogs/111122223333/CloudWatchLogs/us-east-1/app/api/2026/03/04/12/bad.json.gz";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    let _ = enc.write_all(data);
    enc.finish().expect("gzip")
}

fn ct_record(id: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"2026-03-04T12:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.1","eventID":"{id}","eventType":"AwsApiCall","recipientAccountId":"111122223333","userIdentity":{{"type":"IAMUser","userName":"alice"}}}}"#
    )
}

fn waf_line(ip: &str) -> String {
    format!(
        r#"{{"timestamp":1772625600000,"action":"ALLOW","httpRequest":{{"clientIp":"{ip}","uri":"/","httpMethod":"GET","headers":[]}}}}"#
    )
}

const VPC_HEADER: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n";
const VPC_LINE: &str = "2 111122223333 eni-0a1b 10.0.0.1 10.0.0.2 443 50000 6 10 840 1772625600 1772625660 ACCEPT OK\n";

/// One broken object: its key, its bytes, what must be said, and how many documents its good
/// records make.
struct Case {
    name: &'static str,
    key: &'static str,
    bytes: Vec<u8>,
    /// Substrings of one of the reported errors (reason and position).
    says: &'static [&'static str],
    documents: u64,
    /// The object as a whole fails (it cannot be read to its end).
    fails: bool,
}

fn cases() -> Vec<Case> {
    let two_ct = format!(
        "{{\"Records\":[{},{}]}}",
        ct_record("e-1"),
        ct_record("e-2")
    );
    let good_gz = gzip(two_ct.as_bytes());
    let mut truncated = good_gz.clone();
    truncated.truncate(good_gz.len() / 2);
    let mut trailing = good_gz.clone();
    trailing.extend_from_slice(b"this is not gzip");
    let mut random = Vec::new();
    let mut x: u32 = 99;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        random.push((x >> 16) as u8);
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let big_line = format!(
        "{}\n{}\n",
        waf_line(&format!(
            "192.0.2.1\", \"pad\": \"{}",
            "a".repeat(9 * 1024 * 1024)
        )),
        waf_line("192.0.2.2")
    );
    vec![
        Case {
            name: "truncated gzip",
            key: CT,
            bytes: truncated,
            says: &["ends early or is corrupt"],
            documents: 0,
            fails: true,
        },
        Case {
            name: "gzip with trailing garbage",
            key: CT,
            bytes: trailing,
            says: &["corrupt"],
            documents: 2,
            fails: true,
        },
        Case {
            name: "zstd sent by mistake",
            key: CT,
            bytes: [&[0x28u8, 0xb5, 0x2f, 0xfd][..], &[0u8; 64][..]].concat(),
            says: &["zstd-compressed"],
            documents: 0,
            fails: true,
        },
        Case {
            name: "bzip2 sent by mistake",
            key: CT,
            bytes: b"BZh91AY&SY\x01\x02\x03".to_vec(),
            says: &["bzip2-compressed"],
            documents: 0,
            fails: true,
        },
        Case {
            name: "random bytes named .gz",
            key: CT,
            bytes: random,
            says: &["not text", "binary data", "its name ends in .gz"],
            documents: 0,
            fails: true,
        },
        Case {
            name: "1,000 NUL bytes",
            key: CT,
            bytes: vec![0; 1000],
            says: &["binary data with NUL bytes"],
            documents: 0,
            fails: true,
        },
        Case {
            name: "invalid UTF-8 inside a JSON string",
            key: WAF,
            bytes: [
                waf_line("192.0.2.1").as_bytes(),
                b"\n{\"timestamp\":1772625600000,\"action\":\"ALLOW\",\"httpRequest\":{\"clientIp\":\"192.0.2.3\",\"uri\":\"/\xff\xfe\"}}\n",
                waf_line("192.0.2.2").as_bytes(),
                b"\n",
            ]
            .concat(),
            says: &["line 2", "invalid JSON"],
            documents: 2,
            fails: false,
        },
        Case {
            name: "JSON nested 100,000 deep",
            key: WAF,
            bytes: format!("{deep}\n{}\n", waf_line("192.0.2.2")).into_bytes(),
            says: &["line 1"],
            documents: 1,
            fails: false,
        },
        Case {
            name: "numbers beyond f64 and u64",
            key: WAF,
            bytes: format!(
                "{}\n{}\n",
                waf_line("192.0.2.1").replace("1772625600000", "1e400"),
                waf_line("192.0.2.2").replace("1772625600000", "99999999999999999999999")
            )
            .into_bytes(),
            says: &["line 1"],
            documents: 0,
            fails: false,
        },
        Case {
            name: "duplicate keys",
            key: WAF,
            bytes: format!(
                "{}\n",
                waf_line("192.0.2.1").replace("\"action\":\"ALLOW\"", "\"action\":\"ALLOW\",\"action\":\"BLOCK\"")
            )
            .into_bytes(),
            says: &[],
            documents: 1,
            fails: false,
        },
        Case {
            name: "Records that is not an array",
            key: CT,
            bytes: format!("{{\"Records\":{{\"a\":1}}}}\n{two_ct}").into_bytes(),
            says: &["record 0", "`Records` holds an object, not an array of records"],
            documents: 2,
            fails: false,
        },
        Case {
            name: "VPC flow lines with too few and too many fields",
            key: VPC,
            bytes: format!(
                "{VPC_HEADER}{VPC_LINE}2 111122223333 eni-0a1b 10.0.0.1\n{} extra\n",
                VPC_LINE.trim_end()
            )
            .into_bytes(),
            says: &["line 3"],
            documents: 1,
            fails: false,
        },
        Case {
            name: "a header line only",
            key: VPC,
            bytes: VPC_HEADER.as_bytes().to_vec(),
            says: &[],
            documents: 0,
            fails: false,
        },
        Case {
            name: "CRLF line ends",
            key: VPC,
            bytes: format!("{VPC_HEADER}{VPC_LINE}").replace('\n', "\r\n").into_bytes(),
            says: &[],
            documents: 1,
            fails: false,
        },
        Case {
            name: "a byte order mark",
            key: WAF,
            bytes: format!("\u{feff}{}\n", waf_line("192.0.2.1")).into_bytes(),
            says: &[],
            documents: 1,
            fails: false,
        },
        Case {
            name: "zlib instead of gzip (read as zlib)",
            key: CT,
            bytes: {
                let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::fast());
                let _ = z.write_all(two_ct.as_bytes());
                z.finish().expect("zlib")
            },
            says: &[],
            documents: 2,
            fails: false,
        },
        Case {
            name: "a key with URL-encoded and non-ASCII characters",
            key: "AWSLogs/111122223333/WAFLogs/us-east-1/caf%C3%A9 ü+acl/2026/03/04/12/00/wäf log.gz",
            bytes: format!("{}\nnot json\n", waf_line("192.0.2.1")).into_bytes(),
            says: &["line 2", "invalid JSON"],
            documents: 1,
            fails: false,
        },
        Case {
            name: "an empty object",
            key: CT,
            bytes: Vec::new(),
            says: &[],
            documents: 0,
            fails: false,
        },
        Case {
            name: "a record over the size limit",
            key: WAF,
            bytes: big_line.into_bytes(),
            says: &["line 1", "record larger than 8 MiB"],
            documents: 1,
            fails: false,
        },
        Case {
            name: "a CloudWatch Logs payload without logEvents",
            key: CWL,
            bytes: br#"{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/app/api","logStream":"s","subscriptionFilters":["f"]}
{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/app/api","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1772625600000,"message":"ok"}]}"#
                .to_vec(),
            says: &["line 1", "logEvents"],
            documents: 1,
            fails: false,
        },
    ]
}

fn ingested() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-05T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

#[test]
fn every_bad_input_is_named_counted_and_does_not_stop_the_good_records() {
    let pipeline = Pipeline::new(Config::builtin().expect("config"));
    let mut problems = Vec::new();
    for case in cases() {
        let mut stats = Stats::default();
        let mut documents = 0u64;
        let mut keys = Vec::new();
        let outcome = pipeline.load_object(
            case.key,
            case.key,
            &case.bytes[..],
            ingested(),
            &mut stats,
            &mut |d| {
                documents += 1;
                keys.push(d.source.fields().get("@log_s3key").cloned());
            },
        );
        if keys
            .iter()
            .any(|k| k.as_ref().and_then(|v| v.as_str()) != Some(case.key))
        {
            problems.push(format!(
                "{}: documents name the object as {keys:?}",
                case.name
            ));
        }
        let failed = matches!(outcome, Outcome::Failed { .. });
        let what = format!("{}: {outcome:?}, errors {:?}", case.name, stats.errors);
        if failed != case.fails {
            problems.push(format!("{what}: failed {failed}, expected {}", case.fails));
        }
        if documents != case.documents {
            problems.push(format!(
                "{what}: {documents} documents, expected {}",
                case.documents
            ));
        }
        if !case.says.is_empty()
            && !stats.errors.iter().any(|e| {
                let text = e.to_string();
                e.object == case.key && case.says.iter().all(|s| text.contains(s))
            })
        {
            problems.push(format!(
                "{what}: no error names the object and says {:?}",
                case.says
            ));
        }
        if case.says.is_empty() && !stats.errors.is_empty() {
            problems.push(format!("{what}: unexpected errors"));
        }
        let record_errors = stats.errors.iter().filter(|e| e.position.is_some()).count() as u64;
        for t in stats.per_type.values() {
            if t.records != t.documents + record_errors + t.excluded + t.skipped {
                problems.push(format!("{what}: counts do not add up: {t:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
