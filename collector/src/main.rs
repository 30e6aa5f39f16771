//! The collector executable: the Lambda function when `AWS_LAMBDA_RUNTIME_API` is set, a small
//! command-line tool otherwise.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use collector::{Collector, Invocation, S3Store, Settings};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use shared::metrics::Metrics;
use std::io::Read;
use std::path::PathBuf;

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
}

fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing();
    if shared::telemetry::in_lambda() {
        return run_lambda();
    }
    match Cli::parse().command {
        Command::Decode { file, max_bytes } => {
            let input = read_input(&file)?;
            let texts = collector::decode_for_display(&input, max_bytes)
                .with_context(|| format!("decoding {}", file.display()))?;
            for text in texts {
                println!("{text}");
            }
            Ok(())
        }
        Command::Bench {
            size,
            iterations,
            input,
            write_sample,
        } => bench(size, iterations, input, write_sample),
    }
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
