//! Where objects are read from: S3 (the Lambda, the CLI over a prefix or a queue) or local files
//! (the CLI). Narrow on purpose: open one object as a stream, nothing else, so the delivery is
//! tested with a fake source and the edges against moto and a temporary folder.

use super::ObjectRef;
use futures::future::BoxFuture;
use std::io::Read;
use std::path::PathBuf;
use tokio::io::AsyncRead;

/// An opened object: its body as a stream, never the whole object in memory.
pub struct ObjectBody {
    pub reader: BodyReader,
    /// Size in bytes when the source knows it before reading (S3 `Content-Length`, file size).
    pub size: Option<u64>,
    /// When the object was written (S3 `LastModified`, a file's modification time).
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// The body of an object, read on the pipeline's blocking thread.
pub enum BodyReader {
    /// A blocking reader (a local file), read directly.
    Blocking(Box<dyn Read + Send>),
    /// A streamed body (S3), bridged to the blocking thread.
    Async(Box<dyn AsyncRead + Send + Unpin>),
}

impl ObjectBody {
    /// A body already in memory (tests, small objects).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        let bytes = bytes.into();
        let size = Some(bytes.len() as u64);
        Self {
            reader: BodyReader::Blocking(Box::new(std::io::Cursor::new(bytes))),
            size,
            modified: None,
        }
    }
}

/// An object could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {object}: {reason}")]
pub struct SourceError {
    /// The object's name (`s3://bucket/key` or a path).
    pub object: String,
    pub reason: String,
    /// The object does not exist (deleted since its notification, or a wrong key in a list).
    pub not_found: bool,
}

/// Opens objects for the delivery.
pub trait ObjectSource: Send + Sync {
    fn open<'a>(&'a self, object: &'a ObjectRef) -> BoxFuture<'a, Result<ObjectBody, SourceError>>;
}

impl<T: ObjectSource + ?Sized> ObjectSource for std::sync::Arc<T> {
    fn open<'a>(&'a self, object: &'a ObjectRef) -> BoxFuture<'a, Result<ObjectBody, SourceError>> {
        (**self).open(object)
    }
}

/// Objects of S3 buckets, streamed with GetObject.
#[derive(Debug, Clone)]
pub struct S3Source {
    client: aws_sdk_s3::Client,
}

impl S3Source {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

impl ObjectSource for S3Source {
    fn open<'a>(&'a self, object: &'a ObjectRef) -> BoxFuture<'a, Result<ObjectBody, SourceError>> {
        Box::pin(async move {
            let Some(bucket) = object.bucket.as_deref() else {
                return Err(SourceError {
                    object: object.name(),
                    reason: "not an S3 object (no bucket)".into(),
                    not_found: false,
                });
            };
            let output = self
                .client
                .get_object()
                .bucket(bucket)
                .key(&object.key)
                .send()
                .await
                .map_err(|e| {
                    let not_found = e.as_service_error().is_some_and(|s| s.is_no_such_key());
                    SourceError {
                        object: object.name(),
                        reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                        not_found,
                    }
                })?;
            let size = output.content_length().and_then(|n| u64::try_from(n).ok());
            let modified = output
                .last_modified()
                .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
            let reader = Box::pin(output.body.into_async_read());
            Ok(ObjectBody {
                reader: BodyReader::Async(Box::new(reader)),
                size,
                modified,
            })
        })
    }
}

/// Local files. An object's `path` is opened when it has one; otherwise its key, below `root`
/// when one is set.
#[derive(Debug, Clone, Default)]
pub struct LocalSource {
    root: Option<PathBuf>,
}

impl LocalSource {
    /// Opens each object at its own path (or its key as a path).
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens keys below `root` (a folder laid out like the bucket).
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Self {
            root: Some(root.into()),
        }
    }

    /// The file `object` is read from.
    pub fn path_of(&self, object: &ObjectRef) -> PathBuf {
        match (&object.path, &self.root) {
            (Some(path), _) => path.clone(),
            (None, Some(root)) => root.join(&object.key),
            (None, None) => PathBuf::from(&object.key),
        }
    }
}

impl ObjectSource for LocalSource {
    fn open<'a>(&'a self, object: &'a ObjectRef) -> BoxFuture<'a, Result<ObjectBody, SourceError>> {
        Box::pin(async move {
            let path = self.path_of(object);
            let err = |e: std::io::Error| SourceError {
                object: path.display().to_string(),
                not_found: e.kind() == std::io::ErrorKind::NotFound,
                reason: e.to_string(),
            };
            let file = tokio::fs::File::open(&path).await.map_err(err)?;
            let meta = file.metadata().await.map_err(err)?;
            let modified = meta
                .modified()
                .ok()
                .map(chrono::DateTime::<chrono::Utc>::from);
            Ok(ObjectBody {
                reader: BodyReader::Blocking(Box::new(file.into_std().await)),
                size: Some(meta.len()),
                modified,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_files_open_by_path_or_key_below_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("AWSLogs")).expect("mkdir");
        std::fs::write(dir.path().join("AWSLogs/a.json"), b"{}").expect("write");

        let source = LocalSource::with_root(dir.path());
        let body = source
            .open(&ObjectRef::new(None, "AWSLogs/a.json"))
            .await
            .expect("opens");
        assert_eq!(body.size, Some(2));

        let missing = ObjectRef::new(None, "AWSLogs/missing.json");
        let err = match source.open(&missing).await {
            Err(e) => e,
            Ok(_) => panic!("a missing file opens"),
        };
        assert!(err.not_found);
        assert!(err.to_string().contains("missing.json"), "{err}");

        let by_path = ObjectRef::local(dir.path().join("AWSLogs/a.json"), "AWSLogs/a.json");
        assert!(LocalSource::new().open(&by_path).await.is_ok());
    }
}
