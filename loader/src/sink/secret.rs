//! The OpenSearch credentials in a Secrets Manager secret (`OPENSEARCH_SECRET_ARN`): its
//! SecretString is JSON, `{"username": "..", "password": ".."}`, as the secret of an OpenSearch
//! Service master user is. Reading it at start, not through the function's environment, keeps
//! the password out of the Lambda configuration, and reading it again after a 401 follows a
//! rotation.

use super::credentials::{BasicCredentials, CredentialError, CredentialSource};
use futures::future::BoxFuture;

/// Reads the credentials with GetSecretValue (the current version of the secret).
#[derive(Debug, Clone)]
pub struct SecretsManagerCredentials {
    client: aws_sdk_secretsmanager::Client,
    secret: String,
}

impl SecretsManagerCredentials {
    /// `secret` is the secret's ARN (a name works too).
    pub fn new(client: aws_sdk_secretsmanager::Client, secret: impl Into<String>) -> Self {
        Self {
            client,
            secret: secret.into(),
        }
    }

    /// A Secrets Manager client from the AWS configuration (`AWS_ENDPOINT_URL` and
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` apply).
    pub fn from_sdk_config(aws: &aws_config::SdkConfig, secret: impl Into<String>) -> Self {
        Self::new(aws_sdk_secretsmanager::Client::new(aws), secret)
    }
}

impl CredentialSource for SecretsManagerCredentials {
    fn read(&self) -> BoxFuture<'_, Result<BasicCredentials, CredentialError>> {
        Box::pin(async move {
            let answer = self
                .client
                .get_secret_value()
                .secret_id(&self.secret)
                .send()
                .await
                .map_err(|e| CredentialError::Read {
                    secret: self.secret.clone(),
                    reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
                })?;
            let text = answer
                .secret_string()
                .ok_or_else(|| CredentialError::NoSecretString {
                    secret: self.secret.clone(),
                })?;
            parse_secret(&self.secret, text)
        })
    }

    fn describe(&self) -> String {
        format!("secret {}", self.secret)
    }
}

/// The credentials in a SecretString. Errors say what is missing and never quote the text:
/// it holds the password.
pub fn parse_secret(secret: &str, text: &str) -> Result<BasicCredentials, CredentialError> {
    // Into a Value first: a syntax error names a line and column, never the text, whereas
    // deserializing into a struct quotes values of the wrong type.
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| CredentialError::NotJson {
            secret: secret.to_owned(),
            reason: format!("{} at line {} column {}", kind(&e), e.line(), e.column()),
        })?;
    let Some(object) = value.as_object() else {
        return Err(CredentialError::NotJson {
            secret: secret.to_owned(),
            reason: "the text is JSON but not an object".into(),
        });
    };
    let field = |key: &'static str| {
        object
            .get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or(CredentialError::MissingKey {
                secret: secret.to_owned(),
                key,
            })
    };
    Ok(BasicCredentials::new(
        field("username")?,
        field("password")?,
    ))
}

fn kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "the text ends early",
        _ => "not JSON",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:opensearch-AbCdEf";

    #[test]
    fn username_and_password_from_the_json() {
        let c = parse_secret(ARN, r#"{"username":"loader","password":"p4ss","note":1}"#)
            .expect("credentials");
        assert_eq!(c, BasicCredentials::new("loader", "p4ss"));
    }

    #[test]
    fn errors_name_the_secret_and_the_problem_but_never_the_text() {
        let cases = [
            ("hunter2-not-json", "not JSON"),
            (r#"{"username":"loader","password":"hunter2"#, "ends early"),
            (r#"["hunter2"]"#, "not an object"),
            (r#"{"username":"loader"}"#, "`password`"),
            (r#"{"password":"hunter2"}"#, "`username`"),
            (r#"{"username":"loader","password":7}"#, "`password`"),
            (r#"{"username":"","password":"hunter2"}"#, "`username`"),
        ];
        for (text, needle) in cases {
            let err = parse_secret(ARN, text).expect_err(text).to_string();
            assert!(err.contains(ARN) && err.contains(needle), "{text}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}
