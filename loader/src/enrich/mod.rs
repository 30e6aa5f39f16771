//! Enrichment: what the loader adds to a normalized document from knowledge beside the record:
//! GeoIP and ASN databases ([`geo`]), threat-intelligence feeds ([`threat`]), the organization's
//! accounts ([`org`]) and user-agent patterns ([`user_agent`]).
//!
//! A stage of the pipeline between normalization and detection, so that rules can use what it
//! adds: pure over a document, with its data read once per process ([`files`]: a folder or an
//! S3 prefix, read again when it changes) and shared by every object. Each enricher only adds
//! fields a document does not have yet, and never fails: what cannot be looked up is left out.
//! Objects many documents get alike (an address's location, an account's unit and tags) are
//! made once and shared ([`additions`]), answers kept in a [`cache`].
//! The update commands ([`geo_update`], [`feed_update`]) fetch the data from its publishers.

pub mod additions;
pub mod cache;
pub mod feed_update;
pub mod files;
pub mod geo;
pub mod geo_update;
pub mod org;
pub mod threat;
mod uap;
pub mod user_agent;

use crate::config::{LogType, ParserKind};
use crate::ecs::Doc;
use additions::Additions;
use std::sync::Arc;

/// One kind of enrichment.
pub trait Enricher: Send + Sync + std::fmt::Debug {
    /// Adds fields to `doc`, a document of `log_type`: its own, or shared objects to
    /// `additions`.
    fn enrich(&self, doc: &mut Doc, log_type: &LogType, additions: &mut Additions);

    /// Whether documents of `log_type` must be made into fields for it. Flow logs are
    /// written straight from their values when nothing needs their fields: their writer adds
    /// GeoIP, threat matches and the organization context itself, and they carry no user
    /// agent.
    fn needs_fields(&self, log_type: &LogType) -> bool;
}

/// The enrichers of a pipeline, applied in order.
#[derive(Debug, Clone, Default)]
pub struct Enrichers(Vec<Arc<dyn Enricher>>);

impl Enrichers {
    pub fn push(&mut self, enricher: Arc<dyn Enricher>) {
        self.0.push(enricher);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn need_fields(&self, log_type: &LogType) -> bool {
        self.0.iter().any(|e| e.needs_fields(log_type))
    }

    pub fn apply(&self, doc: &mut Doc, log_type: &LogType, additions: &mut Additions) {
        for enricher in &self.0 {
            enricher.enrich(doc, log_type, additions);
        }
    }
}

/// GeoIP and ASN for the address fields of built-in types (user types name theirs with the
/// `geoip` key, applied when they are normalized).
#[derive(Debug)]
pub struct GeoEnricher(pub Arc<dyn geo::GeoLookup>);

impl Enricher for GeoEnricher {
    fn enrich(&self, doc: &mut Doc, log_type: &LogType, additions: &mut Additions) {
        if log_type.parser.is_none() {
            return;
        }
        for &target in geo::TARGETS {
            geo::add_target(doc, target, self.0.as_ref(), additions);
        }
    }

    fn needs_fields(&self, log_type: &LogType) -> bool {
        log_type.parser.is_some() && log_type.parser != Some(ParserKind::VpcFlow)
    }
}

/// User-agent fields for every document with `user_agent.original` (or the object a type's
/// `user_agent_enrichment_field` names).
#[derive(Debug)]
pub struct UserAgentEnricher(pub &'static user_agent::UserAgents);

impl Enricher for UserAgentEnricher {
    fn enrich(&self, doc: &mut Doc, log_type: &LogType, _additions: &mut Additions) {
        let object = log_type.user_agent_field.as_deref().unwrap_or("user_agent");
        self.0.enrich(doc, object);
    }

    fn needs_fields(&self, log_type: &LogType) -> bool {
        log_type.parser != Some(ParserKind::VpcFlow)
    }
}

/// Threat-intelligence matches for every document (and a type's `ioc_ip` / `ioc_domain`).
#[derive(Debug)]
pub struct ThreatEnricher(pub Arc<threat::ThreatFeeds>);

impl Enricher for ThreatEnricher {
    fn enrich(&self, doc: &mut Doc, log_type: &LogType, _additions: &mut Additions) {
        self.0
            .current()
            .enrich(doc, &log_type.ioc_ip, &log_type.ioc_domain);
    }

    /// Flow logs' writer matches their two addresses itself, unless the type names more
    /// fields.
    fn needs_fields(&self, log_type: &LogType) -> bool {
        log_type.parser != Some(ParserKind::VpcFlow)
            || !log_type.ioc_ip.is_empty()
            || !log_type.ioc_domain.is_empty()
    }
}

/// The organization context of every document's account.
#[derive(Debug)]
pub struct OrgEnricher(pub Arc<org::OrgContext>);

impl Enricher for OrgEnricher {
    fn enrich(&self, doc: &mut Doc, _log_type: &LogType, additions: &mut Additions) {
        self.0.current().enrich(doc, additions);
    }

    /// Flow logs' writer adds the context itself.
    fn needs_fields(&self, log_type: &LogType) -> bool {
        log_type.parser != Some(ParserKind::VpcFlow)
    }
}
