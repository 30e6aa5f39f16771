//! The central stack's custom resource: the Lambda prepares the cluster on Create and Update,
//! leaves it alone on Delete, and always answers CloudFormation.

use super::recorder::Recorder;
use super::*;
use loader::lambda::setup::{SetupResource, is_custom_resource};
use serde_json::json;
use shared::cfn::{Responder, Response, ResponseError, Status};
use std::sync::{Arc, Mutex};

/// Keeps the answers instead of sending them; clones share them.
#[derive(Default, Clone)]
struct Answers(Arc<Mutex<Vec<(String, Response)>>>);

impl Answers {
    fn last(&self) -> (String, Response) {
        self.0
            .lock()
            .expect("answers")
            .last()
            .cloned()
            .expect("an answer was sent")
    }
}

impl Responder for Answers {
    async fn send(&self, url: &str, response: &Response) -> Result<(), ResponseError> {
        self.0
            .lock()
            .expect("answers")
            .push((url.to_owned(), response.clone()));
        Ok(())
    }
}

fn request(kind: &str, props: Value) -> Value {
    json!({
        "RequestType": kind,
        "ResponseURL": "https://cloudformation-custom-resource-response.example/abc?X-Amz-Signature=s",
        "StackId": "arn:aws:cloudformation:eu-west-1:111122223333:stack/central/1",
        "RequestId": "r-1",
        "LogicalResourceId": "OpenSearchSetup",
        "ResourceType": "Custom::OpenSearchSetup",
        "ResourceProperties": props
    })
}

fn resource(endpoint: &str) -> SetupResource<Answers> {
    SetupResource::new(
        Config::builtin().expect("config"),
        SinkConfig::new(endpoint),
        None,
        Answers::default(),
    )
}

#[tokio::test]
async fn create_prepares_the_cluster_and_answers_with_counts() {
    let cluster = tests::OwnOpenSearch::start();
    let recorder = Recorder::start(&cluster.url).await;
    let answers = Answers::default();
    let config = Config::builtin().expect("config");
    let rules = loader::rules::RuleSet::with_bundled(&config, &[], &[]);
    let correlations = rules.correlations().len();
    let setup = SetupResource::new(
        config,
        SinkConfig::new(&recorder.url),
        None,
        answers.clone(),
    )
    .with_rules(Some(std::sync::Arc::new(rules)));
    let topic = "arn:aws:sns:eu-west-1:111122223333:org-security-logs-alerts";
    let event = request(
        "Create",
        json!({"ServiceToken": "arn", "LoaderCodeKey": "v1/loader.zip", "DashboardsEndpoint": recorder.url, "RetentionDays": "vpcflowlogs=30",
               "AlertTopicArn": topic, "AlertRoleArn": "arn:aws:iam::111122223333:role/monitors"}),
    );
    assert!(is_custom_resource(&event));
    let out = setup.handle(&event).await.expect("answered");
    assert_eq!(out["status"], json!("SUCCESS"), "{out}");
    assert!(recorder.policy("log-aws-vpcflowlogs-retention").is_some());
    assert!(recorder.saved_object_count() > 50);
    // The threshold rules became monitors that send to a channel of the alert topic.
    assert_eq!(recorder.monitors().len(), correlations);
    assert_eq!(
        recorder
            .channel("org-security-logs-alerts")
            .expect("channel")["sns"]["topic_arn"],
        json!(topic)
    );
    let (url, answer) = answers.last();
    assert!(url.ends_with("X-Amz-Signature=s"));
    assert_eq!(answer.status, Status::Success);
    assert_eq!(answer.physical_resource_id, "loader-setup-OpenSearchSetup");
    assert_eq!(answer.data.get("Failed").map(String::as_str), Some("0"));
    assert!(
        answer.data.get("Created").is_some_and(|n| n != "0"),
        "{answer:?}"
    );

    let mut update = request(
        "Update",
        json!({"ServiceToken": "arn", "LoaderCodeKey": "v2/loader.zip", "DashboardsEndpoint": recorder.url, "RetentionDays": "vpcflowlogs=30",
               "AlertTopicArn": topic, "AlertRoleArn": "arn:aws:iam::111122223333:role/monitors"}),
    );
    update["PhysicalResourceId"] = json!("loader-setup-OpenSearchSetup");
    recorder.clear_requests();
    let out = setup.handle(&update).await.expect("answered");
    assert_eq!(
        answers.last().1.physical_resource_id,
        "loader-setup-OpenSearchSetup"
    );
    assert_eq!(out["status"], json!("SUCCESS"));
    assert!(
        out["reason"]
            .as_str()
            .is_some_and(|r| r.contains("nothing to change")),
        "{out}"
    );
    assert!(recorder.requests().iter().all(|r| !r.is_write()));
}

#[tokio::test]
async fn delete_touches_nothing_and_bad_settings_or_no_cluster_fail_with_the_reason() {
    let cluster = tests::OwnOpenSearch::start();
    let recorder = Recorder::start(&cluster.url).await;
    let setup = resource(&recorder.url);
    let out = setup
        .handle(&request("Delete", json!({})))
        .await
        .expect("answered");
    assert_eq!(out["status"], json!("SUCCESS"));
    assert!(recorder.requests().is_empty());

    let out = setup
        .handle(&request("Create", json!({"Shards": "lots"})))
        .await
        .expect("answered");
    assert_eq!(out["status"], json!("FAILED"));
    assert!(
        out["reason"].as_str().is_some_and(|r| r.contains("Shards")),
        "{out}"
    );

    // Nothing answers: every artifact fails, so does the resource.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let nowhere = resource(&format!("http://127.0.0.1:{port}"));
    let out = nowhere
        .handle(&request("Create", json!({"Skip": "dashboards"})))
        .await
        .expect("answered");
    assert_eq!(out["status"], json!("FAILED"), "{out}");
    assert!(
        out["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cannot read it")),
        "{out}"
    );

    let out = setup
        .handle(&request("Create", json!({"Enabled": "false"})))
        .await
        .expect("answered");
    assert_eq!(out["status"], json!("SUCCESS"));
}

#[tokio::test]
async fn the_setup_signs_as_the_setup_role_and_maps_the_loader() {
    let cluster = tests::OwnOpenSearch::start();
    let recorder = Recorder::start(&cluster.url).await;
    let answers = Answers::default();
    let aws = tests::moto_config("eu-west-1").await;
    let mut sink = SinkConfig::new(&recorder.url);
    sink.auth = loader::sink::Auth::SigV4 {
        service: "es".into(),
        region: Some("eu-west-1".into()),
    };
    let setup = SetupResource::new(
        Config::builtin().expect("config"),
        sink,
        Some(aws),
        answers.clone(),
    );
    let admin = "arn:aws:iam::123456789012:role/org-security-logs-opensearch-admin";
    let loader_role = "arn:aws:iam::123456789012:role/org-security-logs-loader";
    let event = request(
        "Create",
        json!({"ServiceToken": "arn", "LoaderCodeKey": "v1/loader.zip", "DashboardsEndpoint": "none",
               "Skip": "templates,retention,monitors", "SetupRoleArn": admin,
               "WriterBackendRoles": loader_role}),
    );
    let out = setup.handle(&event).await.expect("answered");
    assert_eq!(out["status"], json!("SUCCESS"), "{out}");
    assert_eq!(
        recorder
            .security("rolesmapping", "org_security_logs_writer")
            .expect("mapped")["backend_roles"],
        json!([loader_role])
    );
    // Every request was signed with the assumed role's keys, not the function's own.
    let requests = recorder.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        let auth = r.authorization.as_deref().unwrap_or_default();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential="), "{auth}");
        assert!(
            !auth.contains("Credential=testing/"),
            "signed with the function's own credentials: {auth}"
        );
    }
}
