//! Keeping the GeoIP databases fresh: GeoLite2 City and ASN downloaded from MaxMind and stored
//! where the loader reads them (`GEOIP_DATABASE_DIR`: a folder or `s3://bucket/prefix`). Used by
//! `loader geoip update` and by the Lambda function on its schedule.
//!
//! With an account id, MaxMind's download API (`/geoip/databases/<edition>/download`, basic
//! authentication); with a license key alone, the older `/app/geoip_download` address. Each
//! archive is checked against the SHA-256 MaxMind publishes beside it and opened as a database
//! before it replaces the one in place (a folder's file is replaced by a rename, so a loader
//! never reads half a file).

use super::files::{self, Location};
use super::geo::{ASN_FILE, CITY_FILE};
use sha2::{Digest, Sha256};
use std::io::Read;

/// MaxMind's download host.
pub const DEFAULT_ENDPOINT: &str = "https://download.maxmind.com";

/// Who downloads: a license key, with the account id the download API wants as user name.
#[derive(Clone)]
pub struct Credentials {
    pub license_key: String,
    /// Without it, the older download address that takes the key alone.
    pub account_id: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// A Secrets Manager secret's text: `{"license_key": "...", "account_id": "..."}`, or the
    /// key alone.
    pub fn from_secret(text: &str) -> Result<Self, GeoUpdateError> {
        let text = text.trim();
        if !text.starts_with('{') {
            if text.is_empty() {
                return Err(GeoUpdateError::Credentials(
                    "the secret is empty".to_owned(),
                ));
            }
            return Ok(Self {
                license_key: text.to_owned(),
                account_id: None,
            });
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| GeoUpdateError::Credentials(format!("the secret is not JSON: {e}")))?;
        let field = |name: &str| {
            value.get(name).and_then(|v| match v {
                serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        Ok(Self {
            license_key: field("license_key").ok_or_else(|| {
                GeoUpdateError::Credentials("the secret has no `license_key`".to_owned())
            })?,
            account_id: field("account_id"),
        })
    }
}

/// One database put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub edition: &'static str,
    pub bytes: usize,
    pub target: String,
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
    #[error(transparent)]
    Store(#[from] files::FilesError),
    #[error("MaxMind credentials: {0}")]
    Credentials(String),
}

/// The editions to fetch and the file each becomes.
const EDITIONS: [(&str, &str); 2] = [("GeoLite2-City", CITY_FILE), ("GeoLite2-ASN", ASN_FILE)];

/// Downloads both editions, checks them, and puts them at `location` (S3 through `s3`).
/// Stops at the first edition that fails; the ones installed before stay installed.
pub async fn update(
    endpoint: &str,
    credentials: &Credentials,
    location: &Location,
    s3: Option<&aws_sdk_s3::Client>,
) -> Result<Vec<Installed>, GeoUpdateError> {
    let client = reqwest::Client::builder()
        .user_agent(concat!(
            "org-security-logs-loader/",
            env!("CARGO_PKG_VERSION")
        ))
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| GeoUpdateError::Download {
            edition: "client".to_owned(),
            reason: e.to_string(),
        })?;
    let mut installed = Vec::new();
    for (edition, file) in EDITIONS {
        let archive = fetch(&client, endpoint, credentials, edition, "tar.gz").await?;
        let published = fetch(&client, endpoint, credentials, edition, "tar.gz.sha256").await?;
        verify(edition, &archive, &published)?;
        let database = extract(edition, file, &archive)?;
        maxminddb::Reader::from_source(database.as_slice()).map_err(|e| {
            GeoUpdateError::Unreadable {
                edition: edition.to_owned(),
                reason: e.to_string(),
            }
        })?;
        let bytes = database.len();
        let target = files::write(location, s3, file, database).await?;
        installed.push(Installed {
            edition,
            bytes,
            target,
        });
    }
    Ok(installed)
}

/// One file of an edition (`suffix`: `tar.gz` or `tar.gz.sha256`).
async fn fetch(
    client: &reqwest::Client,
    endpoint: &str,
    credentials: &Credentials,
    edition: &str,
    suffix: &str,
) -> Result<Vec<u8>, GeoUpdateError> {
    let failed = |reason: String| GeoUpdateError::Download {
        edition: edition.to_owned(),
        reason,
    };
    let endpoint = endpoint.trim_end_matches('/');
    let key = credentials.license_key.as_str();
    let request = match &credentials.account_id {
        Some(account) => client
            .get(format!("{endpoint}/geoip/databases/{edition}/download"))
            .query(&[("suffix", suffix)])
            .basic_auth(account, Some(key)),
        None => client
            .get(format!("{endpoint}/app/geoip_download"))
            .query(&[
                ("edition_id", edition),
                ("license_key", key),
                ("suffix", suffix),
            ]),
    };
    let response = request.send().await.map_err(|e| {
        failed(format!(
            "the download failed: {}",
            without_key(&e.to_string(), key)
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
    fn credentials_come_from_a_json_secret_or_the_key_alone() {
        let both =
            Credentials::from_secret(r#"{"license_key": "k", "account_id": 42}"#).expect("json");
        assert_eq!(
            (both.license_key.as_str(), both.account_id.as_deref()),
            ("k", Some("42"))
        );
        let key = Credentials::from_secret("k\n").expect("plain");
        assert_eq!((key.license_key.as_str(), key.account_id), ("k", None));
        assert!(Credentials::from_secret(r#"{"account_id": "1"}"#).is_err());
        assert!(Credentials::from_secret("  ").is_err());
        assert!(!format!("{both:?}").contains('k') || !format!("{both:?}").contains("\"k\""));
    }

    #[test]
    fn the_key_never_shows_in_a_message() {
        assert_eq!(
            without_key("GET /app?license_key=SECRET failed", "SECRET"),
            "GET /app?license_key=<license key> failed"
        );
    }
}
