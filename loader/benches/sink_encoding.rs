//! Throughput of the sink's encoding: items -> bulk request bodies (action lines, sources,
//! gzip), as the sink does it for every request. Run with
//! `cargo bench -p loader --bench sink_encoding`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use loader::sink::BulkItem;
use loader::sink::Origin;
use loader::sink::request_builder::{BatchLimits, build_request, plan_batches};
use serde_json::json;
use std::hint::black_box;

/// CloudTrail-like ECS documents of about 1.3 KB with varying ids, addresses and times.
fn documents(n: usize) -> Vec<BulkItem> {
    let object: std::sync::Arc<str> =
        "s3://logs/AWSLogs/o-abc/111122223333/CloudTrail/us-east-1/2024/05/01/x.json.gz".into();
    (0..n)
        .map(|i| {
            let id = format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", i * 7919, i % 65536, i % 4096, (i * 31) % 4096, i * 104729);
            let action = ["AssumeRole", "GetObject", "DescribeInstances", "ConsoleLogin"][i % 4];
            let source = json!({
                "@timestamp": format!("2024-05-01T{:02}:{:02}:{:02}.{:03}Z", (i / 3600) % 24, (i / 60) % 60, i % 60, i % 1000),
                "event": {"module": "cloudtrail", "dataset": "aws.cloudtrail", "kind": "event",
                          "category": ["iam"], "type": ["info"], "action": action,
                          "provider": "sts.amazonaws.com", "outcome": if i % 17 == 0 { "failure" } else { "success" },
                          "ingested": "2026-01-01T00:00:00Z"},
                "cloud": {"provider": "aws", "region": "us-east-1", "account": {"id": "111122223333"}},
                "source": {"ip": format!("198.51.100.{}", i % 250), "geo": {"country_iso_code": "US"}},
                "user": {"name": format!("user-{}", i % 97), "id": format!("AIDA{:016X}", i * 2654435761usize)},
                "user_agent": {"original": "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/sts#1.30.3"},
                "related": {"ip": [format!("198.51.100.{}", i % 250)], "user": [format!("user-{}", i % 97)]},
                "eventVersion": "1.08", "eventID": id, "eventName": "AssumeRole", "eventSource": "sts.amazonaws.com",
                "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
                "requestParameters": {"roleArn": format!("arn:aws:iam::111122223333:role/app-{}", i % 13),
                                      "roleSessionName": format!("session-{i}"), "durationSeconds": 3600},
                "responseElements": {"credentials": {"accessKeyId": format!("ASIA{:016X}", i * 40503), "expiration": "May 1, 2024, 1:00:00 PM"}},
                "userIdentity": {"type": "AssumedRole", "principalId": format!("AROA{:016X}:session-{i}", i), "accountId": "111122223333"},
            });
            BulkItem {
                index: "log-aws-cloudtrail-2024-05".into(),
                id: id.into(),
                source: serde_json::to_vec(&source).expect("serializable").into(),
                origin: Origin { object: object.clone(), record: i as u64 },
            }
        })
        .collect()
}

fn encoding(c: &mut Criterion) {
    let items = documents(20_000);
    let bytes: usize = items.iter().map(|i| i.source.len()).sum();
    let positions: Vec<usize> = (0..items.len()).collect();
    let limits = BatchLimits {
        max_bytes: 8 * 1024 * 1024,
        max_items: 5_000,
    };
    let mut group = c.benchmark_group("sink_encoding");
    group.sample_size(10);
    group.throughput(Throughput::Elements(items.len() as u64));
    for level in [0u32, 1, 6] {
        // Report the compression ratio once per level, next to the timings.
        let sent: usize = plan_batches(&items, &positions, limits)
            .into_iter()
            .map(|b| build_request(&items, b, level).body.len())
            .sum();
        eprintln!(
            "gzip level {level}: {} documents, {bytes} source bytes -> {sent} bytes sent ({:.1}%)",
            items.len(),
            100.0 * sent as f64 / bytes as f64
        );
        group.bench_function(format!("gzip_level_{level}"), |b| {
            b.iter(|| {
                let mut sent = 0usize;
                for batch in plan_batches(&items, &positions, limits) {
                    sent += build_request(black_box(&items), batch, level).body.len();
                }
                black_box(sent)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encoding);
criterion_main!(benches);
