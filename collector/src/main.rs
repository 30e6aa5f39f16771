//! The collector executable: the Lambda function when `AWS_LAMBDA_RUNTIME_API` is set, a small
//! command-line tool otherwise.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use collector::redrive::SqsQueue;
use collector::{Collector, Invocation, S3Store, Settings, SettingsError};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use shared::metrics::Metrics;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "Writes CloudWatch Logs subscription payloads and EventBridge findings to the central log bucket (a Lambda function when AWS_LAMBDA_RUNTIME_API is set)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints the decoded payload of a Lambda event file, a stored object (gzip), base64 text or
    /// payload JSON as pretty JSON. `-` reads standard input.
    Decode {
        file: PathBuf,
        /// Cap on the decompressed size, in bytes.
        #[arg(long, default_value_t = shared::payload::DEFAULT_MAX_DECOMPRESSED)]
        max_bytes: usize,
    },
    /// Measures decode plus key building per payload and prints a JSON report.
    Bench {
        /// Decompressed size of the generated payload, in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        size: usize,
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// Uses the `awslogs.data` of this Lambda event file instead of a generated payload.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Writes the generated payload as a Lambda event file and exits.
        #[arg(long)]
        write_sample: Option<PathBuf>,
    },
    /// Replays the function's dead-letter queue (Lambda on-failure records and EventBridge
    /// target dead letters) into the central bucket, at the keys the function itself writes,
    /// and prints a JSON summary. A message is deleted once its event is stored; any other stays
    /// in the queue. Exit status: 0 all replayed, 1 some failed, 2 the run could not start.
    Redrive {
        /// Queue name (looked up with GetQueueUrl) or queue URL.
        #[arg(long, value_name = "NAME|URL")]
        queue: String,
        /// Stops after this many messages (default: until the queue is drained).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        max_messages: Option<u32>,
        /// Decodes every message and reports the objects it would write; writes and deletes
        /// nothing.
        #[arg(long)]
        dry_run: bool,
        /// Function ARN for messages that name none (no requestContext.functionArn, no
        /// TARGET_ARN attribute); its account and region decide the keys.
        #[arg(long, value_name = "ARN")]
        function_arn: Option<String>,
        /// Central log bucket [default: BUCKET].
        #[arg(long, value_name = "NAME")]
        bucket: Option<String>,
        /// SSE-KMS key for every object [default: KMS_KEY_ARN; "" for the bucket's default].
        #[arg(long, value_name = "ARN")]
        kms_key_arn: Option<String>,
        /// Account that must own the bucket [default: EXPECTED_BUCKET_OWNER].
        #[arg(long, value_name = "ACCOUNT")]
        expected_bucket_owner: Option<String>,
    },
}

/// The options of `collector redrive`.
struct RedriveArgs {
    queue: String,
    options: collector::redrive::Options,
    bucket: Option<String>,
    kms_key_arn: Option<String>,
    expected_bucket_owner: Option<String>,
}

fn main() -> anyhow::Result<ExitCode> {
    shared::telemetry::init_tracing();
    if shared::telemetry::in_lambda() {
        return run_lambda().map(|()| ExitCode::SUCCESS);
    }
    match Cli::parse().command {
        Command::Decode { file, max_bytes } => {
            let input = read_input(&file)?;
            let texts = collector::decode_for_display(&input, max_bytes)
                .with_context(|| format!("decoding {}", file.display()))?;
            for text in texts {
                println!("{text}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            size,
            iterations,
            input,
            write_sample,
        } => bench(size, iterations, input, write_sample).map(|()| ExitCode::SUCCESS),
        Command::Redrive {
            queue,
            max_messages,
            dry_run,
            function_arn,
            bucket,
            kms_key_arn,
            expected_bucket_owner,
        } => {
            let args = RedriveArgs {
                queue,
                options: collector::redrive::Options {
                    max_messages: max_messages.map(|n| n as usize),
                    dry_run,
                    function_arn,
                },
                bucket,
                kms_key_arn,
                expected_bucket_owner,
            };
            match redrive(args) {
                Ok(summary) => {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                    Ok(if summary.is_success() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    })
                }
                Err(error) => {
                    eprintln!("Error: {error:?}");
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}

/// Sets up what the Lambda function has (settings, the bucket's store) plus the queue, then
/// drains it. An error here means the run could not start.
fn redrive(args: RedriveArgs) -> anyhow::Result<collector::redrive::Summary> {
    if let Some(arn) = &args.options.function_arn {
        anyhow::ensure!(
            collector::redrive::unqualified_function_arn(arn).is_some(),
            "--function-arn {arn:?} is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)"
        );
    }
    // A flag wins over the environment; an empty flag clears the setting.
    let settings = Settings::from_lookup(|name| match name {
        "BUCKET" if args.bucket.is_some() => args.bucket.clone(),
        "KMS_KEY_ARN" if args.kms_key_arn.is_some() => args.kms_key_arn.clone(),
        "EXPECTED_BUCKET_OWNER" if args.expected_bucket_owner.is_some() => {
            args.expected_bucket_owner.clone()
        }
        _ => std::env::var(name).ok(),
    })
    .map_err(|error| match error {
        SettingsError::MissingBucket => {
            anyhow::anyhow!("no central log bucket: pass --bucket or set BUCKET")
        }
        other => other.into(),
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let config = shared::aws::sdk_config().await;
        // The queue is the member account's own; only writes go through the writer role.
        let queue = SqsQueue::open(aws_sdk_sqs::Client::new(&config), &args.queue).await?;
        let store = S3Store::from_settings(&config, &settings).await;
        let mut metrics = Metrics::from_env().dimension("Function", "collector");
        let summary = collector::redrive::redrive(
            &queue,
            queue.url(),
            store,
            settings.max_decompressed,
            &args.options,
            &mut metrics,
        )
        .await;
        metrics.flush();
        Ok(summary)
    })
}

fn read_input(file: &PathBuf) -> anyhow::Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        return Ok(bytes);
    }
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}

fn bench(
    size: usize,
    iterations: usize,
    input: Option<PathBuf>,
    write_sample: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (data, decompressed) = match input {
        Some(path) => {
            let event: serde_json::Value = serde_json::from_slice(&read_input(&path)?)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            let data = event
                .pointer("/awslogs/data")
                .and_then(|d| d.as_str())
                .with_context(|| format!("{} has no awslogs.data", path.display()))?
                .to_owned();
            drop(event);
            // The size the gzip trailer records: decompressing here would raise the process's
            // peak memory before the measurement starts.
            let gz = shared::payload::decode_base64(&data)?;
            let size = shared::payload::gzip_trailer_size(&gz).unwrap_or(0);
            (data, size)
        }
        None => {
            let json = collector::bench::sample_payload_json(size);
            (collector::bench::encode_data(json.as_bytes()), json.len())
        }
    };
    if let Some(path) = write_sample {
        let event = serde_json::json!({"awslogs": {"data": data}});
        std::fs::write(&path, serde_json::to_vec(&event)?)
            .with_context(|| format!("writing {}", path.display()))?;
        return Ok(());
    }
    let report = collector::bench::run(&data, decompressed, iterations)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn run_lambda() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let settings = Settings::from_env()?;
        let config = shared::aws::sdk_config().await;
        let store = S3Store::from_settings(&config, &settings).await;
        let collector = Collector::new(store, settings.max_decompressed);
        let collector = &collector;
        lambda_runtime::run(service_fn(
            move |event: LambdaEvent<Box<RawValue>>| async move {
                let mut metrics = Metrics::from_env().dimension("Function", "collector");
                let invocation = Invocation {
                    function_arn: &event.context.invoked_function_arn,
                    request_id: &event.context.request_id,
                };
                let result = collector
                    .handle(event.payload.get(), invocation, &mut metrics)
                    .await;
                metrics.flush();
                result.map_err(|error| Diagnostic {
                    error_type: error.kind().to_owned(),
                    error_message: error.to_string(),
                })
            },
        ))
        .await
        .map_err(|error| anyhow::anyhow!(error))
    })
}
