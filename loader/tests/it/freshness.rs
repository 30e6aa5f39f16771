//! Silent sources against osmem-server with the project's templates: the newest event of each
//! type × account × region is read page by page, quiet sources are alerted once per silence,
//! and `loader freshness` prints the table and exits 1.

use crate::setup::apply_config;
use crate::sink::{count_at, sink_to, test_config};
use chrono::{DateTime, Duration, Utc};
use loader::config::Config;
use loader::deliver::DocumentSink;
use loader::freshness::State;
use loader::freshness::check::{CheckSettings, check};
use loader::sink::{BulkItem, OpenSearchTransport, Origin, SinkConfig};
use serde_json::{Value, json};
use std::process::Command;

/// One document of `log_type` from `account` in eu-west-1 at `time`.
fn document(
    config: &Config,
    log_type: &str,
    account: &str,
    time: DateTime<Utc>,
    n: u64,
) -> BulkItem {
    let lt = config.get(log_type).expect("a built-in type");
    let at = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let source = json!({
        "@timestamp": at,
        "@log_type": log_type,
        "event": {"ingested": at, "kind": "event"},
        "cloud": {"provider": "aws", "account": {"id": account}, "region": "eu-west-1"},
    });
    BulkItem::new(
        loader::pipeline::index_name(lt, time),
        format!("{log_type}-{account}-{n}"),
        source.to_string().into_bytes(),
        Origin::new("freshness test", n),
    )
}

/// A cluster with the templates and documents of five sources: two sending, two quiet, and
/// GuardDuty, whose silence is normal.
pub(crate) async fn cluster_with_sources(
    dir: &std::path::Path,
) -> (tests::OwnOpenSearch, Config, DateTime<Utc>) {
    let cluster = tests::OwnOpenSearch::start();
    let config = Config::builtin().expect("built-in config");
    let http = OpenSearchTransport::new(&SinkConfig::new(&cluster.url), None).expect("client");
    let report = apply_config(&http, &config).await;
    assert!(report.failed() == 0, "templates: {report:?}");
    let now = Utc::now();
    let sink = sink_to(&test_config(&cluster.url), dir).await;
    let mut items = Vec::new();
    let sources = [
        ("cloudtrail", "111111111111", Duration::hours(1)),
        ("cloudtrail", "222222222222", Duration::hours(8)),
        ("vpcflowlogs", "111111111111", Duration::hours(3)),
        ("waf", "111111111111", Duration::minutes(10)),
        ("guardduty", "111111111111", Duration::days(5)),
    ];
    for (n, (log_type, account, age)) in sources.into_iter().enumerate() {
        // Older events of the same source: only the newest counts.
        for back in 0..3 {
            let time = now - age - Duration::hours(back);
            items.push(document(
                &config,
                log_type,
                account,
                time,
                (n * 10) as u64 + back as u64,
            ));
        }
    }
    let written = sink.write(items).await;
    assert!(written.is_complete(), "{:?}", written.failures);
    assert_eq!(count_at(&cluster.url, "log-*").await, 15);
    (cluster, config, now)
}

#[tokio::test]
async fn quiet_sources_are_found_and_alerted_once_per_silence() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, config, now) = cluster_with_sources(dir.path()).await;
    let http = OpenSearchTransport::new(&SinkConfig::new(&cluster.url), None).expect("client");
    let mut settings = CheckSettings::new(&config);
    // Two sources a page: the five come in three pages.
    settings.page = 2;
    let alerts = sink_to(&test_config(&cluster.url), dir.path()).await;
    let sink: &dyn DocumentSink = &alerts;

    let first = check(&http, Some(sink), &config, &settings, now)
        .await
        .expect("check");
    let verdicts: Vec<(String, String, State)> = first
        .assessed
        .iter()
        .map(|a| {
            (
                a.sighting.source.log_type.clone(),
                a.sighting.source.account.clone().unwrap_or_default(),
                a.state,
            )
        })
        .collect();
    let expect = |t: &str, a: &str, s: State| (t.to_owned(), a.to_owned(), s);
    assert_eq!(
        verdicts,
        vec![
            expect("cloudtrail", "222222222222", State::Quiet),
            expect("vpcflowlogs", "111111111111", State::Quiet),
            expect("cloudtrail", "111111111111", State::Sending),
            expect("waf", "111111111111", State::Sending),
            expect("guardduty", "111111111111", State::Unwatched),
        ]
    );
    let newest = &first.assessed[0].sighting;
    assert_eq!(
        newest.newest_event.timestamp_millis(),
        (now - Duration::hours(8)).timestamp_millis(),
        "the newest of the source's events"
    );
    assert_eq!(newest.documents, 3);
    assert_eq!((first.alerts_created, first.alerts_known), (2, 0));
    assert_eq!(count_at(&cluster.url, "alert-*").await, 2);

    // An hour later nothing changed: the same silences, already reported.
    let later = check(
        &http,
        Some(sink),
        &config,
        &settings,
        now + Duration::hours(1),
    )
    .await
    .expect("check");
    assert_eq!((later.alerts_created, later.alerts_known), (0, 2));
    assert_eq!(count_at(&cluster.url, "alert-*").await, 2);

    // The alerts are not sources themselves, and a window that ends before every event
    // finds none.
    let mut narrow = settings.clone();
    narrow.lookback = std::time::Duration::from_secs(60);
    let none = check(&http, None, &config, &narrow, now + Duration::days(30))
        .await
        .expect("check");
    assert!(none.assessed.is_empty(), "{:?}", none.assessed);

    // The command line: the table, and exit code 1 for the quiet sources.
    let output = Command::new(env!("CARGO_BIN_EXE_loader"))
        .args(["freshness", "--opensearch", &cluster.url])
        .output()
        .expect("loader freshness");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[1].starts_with("QUIET  cloudtrail"), "{stdout}");
    assert!(lines[1].contains("222222222222"), "{stdout}");
    assert!(lines[2].starts_with("QUIET  vpcflowlogs"), "{stdout}");
    assert!(stdout.ends_with("5 sources, 2 quiet\n"), "{stdout}");

    let json = Command::new(env!("CARGO_BIN_EXE_loader"))
        .args(["freshness", "--opensearch", &cluster.url, "--json"])
        .output()
        .expect("loader freshness --json");
    let lines: Vec<Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["state"], "QUIET");
    assert_eq!(lines[0]["quiet_after_seconds"], 6 * 3600);
}

#[tokio::test]
async fn the_functions_scheduled_check_stores_the_alerts_and_answers_with_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, config, _) = cluster_with_sources(dir.path()).await;
    assert!(loader::lambda::freshness::is_freshness_check(
        &json!({"task": "freshness"})
    ));
    assert!(!loader::lambda::freshness::is_freshness_check(
        &json!({"task": "geoip-update"})
    ));
    let aws = tests::moto_config("us-east-1").await;
    let task =
        loader::lambda::freshness::FreshnessTask::new(config, SinkConfig::new(&cluster.url), aws)
            .expect("task");
    let sink = sink_to(&test_config(&cluster.url), dir.path()).await;
    let answer = task.run(&sink).await.expect("check");
    assert_eq!(answer["sources"], 5);
    assert_eq!(answer["alerts_created"], 2);
    let quiet: Vec<&str> = answer["quiet"]
        .as_array()
        .expect("quiet")
        .iter()
        .filter_map(|q| q["log_type"].as_str())
        .collect();
    assert_eq!(quiet, ["cloudtrail", "vpcflowlogs"]);
    let again = task.run(&sink).await.expect("check");
    assert_eq!(
        (
            again["alerts_created"].as_u64(),
            again["alerts_known"].as_u64()
        ),
        (Some(0), Some(2))
    );
}

#[tokio::test]
async fn an_unreachable_cluster_is_an_error_naming_the_indices() {
    let config = Config::builtin().expect("built-in config");
    // Nothing listens on port 9 of loopback.
    let http =
        OpenSearchTransport::new(&SinkConfig::new("http://127.0.0.1:9"), None).expect("client");
    let err = check(
        &http,
        None,
        &config,
        &CheckSettings::new(&config),
        Utc::now(),
    )
    .await
    .expect_err("no cluster");
    let text = err.to_string();
    assert!(text.contains("log-aws-cloudtrail-*"), "{text}");
}
