//! Tracing set-up: JSON lines in Lambda (one object per line, which CloudWatch Logs Insights
//! parses into fields such as `s3_key` or `log_type`), readable text on a terminal.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// True when the process runs inside the Lambda runtime.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Installs the global subscriber once; later calls are ignored. The level comes from
/// `RUST_LOG` (default `info`). Logs go to stderr so a CLI's stdout stays clean for data.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let result = if in_lambda() {
        tracing_subscriber::registry()
            .with(filter)
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_target(false)
                    .with_ansi(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt::layer().with_target(false).with_writer(std::io::stderr))
            .try_init()
    };
    // A subscriber already installed (tests calling twice) is fine.
    let _ = result;
}
