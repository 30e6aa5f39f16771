//! `loader geoip update`: the databases of [`crate::enrich::geo_update`], from the command line.

use super::CliError;
use crate::enrich::files::Location;
use crate::enrich::geo_update::{self, Credentials, DEFAULT_ENDPOINT};
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The MaxMind license key.
    #[arg(long, env = "MAXMIND_LICENSE_KEY", hide_env_values = true)]
    pub license_key: String,
    /// The MaxMind account id (the download API's user name); without it, the older
    /// download address that takes the key alone.
    #[arg(long, env = "MAXMIND_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// Where to put the databases: a folder or `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub to: String,
    /// The download host (a mirror or a test server).
    #[arg(long, default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
}

pub fn run(args: &UpdateArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let credentials = Credentials {
        license_key: args.license_key.clone(),
        account_id: args.account_id.clone(),
    };
    let location = Location::parse(&args.to);
    let installed = runtime.block_on(async {
        let s3 = location.s3_client().await;
        geo_update::update(&args.endpoint, &credentials, &location, s3.as_ref()).await
    })?;
    for db in installed {
        writeln!(out, "{}: {} bytes -> {}", db.edition, db.bytes, db.target)
            .map_err(CliError::Write)?;
    }
    Ok(())
}
