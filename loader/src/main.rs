use clap::Parser;
use loader::cli::{Cli, run};

/// Normalizing allocates and frees many small strings and maps per record; mimalloc does that
/// markedly faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        eprintln!(
            "loader: running as a Lambda function is not supported by this build yet: the SQS \
             handler comes with the delivery to OpenSearch; use `loader load PATH...` locally"
        );
        std::process::exit(2);
    }
    shared::telemetry::init_tracing();
    let cli = Cli::parse();
    if let Err(e) = run(cli, &mut std::io::stderr()) {
        eprintln!("loader: {e}");
        std::process::exit(e.exit_code());
    }
    Ok(())
}
