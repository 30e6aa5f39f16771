//! The HTTP edge: one `POST /_bulk` with a prepared body. Behind a trait so the retry loop is
//! tested without a network; the real one uses the `opensearch` crate's transport (reqwest with
//! rustls, and its SigV4 signer fed by the workspace's AWS credential chain). Basic auth is a
//! header of each request, from [`BasicAuth`], so credentials read again after a 401 apply to
//! the very next request.

use super::config::{Auth, SinkConfig};
use super::credentials::{BasicAuth, BasicCredentials, CredentialError, CredentialSource};
use super::secret::SecretsManagerCredentials;
use futures::future::BoxFuture;
use opensearch::auth::Credentials;
use opensearch::cert::{Certificate, CertificateValidation};
use opensearch::http::headers::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue,
};
use opensearch::http::transport::{SingleNodeConnectionPool, Transport, TransportBuilder};
use opensearch::http::{Method, Url};
use std::sync::Arc;
use std::time::Duration;

/// A complete HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub body: bytes::Bytes,
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connection(String),
}

/// Sends one bulk body; implementations never retry themselves.
pub trait BulkTransport: Send + Sync {
    fn send_bulk(
        &self,
        body: bytes::Bytes,
        gzip: bool,
    ) -> BoxFuture<'_, Result<HttpReply, SendError>>;
}

/// The transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    #[error("OpenSearch endpoint {endpoint:?} is not a URL: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("SigV4 needs AWS credentials and a region: {0}")]
    Aws(String),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error(
        "the OpenSearch credentials are in the secret {0}: it must be read first (OpenSearchTransport::connect)"
    )]
    SecretNotRead(String),
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// The answer is cut to what the sink reads (per-item status and error): a full answer repeats
/// index, id, version and shard counts for every document, about ten times the bytes to
/// receive and parse.
const BULK_QUERY: [(&str, &str); 1] = [("filter_path", "errors,items.*.status,items.*.error")];

/// `POST <endpoint>/_bulk` through the `opensearch` crate, and the other requests of
/// `loader setup` ([`OpenSearchTransport::request`]) with the same authentication.
#[derive(Debug, Clone)]
pub struct OpenSearchTransport {
    transport: Transport,
    timeout: Duration,
    /// Basic-auth credentials, sent as a header of each request.
    basic: Option<Arc<BasicAuth>>,
    /// Sent with every request (OpenSearch Dashboards wants `osd-xsrf` on every write).
    headers: HeaderMap,
}

impl OpenSearchTransport {
    /// Builds the client for `config`, reading the credentials of [`Auth::BasicSecret`] from
    /// Secrets Manager first (a client from `aws`), so a secret that cannot be read stops the
    /// start with a message naming it.
    pub async fn connect(
        config: &SinkConfig,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<Self, TransportError> {
        let Auth::BasicSecret { secret_arn } = &config.auth else {
            return Self::new(config, aws);
        };
        let aws = aws.ok_or_else(|| {
            TransportError::Aws(format!(
                "reading the secret {secret_arn} needs an AWS configuration"
            ))
        })?;
        let source: Arc<dyn CredentialSource> = Arc::new(
            SecretsManagerCredentials::from_sdk_config(aws, secret_arn.clone()),
        );
        let basic = BasicAuth::load(source).await?;
        Self::with_basic_auth(config, Arc::new(basic))
    }

    /// Builds the client for `config`. SigV4 takes credentials and region from `aws` (the
    /// default chain: Lambda role, profile, environment); `OPENSEARCH_REGION` wins over its
    /// region. [`Auth::BasicSecret`] needs [`OpenSearchTransport::connect`].
    pub fn new(
        config: &SinkConfig,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<Self, TransportError> {
        Self::build(config, aws, None)
    }

    /// Basic auth with the credentials of `basic`, whatever `config.auth` says (a caller with
    /// a source of its own).
    pub fn with_basic_auth(
        config: &SinkConfig,
        basic: Arc<BasicAuth>,
    ) -> Result<Self, TransportError> {
        Self::build(config, None, Some(basic))
    }

    fn build(
        config: &SinkConfig,
        aws: Option<&aws_config::SdkConfig>,
        basic: Option<Arc<BasicAuth>>,
    ) -> Result<Self, TransportError> {
        let url = Url::parse(&config.endpoint).map_err(|e| TransportError::Endpoint {
            endpoint: config.endpoint.clone(),
            reason: e.to_string(),
        })?;
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(config.request_timeout);
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| TransportError::CaFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let certs = Certificate::from_pem(&pem).map_err(|e| TransportError::CaFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            // Full validation against the system roots plus these.
            builder = builder.cert_validation(CertificateValidation::Full(certs));
        }
        let mut basic = basic;
        match (&config.auth, &basic) {
            (_, Some(_)) | (Auth::None, None) => {}
            (Auth::Basic { username, password }, None) => {
                basic = Some(Arc::new(BasicAuth::fixed(BasicCredentials::new(
                    username.clone(),
                    password.clone(),
                ))));
            }
            (Auth::BasicSecret { secret_arn }, None) => {
                return Err(TransportError::SecretNotRead(secret_arn.clone()));
            }
            (Auth::SigV4 { service, region }, None) => {
                let aws = aws
                    .ok_or_else(|| TransportError::Aws("no AWS configuration was loaded".into()))?;
                let provider = aws.credentials_provider().ok_or_else(|| {
                    TransportError::Aws("the AWS configuration has no credentials provider".into())
                })?;
                let region = match region {
                    Some(r) => aws_config::Region::new(r.clone()),
                    None => aws.region().cloned().ok_or_else(|| {
                        TransportError::Aws("no region: set AWS_REGION or OPENSEARCH_REGION".into())
                    })?,
                };
                builder = builder
                    .auth(Credentials::AwsSigV4(provider, region))
                    .service_name(service);
            }
        }
        let transport = builder
            .build()
            .map_err(|e| TransportError::Build(e.to_string()))?;
        Ok(Self {
            transport,
            timeout: config.request_timeout,
            basic,
            headers: HeaderMap::new(),
        })
    }

    /// The same client, sending `name: value` with every request.
    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.insert(name, HeaderValue::from_static(value));
        self
    }

    /// One request with a JSON body (or none), answered whatever its status; a 401 with
    /// credentials from a secret reads them again and sends once more, as for `_bulk`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<HttpReply, SendError> {
        let body = body.map(bytes::Bytes::from);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match &self.basic {
            None => {
                self.send_with(method, path, query, body, headers, None)
                    .await
            }
            Some(basic) => {
                basic
                    .send(|credentials| {
                        self.send_with(
                            method,
                            path,
                            query,
                            body.clone(),
                            headers.clone(),
                            Some(credentials.header()),
                        )
                    })
                    .await
            }
        }
    }
}

impl BulkTransport for OpenSearchTransport {
    fn send_bulk(
        &self,
        body: bytes::Bytes,
        gzip: bool,
    ) -> BoxFuture<'_, Result<HttpReply, SendError>> {
        Box::pin(async move {
            match &self.basic {
                None => self.post(body, gzip, None).await,
                // A 401 reads the credentials again and sends the same body once more.
                Some(basic) => {
                    basic
                        .send(|credentials| {
                            self.post(body.clone(), gzip, Some(credentials.header()))
                        })
                        .await
                }
            }
        })
    }
}

impl OpenSearchTransport {
    async fn post(
        &self,
        body: bytes::Bytes,
        gzip: bool,
        authorization: Option<HeaderValue>,
    ) -> Result<HttpReply, SendError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        self.send_with(
            Method::Post,
            "/_bulk",
            &BULK_QUERY,
            Some(body),
            headers,
            authorization,
        )
        .await
    }

    /// `headers` carry the content type; the client's own headers and `authorization` are
    /// added.
    async fn send_with(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<bytes::Bytes>,
        mut headers: HeaderMap,
        authorization: Option<HeaderValue>,
    ) -> Result<HttpReply, SendError> {
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(value) = authorization {
            headers.insert(AUTHORIZATION, value);
        }
        let query = (!query.is_empty()).then_some(query);
        let response = self
            .transport
            .send(method, path, headers, query, body, None)
            .await
            .map_err(|e| self.classify(&e))?;
        let status = response.status_code().as_u16();
        let body = response.bytes().await.map_err(|e| self.classify(&e))?;
        Ok(HttpReply { status, body })
    }

    fn classify(&self, e: &opensearch::Error) -> SendError {
        if e.is_timeout() {
            SendError::Timeout(self.timeout)
        } else {
            SendError::Connection(error_chain(e))
        }
    }
}

/// The error with its causes, since reqwest's top-level message alone ("error sending request")
/// does not say what went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = SinkConfig::new("https://127.0.0.1:9200");
        config.ca_file = Some(dir.path().join("missing.pem"));
        let err = OpenSearchTransport::new(&config, None).expect_err("missing file");
        assert!(err.to_string().contains("missing.pem"), "{err}");

        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, b"hello").expect("write");
        config.ca_file = Some(not_pem);
        let err = OpenSearchTransport::new(&config, None).expect_err("no certificate");
        assert!(err.to_string().contains("not.pem"), "{err}");
    }

    #[test]
    fn sigv4_without_aws_configuration_is_refused_clearly() {
        let mut config = SinkConfig::new("https://search-x.eu-west-1.es.amazonaws.com");
        config.auth = Auth::SigV4 {
            service: "es".into(),
            region: None,
        };
        let err = OpenSearchTransport::new(&config, None).expect_err("no aws config");
        assert!(err.to_string().contains("SigV4"), "{err}");
    }

    #[tokio::test]
    async fn a_secret_needs_reading_and_an_aws_configuration_to_read_it() {
        let mut config = SinkConfig::new("https://127.0.0.1:9200");
        let arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:opensearch-AbCdEf";
        config.auth = Auth::BasicSecret {
            secret_arn: arn.into(),
        };
        let err = OpenSearchTransport::new(&config, None).expect_err("not read");
        assert!(matches!(err, TransportError::SecretNotRead(_)), "{err}");
        let err = OpenSearchTransport::connect(&config, None)
            .await
            .expect_err("no AWS configuration");
        assert!(err.to_string().contains(arn), "{err}");
        // A caller's own credentials stand in for the secret.
        let basic = Arc::new(BasicAuth::fixed(BasicCredentials::new("u", "p")));
        assert!(OpenSearchTransport::with_basic_auth(&config, basic).is_ok());
    }

    #[tokio::test]
    async fn connection_refused_is_a_connection_error() {
        // A port nobody listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let config = SinkConfig::new(format!("http://127.0.0.1:{port}"));
        let t = OpenSearchTransport::new(&config, None).expect("transport");
        match t.send_bulk(bytes::Bytes::from_static(b"{}\n"), false).await {
            Err(SendError::Connection(reason)) => assert!(!reason.is_empty()),
            other => panic!("expected a connection error, got {other:?}"),
        }
    }
}
