//! One module per log type. Each turns one raw record (as the decoder split it) into zero or
//! more ECS documents. Parsers are pure: no I/O, no clock, no network.
//!
//! Contract shared by every module: `pub fn normalize(record: Value, ctx: &Context<'_>, out:
//! &mut Vec<Normalized>) -> Result<(), NormalizeError>`. The document starts from the original
//! record's fields (kept as they are, next to the ECS fields) and gets the type's ECS fields;
//! the pipeline then adds what is common to every type (`@timestamp` from
//! [`Normalized::timestamp`], `event.ingested`, `cloud.provider`, account and region from the key
//! when the record has none), the `_id` and the index name.
//!
//! VPC flow logs, the highest-volume type, also write a line's values straight to the
//! document's JSON ([`vpcflow::Writer`]), common fields included; the pipeline takes that path
//! whenever nothing needs the document as fields (a user mapping or `doc_id` of the type).

use crate::ecs::Doc;
use chrono::{DateTime, Utc};

pub mod cloudtrail;
pub mod cloudwatch;
pub mod configured;
pub mod guardduty;
pub mod linux_secure;
pub mod securityhub;
pub mod vpcflow;
pub mod waf;

/// What a parser may know about the object a record came from.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The object key, already URL-decoded.
    pub s3_key: &'a str,
    /// Account named by the key layout (`AWSLogs/<account>/...`), when there is one.
    pub key_account: Option<&'a str>,
    /// Region named by the key layout, when there is one.
    pub key_region: Option<&'a str>,
    /// When the object is being loaded: `event.ingested`. Fixed in tests so the output is
    /// reproducible.
    pub ingested: DateTime<Utc>,
    /// The time the object stands for, which gives year-less (syslog) times their year: the
    /// time its key names, else when it was written, and the load time only for input that
    /// has neither. So the same object gives the same documents whenever it is loaded.
    pub reference: DateTime<Utc>,
    /// The time the key names ([`crate::detect::key_time`]): `timestamp_key = file_timestamp`.
    pub key_time: Option<DateTime<Utc>>,
}

/// One ECS document and what the pipeline needs to route it.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The `_source`, without the common fields the pipeline adds.
    pub doc: Doc,
    /// Event time: becomes `@timestamp` and picks the index period. `None` when the record has
    /// no usable time (the pipeline then uses the ingest time and says so in the document).
    pub timestamp: Option<DateTime<Utc>>,
    /// Deterministic id when the type has a natural one (CloudTrail `eventID`, finding id plus
    /// update time); `None` makes the pipeline hash the raw record.
    pub id: Option<String>,
}

impl Normalized {
    pub fn new(doc: Doc, timestamp: Option<DateTime<Utc>>) -> Self {
        Self {
            doc,
            timestamp,
            id: None,
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// Why one record could not be normalized. The pipeline adds the object and the position.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NormalizeError {
    #[error("the record is not a JSON object")]
    NotAnObject,
    #[error("required field `{0}` is missing")]
    MissingField(&'static str),
    #[error("field `{field}` is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// A field named by the configuration (`timestamp_key`, ...).
    #[error("field `{field}` is invalid: {reason}")]
    ConfiguredField { field: String, reason: String },
}
