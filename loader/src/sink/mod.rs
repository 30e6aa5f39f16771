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
//! One file per concern: [`config`] (endpoint, auth, limits), [`encoder`] (items -> NDJSON and
//! gzip), [`request_builder`] (items -> requests within the byte and count limits), [`response`]
//! (bulk answers -> per-item results), [`retry`] (the retry decision, pure), [`quarantine`],
//! [`transport`] (the HTTP edge) and [`service`] (the loop tying them together).

pub mod config;
pub mod encoder;
pub mod quarantine;
pub mod request_builder;
pub mod response;
pub mod retry;
pub mod service;
pub mod stats;
pub mod transport;

use std::sync::Arc;

pub use config::{Auth, ConfigError, SinkConfig};
pub use quarantine::{
    FolderQuarantine, Quarantine, QuarantineError, QuarantinedDocument, S3Quarantine,
};
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
    /// Target index, e.g. `log-aws-cloudtrail-2024-05`.
    pub index: String,
    /// Deterministic document id: the same record always gets the same id.
    pub id: String,
    /// The `_source`, already serialized as compact JSON (one line, no raw newline).
    pub source: Vec<u8>,
    pub origin: Origin,
}

impl BulkItem {
    pub fn new(
        index: impl Into<String>,
        id: impl Into<String>,
        source: Vec<u8>,
        origin: Origin,
    ) -> Self {
        Self {
            index: index.into(),
            id: id.into(),
            source,
            origin,
        }
    }

    /// The item for a finished pipeline document (its index and id move over); `origin` names
    /// its object and record.
    pub fn from_document(doc: crate::pipeline::Document, origin: Origin) -> Self {
        Self::new(doc.index, doc.id, doc.source.into_json(), origin)
    }
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
        assert_eq!(item.index, "log-aws-waf-2024-05");
        assert_eq!(item.id, "abc");
        assert_eq!(item.source, br#"{"message":"a\nb"}"#.to_vec());
        assert_eq!(item.origin, Origin::new("s3://b/k", 7));
        assert_eq!(encoder::check_item(&item, 1000), Ok(()));
    }
}
