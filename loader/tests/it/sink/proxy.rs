//! A fault-injecting HTTP proxy between the sink and osmem-server: it produces the failures a
//! real cluster produces (per-item 429, whole-request 503, connection resets, 413, timeouts,
//! 401 for credentials other than the ones it is told to take), which the in-memory server
//! never does by itself.

use bytes::Bytes;
use flate2::read::GzDecoder;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Which faults to inject. Requests and items are numbered from 0 in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Every Nth item (N = 100 is 1%) is answered 429 and not forwarded.
    pub item_429_every: Option<u64>,
    /// Every Nth request is answered 503 without forwarding.
    pub request_503_every: Option<u64>,
    /// These requests get their connection reset after the body was read.
    pub reset_requests: Vec<u64>,
    /// Requests whose decoded body is larger are answered 413.
    pub max_body_bytes: Option<usize>,
    /// These requests are held this long, then dropped (the client times out first).
    pub stall_requests: Vec<u64>,
    pub stall_for: Duration,
    /// Requests without exactly this `Authorization` header are answered 401. The test may
    /// change it while the proxy runs (a password rotated on the cluster).
    pub require_authorization: Option<Arc<Mutex<String>>>,
    /// Every request waits this long before anything else happens (a slow cluster).
    pub delay: Duration,
    /// While true, the endpoint is gone: connections are reset as they come, and so are
    /// requests on connections already open.
    pub down: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// GET requests whose path contains one of these are answered 500 (S3's InternalError).
    pub fail_paths: Vec<String>,
    /// GET requests whose path contains one of these are held for `stall_for`, then reset.
    pub stall_paths: Vec<String>,
}

/// What the proxy did, to check the faults really happened.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub items: AtomicU64,
    pub items_429: AtomicU64,
    pub responses_503: AtomicU64,
    pub resets: AtomicU64,
    pub responses_413: AtomicU64,
    pub stalls: AtomicU64,
    pub responses_401: AtomicU64,
    /// Connections and requests reset while the endpoint was down.
    pub refused_down: AtomicU64,
    pub responses_500: AtomicU64,
    pub forwarded: AtomicU64,
    /// The `authorization` header of the last request, and whether it had
    /// `x-amz-content-sha256`.
    pub last_authorization: Mutex<Option<(String, bool)>>,
}

impl Counters {
    pub fn get(&self, counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

pub struct FaultProxy {
    pub url: String,
    pub counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    upstream: String,
    faults: Faults,
    counters: Arc<Counters>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str, faults: Faults) -> Self {
        Self::start_with(upstream, faults, None).await
    }

    /// Same, over HTTPS with the given certificate chain and key (PEM).
    pub async fn start_tls(
        upstream: &str,
        faults: Faults,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem).expect("key PEM");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server TLS configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let mut proxy = Self::start_with(upstream, faults, Some(acceptor)).await;
        proxy.url = proxy.url.replacen("http://", "https://", 1);
        proxy
    }

    async fn start_with(
        upstream: &str,
        faults: Faults,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let counters = Arc::new(Counters::default());
        let state = Arc::new(State {
            upstream: upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
            faults,
            counters: Arc::clone(&counters),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Closing a connection then sends RST, not FIN: a real reset for the client.
                let _ = stream.set_zero_linger();
                if is_down(&state.faults) {
                    state.counters.refused_down.fetch_add(1, Ordering::SeqCst);
                    drop(stream);
                    continue;
                }
                let state = Arc::clone(&state);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { handle(state, req).await }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            // A client that refuses the certificate ends the handshake here.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        Self {
            url: format!("http://{addr}"),
            counters,
            task,
        }
    }
}

pub(crate) type Reply = Response<Full<Bytes>>;

pub(crate) fn reply(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by the fault proxy")
    }
}

impl std::error::Error for Reset {}

fn is_down(faults: &Faults) -> bool {
    faults
        .down
        .as_ref()
        .is_some_and(|d| d.load(Ordering::SeqCst))
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Reply, Reset> {
    let c = &state.counters;
    let n = c.requests.fetch_add(1, Ordering::SeqCst);
    if !state.faults.delay.is_zero() {
        tokio::time::sleep(state.faults.delay).await;
    }
    if is_down(&state.faults) {
        c.refused_down.fetch_add(1, Ordering::SeqCst);
        return Err(Reset);
    }
    if req.method() == hyper::Method::GET {
        let path = req.uri().path().to_owned();
        let f = &state.faults;
        if f.fail_paths.iter().any(|p| path.contains(p.as_str())) {
            c.responses_500.fetch_add(1, Ordering::SeqCst);
            let mut r = reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected</Message></Error>",
            );
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/xml"),
            );
            return Ok(r);
        }
        if f.stall_paths.iter().any(|p| path.contains(p.as_str())) {
            c.stalls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(f.stall_for).await;
            return Err(Reset);
        }
    }
    let (parts, body) = req.into_parts();
    let authorization = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .map(|auth| auth.to_str().unwrap_or("").to_owned());
    if let Some(auth) = &authorization {
        let has_sha = parts.headers.contains_key("x-amz-content-sha256");
        *c.last_authorization.lock().expect("lock") = Some((auth.clone(), has_sha));
    }
    let raw = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|_| Reset)?;
    let gzip = parts
        .headers
        .get(hyper::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let decoded = if gzip {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("the sink sends valid gzip");
        out
    } else {
        raw.to_vec()
    };
    let f = &state.faults;

    if let Some(required) = &f.require_authorization {
        let required = required.lock().expect("lock").clone();
        if authorization.as_deref() != Some(required.as_str()) {
            c.responses_401.fetch_add(1, Ordering::SeqCst);
            return Ok(reply(StatusCode::UNAUTHORIZED, "Unauthorized"));
        }
    }
    if f.reset_requests.contains(&n) {
        c.resets.fetch_add(1, Ordering::SeqCst);
        return Err(Reset);
    }
    if f.stall_requests.contains(&n) {
        c.stalls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(f.stall_for).await;
        return Err(Reset);
    }
    if f.request_503_every
        .is_some_and(|every| n % every == every - 1)
    {
        c.responses_503.fetch_add(1, Ordering::SeqCst);
        return Ok(reply(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":{"type":"unavailable","reason":"injected 503"},"status":503}"#,
        ));
    }
    if f.max_body_bytes.is_some_and(|max| decoded.len() > max) {
        c.responses_413.fetch_add(1, Ordering::SeqCst);
        return Ok(reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request Entity Too Large",
        ));
    }
    if parts.uri.path() != "/_bulk" {
        return Ok(forward(&state, &parts, decoded).await);
    }

    // Split the body into (action, source) pairs and pick the items to throttle.
    let text = String::from_utf8(decoded).expect("utf-8 body");
    let lines: Vec<&str> = text.lines().collect();
    let mut keep = String::new();
    let mut plan: Vec<Option<Value>> = Vec::new(); // None: forwarded; Some: injected answer
    for pair in lines.chunks(2) {
        let item_no = c.items.fetch_add(1, Ordering::SeqCst);
        if f.item_429_every
            .is_some_and(|every| item_no % every == every - 1)
        {
            c.items_429.fetch_add(1, Ordering::SeqCst);
            let action: Value = serde_json::from_str(pair[0]).expect("action line");
            plan.push(Some(json!({"create": {
                "_index": action["create"]["_index"],
                "_id": action["create"]["_id"],
                "status": 429,
                "error": {"type": "es_rejected_execution_exception",
                          "reason": "rejected execution of coordinating operation (injected)"}
            }})));
        } else {
            for line in pair {
                keep.push_str(line);
                keep.push('\n');
            }
            plan.push(None);
        }
    }
    if plan.iter().all(Option::is_none) {
        return Ok(forward(&state, &parts, keep.into_bytes()).await);
    }
    let mut upstream_items = Vec::new().into_iter();
    if !keep.is_empty() {
        let answer = forward(&state, &parts, keep.into_bytes()).await;
        if answer.status() != StatusCode::OK {
            return Ok(answer);
        }
        let body = answer
            .into_body()
            .collect()
            .await
            .expect("buffered body")
            .to_bytes();
        let parsed: Value = serde_json::from_slice(&body).expect("bulk answer JSON");
        upstream_items = parsed["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter();
    }
    let items: Vec<Value> = plan
        .into_iter()
        .map(|p| {
            p.unwrap_or_else(|| {
                upstream_items
                    .next()
                    .expect("one answer per forwarded item")
            })
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        json!({"took": 1, "errors": true, "items": items}).to_string(),
    ))
}

/// Sends `body` (decoded) to the upstream server and returns its answer.
async fn forward(state: &State, parts: &hyper::http::request::Parts, body: Vec<u8>) -> Reply {
    state.counters.forwarded.fetch_add(1, Ordering::SeqCst);
    forward_to(&state.upstream, parts, body).await
}

/// Sends a request to `upstream` (`host:port`) as it came, with `body`, and returns the answer.
pub(crate) async fn forward_to(
    upstream: &str,
    parts: &hyper::http::request::Parts,
    body: Vec<u8>,
) -> Reply {
    let stream = TcpStream::connect(upstream)
        .await
        .expect("upstream reachable");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("upstream handshake");
    tokio::spawn(conn);
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    // The request as it came (signatures, checksums, ranges), with the body as decoded.
    let mut builder = Request::builder()
        .method(parts.method.clone())
        .uri(path)
        .header(hyper::header::HOST, upstream);
    for (name, value) in &parts.headers {
        use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
        if ![HOST, CONTENT_LENGTH, CONTENT_ENCODING, TRANSFER_ENCODING].contains(name) {
            builder = builder.header(name, value);
        }
    }
    if !parts.headers.contains_key(hyper::header::CONTENT_TYPE) {
        builder = builder.header(hyper::header::CONTENT_TYPE, "application/x-ndjson");
    }
    let req = builder.body(Full::new(Bytes::from(body))).expect("request");
    let answer = sender.send_request(req).await.expect("upstream answer");
    let (answer_parts, answer_body) = answer.into_parts();
    let body = answer_body
        .collect()
        .await
        .expect("upstream body")
        .to_bytes();
    let mut r = reply(answer_parts.status, body);
    for (name, value) in &answer_parts.headers {
        use hyper::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
        if ![CONTENT_LENGTH, TRANSFER_ENCODING].contains(name) {
            r.headers_mut().insert(name, value.clone());
        }
    }
    r
}
