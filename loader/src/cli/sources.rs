//! Where the objects of a `loader load` run come from, at the AWS edge: the listing of an S3
//! prefix (ListObjectsV2, page by page, so loading starts with the first page) and a queue to
//! drain (receive, and delete the messages whose objects all loaded).

use super::list::Target;
use crate::deliver::{LocalSource, ObjectBody, ObjectRef, ObjectSource, S3Source};
use aws_sdk_s3::error::DisplayErrorContext;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

/// A source that cannot be read, named.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot list s3://{bucket}/{prefix}: {reason}")]
    List {
        bucket: String,
        prefix: String,
        reason: String,
    },
    #[error("cannot find the queue {queue}: {reason}")]
    QueueUrl { queue: String, reason: String },
    #[error("cannot receive from the queue {queue}: {reason}")]
    Receive { queue: String, reason: String },
}

/// Sends every object under `s3://bucket/prefix` to `tx` as its page arrives; returns how many
/// were sent. Stops early (without error) when the receiver is gone.
pub async fn list_prefix(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    tx: &mpsc::Sender<Target>,
    on_page: &(dyn Fn(u64) + Send + Sync),
) -> Result<u64, SourceError> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut sent = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| SourceError::List {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            reason: DisplayErrorContext(&e).to_string(),
        })?;
        let keys: Vec<String> = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            // Folder markers hold no log.
            .filter(|k| !k.ends_with('/'))
            .map(str::to_owned)
            .collect();
        on_page(keys.len() as u64);
        for key in keys {
            if tx.send(Target::s3(bucket, key)).await.is_err() {
                return Ok(sent);
            }
            sent += 1;
        }
    }
    Ok(sent)
}

/// One message received from the queue.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    pub receipt_handle: String,
    pub body: String,
}

/// A queue being drained.
pub struct Queue {
    client: aws_sdk_sqs::Client,
    pub url: String,
    /// Seconds a received message stays invisible: long enough to load its objects, so it is
    /// not received again in the same run.
    pub visibility_timeout: i32,
}

impl Queue {
    /// `queue` is a name (looked up with GetQueueUrl) or a URL (used as it is).
    pub async fn open(client: aws_sdk_sqs::Client, queue: &str) -> Result<Self, SourceError> {
        let url = if queue.starts_with("https://") || queue.starts_with("http://") {
            queue.to_owned()
        } else {
            client
                .get_queue_url()
                .queue_name(queue)
                .send()
                .await
                .map_err(|e| SourceError::QueueUrl {
                    queue: queue.to_owned(),
                    reason: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
                })?
                .queue_url()
                .map(str::to_owned)
                .ok_or_else(|| SourceError::QueueUrl {
                    queue: queue.to_owned(),
                    reason: "GetQueueUrl answered without a URL".to_owned(),
                })?
        };
        Ok(Self {
            client,
            url,
            visibility_timeout: 900,
        })
    }

    /// Up to ten messages; an empty batch after a short wait means the queue is drained (for
    /// the messages that are visible now).
    pub async fn receive(&self) -> Result<Vec<QueueMessage>, SourceError> {
        let answer = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(self.visibility_timeout)
            .send()
            .await
            .map_err(|e| SourceError::Receive {
                queue: self.url.clone(),
                reason: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(answer
            .messages()
            .iter()
            .filter_map(|m| {
                Some(QueueMessage {
                    id: m.message_id()?.to_owned(),
                    receipt_handle: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    /// Deletes a message whose objects all loaded.
    pub async fn delete(&self, message: &QueueMessage) -> Result<(), String> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "cannot delete message {} from {}: {}",
                    message.id,
                    self.url,
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })
    }
}

/// Local files and S3 objects in one run: an object with a bucket is read from S3, any other
/// from its local path.
pub struct CliSource {
    pub s3: Option<S3Source>,
    pub local: LocalSource,
}

impl ObjectSource for CliSource {
    fn open<'a>(
        &'a self,
        object: &'a ObjectRef,
    ) -> BoxFuture<'a, Result<ObjectBody, crate::deliver::SourceError>> {
        match (&object.bucket, &self.s3) {
            (None, _) => self.local.open(object),
            (Some(_), Some(s3)) => s3.open(object),
            (Some(_), None) => Box::pin(async move {
                Err(crate::deliver::SourceError {
                    object: object.name(),
                    reason: "no S3 client was set up for this run".to_owned(),
                    not_found: false,
                })
            }),
        }
    }
}
