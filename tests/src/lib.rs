//! Helpers for the cross-crate and end-to-end tests in `tests/`.
//!
//! The servers (moto for AWS, osmem-server for OpenSearch) are started by `scripts/test`, which
//! exports their addresses. A test that needs one and does not find it fails: it never skips.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

/// The account moto uses when no role was assumed.
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// Address of the moto server started by `scripts/test`.
pub fn moto_endpoint() -> String {
    std::env::var("TEST_MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!("TEST_MOTO_ENDPOINT is not set: run the tests with scripts/test, which starts moto")
    })
}

/// Address of the osmem-server started by `scripts/test`.
pub fn opensearch_url() -> String {
    std::env::var("TEST_OPENSEARCH_URL").unwrap_or_else(|_| {
        panic!("TEST_OPENSEARCH_URL is not set: run the tests with scripts/test, which starts osmem-server")
    })
}

/// SDK configuration for moto in the default account.
pub async fn moto_config(region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::for_tests())
        .load()
        .await
}

/// SDK configuration acting inside `account` in moto: moto ties the credentials returned by
/// AssumeRole to the role's account (never set `MOTO_ACCOUNT_ID`).
pub async fn moto_config_for_account(account: &str, region: &str) -> SdkConfig {
    let base = moto_config(region).await;
    let sts = aws_sdk_sts::Client::new(&base);
    let assumed = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/test-admin"))
        .role_session_name("tests")
        .send()
        .await
        .expect("moto AssumeRole");
    let c = assumed
        .credentials()
        .expect("credentials in AssumeRole answer");
    let creds = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "moto-assumed-role",
    );
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(Region::new(region.to_owned()))
        .credentials_provider(creds)
        .load()
        .await
}

/// An osmem-server of a test's own: an empty cluster no other test writes to, so what a test
/// creates (templates, indices) is all there is. Stopped when dropped.
pub struct OwnOpenSearch {
    pub url: String,
    child: std::process::Child,
}

impl OwnOpenSearch {
    pub fn start() -> Self {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let bin = std::env::var("TEST_OSMEM_BIN").unwrap_or_else(|_| {
            panic!("TEST_OSMEM_BIN is not set: run the tests with scripts/test, which installs osmem-server")
        });
        // It exits by itself when its standard input closes, so it never outlives the test.
        let mut child = Command::new(&bin)
            .args(["-addr", "127.0.0.1:0", "-no-ja"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            std::io::BufReader::new(out)
                .read_line(&mut line)
                .expect("osmem-server's first line");
        }
        let started: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("osmem-server said {line:?}: {e}"));
        let url = started["url"].as_str().expect("its URL").to_owned();
        Self { url, child }
    }
}

impl Drop for OwnOpenSearch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates an organizational unit under `parent` in moto's Organizations; its id.
pub async fn organizational_unit(
    client: &aws_sdk_organizations::Client,
    parent: &str,
    name: &str,
) -> String {
    client
        .create_organizational_unit()
        .parent_id(parent)
        .name(name)
        .send()
        .await
        .expect("moto CreateOrganizationalUnit")
        .organizational_unit()
        .and_then(|u| u.id())
        .expect("unit id")
        .to_owned()
}

/// A name unique within one test run, so tests sharing one moto server never collide.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// A bucket whose ObjectCreated notifications go to a queue, as in the deployment.
pub struct NotifiedBucket {
    pub bucket: String,
    pub queue_name: String,
    pub queue_url: String,
}

/// Creates a bucket and a queue named after `what`, and sends the bucket's ObjectCreated
/// notifications to the queue.
pub async fn notified_bucket(
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    what: &str,
) -> NotifiedBucket {
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
    use aws_sdk_sqs::types::QueueAttributeName;
    let queue_name = unique_name(&format!("{what}-objects"));
    let queue_url = sqs
        .create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("queue URL");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue ARN");
    let bucket = unique_name(what).to_ascii_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(queue_arn)
                        .events(Event::S3ObjectCreated)
                        .build()
                        .expect("queue configuration"),
                )
                .build(),
        )
        .send()
        .await
        .expect("PutBucketNotificationConfiguration");
    NotifiedBucket {
        bucket,
        queue_name,
        queue_url,
    }
}

/// Receives messages from the queue until `n` of them are object notifications, and returns all
/// it received (moto may first send the s3:TestEvent of the notification configuration; it is
/// kept, since handlers must ignore it). Panics when they do not arrive.
pub async fn receive_notifications(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    n: usize,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut messages = Vec::new();
    let mut with_objects = 0;
    for _ in 0..20 {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default();
        for m in got {
            if !m.body().unwrap_or_default().contains("s3:TestEvent") {
                with_objects += 1;
            }
            messages.push(m);
        }
        if with_objects >= n {
            return messages;
        }
    }
    panic!("only {with_objects} of {n} notifications arrived: {messages:?}");
}

/// The `Records` of the Lambda event SQS hands a function for `messages` received from a queue
/// in `region`.
pub fn sqs_event_records(
    messages: &[aws_sdk_sqs::types::Message],
    region: &str,
) -> Vec<serde_json::Value> {
    messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{region}:123456789012:objects"),
                "awsRegion": region,
            })
        })
        .collect()
}
