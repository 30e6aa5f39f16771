//! The local index as a [`DocumentSink`]: each document replaces any with its `_id`; nothing is
//! visible or durable before [`DocumentSink::commit`].

use super::{IndexError, LocalIndex};
use crate::deliver::DocumentSink;
use crate::deliver::sink::failures_per_object;
use crate::index::schema::IndexSchema;
use crate::sink::{BulkItem, SinkStats, WriteOutcome};
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, RwLock};
use std::time::Instant;
use tantivy::{IndexWriter, Searcher, TantivyDocument, Term};

/// Memory the index writer buffers per indexing thread before it writes a segment.
const HEAP_PER_THREAD: usize = 96 * 1024 * 1024;

pub struct IndexSink {
    /// Adding and deleting share the writer; a commit takes it alone.
    writer: RwLock<IndexWriter<TantivyDocument>>,
    fields: IndexSchema,
    dir: String,
    /// Which ids may already be in the index, so that only those pay for a delete: tantivy
    /// keeps every delete until the commit and then looks each one up in every new segment,
    /// which on a fresh load cost more memory than the documents themselves.
    known: KnownIds,
}

/// The ids that may have a document: those of the last commit before this writer opened
/// (looked up in its term dictionary) and hashes of those added since. A hash shared by two
/// ids only costs a needless delete; an id never escapes both.
struct KnownIds {
    committed: Option<Searcher>,
    added: Mutex<HashSet<u64>>,
}

impl KnownIds {
    fn may_exist(&self, term: &Term, id: &str) -> bool {
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        let fresh = match self.added.lock() {
            Ok(mut added) => added.insert(hasher.finish()),
            Err(_) => return true,
        };
        if !fresh {
            return true;
        }
        match &self.committed {
            Some(searcher) => searcher.doc_freq(term).map_or(true, |n| n > 0),
            None => false,
        }
    }
}

impl IndexSink {
    /// The writer of `index`; refused while another process writes it.
    pub fn new(index: &LocalIndex) -> Result<Self, IndexError> {
        let dir = index.dir.display().to_string();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        let writer = index
            .index
            .writer_with_num_threads(threads, HEAP_PER_THREAD * threads)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => IndexError::Busy { dir: dir.clone() },
                other => IndexError::Tantivy {
                    dir: dir.clone(),
                    reason: other.to_string(),
                },
            })?;
        let committed = index
            .index
            .reader_builder()
            .reload_policy(tantivy::ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| IndexError::Tantivy {
                dir: dir.clone(),
                reason: e.to_string(),
            })?
            .searcher();
        Ok(Self {
            writer: RwLock::new(writer),
            fields: index.fields.clone(),
            dir,
            known: KnownIds {
                committed: (committed.num_docs() > 0).then_some(committed),
                added: Mutex::new(HashSet::new()),
            },
        })
    }

    /// Commits what is left and waits for the writer's merges: the index is complete on disk.
    pub fn close(self) -> Result<(), IndexError> {
        let fail = |reason: String| IndexError::Tantivy {
            dir: self.dir.clone(),
            reason,
        };
        let mut writer = self
            .writer
            .into_inner()
            .map_err(|_| fail("the writer lock was poisoned".to_owned()))?;
        writer.commit().map_err(|e| fail(e.to_string()))?;
        writer
            .wait_merging_threads()
            .map_err(|e| fail(e.to_string()))
    }

    fn add(&self, writer: &IndexWriter<TantivyDocument>, item: &BulkItem) -> Result<(), String> {
        let text = std::str::from_utf8(&item.source).map_err(|e| e.to_string())?;
        let document = self
            .fields
            .document(&item.index, item.id.as_str(), text)
            .map_err(|e| e.to_string())?;
        let term = Term::from_field_text(self.fields.id, item.id.as_str());
        if self.known.may_exist(&term, item.id.as_str()) {
            writer.delete_term(term);
        }
        writer.add_document(document).map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl DocumentSink for IndexSink {
    fn write(&self, items: Vec<BulkItem>) -> BoxFuture<'_, WriteOutcome> {
        Box::pin(async move {
            let started = Instant::now();
            let mut stats = SinkStats {
                requests: 1,
                ..SinkStats::default()
            };
            let writer = match self.writer.read() {
                Ok(writer) => writer,
                Err(_) => {
                    stats.failed = items.len() as u64;
                    return WriteOutcome {
                        stats,
                        failures: failures_per_object(&items, "the index writer failed earlier"),
                        created: Vec::new(),
                    };
                }
            };
            let mut failed: Vec<BulkItem> = Vec::new();
            let mut reason = String::new();
            let mut created = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match self.add(&writer, item) {
                    Ok(()) => created.push(i),
                    Err(e) => {
                        reason = format!("cannot index: {e}");
                        failed.push(item.clone());
                    }
                }
            }
            stats.created = created.len() as u64;
            stats.failed = failed.len() as u64;
            stats.bytes_uncompressed = items.iter().map(|i| i.source.len() as u64).sum();
            stats.response_time = started.elapsed();
            WriteOutcome {
                stats,
                failures: failures_per_object(&failed, &reason),
                created,
            }
        })
    }

    fn commits(&self) -> bool {
        true
    }

    fn commit(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let mut writer = self
                .writer
                .write()
                .map_err(|_| "the index writer failed earlier".to_owned())?;
            writer
                .commit()
                .map(|_| ())
                .map_err(|e| format!("{}: cannot commit the index: {e}", self.dir))
        })
    }
}
