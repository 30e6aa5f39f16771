//! A bulk endpoint that accepts and discards: for the end-to-end benchmark, so the sink's speed
//! does not hide the loader's. It reads each `POST .../_bulk` body in full, gunzips it when it
//! is gzip, and answers every item as created with a correct per-item response (index, id,
//! status 201), as OpenSearch would. Run it in its own process (on its own core) so its work is
//! not counted in the loader's CPU time:
//!
//! ```sh
//! cargo run --release -p loader --example bulk_discard -- 127.0.0.1:9250
//! ```
//!
//! On exit (stdin closed or SIGTERM) it prints the requests, items and bytes it took.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    items: AtomicU64,
    bytes_in: AtomicU64,
    bytes_plain: AtomicU64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9250".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bulk_discard listening on {}", listener.local_addr()?);
    let counters = Arc::new(Counters::default());
    let serve = {
        let counters = Arc::clone(&counters);
        async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counters = Arc::clone(&counters);
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&counters), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = serve => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!(
        "bulk_discard: {} requests, {} items, {} bytes received, {} bytes after gunzip",
        counters.requests.load(Ordering::Relaxed),
        counters.items.load(Ordering::Relaxed),
        counters.bytes_in.load(Ordering::Relaxed),
        counters.bytes_plain.load(Ordering::Relaxed),
    );
    Ok(())
}

async fn handle(
    counters: Arc<Counters>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let is_bulk = req.uri().path().ends_with("/_bulk");
    // The sink asks for status and error only (`filter_path`), as OpenSearch then answers.
    let short = req.uri().query().is_some_and(|q| q.contains("filter_path"));
    let gzip = req
        .headers()
        .get(hyper::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = req.into_body().collect().await?.to_bytes();
    if !is_bulk {
        return Ok(json(
            StatusCode::OK,
            br#"{"version":{"number":"2.17.0"}}"#.to_vec(),
        ));
    }
    counters.requests.fetch_add(1, Ordering::Relaxed);
    counters
        .bytes_in
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let plain = if gzip {
        let mut out = Vec::with_capacity(body.len() * 8);
        if let Err(e) = flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut out) {
            return Ok(json(
                StatusCode::BAD_REQUEST,
                format!(r#"{{"error":{{"type":"parse_exception","reason":"bad gzip: {e}"}},"status":400}}"#)
                    .into_bytes(),
            ));
        }
        out
    } else {
        body.to_vec()
    };
    counters
        .bytes_plain
        .fetch_add(plain.len() as u64, Ordering::Relaxed);
    match answer(&plain, short) {
        Ok((items, answer)) => {
            counters.items.fetch_add(items, Ordering::Relaxed);
            Ok(json(StatusCode::OK, answer))
        }
        Err(reason) => Ok(json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error":{"type":"illegal_argument_exception","reason":reason},"status":400})
                .to_string()
                .into_bytes(),
        )),
    }
}

/// The `_bulk` answer for an NDJSON body: one `created` item per action line, naming its index
/// and id (only the status when `short`, as `filter_path` asks). Every action but `delete` is followed by a document line, which is skipped.
fn answer(body: &[u8], short: bool) -> Result<(u64, Vec<u8>), String> {
    let mut out = Vec::with_capacity(64 + body.len() / 8);
    out.extend_from_slice(br#"{"took":0,"errors":false,"items":["#);
    let mut lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let mut n = 0u64;
    while let Some(action) = lines.next() {
        let value: serde_json::Value = serde_json::from_slice(action)
            .map_err(|e| format!("action line {} is not JSON: {e}", n + 1))?;
        let Some((op, meta)) = value.as_object().and_then(|o| o.iter().next()) else {
            return Err(format!("action line {} names no operation", n + 1));
        };
        if op != "delete" && lines.next().is_none() {
            return Err(format!("action line {} has no document", n + 1));
        }
        if n > 0 {
            out.push(b',');
        }
        if short {
            serde_json::to_writer(&mut out, &serde_json::json!({op: {"status": 201}}))
                .map_err(|e| e.to_string())?;
            n += 1;
            continue;
        }
        let item = serde_json::json!({
            op: {
                "_index": meta.get("_index"),
                "_id": meta.get("_id"),
                "_version": 1,
                "result": "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "status": 201,
            }
        });
        serde_json::to_writer(&mut out, &item).map_err(|e| e.to_string())?;
        n += 1;
    }
    out.extend_from_slice(b"]}");
    Ok((n, out))
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
