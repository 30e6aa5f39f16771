//! `subscriber`: a Lambda function when `AWS_LAMBDA_RUNTIME_API` is set, a command-line tool
//! otherwise. The logic lives in the library; this file wires configuration, clients and output.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use shared::cfn::HttpResponder;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use subscriber::aws::{CloudWatchLogs, Limits};
use subscriber::coverage::{self, AwsOrganization, StsAccess};
use subscriber::handler::Handler;
use subscriber::reconcile::Options;
use subscriber::settings::{DEFAULT_FILTER_NAME, RawSettings, Settings};
use subscriber::throttle::Backoff;

#[derive(Parser, Debug)]
#[command(
    name = "subscriber",
    version,
    about = "Keeps every CloudWatch Logs log group subscribed to the collector; reports organization coverage."
)]
struct Cli {
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Subscribe every log group of the current account and region that lacks our filter.
    Reconcile {
        /// Report what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove our filter from every log group of the current account and region.
    Remove {
        #[arg(long)]
        dry_run: bool,
    },
    /// Coverage across the organization's accounts, read through a role assumed in each.
    Coverage {
        /// Name of the read role in every member account.
        #[arg(long, env = "COVERAGE_ROLE_NAME")]
        role_name: String,
        /// Only this organizational unit (or root) and the units below it.
        #[arg(long)]
        ou: Option<String>,
        /// Regions to read (comma-separated); default: the current region.
        #[arg(long, value_delimiter = ',', env = "COVERAGE_REGIONS")]
        regions: Vec<String>,
        #[arg(long, default_value = "aws")]
        partition: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Exit with status 2 when the coverage (percent) is below this. A report that could
        /// not read every active account and region (or found no account) exits with 3.
        #[arg(long)]
        min_coverage: Option<f64>,
    },
}

#[derive(Args, Debug)]
struct FilterArgs {
    /// Destination of our filter: the collector's ARN. For `coverage`, `{account}` and
    /// `{region}` are replaced per member account and region.
    #[arg(long, env = "DESTINATION_ARN", default_value = "", global = true)]
    destination_arn: String,
    #[arg(long, env = "FILTER_NAME", default_value = DEFAULT_FILTER_NAME, global = true)]
    filter_name: String,
    /// Empty: every event.
    #[arg(long, env = "FILTER_PATTERN", default_value = "", global = true)]
    filter_pattern: String,
    /// Role CloudWatch Logs assumes to deliver (Kinesis or Firehose destinations only).
    #[arg(long, env = "FILTER_ROLE_ARN", global = true)]
    filter_role_arn: Option<String>,
    /// This function's name; its log group is never subscribed.
    #[arg(long, env = "AWS_LAMBDA_FUNCTION_NAME", global = true)]
    function_name: Option<String>,
    /// The collector's function name, when the destination is not its Lambda ARN.
    #[arg(long, env = "COLLECTOR_FUNCTION_NAME", global = true)]
    collector_function_name: Option<String>,
    /// More log groups never subscribed (comma-separated).
    #[arg(
        long,
        env = "PROTECTED_LOG_GROUPS",
        value_delimiter = ',',
        global = true
    )]
    protected_log_groups: Vec<String>,
    /// Only log groups matching one of these regexes (JSON array or comma-separated).
    #[arg(long, env = "INCLUDE_PATTERNS", global = true)]
    include: Option<String>,
    /// Never log groups matching one of these regexes (JSON array or comma-separated).
    #[arg(long, env = "EXCLUDE_PATTERNS", global = true)]
    exclude: Option<String>,
    /// `log-group`: a filter on every log group; `account`: one account-level subscription
    /// filter policy (exclusions by exact name only, no include patterns).
    #[arg(
        long,
        env = "SUBSCRIPTION_MODE",
        default_value = "log-group",
        global = true
    )]
    mode: String,
}

#[derive(Args, Debug)]
struct LimitArgs {
    /// PutSubscriptionFilter/DeleteSubscriptionFilter requests per second (0: no limit).
    #[arg(
        long,
        env = "PUT_RATE_PER_SECOND",
        default_value_t = 5.0,
        global = true
    )]
    put_rate: f64,
    /// DescribeLogGroups/DescribeSubscriptionFilters requests per second (0: no limit).
    #[arg(
        long,
        env = "DESCRIBE_RATE_PER_SECOND",
        default_value_t = 10.0,
        global = true
    )]
    describe_rate: f64,
    /// Attempts per request when throttled.
    #[arg(long, env = "MAX_ATTEMPTS", default_value_t = 10, global = true)]
    max_attempts: u32,
    /// Log groups handled at once.
    #[arg(
        long,
        env = "RECONCILE_CONCURRENCY",
        default_value_t = 8,
        global = true
    )]
    concurrency: usize,
}

impl FilterArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings::new(RawSettings {
            filter_name: self.filter_name.clone(),
            filter_pattern: self.filter_pattern.clone(),
            destination_arn: self.destination_arn.clone(),
            role_arn: self.filter_role_arn.clone(),
            function_name: self.function_name.clone(),
            collector_function_name: self.collector_function_name.clone(),
            protected_groups: self
                .protected_log_groups
                .iter()
                .filter(|g| !g.is_empty())
                .cloned()
                .collect(),
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            mode: self.mode.clone(),
        })?)
    }
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            put_rate: self.put_rate,
            describe_rate: self.describe_rate,
            backoff: Backoff {
                max_attempts: self.max_attempts.max(1),
                ..Backoff::default()
            },
        }
    }
}

fn main() -> ExitCode {
    shared::telemetry::init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("subscriber: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(code) => code,
        Err(error) => {
            // One message: a JSON log line in Lambda, plain text on a terminal.
            if shared::telemetry::in_lambda() {
                tracing::error!("{error:#}");
            } else {
                eprintln!("subscriber: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<ExitCode> {
    if shared::telemetry::in_lambda() {
        // In Lambda every setting comes from the environment.
        let cli = Cli::try_parse_from(["subscriber"])?;
        run_lambda(cli).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let cli = Cli::parse();
    let options = Options {
        dry_run: false,
        concurrency: cli.limits.concurrency,
        deadline: None,
    };
    if cli.command.is_none() {
        anyhow::bail!(
            "no command given: use `subscriber reconcile`, `subscriber remove` or `subscriber coverage` (see --help)"
        );
    }
    let config = shared::aws::sdk_config().await;
    match cli.command {
        None => Ok(ExitCode::FAILURE),
        Some(Command::Reconcile { dry_run }) | Some(Command::Remove { dry_run }) => {
            let remove = matches!(cli.command, Some(Command::Remove { .. }));
            let settings = cli.filter.settings()?;
            let api = CloudWatchLogs::new(&config, cli.limits.limits());
            let options = Options { dry_run, ..options };
            let started = std::time::Instant::now();
            let summary = if remove {
                subscriber::account::remove(&api, &settings, options).await
            } else {
                subscriber::account::apply(&api, &settings, options).await
            }
            .context("reconcile stopped")?;
            let run = if remove { "remove" } else { "reconcile" };
            summary.emit(run, &mut metrics());
            let out = json!({
                "summary": summary,
                "api_calls": api.counts(),
                "seconds": started.elapsed().as_secs_f64(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(if summary.failures > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Some(Command::Coverage {
            role_name,
            ou,
            regions,
            partition,
            json,
            min_coverage,
        }) => {
            let settings = cli.filter.settings()?;
            let regions = if regions.is_empty() {
                vec![
                    config
                        .region()
                        .map(|r| r.to_string())
                        .context("no region: set AWS_REGION or pass --regions")?,
                ]
            } else {
                regions
            };
            let org = AwsOrganization::new(&config);
            let access = StsAccess::new(&config, &role_name, &partition, cli.limits.limits());
            let report =
                coverage::coverage(&org, &access, &settings, &regions, ou.as_deref(), options)
                    .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", coverage::render_table(&report));
            }
            Ok(coverage_exit_code(&report, min_coverage))
        }
    }
}

/// 0: every account and region read and the coverage at least `min`; 3: the report is
/// incomplete (no accounts, or some could not be read), which is never a pass; 2: below `min`.
fn coverage_exit_code(report: &coverage::Report, min: Option<f64>) -> ExitCode {
    if let Some(why) = coverage::incomplete_reason(report) {
        tracing::warn!("coverage report incomplete: {why}");
        return ExitCode::from(3);
    }
    match (min, report.totals.coverage_percent) {
        (Some(min), Some(covered)) if covered < min => {
            tracing::warn!(coverage = covered, min, "coverage is under the minimum");
            ExitCode::from(2)
        }
        _ => ExitCode::SUCCESS,
    }
}

fn metrics() -> shared::metrics::Metrics {
    shared::metrics::Metrics::from_env().dimension("Component", "subscriber")
}

async fn run_lambda(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.filter.settings()?;
    let config = shared::aws::sdk_config().await;
    let handler = Arc::new(Handler {
        api: CloudWatchLogs::new(&config, cli.limits.limits()),
        responder: HttpResponder::new()?,
        settings,
        options: Options {
            dry_run: false,
            concurrency: cli.limits.concurrency,
            deadline: None,
        },
    });
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| {
            let handler = Arc::clone(&handler);
            async move {
                let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
                let left_ms = deadline_ms - chrono::Utc::now().timestamp_millis();
                let budget = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
                let outcome =
                    handler
                        .handle(&event.payload, Some(budget))
                        .await
                        .map_err(|error| lambda_runtime::Diagnostic {
                            error_type: error.kind().to_owned(),
                            error_message: error.to_string(),
                        })?;
                outcome.summary.emit(outcome.action, &mut metrics());
                Ok::<Value, lambda_runtime::Diagnostic>(outcome.to_json())
            }
        },
    ))
    .await
    .map_err(|e| anyhow::anyhow!("Lambda runtime stopped: {e}"))
}
