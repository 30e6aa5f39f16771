//! Bulk body encoding: each item becomes a `create` action line and its source line; the body is
//! then gzip-compressed. Pure functions over bytes.

use super::BulkItem;
use flate2::write::GzEncoder;
use flate2::{Compress, Compression, FlushCompress, Status};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Why one item cannot be put into a bulk body at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("the document is empty")]
    EmptySource,
    #[error("the document holds a raw newline at byte {0}, which would break the bulk format")]
    NewlineInSource(usize),
    #[error("the document needs {size} bytes in a bulk body, over the request limit of {limit}")]
    TooLarge { size: usize, limit: usize },
}

/// Bytes of the action line before the index name: `{"create":{"_index":`.
const ACTION_PREFIX: &[u8] = br#"{"create":{"_index":"#;

/// Size the item takes in an uncompressed body (action line, source, two newlines). Exact when
/// the index and id need no JSON escaping, which holds for index names and the ids the pipeline
/// makes; a few bytes short otherwise, which the request limit's margin absorbs.
pub fn encoded_len(item: &BulkItem) -> usize {
    // {"create":{"_index":"<index>","_id":"<id>"}}\n<source>\n
    ACTION_PREFIX.len() + item.index.len() + item.id.len() + 14 + item.source.len() + 1
}

/// Checks that the item can be sent in a request of at most `limit` bytes.
pub fn check_item(item: &BulkItem, limit: usize) -> Result<(), EncodeError> {
    if item.source.iter().all(u8::is_ascii_whitespace) {
        return Err(EncodeError::EmptySource);
    }
    // memchr's SIMD search: this scan reads every byte the sink sends once more.
    if let Some(pos) = memchr::memchr(b'\n', &item.source) {
        return Err(EncodeError::NewlineInSource(pos));
    }
    let size = encoded_len(item);
    if size > limit {
        return Err(EncodeError::TooLarge { size, limit });
    }
    Ok(())
}

/// Appends the item's two lines to `out`. Index and id are JSON-escaped; the source is copied
/// as it is (callers check it with [`check_item`] first).
pub fn encode_item(item: &BulkItem, out: &mut Vec<u8>) {
    write_action_prefix(&item.index, out);
    write_id_and_source(item, out);
}

/// `{"create":{"_index":"<index>","_id":`: the part of an action line shared by an index's items.
fn write_action_prefix(index: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(ACTION_PREFIX);
    write_json_str(index, out);
    out.extend_from_slice(br#","_id":"#);
}

/// The rest of the item's two lines, after [`write_action_prefix`].
fn write_id_and_source(item: &BulkItem, out: &mut Vec<u8>) {
    crate::json_write::write_utf8(out, item.id.as_bytes());
    out.extend_from_slice(b"}}\n");
    out.extend_from_slice(&item.source);
    out.push(b'\n');
}

/// [`encode_item`] for a run of items: the action line up to the id is escaped once per index
/// name, not once per item (consecutive items share their index's `Arc`).
#[derive(Default)]
struct ItemLines {
    index: Option<Arc<str>>,
    /// `{"create":{"_index":"<index>","_id":` for `index`.
    prefix: Vec<u8>,
}

impl ItemLines {
    fn encode(&mut self, item: &BulkItem, out: &mut Vec<u8>) {
        if !self
            .index
            .as_ref()
            .is_some_and(|i| Arc::ptr_eq(i, &item.index))
        {
            self.prefix.clear();
            write_action_prefix(&item.index, &mut self.prefix);
            self.index = Some(Arc::clone(&item.index));
        }
        out.extend_from_slice(&self.prefix);
        write_id_and_source(item, out);
    }
}

/// The uncompressed bulk body for `items`.
pub fn encode_body<'a>(items: impl IntoIterator<Item = &'a BulkItem>) -> Vec<u8> {
    let items: Vec<&BulkItem> = items.into_iter().collect();
    // The exact size: a body of several MB grown by doubling is copied and faulted in again
    // at each step.
    let mut out = Vec::with_capacity(items.iter().map(|i| encoded_len(i)).sum());
    let mut lines = ItemLines::default();
    for item in items {
        lines.encode(item, &mut out);
    }
    out
}

/// Uncompressed bytes gathered before each hand-over to the compressor: small enough to stay in
/// the core's cache between being written and being compressed, large enough that the
/// compressor's per-call cost does not count.
const STAGING: usize = 128 * 1024;

/// The body for `items` gzip-compressed at `level` (1 to 9), and its uncompressed length. The
/// lines go through a small staging buffer straight into the compressor: the uncompressed body
/// (megabytes, written once and read once) never exists as a whole. zlib-rs writes the gzip
/// header and trailer itself and computes the CRC while it copies the input into its window
/// (flate2's `GzEncoder` runs a separate CRC pass over every byte). The compressor and the
/// body's buffer come from [`POOL`].
pub fn encode_gzip(items: &[&BulkItem], level: u32, size_hint: usize) -> (Vec<u8>, usize) {
    let level = level.clamp(1, 9);
    let mut compressor = pooled_compressor(level);
    let mut out = pooled_body(size_hint / 4 + 64);
    let mut staging = Vec::with_capacity(STAGING + 4096);
    let mut total = 0usize;
    let mut lines = ItemLines::default();
    let mut ok = true;
    for item in items {
        lines.encode(item, &mut staging);
        if staging.len() >= STAGING {
            total += staging.len();
            ok &= deflate_into(&mut compressor, &staging, &mut out, FlushCompress::None);
            staging.clear();
        }
    }
    total += staging.len();
    ok &= deflate_into(&mut compressor, &staging, &mut out, FlushCompress::Finish);
    if !ok {
        // zlib-rs does not fail on valid input and room to write; should it, the plain
        // GzEncoder path gives the same bytes on the wire.
        let body = encode_body(items.iter().copied());
        let total = body.len();
        return (compress(body, level), total);
    }
    give_back_compressor(level, compressor);
    (out, total)
}

/// Feeds `input` to the compressor, growing `out` as needed; with `Finish`, until the stream
/// is complete. False when the compressor stops making progress (never expected).
fn deflate_into(
    c: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> bool {
    loop {
        if out.capacity() - out.len() < 16 * 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let (in_before, out_before) = (c.total_in(), c.total_out());
        let Ok(status) = c.compress_vec(input, out, flush) else {
            return false;
        };
        let consumed = usize::try_from(c.total_in() - in_before).unwrap_or(input.len());
        input = input.get(consumed..).unwrap_or_default();
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            _ => input.is_empty(),
        };
        if done {
            return true;
        }
        if consumed == 0 && c.total_out() == out_before {
            return false;
        }
    }
}

/// Compressors and body buffers kept between requests. A fresh compressor allocates and clears
/// its window and hash tables (hundreds of KB); a fresh body buffer is memory the allocator
/// got back from the system, faulted in (and zeroed, 2 MB at a time with transparent huge
/// pages) on first write: both cost more than compressing a small request.
struct Pool {
    compressors: Vec<(u32, Compress)>,
    bodies: Vec<Vec<u8>>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    compressors: Vec::new(),
    bodies: Vec::new(),
});

/// At most this many compressors and body buffers are kept.
const POOL_KEEP: usize = 8;

/// A body buffer larger than this is not kept (a compressed 8 MiB request is 0.5 to 1 MB).
const POOL_MAX_BODY: usize = 4 * 1024 * 1024;

fn pooled_compressor(level: u32) -> Compress {
    let found = POOL.lock().ok().and_then(|mut pool| {
        let at = pool.compressors.iter().position(|(l, _)| *l == level)?;
        Some(pool.compressors.swap_remove(at).1)
    });
    match found {
        Some(mut c) => {
            c.reset();
            c
        }
        None => Compress::new_gzip(Compression::new(level), 15),
    }
}

fn give_back_compressor(level: u32, c: Compress) {
    if let Ok(mut pool) = POOL.lock()
        && pool.compressors.len() < POOL_KEEP
    {
        pool.compressors.push((level, c));
    }
}

fn pooled_body(capacity: usize) -> Vec<u8> {
    let mut body = POOL
        .lock()
        .ok()
        .and_then(|mut pool| pool.bodies.pop())
        .unwrap_or_default();
    body.clear();
    body.reserve(capacity);
    body
}

/// Returns a sent body's buffer to the pool (see [`RecycledBody`]).
fn recycle_body(body: Vec<u8>) {
    if body.capacity() == 0 || body.capacity() > POOL_MAX_BODY {
        return;
    }
    if let Ok(mut pool) = POOL.lock()
        && pool.bodies.len() < POOL_KEEP
    {
        pool.bodies.push(body);
    }
}

/// A request body that goes back to the pool once the HTTP client has dropped it.
pub struct RecycledBody(Vec<u8>);

impl RecycledBody {
    /// The body as `Bytes` for the HTTP client; its buffer is reused when the last clone drops.
    pub fn into_bytes(body: Vec<u8>) -> bytes::Bytes {
        bytes::Bytes::from_owner(RecycledBody(body))
    }
}

impl AsRef<[u8]> for RecycledBody {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for RecycledBody {
    fn drop(&mut self) {
        recycle_body(std::mem::take(&mut self.0));
    }
}

/// gzip at `level` (1 to 9); level 0 returns the body unchanged (sent without
/// `Content-Encoding`).
pub fn compress(body: Vec<u8>, level: u32) -> Vec<u8> {
    if level == 0 {
        return body;
    }
    let mut enc = GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        Compression::new(level.min(9)),
    );
    // Writing into a Vec cannot fail.
    match enc.write_all(&body).and_then(|()| enc.finish()) {
        Ok(out) => out,
        Err(_) => body,
    }
}

/// The project's JSON string writer (serde_json's escapes): its check for characters to escape
/// works on eight bytes at a time, where a per-byte test showed up for every document's id.
fn write_json_str(s: &str, out: &mut Vec<u8>) {
    crate::json_write::write_str(out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Origin;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        GzDecoder::new(gz)
            .read_to_end(&mut back)
            .expect("valid gzip");
        back
    }

    fn item(index: &str, id: &str, source: &str) -> BulkItem {
        BulkItem::new(
            index,
            id,
            source.as_bytes().to_vec(),
            Origin::new("s3://b/k", 0),
        )
    }

    #[test]
    fn create_lines_with_the_given_id() {
        let body = encode_body(&[
            item("log-aws-waf-2024-05", "abc", r#"{"a":1}"#),
            item("log-aws-waf-2024-05", "def", r#"{"b":"x"}"#),
        ]);
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            "{\"create\":{\"_index\":\"log-aws-waf-2024-05\",\"_id\":\"abc\"}}\n{\"a\":1}\n\
             {\"create\":{\"_index\":\"log-aws-waf-2024-05\",\"_id\":\"def\"}}\n{\"b\":\"x\"}\n"
        );
    }

    #[test]
    fn encoded_len_is_exact_for_plain_names() {
        let i = item("log-aws-cloudtrail-2024-05", "0f1e2d3c", r#"{"x":[1,2,3]}"#);
        let mut out = Vec::new();
        encode_item(&i, &mut out);
        assert_eq!(out.len(), encoded_len(&i));
    }

    #[test]
    fn odd_ids_are_escaped_into_valid_json() {
        let i = item("idx", "a\"b\\c\u{1}", "{}");
        let mut out = Vec::new();
        encode_item(&i, &mut out);
        let action_line = out.split(|b| *b == b'\n').next().expect("line");
        let action: serde_json::Value = serde_json::from_slice(action_line).expect("valid JSON");
        assert_eq!(action["create"]["_id"], "a\"b\\c\u{1}");
    }

    #[test]
    fn items_that_would_break_the_body_are_refused() {
        assert_eq!(
            check_item(&item("i", "1", "{\"a\":\n1}"), 1000),
            Err(EncodeError::NewlineInSource(5))
        );
        assert_eq!(
            check_item(&item("i", "1", "  "), 1000),
            Err(EncodeError::EmptySource)
        );
        let big = item("i", "1", &format!("{{\"a\":\"{}\"}}", "x".repeat(100)));
        assert!(matches!(
            check_item(&big, 50),
            Err(EncodeError::TooLarge { limit: 50, .. })
        ));
        assert_eq!(check_item(&big, 1000), Ok(()));
    }

    #[test]
    fn gzip_round_trips_and_level_zero_is_plain() {
        let body = encode_body(&[item("i", "1", r#"{"msg":"hello hello hello hello"}"#)]);
        let gz = compress(body.clone(), 1);
        assert_ne!(gz, body);
        assert_eq!(gunzip(&gz), body);
        assert_eq!(compress(body.clone(), 0), body);
    }

    #[test]
    fn bodies_hold_each_items_own_index() {
        let a: Arc<str> = Arc::from("idx-a");
        let items = vec![
            BulkItem::new(Arc::clone(&a), "1", b"{}".to_vec(), Origin::new("o", 0)),
            BulkItem::new("idx-b\"", "2", b"{}".to_vec(), Origin::new("o", 1)),
            BulkItem::new(Arc::clone(&a), "3", b"{}".to_vec(), Origin::new("o", 2)),
            BulkItem::new("idx-a", "4", b"{}".to_vec(), Origin::new("o", 3)),
        ];
        let mut expected = Vec::new();
        for item in &items {
            encode_item(item, &mut expected);
        }
        assert_eq!(encode_body(&items), expected);
        let refs: Vec<&BulkItem> = items.iter().collect();
        let (gz, len) = encode_gzip(&refs, 1, 0);
        assert_eq!(len, expected.len());
        assert_eq!(gunzip(&gz), expected);
    }

    #[test]
    fn streamed_gzip_holds_the_same_body() {
        // Enough items to pass through the staging buffer several times.
        let items: Vec<BulkItem> = (0..2000)
            .map(|i| {
                item(
                    "idx",
                    &i.to_string(),
                    &format!("{{\"n\":{i},\"pad\":\"{}\"}}", "p".repeat(i % 300)),
                )
            })
            .collect();
        let body = encode_body(&items);
        let refs: Vec<&BulkItem> = items.iter().collect();
        // Twice: the second time with a compressor and a buffer from the pool.
        let (gz, len) = encode_gzip(&refs, 1, body.len());
        recycle_body(gz);
        let (gz, len2) = encode_gzip(&refs, 1, body.len());
        assert_eq!(len2, len);
        assert_eq!(len, body.len());
        assert_eq!(gunzip(&gz), body);
    }
}
