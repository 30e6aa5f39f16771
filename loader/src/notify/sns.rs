//! The SNS edge: one `PublishBatch` call per batch of alert messages.

use super::message::AlertMessage;
use super::{AlertPublisher, EntryFailure};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use futures::future::BoxFuture;

/// Publishes through an SNS client (its own retries cover throttling and transient errors).
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
}

impl SnsPublisher {
    pub fn new(client: aws_sdk_sns::Client) -> Self {
        Self { client }
    }

    pub fn from_conf(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_sns::Client::new(sdk))
    }
}

fn entry(position: usize, message: &AlertMessage) -> Result<PublishBatchRequestEntry, String> {
    let mut entry = PublishBatchRequestEntry::builder()
        .id(position.to_string())
        .subject(&message.subject)
        .message(&message.body);
    for (name, value, numeric) in &message.attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type(if *numeric { "Number" } else { "String" })
            .string_value(value)
            .build()
            .map_err(|e| e.to_string())?;
        entry = entry.message_attributes(*name, attribute);
    }
    entry.build().map_err(|e| e.to_string())
}

impl AlertPublisher for SnsPublisher {
    fn publish<'a>(
        &'a self,
        topic_arn: &'a str,
        batch: &'a [AlertMessage],
    ) -> BoxFuture<'a, Result<Vec<EntryFailure>, String>> {
        Box::pin(async move {
            let mut refused = Vec::new();
            let mut entries = Vec::with_capacity(batch.len());
            for (position, message) in batch.iter().enumerate() {
                match entry(position, message) {
                    Ok(e) => entries.push(e),
                    Err(reason) => refused.push(EntryFailure {
                        position,
                        reason,
                        retryable: false,
                    }),
                }
            }
            if entries.is_empty() {
                return Ok(refused);
            }
            let answer = self
                .client
                .publish_batch()
                .topic_arn(topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "SNS PublishBatch to {topic_arn}: {}",
                        aws_sdk_sns::error::DisplayErrorContext(&e)
                    )
                })?;
            for failed in answer.failed() {
                let Ok(position) = failed.id().parse::<usize>() else {
                    continue;
                };
                refused.push(EntryFailure {
                    position,
                    reason: format!(
                        "{}: {}",
                        failed.code(),
                        failed.message().unwrap_or("no message")
                    ),
                    retryable: !failed.sender_fault(),
                });
            }
            Ok(refused)
        })
    }
}
