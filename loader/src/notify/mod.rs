//! Alerts at or above a level, published to an SNS topic as they are stored.
//!
//! [`NotifyingSink`] wraps the document sink. After each write it takes the alert documents
//! that write *created*: not those that existed already, so a replayed object never notifies
//! twice, and not those that failed, which notify when their object is delivered again. Those
//! at or above the configured level become [`message::AlertMessage`]s, published in batches
//! of ten through an [`AlertPublisher`] (SNS `PublishBatch`, see [`sns`]).
//!
//! Publishing never fails the load: the alert is in the alert index either way. A failed batch
//! or entry is retried a bounded number of times, then counted and logged with the rule and the
//! reason. A flood (a rule matching every record of a large object) is bounded: at most
//! `max_per_minute` messages a minute leave the process, the rest are counted as dropped with
//! a warning, and stay searchable in the alert index.

pub mod message;
pub mod sns;

use crate::deliver::DocumentSink;
use crate::rules::alert::ALERT_INDEX;
use crate::sink::{BulkItem, WriteOutcome};
use futures::future::BoxFuture;
use message::{AlertMessage, LEVELS, at_least};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// SNS takes at most ten entries per `PublishBatch`.
pub const BATCH_SIZE: usize = 10;

/// Where and which alerts are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    pub topic_arn: String,
    /// Alerts of this Sigma level and above are published.
    pub min_level: String,
    pub max_per_minute: u32,
    /// Tries per batch (the first included).
    pub attempts: u32,
}

/// A setting that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifySettingsError {
    #[error("alert level {0:?} is not a Sigma level (informational, low, medium, high, critical)")]
    Level(String),
    #[error("{0:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)")]
    Topic(String),
}

impl NotifySettings {
    pub const DEFAULT_MIN_LEVEL: &'static str = "high";
    pub const DEFAULT_MAX_PER_MINUTE: u32 = 120;

    pub fn new(topic_arn: &str, min_level: Option<&str>) -> Result<Self, NotifySettingsError> {
        let topic_arn = topic_arn.trim();
        if !topic_arn.starts_with("arn:") || topic_arn.split(':').nth(2) != Some("sns") {
            return Err(NotifySettingsError::Topic(topic_arn.to_owned()));
        }
        let min_level = min_level
            .map(|l| l.trim().to_ascii_lowercase())
            .unwrap_or_else(|| Self::DEFAULT_MIN_LEVEL.to_owned());
        if !LEVELS.contains(&min_level.as_str()) {
            return Err(NotifySettingsError::Level(min_level));
        }
        Ok(Self {
            topic_arn: topic_arn.to_owned(),
            min_level,
            max_per_minute: Self::DEFAULT_MAX_PER_MINUTE,
            attempts: 3,
        })
    }
}

/// An entry of a batch that was not published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFailure {
    /// Its position in the batch.
    pub position: usize,
    pub reason: String,
    /// False when another try cannot help (the message itself was refused).
    pub retryable: bool,
}

/// Publishes one batch (at most [`BATCH_SIZE`] messages). `Err` when the whole call failed
/// (every entry may be tried again); `Ok` with the entries the service refused.
pub trait AlertPublisher: Send + Sync {
    fn publish<'a>(
        &'a self,
        topic_arn: &'a str,
        batch: &'a [AlertMessage],
    ) -> BoxFuture<'a, Result<Vec<EntryFailure>, String>>;
}

/// What was published, counted since the notifier was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyCounts {
    pub published: u64,
    /// Given up after the last try, or refused for good.
    pub failed: u64,
    /// Over the per-minute bound.
    pub dropped: u64,
}

/// Filters, bounds, batches and publishes alert messages.
pub struct Notifier {
    settings: NotifySettings,
    publisher: Box<dyn AlertPublisher>,
    /// (start of the current minute, messages sent in it).
    window: Mutex<(Instant, u32)>,
    published: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    /// The first retry waits this long, each next one twice as long.
    backoff: Duration,
}

impl Notifier {
    pub fn new(settings: NotifySettings, publisher: Box<dyn AlertPublisher>) -> Self {
        Self {
            settings,
            publisher,
            window: Mutex::new((Instant::now(), 0)),
            published: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            backoff: Duration::from_millis(200),
        }
    }

    #[cfg(test)]
    fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn counts(&self) -> NotifyCounts {
        NotifyCounts {
            published: self.published.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    /// Publishes the alerts of `sources` (alert documents as stored) at or above the level;
    /// returns what became of them.
    pub async fn notify(&self, sources: &[&[u8]]) -> NotifyCounts {
        let mut counts = NotifyCounts::default();
        let mut messages = Vec::new();
        for source in sources {
            match message::alert_message(source) {
                Ok(m) if at_least(&m.level, &self.settings.min_level) => messages.push(m),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "alert not published");
                    counts.failed += 1;
                }
            }
        }
        let allowed = self.take_budget(messages.len());
        if allowed < messages.len() {
            let dropped = messages.len() - allowed;
            tracing::warn!(
                dropped,
                max_per_minute = self.settings.max_per_minute,
                "too many alerts to publish this minute: the rest stay in the alert index only"
            );
            counts.dropped += dropped as u64;
            messages.truncate(allowed);
        }
        for batch in messages.chunks(BATCH_SIZE) {
            let (published, failed) = self.publish_with_retries(batch).await;
            counts.published += published;
            counts.failed += failed;
        }
        self.published
            .fetch_add(counts.published, Ordering::Relaxed);
        self.failed.fetch_add(counts.failed, Ordering::Relaxed);
        self.dropped.fetch_add(counts.dropped, Ordering::Relaxed);
        counts
    }

    /// How many of `wanted` messages the per-minute bound lets through now.
    fn take_budget(&self, wanted: usize) -> usize {
        let Ok(mut window) = self.window.lock() else {
            return wanted;
        };
        if window.0.elapsed() >= Duration::from_secs(60) {
            *window = (Instant::now(), 0);
        }
        let left = self.settings.max_per_minute.saturating_sub(window.1) as usize;
        let allowed = wanted.min(left);
        window.1 += allowed as u32;
        allowed
    }

    /// (published, failed) of one batch, retrying what may succeed later.
    async fn publish_with_retries(&self, batch: &[AlertMessage]) -> (u64, u64) {
        let mut pending: Vec<usize> = (0..batch.len()).collect();
        let mut failed = 0u64;
        let mut delay = self.backoff;
        for attempt in 1..=self.settings.attempts.max(1) {
            let entries: Vec<AlertMessage> = pending.iter().map(|&i| batch[i].clone()).collect();
            let retry: Vec<(usize, String)> = match self
                .publisher
                .publish(&self.settings.topic_arn, &entries)
                .await
            {
                Ok(refused) => {
                    let mut retry = Vec::new();
                    for f in refused {
                        let Some(&original) = pending.get(f.position) else {
                            continue;
                        };
                        if f.retryable {
                            retry.push((original, f.reason));
                        } else {
                            tracing::error!(
                                subject = %batch[original].subject,
                                reason = %f.reason,
                                "SNS refused an alert message"
                            );
                            failed += 1;
                        }
                    }
                    retry
                }
                Err(reason) => pending.iter().map(|&i| (i, reason.clone())).collect(),
            };
            if retry.is_empty() {
                pending.clear();
                break;
            }
            if attempt == self.settings.attempts.max(1) {
                for (i, reason) in &retry {
                    tracing::error!(
                        subject = %batch[*i].subject,
                        reason = %reason,
                        attempts = attempt,
                        "alert not published: retries exhausted"
                    );
                }
                failed += retry.len() as u64;
                pending.clear();
                break;
            }
            tracing::warn!(
                entries = retry.len(),
                attempt,
                reason = %retry[0].1,
                "publishing alerts failed; retrying"
            );
            pending = retry.into_iter().map(|(i, _)| i).collect();
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        (batch.len() as u64 - failed, failed)
    }
}

/// Whether a document goes to an alert index (`alert-<YYYY-MM>`).
pub fn is_alert(item: &BulkItem) -> bool {
    item.index
        .strip_prefix(ALERT_INDEX)
        .is_some_and(|rest| rest.starts_with('-'))
}

/// A [`DocumentSink`] that publishes the alerts each write creates.
pub struct NotifyingSink<K> {
    inner: K,
    notifier: std::sync::Arc<Notifier>,
}

impl<K> NotifyingSink<K> {
    pub fn new(inner: K, notifier: std::sync::Arc<Notifier>) -> Self {
        Self { inner, notifier }
    }
}

impl<K: DocumentSink> DocumentSink for NotifyingSink<K> {
    fn write(&self, items: Vec<BulkItem>) -> BoxFuture<'_, WriteOutcome> {
        Box::pin(async move {
            // Sources are shared bytes: keeping the alerts' is cheap.
            let alerts: Vec<(usize, bytes::Bytes)> = items
                .iter()
                .enumerate()
                .filter(|(_, item)| is_alert(item))
                .map(|(position, item)| (position, item.source.clone()))
                .collect();
            let mut outcome = self.inner.write(items).await;
            if alerts.is_empty() {
                return outcome;
            }
            let created: Vec<&[u8]> = alerts
                .iter()
                .filter(|(position, _)| outcome.created.binary_search(position).is_ok())
                .map(|(_, source)| source.as_ref())
                .collect();
            let counts = self.notifier.notify(&created).await;
            outcome.stats.alerts_published += counts.published;
            outcome.stats.alerts_not_published += counts.failed + counts.dropped;
            outcome
        })
    }

    fn commit(&self) -> BoxFuture<'_, Result<(), String>> {
        self.inner.commit()
    }

    fn commits(&self) -> bool {
        self.inner.commits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Origin;
    use serde_json::json;
    use std::sync::Arc;

    /// One call's answer: Err for the whole call, or entries to refuse (position, retryable).
    type Answer = Result<Vec<(usize, bool)>, String>;

    /// Records what it was given; fails by script.
    #[derive(Default)]
    struct Recording {
        batches: Mutex<Vec<Vec<String>>>,
        script: Mutex<Vec<Answer>>,
    }

    impl AlertPublisher for Arc<Recording> {
        fn publish<'a>(
            &'a self,
            _topic: &'a str,
            batch: &'a [AlertMessage],
        ) -> BoxFuture<'a, Result<Vec<EntryFailure>, String>> {
            Box::pin(async move {
                self.batches
                    .lock()
                    .expect("lock")
                    .push(batch.iter().map(|m| m.subject.clone()).collect());
                let mut script = self.script.lock().expect("lock");
                let next = if script.is_empty() {
                    Ok(Vec::new())
                } else {
                    script.remove(0)
                };
                next.map(|refused| {
                    refused
                        .into_iter()
                        .map(|(position, retryable)| EntryFailure {
                            position,
                            reason: "InternalError".into(),
                            retryable,
                        })
                        .collect()
                })
            })
        }
    }

    fn alert(n: usize, level: &str) -> Vec<u8> {
        json!({"rule": {"id": format!("r{n}"), "name": format!("rule {n}"), "category": level}})
            .to_string()
            .into_bytes()
    }

    fn notifier(publisher: &Arc<Recording>, min: &str) -> Notifier {
        let settings = NotifySettings::new("arn:aws:sns:us-east-1:111122223333:alerts", Some(min))
            .expect("settings");
        Notifier::new(settings, Box::new(Arc::clone(publisher))).with_backoff(Duration::ZERO)
    }

    #[tokio::test]
    async fn alerts_at_or_above_the_level_go_out_in_batches_of_ten() {
        let p = Arc::new(Recording::default());
        let n = notifier(&p, "high");
        let mut sources: Vec<Vec<u8>> = (0..23).map(|i| alert(i, "critical")).collect();
        sources.push(alert(99, "medium"));
        let refs: Vec<&[u8]> = sources.iter().map(Vec::as_slice).collect();
        let counts = n.notify(&refs).await;
        assert_eq!(counts.published, 23);
        let sizes: Vec<usize> = p
            .batches
            .lock()
            .expect("lock")
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [10, 10, 3]);
        assert_eq!(n.counts().published, 23);
    }

    #[tokio::test]
    async fn failures_are_retried_then_counted_and_refusals_are_not_retried() {
        let p = Arc::new(Recording::default());
        *p.script.lock().expect("lock") = vec![
            Err("throttled".into()),
            Ok(vec![(0, true), (1, false)]),
            Ok(vec![]),
        ];
        let n = notifier(&p, "low");
        let sources: Vec<Vec<u8>> = (0..3).map(|i| alert(i, "high")).collect();
        let refs: Vec<&[u8]> = sources.iter().map(Vec::as_slice).collect();
        let counts = n.notify(&refs).await;
        // Call 1 fails whole; call 2 refuses entry 0 (retryable) and 1 (for good); call 3
        // publishes entry 0 again.
        assert_eq!((counts.published, counts.failed), (2, 1));
        let batches = p.batches.lock().expect("lock").clone();
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[2], ["[high] rule 0"]);

        // A publisher that always fails: given up after the attempts, counted.
        *p.script.lock().expect("lock") = vec![Err("down".into()); 5];
        let counts = n.notify(&refs[..1]).await;
        assert_eq!((counts.published, counts.failed), (0, 1));
        assert_eq!(p.batches.lock().expect("lock").len(), 6);
    }

    #[tokio::test]
    async fn a_flood_is_bounded_per_minute() {
        let p = Arc::new(Recording::default());
        let mut n = notifier(&p, "low");
        n.settings.max_per_minute = 15;
        let sources: Vec<Vec<u8>> = (0..12).map(|i| alert(i, "high")).collect();
        let refs: Vec<&[u8]> = sources.iter().map(Vec::as_slice).collect();
        assert_eq!(n.notify(&refs).await.dropped, 0);
        let second = n.notify(&refs).await;
        assert_eq!((second.published, second.dropped), (3, 9));
        assert_eq!(n.counts().dropped, 9);
    }

    #[tokio::test]
    async fn only_alerts_this_write_created_are_published() {
        use crate::deliver::fakes::FakeSink;
        let p = Arc::new(Recording::default());
        let n = Arc::new(notifier(&p, "high"));
        let mut fake = FakeSink::default();
        fake.fail.insert("failed-object".into());
        let sink = NotifyingSink::new(fake, Arc::clone(&n));
        let item = |index: &str, id: &str, object: &str, source: Vec<u8>| {
            BulkItem::new(index, id, source, Origin::new(object, 0))
        };
        let items = vec![
            item("log-aws-cloudtrail-2026-12", "d1", "ok", b"{}".to_vec()),
            item("alert-2026-12", "a1", "ok", alert(1, "high")),
            item("alert-2026-12", "a2", "failed-object", alert(2, "high")),
            item("alerting-2026-12", "x", "ok", alert(3, "high")),
        ];
        let outcome = sink.write(items).await;
        assert_eq!(outcome.stats.alerts_published, 1);
        assert_eq!(p.batches.lock().expect("lock").clone(), [["[high] rule 1"]]);
    }

    #[test]
    fn settings_are_checked() {
        assert!(NotifySettings::new("arn:aws:sns:eu-west-1:1:t", None).is_ok());
        assert_eq!(
            NotifySettings::new("arn:aws:sns:eu-west-1:1:t", None)
                .expect("ok")
                .min_level,
            "high"
        );
        assert!(matches!(
            NotifySettings::new("arn:aws:sqs:eu-west-1:1:q", None),
            Err(NotifySettingsError::Topic(_))
        ));
        assert!(matches!(
            NotifySettings::new("arn:aws:sns:eu-west-1:1:t", Some("severe")),
            Err(NotifySettingsError::Level(_))
        ));
    }
}
