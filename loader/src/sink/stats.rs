//! What the sink did, counted: returned by every write and added to the EMF metrics under the
//! es-loader's metric names, so its dashboards carry over.

use shared::metrics::{Metrics, Unit};
use std::time::Duration;

/// Documents now in the index that were sent by this write (created) or before (duplicates).
pub const SUCCESS_LOG_LOAD_COUNT: &str = "SuccessLogLoadCount";
/// Documents not loaded: quarantined, or abandoned when retries ran out.
pub const ERROR_LOG_LOAD_COUNT: &str = "ErrorLogLoadCount";
pub const DUPLICATE_LOG_COUNT: &str = "DuplicateLogCount";
pub const QUARANTINED_LOG_COUNT: &str = "QuarantinedLogCount";
pub const RETRY_COUNT: &str = "RetryCount";
/// Documents OpenSearch turned away with HTTP 429 (write queue full), per item or per request:
/// the cluster cannot keep up, and the central stack alarms on it.
pub const WRITE_REJECTED_COUNT: &str = "WriteRejectedCount";
/// Bytes sent to OpenSearch (request bodies as sent, so compressed).
pub const OUTPUT_DATA_SIZE: &str = "OutputDataSize";
/// Time spent waiting for OpenSearch, summed over requests.
pub const ES_RESPONSE_TIME: &str = "EsResponseTime";
/// Alerts published to the alert topic, and those that could not be.
pub const ALERTS_PUBLISHED: &str = "AlertsPublishedCount";
pub const ALERTS_NOT_PUBLISHED: &str = "AlertsNotPublishedCount";

/// Counters of one or more writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Documents stored by this write.
    pub created: u64,
    /// Documents whose id already existed (409): loaded before, not an error.
    pub duplicates: u64,
    /// Documents refused for good and written to the quarantine.
    pub quarantined: u64,
    /// Documents abandoned when retries ran out (their objects are reported as failed).
    pub failed: u64,
    /// Documents sent again (after a per-item or whole-request failure, or a 413 split).
    pub retries: u64,
    /// Documents answered 429 (each attempt counts; they were retried).
    pub rejected: u64,
    /// HTTP requests made.
    pub requests: u64,
    /// Request bodies as sent (gzip when enabled).
    pub bytes_sent: u64,
    /// Request bodies before compression.
    pub bytes_uncompressed: u64,
    /// Time from sending each request to its full answer, summed.
    pub response_time: Duration,
    /// Alerts created by these writes and published to the alert topic.
    pub alerts_published: u64,
    /// Alerts that should have been published but were not (failed, or over the bound).
    pub alerts_not_published: u64,
}

impl SinkStats {
    /// Adds `other` into `self` (one object's writes, or all objects of a run).
    pub fn merge(&mut self, other: &SinkStats) {
        self.created += other.created;
        self.duplicates += other.duplicates;
        self.quarantined += other.quarantined;
        self.failed += other.failed;
        self.retries += other.retries;
        self.rejected += other.rejected;
        self.requests += other.requests;
        self.bytes_sent += other.bytes_sent;
        self.bytes_uncompressed += other.bytes_uncompressed;
        self.response_time += other.response_time;
        self.alerts_published += other.alerts_published;
        self.alerts_not_published += other.alerts_not_published;
    }

    /// Documents that are in the index now.
    pub fn loaded(&self) -> u64 {
        self.created + self.duplicates
    }

    /// Adds the counters to `metrics` under the es-loader's names.
    pub fn add_to(&self, metrics: &mut Metrics) {
        metrics.count(SUCCESS_LOG_LOAD_COUNT, self.loaded());
        metrics.count(ERROR_LOG_LOAD_COUNT, self.quarantined + self.failed);
        metrics.count(DUPLICATE_LOG_COUNT, self.duplicates);
        metrics.count(QUARANTINED_LOG_COUNT, self.quarantined);
        metrics.count(RETRY_COUNT, self.retries);
        metrics.count(WRITE_REJECTED_COUNT, self.rejected);
        metrics.add(OUTPUT_DATA_SIZE, self.bytes_sent as f64, Unit::Bytes);
        metrics.add(
            ES_RESPONSE_TIME,
            self.response_time.as_secs_f64() * 1000.0,
            Unit::Milliseconds,
        );
        if self.alerts_published + self.alerts_not_published > 0 {
            metrics.count(ALERTS_PUBLISHED, self.alerts_published);
            metrics.count(ALERTS_NOT_PUBLISHED, self.alerts_not_published);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_metric_names() {
        let mut a = SinkStats {
            created: 5,
            duplicates: 2,
            quarantined: 1,
            failed: 3,
            retries: 4,
            rejected: 3,
            requests: 2,
            bytes_sent: 100,
            bytes_uncompressed: 400,
            response_time: Duration::from_millis(30),
            alerts_published: 1,
            alerts_not_published: 2,
        };
        let b = a.clone();
        a.merge(&b);
        assert_eq!(a.created, 10);
        assert_eq!(a.response_time, Duration::from_millis(60));
        let mut m = Metrics::new("test");
        a.add_to(&mut m);
        assert_eq!(m.value("SuccessLogLoadCount"), Some(14.0));
        assert_eq!(m.value("ErrorLogLoadCount"), Some(8.0));
        assert_eq!(m.value("DuplicateLogCount"), Some(4.0));
        assert_eq!(m.value("QuarantinedLogCount"), Some(2.0));
        assert_eq!(m.value("RetryCount"), Some(8.0));
        assert_eq!(m.value("WriteRejectedCount"), Some(6.0));
        assert_eq!(m.value("OutputDataSize"), Some(200.0));
        assert_eq!(m.value("EsResponseTime"), Some(60.0));
        assert_eq!(m.value("AlertsPublishedCount"), Some(2.0));
        assert_eq!(m.value("AlertsNotPublishedCount"), Some(4.0));
    }
}
