//! Threat feeds end to end: `loader ioc update` against a local publisher, and the binary
//! matching a load's documents against the feeds it installed.

use crate::geoip::Downloads;
use serde_json::Value;
use std::process::Command;

const FEODO: &str = "# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"malware\"\n\"2026-11-01 10:00:00\",\"1.128.3.4\",\"443\",\"online\",\"QakBot\"\n";

fn publisher() -> Downloads {
    Downloads::start(|target: &str| match target {
        "/ipblocklist.csv" => (200, FEODO.as_bytes().to_vec()),
        "/exit-addresses" => (
            200,
            b"ExitNode A\nExitAddress 1.130.4.5 2026-12-01 11:07:00\n".to_vec(),
        ),
        "/login" => (200, b"<html>please sign in</html>".to_vec()),
        _ => (404, b"gone".to_vec()),
    })
}

fn ioc_update(list: &str, to: &str, envs: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let feeds = dir.path().join("feeds.toml");
    std::fs::write(&feeds, list).expect("write");
    Command::new(env!("CARGO_BIN_EXE_loader"))
        .args(["ioc", "update", "--feeds"])
        .arg(&feeds)
        .args(["--to", to])
        .envs(envs.iter().copied())
        .output()
        .expect("runs")
}

#[test]
fn ioc_update_installs_good_feeds_keeps_old_ones_for_bad_downloads_and_the_load_matches() {
    let server = publisher();
    let dir = tempfile::tempdir().expect("tempdir");
    let to = dir.path().join("feeds");
    std::fs::create_dir_all(&to).expect("dir");
    std::fs::write(to.join("portal.txt"), "81.2.69.1\n").expect("an older feed");
    let list = format!(
        "[[feed]]\nname = \"feodo\"\nurl = \"{0}/ipblocklist.csv\"\n\n\
         [[feed]]\nname = \"tor-exits\"\nurl = \"{0}/exit-addresses\"\n\n\
         [[feed]]\nname = \"portal\"\nurl = \"{0}/login\"\n\n\
         [[feed]]\nname = \"gone\"\nurl = \"{0}/gone.txt\"\n",
        server.url
    );
    let out = ioc_update(&list, to.to_str().expect("utf-8"), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "two feeds failed: {stdout}");
    assert!(stdout.contains("feodo: 1 indicators"), "{stdout}");
    assert!(stdout.contains("tor-exits: 1 indicators"), "{stdout}");
    assert!(
        stdout.contains("portal: FAILED") && stdout.contains("no address"),
        "{stdout}"
    );
    assert!(
        stdout.contains("gone: FAILED") && stdout.contains("404"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(to.join("portal.txt")).expect("kept"),
        "81.2.69.1\n",
        "a sign-in page never replaces a feed"
    );
    assert!(to.join("feodo.csv").is_file() && to.join("tor-exits.txt").is_file());

    // A load with THREAT_INTEL_FEEDS on those files: the matching document is enriched.
    let record = serde_json::json!({"Records": [{
        "eventVersion": "1.09", "eventTime": "2024-05-01T00:00:00Z",
        "eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity",
        "awsRegion": "us-east-1", "sourceIPAddress": "1.128.3.4",
        "eventID": "3f0c2e7a-0000-4000-8000-00000000ab01", "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": "alice", "accountId": "111122223333"}
    }]});
    let input = dir.path().join("trail.json");
    std::fs::write(&input, record.to_string()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_loader"))
        .args(["test", "--type", "cloudtrail"])
        .arg(&input)
        .args([
            "--key",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/x.json.gz",
        ])
        .env("THREAT_INTEL_FEEDS", &to)
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let source = &docs[0]["_source"];
    let enrichments = source["threat"]["enrichments"].as_array().expect("matched");
    assert_eq!(enrichments.len(), 1, "{source}");
    assert_eq!(enrichments[0]["indicator"]["provider"], "feodo");
    assert_eq!(enrichments[0]["indicator"]["description"], "QakBot");
    assert_eq!(
        enrichments[0]["indicator"]["first_seen"],
        "2026-11-01T10:00:00Z"
    );
    assert_eq!(enrichments[0]["matched"]["field"], "source.ip");
    assert!(
        source["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "threat-intel")),
        "{source}"
    );
}

#[tokio::test]
async fn feeds_in_s3_are_installed_and_read_again_when_one_changes() {
    use loader::enrich::files::{Files, Location};
    use loader::enrich::threat::ThreatFeeds;
    let config = tests::moto_config("us-east-1").await;
    let s3 = shared::aws::s3_client(&config);
    let bucket = tests::unique_name("feeds").to_ascii_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let server = publisher();
    let to = format!("s3://{bucket}/threat");
    let list = format!(
        "[[feed]]\nname = \"feodo\"\nurl = \"{}/ipblocklist.csv\"\n",
        server.url
    );
    let endpoint = tests::moto_endpoint();
    let target = to.clone();
    let out = tokio::task::spawn_blocking(move || {
        ioc_update(&list, &target, &[("AWS_ENDPOINT_URL", &endpoint)])
    })
    .await
    .expect("ran");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let feeds = ThreatFeeds::new(Location::parse(&to));
    let store = Files {
        s3: Some(s3.clone()),
    };
    assert!(feeds.refresh(&store).await.expect("read"));
    assert_eq!(
        feeds
            .current()
            .match_ip("1.128.3.4".parse().expect("ip"))
            .len(),
        1
    );
    assert!(
        !feeds.refresh(&store).await.expect("same"),
        "unchanged feeds are not read again"
    );
    s3.put_object()
        .bucket(&bucket)
        .key("threat/extra.txt")
        .body(b"8.8.4.4\n".to_vec().into())
        .send()
        .await
        .expect("put");
    assert!(feeds.refresh(&store).await.expect("read again"));
    assert_eq!(
        feeds
            .current()
            .match_ip("8.8.4.4".parse().expect("ip"))
            .len(),
        1
    );
    assert_eq!(feeds.current().feeds().len(), 2);
}
