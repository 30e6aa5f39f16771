//! The retry decision: pure functions from what OpenSearch (or the network) answered to what the
//! sink does next, and the backoff schedule. No I/O, no clock, no randomness of their own, so
//! every status class is unit-tested.

use std::time::Duration;

/// What happened to one HTTP request, as far as the retry decision cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// The server answered with this status.
    Status(u16),
    /// No answer within the request timeout.
    Timeout,
    /// The connection could not be made or broke (refused, reset, closed early).
    Connection,
}

/// What to do with a whole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestAction {
    /// The request was accepted: read the per-item results.
    ReadItems,
    /// Nothing was stored (or we cannot know): send all its items again after a backoff.
    RetryAll,
    /// The body was too large for the server: halve the request and send both halves.
    Split,
    /// The server refuses requests like this one for good (authentication, permissions, a bad
    /// endpoint): retrying cannot help, so the objects concerned fail now.
    Fail(String),
}

/// Decision for a whole request.
pub fn request_action(outcome: RequestOutcome) -> RequestAction {
    match outcome {
        RequestOutcome::Timeout | RequestOutcome::Connection => RequestAction::RetryAll,
        RequestOutcome::Status(status) => match status {
            200..=299 => RequestAction::ReadItems,
            413 => RequestAction::Split,
            // Request timeout and throttling are transient.
            408 | 429 => RequestAction::RetryAll,
            501 => RequestAction::Fail("the endpoint does not implement _bulk (HTTP 501)".into()),
            500..=599 => RequestAction::RetryAll,
            401 => RequestAction::Fail(
                "OpenSearch refused the credentials (HTTP 401): check OPENSEARCH_AUTH and the user, or the secret of OPENSEARCH_SECRET_ARN".into(),
            ),
            403 => RequestAction::Fail(
                "OpenSearch denied the request (HTTP 403): check the role mapping or access policy"
                    .into(),
            ),
            404 => RequestAction::Fail(
                "the endpoint has no _bulk API (HTTP 404): check the OpenSearch endpoint URL"
                    .into(),
            ),
            _ => RequestAction::Fail(format!(
                "OpenSearch answered HTTP {status} to a bulk request"
            )),
        },
    }
}

/// What to do with one item of an accepted bulk request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemAction {
    /// Stored now.
    Created,
    /// A document with this id already exists: loaded before (a retry or a redelivery).
    Duplicate,
    /// Transient refusal (queue full, shard unavailable): send it again.
    Retry,
    /// OpenSearch rejects this document for good (a mapping error and the like).
    Quarantine,
}

/// Decision for one item, from its status in the bulk response.
pub fn item_action(status: u16) -> ItemAction {
    match status {
        200..=299 => ItemAction::Created,
        409 => ItemAction::Duplicate,
        408 | 429 => ItemAction::Retry,
        400..=499 => ItemAction::Quarantine,
        500..=599 => ItemAction::Retry,
        // Anything else is not a verdict on the document; ask again.
        _ => ItemAction::Retry,
    }
}

/// Exponential backoff with jitter, bounded by the total time spent retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry (before jitter).
    pub initial_delay: Duration,
    /// No single delay is longer.
    pub max_delay: Duration,
    /// No retry starts later than this after the first attempt; then the items fail.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
            max_elapsed: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (0 for the first retry), or `None` when waiting
    /// it would pass `max_elapsed` (counted from the first attempt, `elapsed` ago). `jitter` in
    /// [0, 1) comes from the caller's random source: the delay is between half and all of the
    /// exponential step ("equal jitter"), so concurrent loaders spread out but never hammer.
    pub fn next_delay(&self, attempt: u32, elapsed: Duration, jitter: f64) -> Option<Duration> {
        let step = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(31)))
            .min(self.max_delay);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let delay = step.mul_f64(0.5 + 0.5 * jitter);
        if elapsed.saturating_add(delay) > self.max_elapsed {
            None
        } else {
            Some(delay)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_success_reads_items() {
        for s in [200, 201, 299] {
            assert_eq!(
                request_action(RequestOutcome::Status(s)),
                RequestAction::ReadItems
            );
        }
    }

    #[test]
    fn request_throttling_server_errors_and_network_errors_retry_all() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(
                request_action(RequestOutcome::Status(s)),
                RequestAction::RetryAll,
                "HTTP {s}"
            );
        }
        assert_eq!(
            request_action(RequestOutcome::Timeout),
            RequestAction::RetryAll
        );
        assert_eq!(
            request_action(RequestOutcome::Connection),
            RequestAction::RetryAll
        );
    }

    #[test]
    fn request_too_large_splits() {
        assert_eq!(
            request_action(RequestOutcome::Status(413)),
            RequestAction::Split
        );
    }

    #[test]
    fn request_client_errors_and_odd_statuses_fail_with_a_reason() {
        for (s, needle) in [
            (400, "HTTP 400"),
            (401, "credentials"),
            (403, "denied"),
            (404, "endpoint URL"),
            (405, "HTTP 405"),
            (501, "501"),
            (302, "HTTP 302"),
            (101, "HTTP 101"),
        ] {
            match request_action(RequestOutcome::Status(s)) {
                RequestAction::Fail(reason) => assert!(reason.contains(needle), "{s}: {reason}"),
                other => panic!("HTTP {s}: expected Fail, got {other:?}"),
            }
        }
    }

    #[test]
    fn item_statuses() {
        assert_eq!(item_action(201), ItemAction::Created);
        assert_eq!(item_action(200), ItemAction::Created);
        assert_eq!(item_action(409), ItemAction::Duplicate);
        assert_eq!(item_action(429), ItemAction::Retry);
        assert_eq!(item_action(408), ItemAction::Retry);
        for s in [500, 502, 503, 504] {
            assert_eq!(item_action(s), ItemAction::Retry, "{s}");
        }
        for s in [400, 403, 404, 413] {
            assert_eq!(item_action(s), ItemAction::Quarantine, "{s}");
        }
        assert_eq!(item_action(0), ItemAction::Retry);
        assert_eq!(item_action(302), ItemAction::Retry);
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds_and_is_capped() {
        let p = RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(60),
        };
        let zero = Duration::ZERO;
        assert_eq!(p.next_delay(0, zero, 0.0), Some(Duration::from_millis(50)));
        assert_eq!(p.next_delay(0, zero, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(p.next_delay(3, zero, 1.0), Some(Duration::from_millis(800)));
        assert_eq!(p.next_delay(3, zero, 0.5), Some(Duration::from_millis(600)));
        // Capped, even for absurd attempt numbers.
        assert_eq!(p.next_delay(10, zero, 1.0), Some(Duration::from_secs(2)));
        assert_eq!(
            p.next_delay(u32::MAX, zero, 1.0),
            Some(Duration::from_secs(2))
        );
        // Bad jitter values are harmless.
        assert_eq!(
            p.next_delay(0, zero, f64::NAN),
            Some(Duration::from_millis(50))
        );
        assert_eq!(p.next_delay(0, zero, 7.0), Some(Duration::from_millis(100)));
    }

    #[test]
    fn backoff_stops_at_the_time_bound() {
        let p = RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(5),
        };
        assert!(p.next_delay(0, Duration::from_millis(4_900), 0.0).is_some());
        assert_eq!(p.next_delay(0, Duration::from_millis(4_990), 0.0), None);
        assert_eq!(p.next_delay(5, Duration::from_secs(5), 0.0), None);
    }
}
