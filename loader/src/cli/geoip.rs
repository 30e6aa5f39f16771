//! `loader geoip update`: downloads GeoLite2 City and ASN from MaxMind and stores them where
//! the loader reads them (`GEOIP_DATABASE_DIR`: a folder or `s3://bucket/prefix`).
//!
//! With an account id, MaxMind's download API (`/geoip/databases/<edition>/download`, basic
//! authentication); with a license key alone, the older `/app/geoip_download` address. Each
//! archive is checked against the SHA-256 MaxMind publishes beside it and opened as a database
//! before it replaces the one in place (a folder's file is replaced by a rename, so a loader
//! never reads half a file).

use super::CliError;
use crate::enrich::geo::{ASN_FILE, CITY_FILE, DatabaseLocation};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

/// MaxMind's download host.
pub const DEFAULT_ENDPOINT: &str = "https://download.maxmind.com";

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

#[derive(Debug, thiserror::Error)]
pub enum GeoUpdateError {
    #[error("{edition}: {reason}")]
    Download { edition: String, reason: String },
    #[error("{edition}: the archive's SHA-256 is {actual}, MaxMind published {expected}")]
    Checksum {
        edition: String,
        expected: String,
        actual: String,
    },
    #[error("{edition}: the archive holds no {file}")]
    NoDatabase { edition: String, file: String },
    #[error("{edition}: the downloaded database cannot be read: {reason}")]
    Unreadable { edition: String, reason: String },
    #[error("{target}: {reason}")]
    Store { target: String, reason: String },
}

/// The editions to fetch and the file each becomes.
const EDITIONS: [(&str, &str); 2] = [("GeoLite2-City", CITY_FILE), ("GeoLite2-ASN", ASN_FILE)];

pub fn run(args: &UpdateArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(update(args, out))
}

async fn update(args: &UpdateArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let client = reqwest::Client::builder()
        .user_agent(concat!(
            "org-security-logs-loader/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| GeoUpdateError::Download {
            edition: "client".to_owned(),
            reason: e.to_string(),
        })?;
    let location = DatabaseLocation::parse(&args.to);
    let s3 = match &location {
        DatabaseLocation::S3 { .. } => {
            Some(shared::aws::s3_client(&shared::aws::sdk_config().await))
        }
        DatabaseLocation::Dir(_) => None,
    };
    for (edition, file) in EDITIONS {
        let archive = fetch(&client, args, edition, "tar.gz").await?;
        let published = fetch(&client, args, edition, "tar.gz.sha256").await?;
        verify(edition, &archive, &published)?;
        let database = extract(edition, file, &archive)?;
        maxminddb::Reader::from_source(database.as_slice()).map_err(|e| {
            GeoUpdateError::Unreadable {
                edition: edition.to_owned(),
                reason: e.to_string(),
            }
        })?;
        let target = store(&location, s3.as_ref(), file, database.clone()).await?;
        writeln!(out, "{edition}: {} bytes -> {target}", database.len())
            .map_err(CliError::Write)?;
    }
    Ok(())
}

/// One file of an edition (`suffix`: `tar.gz` or `tar.gz.sha256`).
async fn fetch(
    client: &reqwest::Client,
    args: &UpdateArgs,
    edition: &str,
    suffix: &str,
) -> Result<Vec<u8>, GeoUpdateError> {
    let failed = |reason: String| GeoUpdateError::Download {
        edition: edition.to_owned(),
        reason,
    };
    let endpoint = args.endpoint.trim_end_matches('/');
    let request = match &args.account_id {
        Some(account) => client
            .get(format!("{endpoint}/geoip/databases/{edition}/download"))
            .query(&[("suffix", suffix)])
            .basic_auth(account, Some(&args.license_key)),
        None => client
            .get(format!("{endpoint}/app/geoip_download"))
            .query(&[
                ("edition_id", edition),
                ("license_key", args.license_key.as_str()),
                ("suffix", suffix),
            ]),
    };
    let response = request.send().await.map_err(|e| {
        failed(format!(
            "the download failed: {}",
            without_key(&e.to_string(), &args.license_key)
        ))
    })?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let hint = match status.as_u16() {
            401 | 403 => " (check the license key and account id)",
            _ => "",
        };
        return Err(failed(format!(
            "MaxMind answered {status}{hint}: {}",
            body.trim().chars().take(200).collect::<String>()
        )));
    }
    response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| failed(format!("the download broke off: {e}")))
}

/// A message without the license key (the older address carries it in the URL).
fn without_key(text: &str, key: &str) -> String {
    if key.is_empty() {
        text.to_owned()
    } else {
        text.replace(key, "<license key>")
    }
}

/// Checks the archive against the published `<hex>  <file name>` line.
fn verify(edition: &str, archive: &[u8], published: &[u8]) -> Result<(), GeoUpdateError> {
    let expected = String::from_utf8_lossy(published)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let actual = hex::encode(Sha256::digest(archive));
    if expected != actual {
        return Err(GeoUpdateError::Checksum {
            edition: edition.to_owned(),
            expected,
            actual,
        });
    }
    Ok(())
}

/// The `.mmdb` file of an edition's archive (`<edition>_<date>/<file>`).
fn extract(edition: &str, file: &str, archive: &[u8]) -> Result<Vec<u8>, GeoUpdateError> {
    let bad = |reason: String| GeoUpdateError::Download {
        edition: edition.to_owned(),
        reason: format!("the archive cannot be read: {reason}"),
    };
    let mut entries = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in entries.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let is_database = entry
            .path()
            .ok()
            .and_then(|p| p.file_name().map(|n| n == file))
            .unwrap_or(false);
        if is_database {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| bad(e.to_string()))?;
            return Ok(bytes);
        }
    }
    Err(GeoUpdateError::NoDatabase {
        edition: edition.to_owned(),
        file: file.to_owned(),
    })
}

/// Writes `file` at `location`; where it went.
async fn store(
    location: &DatabaseLocation,
    s3: Option<&aws_sdk_s3::Client>,
    file: &str,
    bytes: Vec<u8>,
) -> Result<String, GeoUpdateError> {
    match (location, s3) {
        (DatabaseLocation::S3 { bucket, prefix }, Some(s3)) => {
            let key = DatabaseLocation::key(prefix, file);
            let target = format!("s3://{bucket}/{key}");
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(bytes.into())
                .send()
                .await
                .map_err(|e| GeoUpdateError::Store {
                    target: target.clone(),
                    reason: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                })?;
            Ok(target)
        }
        (DatabaseLocation::Dir(dir), _) => write_file(dir, file, &bytes),
        (DatabaseLocation::S3 { .. }, None) => Err(GeoUpdateError::Store {
            target: location.to_string(),
            reason: "no S3 client".to_owned(),
        }),
    }
}

/// Writes beside the file, then renames over it.
fn write_file(dir: &Path, file: &str, bytes: &[u8]) -> Result<String, GeoUpdateError> {
    let target = dir.join(file);
    let failed = |reason: String| GeoUpdateError::Store {
        target: target.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    let partial = dir.join(format!(".{file}.partial"));
    std::fs::write(&partial, bytes).map_err(|e| failed(e.to_string()))?;
    std::fs::rename(&partial, &target).map_err(|e| failed(e.to_string()))?;
    Ok(target.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, path, *bytes)
                .expect("entry");
        }
        builder.into_inner().expect("tar").finish().expect("gzip")
    }

    #[test]
    fn the_database_is_found_in_its_dated_folder() {
        let bytes = archive(&[
            ("GeoLite2-ASN_20261201/COPYRIGHT.txt", b"c"),
            ("GeoLite2-ASN_20261201/GeoLite2-ASN.mmdb", b"db"),
        ]);
        assert_eq!(
            extract("GeoLite2-ASN", ASN_FILE, &bytes).expect("db"),
            b"db"
        );
        assert!(matches!(
            extract("GeoLite2-City", CITY_FILE, &bytes),
            Err(GeoUpdateError::NoDatabase { .. })
        ));
        assert!(extract("GeoLite2-City", CITY_FILE, b"not gzip").is_err());
    }

    #[test]
    fn the_published_checksum_must_match() {
        let sum = hex::encode(Sha256::digest(b"archive"));
        verify("e", b"archive", format!("{sum}  e.tar.gz\n").as_bytes()).expect("same");
        assert!(matches!(
            verify("e", b"other", format!("{sum}  e.tar.gz").as_bytes()),
            Err(GeoUpdateError::Checksum { .. })
        ));
        assert!(verify("e", b"archive", b"").is_err());
    }

    #[test]
    fn the_key_never_shows_in_a_message() {
        assert_eq!(
            without_key("GET /app?license_key=SECRET failed", "SECRET"),
            "GET /app?license_key=<license key> failed"
        );
    }
}
