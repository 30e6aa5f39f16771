//! Basic-auth credentials from a Secrets Manager secret (moto), through a proxy that demands
//! them: read at start, read again after a 401 once the password was rotated.

use super::proxy::{FaultProxy, Faults};
use super::*;
use loader::sink::{
    Auth, BasicCredentials, CredentialError, CredentialSource, SecretsManagerCredentials, SinkError,
};
use std::sync::Mutex;

const REGION: &str = "us-east-1";

async fn secrets() -> (aws_config::SdkConfig, aws_sdk_secretsmanager::Client) {
    let aws = tests::moto_config(REGION).await;
    let client = aws_sdk_secretsmanager::Client::new(&aws);
    (aws, client)
}

/// Creates a secret holding `text`; returns its ARN.
async fn create_secret(client: &aws_sdk_secretsmanager::Client, what: &str, text: &str) -> String {
    client
        .create_secret()
        .name(tests::unique_name(what))
        .secret_string(text)
        .send()
        .await
        .expect("CreateSecret")
        .arn
        .expect("secret ARN")
}

fn credentials_json(password: &str) -> String {
    json!({"username": "loader", "password": password}).to_string()
}

fn header(password: &str) -> String {
    BasicCredentials::new("loader", password)
        .header()
        .to_str()
        .expect("ascii header")
        .to_owned()
}

#[tokio::test]
async fn the_reader_gets_the_credentials_of_a_secret_and_names_it_when_it_cannot() {
    let (_, client) = secrets().await;
    let arn = create_secret(&client, "opensearch-ok", &credentials_json("p4ss")).await;
    let reader = SecretsManagerCredentials::new(client.clone(), &arn);
    let credentials = reader.read().await.expect("credentials");
    assert_eq!(credentials, BasicCredentials::new("loader", "p4ss"));
    assert!(reader.describe().contains(&arn));

    let not_json = create_secret(&client, "opensearch-text", "hunter2").await;
    let err = SecretsManagerCredentials::new(client.clone(), &not_json)
        .read()
        .await
        .expect_err("not JSON");
    assert!(matches!(err, CredentialError::NotJson { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&not_json) && !err.to_string().contains("hunter2"),
        "{err}"
    );

    let no_password = create_secret(&client, "opensearch-user", r#"{"username":"loader"}"#).await;
    let err = SecretsManagerCredentials::new(client.clone(), &no_password)
        .read()
        .await
        .expect_err("no password");
    assert_eq!(
        err,
        CredentialError::MissingKey {
            secret: no_password,
            key: "password"
        }
    );

    let missing = format!("{arn}-missing");
    let err = SecretsManagerCredentials::new(client, &missing)
        .read()
        .await
        .expect_err("no such secret");
    assert!(matches!(err, CredentialError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing), "{err}");
}

#[tokio::test]
async fn a_rotated_password_is_read_again_after_a_401_and_a_lasting_401_fails_the_object() {
    let (aws, client) = secrets().await;
    let arn = create_secret(&client, "opensearch-rotated", &credentials_json("first")).await;
    let required = Arc::new(Mutex::new(header("first")));
    let proxy = FaultProxy::start(
        &tests::opensearch_url(),
        Faults {
            require_authorization: Some(Arc::clone(&required)),
            ..Faults::default()
        },
    )
    .await;
    let index = format!("{}-2024-05", index_prefix("secret"));
    let mut config = test_config(&proxy.url);
    config.auth = Auth::BasicSecret {
        secret_arn: arn.clone(),
    };
    config.retry.max_elapsed = Duration::from_secs(5);
    let dir = tempfile::tempdir().expect("tempdir");
    // The sink as the Lambda builds it: the secret is read from the configuration, now.
    let sink = BulkSink::connect_with(
        &config,
        Arc::new(FolderQuarantine::new(dir.path().join("quarantine"))),
        Some(&aws),
    )
    .await
    .expect("sink with the secret's credentials");
    let c = &proxy.counters;

    let first = "s3://logs/AWSLogs/111122223333/secret-1.json.gz";
    let out = sink
        .write(make_items(first, 20, std::slice::from_ref(&index)))
        .await;
    assert!(out.is_complete(), "{:?}", out.failures);
    assert_eq!((c.get(&c.responses_401), count(&index).await), (0, 20));

    // The password is rotated: in the secret, then on the cluster.
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(credentials_json("second"))
        .send()
        .await
        .expect("PutSecretValue");
    *required.lock().expect("lock") = header("second");
    let second = "s3://logs/AWSLogs/111122223333/secret-2.json.gz";
    let out = sink
        .write(make_items(second, 20, std::slice::from_ref(&index)))
        .await;
    assert!(out.is_complete(), "{:?}", out.failures);
    assert_eq!(out.stats.created, 20);
    assert_eq!(
        c.get(&c.responses_401),
        1,
        "one refusal, then the new password"
    );
    assert_eq!(count(&index).await, 40);
    let (last, _) = c
        .last_authorization
        .lock()
        .expect("lock")
        .clone()
        .expect("header");
    assert_eq!(last, header("second"));

    // The cluster takes a password the secret does not hold: the 401 stays, the object fails.
    *required.lock().expect("lock") = header("third");
    let third = "s3://logs/AWSLogs/111122223333/secret-3.json.gz";
    let out = sink
        .write(make_items(third, 20, std::slice::from_ref(&index)))
        .await;
    assert_eq!((out.stats.created, out.stats.failed), (0, 20));
    match out.failure_of(third) {
        Some(SinkError::Refused { reason, .. }) => {
            assert!(reason.contains("401"), "{reason}");
            assert!(
                !reason.contains("second") && !reason.contains("third"),
                "{reason}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(count(&index).await, 40);
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_stops_the_start_naming_it() {
    let (aws, client) = secrets().await;
    let arn = create_secret(&client, "opensearch-broken", r#"{"user":"loader"}"#).await;
    let mut config = test_config(&tests::opensearch_url());
    config.auth = Auth::BasicSecret {
        secret_arn: arn.clone(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let err = BulkSink::connect_with(
        &config,
        Arc::new(FolderQuarantine::new(dir.path().join("quarantine"))),
        Some(&aws),
    )
    .await
    .err()
    .expect("no username in the secret");
    let text = err.to_string();
    assert!(text.contains(&arn) && text.contains("`username`"), "{text}");
}
