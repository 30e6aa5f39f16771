//! Staying under the CloudWatch Logs request quotas: a token bucket per call family, and
//! exponential backoff with jitter when the service throttles anyway.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token bucket: `rate` calls per second on average, bursts of up to `burst` calls.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// `rate` <= 0 or not finite means no limit.
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    fn unlimited(&self) -> bool {
        !(self.rate.is_finite() && self.rate > 0.0)
    }

    /// Waits until a call may be made.
    pub async fn acquire(&self) {
        if self.unlimited() {
            return;
        }
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let now = Instant::now();
                let elapsed = now.duration_since(state.1).as_secs_f64();
                state.0 = (state.0 + elapsed * self.rate).min(self.burst);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - state.0) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// How often and how long to retry a throttled call.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            max_attempts: 10,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(20),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0 = first retry): half of the exponential step
    /// plus a random part up to the other half, so parallel callers spread out.
    pub fn delay(&self, retry: u32) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
            .min(self.cap);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d0 = b.delay(0);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d3 = b.delay(3);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
            let d30 = b.delay(30);
            assert!(d30 >= Duration::from_millis(500) && d30 <= Duration::from_secs(1));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_calls() {
        let limiter = RateLimiter::new(10.0, 1);
        let start = Instant::now();
        for _ in 0..21 {
            limiter.acquire().await;
        }
        let elapsed = start.elapsed();
        // One call from the initial token, then 20 at 10 per second.
        assert!(elapsed >= Duration::from_millis(1990), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(2100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn zero_rate_means_unlimited() {
        let limiter = RateLimiter::new(0.0, 1);
        let start = Instant::now();
        for _ in 0..1000 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
