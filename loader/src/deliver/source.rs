//! Where objects are read from: S3 (the Lambda, the CLI over a prefix or a queue) or local files
//! (the CLI). Narrow on purpose: open one object as a stream, nothing else, so the delivery is
//! tested with a fake source and the edges against moto and a temporary folder.

use super::ObjectRef;
use futures::future::BoxFuture;
use std::future::Future;
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
///
/// A GetObject that gets no answer, or a body that stops sending, fails its object after
/// [`S3Source::timeout`] instead of holding it forever: the SDK bounds connecting, not waiting
/// for data. The failed object is retried (the message comes back; the CLI lists it).
#[derive(Debug, Clone)]
pub struct S3Source {
    client: aws_sdk_s3::Client,
    timeout: std::time::Duration,
}

/// The environment variable of [`S3Source::timeout`], in seconds.
pub const S3_TIMEOUT_ENV: &str = "S3_TIMEOUT_SECONDS";
const S3_TIMEOUT_DEFAULT: u64 = 60;

impl S3Source {
    /// A source whose timeout comes from `S3_TIMEOUT_SECONDS` (default 60).
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        let seconds = std::env::var(S3_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| *s > 0)
            .unwrap_or(S3_TIMEOUT_DEFAULT);
        Self::with_timeout(client, std::time::Duration::from_secs(seconds))
    }

    pub fn with_timeout(client: aws_sdk_s3::Client, timeout: std::time::Duration) -> Self {
        Self { client, timeout }
    }

    /// How long GetObject may take to answer, and the body to send more data.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
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
            let request = self
                .client
                .get_object()
                .bucket(bucket)
                .key(&object.key)
                .send();
            let answered = tokio::time::timeout(self.timeout, request)
                .await
                .map_err(|_| SourceError {
                    object: object.name(),
                    reason: format!(
                        "GetObject got no answer within {} s ({S3_TIMEOUT_ENV})",
                        self.timeout.as_secs()
                    ),
                    not_found: false,
                })?;
            let output = answered.map_err(|e| {
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
            let reader = IdleTimeout::new(Box::pin(output.body.into_async_read()), self.timeout);
            Ok(ObjectBody {
                reader: BodyReader::Async(Box::new(reader)),
                size,
                modified,
            })
        })
    }
}

/// A body that fails when it sends nothing for `timeout` while it is being read (time the
/// reader spends elsewhere does not count).
struct IdleTimeout<R> {
    inner: R,
    timeout: std::time::Duration,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// A read is waiting for data; the deadline was set when it started.
    waiting: bool,
}

impl<R> IdleTimeout<R> {
    fn new(inner: R, timeout: std::time::Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            waiting: false,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for IdleTimeout<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        if !this.waiting {
            let deadline = tokio::time::Instant::now() + this.timeout;
            this.sleep.as_mut().reset(deadline);
            this.waiting = true;
        }
        match std::pin::Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.waiting = false;
                Poll::Ready(result)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the body sent nothing for {} s ({S3_TIMEOUT_ENV})",
                        this.timeout.as_secs()
                    ),
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
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

    #[tokio::test]
    async fn a_body_that_stops_sending_fails_with_the_setting_named() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // One chunk, then a stream that neither ends nor sends.
        let (mut tx, rx) = tokio::io::duplex(64);
        tx.write_all(b"first").await.expect("write");
        let mut body = IdleTimeout::new(rx, std::time::Duration::from_millis(100));
        let mut buf = [0u8; 16];
        let n = body.read(&mut buf).await.expect("the first chunk");
        assert_eq!(&buf[..n], b"first");
        let e = body.read(&mut buf).await.expect_err("no more data");
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(e.to_string().contains(S3_TIMEOUT_ENV), "{e}");
    }

    #[tokio::test]
    async fn time_the_reader_spends_elsewhere_does_not_count() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut body = IdleTimeout::new(rx, std::time::Duration::from_millis(100));
        tx.write_all(b"a").await.expect("write");
        let mut buf = [0u8; 4];
        assert_eq!(body.read(&mut buf).await.expect("a"), 1);
        // Busy for longer than the timeout; the data is there when the reader comes back.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        tx.write_all(b"b").await.expect("write");
        let n = body.read(&mut buf).await.expect("b is read, not timed out");
        assert_eq!(&buf[..n], b"b");
    }
}
