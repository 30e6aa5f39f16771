//! `loader setup` as users run it, against osmem behind the recording endpoint that adds the
//! ISM and saved-objects APIs: what it sends, that a second run changes nothing, that a change
//! of retention updates exactly one policy, that a refused template is named while the rest
//! goes on, dry runs and files.

use super::recorder::{Recorded, Recorder};
use super::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::process::Output;

fn setup_cli(args: &[&str]) -> Output {
    loader()
        .arg("setup")
        .args(args)
        .output()
        .expect("loader runs")
}

/// The command on a blocking thread, so the recorder keeps answering.
async fn setup_async(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        setup_cli(&args)
    })
    .await
    .expect("loader ran")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many artifacts the bundled content makes for the bundled configuration: the content,
/// and a monitor per bundled threshold or sequence rule.
fn artifact_count() -> usize {
    let config = Config::builtin().expect("config");
    let rules = loader::rules::RuleSet::with_bundled(&config, &[], &[]);
    content::plan(
        &config,
        &Content::bundled().expect("content"),
        &Options::default(),
    )
    .expect("plan")
    .len()
        + rules.correlations().len()
}

fn writes(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.is_write())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn a_second_run_changes_nothing_and_a_retention_change_updates_one_policy() {
    let cluster = tests::OwnOpenSearch::start();
    // A month loaded before setup, and an index whose name only looks like the type's.
    for index in ["log-aws-cloudtrail-2024-04", "log-aws-cloudtrail-archive"] {
        call(
            &transport(&cluster.url),
            Method::Put,
            &format!("/{index}"),
            Some(json!({})),
        )
        .await;
    }
    let recorder = Recorder::start(&cluster.url).await;
    let url = recorder.url.clone();
    let total = artifact_count();
    let args = ["--opensearch", url.as_str(), "--dashboards", url.as_str()];

    let first = setup_async(&args).await;
    let text = stdout(&first);
    assert!(
        first.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        text.contains(&format!(
            "setup: {total} created, 0 updated, 0 unchanged, 0 skipped, 0 failed"
        )),
        "{text}"
    );
    let sent = recorder.requests();
    // Templates, policies and saved objects went where their APIs are, as those APIs take them.
    let policy = sent
        .iter()
        .find(|r| {
            r.method == "PUT" && r.path == "/_plugins/_ism/policies/log-aws-cloudtrail-retention"
        })
        .expect("the CloudTrail retention policy");
    assert_eq!(
        policy.query, "",
        "a new policy is created without sequence numbers"
    );
    assert_eq!(
        policy.body["policy"]["ism_template"],
        json!([{"index_patterns": ["log-aws-cloudtrail-*"], "priority": 118}])
    );
    assert_eq!(
        policy.body["policy"]["states"][0]["transitions"][0]["conditions"]["min_index_age"],
        json!("396d")
    );
    // The month that existed gets the alias and the policy; the look-alike gets neither.
    assert!(
        sent.iter().any(|r| r.method == "POST"
            && r.path == "/_plugins/_ism/add/log-aws-cloudtrail-2024-04"
            && r.body == json!({"policy_id": "log-aws-cloudtrail-retention"})),
        "existing indices get the policy"
    );
    assert!(
        text.contains("created       ISM policy          log-aws-cloudtrail-retention (attached to 1 existing index(es))"),
        "{text}"
    );
    assert!(
        text.contains("created       index template      log-aws-cloudtrail (alias log-aws-cloudtrail added to 1 existing index(es))"),
        "{text}"
    );
    let aliases = call(
        &transport(&cluster.url),
        Method::Get,
        "/_alias/log-aws-cloudtrail",
        None,
    )
    .await;
    assert_eq!(
        aliases
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["log-aws-cloudtrail-2024-04".to_owned()])
    );
    let create = sent
        .iter()
        .find(|r| r.path == "/api/saved_objects/_bulk_create")
        .expect("saved objects");
    assert!(
        create.xsrf && create.query == "overwrite=true",
        "{create:?}"
    );
    assert!(
        sent.iter()
            .filter(|r| r.path.starts_with("/api/"))
            .all(|r| r.xsrf),
        "every Dashboards request carries osd-xsrf"
    );
    let ids: Vec<&str> = create
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["id"].as_str())
        .collect();
    for id in [
        "org-security-logs-overview",
        "org-security-logs-cloudtrail",
        "org-security-logs-waf",
        "org-security-logs-vpcflowlogs",
        "org-security-logs-findings",
        "org-security-logs-linux-secure",
        "org-security-logs-index-log-aws-cloudtrail",
        "org-security-logs-index-all",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert_eq!(recorder.saved_object_count(), ids.len());
    let template = sent
        .iter()
        .find(|r| r.method == "PUT" && r.path == "/_index_template/log-aws-cloudtrail")
        .expect("index template");
    assert_eq!(
        template.body["template"]["aliases"],
        json!({"log-aws-cloudtrail": {}})
    );

    // Again: everything is read, nothing is written.
    recorder.clear_requests();
    let second = setup_async(&args).await;
    let text = stdout(&second);
    assert!(second.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "setup: 0 created, 0 updated, {total} unchanged, 0 skipped, 0 failed: nothing to change"
        )),
        "{text}"
    );
    assert_eq!(writes(&recorder.requests()), Vec::<String>::new());

    // A shorter retention for CloudTrail: that policy alone is updated, with the sequence
    // numbers ISM wants, and the indices it manages move to the new version.
    recorder.clear_requests();
    let args = [
        "--opensearch",
        url.as_str(),
        "--dashboards",
        url.as_str(),
        "--retention-days",
        "cloudtrail=30",
    ];
    let third = setup_async(&args).await;
    let text = stdout(&third);
    assert!(third.status.success(), "{text}");
    assert!(
        text.contains("updated       ISM policy          log-aws-cloudtrail-retention"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "setup: 0 created, 1 updated, {} unchanged",
            total - 1
        )),
        "{text}"
    );
    let sent = recorder.requests();
    assert_eq!(
        writes(&sent),
        [
            "PUT /_plugins/_ism/policies/log-aws-cloudtrail-retention",
            "POST /_plugins/_ism/add/log-aws-cloudtrail-2024-04",
            "POST /_plugins/_ism/change_policy/log-aws-cloudtrail-2024-04",
        ]
    );
    let update = sent.iter().find(|r| r.method == "PUT").expect("update");
    assert_eq!(update.query, "if_seq_no=0&if_primary_term=1");
    let stored = recorder
        .policy("log-aws-cloudtrail-retention")
        .expect("stored");
    assert_eq!(
        stored["policy"]["states"][0]["transitions"][0]["conditions"]["min_index_age"],
        json!("61d")
    );
}

#[tokio::test]
async fn a_refused_template_is_named_with_the_answer_and_the_rest_goes_on() {
    let cluster = tests::OwnOpenSearch::start();
    let recorder = Recorder::start(&cluster.url).await;
    recorder.refuse(
        "PUT",
        "/_index_template/log-aws-waf",
        "mapper_parsing_exception: No handler for type [flat_object] declared on field [x]",
    );
    let url = recorder.url.clone();
    let out = setup_async(&["--opensearch", &url, "--skip", "dashboards"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "partial: {text}");
    assert!(
        text.contains("FAILED        index template      log-aws-waf: the server answered 400: illegal_argument_exception: mapper_parsing_exception: No handler for type [flat_object]"),
        "{text}"
    );
    assert!(
        text.contains("created       index template      log-aws-cloudtrail"),
        "{text}"
    );
    assert!(
        text.contains("created       ISM policy          log-aws-waf-retention"),
        "{text}"
    );
    assert!(text.contains(", 1 failed"), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("setup was partial: 1 of"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_dry_run_reads_and_prints_the_writes_without_sending_them() {
    let cluster = tests::OwnOpenSearch::start();
    let recorder = Recorder::start(&cluster.url).await;
    let url = recorder.url.clone();
    let out = setup_async(&["--opensearch", &url, "--dashboards", &url, "--dry-run"]).await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(writes(&recorder.requests()), Vec::<String>::new());
    assert!(
        text.contains("PUT opensearch /_index_template/log-aws-cloudtrail\n{"),
        "{text}"
    );
    assert!(
        text.contains("POST dashboards /api/saved_objects/_bulk_create?overwrite=true"),
        "{text}"
    );
    assert!(
        text.contains("would create  index template      log-aws-cloudtrail"),
        "{text}"
    );
    assert!(text.contains("(dry run: nothing was written)"), "{text}");
}

#[test]
fn out_writes_every_artifact_as_files_dashboards_importable_on_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = setup_cli(&["--out", &dir.path().display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let builtin = Config::builtin().expect("config");
    for t in &builtin.types {
        let alias = content::alias_of(t);
        for file in [
            format!("index_templates/{alias}.json"),
            format!("ism_policies/{alias}-retention.json"),
        ] {
            let text = std::fs::read_to_string(dir.path().join(&file))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let _: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
    let base: Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.path()
                .join("component_templates/org-security-logs-base.json"),
        )
        .expect("base component"),
    )
    .expect("JSON");
    assert_eq!(
        base["template"]["mappings"]["properties"]["@timestamp"],
        json!({"type": "date"})
    );

    let boards = dir.path().join("dashboards");
    let mut names: Vec<String> = std::fs::read_dir(&boards)
        .expect("dashboards folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cloudtrail.ndjson",
            "findings.ndjson",
            "index-patterns.ndjson",
            "linux-secure.ndjson",
            "overview.ndjson",
            "vpcflowlogs.ndjson",
            "waf.ndjson"
        ]
    );
    for name in names {
        let text = std::fs::read_to_string(boards.join(&name)).expect("readable");
        let objects: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}")))
            .collect();
        let here: BTreeSet<String> = objects.iter().map(object_key).collect();
        for o in &objects {
            for r in o["references"].as_array().into_iter().flatten() {
                let target = object_key(r);
                assert!(
                    here.contains(&target),
                    "{name}: {target} is not in the file"
                );
            }
        }
        if name != "index-patterns.ndjson" {
            assert_eq!(
                objects.last().map(|o| o["type"].clone()),
                Some(json!("dashboard")),
                "{name}"
            );
        }
    }
}

/// The threshold and sequence rules as Alerting monitors: a channel of the alert topic, one
/// monitor per rule sending to it, nothing changed by a second run, a new interval updating
/// each monitor with its sequence numbers, a user's correlation next to the bundled ones and
/// one that cannot become a monitor named; a cluster without the plugin says so.
#[tokio::test]
async fn thresholds_become_monitors_sending_to_the_alert_topic() {
    let cluster = tests::OwnOpenSearch::start();
    let recorder = Recorder::start(&cluster.url).await;
    let url = recorder.url.clone();
    let rules = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        rules.path().join("deletes.yml"),
        "title: Object deleted\nname: object_deleted\nid: u-del\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventSource: s3.amazonaws.com, eventName: DeleteObject}\n  condition: s\n---\ntitle: Many objects deleted\nid: u-many-deletes\nlevel: high\ncorrelation:\n  type: event_count\n  rules: [object_deleted]\n  group-by: [userIdentity.arn, requestParameters.bucketName]\n  timespan: 5m\n  condition: {gt: 99}\n---\ntitle: Bytes out\nid: u-sum\ncorrelation:\n  type: value_sum\n  rules: [object_deleted]\n  group-by: [sourceIPAddress]\n  timespan: 5m\n  condition: {gte: 10, field: bytes}\n",
    )
    .expect("rule");
    let dir = rules.path().display().to_string();
    let topic = "arn:aws:sns:eu-west-1:111122223333:org-security-logs-alerts";
    let role = "arn:aws:iam::111122223333:role/opensearch-alerts";
    let base = [
        "--opensearch",
        url.as_str(),
        "--skip",
        "templates",
        "--skip",
        "retention",
        "--skip",
        "dashboards",
        "--rules",
        dir.as_str(),
        "--alert-topic",
        topic,
        "--alert-role",
        role,
    ];
    let first = setup_async(&base).await;
    let text = stdout(&first);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{text}\n{stderr}");
    // 5 bundled monitors, the user's event_count, and the channel; the value_sum is named.
    assert!(
        text.contains("setup: 7 created, 0 updated, 0 unchanged, 0 skipped, 0 failed"),
        "{text}"
    );
    assert!(
        stderr.contains("u-sum") && stderr.contains("value_sum"),
        "{stderr}"
    );
    let channel = recorder
        .channel("org-security-logs-alerts")
        .expect("the channel");
    assert_eq!(
        channel["sns"],
        json!({"topic_arn": topic, "role_arn": role})
    );
    let monitors = recorder.monitors();
    assert_eq!(monitors.len(), 6);
    let mine = monitors
        .iter()
        .find(|m| m["name"] == json!("sigma u-many-deletes: Many objects deleted"))
        .expect("the user's monitor");
    let trigger = &mine["triggers"][0]["bucket_level_trigger"];
    assert_eq!(
        trigger["condition"]["script"]["source"],
        json!("params.count >= 100")
    );
    assert_eq!(
        trigger["actions"][0]["destination_id"],
        json!("org-security-logs-alerts")
    );
    let search = &mine["inputs"][0]["search"]["query"];
    assert_eq!(
        search["query"]["bool"]["filter"][1]["query_string"]["query"],
        json!("((eventSource:s3.amazonaws.com AND eventName:DeleteObject))")
    );
    assert_eq!(
        search["aggregations"]["groups"]["composite"]["sources"][1],
        json!({"requestParameters.bucketName": {"terms": {"field": "requestParameters.bucketName"}}})
    );

    recorder.clear_requests();
    let again = setup_async(&base).await;
    assert!(
        stdout(&again).contains("setup: 0 created, 0 updated, 7 unchanged"),
        "{}",
        stdout(&again)
    );
    assert_eq!(writes(&recorder.requests()), Vec::<String>::new());

    recorder.clear_requests();
    let mut slower = base.to_vec();
    slower.extend(["--monitor-interval", "15"]);
    let third = setup_async(&slower).await;
    assert!(
        stdout(&third).contains("setup: 0 created, 6 updated, 1 unchanged"),
        "{}",
        stdout(&third)
    );
    let updates: Vec<Recorded> = recorder
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with("/_plugins/_alerting/monitors/"))
        .collect();
    assert_eq!(updates.len(), 6);
    assert!(
        updates
            .iter()
            .all(|u| u.query == "if_seq_no=0&if_primary_term=1"
                && u.body["schedule"]["period"]["interval"] == json!(15))
    );

    // Straight to osmem, which has no Alerting plugin: each monitor fails with that reason.
    let plain = cluster.url.clone();
    let out = setup_async(&[
        "--opensearch",
        plain.as_str(),
        "--skip",
        "templates",
        "--skip",
        "retention",
        "--skip",
        "dashboards",
    ])
    .await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("setup: 0 created, 0 updated, 0 unchanged, 0 skipped, 5 failed"),
        "{text}"
    );
    assert!(text.contains("Alerting plugin is not available"), "{text}");
}

#[tokio::test]
async fn snapshots_go_to_the_repository_daily_and_a_second_run_changes_nothing() {
    let cluster = tests::OwnOpenSearch::start();
    let recorder = Recorder::start(&cluster.url).await;
    let url = recorder.url.clone();
    let role = "arn:aws:iam::111122223333:role/org-security-logs-snapshots";
    let args = [
        "--opensearch",
        url.as_str(),
        "--skip",
        "templates",
        "--skip",
        "retention",
        "--skip",
        "monitors",
        "--snapshot-repository",
        "s3://org-snapshots-111122223333/opensearch/",
        "--snapshot-role",
        role,
        "--snapshot-keep-days",
        "60",
    ];
    let first = setup_async(&args).await;
    let text = stdout(&first);
    assert!(
        first.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        text.contains("created       snapshot repository org-security-logs"),
        "{text}"
    );
    assert!(
        text.contains("created       snapshot policy     org-security-logs-daily"),
        "{text}"
    );
    let repository = recorder
        .repository("org-security-logs")
        .expect("registered");
    assert_eq!(repository["type"], "s3");
    assert_eq!(
        repository["settings"]["bucket"],
        "org-snapshots-111122223333"
    );
    assert_eq!(repository["settings"]["base_path"], "opensearch");
    assert_eq!(repository["settings"]["role_arn"], role);
    let policy = recorder
        .snapshot_policy("org-security-logs-daily")
        .expect("the snapshot policy");
    assert_eq!(policy["snapshot_config"]["repository"], "org-security-logs");
    assert_eq!(policy["snapshot_config"]["indices"], "log-*,alert-*");
    assert_eq!(policy["deletion"]["condition"]["max_age"], "60d");
    // The repository is registered before the policy that names it.
    let sent = writes(&recorder.requests());
    let at = |w: &str| {
        sent.iter()
            .position(|s| s == w)
            .unwrap_or_else(|| panic!("{w} in {sent:?}"))
    };
    assert!(
        at("PUT /_snapshot/org-security-logs")
            < at("POST /_plugins/_sm/policies/org-security-logs-daily")
    );

    recorder.clear_requests();
    let second = setup_async(&args).await;
    let text = stdout(&second);
    assert!(second.status.success(), "{text}");
    assert!(
        text.contains("unchanged     snapshot repository org-security-logs"),
        "{text}"
    );
    assert!(
        text.contains("unchanged     snapshot policy     org-security-logs-daily"),
        "{text}"
    );
    assert!(
        writes(&recorder.requests()).is_empty(),
        "{:?}",
        recorder.requests()
    );

    // Keeping snapshots longer updates the policy alone, with the version read.
    let mut longer = args.to_vec();
    longer[13] = "90";
    let third = setup_async(&longer).await;
    let text = stdout(&third);
    assert!(third.status.success(), "{text}");
    assert!(
        text.contains("updated       snapshot policy     org-security-logs-daily"),
        "{text}"
    );
    let update = recorder
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path == "/_plugins/_sm/policies/org-security-logs-daily")
        .expect("an update");
    assert_eq!(update.query, "if_seq_no=0&if_primary_term=1");
    assert_eq!(
        recorder
            .snapshot_policy("org-security-logs-daily")
            .expect("policy")["deletion"]["condition"]["max_age"],
        "90d"
    );

    // A cluster without the repository-s3 plugin: named, and the rest goes on.
    recorder.refuse(
        "PUT",
        "/_snapshot/org-security-logs",
        "unknown repository type [s3]",
    );
    let mut elsewhere = args.to_vec();
    elsewhere[9] = "s3://another-bucket";
    let refused = setup_async(&elsewhere).await;
    let text = stdout(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(text.contains("FAILED        snapshot repository org-security-logs: the server answered 400: illegal_argument_exception: unknown repository type [s3]"), "{text}");
}

#[tokio::test]
async fn the_loader_is_mapped_to_write_only_logs_and_alerts_and_analysts_to_read() {
    let cluster = tests::OwnOpenSearch::start();
    let recorder = Recorder::start(&cluster.url).await;
    let url = recorder.url.clone();
    let loader_role = "arn:aws:iam::111122223333:role/org-security-logs-loader";
    let args = [
        "--opensearch",
        url.as_str(),
        "--skip",
        "templates",
        "--skip",
        "retention",
        "--skip",
        "monitors",
        "--map-writer",
        loader_role,
        "--map-analyst",
        "security-analysts",
    ];
    let first = setup_async(&args).await;
    let text = stdout(&first);
    assert!(
        first.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    for line in [
        "created       security role       org_security_logs_writer",
        "created       role mapping        org_security_logs_writer",
        "created       security role       org_security_logs_analyst",
        "created       role mapping        org_security_logs_analyst",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let writer = recorder
        .security("roles", "org_security_logs_writer")
        .expect("writer role");
    assert_eq!(
        writer["index_permissions"],
        json!([{"index_patterns": ["log-*", "alert-*"],
                "allowed_actions": ["crud", "create_index", "indices:admin/mapping/put"]}])
    );
    assert_eq!(
        recorder
            .security("rolesmapping", "org_security_logs_writer")
            .expect("mapping")["backend_roles"],
        json!([loader_role])
    );
    assert_eq!(
        recorder
            .security("rolesmapping", "org_security_logs_analyst")
            .expect("mapping")["backend_roles"],
        json!(["security-analysts"])
    );

    recorder.clear_requests();
    let second = setup_async(&args).await;
    let text = stdout(&second);
    assert!(second.status.success(), "{text}");
    assert!(writes(&recorder.requests()).is_empty(), "{text}");

    // Someone widened the loader's role on the cluster: setup puts it back.
    let widened = json!({"cluster_permissions": ["cluster_all"], "index_permissions": [
        {"index_patterns": ["*"], "allowed_actions": ["indices_all"]}], "tenant_permissions": []});
    call(
        &transport(&url),
        Method::Put,
        "/_plugins/_security/api/roles/org_security_logs_writer",
        Some(widened),
    )
    .await;
    let third = setup_async(&args).await;
    let text = stdout(&third);
    assert!(
        text.contains("updated       security role       org_security_logs_writer"),
        "{text}"
    );
    assert_eq!(
        recorder
            .security("roles", "org_security_logs_writer")
            .expect("role")["index_permissions"][0]["index_patterns"],
        json!(["log-*", "alert-*"])
    );

    // A cluster without fine-grained access control has no security API: named, the rest goes on.
    recorder.refuse(
        "GET",
        "/_plugins/_security/api/roles/org_security_logs_analyst",
        "no handler found for uri [/_plugins/_security/api/roles/org_security_logs_analyst]",
    );
    let refused = setup_async(&args).await;
    let text = stdout(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "FAILED        security role       org_security_logs_analyst: cannot read it:"
        ),
        "{text}"
    );
}
