//! The command line: `loader load PATH...` over local files or folders laid out like the bucket,
//! and `loader bench` (throughput per core of every built-in type).

pub mod list;
mod load;
pub mod progress;
pub mod report;
pub mod sources;

pub use load::{load_paths, objects};

use crate::bench;
use crate::config::{Config, ConfigError};
use crate::pipeline::Pipeline;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(
    name = "loader",
    version,
    about = "Turns objects of the central log bucket into ECS documents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Loads local files, or folders laid out like the bucket (the path below the folder is the
    /// object key), and writes the documents as NDJSON. A summary goes to stderr.
    Load {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write OpenSearch bulk lines (`{"create":{..}}` + document) instead of documents.
        #[arg(long)]
        bulk: bool,
        /// A user configuration file in the es-loader's INI dialect, read over the built-in one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The load time to record (RFC 3339), for reproducible output. Default: now.
        #[arg(long)]
        ingested: Option<DateTime<Utc>>,
    },
    /// Measures records per second on one core, from gzip bytes to bulk lines, on generated
    /// input.
    Bench {
        /// Records per type.
        #[arg(long, default_value_t = 50_000)]
        records: usize,
        /// Only these types (default: all benchmarked types).
        #[arg(long = "type")]
        types: Vec<String>,
        /// Write the generated gzip objects under this folder (at their bucket keys) instead of
        /// measuring: the input of the end-to-end benchmark (`loader load DIR --opensearch ..`).
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read the configuration file {path}: {source}")]
    ReadConfig { path: String, source: io::Error },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot write the output: {0}")]
    Write(io::Error),
    #[error("unknown benchmark type `{0}` (known: {known})", known = bench::TYPES.join(", "))]
    UnknownBenchType(String),
}

/// Builds the configuration: the bundled file, and the user's over it.
pub fn load_config(user: Option<&Path>) -> Result<Config, CliError> {
    let config = match user {
        None => Config::builtin()?,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| CliError::ReadConfig {
                path: path.display().to_string(),
                source,
            })?;
            Config::with_user_file(&path.display().to_string(), &text)?
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// Runs a parsed command line; the text of the summary goes to `err`.
pub fn run(cli: Cli, err: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Load {
            paths,
            out,
            bulk,
            config,
            ingested,
        } => {
            let pipeline = Pipeline::new(load_config(config.as_deref())?);
            let ingested = ingested.unwrap_or_else(Utc::now);
            let stats = match out {
                Some(path) => {
                    let file = File::create(&path).map_err(CliError::Write)?;
                    let mut w = BufWriter::new(file);
                    load_paths(&pipeline, &paths, bulk, ingested, &mut w)?
                }
                None => {
                    let stdout = io::stdout();
                    let mut w = stdout.lock();
                    load_paths(&pipeline, &paths, bulk, ingested, &mut w)?
                }
            };
            err.write_all(stats.summary().as_bytes())
                .map_err(CliError::Write)?;
            Ok(())
        }
        Command::Bench {
            records,
            types,
            write,
        } => {
            for t in &types {
                if !bench::TYPES.contains(&t.as_str()) {
                    return Err(CliError::UnknownBenchType(t.clone()));
                }
            }
            let pipeline = Pipeline::new(Config::builtin()?);
            let selected: Vec<&str> = bench::TYPES
                .iter()
                .copied()
                .filter(|t| types.is_empty() || types.iter().any(|s| s == t))
                .collect();
            if let Some(dir) = write {
                for t in selected {
                    let (key, raw) = bench::generate(t, records);
                    let path = dir.join(&key);
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(CliError::Write)?;
                    }
                    let gz = bench::gzip(&raw);
                    std::fs::write(&path, &gz).map_err(CliError::Write)?;
                    writeln!(
                        err,
                        "{t}: {} ({records} records, {:.1} MB, gzip {:.1} MB)",
                        path.display(),
                        raw.len() as f64 / 1e6,
                        gz.len() as f64 / 1e6
                    )
                    .map_err(CliError::Write)?;
                }
                return Ok(());
            }
            for t in selected {
                let result = bench::run(&pipeline, t, records);
                writeln!(err, "{result}").map_err(CliError::Write)?;
            }
            Ok(())
        }
    }
}
