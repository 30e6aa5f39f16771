//! The one thing the collector does to the outside world: put an object in the central bucket.

use aws_config::SdkConfig;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use std::future::Future;

/// A failed write, naming the object.
#[derive(Debug, thiserror::Error)]
#[error("could not write {uri}: {reason}")]
pub struct StoreError {
    pub uri: String,
    pub reason: String,
}

/// Where the collector writes. Narrow on purpose: the handler needs nothing else.
pub trait ObjectStore: Send + Sync {
    fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        content_encoding: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How an object is named in messages, for example `s3://bucket/key`.
    fn uri(&self, key: &str) -> String;
}

/// The central bucket, with the encryption and ownership checks every write carries.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// SSE-KMS with this key when set; otherwise the bucket's default encryption applies.
    kms_key_id: Option<String>,
    /// The write fails unless the bucket belongs to this account (no writing into a bucket
    /// someone re-created under the same name).
    expected_bucket_owner: Option<String>,
}

impl S3Store {
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        kms_key_id: Option<String>,
        expected_bucket_owner: Option<String>,
    ) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            kms_key_id,
            expected_bucket_owner,
        }
    }

    /// Builds the client once, signing as [`writer_config`] says.
    pub async fn from_settings(base: &SdkConfig, settings: &crate::Settings) -> Self {
        let config = writer_config(base, settings).await;
        Self::new(
            shared::aws::s3_client(&config),
            settings.bucket.clone(),
            settings.kms_key_id.clone(),
            settings.expected_bucket_owner.clone(),
        )
    }
}

/// The configuration writes are made with: `base`, or with `WRITER_ROLE_ARN` set, `base` whose
/// credentials come from assuming that role (in the central account). The role's credentials
/// are cached by the SDK's identity cache and refreshed five minutes before they expire.
pub async fn writer_config(base: &SdkConfig, settings: &crate::Settings) -> SdkConfig {
    let Some(role) = &settings.writer_role_arn else {
        return base.clone();
    };
    shared::aws::assumed_role_config(
        base,
        role,
        "org-security-logs-collector",
        settings.writer_role_external_id.as_deref(),
    )
    .await
}

impl ObjectStore for S3Store {
    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        content_encoding: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type(content_type)
            .set_content_encoding(content_encoding.map(str::to_owned))
            .set_expected_bucket_owner(self.expected_bucket_owner.clone());
        if let Some(kms_key) = &self.kms_key_id {
            request = request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms_key);
        }
        request.send().await.map_err(|error| StoreError {
            uri: self.uri(key),
            reason: DisplayErrorContext(&error).to_string(),
        })?;
        Ok(())
    }

    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}
