//! One object in, documents out: detect the type from the key, decompress, split, normalize,
//! then add what every document shares (`@timestamp`, `event.ingested`, `cloud.*` from the key,
//! `_id`, `_index`). Pure over a reader: the CLI, the Lambda handler and the benchmark all
//! call [`Pipeline::load_object`].

use crate::config::{Config, IndexTime, LogType, ParserKind, Rotation};
use crate::decode::{self, FieldsItem, Item, Position, ReadError, Splitter};
use crate::detect::{self, SkipReason};
use crate::ecs::{self, Doc};
use crate::enrich::additions::Additions;
use crate::enrich::geo::{GeoDatabases, GeoLookup};
use crate::enrich::org::{Directory, OrgContext};
use crate::enrich::threat::{ThreatFeeds, ThreatIntel};
use crate::enrich::user_agent::UserAgents;
use crate::enrich::{Enrichers, GeoEnricher, OrgEnricher, ThreatEnricher, UserAgentEnricher};
use crate::exclude::{self, Exclusions, Rule};
use crate::json_write;
use crate::parsers::{
    Context, NormalizeError, Normalized, cloudtrail, cloudwatch, configured, guardduty,
    linux_secure, securityhub, vpcflow, waf,
};
use crate::provenance::{self, OrganizationId, Refusal};
use crate::rules::RuleSet;
use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::io::Write;
use std::sync::Arc;

mod parallel;

/// A finished document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub index: String,
    pub id: String,
    pub source: Source,
}

/// A document's `_source`: fields, fields with the objects enrichment shares between
/// documents, or the JSON object a parser wrote straight to bytes (VPC flow logs, the
/// highest-volume type, are never built as a map).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Fields(Doc),
    Enriched(Doc, Additions),
    Json(Vec<u8>),
}

impl Source {
    /// Appends the compact JSON.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Fields(doc) => json_write::write_map(out, doc),
            Self::Enriched(doc, additions) => additions.write(doc, out),
            Self::Json(json) => out.extend_from_slice(json),
        }
    }

    /// The compact JSON, without a copy when it is already bytes.
    pub fn into_json(self) -> Vec<u8> {
        match self {
            Self::Json(json) => json,
            other => {
                let mut json = Vec::with_capacity(1024);
                other.write(&mut json);
                json
            }
        }
    }

    /// The fields, read back when the source is bytes. The pipeline writes only JSON objects;
    /// anything else would be a bug, shown as an empty document rather than a crash.
    pub fn into_fields(self) -> Doc {
        match self {
            Self::Fields(doc) => doc,
            Self::Enriched(mut doc, additions) => {
                additions.copy_into(&mut doc);
                doc
            }
            Self::Json(json) => serde_json::from_slice(&json).unwrap_or_default(),
        }
    }

    /// [`Source::into_fields`] without giving up the source.
    pub fn fields(&self) -> std::borrow::Cow<'_, Doc> {
        match self {
            Self::Fields(doc) => std::borrow::Cow::Borrowed(doc),
            other => std::borrow::Cow::Owned(other.clone().into_fields()),
        }
    }
}

impl From<Doc> for Source {
    fn from(doc: Doc) -> Self {
        Self::Fields(doc)
    }
}

impl Document {
    /// `{"_index": .., "_id": .., "_source": {..}}` and a newline.
    pub fn write_ndjson(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"_index\":");
        json_write::write_str(out, &self.index);
        out.extend_from_slice(b",\"_id\":");
        json_write::write_str(out, &self.id);
        out.extend_from_slice(b",\"_source\":");
        self.source.write(out);
        out.extend_from_slice(b"}\n");
        Ok(())
    }

    /// The two lines of an OpenSearch `_bulk` create action. `create` (not `index`) so that
    /// loading an object twice never overwrites or duplicates.
    pub fn write_bulk(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"create\":{\"_index\":");
        json_write::write_str(out, &self.index);
        out.extend_from_slice(b",\"_id\":");
        json_write::write_str(out, &self.id);
        out.extend_from_slice(b"}}\n");
        self.source.write(out);
        out.push(b'\n');
        Ok(())
    }
}

/// Counters of one log type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeStats {
    pub objects: u64,
    pub records: u64,
    pub documents: u64,
    pub errors: u64,
    /// Records that yield no document on purpose (CONTROL_MESSAGE payloads, ...).
    pub skipped: u64,
    /// Records left out by an exclusion rule.
    pub excluded: u64,
    /// Alerts of detection rules on the type's documents (not counted in `documents`).
    pub alerts: u64,
}

impl TypeStats {
    pub fn add(&mut self, other: &TypeStats) {
        self.objects += other.objects;
        self.records += other.records;
        self.documents += other.documents;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self.excluded += other.excluded;
        self.alerts += other.alerts;
    }
}

/// One reported problem: the object, where in it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    pub object: String,
    pub position: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.position {
            Some(p) => write!(f, "{} {}: {}", self.object, p, self.reason),
            None => write!(f, "{}: {}", self.object, self.reason),
        }
    }
}

/// Counters of a run (one object, a folder, a batch of messages).
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub objects: u64,
    pub per_type: BTreeMap<String, TypeStats>,
    /// Skipped objects by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Objects refused for where they are (see [`crate::provenance`]), by reason.
    pub refused: BTreeMap<String, u64>,
    /// Excluded records by exclusion rule (its label).
    pub excluded: BTreeMap<String, u64>,
    pub error_count: u64,
    /// The first [`Stats::MAX_KEPT_ERRORS`] errors in full.
    pub errors: Vec<ErrorReport>,
}

impl Stats {
    pub const MAX_KEPT_ERRORS: usize = 1000;

    fn error(&mut self, log_type: Option<&str>, report: ErrorReport) {
        tracing::warn!(object = %report.object, position = report.position.as_deref().unwrap_or("the object"), reason = %report.reason, "record not loaded");
        self.error_count += 1;
        if let Some(t) = log_type {
            self.per_type.entry(t.to_owned()).or_default().errors += 1;
        }
        if self.errors.len() < Self::MAX_KEPT_ERRORS {
            self.errors.push(report);
        }
    }

    /// Counts an object skipped without reading it (its key says it holds nothing to load).
    pub fn count_skipped(&mut self, reason: &SkipReason) {
        self.objects += 1;
        *self.skipped.entry(reason.to_string()).or_default() += 1;
    }

    /// Counts an object refused without reading it (it is not where its type may come from).
    pub fn count_refused(&mut self, refusal: &Refusal) {
        self.objects += 1;
        *self.refused.entry(refusal.reason()).or_default() += 1;
    }

    /// Counts an object of `log_type` that could not be opened at all.
    pub fn count_unreadable(&mut self, log_type: &str, report: ErrorReport) {
        self.objects += 1;
        self.per_type
            .entry(log_type.to_owned())
            .or_default()
            .objects += 1;
        self.error(Some(log_type), report);
    }

    pub fn documents(&self) -> u64 {
        self.per_type.values().map(|t| t.documents).sum()
    }

    pub fn records(&self) -> u64 {
        self.per_type.values().map(|t| t.records).sum()
    }

    pub fn merge(&mut self, other: Stats) {
        self.objects += other.objects;
        for (name, t) in other.per_type {
            self.per_type.entry(name).or_default().add(&t);
        }
        for (reason, n) in other.skipped {
            *self.skipped.entry(reason).or_default() += n;
        }
        for (reason, n) in other.refused {
            *self.refused.entry(reason).or_default() += n;
        }
        for (rule, n) in other.excluded {
            *self.excluded.entry(rule).or_default() += n;
        }
        self.error_count += other.error_count;
        let room = Self::MAX_KEPT_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(other.errors.into_iter().take(room));
    }

    /// A human summary, one fact per line.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "objects: {}, records: {}, documents: {}, errors: {}\n",
            self.objects,
            self.records(),
            self.documents(),
            self.error_count
        );
        for (name, t) in &self.per_type {
            s.push_str(&format!(
                "  {name}: objects {}, records {}, documents {}, errors {}, skipped records {}\n",
                t.objects, t.records, t.documents, t.errors, t.skipped
            ));
            if t.excluded > 0 {
                s.push_str(&format!("  {name}: excluded records {}\n", t.excluded));
            }
            if t.alerts > 0 {
                s.push_str(&format!(
                    "  {name}: alerts {} (detection rules)\n",
                    t.alerts
                ));
            }
        }
        for (rule, n) in &self.excluded {
            s.push_str(&format!("  excluded by {rule}: {n}\n"));
        }
        for (reason, n) in &self.skipped {
            s.push_str(&format!("  skipped objects ({reason}): {n}\n"));
        }
        for (reason, n) in &self.refused {
            s.push_str(&format!("  refused objects ({reason}): {n}\n"));
        }
        for e in &self.errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        if self.error_count as usize > self.errors.len() {
            s.push_str(&format!(
                "  ... and {} more errors\n",
                self.error_count as usize - self.errors.len()
            ));
        }
        s
    }
}

/// What became of one object.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Loaded {
        log_type: String,
    },
    Skipped(SkipReason),
    /// Some records may have been loaded before the object could not be read further.
    Failed {
        log_type: String,
        reason: String,
    },
}

/// The loader's pure core, built once from the configuration.
#[derive(Debug, Clone)]
pub struct Pipeline {
    config: Config,
    routes: cloudwatch::Routes,
    /// For each `via_cwl` type: its payloads' messages all go to it.
    payload_routes: BTreeMap<String, cloudwatch::Routes>,
    exclusions: Exclusions,
    geo: Option<Arc<dyn GeoLookup>>,
    /// A built-in type that log groups route to has a user mapping: CloudWatch Logs documents
    /// are then checked for it (otherwise they pay nothing).
    routed_mapping: bool,
    /// With it, CloudTrail objects are loaded only from the organization trail's layout.
    organization: Option<OrganizationId>,
    /// Flat-object fields by type name, whose too long values are cut.
    flat_objects: &'static BTreeMap<String, Vec<String>>,
    /// Detection rules: each document they match also yields an alert document.
    rules: Option<Arc<RuleSet>>,
    /// What normalized documents get added before the rules see them.
    enrichers: Enrichers,
    /// The GeoIP databases behind `geo`, for reloading them when they change.
    geo_databases: Option<Arc<GeoDatabases>>,
    threat_feeds: Option<Arc<ThreatFeeds>>,
    org_context: Option<Arc<OrgContext>>,
    /// Threads one object's records are normalized on (see [`parallel`]).
    threads: usize,
}

impl Pipeline {
    pub fn new(config: Config) -> Self {
        let routes = cloudwatch::Routes::from_config(&config);
        let routed_mapping = config
            .types
            .iter()
            .any(|t| t.parser.is_some() && t.loggroup.is_some() && t.has_mapping());
        let payload_routes = config
            .types
            .iter()
            .filter(|t| t.via_cwl)
            .filter_map(|t| Some((t.name.clone(), cloudwatch::Routes::only(t)?)))
            .collect();
        Self {
            config,
            routes,
            payload_routes,
            routed_mapping,
            exclusions: Exclusions::default(),
            geo: None,
            organization: None,
            flat_objects: crate::content::flat_object_fields(),
            rules: None,
            enrichers: Enrichers::default(),
            geo_databases: None,
            threat_feeds: None,
            org_context: None,
            threads: 1,
        }
    }

    /// Normalizes a large object's records on up to `threads` threads (1: on the calling
    /// thread only). Documents, counts and errors come out as on one thread, in the same order.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Detection rules to evaluate on every document.
    pub fn with_rules(mut self, rules: Option<Arc<RuleSet>>) -> Self {
        self.rules = rules;
        self
    }

    pub fn rules(&self) -> Option<&RuleSet> {
        self.rules.as_deref()
    }

    /// The rules, shared.
    pub fn rules_handle(&self) -> Option<Arc<RuleSet>> {
        self.rules.clone()
    }

    /// CloudTrail objects must then come from this organization's trail (`ORGANIZATION_ID`).
    pub fn with_organization(mut self, organization: Option<OrganizationId>) -> Self {
        self.organization = organization;
        self
    }

    pub fn organization(&self) -> Option<&OrganizationId> {
        self.organization.as_ref()
    }

    /// Records matching these rules are counted and left out.
    pub fn with_exclusions(mut self, exclusions: Exclusions) -> Self {
        self.exclusions = exclusions;
        self
    }

    /// GeoIP databases: the address fields of every built-in type, and the `geoip` key of
    /// user types.
    pub fn with_geo_databases(mut self, databases: Option<Arc<GeoDatabases>>) -> Self {
        let lookup = databases.clone().map(|d| -> Arc<dyn GeoLookup> { d });
        self.geo_databases = databases;
        self.with_geo(lookup)
    }

    /// The GeoIP databases, to reload when they change.
    pub fn geo_databases(&self) -> Option<&Arc<GeoDatabases>> {
        self.geo_databases.as_ref()
    }

    /// Threat-intelligence matches, from feeds reloaded when they change.
    pub fn with_threat_feeds(mut self, feeds: Option<Arc<ThreatFeeds>>) -> Self {
        if let Some(feeds) = &feeds {
            self.enrichers.push(Arc::new(ThreatEnricher(feeds.clone())));
        }
        self.threat_feeds = feeds;
        self
    }

    /// The threat feeds, to reload when they change.
    pub fn threat_feeds(&self) -> Option<&Arc<ThreatFeeds>> {
        self.threat_feeds.as_ref()
    }

    /// The organization context of every document's account.
    pub fn with_org_context(mut self, context: Option<Arc<OrgContext>>) -> Self {
        if let Some(context) = &context {
            self.enrichers.push(Arc::new(OrgEnricher(context.clone())));
        }
        self.org_context = context;
        self
    }

    /// The organization context, to read again when its time is up.
    pub fn org_context(&self) -> Option<&Arc<OrgContext>> {
        self.org_context.as_ref()
    }

    /// User-agent fields from `user_agent.original`.
    pub fn with_user_agents(mut self, agents: Option<&'static UserAgents>) -> Self {
        if let Some(agents) = agents {
            self.enrichers.push(Arc::new(UserAgentEnricher(agents)));
        }
        self
    }

    /// A GeoIP lookup: the address fields of every built-in type, and the `geoip` key of user
    /// types.
    pub fn with_geo(mut self, geo: Option<Arc<dyn GeoLookup>>) -> Self {
        if let Some(geo) = &geo {
            self.enrichers.push(Arc::new(GeoEnricher(geo.clone())));
        }
        self.routes = self.routes.with_geo(geo.clone());
        self.payload_routes = std::mem::take(&mut self.payload_routes)
            .into_iter()
            .map(|(name, routes)| (name, routes.with_geo(geo.clone())))
            .collect();
        self.geo = geo;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn exclusions(&self) -> &Exclusions {
        &self.exclusions
    }

    /// The log type of the object at `key`, or why it is skipped. Cheap: callers ask before
    /// opening an object, so a skipped one is never downloaded.
    pub fn log_type_of(&self, key: &str) -> Result<&LogType, SkipReason> {
        detect::detect(&self.config, key)
    }

    /// Whether an object of `log_type` at `key` may be loaded: with an organization id, a
    /// CloudTrail object only from the organization trail's layout, since a member account can
    /// write CloudTrail-like keys under its own prefix. Asked before the object is opened.
    pub fn check_provenance(&self, log_type: &LogType, key: &str) -> Result<(), Refusal> {
        provenance::check(self.organization.as_ref(), log_type, key)
    }

    /// Loads one object. `key` is the (decoded) object key used for detection; `name` names the
    /// object in messages (`s3://bucket/key` or a local path). Documents go to `emit`.
    pub fn load_object(
        &self,
        key: &str,
        name: &str,
        reader: impl Read,
        ingested: DateTime<Utc>,
        stats: &mut Stats,
        emit: &mut dyn FnMut(Document),
    ) -> Outcome {
        self.load_object_written(key, name, reader, ingested, None, stats, emit)
    }

    /// [`Pipeline::load_object`] of an object written at `modified` (S3 `LastModified`, a
    /// file's modification time): the year of syslog times when its key names no time.
    #[allow(clippy::too_many_arguments)]
    pub fn load_object_written(
        &self,
        key: &str,
        name: &str,
        reader: impl Read,
        ingested: DateTime<Utc>,
        modified: Option<DateTime<Utc>>,
        stats: &mut Stats,
        emit: &mut dyn FnMut(Document),
    ) -> Outcome {
        self.load_object_prepared(
            key,
            name,
            reader,
            ingested,
            modified,
            stats,
            &|doc| doc,
            emit,
        )
    }

    /// [`Pipeline::load_object_written`] with each document turned into what `emit` takes by
    /// `prepare`, on the thread that made it: an object loaded on several threads (see
    /// [`Pipeline::with_threads`]) serializes its documents on all of them. `emit` is called
    /// on the calling thread, in the object's order.
    #[allow(clippy::too_many_arguments)]
    pub fn load_object_prepared<T: Send>(
        &self,
        key: &str,
        name: &str,
        reader: impl Read,
        ingested: DateTime<Utc>,
        modified: Option<DateTime<Utc>>,
        stats: &mut Stats,
        prepare: &(dyn Fn(Document) -> T + Sync),
        emit: &mut dyn FnMut(T),
    ) -> Outcome {
        let log_type = match self.log_type_of(key) {
            Ok(t) => t,
            Err(reason) => {
                tracing::info!(object = name, %reason, "object skipped");
                stats.count_skipped(&reason);
                return Outcome::Skipped(reason);
            }
        };
        stats.objects += 1;
        self.load_as(
            log_type, key, name, reader, ingested, modified, stats, prepare, emit,
        )
    }

    /// Loads one object as the type named `type_name`, whatever its key (`loader test`).
    /// `None` when the configuration has no such type.
    #[allow(clippy::too_many_arguments)]
    pub fn load_object_as(
        &self,
        type_name: &str,
        key: &str,
        name: &str,
        reader: impl Read,
        ingested: DateTime<Utc>,
        stats: &mut Stats,
        emit: &mut dyn FnMut(Document),
    ) -> Option<Outcome> {
        let log_type = self.config.get(type_name)?;
        stats.objects += 1;
        Some(self.load_as(
            log_type,
            key,
            name,
            reader,
            ingested,
            None,
            stats,
            &|doc| doc,
            emit,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn load_as<T: Send>(
        &self,
        log_type: &LogType,
        key: &str,
        name: &str,
        reader: impl Read,
        ingested: DateTime<Utc>,
        modified: Option<DateTime<Utc>>,
        stats: &mut Stats,
        prepare: &(dyn Fn(Document) -> T + Sync),
        emit: &mut dyn FnMut(T),
    ) -> Outcome {
        stats
            .per_type
            .entry(log_type.name.clone())
            .or_default()
            .objects += 1;
        // The shared key layout parser knows every layout the pipeline writes; other keys
        // (bucket prefixes it does not know, user types) fall back to a plain pattern.
        let parsed = shared::keys::parse(key).ok();
        let fallback = detect::key_parts(key);
        let key_time = crate::detect::key_time(key, log_type.file_timestamp_format.as_deref());
        let ctx = Context {
            s3_key: key,
            key_account: parsed.as_ref().map(|k| k.account()).or(fallback.account),
            key_region: parsed
                .as_ref()
                .map(|k| k.region())
                .filter(|r| *r != "cloudfront")
                .or(fallback.region),
            ingested,
            reference: key_time.or(modified).unwrap_or(ingested),
            key_time,
        };
        let parts = ObjectParts {
            pipeline: self,
            log_type,
            parser: log_type.parser,
            // Only a user file's mapping of a built-in type costs anything per record.
            map_builtin: log_type.parser.is_some() && log_type.has_mapping(),
            exclusions: self.exclusions.for_type(&log_type.name),
            ctx,
            ingested_text: format_time(ingested),
            name,
            threat: self.threat_feeds.as_ref().map(|f| f.current()),
            org: self.org_context.as_ref().map(|o| o.current()),
        };
        let splitter = Splitter::for_type(log_type);
        // Flow logs go straight from a line's values to JSON, unless the user's mapping or
        // document id needs the document as fields.
        let direct_flow = match splitter {
            Splitter::Text {
                header_lines,
                named_fields: true,
                ..
            } if log_type.parser == Some(ParserKind::VpcFlow)
                && !parts.map_builtin
                && log_type.doc_id.is_none()
                && !self.enrichers.need_fields(log_type)
                && !self
                    .rules
                    .as_ref()
                    .is_some_and(|r| r.applies_to(&log_type.name)) =>
            {
                Some(header_lines)
            }
            _ => None,
        };
        let decoded = decode::decompress(reader)
            .map_err(|source| ReadError::Io {
                position: "the start".to_owned(),
                source,
            })
            .and_then(|mut reader| {
                if !matches!(splitter, Splitter::Parquet) {
                    decode::check_text(&mut *reader).map_err(|e| match e {
                        ReadError::NotText(what) if name.ends_with(".gz") => {
                            ReadError::NotText(format!("{what}, although its name ends in .gz"))
                        }
                        other => other,
                    })?;
                }
                Ok(reader)
            });
        let (result, counts) = match decoded {
            Err(e) => (Err(e), TypeStats::default()),
            Ok(mut reader) if self.threads > 1 => match direct_flow {
                Some(header_lines) => parallel::split_flow(
                    &mut reader,
                    header_lines,
                    &parts,
                    self.threads,
                    stats,
                    prepare,
                    emit,
                ),
                None => parallel::split(
                    &splitter,
                    &mut reader,
                    &parts,
                    self.threads,
                    stats,
                    prepare,
                    emit,
                ),
            },
            Ok(mut reader) => {
                let mut emit_prepared = |doc: Document| emit(prepare(doc));
                let mut state = ObjectState::new(parts, stats, &mut emit_prepared);
                let result = match direct_flow {
                    Some(header_lines) => {
                        decode::split_named_fields(&mut reader, header_lines, &mut |item| {
                            state.flow_item(item)
                        })
                    }
                    None => splitter.split(&mut reader, &mut |item| state.item(item)),
                };
                (result, state.counts)
            }
        };
        stats
            .per_type
            .entry(log_type.name.clone())
            .or_default()
            .add(&counts);
        match result {
            Ok(()) => Outcome::Loaded {
                log_type: log_type.name.clone(),
            },
            Err(e) => {
                let reason = e.to_string();
                stats.error(
                    Some(&log_type.name),
                    ErrorReport {
                        object: name.to_owned(),
                        position: None,
                        reason: reason.clone(),
                    },
                );
                Outcome::Failed {
                    log_type: log_type.name.clone(),
                    reason,
                }
            }
        }
    }
}

/// What every record of an object is normalized with: shared by the threads of an object
/// loaded on several (see [`parallel`]).
#[derive(Clone)]
struct ObjectParts<'p> {
    pipeline: &'p Pipeline,
    log_type: &'p LogType,
    parser: Option<ParserKind>,
    map_builtin: bool,
    exclusions: &'p [Rule],
    ctx: Context<'p>,
    ingested_text: String,
    name: &'p str,
    threat: Option<Arc<ThreatIntel>>,
    org: Option<Arc<Directory>>,
}

struct ObjectState<'p, 'e> {
    pipeline: &'p Pipeline,
    log_type: &'p LogType,
    /// `None`: a configured type, normalized from its `ecs` lines.
    parser: Option<ParserKind>,
    map_builtin: bool,
    exclusions: &'p [Rule],
    ctx: Context<'p>,
    ingested_text: String,
    name: &'p str,
    stats: &'e mut Stats,
    emit: &'e mut dyn FnMut(Document),
    out: Vec<Normalized>,
    /// This object's counters, added to the run's when the object is done (a lookup by name
    /// per record would cost an allocation each).
    counts: TypeStats,
    /// The flow log writer of the object's header (the direct path of [`ObjectState::flow_item`]).
    flow: Option<vpcflow::Writer>,
    /// The threat indicators of the whole object (feeds reloaded meanwhile apply from the next).
    threat: Option<Arc<ThreatIntel>>,
    /// The organization directory of the whole object, likewise.
    org: Option<Arc<Directory>>,
    flow_capacity: usize,
    index_cache: std::cell::RefCell<Option<(String, i32, String)>>,
    /// The last `@timestamp` written: records of an object come in time order, many in the
    /// same millisecond.
    time_cache: std::cell::RefCell<Option<(DateTime<Utc>, String)>>,
}

impl<'p, 'e> ObjectState<'p, 'e> {
    fn new(
        parts: ObjectParts<'p>,
        stats: &'e mut Stats,
        emit: &'e mut dyn FnMut(Document),
    ) -> Self {
        let ObjectParts {
            pipeline,
            log_type,
            parser,
            map_builtin,
            exclusions,
            ctx,
            ingested_text,
            name,
            threat,
            org,
        } = parts;
        Self {
            pipeline,
            log_type,
            parser,
            map_builtin,
            exclusions,
            ctx,
            ingested_text,
            name,
            stats,
            emit,
            out: Vec::new(),
            counts: TypeStats::default(),
            flow: None,
            threat,
            org,
            flow_capacity: 1024,
            index_cache: std::cell::RefCell::new(None),
            time_cache: std::cell::RefCell::new(None),
        }
    }

    fn item(&mut self, item: Item<'_>) {
        match item {
            Item::Unparsed(unparsed) => self.item(unparsed.parse()),
            Item::Error(e) => {
                self.counts.records += 1;
                self.stats.error(
                    Some(&self.log_type.name),
                    ErrorReport {
                        object: self.name.to_owned(),
                        position: Some(e.position.to_string()),
                        reason: e.reason,
                    },
                );
            }
            Item::Record(record) => {
                self.counts.records += 1;
                if self.log_type.via_firelens
                    && self.log_type.ignore_container_stderr
                    && record.value.get("source").and_then(Value::as_str) == Some("stderr")
                {
                    let label = format!("ignore_container_stderr ([{}])", self.log_type.name);
                    self.count_excluded_as(label);
                    return;
                }
                // Exclusion rules look at the original record, before normalization.
                if !self.exclusions.is_empty()
                    && let Some(rule) = exclude::first_match(self.exclusions, &record.value)
                {
                    self.count_excluded(rule);
                    return;
                }
                // A wrapper (a subscription payload, a FireLens line) holds the records the
                // rules are about: they are looked at once unwrapped.
                let wrapped = !self.exclusions.is_empty()
                    && (self.log_type.via_firelens
                        || (self.log_type.via_cwl && cloudwatch::is_payload(&record.value)));
                self.out.clear();
                // A record split without its bytes (several XML events in one chunk, an
                // EventBridge event's records) is identified by its value as written, never by
                // what this version's mapping makes of it: a later version that maps more
                // fields loads the object again without duplicates.
                let written = match record.raw {
                    Some(_) => String::new(),
                    None => record.value.to_string(),
                };
                let raw = record.raw.unwrap_or(written.as_bytes());
                // A record can yield several documents (the findings of one Security Hub
                // event); those finished before a bad one are still loaded.
                let result = self.normalize(record.value);
                let dropped = wrapped && self.exclude_unwrapped();
                if result.is_ok() && self.out.is_empty() {
                    // Records the rules dropped are counted as excluded already.
                    if !dropped {
                        self.counts.skipped += 1;
                    }
                    return;
                }
                let many = self.out.len() > 1 || result.is_err();
                let out = std::mem::take(&mut self.out);
                let mut done = 0;
                for (i, mut normalized) in out.into_iter().enumerate() {
                    let additions = self.enrich(&mut normalized.doc);
                    let mut doc = self.finish(normalized, additions, raw, many.then_some(i));
                    self.detect(&mut doc);
                    (self.emit)(doc);
                    done += 1;
                }
                self.counts.documents += done;
                if let Err(e) = result {
                    self.record_error(record.position, &e);
                }
            }
        }
    }

    /// The type of a document: the one it names (a CloudWatch Logs payload's events are of the
    /// type their log group routes to), else its object's.
    fn type_of(&self, doc: &Doc) -> &LogType {
        doc.get("@log_type")
            .and_then(Value::as_str)
            .and_then(|name| self.pipeline.config.get(name))
            .unwrap_or(self.log_type)
    }

    /// Adds what the enrichers know, as a document of its type.
    fn enrich(&self, doc: &mut Doc) -> Additions {
        let mut additions = Additions::default();
        let enrichers = &self.pipeline.enrichers;
        if !enrichers.is_empty() {
            enrichers.apply(doc, self.type_of(doc), &mut additions);
        }
        additions
    }

    /// Emits an alert for every rule that matches `doc`.
    fn detect(&mut self, doc: &mut Document) {
        let Some(rules) = self.pipeline.rules.as_deref() else {
            return;
        };
        // What enrichment added is left out only when no rule reads it (see `finish`).
        let (Source::Fields(fields) | Source::Enriched(fields, _)) = &mut doc.source else {
            return;
        };
        // A document of another type than its object's (a CloudWatch Logs payload's events)
        // names it; the name is copied only then, as the fields are moved below.
        let other_type = match fields.get("@log_type").and_then(Value::as_str) {
            Some(t) if t != self.log_type.name => Some(t.to_owned()),
            _ => None,
        };
        let log_type: &str = other_type.as_deref().unwrap_or(&self.log_type.name);
        let Some(engine) = rules.engine(log_type) else {
            return;
        };
        // The engine reads a JSON value: the fields are moved in and back, not copied.
        let value = Value::Object(std::mem::take(fields));
        let matches = engine.matches(&value);
        if let Value::Object(map) = value {
            *fields = map;
        }
        if matches.is_empty() {
            return;
        }
        // Alerts carry fields enrichment adds (the location of an address).
        if let Source::Enriched(..) = doc.source {
            let source = std::mem::replace(&mut doc.source, Source::Json(Vec::new()));
            doc.source = Source::Fields(source.into_fields());
        }
        let Source::Fields(fields) = &doc.source else {
            return;
        };
        for matched in matches {
            let alert = crate::rules::alert::alert_document(
                &matched,
                &doc.index,
                &doc.id,
                log_type,
                fields,
                &self.ingested_text,
            );
            (self.emit)(alert);
            self.counts.alerts += 1;
        }
    }

    fn record_error(&mut self, position: Position, e: &NormalizeError) {
        self.stats.error(
            Some(&self.log_type.name),
            ErrorReport {
                object: self.name.to_owned(),
                position: Some(position.to_string()),
                reason: e.to_string(),
            },
        );
    }

    fn normalize(&mut self, value: Value) -> Result<(), NormalizeError> {
        let ctx = &self.ctx;
        let out = &mut self.out;
        let geo = self.pipeline.geo.as_deref();
        if self.log_type.via_cwl
            && cloudwatch::is_payload(&value)
            && let Some(routes) = self.pipeline.payload_routes.get(&self.log_type.name)
        {
            let result = cloudwatch::normalize_with(value, ctx, routes, out);
            if self.map_builtin {
                for n in out.iter_mut() {
                    configured::apply_mapping(&mut n.doc, self.log_type, geo);
                }
            }
            return result;
        }
        let Some(parser) = self.parser else {
            return configured::normalize(value, self.log_type, geo, ctx, out);
        };
        let result = match parser {
            ParserKind::CloudTrail => cloudtrail::normalize(value, ctx, out),
            ParserKind::VpcFlow => vpcflow::normalize(value, ctx, out),
            ParserKind::Waf => waf::normalize(value, ctx, out),
            ParserKind::SecurityHub => securityhub::normalize(value, ctx, out),
            ParserKind::GuardDuty => guardduty::normalize(value, ctx, out),
            ParserKind::LinuxSecure => linux_secure::normalize(value, ctx, out),
            ParserKind::CloudWatch => {
                let result = cloudwatch::normalize_with(value, ctx, &self.pipeline.routes, out);
                // Messages a log group routes to a built-in type (CloudTrail, VPC flow, secure
                // logs) get that type's user mapping, as its own objects do.
                if self.pipeline.routed_mapping {
                    for n in out.iter_mut() {
                        if let Some(lt) = n
                            .doc
                            .get("@log_type")
                            .and_then(Value::as_str)
                            .and_then(|name| self.pipeline.config.get(name))
                            .filter(|lt| lt.parser.is_some() && lt.has_mapping())
                        {
                            configured::apply_mapping(&mut n.doc, lt, geo);
                        }
                    }
                }
                result
            }
        };
        if self.map_builtin {
            for n in out.iter_mut() {
                configured::apply_mapping(&mut n.doc, self.log_type, geo);
            }
        }
        result
    }

    /// The index name, computed once per type and local day (records of an object are
    /// mostly from the same day).
    fn index_for(&self, lt: &LogType, time: DateTime<Utc>) -> String {
        let day = time
            .with_timezone(&lt.index_tz)
            .date_naive()
            .num_days_from_ce();
        let mut cache = self.index_cache.borrow_mut();
        if let Some((name, cached_day, index)) = cache.as_ref()
            && *cached_day == day
            && *name == lt.name
        {
            return index.clone();
        }
        let index = index_name(lt, time);
        *cache = Some((lt.name.clone(), day, index.clone()));
        index
    }

    /// [`format_time`], remembering the last time formatted.
    fn time_text(&self, time: DateTime<Utc>) -> String {
        let mut cache = self.time_cache.borrow_mut();
        if let Some((cached, text)) = cache.as_ref()
            && *cached == time
        {
            return text.clone();
        }
        let text = format_time(time);
        *cache = Some((time, text.clone()));
        text
    }

    /// Adds the common fields, the id and the index.
    fn finish(
        &self,
        n: Normalized,
        mut additions: Additions,
        raw: &[u8],
        nth: Option<usize>,
    ) -> Document {
        let mut doc = n.doc;
        // A message parser of another type (CloudTrail through CloudWatch Logs) names it, so
        // the document lands in that type's index.
        let lt = self.type_of(&doc);
        // A configured id or a rule may read what the enrichers added: there it becomes
        // fields.
        let id_fields = [lt.doc_id.as_deref(), lt.doc_id_suffix.as_deref()];
        if !additions.is_empty()
            && (id_fields.into_iter().flatten().any(|f| additions.holds(f))
                || self
                    .pipeline
                    .rules
                    .as_ref()
                    .and_then(|r| r.engine(&lt.name))
                    .is_some_and(|engine| engine.may_read(|field| additions.meets(field))))
        {
            std::mem::take(&mut additions).copy_into(&mut doc);
        }
        let id = configured_id(&doc, lt)
            .or(n.id)
            .unwrap_or_else(|| hash_id(raw, nth));
        let event_time = n.timestamp;
        let (timestamp, index) = self.placed(lt, event_time);
        if event_time.is_none() {
            // Say so, instead of silently dating the event at load time.
            add_tag(&mut doc, "_timestamp_from_ingest");
        }
        // No string of a record is longer than the record: most need no look.
        let may_hold_long_values = raw.len() > crate::oversize::FLAT_VALUE_MAX;
        if may_hold_long_values && let Some(flat) = self.pipeline.flat_objects.get(&lt.name) {
            let cut = crate::oversize::cut_long_flat_values(&mut doc, flat);
            if !cut.is_empty() {
                tracing::warn!(object = self.ctx.s3_key, fields = ?cut, "values too long to index were cut");
                add_tag(&mut doc, crate::oversize::TRUNCATED_TAG);
            }
        }
        doc.insert(
            "@timestamp".to_owned(),
            Value::String(self.time_text(timestamp)),
        );
        ecs::set(&mut doc, "event.ingested", self.ingested_text.clone());
        ecs::set(&mut doc, "cloud.provider", "aws");
        if ecs::get_in(&doc, "cloud.account.id").is_none() {
            ecs::set_opt(&mut doc, "cloud.account.id", self.ctx.key_account);
        }
        if ecs::get_in(&doc, "cloud.region").is_none() {
            ecs::set_opt(&mut doc, "cloud.region", self.ctx.key_region);
        }
        if !doc.contains_key("@log_type") {
            doc.insert("@log_type".to_owned(), Value::String(lt.name.clone()));
        }
        doc.insert(
            "@log_s3key".to_owned(),
            Value::String(self.ctx.s3_key.to_owned()),
        );
        let source = if additions.is_empty() {
            Source::Fields(doc)
        } else {
            Source::Enriched(doc, additions)
        };
        Document { index, id, source }
    }

    /// `@timestamp` (the event time, or the ingest time for a record without one) and the
    /// index of a document.
    fn placed(&self, lt: &LogType, event_time: Option<DateTime<Utc>>) -> (DateTime<Utc>, String) {
        let timestamp = event_time.unwrap_or(self.ctx.ingested);
        let index_time = match lt.index_time {
            IndexTime::Timestamp => timestamp,
            IndexTime::Ingested => self.ctx.ingested,
        };
        (timestamp, self.index_for(lt, index_time))
    }

    /// A line of a flow log object, written straight to its document's JSON by
    /// [`vpcflow::Writer`] with the fields [`ObjectState::finish`] adds to the others.
    fn flow_item(&mut self, item: FieldsItem<'_>) {
        let (values, raw, position) = match item {
            FieldsItem::Header(names) => {
                self.flow = Some(vpcflow::Writer::new(names));
                return;
            }
            FieldsItem::Error(e) => return self.item(Item::Error(e)),
            FieldsItem::Line {
                values,
                raw,
                position,
            } => (values, raw, position),
        };
        self.counts.records += 1;
        let Some(mut writer) = self.flow.take() else {
            let e = NormalizeError::MissingField("the header line");
            return self.record_error(position, &e);
        };
        if !self.exclusions.is_empty()
            && let Some(rule) =
                exclude::first_match_flat(self.exclusions, &|name| writer.value_of(name, values))
        {
            self.count_excluded(rule);
        } else {
            self.write_flow(&mut writer, values, raw, position);
        }
        self.flow = Some(writer);
    }

    fn write_flow(
        &mut self,
        writer: &mut vpcflow::Writer,
        values: &[&str],
        raw: &[u8],
        position: Position,
    ) {
        let common = vpcflow::Common {
            ingested: &self.ingested_text,
            key_account: self.ctx.key_account,
            key_region: self.ctx.key_region,
            geo: self.pipeline.geo.as_deref(),
            threat: self.threat.as_deref(),
            org: self.org.as_deref(),
        };
        let mut json = Vec::with_capacity(self.flow_capacity);
        let event_time = match writer.write(values, Some(&common), &mut json) {
            Ok(t) => t,
            Err(e) => return self.record_error(position, &e),
        };
        let lt = self.log_type;
        let (timestamp, index) = self.placed(lt, event_time);
        json.extend_from_slice(br#","@timestamp":"#);
        json_write::write_str(&mut json, &self.time_text(timestamp));
        match (event_time.is_none(), writer.threat_matched()) {
            (false, false) => {}
            (true, false) => json.extend_from_slice(br#","tags":["_timestamp_from_ingest"]"#),
            (false, true) => json.extend_from_slice(br#","tags":["threat-intel"]"#),
            (true, true) => {
                json.extend_from_slice(br#","tags":["_timestamp_from_ingest","threat-intel"]"#)
            }
        }
        json.extend_from_slice(br#","@log_type":"#);
        json_write::write_str(&mut json, &lt.name);
        json.extend_from_slice(br#","@log_s3key":"#);
        json_write::write_str(&mut json, self.ctx.s3_key);
        json.push(b'}');
        // The next document is about as long: one allocation, no growing. Lengths alternate
        // (an address on the internet brings its location), so a longer one is remembered
        // for a while.
        self.flow_capacity = (json.len() + 64).max(self.flow_capacity - self.flow_capacity / 16);
        (self.emit)(Document {
            index,
            id: hash_id(raw, None),
            source: Source::Json(json),
        });
        self.counts.documents += 1;
    }

    /// Drops the documents of unwrapped records an exclusion rule matches (by their original
    /// fields); whether any was dropped.
    fn exclude_unwrapped(&mut self) -> bool {
        let mut kept = Vec::with_capacity(self.out.len());
        let mut dropped = false;
        for mut n in std::mem::take(&mut self.out) {
            let value = Value::Object(std::mem::take(&mut n.doc));
            match exclude::first_match(self.exclusions, &value) {
                Some(rule) => {
                    self.count_excluded(rule);
                    dropped = true;
                }
                None => {
                    if let Value::Object(doc) = value {
                        n.doc = doc;
                    }
                    kept.push(n);
                }
            }
        }
        self.out = kept;
        dropped
    }

    fn count_excluded(&mut self, rule: &Rule) {
        self.count_excluded_as(rule.label.clone());
    }

    fn count_excluded_as(&mut self, label: String) {
        *self.stats.excluded.entry(label).or_default() += 1;
        self.counts.excluded += 1;
    }
}

/// `doc_id` (and `doc_id_suffix`) of the configuration, read from the document's fields.
fn configured_id(doc: &Doc, lt: &LogType) -> Option<String> {
    let field = lt.doc_id.as_deref()?;
    let mut id = scalar_text(ecs::get_in(doc, field)?)?;
    if let Some(suffix) = lt.doc_id_suffix.as_deref()
        && let Some(value) = ecs::get_in(doc, suffix).and_then(scalar_text)
    {
        id.push('_');
        id.push_str(&value);
    }
    Some(id)
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// xxh3-128 of the raw record (plus the document's place when one record yields several), or
/// of the normalized document when the format keeps no raw bytes. Deterministic, so loading
/// the same object twice gives the same ids.
fn add_tag(doc: &mut Doc, tag: &str) {
    let tags = doc
        .entry("tags".to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = tags {
        items.push(Value::String(tag.to_owned()));
    }
}

fn hash_id(bytes: &[u8], nth: Option<usize>) -> String {
    use xxhash_rust::xxh3::Xxh3;
    let mut h = Xxh3::new();
    h.update(bytes);
    if let Some(n) = nth {
        h.update(b"\0");
        h.update(n.to_string().as_bytes());
    }
    // The 32 lowercase hex digits of `{:032x}`, without the formatting machinery.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(32);
    for byte in h.digest128().to_be_bytes() {
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    id
}

/// Times as documents carry them: RFC 3339, UTC, milliseconds.
/// The cores this process may run on: the threads an object is loaded on by default.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub(crate) fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `<index_name>[-<index_suffix>]-<period>`, the period taken in `index_tz`.
pub fn index_name(lt: &LogType, time: DateTime<Utc>) -> String {
    let local = time.with_timezone(&lt.index_tz);
    let period = match lt.index_rotation {
        Rotation::Daily => local.format("%Y-%m-%d"),
        Rotation::Weekly => local.format("%G-w%V"),
        Rotation::Monthly => local.format("%Y-%m"),
        Rotation::Yearly => local.format("%Y"),
    };
    match &lt.index_suffix {
        Some(suffix) => format!("{}-{suffix}-{period}", lt.index_name),
        None => format!("{}-{period}", lt.index_name),
    }
}

/// Everything a caller needs to load local bytes in one call (tests, the property test).
pub fn load_bytes(
    pipeline: &Pipeline,
    key: &str,
    bytes: &[u8],
    ingested: DateTime<Utc>,
) -> (Vec<Document>, Stats, Outcome) {
    let mut docs = Vec::new();
    let mut stats = Stats::default();
    let outcome =
        pipeline.load_object(key, key, bytes, ingested, &mut stats, &mut |d| docs.push(d));
    (docs, stats, outcome)
}

/// Writes documents as NDJSON or bulk lines.
pub fn write_documents(docs: &[Document], bulk: bool, w: &mut dyn Write) -> std::io::Result<()> {
    let mut buf = Vec::new();
    for d in docs {
        if bulk {
            d.write_bulk(&mut buf)?;
        } else {
            d.write_ndjson(&mut buf)?;
        }
    }
    w.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use chrono::TimeZone;

    fn lt(rotation: &str, tz: &str, suffix: &str) -> LogType {
        let user = format!(
            "[t]\ns3_key = t/\nindex_name = log-t\nindex_rotation = {rotation}\nindex_tz = {tz}\nindex_suffix = {suffix}\n"
        );
        Config::with_user_file("user.ini", &user)
            .expect("config")
            .get("t")
            .expect("t")
            .clone()
    }

    #[test]
    fn index_names_for_every_rotation_and_time_zone() {
        let t = Utc
            .with_ymd_and_hms(2024, 12, 31, 20, 0, 0)
            .single()
            .expect("time");
        assert_eq!(index_name(&lt("monthly", "+00:00", ""), t), "log-t-2024-12");
        assert_eq!(index_name(&lt("monthly", "+09:00", ""), t), "log-t-2025-01");
        assert_eq!(
            index_name(&lt("daily", "+00:00", ""), t),
            "log-t-2024-12-31"
        );
        assert_eq!(
            index_name(&lt("daily", "-05:00", "eu"), t),
            "log-t-eu-2024-12-31"
        );
        // 2024-12-31 is in ISO week 1 of 2025.
        assert_eq!(index_name(&lt("weekly", "+00:00", ""), t), "log-t-2025-w01");
        assert_eq!(index_name(&lt("yearly", "+09:00", ""), t), "log-t-2025");
    }

    #[test]
    fn hash_ids_are_stable_and_distinct_per_document() {
        let a = hash_id(b"line", None);
        assert_eq!(a, hash_id(b"line", None));
        assert_eq!(a, format!("{:032x}", xxhash_rust::xxh3::xxh3_128(b"line")));
        assert_eq!(a.len(), 32);
        assert_ne!(a, hash_id(b"line", Some(0)));
        assert_ne!(hash_id(b"line", Some(0)), hash_id(b"line", Some(1)));
    }

    /// Flow logs written straight to JSON get exactly the documents the map path and
    /// [`ObjectState::finish`] make (a `doc_id` forces the map path and changes only the id).
    #[test]
    fn direct_flow_documents_equal_the_map_path() {
        let text = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status region\n\
            2 111122223333 eni-1 192.0.2.1 198.51.100.2 443 49152 6 3 180 1714521600 1714521660 ACCEPT OK -\n\
            2 - eni-2 - - - - - - - - - - NODATA eu-west-1\n\
            2 111122223333 eni-3 192.0.2.1 nope 443 49152 6 3 180 1714521600 1714521660 ACCEPT OK -\n";
        let key = "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/x.log";
        let ingested = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let direct = Pipeline::new(Config::builtin().expect("config"));
        let user = "[vpcflowlogs]\ndoc_id = interface-id\n";
        let mapped = Pipeline::new(Config::with_user_file("user.ini", user).expect("config"));
        let (a, a_stats, _) = load_bytes(&direct, key, text.as_bytes(), ingested);
        let (b, b_stats, _) = load_bytes(&mapped, key, text.as_bytes(), ingested);
        assert!(matches!(a[0].source, Source::Json(_)));
        assert!(matches!(b[0].source, Source::Fields(_)));
        assert_eq!(a.len(), 2);
        assert_eq!(
            b.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["eni-1", "eni-2"]
        );
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.index, b.index);
            assert_eq!(a.source.fields(), b.source.fields());
        }
        assert_eq!(a_stats.per_type, b_stats.per_type);
        assert_eq!(a_stats.errors, b_stats.errors);
        let second = a[1].source.fields();
        assert_eq!(
            second.get("tags"),
            Some(&Value::from(vec!["_timestamp_from_ingest"]))
        );
        assert_eq!(
            ecs::get_in(&second, "cloud.region"),
            Some(&Value::from("eu-west-1"))
        );
    }

    /// A GeoIP lookup that places every address in Australia, in AS 1 (IPv4) or 0.
    #[derive(Debug)]
    struct Somewhere;

    impl crate::enrich::geo::GeoLookup for Somewhere {
        fn lookup(&self, ip: std::net::IpAddr) -> Option<crate::enrich::geo::GeoInfo> {
            let mut info = crate::enrich::geo::GeoInfo::default();
            info.geo
                .insert("country_iso_code".into(), Value::from("AU"));
            info.asn
                .insert("number".into(), Value::from(u32::from(ip.is_ipv4())));
            Some(info)
        }
    }

    /// With every enrichment on, the flow log writer's documents are still those of the
    /// field-by-field path (whose enrichers the writer stands in for).
    #[test]
    fn enriched_direct_flow_documents_equal_the_map_path() {
        use crate::enrich::files::{Files, Location};
        use crate::enrich::org::{OrgContext, OrgSource};
        use crate::enrich::threat::ThreatFeeds;
        use serde_json::json;

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("feed.txt"), "1.128.0.2\n").expect("feed");
        std::fs::write(
            dir.path().join("accounts.csv"),
            "account_id,name,ou_path,env\n111122223333,prod,Workloads/Prod,prod\n",
        )
        .expect("accounts");
        let files = Files { s3: None };
        let feeds = ThreatFeeds::new(Location::Dir(dir.path().to_path_buf()));
        futures::executor::block_on(feeds.refresh(&files)).expect("feeds");
        let org = OrgContext::new(
            OrgSource::Mapping(dir.path().join("accounts.csv").display().to_string()),
            Vec::new(),
            std::time::Duration::from_secs(60),
        );
        futures::executor::block_on(org.refresh(None, &files)).expect("org");
        let (feeds, org) = (Arc::new(feeds), Arc::new(org));
        let enrich = |pipeline: Pipeline| {
            pipeline
                .with_geo(Some(Arc::new(Somewhere)))
                .with_threat_feeds(Some(feeds.clone()))
                .with_org_context(Some(org.clone()))
        };
        let text = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
            2 111122223333 eni-1 81.2.69.1 1.128.0.2 443 49152 6 3 180 1714521600 1714521660 ACCEPT OK\n\
            2 444455556666 eni-2 81.2.69.1 10.0.0.1 443 49152 6 3 180 1714521600 1714521660 ACCEPT OK\n";
        let key = "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/x.log";
        let ingested = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let direct = enrich(Pipeline::new(Config::builtin().expect("config")));
        let user = "[vpcflowlogs]\ndoc_id = interface-id\n";
        let mapped = enrich(Pipeline::new(
            Config::with_user_file("user.ini", user).expect("config"),
        ));
        let (a, _, _) = load_bytes(&direct, key, text.as_bytes(), ingested);
        let (b, _, _) = load_bytes(&mapped, key, text.as_bytes(), ingested);
        assert!(matches!(a[0].source, Source::Json(_)));
        // The configured id proves the field-by-field path (whose enriched documents are
        // JSON too, written with the shared objects).
        assert_eq!(b[0].id, "eni-1");
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.source.fields(), b.source.fields());
        }
        let first = a[0].source.fields();
        assert_eq!(
            ecs::get_in(&first, "cloud.account.name"),
            Some(&json!("prod"))
        );
        assert_eq!(
            ecs::get_in(&first, "aws.organization.unit.path"),
            Some(&json!("Workloads/Prod"))
        );
        assert_eq!(
            ecs::get_in(&first, "aws.account.tags.env"),
            Some(&json!("prod"))
        );
        assert!(ecs::get_in(&first, "aws.vpcflow").is_some());
        assert_eq!(
            ecs::get_in(&first, "destination.geo.country_iso_code"),
            Some(&json!("AU"))
        );
        assert_eq!(
            ecs::get_in(&first, "threat.enrichments")
                .and_then(Value::as_array)
                .map(Vec::len),
            Some(1)
        );
        assert_eq!(first.get("tags"), Some(&json!(["threat-intel"])));
        let second = a[1].source.fields();
        assert!(
            ecs::get_in(&second, "cloud.account.name").is_none(),
            "unknown account"
        );
        assert!(second.get("threat").is_none() && second.get("tags").is_none());
    }

    /// A value OpenSearch could not index inside a flat object is cut, and the document says
    /// so; its id is that of the record as it was.
    #[test]
    fn too_long_values_in_flat_objects_are_cut_and_tagged() {
        let policy = "x".repeat(40_000);
        let record = |policy: &str| {
            format!(
                r#"{{"Records":[{{"eventTime":"2024-05-01T00:00:00Z","eventSource":"kms.amazonaws.com","eventName":"PutKeyPolicy","eventID":"e1","requestParameters":{{"keyId":"k","policy":"{policy}"}}}}]}}"#
            )
        };
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_x.json";
        let pipeline = Pipeline::new(Config::builtin().expect("config"));
        let (docs, stats, _) = load_bytes(&pipeline, key, record(&policy).as_bytes(), Utc::now());
        assert!(stats.errors.is_empty(), "{:?}", stats.errors);
        let doc = docs[0].source.fields();
        let kept = ecs::get_in(&doc, "requestParameters.policy")
            .and_then(Value::as_str)
            .expect("policy");
        assert!(kept.len() < 30_100 && kept.ends_with("[cut: 40000 bytes]"));
        assert_eq!(
            doc.get("tags"),
            Some(&Value::from(vec![crate::oversize::TRUNCATED_TAG]))
        );
        assert_eq!(docs[0].id, "e1");
        let (short, _, _) = load_bytes(&pipeline, key, record("short").as_bytes(), Utc::now());
        assert_eq!(short[0].source.fields().get("tags"), None);
    }

    /// A document a detection rule matches is followed by its alert, to the alert index, with
    /// an id that a second load gives again.
    #[test]
    fn matched_documents_yield_alerts() {
        let config = Config::builtin().expect("config");
        let rules = RuleSet::with_bundled(&config, &[], &[]);
        let pipeline = Pipeline::new(config).with_rules(Some(Arc::new(rules)));
        let object = r#"{"Records":[
            {"eventTime":"2026-12-01T10:00:00Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","eventID":"e1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","userName":"mallory"}},
            {"eventTime":"2026-12-01T10:00:01Z","eventSource":"cloudtrail.amazonaws.com","eventName":"DescribeTrails","eventID":"e2","recipientAccountId":"111122223333"}]}"#;
        let key = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/01/111122223333_CloudTrail_eu-west-1_x.json";
        let (docs, stats, _) = load_bytes(&pipeline, key, object.as_bytes(), Utc::now());
        let indices: Vec<&str> = docs.iter().map(|d| d.index.as_str()).collect();
        assert_eq!(
            indices,
            [
                "alert-2026-12",
                "log-aws-cloudtrail-2026-12",
                "log-aws-cloudtrail-2026-12"
            ]
        );
        let alert = docs[0].source.fields();
        assert_eq!(
            ecs::get_in(&alert, "alert.source.id"),
            Some(&Value::from("e1"))
        );
        assert_eq!(
            ecs::get_in(&alert, "user.name"),
            Some(&Value::from("mallory"))
        );
        assert_eq!(stats.per_type["cloudtrail"].alerts, 1);
        assert_eq!(stats.per_type["cloudtrail"].documents, 2);
        assert!(stats.summary().contains("cloudtrail: alerts 1"));
        let (again, _, _) = load_bytes(&pipeline, key, object.as_bytes(), Utc::now());
        assert_eq!(again[0].id, docs[0].id);
        // Without rules, no alert.
        let plain = Pipeline::new(Config::builtin().expect("config"));
        let (docs, _, _) = load_bytes(&plain, key, object.as_bytes(), Utc::now());
        assert_eq!(docs.len(), 2);
    }

    /// Documents keep what enrichment shares with others out of their fields unless a rule
    /// reads it; a rule that reads it sees it, and alerts carry it either way.
    #[test]
    fn rules_see_what_enrichment_adds_and_alerts_carry_it() {
        use crate::rules::RuleSet;
        use serde_json::json;
        let object = r#"{"Records":[
            {"eventTime":"2026-12-01T10:00:00Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","eventID":"e1","sourceIPAddress":"81.2.69.1"},
            {"eventTime":"2026-12-01T10:00:01Z","eventSource":"cloudtrail.amazonaws.com","eventName":"DescribeTrails","eventID":"e2","sourceIPAddress":"81.2.69.2"}]}"#;
        let key = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/01/111122223333_CloudTrail_eu-west-1_x.json";
        let load = |rule: &str| {
            let config = Config::builtin().expect("config");
            let rules = RuleSet::build(&config, [("r.yml", rule)], &[]);
            assert!(rules.problems().is_empty(), "{:?}", rules.problems());
            let pipeline = Pipeline::new(config)
                .with_rules(Some(Arc::new(rules)))
                .with_geo(Some(Arc::new(Somewhere)));
            load_bytes(&pipeline, key, object.as_bytes(), Utc::now()).0
        };
        let country =
            |d: &Document| ecs::get_in(&d.source.fields(), "source.geo.country_iso_code").cloned();

        // A rule on the added location: it matches every document.
        let from_au = "title: AU\nid: t-au\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {source.geo.country_iso_code: AU}\n  condition: s\n";
        let docs = load(from_au);
        let alerts: Vec<&Document> = docs
            .iter()
            .filter(|d| d.index.starts_with("alert-"))
            .collect();
        assert_eq!(alerts.len(), 2);
        assert!(
            docs.iter()
                .filter(|d| !d.index.starts_with("alert-"))
                .all(|d| matches!(d.source, Source::Fields(_)))
        );

        // A rule that reads nothing added: the alert still carries the location, and the
        // document it did not match keeps the shared object out of its fields.
        let stop = "title: Stop\nid: t-stop\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventName: StopLogging}\n  condition: s\n";
        let docs = load(stop);
        assert_eq!(docs.len(), 3);
        assert!(docs[0].index.starts_with("alert-"));
        assert_eq!(country(&docs[0]), Some(json!("AU")));
        assert_eq!(country(&docs[1]), Some(json!("AU")));
        assert!(matches!(docs[2].source, Source::Enriched(..)));
        assert_eq!(country(&docs[2]), Some(json!("AU")));
    }

    #[test]
    fn bulk_and_ndjson_lines() {
        let mut source = Doc::new();
        source.insert("a".into(), Value::from(1));
        let d = Document {
            index: "i".into(),
            id: "x\"y".into(),
            source: source.into(),
        };
        let mut out = Vec::new();
        d.write_bulk(&mut out).expect("bulk");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\"create\":{\"_index\":\"i\",\"_id\":\"x\\\"y\"}}\n{\"a\":1}\n"
        );
        out.clear();
        d.write_ndjson(&mut out).expect("ndjson");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\"_index\":\"i\",\"_id\":\"x\\\"y\",\"_source\":{\"a\":1}}\n"
        );
    }

    /// Syslog lines have no year: it comes from the object (its key's date, else when it was
    /// written), never from the load, so loading the same object in another year gives the
    /// same index and ids; December lines of a January object belong to the year before.
    #[test]
    fn syslog_years_come_from_the_object_not_the_load() {
        let pipeline = Pipeline::new(Config::builtin().expect("config"));
        let key = "AWSLogs/111122223333/linux/2027/01/01/secure";
        let text = "Dec 31 23:59:58 web-1 sshd[1]: Failed password for root from 198.51.100.7 port 22 ssh2\nJan  1 00:00:03 web-1 sshd[1]: Accepted password for root from 198.51.100.7 port 22 ssh2\n";
        let at = |y: i32| {
            Utc.with_ymd_and_hms(y, 3, 1, 0, 0, 0)
                .single()
                .expect("time")
        };
        let summary = |docs: &[Document]| -> Vec<(String, String, String)> {
            docs.iter()
                .map(|d| {
                    let f = d.source.fields();
                    let t = f["@timestamp"].as_str().unwrap_or_default().to_owned();
                    (d.index.clone(), d.id.clone(), t)
                })
                .collect()
        };
        let (in_2027, stats, _) = load_bytes(&pipeline, key, text.as_bytes(), at(2027));
        assert_eq!(stats.error_count, 0);
        let (in_2031, _, _) = load_bytes(&pipeline, key, text.as_bytes(), at(2031));
        assert_eq!(summary(&in_2027), summary(&in_2031));
        let times: Vec<String> = summary(&in_2027).into_iter().map(|(_, _, t)| t).collect();
        assert_eq!(
            times,
            ["2026-12-31T23:59:58.000Z", "2027-01-01T00:00:03.000Z"]
        );
        assert_eq!(in_2027[0].index, "log-linux-secure-2026-12");

        // A key without a date: the time the object was written, not the load.
        let plain = "AWSLogs/111122223333/linux/secure";
        let written = Utc
            .with_ymd_and_hms(2025, 1, 2, 0, 0, 0)
            .single()
            .expect("time");
        let mut docs = Vec::new();
        let mut stats = Stats::default();
        pipeline.load_object_written(
            plain,
            plain,
            text.as_bytes(),
            at(2030),
            Some(written),
            &mut stats,
            &mut |d| docs.push(d),
        );
        let times: Vec<String> = summary(&docs).into_iter().map(|(_, _, t)| t).collect();
        assert_eq!(
            times,
            ["2024-12-31T23:59:58.000Z", "2025-01-01T00:00:03.000Z"]
        );
    }

    /// Records split without their bytes (several XML events in one chunk) keep their ids when
    /// a configuration maps more of their fields: reloading after an upgrade duplicates nothing.
    #[test]
    fn ids_of_records_without_their_bytes_do_not_depend_on_the_mapping() {
        let event = |n: u32| {
            format!(
                "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><EventID>4663</EventID><TimeCreated SystemTime='2026-03-04T12:00:0{n}.000Z'/><Computer>fs</Computer></System><EventData><Data Name='SubjectUserName'>u{n}</Data></EventData></Event>"
            )
        };
        let object = format!("{}{}", event(1), event(2));
        let key = "AWSLogs/111122223333/FSx/us-east-1/2026/03/04/12/aws-fsx-audit-1.gz";
        let ids = |config: Config| {
            let (docs, stats, _) =
                load_bytes(&Pipeline::new(config), key, object.as_bytes(), Utc::now());
            assert_eq!(stats.error_count, 0, "{:?}", stats.errors);
            docs.into_iter().map(|d| d.id).collect::<Vec<_>>()
        };
        let before = ids(Config::builtin().expect("config"));
        let mapped_more = Config::with_user_file(
            "user.ini",
            "[fsx-win]\necs = ${windows-event:ecs} file.path host.hostname\nhost.hostname = Event.System.Computer\n",
        )
        .expect("config");
        assert_eq!(before.len(), 2);
        assert_ne!(before[0], before[1]);
        assert_eq!(ids(mapped_more), before);
    }

    /// The es-loader's `file_timestamp_format` with `timestamp_key = file_timestamp`: the
    /// documents take the time the key names (AWS Config snapshots carry none of their own).
    #[test]
    fn file_timestamp_format_gives_the_key_time() {
        let user = "[config-snapshot]\ns3_key = _ConfigSnapshot_\nfile_format = json\njson_delimiter = configurationItems\nindex_name = log-aws-config\ntimestamp_key = file_timestamp\nfile_timestamp_format = _(?P<year>\\d{4})(?P<month>\\d{2})(?P<day>\\d{2})T(?P<hour>\\d{2})(?P<minute>\\d{2})(?P<second>\\d{2})Z_\n";
        let config = Config::with_user_file("user.ini", user).expect("config");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let pipeline = Pipeline::new(config);
        let key = "AWSLogs/111122223333/Config/eu-west-1/2026/12/1/ConfigSnapshot/111122223333_Config_eu-west-1_ConfigSnapshot_20261201T101500Z_a.json";
        let body = r#"{"configurationItems":[{"resourceId":"i-1"},{"resourceId":"i-2"}]}"#;
        let at = Utc
            .with_ymd_and_hms(2027, 5, 1, 0, 0, 0)
            .single()
            .expect("time");
        let (docs, stats, _) = load_bytes(&pipeline, key, body.as_bytes(), at);
        assert_eq!(stats.error_count, 0, "{:?}", stats.errors);
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0].source.fields()["@timestamp"],
            serde_json::json!("2026-12-01T10:15:00.000Z")
        );
        assert_eq!(docs[0].index, "log-aws-config-2026-12");

        let no_year = user.replace("(?P<year>", "(?P<y>");
        let e = Config::with_user_file("user.ini", &no_year)
            .expect_err("no year")
            .to_string();
        assert!(
            e.contains("file_timestamp_format") && e.contains("user.ini:7"),
            "{e}"
        );
    }

    /// Exclusion rules and stderr lines apply to the records inside FireLens lines and
    /// subscription payloads, and every record is accounted for.
    #[test]
    fn wrapped_records_are_excluded_by_their_own_fields() {
        let user = "[web]\ns3_key = /firelens/\nindex_name = log-web\nvia_firelens = true\n\
                    file_format = text\nlog_pattern = ^(?P<client>\\S+) (?P<agent>\\S+)$$\n\
                    [app]\ns3_key = /cwl/\nindex_name = log-app\nvia_cwl = true\n\
                    file_format = text\nlog_pattern = ^(?P<client>\\S+) (?P<agent>\\S+)$$\n";
        let rules = "log_type,field,pattern,pattern_type,comment\n\
                     web,agent,ELB-HealthChecker.*,regex,\napp,agent,ELB-HealthChecker.*,regex,\n";
        let pipeline = Pipeline::new(Config::with_user_file("user.ini", user).expect("config"))
            .with_exclusions(Exclusions::parse("x.csv", rules).expect("rules"));
        let ingested = Utc
            .with_ymd_and_hms(2026, 3, 4, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let firelens = concat!(
            r#"{"source":"stdout","log":"203.0.113.5 curl/8.0"}"#,
            "\n",
            r#"{"source":"stdout","log":"10.0.0.2 ELB-HealthChecker/2.0"}"#,
            "\n",
            r#"{"source":"stderr","log":"AH00558: could not determine name"}"#,
            "\n"
        );
        let (docs, stats, _) =
            load_bytes(&pipeline, "x/firelens/a.log", firelens.as_bytes(), ingested);
        assert_eq!(docs.len(), 1);
        assert_eq!(stats.per_type["web"].excluded, 2);
        assert_eq!(stats.excluded.len(), 2, "{:?}", stats.excluded);
        let payload = r#"{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/web","logStream":"i-1","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1772615702000,"message":"203.0.113.5 curl/8.0"},{"id":"2","timestamp":1772615703000,"message":"10.0.0.2 ELB-HealthChecker/2.0"}]}"#;
        let (docs, stats, _) = load_bytes(&pipeline, "x/cwl/a", payload.as_bytes(), ingested);
        assert_eq!(docs.len(), 1, "{:?}", stats.errors);
        assert_eq!(stats.per_type["app"].excluded, 1);
        assert_eq!(docs[0].source.fields()["client"], "203.0.113.5");
    }
}
