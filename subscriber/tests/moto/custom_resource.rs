//! The CloudFormation custom resource, answered to a local endpoint standing in for the
//! pre-signed URL.

use crate::support::{TestAccount, scripted_server};
use crate::{FILTER, logs, options, settings};
use serde_json::{Value, json};
use shared::cfn::HttpResponder;
use subscriber::handler::Handler;

fn request(kind: &str, url: &str) -> Value {
    json!({
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:org-security-logs-subscriber",
        "ResponseURL": format!("{url}/cloudformation-custom-resource-response?X-Amz-Signature=abc"),
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/member/1b2c3d4e",
        "RequestId": format!("request-{kind}"),
        "LogicalResourceId": "Backfill",
        "PhysicalResourceId": if kind == "Create" { Value::Null } else { json!("subscriber-Backfill") },
        "ResourceType": "Custom::SubscriptionBackfill",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:org-security-logs-subscriber"}
    })
}

#[tokio::test]
async fn create_backfills_and_delete_removes_and_both_answer_success() {
    let account = TestAccount::new().await;
    let collector = account.create_function("org-security-logs-collector").await;
    let team = account.create_function("team-consumer").await;
    let groups: Vec<String> = (0..5).map(|i| format!("/app/cr-{i}")).collect();
    account.create_groups(&groups).await;
    account.put_filter(&groups[0], "team", &team).await;
    let (url, seen) = scripted_server(vec![(200, vec![], String::new())]).await;
    let handler = Handler {
        api: logs(&account),
        responder: HttpResponder::new().expect("HTTP client"),
        settings: settings(&collector, None),
        options: options(),
    };

    handler
        .handle(&request("Create", &url), None)
        .await
        .expect("create");
    for group in &groups {
        assert!(
            account
                .filters(group)
                .await
                .contains(&(FILTER.to_owned(), collector.clone())),
            "{group}"
        );
    }
    handler
        .handle(&request("Delete", &url), None)
        .await
        .expect("delete");
    for group in &groups[1..] {
        assert!(account.filters(group).await.is_empty(), "{group}");
    }
    assert_eq!(
        account.filters(&groups[0]).await,
        vec![("team".to_owned(), team)]
    );

    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    for (request, kind) in seen.iter().zip(["Create", "Delete"]) {
        assert_eq!(request.method, "PUT");
        assert!(
            request
                .path
                .starts_with("/cloudformation-custom-resource-response?")
        );
        assert_eq!(
            request.header("content-type"),
            Some(""),
            "the pre-signed URL is signed without a content type"
        );
        let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
        assert_eq!(body["Status"], "SUCCESS", "{body}");
        assert_eq!(body["RequestId"], format!("request-{kind}"));
        assert_eq!(
            body["StackId"],
            "arn:aws:cloudformation:us-east-1:123456789012:stack/member/1b2c3d4e"
        );
        assert_eq!(body["LogicalResourceId"], "Backfill");
        assert_eq!(body["PhysicalResourceId"], "subscriber-Backfill");
    }
    let create: Value = serde_json::from_slice(&seen[0].body).expect("JSON");
    assert_eq!(create["Data"]["Subscribed"], "5");
    let delete: Value = serde_json::from_slice(&seen[1].body).expect("JSON");
    assert_eq!(delete["Data"]["Removed"], "5");
}

#[tokio::test]
async fn a_failed_backfill_answers_failed_with_the_reason() {
    let account = TestAccount::new().await;
    account.create_groups(&["/app/cr-fail".to_owned()]).await;
    // The collector was never deployed in this account: CloudWatch Logs refuses the destination.
    let missing = format!(
        "arn:aws:lambda:us-east-1:{}:function:not-deployed",
        account.id
    );
    let (url, seen) = scripted_server(vec![(200, vec![], String::new())]).await;
    let handler = Handler {
        api: logs(&account),
        responder: HttpResponder::new().expect("HTTP client"),
        settings: settings(&missing, None),
        options: options(),
    };
    handler
        .handle(&request("Create", &url), None)
        .await
        .expect("answered");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    let body: Value = serde_json::from_slice(&seen[0].body).expect("JSON body");
    assert_eq!(body["Status"], "FAILED");
    let reason = body["Reason"].as_str().unwrap_or_default();
    assert!(reason.contains("/app/cr-fail"), "{reason}");
    assert!(reason.contains("PutSubscriptionFilter"), "{reason}");
    assert_eq!(body["Data"]["Failures"], "1");
}
