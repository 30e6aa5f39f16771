//! The subscriber against moto (started by `scripts/test`; `TEST_MOTO_ENDPOINT` must be set).

mod coverage;
mod custom_resource;
mod handler;
mod lambda;
mod reconcile;
mod support;
mod throttling;

use subscriber::aws::{CloudWatchLogs, Limits};
use subscriber::reconcile::Options;
use subscriber::settings::{RawSettings, Settings};
use subscriber::throttle::Backoff;

/// Our filter name in these tests.
pub const FILTER: &str = "org-security-logs";
/// The subscriber's own function name in these tests.
pub const SELF_FUNCTION: &str = "org-security-logs-subscriber";

pub fn settings(destination: &str, exclude: Option<&str>) -> Settings {
    Settings::new(RawSettings {
        filter_name: FILTER.into(),
        destination_arn: destination.into(),
        function_name: Some(SELF_FUNCTION.into()),
        exclude: exclude.map(str::to_owned),
        ..RawSettings::default()
    })
    .expect("valid settings")
}

/// moto does not throttle: no client-side limit, short backoff.
pub fn fast_limits() -> Limits {
    Limits {
        put_rate: 0.0,
        describe_rate: 0.0,
        backoff: Backoff {
            max_attempts: 3,
            ..Backoff::default()
        },
    }
}

pub fn logs(account: &support::TestAccount) -> CloudWatchLogs {
    CloudWatchLogs::new(&account.config, fast_limits())
}

pub fn options() -> Options {
    Options {
        dry_run: false,
        concurrency: 16,
        deadline: None,
    }
}
