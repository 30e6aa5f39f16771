//! The CloudFormation custom resource response: a JSON document PUT to the pre-signed URL of the
//! request. It is sent in every case, failures included, so a stack never waits an hour for it.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// CloudFormation shows at most 4 KiB of the whole response; the reason is cut well below it.
const MAX_REASON: usize = 1500;

/// Whether an event is a custom resource request (what CloudFormation sends a function named
/// as a `ServiceToken`).
pub fn is_custom_resource(event: &Value) -> bool {
    event.get("RequestType").is_some() && event.get("ResponseURL").is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Failed,
}

/// The response document CloudFormation expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    pub status: Status,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub no_echo: bool,
    pub data: BTreeMap<String, String>,
}

impl Response {
    /// A response for `request` (a raw custom resource event, so even a malformed one is
    /// answered), from the function `owner`. The physical id is kept stable across updates so
    /// CloudFormation never replaces the resource (a replacement would send a Delete for the
    /// old one).
    pub fn for_request(request: &Value, owner: &str, status: Status, reason: &str) -> Self {
        let text = |k: &str| request[k].as_str().unwrap_or_default().to_owned();
        let physical = request["PhysicalResourceId"]
            .as_str()
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{owner}-{}", text("LogicalResourceId")));
        let mut reason = reason.to_owned();
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push_str(" ...");
        }
        Response {
            status,
            reason,
            physical_resource_id: physical,
            stack_id: text("StackId"),
            request_id: text("RequestId"),
            logical_resource_id: text("LogicalResourceId"),
            no_echo: false,
            data: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("the custom resource request has no ResponseURL")]
    NoUrl,
    #[error("could not send the custom resource response to CloudFormation ({url_host}): {reason}")]
    Send { url_host: String, reason: String },
}

/// Sends a custom resource response.
pub trait Responder: Sync {
    fn send(
        &self,
        url: &str,
        response: &Response,
    ) -> impl Future<Output = Result<(), ResponseError>> + Send;
}

/// PUTs the response with an empty content type: the pre-signed URL is signed without one, and
/// any other value makes S3 reject the signature.
#[derive(Debug, Clone)]
pub struct HttpResponder {
    client: reqwest::Client,
    attempts: u32,
}

impl HttpResponder {
    pub fn new() -> Result<Self, ResponseError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| ResponseError::Send {
                url_host: String::new(),
                reason: e.to_string(),
            })?;
        Ok(HttpResponder {
            client,
            attempts: 4,
        })
    }
}

/// Only the host of a pre-signed URL is logged: its query string is a credential.
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "an unparsable URL".into())
}

impl Responder for HttpResponder {
    async fn send(&self, url: &str, response: &Response) -> Result<(), ResponseError> {
        if url.is_empty() {
            return Err(ResponseError::NoUrl);
        }
        let body = serde_json::to_vec(response).map_err(|e| ResponseError::Send {
            url_host: host_of(url),
            reason: e.to_string(),
        })?;
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            }
            let result = self
                .client
                .put(url)
                .header(reqwest::header::CONTENT_TYPE, "")
                .header(reqwest::header::CONTENT_LENGTH, body.len())
                .body(body.clone())
                .send()
                .await;
            match result {
                Ok(answer) if answer.status().is_success() => return Ok(()),
                Ok(answer) => last = format!("HTTP {}", answer.status()),
                Err(e) => last = e.to_string(),
            }
            tracing::warn!(attempt, reason = %last, "custom resource response not accepted; retrying");
        }
        Err(ResponseError::Send {
            url_host: host_of(url),
            reason: last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn response_document_has_cloudformation_field_names() {
        let request = json!({
            "RequestType": "Create", "ResponseURL": "http://x", "StackId": "stack",
            "RequestId": "req", "LogicalResourceId": "Backfill"
        });
        let mut response = Response::for_request(&request, "subscriber", Status::Failed, "broken");
        response.data.insert("Subscribed".into(), "3".into());
        let doc = serde_json::to_value(&response).unwrap();
        assert_eq!(doc["Status"], "FAILED");
        assert_eq!(doc["Reason"], "broken");
        assert_eq!(doc["PhysicalResourceId"], "subscriber-Backfill");
        assert_eq!(doc["StackId"], "stack");
        assert_eq!(doc["RequestId"], "req");
        assert_eq!(doc["LogicalResourceId"], "Backfill");
        assert_eq!(doc["Data"]["Subscribed"], "3");
    }

    #[test]
    fn physical_id_is_kept_and_reason_is_cut() {
        let request = json!({"PhysicalResourceId": "kept", "LogicalResourceId": "B"});
        let response =
            Response::for_request(&request, "subscriber", Status::Success, &"é".repeat(2000));
        assert_eq!(response.physical_resource_id, "kept");
        assert!(response.reason.len() <= MAX_REASON + 4);
    }

    #[test]
    fn only_the_host_is_logged() {
        assert_eq!(
            host_of("https://bucket.s3.amazonaws.com/key?X-Amz-Signature=secret"),
            "bucket.s3.amazonaws.com"
        );
    }
}
