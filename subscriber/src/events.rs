//! The events the Lambda function receives, told apart by their shape: CloudTrail API calls
//! delivered by EventBridge, EventBridge scheduled events, and CloudFormation custom resource
//! requests.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who made an API call, from the CloudTrail `userIdentity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub identity_type: String,
    pub arn: String,
    pub principal_id: String,
    pub account_id: String,
    pub source_ip: String,
    pub user_agent: String,
}

impl Identity {
    fn from_detail(detail: &Value) -> Self {
        let id = &detail["userIdentity"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Identity {
            identity_type: text(&id["type"]),
            arn: text(&id["arn"]),
            principal_id: text(&id["principalId"]),
            account_id: text(&id["accountId"]),
            source_ip: text(&detail["sourceIPAddress"]),
            user_agent: text(&detail["userAgent"]),
        }
    }

    /// The best short name for logs: the ARN, or the principal id when there is none.
    pub fn describe(&self) -> &str {
        if self.arn.is_empty() {
            &self.principal_id
        } else {
            &self.arn
        }
    }

    /// True when the call was made by the Lambda function `function_name` itself: Lambda names
    /// the role session after the function (`arn:aws:sts::<account>:assumed-role/<role>/<function>`).
    pub fn is_function(&self, function_name: &str) -> bool {
        self.identity_type == "AssumedRole"
            && self
                .arn
                .rsplit_once('/')
                .is_some_and(|(_, session)| session == function_name)
    }
}

/// A CloudFormation custom resource request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResourceRequest {
    pub request_type: RequestType,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub physical_resource_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// What the subscriber does with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// CloudTrail `CreateLogGroup`: subscribe the new group.
    CreateLogGroup { group: String },
    /// CloudTrail `DeleteSubscriptionFilter`: put ours back if it was ours.
    DeleteSubscriptionFilter {
        group: String,
        filter: String,
        deleted_by: Identity,
    },
    /// EventBridge schedule: reconcile every log group.
    Scheduled,
    /// CloudFormation custom resource: backfill on Create/Update, remove on Delete.
    CustomResource(CustomResourceRequest),
    /// Nothing to do, and why (a failed API call, another API, ...).
    Ignored { reason: String },
}

/// An event that is none of the shapes the subscriber handles.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(
        "unrecognised event (detail-type {detail_type:?}, source {event_source:?}): expected a CloudTrail CreateLogGroup/DeleteSubscriptionFilter call, a scheduled event or a CloudFormation custom resource request"
    )]
    Unrecognised {
        detail_type: String,
        event_source: String,
    },
    #[error("{event_name} event without requestParameters.{field}")]
    MissingField {
        event_name: String,
        field: &'static str,
    },
    #[error("malformed CloudFormation custom resource request: {0}")]
    CustomResource(String),
}

/// Tells the event apart. Pure.
pub fn classify(event: &Value) -> Result<Event, EventError> {
    if shared::cfn::is_custom_resource(event) {
        let request: CustomResourceRequest = serde_json::from_value(event.clone())
            .map_err(|e| EventError::CustomResource(e.to_string()))?;
        return Ok(Event::CustomResource(request));
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let detail_type = text(&event["detail-type"]);
    let source = text(&event["source"]);
    if detail_type == "Scheduled Event" {
        return Ok(Event::Scheduled);
    }
    if detail_type != "AWS API Call via CloudTrail" {
        return Err(EventError::Unrecognised {
            detail_type,
            event_source: source,
        });
    }
    let detail = &event["detail"];
    let event_name = text(&detail["eventName"]);
    let event_source = text(&detail["eventSource"]);
    if event_source != "logs.amazonaws.com" {
        return Ok(Event::Ignored {
            reason: format!("{event_source} {event_name} is not a CloudWatch Logs call"),
        });
    }
    if let Some(code) = detail["errorCode"].as_str() {
        return Ok(Event::Ignored {
            reason: format!("{event_name} failed with {code}"),
        });
    }
    let params = &detail["requestParameters"];
    let group = || {
        params["logGroupName"]
            .as_str()
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| EventError::MissingField {
                event_name: event_name.clone(),
                field: "logGroupName",
            })
    };
    match event_name.as_str() {
        "CreateLogGroup" => Ok(Event::CreateLogGroup { group: group()? }),
        "DeleteSubscriptionFilter" => {
            let filter = params["filterName"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| EventError::MissingField {
                    event_name: event_name.clone(),
                    field: "filterName",
                })?;
            Ok(Event::DeleteSubscriptionFilter {
                group: group()?,
                filter,
                deleted_by: Identity::from_detail(detail),
            })
        }
        other => Ok(Event::Ignored {
            reason: format!("CloudWatch Logs {other} needs no action"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Shape of the EventBridge event for a CloudTrail-recorded CloudWatch Logs call, as AWS
    /// documents it ("AWS API Call via CloudTrail").
    pub fn cloudtrail_event(name: &str, params: Value) -> Value {
        json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.logs",
            "account": "111122223333",
            "time": "2024-05-01T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "eventVersion": "1.08",
                "userIdentity": {
                    "type": "AssumedRole",
                    "principalId": "AROAEXAMPLE:alice",
                    "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice",
                    "accountId": "111122223333",
                    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/Admin"}}
                },
                "eventTime": "2024-05-01T12:00:00Z",
                "eventSource": "logs.amazonaws.com",
                "eventName": name,
                "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.7",
                "userAgent": "aws-cli/2.15.0",
                "requestParameters": params,
                "responseElements": null,
                "eventType": "AwsApiCall",
                "recipientAccountId": "111122223333"
            }
        })
    }

    #[test]
    fn create_log_group() {
        let event = cloudtrail_event("CreateLogGroup", json!({"logGroupName": "/app/new"}));
        assert_eq!(
            classify(&event).unwrap(),
            Event::CreateLogGroup {
                group: "/app/new".into()
            }
        );
    }

    #[test]
    fn delete_subscription_filter_names_who() {
        let event = cloudtrail_event(
            "DeleteSubscriptionFilter",
            json!({"logGroupName": "/app/x", "filterName": "ours"}),
        );
        let Event::DeleteSubscriptionFilter {
            group,
            filter,
            deleted_by,
        } = classify(&event).unwrap()
        else {
            panic!("wrong kind")
        };
        assert_eq!((group.as_str(), filter.as_str()), ("/app/x", "ours"));
        assert_eq!(
            deleted_by.describe(),
            "arn:aws:sts::111122223333:assumed-role/Admin/alice"
        );
        assert_eq!(deleted_by.source_ip, "203.0.113.7");
        assert!(deleted_by.is_function("alice"));
        assert!(!deleted_by.is_function("subscriber"));
    }

    #[test]
    fn failed_calls_and_other_apis_are_ignored() {
        let mut event = cloudtrail_event("CreateLogGroup", json!({"logGroupName": "/x"}));
        event["detail"]["errorCode"] = json!("ResourceAlreadyExistsException");
        assert!(matches!(classify(&event).unwrap(), Event::Ignored { .. }));
        let other = cloudtrail_event("PutRetentionPolicy", json!({"logGroupName": "/x"}));
        assert!(matches!(classify(&other).unwrap(), Event::Ignored { .. }));
    }

    #[test]
    fn missing_group_name_is_an_error() {
        let event = cloudtrail_event("CreateLogGroup", json!({}));
        let err = classify(&event).unwrap_err().to_string();
        assert!(err.contains("logGroupName"), "{err}");
    }

    #[test]
    fn scheduled_and_custom_resource() {
        let scheduled =
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert_eq!(classify(&scheduled).unwrap(), Event::Scheduled);
        let cr = json!({
            "RequestType": "Create",
            "ResponseURL": "https://example.invalid/presigned",
            "StackId": "arn:aws:cloudformation:us-east-1:111122223333:stack/s/1",
            "RequestId": "r-1",
            "ResourceType": "Custom::Backfill",
            "LogicalResourceId": "Backfill",
            "ResourceProperties": {"ServiceToken": "arn:aws:lambda:..."}
        });
        let Event::CustomResource(request) = classify(&cr).unwrap() else {
            panic!("wrong kind")
        };
        assert_eq!(request.request_type, RequestType::Create);
        assert_eq!(request.physical_resource_id, None);
    }

    #[test]
    fn unknown_events_are_errors() {
        assert!(classify(&json!({"hello": 1})).is_err());
        let bad_cr = json!({"RequestType": "Explode", "ResponseURL": "u"});
        assert!(matches!(
            classify(&bad_cr),
            Err(EventError::CustomResource(_))
        ));
    }
}
