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
/// [`crate::pipeline::Document::write_bulk`]. Each chunk is encoded first, then written under
/// the lock in one piece, so concurrent objects never interleave inside a line. The write
/// itself blocks (a file or stdout); chunks are large, so it happens rarely.
pub struct NdjsonSink<W> {
    out: Mutex<W>,
    format: NdjsonFormat,
}

impl<W: Write + Send> NdjsonSink<W> {
    pub fn new(out: W, format: NdjsonFormat) -> Self {
        Self {
            out: Mutex::new(out),
            format,
        }
    }

    /// Flushes and returns the writer.
    pub fn into_inner(self) -> std::io::Result<W> {
        let mut out = self
            .out
            .into_inner()
            .map_err(|_| std::io::Error::other("the output lock was poisoned"))?;
        out.flush()?;
        Ok(out)
    }

    /// Flushes the writer (buffered files, stdout) at the end of a run.
    pub fn flush(&self) -> std::io::Result<()> {
        match self.out.lock() {
            Ok(mut out) => out.flush(),
            Err(_) => Err(std::io::Error::other("the output lock was poisoned")),
        }
    }

    fn encode(&self, items: &[BulkItem]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(items.iter().map(|i| i.source.len() + 96).sum::<usize>());
        for item in items {
            match self.format {
                NdjsonFormat::Bulk => crate::sink::encoder::encode_item(item, &mut buf),
                NdjsonFormat::Documents => {
                    buf.extend_from_slice(b"{\"_index\":");
                    json_str(&item.index, &mut buf);
                    buf.extend_from_slice(b",\"_id\":");
                    json_str(item.id.as_str(), &mut buf);
                    buf.extend_from_slice(b",\"_source\":");
                    buf.extend_from_slice(&item.source);
                    buf.extend_from_slice(b"}\n");
                }
            }
        }
        buf
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
            let buf = self.encode(&items);
            let written = match self.out.lock() {
                Ok(mut out) => out.write_all(&buf),
                Err(_) => Err(std::io::Error::other("the output lock was poisoned")),
            };
            let n = items.len() as u64;
            let mut stats = SinkStats {
                requests: 1,
                response_time: started.elapsed(),
                ..SinkStats::default()
            };
            match written {
                Ok(()) => {
                    stats.created = n;
                    stats.bytes_sent = buf.len() as u64;
                    stats.bytes_uncompressed = buf.len() as u64;
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
            assert_eq!(sink.into_inner().expect("flush"), expected);
        }
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
