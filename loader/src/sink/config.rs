//! Sink configuration: endpoint, authentication, TLS and limits, from explicit values or the
//! environment (the Lambda is configured only through environment variables).

use super::retry::RetryPolicy;
use opensearch::http::Url;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Default target size of one bulk request body (uncompressed).
pub const DEFAULT_BULK_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Default hard limit: no request body (uncompressed) is ever larger. Amazon OpenSearch Service
/// rejects bodies over 10 MiB on its smallest instance types.
pub const DEFAULT_REQUEST_MAX_BYTES: usize = 10 * 1024 * 1024;
/// Default maximum number of documents in one bulk request.
pub const DEFAULT_BULK_MAX_ITEMS: usize = 5_000;
/// Default gzip level: level 1 gives most of the size reduction for little CPU.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;
/// Default number of bulk requests in flight at once, across all writes of one sink.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;
/// Default time one HTTP request may take before it counts as failed (and is retried).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How requests authenticate.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// No authentication (a local cluster, or a proxy that signs).
    None,
    /// HTTP basic auth (fine-grained access control's internal users).
    Basic { username: String, password: String },
    /// HTTP basic auth with the credentials of a Secrets Manager secret (ARN or name), read at
    /// start and again when OpenSearch answers 401 (see [`super::credentials`]).
    BasicSecret { secret_arn: String },
    /// AWS Signature Version 4 with the default credential chain. `service` is `es` for Amazon
    /// OpenSearch Service and `aoss` for OpenSearch Serverless; `region` overrides the chain's.
    SigV4 {
        service: String,
        region: Option<String>,
    },
}

impl fmt::Debug for Auth {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Auth::BasicSecret { secret_arn } => f
                .debug_struct("BasicSecret")
                .field("secret_arn", secret_arn)
                .finish(),
            Auth::SigV4 { service, region } => f
                .debug_struct("SigV4")
                .field("service", service)
                .field("region", region)
                .finish(),
        }
    }
}

/// A configuration that cannot work, named by the setting at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("no OpenSearch endpoint: give one with --opensearch or OPENSEARCH_ENDPOINT")]
    MissingEndpoint,
    #[error("OpenSearch endpoint {endpoint:?} is not an http(s) URL: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    #[error("{name}={value:?} is not valid: {reason}")]
    BadValue {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("OPENSEARCH_AUTH=basic needs OPENSEARCH_SECRET_ARN, or {0} in the environment")]
    MissingCredential(&'static str),
    #[error(
        "the bulk size of {bulk} bytes is over the request limit of {limit} bytes: lower OPENSEARCH_BULK_MAX_BYTES or raise OPENSEARCH_REQUEST_MAX_BYTES"
    )]
    BulkOverLimit { bulk: usize, limit: usize },
}

/// Everything the sink needs to know; build with [`SinkConfig::new`] or
/// [`SinkConfig::from_env`], then adjust the public fields.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    /// Base URL of the cluster, e.g. `https://search-logs-abc.eu-west-1.es.amazonaws.com`.
    pub endpoint: String,
    pub auth: Auth,
    /// PEM file with extra CA certificates to trust besides the system's (TLS is always
    /// verified).
    pub ca_file: Option<PathBuf>,
    /// Target size of one request body before compression.
    pub bulk_max_bytes: usize,
    /// No request body is ever larger than this; a single document above it is quarantined.
    pub request_max_bytes: usize,
    pub bulk_max_items: usize,
    /// gzip level 1 to 9 for request bodies; 0 sends them uncompressed.
    pub gzip_level: u32,
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

impl SinkConfig {
    /// Defaults for `endpoint`, with the authentication the endpoint's host suggests.
    pub fn new(endpoint: impl Into<String>) -> Self {
        let endpoint = endpoint.into();
        let auth = default_auth(&endpoint);
        Self {
            endpoint,
            auth,
            ca_file: None,
            bulk_max_bytes: DEFAULT_BULK_MAX_BYTES,
            request_max_bytes: DEFAULT_REQUEST_MAX_BYTES,
            bulk_max_items: DEFAULT_BULK_MAX_ITEMS,
            gzip_level: DEFAULT_GZIP_LEVEL,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }

    /// Reads the configuration from the process environment; `endpoint` (a command-line flag)
    /// wins over `OPENSEARCH_ENDPOINT`.
    pub fn from_env(endpoint: Option<&str>) -> Result<Self, ConfigError> {
        Self::from_lookup(endpoint, |name| std::env::var(name).ok())
    }

    /// Same as [`SinkConfig::from_env`] with the variables read through `env`, so it is testable.
    ///
    /// Variables: `OPENSEARCH_ENDPOINT`, `OPENSEARCH_AUTH` (`sigv4`, `basic`, `none`; default
    /// `sigv4` for `*.amazonaws.com` hosts, else `none`), `OPENSEARCH_SERVICE` (`es` or `aoss`),
    /// `OPENSEARCH_REGION`, `OPENSEARCH_SECRET_ARN` (basic auth from a Secrets Manager secret;
    /// implies `basic` when `OPENSEARCH_AUTH` is unset, and wins over `OPENSEARCH_USERNAME` /
    /// `OPENSEARCH_PASSWORD`), `OPENSEARCH_USERNAME`, `OPENSEARCH_PASSWORD`, `OPENSEARCH_CA_FILE`,
    /// `OPENSEARCH_BULK_MAX_BYTES`, `OPENSEARCH_REQUEST_MAX_BYTES`, `OPENSEARCH_BULK_MAX_ITEMS`,
    /// `OPENSEARCH_GZIP_LEVEL`, `OPENSEARCH_MAX_IN_FLIGHT`, `OPENSEARCH_REQUEST_TIMEOUT_SECONDS`,
    /// `OPENSEARCH_RETRY_SECONDS`.
    pub fn from_lookup(
        endpoint: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let endpoint = endpoint
            .map(str::to_owned)
            .or_else(|| get("OPENSEARCH_ENDPOINT"))
            .ok_or(ConfigError::MissingEndpoint)?;
        let mut config = Self::new(endpoint.trim());

        let service = match get("OPENSEARCH_SERVICE") {
            Some(s) => match s.trim() {
                "es" | "aoss" => s.trim().to_owned(),
                _ => {
                    return Err(ConfigError::BadValue {
                        name: "OPENSEARCH_SERVICE",
                        value: s,
                        reason: "expected `es` (OpenSearch Service) or `aoss` (Serverless)".into(),
                    });
                }
            },
            None => default_service(&config.endpoint).to_owned(),
        };
        let region = get("OPENSEARCH_REGION");
        let secret_arn = get("OPENSEARCH_SECRET_ARN").map(|v| v.trim().to_owned());
        let from_secret = |secret_arn: String| {
            for name in ["OPENSEARCH_USERNAME", "OPENSEARCH_PASSWORD"] {
                if get(name).is_some() {
                    tracing::warn!(
                        variable = name,
                        secret = %secret_arn,
                        "ignored: the OpenSearch credentials come from OPENSEARCH_SECRET_ARN"
                    );
                }
            }
            Auth::BasicSecret { secret_arn }
        };
        config.auth = match (get("OPENSEARCH_AUTH").as_deref().map(str::trim), secret_arn) {
            (None | Some("basic"), Some(secret_arn)) => from_secret(secret_arn),
            (Some(other @ ("none" | "sigv4")), Some(secret_arn)) => {
                return Err(ConfigError::BadValue {
                    name: "OPENSEARCH_SECRET_ARN",
                    value: secret_arn,
                    reason: format!(
                        "the secret holds basic-auth credentials, but OPENSEARCH_AUTH is `{other}`: set OPENSEARCH_AUTH=basic or unset OPENSEARCH_SECRET_ARN"
                    ),
                });
            }
            (None, None) => match default_auth(&config.endpoint) {
                Auth::SigV4 { .. } => Auth::SigV4 { service, region },
                other => other,
            },
            (Some("none"), None) => Auth::None,
            (Some("sigv4"), None) => Auth::SigV4 { service, region },
            (Some("basic"), None) => Auth::Basic {
                username: get("OPENSEARCH_USERNAME")
                    .ok_or(ConfigError::MissingCredential("OPENSEARCH_USERNAME"))?,
                password: env("OPENSEARCH_PASSWORD")
                    .ok_or(ConfigError::MissingCredential("OPENSEARCH_PASSWORD"))?,
            },
            (Some(other), _) => {
                return Err(ConfigError::BadValue {
                    name: "OPENSEARCH_AUTH",
                    value: other.to_owned(),
                    reason: "expected `sigv4`, `basic` or `none`".into(),
                });
            }
        };
        config.ca_file = get("OPENSEARCH_CA_FILE").map(PathBuf::from);

        let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            get(name)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|e| ConfigError::BadValue {
                        name,
                        value: v.clone(),
                        reason: e.to_string(),
                    })
                })
                .transpose()
        };
        if let Some(n) = number("OPENSEARCH_BULK_MAX_BYTES")? {
            config.bulk_max_bytes = to_usize("OPENSEARCH_BULK_MAX_BYTES", n)?;
        }
        if let Some(n) = number("OPENSEARCH_REQUEST_MAX_BYTES")? {
            config.request_max_bytes = to_usize("OPENSEARCH_REQUEST_MAX_BYTES", n)?;
        }
        if let Some(n) = number("OPENSEARCH_BULK_MAX_ITEMS")? {
            config.bulk_max_items = to_usize("OPENSEARCH_BULK_MAX_ITEMS", n)?;
        }
        if let Some(n) = number("OPENSEARCH_GZIP_LEVEL")? {
            config.gzip_level = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = number("OPENSEARCH_MAX_IN_FLIGHT")? {
            config.max_in_flight = to_usize("OPENSEARCH_MAX_IN_FLIGHT", n)?;
        }
        if let Some(n) = number("OPENSEARCH_REQUEST_TIMEOUT_SECONDS")? {
            config.request_timeout = Duration::from_secs(n);
        }
        if let Some(n) = number("OPENSEARCH_RETRY_SECONDS")? {
            config.retry.max_elapsed = Duration::from_secs(n);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the values against each other; the sink refuses a configuration that fails.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match Url::parse(&self.endpoint) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            Ok(u) => {
                return Err(ConfigError::BadEndpoint {
                    endpoint: self.endpoint.clone(),
                    reason: format!("scheme `{}` or missing host", u.scheme()),
                });
            }
            Err(e) => {
                return Err(ConfigError::BadEndpoint {
                    endpoint: self.endpoint.clone(),
                    reason: e.to_string(),
                });
            }
        }
        let positive = |name: &'static str, value: usize| {
            if value == 0 {
                Err(ConfigError::BadValue {
                    name,
                    value: "0".into(),
                    reason: "must be at least 1".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("OPENSEARCH_BULK_MAX_BYTES", self.bulk_max_bytes)?;
        positive("OPENSEARCH_REQUEST_MAX_BYTES", self.request_max_bytes)?;
        positive("OPENSEARCH_BULK_MAX_ITEMS", self.bulk_max_items)?;
        positive("OPENSEARCH_MAX_IN_FLIGHT", self.max_in_flight)?;
        if self.bulk_max_bytes > self.request_max_bytes {
            return Err(ConfigError::BulkOverLimit {
                bulk: self.bulk_max_bytes,
                limit: self.request_max_bytes,
            });
        }
        if self.gzip_level > 9 {
            return Err(ConfigError::BadValue {
                name: "OPENSEARCH_GZIP_LEVEL",
                value: self.gzip_level.to_string(),
                reason: "expected 0 (no compression) to 9".into(),
            });
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::BadValue {
                name: "OPENSEARCH_REQUEST_TIMEOUT_SECONDS",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

fn to_usize(name: &'static str, n: u64) -> Result<usize, ConfigError> {
    usize::try_from(n).map_err(|e| ConfigError::BadValue {
        name,
        value: n.to_string(),
        reason: e.to_string(),
    })
}

fn host_of(endpoint: &str) -> String {
    Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// AWS-hosted domains need SigV4; anything else starts without authentication.
fn default_auth(endpoint: &str) -> Auth {
    if host_of(endpoint).ends_with(".amazonaws.com") {
        Auth::SigV4 {
            service: default_service(endpoint).to_owned(),
            region: None,
        }
    } else {
        Auth::None
    }
}

/// Serverless collection endpoints are `<id>.<region>.aoss.amazonaws.com`.
fn default_service(endpoint: &str) -> &'static str {
    if host_of(endpoint).ends_with(".aoss.amazonaws.com") {
        "aoss"
    } else {
        "es"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_follow_the_issue() {
        let c = SinkConfig::new("http://127.0.0.1:9200");
        assert_eq!(c.bulk_max_bytes, 8 * 1024 * 1024);
        assert_eq!(c.request_max_bytes, 10 * 1024 * 1024);
        assert_eq!(c.gzip_level, 1);
        assert_eq!(c.auth, Auth::None);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn aws_hosts_default_to_sigv4_with_the_right_service() {
        let es = SinkConfig::from_lookup(
            Some("https://search-logs-abc.eu-west-1.es.amazonaws.com"),
            lookup(&[]),
        )
        .expect("valid");
        assert_eq!(
            es.auth,
            Auth::SigV4 {
                service: "es".into(),
                region: None
            }
        );
        let aoss = SinkConfig::from_lookup(
            Some("https://abc123.us-east-1.aoss.amazonaws.com"),
            lookup(&[("OPENSEARCH_REGION", "us-east-1")]),
        )
        .expect("valid");
        assert_eq!(
            aoss.auth,
            Auth::SigV4 {
                service: "aoss".into(),
                region: Some("us-east-1".into())
            }
        );
    }

    #[test]
    fn flag_wins_over_environment_and_env_sets_everything() {
        let c = SinkConfig::from_lookup(
            Some("http://flag:9200"),
            lookup(&[
                ("OPENSEARCH_ENDPOINT", "http://env:9200"),
                ("OPENSEARCH_AUTH", "basic"),
                ("OPENSEARCH_USERNAME", "loader"),
                ("OPENSEARCH_PASSWORD", "s3cret"),
                ("OPENSEARCH_CA_FILE", "/etc/ca.pem"),
                ("OPENSEARCH_BULK_MAX_BYTES", "1000"),
                ("OPENSEARCH_REQUEST_MAX_BYTES", "2000"),
                ("OPENSEARCH_BULK_MAX_ITEMS", "10"),
                ("OPENSEARCH_GZIP_LEVEL", "0"),
                ("OPENSEARCH_MAX_IN_FLIGHT", "2"),
                ("OPENSEARCH_REQUEST_TIMEOUT_SECONDS", "5"),
                ("OPENSEARCH_RETRY_SECONDS", "30"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.endpoint, "http://flag:9200");
        assert_eq!(
            c.auth,
            Auth::Basic {
                username: "loader".into(),
                password: "s3cret".into()
            }
        );
        assert!(!format!("{:?}", c.auth).contains("s3cret"));
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            (c.bulk_max_bytes, c.request_max_bytes, c.bulk_max_items),
            (1000, 2000, 10)
        );
        assert_eq!((c.gzip_level, c.max_in_flight), (0, 2));
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        assert_eq!(c.retry.max_elapsed, Duration::from_secs(30));

        let from_env =
            SinkConfig::from_lookup(None, lookup(&[("OPENSEARCH_ENDPOINT", "http://env:9200")]))
                .expect("valid");
        assert_eq!(from_env.endpoint, "http://env:9200");
    }

    #[test]
    fn the_secret_arn_means_basic_auth_and_wins_over_the_environment_pair() {
        let arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:opensearch-AbCdEf";
        let secret = Auth::BasicSecret {
            secret_arn: arn.into(),
        };
        for vars in [
            vec![("OPENSEARCH_SECRET_ARN", arn)],
            vec![("OPENSEARCH_AUTH", "basic"), ("OPENSEARCH_SECRET_ARN", arn)],
            vec![
                ("OPENSEARCH_AUTH", "basic"),
                ("OPENSEARCH_SECRET_ARN", arn),
                ("OPENSEARCH_USERNAME", "env-user"),
                ("OPENSEARCH_PASSWORD", "env-password"),
            ],
        ] {
            let c = SinkConfig::from_lookup(Some("https://search.example.com"), lookup(&vars))
                .expect("valid");
            assert_eq!(c.auth, secret, "{vars:?}");
        }
        // Even on an AWS host, where the default would be SigV4.
        let c = SinkConfig::from_lookup(
            Some("https://search-logs-abc.eu-west-1.es.amazonaws.com"),
            lookup(&[("OPENSEARCH_SECRET_ARN", arn)]),
        )
        .expect("valid");
        assert_eq!(c.auth, secret);
        // An empty value is unset.
        let c = SinkConfig::from_lookup(
            Some("http://x:9200"),
            lookup(&[("OPENSEARCH_SECRET_ARN", " ")]),
        )
        .expect("valid");
        assert_eq!(c.auth, Auth::None);

        for auth in ["sigv4", "none"] {
            let err = SinkConfig::from_lookup(
                Some("http://x:9200"),
                lookup(&[("OPENSEARCH_AUTH", auth), ("OPENSEARCH_SECRET_ARN", arn)]),
            )
            .expect_err("contradiction")
            .to_string();
            assert!(
                err.contains("OPENSEARCH_SECRET_ARN") && err.contains(auth),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(
            SinkConfig::from_lookup(None, lookup(&[])),
            Err(ConfigError::MissingEndpoint)
        );
        let err = SinkConfig::from_lookup(Some("ftp://x"), lookup(&[])).expect_err("bad scheme");
        assert!(err.to_string().contains("ftp://x"), "{err}");
        let err = SinkConfig::from_lookup(
            Some("http://x:9200"),
            lookup(&[("OPENSEARCH_AUTH", "kerberos")]),
        )
        .expect_err("bad auth");
        assert!(err.to_string().contains("OPENSEARCH_AUTH"), "{err}");
        assert_eq!(
            SinkConfig::from_lookup(
                Some("http://x:9200"),
                lookup(&[("OPENSEARCH_AUTH", "basic"), ("OPENSEARCH_USERNAME", "u")])
            ),
            Err(ConfigError::MissingCredential("OPENSEARCH_PASSWORD"))
        );
        let err = SinkConfig::from_lookup(
            Some("http://x:9200"),
            lookup(&[("OPENSEARCH_BULK_MAX_BYTES", "lots")]),
        )
        .expect_err("not a number");
        assert!(
            err.to_string().contains("OPENSEARCH_BULK_MAX_BYTES"),
            "{err}"
        );
        assert_eq!(
            SinkConfig::from_lookup(
                Some("http://x:9200"),
                lookup(&[("OPENSEARCH_BULK_MAX_BYTES", "20000000")])
            ),
            Err(ConfigError::BulkOverLimit {
                bulk: 20_000_000,
                limit: DEFAULT_REQUEST_MAX_BYTES
            })
        );
        let err = SinkConfig::from_lookup(
            Some("http://x:9200"),
            lookup(&[("OPENSEARCH_GZIP_LEVEL", "12")]),
        )
        .expect_err("level");
        assert!(err.to_string().contains("OPENSEARCH_GZIP_LEVEL"), "{err}");
        let err = SinkConfig::from_lookup(
            Some("http://x:9200"),
            lookup(&[("OPENSEARCH_SERVICE", "s3")]),
        )
        .expect_err("service");
        assert!(err.to_string().contains("aoss"), "{err}");
    }
}
