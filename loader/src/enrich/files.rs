//! Where the enrichers' data lives (GeoIP databases, threat feeds): a folder or an S3 prefix,
//! read at start and looked at again now and then, and written by the update commands. Each
//! file has a stamp (its S3 ETag, or its size and modification time) that tells a changed file
//! from the same one, so unchanged data is never read twice.

use futures::future::BoxFuture;
use std::path::{Path, PathBuf};

/// A folder, or a prefix of an S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// `s3://bucket/prefix` or a folder path.
    pub fn parse(text: &str) -> Self {
        match text.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                Self::S3 {
                    bucket: bucket.to_owned(),
                    prefix: prefix.trim_end_matches('/').to_owned(),
                }
            }
            None => Self::Dir(PathBuf::from(text)),
        }
    }

    /// The key of a file under an S3 prefix.
    pub fn key(prefix: &str, name: &str) -> String {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        }
    }

    /// An S3 client from the environment's AWS configuration when the location is in S3.
    pub async fn s3_client(&self) -> Option<aws_sdk_s3::Client> {
        match self {
            Self::S3 { .. } => Some(shared::aws::s3_client(&shared::aws::sdk_config().await)),
            Self::Dir(_) => None,
        }
    }

    /// Where a file of this location is, for messages.
    pub fn file(&self, name: &str) -> String {
        match self {
            Self::Dir(dir) => dir.join(name).display().to_string(),
            Self::S3 { bucket, prefix } => format!("s3://{bucket}/{}", Self::key(prefix, name)),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.display()),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct FilesError {
    pub path: String,
    pub reason: String,
}

/// A file directly at a location, with its stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub name: String,
    pub stamp: String,
}

/// Reads the files of a location: the I/O edge of the enrichers' data.
pub trait FileSource: Send + Sync {
    /// The files directly at `location` (not in sub-folders), by name.
    fn list(&self, location: &Location) -> BoxFuture<'_, Result<Vec<Stamped>, FilesError>>;
    /// One file; `None` when it is not there.
    fn read(
        &self,
        location: &Location,
        name: &str,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, FilesError>>;
}

/// Files in a folder, or in S3 through a client.
#[derive(Clone)]
pub struct Files {
    pub s3: Option<aws_sdk_s3::Client>,
}

impl Files {
    fn s3(&self, location: &Location) -> Result<&aws_sdk_s3::Client, FilesError> {
        self.s3.as_ref().ok_or_else(|| FilesError {
            path: location.to_string(),
            reason: "S3 is not available here".to_owned(),
        })
    }
}

/// A file's size and modification time.
fn stamp(meta: &std::fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{}@{modified}", meta.len())
}

impl FileSource for Files {
    fn list(&self, location: &Location) -> BoxFuture<'_, Result<Vec<Stamped>, FilesError>> {
        let location = location.clone();
        Box::pin(async move {
            let failed = |reason: String| FilesError {
                path: location.to_string(),
                reason,
            };
            let mut files = Vec::new();
            match &location {
                Location::Dir(dir) => {
                    let entries = match std::fs::read_dir(dir) {
                        Ok(entries) => entries,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
                        Err(e) => return Err(failed(e.to_string())),
                    };
                    for entry in entries.flatten() {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        if name.starts_with('.') {
                            continue;
                        }
                        if let Ok(meta) = entry.metadata()
                            && meta.is_file()
                        {
                            files.push(Stamped {
                                name,
                                stamp: stamp(&meta),
                            });
                        }
                    }
                }
                Location::S3 { bucket, prefix } => {
                    let s3 = self.s3(&location)?;
                    let below = Location::key(prefix, "");
                    let mut pages = s3
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(&below)
                        .into_paginator()
                        .send();
                    while let Some(page) = pages.next().await {
                        let page = page.map_err(|e| {
                            failed(aws_sdk_s3::error::DisplayErrorContext(e).to_string())
                        })?;
                        for object in page.contents() {
                            let Some(name) = object.key().and_then(|k| k.strip_prefix(&below))
                            else {
                                continue;
                            };
                            if name.is_empty() || name.contains('/') {
                                continue;
                            }
                            files.push(Stamped {
                                name: name.to_owned(),
                                stamp: object.e_tag().unwrap_or_default().to_owned(),
                            });
                        }
                    }
                }
            }
            files.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(files)
        })
    }

    fn read(
        &self,
        location: &Location,
        name: &str,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, FilesError>> {
        let location = location.clone();
        let name = name.to_owned();
        Box::pin(async move {
            let failed = |reason: String| FilesError {
                path: location.file(&name),
                reason,
            };
            match &location {
                Location::Dir(dir) => match std::fs::read(dir.join(&name)) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(failed(e.to_string())),
                },
                Location::S3 { bucket, prefix } => {
                    let object = self
                        .s3(&location)?
                        .get_object()
                        .bucket(bucket)
                        .key(Location::key(prefix, &name))
                        .send()
                        .await;
                    match object {
                        Ok(object) => Ok(Some(
                            object
                                .body
                                .collect()
                                .await
                                .map_err(|e| failed(e.to_string()))?
                                .to_vec(),
                        )),
                        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                            Ok(None)
                        }
                        Err(e) => Err(failed(
                            aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                        )),
                    }
                }
            }
        })
    }
}

/// When data was last looked at, for reloads that wait their turn (a long-running process
/// looks again every so often, not on every call).
#[derive(Debug, Default)]
pub struct Recheck(std::sync::Mutex<Option<std::time::Instant>>);

impl Recheck {
    /// Whether `every` has passed since the last look; when it has, this is the new look.
    pub fn due(&self, every: std::time::Duration) -> bool {
        let now = std::time::Instant::now();
        let Ok(mut last) = self.0.lock() else {
            return false;
        };
        if last.is_some_and(|at| now.duration_since(at) < every) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// A look made now (a cold start's read).
    pub fn mark(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(std::time::Instant::now());
        }
    }
}

/// Puts `bytes` at `location` as `name`: beside the file then renamed over it in a folder (a
/// reader never sees half a file), or one PutObject. Where it went.
pub async fn write(
    location: &Location,
    s3: Option<&aws_sdk_s3::Client>,
    name: &str,
    bytes: Vec<u8>,
) -> Result<String, FilesError> {
    let target = location.file(name);
    let failed = |reason: String| FilesError {
        path: target.clone(),
        reason,
    };
    match location {
        Location::Dir(dir) => {
            write_file(dir, name, &bytes).map_err(|e| failed(e.to_string()))?;
        }
        Location::S3 { bucket, prefix } => {
            let s3 = s3.ok_or_else(|| failed("S3 is not available here".to_owned()))?;
            s3.put_object()
                .bucket(bucket)
                .key(Location::key(prefix, name))
                .body(bytes.into())
                .send()
                .await
                .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        }
    }
    Ok(target)
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let partial = dir.join(format!(".{name}.partial"));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_folders_or_s3_prefixes() {
        assert_eq!(
            Location::parse("s3://b/geo/ip/"),
            Location::S3 {
                bucket: "b".into(),
                prefix: "geo/ip".into()
            }
        );
        assert_eq!(Location::parse("s3://b").file("x"), "s3://b/x");
        assert_eq!(Location::parse("/tmp/x"), Location::Dir("/tmp/x".into()));
    }

    #[tokio::test]
    async fn a_folder_lists_its_files_with_stamps_and_writes_whole_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = Location::Dir(dir.path().join("feeds"));
        let files = Files { s3: None };
        assert!(
            files
                .list(&location)
                .await
                .expect("missing is empty")
                .is_empty()
        );
        write(&location, None, "b.txt", b"1.2.3.4\n".to_vec())
            .await
            .expect("write");
        write(&location, None, "a.csv", b"x\n".to_vec())
            .await
            .expect("write");
        std::fs::create_dir(dir.path().join("feeds/sub")).expect("sub-folder");
        let listed = files.list(&location).await.expect("list");
        let names: Vec<&str> = listed.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.csv", "b.txt"], "no partial file, no sub-folder");
        assert_eq!(
            files.read(&location, "b.txt").await.expect("read"),
            Some(b"1.2.3.4\n".to_vec())
        );
        assert_eq!(files.read(&location, "none").await.expect("read"), None);
        write(&location, None, "b.txt", b"1.2.3.4\n5.6.7.8\n".to_vec())
            .await
            .expect("rewrite");
        let again = files.list(&location).await.expect("list");
        assert_ne!(
            listed[1].stamp, again[1].stamp,
            "a changed file has a new stamp"
        );
    }
}
