//! One way to build AWS clients, so every binary can be pointed at a local emulator (or a VPC
//! endpoint) with `AWS_ENDPOINT_URL` and no code change.

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the default credential and region chain. `AWS_ENDPOINT_URL` (and the per-service
/// `AWS_ENDPOINT_URL_<SERVICE>` variables) are honoured by the chain itself.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// Same as [`sdk_config`], with an explicit endpoint taking precedence over the environment.
pub async fn sdk_config_with_endpoint(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// An S3 client for `config`. With a custom endpoint, addressing is path-style: emulators and
/// most S3-compatible endpoints do not resolve `<bucket>.<host>` names.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(config);
    if config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some() {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// `base` whose credentials come from assuming `role` (with an external id when the role's
/// trust policy asks for one). The SDK's identity cache keeps them and renews them five
/// minutes before they expire.
pub async fn assumed_role_config(
    base: &SdkConfig,
    role: &str,
    session_name: &str,
    external_id: Option<&str>,
) -> SdkConfig {
    let mut provider = aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name(session_name)
        .configure(base);
    if let Some(id) = external_id {
        provider = provider.external_id(id);
    }
    let provider = provider.build().await;
    let cache = aws_config::identity::IdentityCache::lazy()
        .buffer_time(std::time::Duration::from_secs(300))
        .build();
    base.to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .identity_cache(cache)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn explicit_endpoint_is_kept() {
        let config = sdk_config_with_endpoint(Some("http://127.0.0.1:9")).await;
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:9"));
    }
}
