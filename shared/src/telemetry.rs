//! Tracing set-up: JSON lines in Lambda (one object per line, which CloudWatch Logs Insights
//! parses into fields such as `s3_key` or `log_type`), readable text on a terminal.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::{fmt, prelude::*};

/// True when the process runs inside the Lambda runtime.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Installs the global subscriber once; later calls are ignored. The level comes from
/// `RUST_LOG` (default `info`). Logs go to stderr so a CLI's stdout stays clean for data.
pub fn init_tracing() {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
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
            .with(
                fmt::layer()
                    .with_target(false)
                    .with_ansi(colours(
                        std::io::IsTerminal::is_terminal(&std::io::stderr()),
                        std::env::var_os("NO_COLOR").as_deref(),
                    ))
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    // A subscriber already installed (tests calling twice) is fine.
    let _ = result;
}

/// The levels of `RUST_LOG`: a level (`debug`), targets with levels (`loader=debug,warn`),
/// or both; `info` when unset or not understood. Targets and levels only, not the span and
/// field filters of `EnvFilter`, whose regular expressions would cost every start (its
/// dependency makes every regular expression of the process build a full DFA).
fn log_filter(rust_log: Option<&str>) -> Targets {
    let info = || Targets::new().with_default(tracing::Level::INFO);
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => info(),
        Some(value) => value.parse().unwrap_or_else(|e| {
            eprintln!("RUST_LOG={value:?} is not understood ({e}): logging at info");
            info()
        }),
    }
}

/// Colours only for a terminal, and never when `NO_COLOR` is set to anything but empty
/// (no-color.org): a redirected log file gets no escape codes.
fn colours(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn rust_log_gives_levels_per_target() {
        use tracing::Level;
        use tracing_subscriber::filter::LevelFilter;
        let f = log_filter(None);
        assert!(f.would_enable("loader", &Level::INFO) && !f.would_enable("loader", &Level::DEBUG));
        let f = log_filter(Some("loader=debug,warn"));
        assert!(f.would_enable("loader::pipeline", &Level::DEBUG));
        assert!(!f.would_enable("aws_config", &Level::INFO));
        assert!(f.would_enable("aws_config", &Level::WARN));
        assert_eq!(
            log_filter(Some("error")).default_level(),
            Some(LevelFilter::ERROR)
        );
        // Not understood: info, not nothing.
        assert!(log_filter(Some("loader=[{x}]=")).would_enable("loader", &Level::INFO));
    }

    #[test]
    fn colours_for_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(colours(true, Some(OsStr::new(""))));
        assert!(!colours(true, Some(OsStr::new("1"))));
        assert!(!colours(false, None));
    }
}
