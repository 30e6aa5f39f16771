use anyhow::Context as _;
use clap::Parser;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use loader::cli::{Cli, run};
use loader::deliver::{DocumentSink, S3Source};
use loader::lambda::Handler;
use loader::lambda::enrichment::{EnrichmentData, is_geoip_update};
use loader::lambda::freshness::{FreshnessTask, is_freshness_check};
use loader::lambda::settings::LambdaSettings;
use loader::lambda::setup::{SetupResource, is_custom_resource};
use loader::notify::NotifyingSink;
use loader::sink::{BulkSink, SinkConfig};
use std::sync::Arc;

/// Normalizing allocates and frees many small strings and maps per record; mimalloc does that
/// markedly faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    shared::telemetry::init_tracing();
    if shared::telemetry::in_lambda() {
        return run_lambda();
    }
    let cli = Cli::parse();
    if let Err(e) = run(cli, &mut std::io::stderr()) {
        eprintln!("loader: {e}");
        std::process::exit(e.exit_code());
    }
    Ok(())
}

/// The Lambda function: clients, configuration and sink are built once per execution
/// environment, then every invocation reuses them.
fn run_lambda() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let settings = LambdaSettings::from_env()?;
        let aws = shared::aws::sdk_config().await;
        let s3 = shared::aws::s3_client(&aws);
        let pipeline = settings.load_pipeline(&aws, &s3).await?;
        let sink_config = SinkConfig::from_env(None)?;
        // Reads the OpenSearch credentials from Secrets Manager here, once per cold start.
        let sink =
            BulkSink::connect_with(&sink_config, settings.quarantine(s3.clone()), Some(&aws))
                .await
                .context("setting up the OpenSearch sink")?;
        let freshness =
            FreshnessTask::new(pipeline.config().clone(), sink_config.clone(), aws.clone())?;
        let setup = SetupResource::new(
            pipeline.config().clone(),
            sink_config,
            Some(aws.clone()),
            shared::cfn::HttpResponder::new().context("building the custom resource client")?,
        )
        .with_rules(pipeline.rules_handle());
        // Alerts created by a write are published to the alert topic, when one is set.
        let sink: Arc<dyn DocumentSink> = match settings.notifier(&aws) {
            Some(notifier) => Arc::new(NotifyingSink::new(sink, notifier)),
            None => Arc::new(sink),
        };
        // GeoIP databases, threat feeds and the organization context are read again between
        // invocations when they changed or aged.
        let enrichment = EnrichmentData::new(&pipeline, &aws, s3.clone());
        let handler = Handler::new(
            Arc::new(pipeline),
            S3Source::new(s3),
            Arc::clone(&sink),
            settings.handler,
        );
        let (handler, setup, enrichment) = (&handler, &setup, &enrichment);
        let (freshness, sink) = (&freshness, &sink);
        lambda_runtime::run(service_fn(
            move |event: LambdaEvent<serde_json::Value>| async move {
                if is_custom_resource(&event.payload) {
                    return setup
                        .handle(&event.payload)
                        .await
                        .map_err(|error| Diagnostic {
                            error_type: error.kind().to_owned(),
                            error_message: error.to_string(),
                        });
                }
                if is_geoip_update(&event.payload) {
                    return enrichment.geoip_update().await.map_err(|error| Diagnostic {
                        error_type: "GeoIpUpdate".to_owned(),
                        error_message: error.to_string(),
                    });
                }
                if is_freshness_check(&event.payload) {
                    return freshness
                        .run(sink.as_ref())
                        .await
                        .map_err(|error| Diagnostic {
                            error_type: "FreshnessCheck".to_owned(),
                            error_message: error.to_string(),
                        });
                }
                enrichment.refresh_if_due().await;
                handler
                    .handle_until(event.payload, Some(batch_deadline(event.context.deadline)))
                    .await
                    .map_err(|error| Diagnostic {
                        error_type: error.kind().to_owned(),
                        error_message: error.to_string(),
                    })
            },
        ))
        .await
        .map_err(|error| anyhow::anyhow!(error))
    })
}

/// When objects still loading are given up, before the invocation's deadline (milliseconds
/// since the epoch), so the function answers with their messages as failures instead of being
/// stopped with the whole batch unanswered.
fn batch_deadline(deadline_ms: u64) -> tokio::time::Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    tokio::time::Instant::now() + loader::lambda::handler::time_to_load(left)
}
