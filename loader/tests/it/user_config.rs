//! User configuration end to end: the es-loader's Apache example through `loader test` and
//! `loader load`, overrides of built-in types, exclusion rules with per-rule counts, and the
//! `check-config` / `explain` commands, run as the built binary.

use chrono::{DateTime, Utc};
use loader::config::Config;
use loader::exclude::Exclusions;
use loader::pipeline::{Pipeline, Stats, load_bytes};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INGESTED: &str = "2026-01-01T00:00:00Z";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn apache_ini() -> PathBuf {
    fixtures().join("apache/user.ini")
}

fn ingested() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(INGESTED)
        .expect("time")
        .with_timezone(&Utc)
}

fn loader(args: &[&str]) -> Output {
    // `load` writes its report files into the working folder.
    let cwd = tempfile::tempdir().expect("tempdir");
    Command::new(env!("CARGO_BIN_EXE_loader"))
        .current_dir(cwd.path())
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("GEOIP_DATABASE_DIR")
        .output()
        .expect("the loader binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The one input object of a fixture case and its key (the path below the case folder).
fn case_input(case: &Path) -> (PathBuf, String) {
    let mut stack = vec![case.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("case folder").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "expected.json") {
                let key = p
                    .strip_prefix(case)
                    .expect("below the case")
                    .to_string_lossy()
                    .replace('\\', "/");
                return (p, key);
            }
        }
    }
    panic!("no input object in {}", case.display());
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn apache_example_through_loader_test_matches_the_golden_documents() {
    let ini = apache_ini();
    for case in [
        "combined",
        "common",
        "ipv6",
        "dash-bytes",
        "firehose-date-prefix",
    ] {
        let dir = fixtures().join("apache").join(case);
        let (file, key) = case_input(&dir);
        let expected = dir.join("expected.json");
        let out = loader(&[
            "test",
            "--type",
            "apache",
            p(&file),
            "--config",
            p(&ini),
            "--key",
            &key,
            "--expected",
            p(&expected),
            "--ingested",
            INGESTED,
        ]);
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{case}: {stderr}");
        assert!(stderr.contains("the documents match"), "{case}: {stderr}");
        let docs: Value = serde_json::from_slice(&out.stdout).expect("a JSON array");
        let golden: Value =
            serde_json::from_str(&std::fs::read_to_string(&expected).expect("golden"))
                .expect("JSON");
        assert_eq!(docs, golden["documents"], "{case}");
        assert_eq!(docs.as_array().map(Vec::len), Some(3), "{case}");
    }
}

#[test]
fn loader_test_reports_differences_and_bad_lines_with_an_exit_code() {
    let dir = fixtures().join("apache/combined");
    let (file, key) = case_input(&dir);
    let mut golden: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("golden"))
            .expect("JSON");
    let docs = golden["documents"].take();
    let mut docs = docs;
    docs[0]["_source"]["http"]["response"]["status_code"] = Value::from(999);
    // Without event.ingested in the expected document, the load time is not compared.
    if let Some(event) = docs[1]["_source"]["event"].as_object_mut() {
        event.remove("ingested");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let expected = tmp.path().join("expected.json");
    std::fs::write(&expected, serde_json::to_vec(&docs).expect("json")).expect("write");
    let out = loader(&[
        "test",
        "--type",
        "apache",
        p(&file),
        "--config",
        p(&apache_ini()),
        "--key",
        &key,
        "--expected",
        p(&expected),
        "--ingested",
        INGESTED,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "difference: [0]._source.http.response.status_code: expected 999, actual 200"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("1 differences from"), "{stderr}");
    assert_eq!(stderr.matches("difference: ").count(), 1, "{stderr}");

    let (file, key) = case_input(&fixtures().join("apache/unmatched-lines"));
    let out = loader(&[
        "test",
        "--type",
        "apache",
        p(&file),
        "--config",
        p(&apache_ini()),
        "--key",
        &key,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("line 2: the line does not match log_pattern"),
        "{stderr}"
    );
    assert!(stderr.contains("2 records did not load"), "{stderr}");
    let docs: Value = serde_json::from_slice(&out.stdout).expect("a JSON array");
    assert_eq!(docs.as_array().map(Vec::len), Some(2));

    let out = loader(&["test", "--type", "nginx", p(&file)]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no log type named `nginx`"));
}

#[test]
fn apache_example_through_loader_load() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_file = tmp.path().join("docs.ndjson");
    let out = loader(&[
        "load",
        p(&fixtures().join("apache")),
        "--config",
        p(&apache_ini()),
        "--ingested",
        INGESTED,
        "--out",
        p(&out_file),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("apache: objects 6, records 19, documents 17, errors 2"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&out_file).expect("output");
    let docs: Vec<Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    // The same documents as the golden cases (ids hash the raw lines), each in its index.
    let mut golden_ids = BTreeSet::new();
    for entry in std::fs::read_dir(fixtures().join("apache"))
        .expect("apache")
        .flatten()
    {
        let expected = entry.path().join("expected.json");
        if let Ok(text) = std::fs::read_to_string(&expected) {
            let v: Value = serde_json::from_str(&text).expect("JSON");
            for d in v["documents"].as_array().expect("documents") {
                golden_ids.insert(d["_id"].as_str().expect("id").to_owned());
            }
        }
    }
    let ids: BTreeSet<String> = docs
        .iter()
        .map(|d| d["_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, golden_ids);
    assert!(docs.iter().all(|d| d["_index"] == "log-web-apache-2024-05"));
    let firehose: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            d["_source"]["@log_s3key"]
                .as_str()
                .is_some_and(|k| k.contains("/access_log/2024/05/06/13/"))
        })
        .collect();
    assert_eq!(firehose.len(), 3);
    assert_eq!(firehose[2]["_source"]["source"]["ip"], "2001:db8::61");
    assert_eq!(firehose[2]["_source"]["user"]["name"], "dave");
}

fn load_case(pipeline: &Pipeline, case: &str) -> (Vec<loader::pipeline::Document>, Stats) {
    let (file, key) = case_input(&fixtures().join(case));
    let bytes = std::fs::read(file).expect("fixture");
    let (docs, stats, _) = load_bytes(pipeline, &key, &bytes, ingested());
    (docs, stats)
}

#[test]
fn overrides_change_index_names_through_defaults_and_references() {
    let builtin = Pipeline::new(Config::builtin().expect("config"));
    let (docs, _) = load_case(&builtin, "cloudtrail/org-trail-management-and-data");
    assert!(docs.iter().all(|d| d.index == "log-aws-cloudtrail-2024-05"));

    let daily = Pipeline::new(
        Config::with_user_file("user.ini", "[cloudtrail]\nindex_rotation = daily\n")
            .expect("config"),
    );
    let (docs, _) = load_case(&daily, "cloudtrail/org-trail-management-and-data");
    assert_eq!(docs.len(), 3);
    assert!(
        docs.iter()
            .all(|d| d.index == "log-aws-cloudtrail-2024-05-01"),
        "{:?}",
        docs.iter().map(|d| &d.index).collect::<Vec<_>>()
    );

    // [DEFAULT] reaches every type; ${section:key} copies another type's value; index_tz moves
    // the period.
    let user = "[DEFAULT]\nindex_suffix = org1\n\n[cloudtrail]\nindex_rotation = daily\n\n\
[vpcflowlogs]\nindex_rotation = ${cloudtrail:index_rotation}\nindex_tz = -09:00\n";
    let pipeline = Pipeline::new(Config::with_user_file("user.ini", user).expect("config"));
    let (docs, _) = load_case(&pipeline, "cloudtrail/org-trail-management-and-data");
    assert!(
        docs.iter()
            .all(|d| d.index == "log-aws-cloudtrail-org1-2024-05-01")
    );
    let (docs, _) = load_case(&pipeline, "vpcflowlogs/v2-default");
    assert!(!docs.is_empty());
    // The flows start at 2024-05-01T00:0x UTC: still April 30th at -09:00.
    assert!(
        docs.iter()
            .all(|d| d.index == "log-aws-vpcflowlogs-org1-2024-04-30"),
        "{:?}",
        docs.iter().map(|d| &d.index).collect::<Vec<_>>()
    );
}

#[test]
fn a_user_mapping_on_a_built_in_type_wins_after_its_normalizer() {
    let user = "[cloudtrail]\necs = event.dataset user.name\nevent.dataset = eventSource\n\
user.name = userIdentity.userName userIdentity.sessionContext.sessionIssuer.userName\n\
static_ecs = labels.team\nlabels.team = security\n";
    let pipeline = Pipeline::new(Config::with_user_file("user.ini", user).expect("config"));
    let (docs, _) = load_case(&pipeline, "cloudtrail/org-trail-management-and-data");
    let first = docs[0].source.fields();
    assert_eq!(
        loader::ecs::get_in(&first, "event.dataset"),
        first.get("eventSource")
    );
    assert!(
        docs.iter()
            .all(|d| loader::ecs::get_in(&d.source.fields(), "labels.team")
                == Some(&Value::from("security")))
    );

    // CloudTrail events that arrive through a CloudWatch Logs group get the same mapping.
    let (docs, _) = load_case(&pipeline, "cloudwatchlogs/cloudtrail-log-group");
    let routed: Vec<_> = docs
        .iter()
        .filter(|d| d.index.starts_with("log-aws-cloudtrail-"))
        .collect();
    assert!(!routed.is_empty());
    for d in routed {
        assert_eq!(
            loader::ecs::get_in(&d.source.fields(), "labels.team"),
            Some(&Value::from("security"))
        );
        assert_eq!(
            loader::ecs::get_in(&d.source.fields(), "event.dataset"),
            d.source.fields().get("eventSource")
        );
    }
}

const EXCLUSIONS: &str = "log_type,field,pattern,pattern_type,comment
cloudtrail,userIdentity.invokedBy,.*\\.amazonaws\\.com,regex,calls made by AWS services
cloudtrail,eventName,GetObject,text,data events
cloudtrail,eventName,Get,text,exact match only: removes nothing
vpcflowlogs,srcaddr,203\\.0\\.113\\..*,regex,scanners
vpcflowlogs,dstport,53,text,DNS
vpcflowlogs,srcaddr,10.0.1,text,exact match only: removes nothing
";

#[test]
fn exclusion_rules_of_both_kinds_with_per_rule_counts() {
    let exclusions = Exclusions::parse("exclude_log_patterns.csv", EXCLUSIONS).expect("rules");
    let pipeline = Pipeline::new(Config::builtin().expect("config")).with_exclusions(exclusions);

    let (docs, stats) = load_case(&pipeline, "cloudtrail/org-trail-management-and-data");
    let names: Vec<String> = docs
        .iter()
        .filter_map(|d| {
            let fields = d.source.fields();
            fields
                .get("eventName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(names, ["StartInstances"]);
    assert_eq!(stats.per_type["cloudtrail"].excluded, 2);
    assert_eq!(stats.per_type["cloudtrail"].records, 3);
    let counts: Vec<(&str, u64)> = stats
        .excluded
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        counts,
        [
            (
                "exclude_log_patterns.csv:2 cloudtrail userIdentity.invokedBy=.*\\.amazonaws\\.com (regex)",
                1
            ),
            (
                "exclude_log_patterns.csv:3 cloudtrail eventName=GetObject (text)",
                1
            ),
        ]
    );

    let (docs, stats) = load_case(&pipeline, "vpcflowlogs/v2-default");
    let kept: Vec<(String, String)> = docs
        .iter()
        .map(|d| {
            let fields = d.source.fields();
            let text = |name: &str| fields[name].as_str().unwrap_or_default().to_owned();
            (text("srcaddr"), text("dstaddr"))
        })
        .collect();
    assert_eq!(
        kept,
        [
            ("10.0.1.15".to_owned(), "198.51.100.20".to_owned()),
            ("198.51.100.20".to_owned(), "10.0.1.15".to_owned())
        ]
    );
    assert_eq!(stats.per_type["vpcflowlogs"].excluded, 3);
    assert_eq!(
        stats
            .excluded
            .get("exclude_log_patterns.csv:5 vpcflowlogs srcaddr=203\\.0\\.113\\..* (regex)"),
        Some(&2)
    );
    assert_eq!(
        stats
            .excluded
            .get("exclude_log_patterns.csv:6 vpcflowlogs dstport=53 (text)"),
        Some(&1)
    );
    assert_eq!(stats.excluded.len(), 2, "{:?}", stats.excluded);
    assert!(
        stats.summary().contains(
            "  excluded by exclude_log_patterns.csv:6 vpcflowlogs dstport=53 (text): 1\n"
        )
    );
}

#[test]
fn load_with_an_exclusions_file_prints_the_counts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let csv = tmp.path().join("exclude_log_patterns.csv");
    std::fs::write(&csv, EXCLUSIONS).expect("write");
    let out = loader(&[
        "load",
        p(&fixtures().join("vpcflowlogs/v2-default")),
        p(&fixtures().join("cloudtrail/org-trail-management-and-data")),
        "--exclusions",
        p(&csv),
        "--ingested",
        INGESTED,
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(text(&out.stdout).lines().count(), 3, "{stderr}");
    assert!(
        stderr.contains("  cloudtrail: excluded records 2\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  vpcflowlogs: excluded records 3\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("srcaddr=203\\.0\\.113\\..* (regex): 2\n"),
        "{stderr}"
    );

    std::fs::write(
        &csv,
        "log_type,field,pattern,pattern_type,comment\nwaf,a,b,text,\nwaf,a,b,wildcard,\n",
    )
    .expect("write");
    let out = loader(&["load", p(&fixtures().join("waf")), "--exclusions", p(&csv)]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("exclude_log_patterns.csv:3: pattern_type `wildcard` is not text or regex"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn check_config_shows_effective_settings_and_reports_a_bad_regex_with_its_location() {
    let out = loader(&["check-config", "--config", p(&apache_ini())]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("log types"), "{stdout}");
    assert!(
        stdout.contains("  apache: s3_key `UserLogs/apache/access.*\\.log`, text, index log-web-apache-2024-05, normalizer configured (10 ecs fields)"),
        "{stdout}"
    );
    let out = loader(&[
        "check-config",
        "--config",
        p(&apache_ini()),
        "--type",
        "apache",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    let ini = apache_ini().display().to_string();
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert_eq!(line("index_name"), format!("= log-web-apache # {ini}:8"));
    assert!(
        line("index_rotation").starts_with("= monthly # built-in aws.ini:"),
        "{stdout}"
    );
    assert!(line("timestamp").starts_with("= datetime # "), "{stdout}");
    assert!(
        stdout.contains("# ecs source.ip <- first present of remotehost\n"),
        "{stdout}"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = tmp.path().join("user.ini");
    // check-config refuses the file, naming `file:line: what`.
    let refused = |ini: &str, line_and_reason: &str| {
        std::fs::write(&bad, ini).expect("write");
        let out = loader(&["check-config", "--config", p(&bad)]);
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("{}:{line_and_reason}", bad.display())),
            "{stderr}"
        );
    };
    refused(
        "[apache]\ns3_key = UserLogs/apache/\nindex_name = log-web-apache\n\nlog_pattern = ^(?P<host>\\S+ [\n",
        "5: [apache] log_pattern: invalid regular expression `^(?P<host>\\S+ [`",
    );
    // Right syntax, but too large to compile: a load would find out at the type's first
    // object; check-config compiles every pattern and says so now.
    refused(
        "[apache]\ns3_key = UserLogs/apache/\nindex_name = log-web-apache\nlog_pattern = \\w{1000}\\w{1000}\\w{1000}\n",
        "4: [apache] log_pattern: regular expression `\\w{1000}\\w{1000}\\w{1000}` cannot be compiled",
    );
}

#[test]
fn explain_names_the_type_and_why_the_others_do_not_match() {
    let out = loader(&[
        "explain",
        "UserLogs/apache/access_log/2024/05/06/13/apache-access-1-2024-05-06-13-05-12-x.log.gz",
        "--config",
        p(&apache_ini()),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("result: detected as `apache` (normalized from its configuration)"),
        "{stdout}"
    );
    assert!(stdout.contains("  cloudtrail: s3_key `"), "{stdout}");
    assert!(stdout.contains("does not match"), "{stdout}");
    let out = loader(&["explain", "UserLogs/apache/access.log"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("result: not loaded: no log type's s3_key matches the key"),
        "{stdout}"
    );
}

/// Every key of a custom type, on JSON, CSV and header-named text objects.
#[test]
fn every_key_of_a_custom_type_works() {
    let user = r#"
[DEFAULT]
index_tz = +09:00
site = tokyo

[audit]
s3_key = ^UserLogs/audit/
s3_key_ignored = /test-
file_format = json
json_delimiter = entries
index_name = log-app-audit
index_suffix = ${site}
index_rotation = weekly
doc_id = request.id
doc_id_suffix = seq
timestamp_key = at
timestamp_format = iso8601
timestamp_tz = -05:00
ecs = user.name source.ip
user.name = actor.name actor.id
source.ip = [client, proxy]
static_ecs = event.category
event.category = [iam]

[billing]
s3_key = UserLogs/billing/
file_format = csv
csv_delimiter = ;
index_name = log-billing
index_rotation = yearly
index_time = event_ingested
timestamp_key = day
timestamp_format = %Y%m%d

[batch]
s3_key = UserLogs/batch/
file_format = text
text_header_line_number = 2
index_name = log-batch
index_rotation = daily
timestamp_key = epoch_ms
timestamp_format = epoch
ecs = process.pid
process.pid = pid
"#;
    let pipeline = Pipeline::new(Config::with_user_file("user.ini", user).expect("config"))
        .with_exclusions(
            Exclusions::parse(
                "x.csv",
                "log_type,field,pattern,pattern_type,comment\naudit,actor.name,svc-.*,regex,\nbatch,job,cleanup,text,\n",
            )
            .expect("rules"),
        );

    let audit = br#"{"entries": [
        {"request": {"id": "r-1"}, "seq": 1, "at": "2024-12-31T22:00:00", "actor": {"id": "u-7"}, "client": "192.0.2.1", "proxy": "198.51.100.2"},
        {"request": {"id": "r-2"}, "at": "2024-05-01T00:00:00Z", "actor": {"name": "svc-backup"}}
    ]}"#;
    let (docs, stats, _) = load_bytes(&pipeline, "UserLogs/audit/2024/app.json", audit, ingested());
    assert_eq!(docs.len(), 1, "{:?}", stats.errors);
    assert_eq!(stats.per_type["audit"].excluded, 1);
    let d = &docs[0];
    assert_eq!(d.id, "r-1_1");
    // 22:00 at -05:00 is 03:00 UTC on 2025-01-01, noon in Tokyo: ISO week 1 of 2025.
    assert_eq!(d.index, "log-app-audit-tokyo-2025-w01");
    assert_eq!(d.source.fields()["@timestamp"], "2025-01-01T03:00:00.000Z");
    assert_eq!(d.source.fields()["user"]["name"], "u-7");
    assert_eq!(
        d.source.fields()["source"]["ip"],
        serde_json::json!(["192.0.2.1", "198.51.100.2"])
    );
    assert_eq!(
        d.source.fields()["event"]["category"],
        serde_json::json!(["iam"])
    );
    let (_, _, outcome) = load_bytes(
        &pipeline,
        "UserLogs/audit/test-1/app.json",
        audit,
        ingested(),
    );
    assert!(
        matches!(outcome, loader::pipeline::Outcome::Skipped(_)),
        "{outcome:?}"
    );

    let billing = b"day;account;cost\n20240501;111122223333;12.5\n20240502;;3\n";
    let (docs, stats, _) = load_bytes(&pipeline, "UserLogs/billing/may.csv", billing, ingested());
    assert_eq!(docs.len(), 2, "{:?}", stats.errors);
    // index_time = event_ingested: the load year in Tokyo, not the event's.
    assert!(docs.iter().all(|d| d.index == "log-billing-2026"));
    assert_eq!(docs[0].source.fields()["cost"], "12.5");
    assert_eq!(docs[1].source.fields().get("account"), None);
    // No timestamp_tz: the day is taken in UTC.
    assert_eq!(
        docs[1].source.fields()["@timestamp"],
        "2024-05-02T00:00:00.000Z"
    );

    let batch = b"# batch runner v2\njob pid epoch_ms\nbackup 4242 1714557600123\ncleanup 99 1714557601000\n";
    let (docs, stats, _) = load_bytes(&pipeline, "UserLogs/batch/host1.log", batch, ingested());
    assert_eq!(docs.len(), 1, "{:?}", stats.errors);
    assert_eq!(stats.per_type["batch"].excluded, 1);
    assert_eq!(docs[0].source.fields()["process"]["pid"], 4242);
    assert_eq!(
        docs[0].source.fields()["@timestamp"],
        "2024-05-01T10:00:00.123Z"
    );
    assert_eq!(docs[0].index, "log-batch-2024-05-01");
}

/// The `[apache]` section exactly as the es-loader documentation writes it (its own
/// `log_pattern`, `timestamp = datetime`), over common-format access-log lines.
const DOCUMENTED_APACHE_SECTION: &str = r#"[apache]
s3_key = UserLogs/apache/access.*\.log
file_format = text
index_name = log-web-apache
log_pattern = (?P<remotehost>.*) (?P<rfc931>.*) (?P<authuser>.*) \[(?P<datetime>.*?)\] \"(?P<request_method>.*) (?P<request_path>.*)(?P<request_version> HTTP/.*)\" (?P<status>.*) (?P<bytes>.*)
timestamp = datetime
timestamp_format = %d/%b/%Y:%H:%M:%S %z
ecs = source.ip user.name http.request.method url.path http.version http.response.status_code http.response.bytes
source.ip = remotehost
user.name = authuser
http.request.method = request_method
url.path = request_path
http.version = request_version
http.response.status_code = status
http.response.bytes = bytes
geoip = source
"#;

#[test]
fn the_documented_apache_section_loads_common_format_lines_as_is() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ini = tmp.path().join("user.ini");
    std::fs::write(&ini, DOCUMENTED_APACHE_SECTION).expect("write");
    let logs = tmp.path().join("bucket/UserLogs/apache");
    std::fs::create_dir_all(&logs).expect("mkdir");
    std::fs::write(
        logs.join("access.log"),
        "192.0.2.10 - alice [01/May/2024:10:00:00 +0900] \"GET /index.html HTTP/1.1\" 200 2326\n\
         2001:db8::5 - - [01/May/2024:10:00:01 +0000] \"POST /login?next=%2F HTTP/2.0\" 302 -\n",
    )
    .expect("write");
    let out = loader(&[
        "load",
        "--config",
        p(&ini),
        "--ingested",
        INGESTED,
        p(&tmp.path().join("bucket")),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let docs: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    assert_eq!(docs.len(), 2, "{stderr}");
    let first = &docs[0];
    assert_eq!(first["_index"], "log-web-apache-2024-05");
    let src = &first["_source"];
    assert_eq!(src["@timestamp"], "2024-05-01T01:00:00.000Z");
    assert_eq!(src["source"]["ip"], "192.0.2.10");
    assert_eq!(src["user"]["name"], "alice");
    assert_eq!(src["http"]["request"]["method"], "GET");
    assert_eq!(src["http"]["version"], "1.1");
    assert_eq!(src["http"]["response"]["status_code"], 200);
    assert_eq!(src["http"]["response"]["bytes"], 2326);
    assert_eq!(src["url"]["path"], "/index.html");
    // The original fields stay next to the ECS ones.
    assert_eq!(src["request_version"], " HTTP/1.1");
    let second = &docs[1]["_source"];
    assert_eq!(second["source"]["ip"], "2001:db8::5");
    assert_eq!(second["url"]["path"], "/login");
    assert_eq!(second["url"]["query"], "next=%2F");
    assert_eq!(second["http"]["version"], "2.0");
    assert!(second["http"]["response"].get("bytes").is_none());
    assert!(second.get("user").is_none(), "`-` is no user");
}

/// The es-loader's own `aws.ini` and `user.ini.sample` (copies of their structure) pass
/// `check-config`: exit 0, each key without effect named once per file with its reason, and
/// an error in a user file called `aws.ini` named by that file, never by the bundled one.
#[test]
fn the_es_loader_files_pass_check_config_with_one_warning_per_key() {
    let root = fixtures().join("es-loader");
    for file in ["aws.ini", "user.ini"] {
        let path = root.join(file);
        let out = loader(&["check-config", "--config", &path.display().to_string()]);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {}{stdout}",
            text(&out.stderr)
        );
        let warnings: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("warning: "))
            .collect();
        let keys: Vec<&str> = warnings
            .iter()
            .filter_map(|w| w.split('`').nth(1))
            .collect();
        let distinct: BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(keys.len(), distinct.len(), "{file}: {warnings:#?}");
        assert!(keys.len() <= 15, "{file}: {warnings:#?}");
        for w in &warnings {
            assert!(
                w.starts_with(&path.display().to_string()),
                "{file}: a warning not at its line: {w}"
            );
            assert!(
                !w.contains("unknown key"),
                "{file}: every key of the es-loader is known: {w}"
            );
        }
    }
    let aws = std::fs::read_to_string(root.join("aws.ini")).expect("aws.ini");
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = aws.replacen("s3_key = vpcdnsquerylogs", "s3_key = vpcdnsquerylogs(", 1);
    assert_ne!(broken, aws);
    std::fs::write(dir.path().join("aws.ini"), broken).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_loader"))
        .current_dir(dir.path())
        .args(["check-config", "--config", "aws.ini"])
        .output()
        .expect("loader runs");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = aws
        .lines()
        .position(|l| l == "s3_key = vpcdnsquerylogs")
        .map(|i| i + 1)
        .expect("line");
    assert!(
        stderr.contains(&format!("aws.ini:{line}: [route53resolver] s3_key")),
        "{stderr}"
    );
    assert!(!stderr.contains("built-in"), "{stderr}");
}
