//! Helpers for the moto tests: a fresh emulated account per test (reconcile walks every log group
//! of an account, so tests sharing one moto server must not see each other's groups), a Lambda
//! function moto accepts as a subscription destination, and a small scripted HTTP server.

#![allow(dead_code)]

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_cloudwatchlogs as cwl;
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const REGION: &str = "us-east-1";

/// A random 12-digit account id: each test acts in an account of its own.
pub fn fresh_account() -> String {
    format!("9{:011}", fastrand::u64(0..100_000_000_000))
}

/// An emulated account: its SDK configuration and CloudWatch Logs client.
pub struct TestAccount {
    pub id: String,
    pub config: SdkConfig,
    pub logs: cwl::Client,
}

impl TestAccount {
    pub async fn new() -> Self {
        Self::enter(&fresh_account()).await
    }

    pub async fn enter(id: &str) -> Self {
        let config = tests::moto_config_for_account(id, REGION).await;
        let logs = cwl::Client::new(&config);
        TestAccount {
            id: id.to_owned(),
            config,
            logs,
        }
    }

    pub async fn create_groups(&self, names: &[String]) {
        let results = futures::stream::iter(names.iter())
            .map(|name| self.logs.create_log_group().log_group_name(name).send())
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        for r in results {
            r.expect("moto CreateLogGroup");
        }
    }

    /// (filter name, destination) of every filter on `group`.
    pub async fn filters(&self, group: &str) -> Vec<(String, String)> {
        self.logs
            .describe_subscription_filters()
            .log_group_name(group)
            .send()
            .await
            .expect("moto DescribeSubscriptionFilters")
            .subscription_filters()
            .iter()
            .map(|f| {
                (
                    f.filter_name().unwrap_or_default().to_owned(),
                    f.destination_arn().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    pub async fn put_filter(&self, group: &str, name: &str, destination: &str) {
        self.logs
            .put_subscription_filter()
            .log_group_name(group)
            .filter_name(name)
            .filter_pattern("")
            .destination_arn(destination)
            .send()
            .await
            .expect("moto PutSubscriptionFilter");
    }

    /// Creates a Lambda function moto accepts as a subscription destination and returns its ARN.
    /// moto checks that the function exists (and that its role exists in IAM) but never runs it,
    /// so an empty zip is enough. The workspace has no IAM or Lambda SDK, and moto does not check
    /// signatures: the two calls are plain HTTP carrying this account's access key, which is how
    /// moto picks the account.
    pub async fn create_function(&self, name: &str) -> String {
        let credentials = self
            .config
            .credentials_provider()
            .expect("credentials in the test configuration")
            .provide_credentials()
            .await
            .expect("credentials");
        let key = credentials.access_key_id().to_owned();
        let endpoint = tests::moto_endpoint();
        let http = reqwest::Client::new();
        let auth = |service: &str| {
            format!(
                "AWS4-HMAC-SHA256 Credential={key}/20240101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
            )
        };
        let role = format!("{name}-role");
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}",
            form_encode(&role),
            form_encode(trust)
        );
        let answer = http
            .post(format!("{endpoint}/"))
            .header("Authorization", auth("iam"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("moto IAM CreateRole");
        assert!(
            answer.status().is_success(),
            "CreateRole: {}",
            answer.text().await.unwrap_or_default()
        );
        let function = serde_json::json!({
            "FunctionName": name,
            "Runtime": "provided.al2023",
            "Role": format!("arn:aws:iam::{}:role/{role}", self.id),
            "Handler": "bootstrap",
            // An empty zip archive.
            "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="},
        });
        let answer = http
            .post(format!("{endpoint}/2015-03-31/functions"))
            .header("Authorization", auth("lambda"))
            .header("Content-Type", "application/json")
            .body(function.to_string())
            .send()
            .await
            .expect("moto Lambda CreateFunction");
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "CreateFunction: {status} {text}");
        let created: serde_json::Value = serde_json::from_str(&text).expect("CreateFunction JSON");
        created["FunctionArn"]
            .as_str()
            .expect("FunctionArn")
            .to_owned()
    }
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One HTTP request as the scripted server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted answer: status, extra headers, body.
pub type Answer = (u16, Vec<(&'static str, &'static str)>, String);

/// A loopback HTTP/1.1 server that records requests and answers from `script` in order (the
/// last answer repeats). Stands in for the pre-signed URL, or for a throttling service.
pub async fn scripted_server(script: Vec<Answer>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let next = Mutex::new(0usize);
    serve(move |_| {
        let mut n = next.lock().expect("lock");
        let answer = script[(*n).min(script.len() - 1)].clone();
        *n += 1;
        Some(answer)
    })
    .await
}

/// A loopback HTTP/1.1 server answering each request with `answer` (keep-alive honoured);
/// `None` leaves the request unanswered, as a long poll that never returns.
pub async fn serve<F>(answer: F) -> (String, Arc<Mutex<Vec<Seen>>>)
where
    F: Fn(&Seen) -> Option<Answer> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(answer);
    let recorded = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (seen, answer) = (Arc::clone(&recorded), Arc::clone(&answer));
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let Some(request) = read_request(&mut socket, &mut buffer).await else {
                        return;
                    };
                    let reply = answer(&request);
                    seen.lock().expect("lock").push(request);
                    let Some((status, headers, body)) = reply else {
                        std::future::pending::<()>().await;
                        return;
                    };
                    let mut head =
                        format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    if socket.write_all(head.as_bytes()).await.is_err()
                        || socket.write_all(body.as_bytes()).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

async fn read_request(socket: &mut tokio::net::TcpStream, buffer: &mut Vec<u8>) -> Option<Seen> {
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(pos) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    buffer.drain(..end + 4);
    while buffer.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body: Vec<u8> = buffer.drain(..length).collect();
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}

/// The EventBridge event for a CloudTrail-recorded CloudWatch Logs call, in the shape AWS
/// documents ("AWS API Call via CloudTrail"), made by `who` in `account`.
pub fn cloudtrail_event(
    account: &str,
    name: &str,
    params: serde_json::Value,
    who: &str,
) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": "0c1c8a0e-2b9c-4a43-8f2e-2a0b4a9f6f11",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.logs",
        "account": account,
        "time": "2024-05-01T12:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": format!("AROAEXAMPLEID:{who}"),
                "arn": format!("arn:aws:sts::{account}:assumed-role/Operator/{who}"),
                "accountId": account,
                "accessKeyId": "ASIAEXAMPLE",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": "AROAEXAMPLEID",
                        "arn": format!("arn:aws:iam::{account}:role/Operator"),
                        "accountId": account,
                        "userName": "Operator"
                    },
                    "attributes": {"creationDate": "2024-05-01T11:00:00Z", "mfaAuthenticated": "false"}
                }
            },
            "eventTime": "2024-05-01T12:00:00Z",
            "eventSource": "logs.amazonaws.com",
            "eventName": name,
            "awsRegion": REGION,
            "sourceIPAddress": "198.51.100.23",
            "userAgent": "aws-cli/2.15.30",
            "requestParameters": params,
            "responseElements": null,
            "requestID": "5a4b3c2d-1e0f-4a5b-9c8d-7e6f5a4b3c2d",
            "eventID": "d2f0c9a1-3b4e-4f5a-8c7d-6e5f4a3b2c1d",
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account,
            "eventCategory": "Management"
        }
    })
}

/// An in-memory CloudWatch Logs speaking the service's JSON protocol (DescribeLogGroups,
/// DescribeSubscriptionFilters, PutSubscriptionFilter) over `groups` empty log groups. Every third
/// distinct request (by API and log group or page) is answered ThrottlingException twice before
/// it succeeds, as a service over its quota would: a client must back off and retry.
pub async fn throttling_logs_server(groups: usize) -> String {
    use std::collections::{BTreeMap, HashMap};
    const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
    let groups: BTreeMap<String, Vec<serde_json::Value>> = (0..groups)
        .map(|i| (format!("/app/group-{i:05}"), Vec::new()))
        .collect();
    let state = Mutex::new((groups, HashMap::<String, (usize, u32)>::new()));
    let json = vec![("Content-Type", "application/x-amz-json-1.1")];
    let (url, _) = serve(move |request| {
        let mut guard = state.lock().expect("lock");
        let (groups, seen) = &mut *guard;
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let operation = request
            .header("x-amz-target")
            .unwrap_or_default()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        let key = format!("{operation} {} {}", body["logGroupName"], body["nextToken"]);
        let distinct = seen.len();
        let entry = seen.entry(key).or_insert((distinct, 0));
        entry.1 += 1;
        if entry.0 % 3 == 0 && entry.1 <= 2 {
            return Some((400, json.clone(), THROTTLED.to_owned()));
        }
        let reply = match operation.as_str() {
            "DescribeLogGroups" => {
                let start: usize = body["nextToken"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let page: Vec<serde_json::Value> = groups
                    .keys()
                    .skip(start)
                    .take(50)
                    .map(|name| serde_json::json!({"logGroupName": name}))
                    .collect();
                let mut reply = serde_json::json!({"logGroups": page});
                if start + 50 < groups.len() {
                    reply["nextToken"] = serde_json::json!((start + 50).to_string());
                }
                reply
            }
            "DescribeSubscriptionFilters" => {
                let name = body["logGroupName"].as_str().unwrap_or_default();
                serde_json::json!({"subscriptionFilters": groups.get(name).cloned().unwrap_or_default()})
            }
            "PutSubscriptionFilter" => {
                let name = body["logGroupName"].as_str().unwrap_or_default().to_owned();
                let filters = groups.entry(name).or_default();
                filters.retain(|f| f["filterName"] != body["filterName"]);
                filters.push(serde_json::json!({
                    "filterName": body["filterName"],
                    "destinationArn": body["destinationArn"],
                    "filterPattern": body["filterPattern"],
                }));
                serde_json::json!({})
            }
            other => {
                return Some((400, json.clone(), format!(r#"{{"__type":"InvalidAction","message":"{other} is not emulated"}}"#)));
            }
        };
        Some((200, json.clone(), reply.to_string()))
    })
    .await;
    url
}
