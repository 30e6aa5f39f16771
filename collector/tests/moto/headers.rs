//! moto accepts but ignores the expected-bucket-owner check, so the headers of a real
//! PutObject request are read here from a local socket that answers like S3.

use crate::*;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Accepts one request, answers 200 and returns the request head (lowercased) and body.
async fn capture_one(listener: TcpListener) -> (String, Vec<u8>) {
    let (mut socket, _) = listener.accept().await.expect("accept");
    let mut buffer = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before the request head ended");
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().expect("content-length"))
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "connection closed before the body ended");
        buffer.extend_from_slice(&chunk[..n]);
    }
    socket
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .expect("answer");
    (head, buffer[head_end..].to_vec())
}

#[tokio::test]
async fn put_object_carries_encryption_and_owner_headers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(capture_one(listener));

    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(format!("http://{address}"))
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "headers-test",
        ))
        .load()
        .await;
    let store = S3Store::new(
        shared::aws::s3_client(&config),
        "central-logs",
        Some(KMS_KEY_ARN.to_owned()),
        Some("999988887777".to_owned()),
    );
    invoke(store, SECURITY_HUB_EVENT).await.expect("stored");
    let (head, body) = server.await.expect("server");

    assert!(
        head.starts_with(
            "put /central-logs/awslogs/111122223333/securityhub/eu-west-1/2024/05/20/09/"
        ),
        "{head}"
    );
    for header in [
        "x-amz-expected-bucket-owner: 999988887777",
        "x-amz-server-side-encryption: aws:kms",
        &format!(
            "x-amz-server-side-encryption-aws-kms-key-id: {}",
            KMS_KEY_ARN.to_lowercase()
        ),
        "content-type: application/json",
        "content-encoding: gzip",
    ] {
        assert!(
            head.lines().any(|l| l == header),
            "{header} missing in:\n{head}"
        );
    }
    assert_eq!(body[..2], [0x1f, 0x8b], "body is gzip");
}
