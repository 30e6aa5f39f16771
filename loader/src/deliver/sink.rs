//! Where the documents of an object go: the OpenSearch bulk sink, or NDJSON lines (plain
//! documents or `_bulk` lines) into a file or stdout.

use crate::sink::{BulkItem, BulkSink, ObjectFailure, SinkError, SinkStats, WriteOutcome};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Takes a chunk of documents (of one object or several) and accounts for every one of them:
/// the objects whose documents were not all stored are named in the outcome's failures.
pub trait DocumentSink: Send + Sync {
    fn write(&self, items: Vec<BulkItem>) -> BoxFuture<'_, WriteOutcome>;

    /// Makes everything written so far durable: an object is finished only once this covered
    /// it. Sinks whose writes are durable by themselves (OpenSearch, files) have nothing to do.
    fn commit(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether writes are only durable at a commit (then objects are finished at commits).
    fn commits(&self) -> bool {
        false
    }
}

impl DocumentSink for BulkSink {
    fn write(&self, items: Vec<BulkItem>) -> BoxFuture<'_, WriteOutcome> {
        Box::pin(BulkSink::write(self, items))
    }
}

impl<T: DocumentSink + ?Sized> DocumentSink for Arc<T> {
    fn write(&self, items: Vec<BulkItem>) -> BoxFuture<'_, WriteOutcome> {
        (**self).write(items)
    }

    fn commit(&self) -> BoxFuture<'_, Result<(), String>> {
        (**self).commit()
    }

    fn commits(&self) -> bool {
        (**self).commits()
    }
}

/// The line format of [`NdjsonSink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdjsonFormat {
    /// `{"_index":..,"_id":..,"_source":{..}}`, one document per line.
    Documents,
    /// OpenSearch `_bulk` lines: `{"create":{"_index":..,"_id":..}}` then the document.
    Bulk,
}

/// NDJSON into any writer, the same bytes as [`crate::pipeline::Document::write_ndjson`] and
/// [`crate::pipeline::Document::write_bulk`]. A chunk is encoded and written while the lock is
/// held, so the lines of concurrent objects never interleave. The writes themselves block (a
/// file or stdout); they go in pieces of about 1 MB, so they happen rarely.
pub struct NdjsonSink<W> {
    out: Mutex<Output<W>>,
    format: NdjsonFormat,
}

/// The writer and the buffer lines are encoded in before each write. The buffer is kept and
/// written whenever it holds [`WRITE_PIECE`] bytes: encoding a whole chunk of several MB into
/// a new buffer faulted that memory in again for every chunk, a large part of writing lines.
struct Output<W> {
    writer: W,
    encoded: Vec<u8>,
}

/// How much is encoded before it is written: large enough that writes are rare, small enough
/// to stay in the cache.
const WRITE_PIECE: usize = 1 << 20;

impl<W: Write + Send> NdjsonSink<W> {
    pub fn new(out: W, format: NdjsonFormat) -> Self {
        Self {
            out: Mutex::new(Output {
                writer: out,
                encoded: Vec::new(),
            }),
            format,
        }
    }

    /// Flushes and returns the writer.
    pub fn into_inner(self) -> std::io::Result<W> {
        let mut out = self
            .out
            .into_inner()
            .map_err(|_| std::io::Error::other("the output lock was poisoned"))?;
        out.writer.flush()?;
        Ok(out.writer)
    }

    /// Flushes the writer (buffered files, stdout) at the end of a run.
    pub fn flush(&self) -> std::io::Result<()> {
        match self.out.lock() {
            Ok(mut out) => out.writer.flush(),
            Err(_) => Err(std::io::Error::other("the output lock was poisoned")),
        }
    }

    fn encode(&self, item: &BulkItem, buf: &mut Vec<u8>) {
        match self.format {
            NdjsonFormat::Bulk => crate::sink::encoder::encode_item(item, buf),
            NdjsonFormat::Documents => {
                buf.extend_from_slice(b"{\"_index\":");
                json_str(&item.index, buf);
                buf.extend_from_slice(b",\"_id\":");
                json_str(item.id.as_str(), buf);
                buf.extend_from_slice(b",\"_source\":");
                buf.extend_from_slice(&item.source);
                buf.extend_from_slice(b"}\n");
            }
        }
    }

    /// Encodes and writes `items`, holding the lock throughout so that other chunks' lines
    /// come before or after them; the bytes written.
    fn encode_and_write(&self, items: &[BulkItem]) -> std::io::Result<usize> {
        let mut out = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("the output lock was poisoned"))?;
        let Output { writer, encoded } = &mut *out;
        let mut written = 0;
        encoded.clear();
        for item in items {
            self.encode(item, encoded);
            if encoded.len() >= WRITE_PIECE {
                writer.write_all(encoded)?;
                written += encoded.len();
                encoded.clear();
            }
        }
        writer.write_all(encoded)?;
        written += encoded.len();
        encoded.clear();
        if encoded.capacity() > 4 * WRITE_PIECE {
            // One huge document grew it.
            *encoded = Vec::new();
        }
        Ok(written)
    }
}

fn json_str(s: &str, out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

impl<W: Write + Send> DocumentSink for NdjsonSink<W> {
    fn write(&self, items: Vec<BulkItem>) -> BoxFuture<'_, WriteOutcome> {
        Box::pin(async move {
            let started = Instant::now();
            let written = self.encode_and_write(&items);
            let n = items.len() as u64;
            let mut stats = SinkStats {
                requests: 1,
                response_time: started.elapsed(),
                ..SinkStats::default()
            };
            match written {
                Ok(bytes) => {
                    stats.created = n;
                    stats.bytes_sent = bytes as u64;
                    stats.bytes_uncompressed = bytes as u64;
                    WriteOutcome {
                        stats,
                        failures: Vec::new(),
                        created: (0..items.len()).collect(),
                    }
                }
                Err(e) => {
                    stats.failed = n;
                    WriteOutcome {
                        stats,
                        failures: failures_per_object(&items, &format!("cannot write: {e}")),
                        created: Vec::new(),
                    }
                }
            }
        })
    }
}

/// One [`SinkError::Refused`] per object of `items`, in name order.
pub(crate) fn failures_per_object(items: &[BulkItem], reason: &str) -> Vec<ObjectFailure> {
    let mut per_object: BTreeMap<&Arc<str>, u64> = BTreeMap::new();
    for item in items {
        *per_object.entry(&item.origin.object).or_default() += 1;
    }
    per_object
        .into_iter()
        .map(|(object, items)| ObjectFailure {
            object: Arc::clone(object),
            error: SinkError::Refused {
                object: object.to_string(),
                items,
                reason: reason.to_owned(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Document;
    use crate::sink::Origin;

    fn doc(id: &str) -> Document {
        let mut source = crate::ecs::Doc::new();
        source.insert("message".into(), serde_json::json!("a \"quoted\"\nline"));
        source.insert("n".into(), serde_json::json!(1.5));
        Document {
            index: "log-aws-waf-2024-05".into(),
            id: id.into(),
            source: source.into(),
        }
    }

    #[tokio::test]
    async fn same_bytes_as_the_documents_own_lines() {
        let docs = [doc("a"), doc("b\"c")];
        let items: Vec<BulkItem> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| BulkItem::from_document(d.clone(), Origin::new("o", i as u64)))
            .collect();
        for (format, bulk) in [(NdjsonFormat::Documents, false), (NdjsonFormat::Bulk, true)] {
            let mut expected = Vec::new();
            crate::pipeline::write_documents(&docs, bulk, &mut expected).expect("write");
            let sink = NdjsonSink::new(Vec::new(), format);
            let outcome = DocumentSink::write(&sink, items.clone()).await;
            assert!(outcome.is_complete());
            assert_eq!(outcome.stats.created, 2);
            assert_eq!(outcome.stats.bytes_sent, expected.len() as u64);
            // A second chunk follows the first, each written once.
            let outcome = DocumentSink::write(&sink, items[1..].to_vec()).await;
            let mut second = Vec::new();
            crate::pipeline::write_documents(&docs[1..], bulk, &mut second).expect("write");
            assert_eq!(outcome.stats.bytes_sent, second.len() as u64);
            expected.extend_from_slice(&second);
            assert_eq!(sink.into_inner().expect("flush"), expected);
        }
    }

    #[tokio::test]
    async fn a_chunk_larger_than_a_piece_is_written_whole_and_in_order() {
        let docs: Vec<Document> = (0..7)
            .map(|i| {
                let mut source = crate::ecs::Doc::new();
                let text = format!("{i}").repeat(WRITE_PIECE / 3);
                source.insert("message".into(), serde_json::json!(text));
                Document {
                    index: "log-aws-waf-2024-05".into(),
                    id: format!("d{i}"),
                    source: source.into(),
                }
            })
            .collect();
        let items: Vec<BulkItem> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| BulkItem::from_document(d.clone(), Origin::new("o", i as u64)))
            .collect();
        let mut expected = Vec::new();
        crate::pipeline::write_documents(&docs, true, &mut expected).expect("write");
        assert!(expected.len() > 2 * WRITE_PIECE);
        let sink = NdjsonSink::new(Vec::new(), NdjsonFormat::Bulk);
        let outcome = DocumentSink::write(&sink, items).await;
        assert_eq!(outcome.stats.bytes_sent, expected.len() as u64);
        assert!(sink.into_inner().expect("flush") == expected);
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_write_error_fails_every_object_of_the_chunk() {
        let items = vec![
            BulkItem::from_document(doc("a"), Origin::new("o1", 0)),
            BulkItem::from_document(doc("b"), Origin::new("o2", 0)),
            BulkItem::from_document(doc("c"), Origin::new("o2", 1)),
        ];
        let outcome =
            DocumentSink::write(&NdjsonSink::new(Broken, NdjsonFormat::Bulk), items).await;
        assert_eq!(outcome.stats.failed, 3);
        assert_eq!(outcome.failures.len(), 2);
        let text = outcome.failure_of("o2").expect("o2 failed").to_string();
        assert!(
            text.contains("o2: 2 document(s)") && text.contains("disk full"),
            "{text}"
        );
    }
}
