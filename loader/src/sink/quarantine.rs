//! Where documents OpenSearch refuses for good go: with their origin and the error, so a user
//! can fix the mapping (or the parser) and load them again. A folder for the CLI, a prefix of
//! the log bucket for the Lambda.
//!
//! Each document is one JSON file named after its index and id, so quarantining the same
//! document twice (a redelivered object) overwrites instead of piling up.

use super::Origin;
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};

/// One refused document.
#[derive(Debug, Clone, Copy)]
pub struct QuarantinedDocument<'a> {
    pub index: &'a str,
    pub id: &'a str,
    /// The `_source` as it was sent.
    pub source: &'a [u8],
    pub origin: &'a Origin,
    /// The item's HTTP status (0 when the sink refused it before sending).
    pub status: u16,
    /// OpenSearch's `error.type` (or the sink's reason kind).
    pub error_type: &'a str,
    pub reason: &'a str,
}

/// Writing a quarantine entry failed; the document is then not accounted for, so its object
/// fails.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("cannot write quarantine file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write quarantine object s3://{bucket}/{key}: {reason}")]
    S3 {
        bucket: String,
        key: String,
        reason: String,
    },
}

/// The narrow interface the sink needs: put one entry, say where it went.
pub trait Quarantine: Send + Sync {
    fn put<'a>(
        &'a self,
        doc: &'a QuarantinedDocument<'a>,
    ) -> BoxFuture<'a, Result<String, QuarantineError>>;
}

/// The entry as stored: the document (as JSON when it parses, else as a string) next to its
/// origin and the error.
pub fn entry_json(doc: &QuarantinedDocument<'_>) -> Vec<u8> {
    let document = serde_json::from_slice::<serde_json::Value>(doc.source).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(doc.source).into_owned())
    });
    let entry = serde_json::json!({
        "object": &*doc.origin.object,
        "record": doc.origin.record,
        "index": doc.index,
        "id": doc.id,
        "status": doc.status,
        "error": {"type": doc.error_type, "reason": doc.reason},
        "document": document,
    });
    let mut out = serde_json::to_vec_pretty(&entry).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Relative name of the entry: `<index>/<id>.json`, with anything but `[A-Za-z0-9._-]` replaced
/// so an id can never escape the folder or prefix.
pub fn entry_name(doc: &QuarantinedDocument<'_>) -> String {
    format!(
        "{}/{}.json",
        safe_component(doc.index),
        safe_component(doc.id)
    )
}

fn safe_component(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => format!("_{cleaned}"),
        _ => cleaned,
    }
}

/// Quarantine into a local folder (the CLI).
#[derive(Debug, Clone)]
pub struct FolderQuarantine {
    dir: PathBuf,
}

impl FolderQuarantine {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Quarantine for FolderQuarantine {
    fn put<'a>(
        &'a self,
        doc: &'a QuarantinedDocument<'a>,
    ) -> BoxFuture<'a, Result<String, QuarantineError>> {
        Box::pin(async move {
            let path = self.dir.join(entry_name(doc));
            let err = |source| QuarantineError::File {
                path: path.clone(),
                source,
            };
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(err)?;
            }
            tokio::fs::write(&path, entry_json(doc))
                .await
                .map_err(err)?;
            Ok(path.display().to_string())
        })
    }
}

/// Quarantine under a prefix of a bucket (the Lambda, usually the log bucket itself).
#[derive(Debug, Clone)]
pub struct S3Quarantine {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Quarantine {
    /// `prefix` is used as given, with a `/` added when it lacks one (e.g. `quarantine/`).
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, prefix: &str) -> Self {
        let mut prefix = prefix.trim_start_matches('/').to_owned();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Self {
            client,
            bucket: bucket.into(),
            prefix,
        }
    }

    /// The key an entry gets.
    pub fn key_for(&self, doc: &QuarantinedDocument<'_>) -> String {
        format!("{}{}", self.prefix, entry_name(doc))
    }
}

impl Quarantine for S3Quarantine {
    fn put<'a>(
        &'a self,
        doc: &'a QuarantinedDocument<'a>,
    ) -> BoxFuture<'a, Result<String, QuarantineError>> {
        Box::pin(async move {
            let key = self.key_for(doc);
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .content_type("application/json")
                .body(entry_json(doc).into())
                .send()
                .await
                .map_err(|e| QuarantineError::S3 {
                    bucket: self.bucket.clone(),
                    key: key.clone(),
                    reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                })?;
            Ok(format!("s3://{}/{}", self.bucket, key))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc<'a>(origin: &'a Origin, id: &'a str, source: &'a [u8]) -> QuarantinedDocument<'a> {
        QuarantinedDocument {
            index: "log-aws-waf-2024-05",
            id,
            source,
            origin,
            status: 400,
            error_type: "mapper_parsing_exception",
            reason: "failed to parse field [n]",
        }
    }

    #[test]
    fn entry_keeps_document_origin_and_error() {
        let origin = Origin::new("s3://logs/AWSLogs/111122223333/x.log.gz", 41);
        let entry: serde_json::Value =
            serde_json::from_slice(&entry_json(&doc(&origin, "abc", br#"{"n":"x"}"#)))
                .expect("json");
        assert_eq!(entry["object"], "s3://logs/AWSLogs/111122223333/x.log.gz");
        assert_eq!(entry["record"], 41);
        assert_eq!(entry["status"], 400);
        assert_eq!(entry["error"]["type"], "mapper_parsing_exception");
        assert_eq!(entry["document"]["n"], "x");
        let raw: serde_json::Value =
            serde_json::from_slice(&entry_json(&doc(&origin, "abc", b"not json\n"))).expect("json");
        assert_eq!(raw["document"], "not json\n");
    }

    #[test]
    fn names_cannot_escape_the_folder() {
        let origin = Origin::new("o", 0);
        assert_eq!(
            entry_name(&doc(&origin, "abc-1.2_3", b"{}")),
            "log-aws-waf-2024-05/abc-1.2_3.json"
        );
        assert_eq!(
            entry_name(&doc(&origin, "../../etc/passwd", b"{}")),
            "log-aws-waf-2024-05/.._.._etc_passwd.json"
        );
        assert_eq!(
            entry_name(&doc(&origin, "..", b"{}")),
            "log-aws-waf-2024-05/_...json"
        );
        assert_eq!(
            entry_name(&doc(&origin, "", b"{}")),
            "log-aws-waf-2024-05/_.json"
        );
    }

    #[tokio::test]
    async fn folder_quarantine_writes_one_file_per_document() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = FolderQuarantine::new(dir.path().join("quarantine"));
        let origin = Origin::new("samples/x.json", 3);
        let d = doc(&origin, "id1", br#"{"n":"x"}"#);
        let location = q.put(&d).await.expect("written");
        let path = dir.path().join("quarantine/log-aws-waf-2024-05/id1.json");
        assert_eq!(location, path.display().to_string());
        let entry: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("file")).expect("json");
        assert_eq!(entry["record"], 3);
        // Again: overwritten, not duplicated.
        q.put(&d).await.expect("written again");
        assert_eq!(
            std::fs::read_dir(path.parent().expect("parent"))
                .expect("dir")
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn folder_quarantine_error_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").expect("write");
        let q = FolderQuarantine::new(&blocker);
        let origin = Origin::new("o", 0);
        let err = q
            .put(&doc(&origin, "id", b"{}"))
            .await
            .expect_err("not a folder");
        assert!(err.to_string().contains("quarantine file"), "{err}");
        assert!(
            err.to_string().contains(&blocker.display().to_string()),
            "{err}"
        );
    }
}
