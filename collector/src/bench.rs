//! `collector bench`: time and memory of what the collector does per payload (base64, gunzip,
//! JSON, key), on a generated payload of a chosen decompressed size or on an event file.

use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use shared::keys::{self, CloudWatchLogsObject};
use shared::payload::{self, DecodeError};
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("benchmark payload does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("benchmark payload has no log events")]
    NoEvents,
    #[error("benchmark key: {0}")]
    Key(#[from] keys::KeyError),
}

/// Builds the JSON text of a DATA_MESSAGE of about `target_bytes`, with events like real ones:
/// sshd lines and CloudTrail-style JSON messages (whose quotes need unescaping).
pub fn sample_payload_json(target_bytes: usize) -> String {
    let mut json = String::with_capacity(target_bytes + 1024);
    json.push_str(
        r#"{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/var/log/secure","logStream":"i-0123456789abcdef0","subscriptionFilters":["org-security-logs"],"logEvents":["#,
    );
    // Request ids, key ids and ports vary from event to event like in real logs, so the payload
    // compresses like real ones (about 9:1) rather than like one repeated line.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut n: u64 = 0;
    while json.len() < target_bytes.saturating_sub(400) {
        if n > 0 {
            json.push(',');
        }
        let ts = 1_716_200_000_000_u64 + n * 37;
        let message = if n.is_multiple_of(3) {
            format!(
                r#"{{\"eventVersion\":\"1.09\",\"eventTime\":\"2024-05-20T10:13:{:02}Z\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\",\"sourceIPAddress\":\"198.51.100.{}\",\"userAgent\":\"aws-cli/2.15.0\",\"requestID\":\"{:016X}\",\"accessKeyId\":\"ASIA{:016X}\",\"requestParameters\":{{\"key\":\"reports/{:x}.csv\"}}}}"#,
                n % 60,
                random() % 250,
                random(),
                random(),
                random()
            )
        } else {
            format!(
                "May 20 10:13:{:02} ip-10-0-0-5 sshd[{}]: Failed password for invalid user u{:x} from 192.0.2.{} port {} ssh2",
                n % 60,
                random() % 65536,
                random() % 0xFFFFFF,
                random() % 250,
                random() % 65536
            )
        };
        json.push_str(&format!(
            r#"{{"id":"{:056}","timestamp":{ts},"message":"{message}"}}"#,
            37_000_000_000_u64 + n
        ));
        n += 1;
    }
    json.push_str("]}");
    json
}

/// The `awslogs.data` text of `json`: gzip, then base64, as CloudWatch Logs sends it.
pub fn encode_data(json: &[u8]) -> String {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(json);
    let gz = encoder.finish().unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(gz)
}

/// One collector step without the network: decode and build the key. Returns the key length.
pub fn decode_and_key(data: &str, limit: usize) -> Result<usize, BenchError> {
    let decoded = payload::decode_data(data, limit)?;
    let payload = decoded.payload()?;
    let first = payload.log_events.first().ok_or(BenchError::NoEvents)?;
    let key = keys::build_cloudwatch_logs_key(&CloudWatchLogsObject {
        account: "111122223333",
        region: "eu-west-1",
        log_group: &payload.log_group,
        log_stream: &payload.log_stream,
        first_event_id: &first.id,
        first_event_timestamp_ms: first.timestamp,
    })?;
    Ok(key.len())
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub decompressed_bytes: usize,
    pub base64_bytes: usize,
    pub iterations: usize,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Peak resident memory added by one decode over what the process held before it (Linux
    /// only: the peak counter is reset through `/proc/self/clear_refs`).
    pub peak_extra_rss_bytes: Option<u64>,
    pub peak_extra_rss_ratio: Option<f64>,
}

/// Times `iterations` decodes of `data` (whose decompressed size is `decompressed_bytes`).
pub fn run(data: &str, decompressed_bytes: usize, iterations: usize) -> Result<Report, BenchError> {
    let limit = payload::DEFAULT_MAX_DECOMPRESSED;
    let peak_extra_rss_bytes = if iterations > 0 {
        measure_peak_rss(|| decode_and_key(data, limit))?
    } else {
        None
    };
    let mut times: Vec<Duration> = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        std::hint::black_box(decode_and_key(std::hint::black_box(data), limit)?);
        times.push(start.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let total: Duration = times.iter().sum();
    Ok(Report {
        decompressed_bytes,
        base64_bytes: data.len(),
        iterations,
        mean_ms: if iterations > 0 {
            ms(total) / iterations as f64
        } else {
            0.0
        },
        median_ms: times.get(times.len() / 2).copied().map(ms).unwrap_or(0.0),
        min_ms: times.first().copied().map(ms).unwrap_or(0.0),
        max_ms: times.last().copied().map(ms).unwrap_or(0.0),
        peak_extra_rss_bytes,
        peak_extra_rss_ratio: peak_extra_rss_bytes
            .map(|b| b as f64 / decompressed_bytes.max(1) as f64),
    })
}

/// Runs `f` once and returns how far the resident set peaked above where it stood before, when
/// the platform lets us reset the peak counter.
fn measure_peak_rss<T>(
    f: impl FnOnce() -> Result<T, BenchError>,
) -> Result<Option<u64>, BenchError> {
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib("VmRSS:");
    let result = f();
    let peak = status_kib("VmHWM:");
    result?;
    Ok(match (reset, before, peak) {
        (true, Some(before), Some(peak)) => Some(peak.saturating_sub(before) * 1024),
        _ => None,
    })
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_has_the_requested_size_and_decodes() {
        let json = sample_payload_json(200_000);
        assert!((199_000..=201_000).contains(&json.len()), "{}", json.len());
        let data = encode_data(json.as_bytes());
        assert!(decode_and_key(&data, 1 << 20).unwrap() > 100);
        let report = run(&data, json.len(), 3).unwrap();
        assert_eq!(report.iterations, 3);
        assert!(report.min_ms <= report.max_ms);
    }
}
