//! Basic-auth credentials that may change while the loader runs. They come from a
//! [`CredentialSource`]: a fixed pair (the environment) or a Secrets Manager secret
//! ([`super::secret`]), read once at start. When OpenSearch answers 401, the password may have
//! been rotated: the source is read again (at most once per [`DEFAULT_REFRESH_INTERVAL`], so a
//! wrong password does not hammer Secrets Manager) and the request is sent once more with the
//! new credentials. A 401 that persists fails the request as before. Passwords are never
//! printed: not by `Debug`, not in errors, not in log lines.

use super::transport::{HttpReply, SendError};
use base64::Engine as _;
use futures::future::BoxFuture;
use opensearch::http::headers::HeaderValue;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The source is read again after a 401 at most this often.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// A user name and password, with the `Authorization` header they make.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    username: String,
    password: String,
}

impl BasicCredentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// `Basic <base64 of user:password>`, marked sensitive so the HTTP stack never prints it.
    pub fn header(&self) -> HeaderValue {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        // Base64 is always a valid header value; the fallback is never taken.
        let mut value = HeaderValue::from_str(&format!("Basic {token}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
        value.set_sensitive(true);
        value
    }
}

impl std::fmt::Debug for BasicCredentials {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The credentials could not be read. Messages name the secret and what is wrong, never a
/// value from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read the OpenSearch credentials from the secret {secret}: {reason}")]
    Read { secret: String, reason: String },
    #[error(
        "the secret {secret} has no SecretString: the OpenSearch credentials must be a JSON text {{\"username\": \"..\", \"password\": \"..\"}}"
    )]
    NoSecretString { secret: String },
    #[error(
        "the secret {secret} is not a JSON object {{\"username\": \"..\", \"password\": \"..\"}}: {reason}"
    )]
    NotJson { secret: String, reason: String },
    #[error("the secret {secret} has no string `{key}` in its JSON")]
    MissingKey { secret: String, key: &'static str },
}

/// Where basic-auth credentials come from.
pub trait CredentialSource: Send + Sync {
    /// Reads the credentials (again).
    fn read(&self) -> BoxFuture<'_, Result<BasicCredentials, CredentialError>>;

    /// Names the source in log lines (never the credentials).
    fn describe(&self) -> String;

    /// Whether reading again can give other credentials: a fixed pair cannot, so a 401 is final.
    fn can_change(&self) -> bool {
        true
    }
}

/// `OPENSEARCH_USERNAME` / `OPENSEARCH_PASSWORD`: the same pair for the whole run.
pub struct FixedCredentials(pub BasicCredentials);

impl CredentialSource for FixedCredentials {
    fn read(&self) -> BoxFuture<'_, Result<BasicCredentials, CredentialError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }

    fn describe(&self) -> String {
        "OPENSEARCH_USERNAME / OPENSEARCH_PASSWORD".into()
    }

    fn can_change(&self) -> bool {
        false
    }
}

/// Credentials as handed to one request: after a 401, `generation` tells whether another
/// request already read newer ones.
#[derive(Debug, Clone)]
pub struct Issued {
    pub generation: u64,
    pub credentials: Arc<BasicCredentials>,
}

/// The sink's current credentials and their refresh after a 401.
pub struct BasicAuth {
    source: Arc<dyn CredentialSource>,
    current: RwLock<Issued>,
    /// When the source was last read again after a 401; held while reading, so concurrent
    /// 401s lead to one read.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    refresh_interval: Duration,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("source", &self.source.describe())
            .field("refresh_interval", &self.refresh_interval)
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Reads the credentials from `source` once; an error stops the start.
    pub async fn load(source: Arc<dyn CredentialSource>) -> Result<Self, CredentialError> {
        let first = source.read().await?;
        Ok(Self::with_first(source, first))
    }

    /// A fixed pair: nothing to read, nothing to refresh.
    pub fn fixed(credentials: BasicCredentials) -> Self {
        let source = Arc::new(FixedCredentials(credentials.clone()));
        Self::with_first(source, credentials)
    }

    fn with_first(source: Arc<dyn CredentialSource>, first: BasicCredentials) -> Self {
        Self {
            source,
            current: RwLock::new(Issued {
                generation: 0,
                credentials: Arc::new(first),
            }),
            last_refresh: tokio::sync::Mutex::new(None),
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
        }
    }

    /// Reads the source again after a 401 at most once per `interval`.
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The credentials to send now.
    pub fn current(&self) -> Issued {
        match self.current.read() {
            Ok(issued) => issued.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sends with the current credentials; on a 401, reads them again (see
    /// [`BasicAuth::after_unauthorized`]) and sends once more with the new ones. The answer
    /// of the last attempt is returned, a lasting 401 included.
    pub async fn send<F, Fut>(&self, send: F) -> Result<HttpReply, SendError>
    where
        F: Fn(Arc<BasicCredentials>) -> Fut,
        Fut: Future<Output = Result<HttpReply, SendError>>,
    {
        let issued = self.current();
        let reply = send(Arc::clone(&issued.credentials)).await?;
        if reply.status != 401 {
            return Ok(reply);
        }
        match self.after_unauthorized(&issued).await {
            Some(fresh) => send(fresh.credentials).await,
            None => Ok(reply),
        }
    }

    /// After OpenSearch refused `refused` with a 401: the credentials to try instead, or `None`
    /// when there are none (the source cannot change, was read again too recently, still holds
    /// the refused credentials, or could not be read).
    pub async fn after_unauthorized(&self, refused: &Issued) -> Option<Issued> {
        self.after_unauthorized_at(refused, Instant::now()).await
    }

    async fn after_unauthorized_at(&self, refused: &Issued, now: Instant) -> Option<Issued> {
        if !self.source.can_change() {
            return None;
        }
        let mut last_refresh = self.last_refresh.lock().await;
        let current = self.current();
        if current.generation != refused.generation {
            // Another request read newer credentials meanwhile.
            return Some(current);
        }
        if last_refresh.is_some_and(|at| now.saturating_duration_since(at) < self.refresh_interval)
        {
            tracing::debug!(
                source = %self.source.describe(),
                "OpenSearch refused the credentials (HTTP 401); they were read again moments ago"
            );
            return None;
        }
        *last_refresh = Some(now);
        tracing::warn!(
            source = %self.source.describe(),
            username = current.credentials.username(),
            "OpenSearch refused the credentials (HTTP 401): reading them again"
        );
        let fresh = match self.source.read().await {
            Ok(fresh) => fresh,
            Err(error) => {
                tracing::error!(%error, "the OpenSearch credentials could not be read again");
                return None;
            }
        };
        if fresh == *current.credentials {
            tracing::warn!(
                source = %self.source.describe(),
                "the OpenSearch credentials read again are the ones refused"
            );
            return None;
        }
        let issued = Issued {
            generation: current.generation + 1,
            credentials: Arc::new(fresh),
        };
        match self.current.write() {
            Ok(mut slot) => *slot = issued.clone(),
            Err(poisoned) => *poisoned.into_inner() = issued.clone(),
        }
        tracing::info!(
            source = %self.source.describe(),
            username = issued.credentials.username(),
            "new OpenSearch credentials read: sending again"
        );
        Some(issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A secret whose value the test changes, counting its reads.
    struct FakeSecret {
        value: Mutex<Result<BasicCredentials, CredentialError>>,
        reads: AtomicU32,
    }

    impl FakeSecret {
        fn new(password: &str) -> Arc<Self> {
            Arc::new(Self {
                value: Mutex::new(Ok(BasicCredentials::new("loader", password))),
                reads: AtomicU32::new(0),
            })
        }

        fn rotate(&self, password: &str) {
            *self.value.lock().expect("lock") = Ok(BasicCredentials::new("loader", password));
        }

        fn reads(&self) -> u32 {
            self.reads.load(Ordering::SeqCst)
        }
    }

    impl CredentialSource for FakeSecret {
        fn read(&self) -> BoxFuture<'_, Result<BasicCredentials, CredentialError>> {
            Box::pin(async move {
                self.reads.fetch_add(1, Ordering::SeqCst);
                self.value.lock().expect("lock").clone()
            })
        }

        fn describe(&self) -> String {
            "fake secret".into()
        }
    }

    /// A server that takes only `accepted` as the password, counting requests.
    struct Server {
        accepted: Mutex<String>,
        requests: AtomicU32,
    }

    impl Server {
        fn new(password: &str) -> Self {
            Self {
                accepted: Mutex::new(password.into()),
                requests: AtomicU32::new(0),
            }
        }

        fn rotate(&self, password: &str) {
            *self.accepted.lock().expect("lock") = password.into();
        }

        async fn answer(&self, credentials: Arc<BasicCredentials>) -> Result<HttpReply, SendError> {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let expected =
                BasicCredentials::new("loader", self.accepted.lock().expect("lock").clone());
            let status = if credentials.header() == expected.header() {
                200
            } else {
                401
            };
            Ok(HttpReply {
                status,
                body: bytes::Bytes::new(),
            })
        }

        fn requests(&self) -> u32 {
            self.requests.load(Ordering::SeqCst)
        }
    }

    async fn auth(secret: &Arc<FakeSecret>) -> BasicAuth {
        BasicAuth::load(Arc::clone(secret) as Arc<dyn CredentialSource>)
            .await
            .expect("first read")
    }

    #[tokio::test]
    async fn rotated_credentials_are_read_again_after_a_401_and_the_request_succeeds() {
        let secret = FakeSecret::new("old");
        let server = Server::new("old");
        let auth = auth(&secret).await;
        assert_eq!(secret.reads(), 1);
        let status = |r: Result<HttpReply, SendError>| r.map(|r| r.status);
        assert_eq!(status(auth.send(|c| server.answer(c)).await), Ok(200));

        // The password is rotated: the first try is refused, the fresh read is accepted.
        secret.rotate("new");
        server.rotate("new");
        assert_eq!(status(auth.send(|c| server.answer(c)).await), Ok(200));
        assert_eq!((secret.reads(), server.requests()), (2, 3));
        assert_eq!(auth.current().generation, 1);
        // Later requests go out with the new credentials at once.
        assert_eq!(status(auth.send(|c| server.answer(c)).await), Ok(200));
        assert_eq!((secret.reads(), server.requests()), (2, 4));
    }

    #[tokio::test]
    async fn a_401_that_persists_after_a_fresh_read_is_returned() {
        let secret = FakeSecret::new("old");
        let server = Server::new("other");
        let auth = auth(&secret).await;
        // The secret still holds the refused password: no second request.
        let reply = auth.send(|c| server.answer(c)).await.expect("answer");
        assert_eq!(reply.status, 401);
        assert_eq!((secret.reads(), server.requests()), (2, 1));

        // A new password that the server refuses as well: one retry, then the 401 stands.
        let secret = FakeSecret::new("old");
        let auth = auth_with_interval(&secret, Duration::ZERO).await;
        secret.rotate("still-wrong");
        let server = Server::new("other");
        let reply = auth.send(|c| server.answer(c)).await.expect("answer");
        assert_eq!(reply.status, 401);
        assert_eq!((secret.reads(), server.requests()), (2, 2));
    }

    async fn auth_with_interval(secret: &Arc<FakeSecret>, interval: Duration) -> BasicAuth {
        auth(secret).await.with_refresh_interval(interval)
    }

    #[tokio::test]
    async fn the_source_is_read_again_at_most_once_per_interval() {
        let secret = FakeSecret::new("old");
        let auth = auth(&secret).await;
        let start = Instant::now();
        let refused = auth.current();
        assert!(auth.after_unauthorized_at(&refused, start).await.is_none());
        assert_eq!(secret.reads(), 2);
        // More 401s within the minute: no more reads, even once the secret changed.
        secret.rotate("new");
        for s in [1, 30, 59] {
            let at = start + Duration::from_secs(s);
            assert!(auth.after_unauthorized_at(&refused, at).await.is_none());
        }
        assert_eq!(secret.reads(), 2);
        // A minute later the secret is read again and the new password is used.
        let fresh = auth
            .after_unauthorized_at(&refused, start + DEFAULT_REFRESH_INTERVAL)
            .await
            .expect("new credentials");
        assert_eq!(secret.reads(), 3);
        assert_eq!(fresh.generation, 1);
        assert_eq!(
            fresh.credentials.header(),
            BasicCredentials::new("loader", "new").header()
        );
    }

    #[tokio::test]
    async fn requests_refused_with_old_credentials_use_those_another_request_read() {
        let secret = FakeSecret::new("old");
        let auth = auth(&secret).await;
        let refused = auth.current();
        secret.rotate("new");
        let now = Instant::now();
        let first = auth.after_unauthorized_at(&refused, now).await;
        let second = auth.after_unauthorized_at(&refused, now).await;
        assert_eq!(secret.reads(), 2, "one read for both");
        assert_eq!(
            first.map(|i| i.generation),
            second.map(|i| i.generation),
            "both retry with the new credentials"
        );
    }

    #[tokio::test]
    async fn a_source_that_cannot_be_read_again_leaves_the_401() {
        let secret = FakeSecret::new("old");
        let auth = auth(&secret).await;
        *secret.value.lock().expect("lock") = Err(CredentialError::Read {
            secret: "arn:x".into(),
            reason: "AccessDeniedException".into(),
        });
        let server = Server::new("new");
        let reply = auth.send(|c| server.answer(c)).await.expect("answer");
        assert_eq!(reply.status, 401);
        assert_eq!(server.requests(), 1);
        // The credentials in use stay the last good ones.
        assert_eq!(auth.current().generation, 0);
    }

    #[tokio::test]
    async fn fixed_credentials_are_never_read_again() {
        let auth = BasicAuth::fixed(BasicCredentials::new("loader", "secret"));
        let server = Server::new("other");
        let reply = auth.send(|c| server.answer(c)).await.expect("answer");
        assert_eq!((reply.status, server.requests()), (401, 1));
    }

    #[test]
    fn the_header_is_basic_auth_and_nothing_prints_the_password() {
        let c = BasicCredentials::new("loader", "s3cret");
        assert_eq!(
            c.header().to_str().expect("ascii"),
            "Basic bG9hZGVyOnMzY3JldA=="
        );
        assert!(c.header().is_sensitive());
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!format!("{:?}", c.header()).contains("bG9hZGVyOnMzY3JldA"));
        let auth = BasicAuth::fixed(c);
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert!(!format!("{:?}", auth.current()).contains("s3cret"));
    }
}
