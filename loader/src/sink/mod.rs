//! OpenSearch bulk sink: ECS documents -> `_bulk` requests, exactly once in effect.
//!
//! Every document is sent as a `create` operation with its deterministic `_id`, so a retried
//! request or a redelivered object never duplicates: an item that already exists answers 409 and
//! is counted as a duplicate that was loaded before. Only the items that failed are retried
//! (per-item 429/5xx, whole-request 429/5xx, timeouts, connection errors), with exponential
//! backoff and jitter up to a bounded time; a 413 halves the request; a document OpenSearch
//! rejects for good (mapping errors and other per-item 4xx) goes to a [`Quarantine`] with its
//! origin and the error. When retries run out, the objects whose items were not loaded are
//! reported as failed, so the caller fails them as a whole and they are delivered again.
//!
//! One file per concern: [`config`] (endpoint, auth, limits), [`credentials`] (basic-auth
//! credentials and their refresh after a 401), [`secret`] (those credentials in Secrets
//! Manager), [`encoder`] (items -> NDJSON and gzip), [`request_builder`] (items -> requests
//! within the byte and count limits), [`response`] (bulk answers -> per-item results),
//! [`retry`] (the retry decision, pure), [`quarantine`], [`transport`] (the HTTP edge) and
//! [`service`] (the loop tying them together).

pub mod config;
pub mod credentials;
pub mod encoder;
pub mod quarantine;
pub mod request_builder;
pub mod response;
pub mod retry;
pub mod secret;
pub mod service;
pub mod stats;
pub mod transport;

use bytes::{Bytes, BytesMut};
use std::sync::Arc;

pub use config::{Auth, ConfigError, SinkConfig};
pub use credentials::{
    BasicAuth, BasicCredentials, CredentialError, CredentialSource, FixedCredentials,
};
pub use quarantine::{
    FolderQuarantine, Quarantine, QuarantineError, QuarantinedDocument, S3Quarantine,
};
pub use secret::SecretsManagerCredentials;
pub use service::{BulkSink, ObjectFailure, SinkError, WriteOutcome};
pub use stats::SinkStats;
pub use transport::{BulkTransport, HttpReply, OpenSearchTransport, SendError, TransportError};

/// Where a document came from: named in quarantine entries and in failures, so a user can find
/// the record again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The object as users name it: `s3://bucket/key` or a local path. Shared by all the
    /// documents of one object.
    pub object: Arc<str>,
    /// Position of the record in the object (0-based, in the order the splitter produced them).
    pub record: u64,
}

impl Origin {
    pub fn new(object: impl Into<Arc<str>>, record: u64) -> Self {
        Self {
            object: object.into(),
            record,
        }
    }
}

/// One document to load: the sink's input.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkItem {
    /// Target index, e.g. `log-aws-cloudtrail-2024-05`. Shared: the documents of an object
    /// mostly go to one index.
    pub index: Arc<str>,
    /// Deterministic document id: the same record always gets the same id.
    pub id: DocId,
    /// The `_source`, already serialized as compact JSON (one line, no raw newline). Usually a
    /// slice of a block shared with the documents serialized before and after it.
    pub source: Bytes,
    pub origin: Origin,
}

impl BulkItem {
    pub fn new(
        index: impl Into<Arc<str>>,
        id: impl Into<DocId>,
        source: impl Into<Bytes>,
        origin: Origin,
    ) -> Self {
        Self {
            index: index.into(),
            id: id.into(),
            source: source.into(),
            origin,
        }
    }

    /// The item for a finished pipeline document (its id is stored with its source); `origin`
    /// names its object and record.
    pub fn from_document(doc: crate::pipeline::Document, origin: Origin) -> Self {
        use crate::pipeline::Source;
        let (index, id, source) = ITEM_STORE.with_borrow_mut(|store| {
            let id = doc.id.as_bytes();
            let (id, source) = match &doc.source {
                // Written straight to JSON by its parser (flow logs): only stored.
                Source::Json(json) => store.blocks.store(id, json),
                fields => {
                    store.scratch.clear();
                    fields.write(&mut store.scratch);
                    let stored = store.blocks.store(id, &store.scratch);
                    if store.scratch.capacity() > SCRATCH_KEEP {
                        store.scratch = Vec::new();
                    }
                    stored
                }
            };
            (store.index(&doc.index), DocId(id), source)
        });
        Self::new(index, id, source, origin)
    }
}

/// A document id, kept like sources in the shared blocks of the thread that made it: an id
/// allocated per document and freed by the sink's thread made the allocator collect frees
/// from another thread on every allocation of the pipeline's. Always UTF-8: made only from
/// strings.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DocId(Bytes);

impl DocId {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for DocId {
    fn from(id: String) -> Self {
        Self(Bytes::from(id))
    }
}

impl From<&str> for DocId {
    fn from(id: &str) -> Self {
        Self(Bytes::copy_from_slice(id.as_bytes()))
    }
}

impl std::fmt::Display for DocId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for DocId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for DocId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for DocId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A larger serialization buffer than this is not kept between documents.
const SCRATCH_KEEP: usize = 1 << 20;

/// Size of the blocks sources are stored in.
const BLOCK: usize = 512 * 1024;

/// Blocks kept for reuse once their documents are gone (at most this many times [`BLOCK`]).
const SPARE_BLOCKS: usize = 64;

/// Per pipeline thread: where [`BulkItem::from_document`] serializes and stores documents.
struct ItemStore {
    /// The document is serialized here (hot in cache), then copied into `blocks`.
    scratch: Vec<u8>,
    blocks: Blocks,
    /// The last index name: consecutive documents share it instead of each owning a copy.
    last_index: Option<Arc<str>>,
}

impl ItemStore {
    fn index(&mut self, name: &str) -> Arc<str> {
        match &self.last_index {
            Some(last) if **last == *name => Arc::clone(last),
            _ => {
                let index: Arc<str> = Arc::from(name);
                self.last_index = Some(Arc::clone(&index));
                index
            }
        }
    }
}

/// Sources stored back to back in blocks of [`BLOCK`] bytes, each a `Bytes` slice of its
/// block. One allocation per source (freed by the sink's thread, not the one that allocated
/// it) was a large share of the delivery's cost: the allocator's cross-thread frees, and pages
/// returned to the system and faulted in again. A block whose documents are all gone is
/// reused as it is.
struct Blocks {
    current: BytesMut,
    /// Full blocks, oldest first, still referenced by some documents or free for reuse.
    full: std::collections::VecDeque<BytesMut>,
}

impl Blocks {
    /// Stores a document's id and source next to each other: one slice of the block, split in
    /// two.
    fn store(&mut self, id: &[u8], source: &[u8]) -> (Bytes, Bytes) {
        let len = id.len() + source.len();
        let mut both = if len > BLOCK / 8 {
            // A large document gets its own allocation rather than wasting a block's end.
            let mut own = BytesMut::with_capacity(len);
            own.extend_from_slice(id);
            own.extend_from_slice(source);
            own.freeze()
        } else {
            self.room_for(len);
            self.current.extend_from_slice(id);
            self.current.extend_from_slice(source);
            self.current.split().freeze()
        };
        let id = both.split_to(id.len());
        (id, both)
    }

    /// Makes `current` a block with at least `len` bytes free.
    fn room_for(&mut self, len: usize) {
        if self.current.capacity() - self.current.len() < len {
            let full = std::mem::take(&mut self.current);
            if full.capacity() > 0 {
                self.full.push_back(full);
            }
            // The oldest blocks' documents are the first the sink is done with.
            let reusable = self.full.iter_mut().position(|b| b.try_reclaim(BLOCK));
            self.current = match reusable.and_then(|i| self.full.remove(i)) {
                Some(block) => block,
                None => BytesMut::with_capacity(BLOCK),
            };
            if self.full.len() > SPARE_BLOCKS {
                // Forgotten here; the memory goes when its last document does.
                self.full.pop_front();
            }
        }
    }
}

thread_local! {
    static ITEM_STORE: std::cell::RefCell<ItemStore> = std::cell::RefCell::new(ItemStore {
        scratch: Vec::new(),
        blocks: Blocks {
            current: BytesMut::new(),
            full: std::collections::VecDeque::new(),
        },
        last_index: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_from_pipeline_documents_keep_index_id_and_compact_source() {
        let mut source = crate::ecs::Doc::new();
        source.insert("message".into(), serde_json::json!("a\nb"));
        let doc = crate::pipeline::Document {
            index: "log-aws-waf-2024-05".into(),
            id: "abc".into(),
            source: source.into(),
        };
        let item = BulkItem::from_document(doc, Origin::new("s3://b/k", 7));
        assert_eq!(&*item.index, "log-aws-waf-2024-05");
        assert_eq!(item.id, "abc");
        assert_eq!(
            (item.id.to_string(), format!("{:?}", item.id)),
            ("abc".into(), "\"abc\"".into())
        );
        // The id is not an allocation of its own: it sits in the block, just before the source.
        assert_eq!(
            item.id.0.as_ptr() as usize + 3,
            item.source.as_ptr() as usize
        );
        assert_eq!(item.source, br#"{"message":"a\nb"}"#.to_vec());
        assert_eq!(item.origin, Origin::new("s3://b/k", 7));
        assert_eq!(encoder::check_item(&item, 1000), Ok(()));
    }

    #[test]
    fn sources_already_written_as_json_are_kept_as_they_are() {
        let doc = crate::pipeline::Document {
            index: "log-aws-vpcflowlogs-2024-05".into(),
            id: "f".into(),
            source: crate::pipeline::Source::Json(br#"{"srcaddr":"192.0.2.1"}"#.to_vec()),
        };
        let item = BulkItem::from_document(doc, Origin::new("s3://b/k", 0));
        assert_eq!(&*item.source, br#"{"srcaddr":"192.0.2.1"}"#);
    }

    #[test]
    fn consecutive_items_share_their_index_name() {
        let doc = |index: &str| crate::pipeline::Document {
            index: index.into(),
            id: "x".into(),
            source: crate::ecs::Doc::new().into(),
        };
        let a = BulkItem::from_document(doc("i-1"), Origin::new("o", 0));
        let b = BulkItem::from_document(doc("i-1"), Origin::new("o", 1));
        let c = BulkItem::from_document(doc("i-2"), Origin::new("o", 2));
        assert!(Arc::ptr_eq(&a.index, &b.index));
        assert_eq!((&*c.index, &*c.source), ("i-2", &b"{}"[..]));
    }

    #[test]
    fn stored_ids_and_sources_stay_intact_and_free_blocks_are_reused() {
        let mut blocks = Blocks {
            current: BytesMut::new(),
            full: std::collections::VecDeque::new(),
        };
        let id = |i: usize| format!("id-{i}");
        let source = |i: usize| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 1000));
        let store =
            |blocks: &mut Blocks, i: usize| blocks.store(id(i).as_bytes(), source(i).as_bytes());
        // Three blocks' worth, all alive at once.
        let mut kept: Vec<(usize, (Bytes, Bytes))> = Vec::new();
        let mut i = 0;
        while kept
            .iter()
            .map(|(_, (a, b))| a.len() + b.len())
            .sum::<usize>()
            < 3 * BLOCK
        {
            kept.push((i, store(&mut blocks, i)));
            i += 1;
        }
        assert!(
            kept.iter()
                .all(|(i, (a, b))| *a == id(*i).as_bytes() && *b == source(*i).as_bytes())
        );
        let first_block = kept[0].1.0.as_ptr() as usize;
        assert!(blocks.full.len() >= 2);
        // Once its documents are gone, the oldest block is filled again instead of a new one.
        drop(kept);
        let mut reused = false;
        for j in 0..2000 {
            let (a, b) = store(&mut blocks, j);
            assert_eq!((a, &b), (Bytes::from(id(j)), &Bytes::from(source(j))));
            reused |= (first_block..first_block + BLOCK).contains(&(b.as_ptr() as usize));
        }
        assert!(reused);
        // A large document is stored on its own, its id still in front of it.
        let big = "y".repeat(BLOCK);
        let (a, b) = blocks.store(b"big", big.as_bytes());
        assert_eq!((&*a, &*b), (&b"big"[..], big.as_bytes()));
        assert_eq!(a.as_ptr() as usize + 3, b.as_ptr() as usize);
    }
}
