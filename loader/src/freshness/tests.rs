use super::query::{index_patterns, parse_page, request_body};
use super::*;
use chrono::TimeZone;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0)
        .single()
        .expect("time")
}

fn sighting(log_type: &str, account: &str, newest: DateTime<Utc>) -> Sighting {
    Sighting {
        source: SourceId {
            log_type: log_type.into(),
            account: Some(account.into()),
            region: Some("eu-west-1".into()),
        },
        newest_event: newest,
        last_loaded: Some(newest),
        documents: 10,
    }
}

fn config() -> Config {
    Config::builtin().expect("built-in config")
}

#[test]
fn quiet_after_takes_durations_or_zero() {
    assert_eq!(
        parse_quiet_after("6h").expect("6h"),
        Some(Duration::from_secs(6 * 3600))
    );
    assert_eq!(
        parse_quiet_after(" 2d ").expect("2d"),
        Some(Duration::from_secs(2 * 86400))
    );
    assert_eq!(parse_quiet_after("0").expect("0"), None);
    assert_eq!(parse_quiet_after("0s").expect("0s"), None);
    let err = parse_quiet_after("soon").expect_err("not a duration");
    assert!(err.contains("`soon`") && err.contains("6h"), "{err}");
}

#[test]
fn the_built_in_types_have_the_documented_intervals() {
    let c = config();
    let hours = |t: &str| {
        c.get(t)
            .and_then(|t| t.quiet_after)
            .map(|d| d.as_secs() / 3600)
    };
    assert_eq!(hours("cloudtrail"), Some(6));
    assert_eq!(hours("vpcflowlogs"), Some(2));
    assert_eq!(hours("waf"), Some(24));
    assert_eq!(hours("securityhub"), Some(48));
    assert_eq!(hours("cloudwatchlogs"), Some(24));
    assert_eq!(hours("guardduty"), None, "findings come only when found");
    for event_driven in [
        "config-rules",
        "apache-error",
        "rds-mysql-slowquery",
        "trustedadvisor",
    ] {
        assert_eq!(
            hours(event_driven),
            None,
            "{event_driven} is quiet when all is well"
        );
    }
}

#[test]
fn a_user_file_sets_quiet_after_per_type_and_refuses_nonsense() {
    let c = Config::with_user_file(
        "user.ini",
        "[waf]\nquiet_after = 3h\n[guardduty]\nquiet_after = 7d\n",
    )
    .expect("valid user file");
    assert_eq!(
        c.get("waf").and_then(|t| t.quiet_after),
        Some(Duration::from_secs(3 * 3600))
    );
    assert_eq!(
        c.get("guardduty").and_then(|t| t.quiet_after),
        Some(Duration::from_secs(7 * 86400))
    );
    let err =
        Config::with_user_file("user.ini", "[waf]\nquiet_after = often\n").expect_err("invalid");
    let text = err.to_string();
    assert!(
        text.contains("quiet_after") && text.contains("often"),
        "{text}"
    );
}

#[test]
fn a_source_is_quiet_once_silent_longer_than_its_type_allows() {
    let now = at(12, 0);
    let assessed = assess(
        vec![
            // 6h allowed: 5h59 is fine, 6h01 is quiet.
            sighting("cloudtrail", "111111111111", at(6, 1)),
            sighting("cloudtrail", "222222222222", at(5, 59)),
            sighting("vpcflowlogs", "111111111111", at(11, 0)),
            // No interval: never quiet, however old.
            sighting("guardduty", "111111111111", at(0, 0)),
            // A type the configuration does not know.
            sighting("mystery", "111111111111", at(0, 0)),
        ],
        &config(),
        now,
    );
    let verdicts: Vec<(&str, &str, State)> = assessed
        .iter()
        .map(|a| {
            (
                a.sighting.source.log_type.as_str(),
                a.sighting.source.account.as_deref().unwrap_or(""),
                a.state,
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("cloudtrail", "222222222222", State::Quiet),
            ("cloudtrail", "111111111111", State::Sending),
            ("vpcflowlogs", "111111111111", State::Sending),
            ("guardduty", "111111111111", State::Unwatched),
            ("mystery", "111111111111", State::Unwatched),
        ]
    );
    assert_eq!(assessed[0].silent_for, Duration::from_secs(6 * 3600 + 60));
}

#[test]
fn an_event_from_the_future_is_not_silence() {
    let assessed = assess(
        vec![sighting("cloudtrail", "111111111111", at(13, 0))],
        &config(),
        at(12, 0),
    );
    assert_eq!(assessed[0].state, State::Sending);
    assert_eq!(assessed[0].silent_for, Duration::ZERO);
}

#[test]
fn the_table_names_each_source_and_counts_the_quiet() {
    let assessed = assess(
        vec![
            sighting("cloudtrail", "222222222222", at(1, 0)),
            sighting("vpcflowlogs", "111111111111", at(11, 30)),
        ],
        &config(),
        at(12, 0),
    );
    let text = table(&assessed);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("STATE  TYPE"), "{text}");
    assert!(
        lines[1]
            .starts_with("QUIET  cloudtrail   222222222222  eu-west-1  2026-12-01T01:00:00Z  11h"),
        "{text}"
    );
    assert!(lines[1].contains("  6h  "), "{text}");
    assert!(
        lines[2].starts_with("ok     vpcflowlogs  111111111111"),
        "{text}"
    );
    assert!(lines[2].contains("30m"), "{text}");
    assert_eq!(lines[3], "2 sources, 1 quiet");
}

#[test]
fn one_silence_is_one_alert_and_a_new_silence_another() {
    let c = config();
    let now = at(12, 0);
    let quiet = assess(
        vec![sighting("cloudtrail", "222222222222", at(1, 0))],
        &c,
        now,
    );
    let first = quiet_alert(&quiet[0], now);
    // An hour later the same silence: same id, so the store refuses it as a duplicate.
    let later = assess(
        vec![sighting("cloudtrail", "222222222222", at(1, 0))],
        &c,
        at(13, 0),
    );
    let again = quiet_alert(&later[0], at(13, 0));
    assert_eq!(first.id, again.id);
    // It sent once more, then stopped again: a new alert.
    let resumed = assess(
        vec![sighting("cloudtrail", "222222222222", at(2, 0))],
        &c,
        at(13, 0),
    );
    assert_ne!(first.id, quiet_alert(&resumed[0], at(13, 0)).id);
    // Another account's silence is its own.
    let other = assess(
        vec![sighting("cloudtrail", "333333333333", at(1, 0))],
        &c,
        now,
    );
    assert_ne!(first.id, quiet_alert(&other[0], now).id);

    assert_eq!(first.index, "alert-2026-12");
    // Checked again in the next month: the same index, so the same id is refused there.
    let next_month = Utc
        .with_ymd_and_hms(2027, 1, 1, 1, 0, 0)
        .single()
        .expect("time");
    let later = assess(
        vec![sighting("cloudtrail", "222222222222", at(1, 0))],
        &c,
        next_month,
    );
    let over_the_month = quiet_alert(&later[0], next_month);
    assert_eq!(
        (over_the_month.index.as_str(), over_the_month.id.as_str()),
        ("alert-2026-12", first.id.as_str())
    );
    let doc: Value = serde_json::from_slice(&first.source.into_json()).expect("JSON");
    assert_eq!(doc["rule"]["id"], RULE_ID);
    assert_eq!(doc["rule"]["category"], "high");
    assert_eq!(doc["event"]["kind"], "alert");
    assert_eq!(doc["cloud"]["account"]["id"], "222222222222");
    assert_eq!(doc["cloud"]["region"], "eu-west-1");
    assert_eq!(doc["freshness"]["newest_event"], "2026-12-01T01:00:00.000Z");
    assert_eq!(doc["freshness"]["silent_for_seconds"], 11 * 3600);
    assert_eq!(doc["freshness"]["quiet_after_seconds"], 6 * 3600);
    // The notifier makes its message from the stored document.
    let message = crate::notify::message::alert_message(&doc.to_string().into_bytes())
        .expect("an alert the notifier reads");
    assert_eq!(message.level, "high");
    assert!(
        message
            .subject
            .contains("Log source went quiet: cloudtrail (222222222222)"),
        "{}",
        message.subject
    );
}

#[test]
fn the_query_asks_every_type_for_its_newest_event_per_account_and_region() {
    let c = config();
    let patterns = index_patterns(&c);
    assert!(patterns.contains("log-aws-cloudtrail-*"), "{patterns}");
    assert!(patterns.contains("log-aws-vpcflowlogs-*"), "{patterns}");
    assert!(!patterns.contains("alert"), "{patterns}");
    let body = request_body(at(0, 0), Some(&json!({"type": "waf"})), 50);
    assert_eq!(
        body["query"]["range"]["@timestamp"]["gte"],
        "2026-12-01T00:00:00.000Z"
    );
    let composite = &body["aggs"]["sources"]["composite"];
    assert_eq!(composite["size"], 50);
    assert_eq!(composite["after"], json!({"type": "waf"}));
    let fields: Vec<&str> = composite["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| {
            s.as_object()?
                .values()
                .next()?
                .pointer("/terms/field")?
                .as_str()
        })
        .collect();
    assert_eq!(fields, ["@log_type", "cloud.account.id", "cloud.region"]);
}

#[test]
fn pages_are_read_until_a_short_one() {
    let answer = json!({"aggregations": {"sources": {
    "after_key": {"type": "waf", "account": "1", "region": null},
    "buckets": [
        {"key": {"type": "waf", "account": "111111111111", "region": null}, "doc_count": 4,
         "newest_event": {"value": 1.7648e12}, "last_loaded": {"value": 1.7649e12}},
        {"key": {"type": "waf", "account": null, "region": "eu-west-1"}, "doc_count": 1,
         "newest_event": {"value": null}, "last_loaded": {"value": null}},
    ]}}});
    let (page, next) = parse_page(&answer, 2).expect("page");
    assert!(next.is_some(), "a full page asks for the next");
    assert_eq!(page.len(), 1, "a bucket without a time is left out");
    assert_eq!(page[0].source.region, None);
    assert_eq!(page[0].documents, 4);
    assert_eq!(
        page[0].newest_event,
        DateTime::from_timestamp_millis(1_764_800_000_000).expect("time")
    );
    let (_, next) = parse_page(&answer, 3).expect("page");
    assert!(next.is_none(), "a short page is the last");
    assert!(parse_page(&json!({"hits": {}}), 3).is_err());
}
