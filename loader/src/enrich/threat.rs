//! Threat intelligence: addresses and domains of documents matched against indicator feeds.
//!
//! A feed is one file at `THREAT_INTEL_FEEDS` (a folder or `s3://bucket/prefix`), named after
//! it. Formats, told by the file's name and first bytes: a plain list (one address, network or
//! domain per line, `#` comments; Tor's `exit-addresses` too), CSV with a header (abuse.ch's
//! commented header included), a STIX 2.1 bundle (indicators with `ipv4-addr`, `ipv6-addr` or
//! `domain-name` patterns, and those objects themselves), or a JSON array of objects such as
//! Feodo Tracker's blocklist. Addresses and networks live in prefix tries (a lookup costs a walk
//! down at most 128 bits whatever the feed's size), domains in a map that is asked for the name
//! and each parent domain.
//!
//! Matched fields: the addresses of `source`, `destination`, `client`, `server`, `host` and
//! `related.ip`; the domains of `url.domain`, `dns.question.name`, `destination.domain`,
//! `source.domain`, `client.domain`, `server.domain`, `tls.client.server_name` and
//! `related.hosts`; plus what a type's `ioc_ip` / `ioc_domain` name. Each match is one entry
//! of `threat.enrichments` (indicator, feed, first seen, the field and value matched) and the
//! document is tagged `threat-intel`.

use super::files::{FileSource, Files, FilesError, Location, Recheck};
use crate::ecs::{self, Doc};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

/// The environment variable naming where the feeds are.
pub const FEEDS_ENV: &str = "THREAT_INTEL_FEEDS";
/// The tag of a document that matched an indicator.
pub const TAG: &str = "threat-intel";

/// Address fields every document is matched on.
pub const IP_FIELDS: &[&str] = &[
    "source.ip",
    "destination.ip",
    "client.ip",
    "server.ip",
    "host.ip",
    "related.ip",
];
/// Domain fields every document is matched on.
pub const DOMAIN_FIELDS: &[&str] = &[
    "url.domain",
    "dns.question.name",
    "destination.domain",
    "source.domain",
    "client.domain",
    "server.domain",
    "tls.client.server_name",
    "related.hosts",
];

#[derive(Debug, thiserror::Error)]
pub enum ThreatError {
    #[error("threat feed {feed}: {reason}")]
    Feed { feed: String, reason: String },
    #[error("no threat feed in {0}")]
    Empty(String),
    #[error(transparent)]
    Files(#[from] FilesError),
}

/// What an indicator is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndicatorKind {
    Ip,
    Domain,
}

/// One line, row or object of a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    /// As the feed wrote it (an address, a network, a domain).
    pub value: String,
    pub kind: IndicatorKind,
    pub feed: Arc<str>,
    pub first_seen: Option<String>,
    pub description: Option<String>,
}

/// A feed as read: its indicators and the entries that were not one.
#[derive(Debug, Default, PartialEq)]
pub struct FeedSummary {
    pub indicators: usize,
    pub skipped: usize,
}

/// Every indicator of every feed, ready to be asked.
#[derive(Default)]
pub struct ThreatIntel {
    indicators: Vec<Indicator>,
    v4: PrefixMap<Ipv4Net, Vec<u32>>,
    v6: PrefixMap<Ipv6Net, Vec<u32>>,
    domains: HashMap<String, Vec<u32>>,
    feeds: Vec<(String, FeedSummary)>,
    /// Whether an indicator lists a private or other special-purpose address: most feeds list
    /// none, and then such addresses (half of every flow) need no lookup.
    non_public: bool,
}

impl std::fmt::Debug for ThreatIntel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatIntel")
            .field("feeds", &self.feeds)
            .finish_non_exhaustive()
    }
}

impl ThreatIntel {
    /// Reads one feed file; its format comes from its name and content.
    pub fn add_feed(&mut self, file_name: &str, bytes: &[u8]) -> Result<&FeedSummary, ThreatError> {
        let feed: Arc<str> = feed_name(file_name).into();
        let failed = |reason: String| ThreatError::Feed {
            feed: file_name.to_owned(),
            reason,
        };
        let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
            .map_err(|e| failed(format!("not UTF-8 text: {e}")))?;
        let entries = match Format::of(file_name, text) {
            Format::List => parse_list(text),
            Format::Csv => parse_csv(text).map_err(failed)?,
            Format::Json => parse_json(text).map_err(failed)?,
        };
        let mut summary = FeedSummary::default();
        for entry in entries {
            match classify(&entry.value) {
                Some(found) => {
                    self.insert(found, entry, feed.clone());
                    summary.indicators += 1;
                }
                None => summary.skipped += 1,
            }
        }
        if summary.indicators == 0 {
            return Err(failed(format!(
                "no address, network or domain in it ({} entries skipped)",
                summary.skipped
            )));
        }
        self.feeds.push((feed.to_string(), summary));
        Ok(&self.feeds[self.feeds.len() - 1].1)
    }

    fn insert(&mut self, found: Classified, entry: Entry, feed: Arc<str>) {
        let index = self.indicators.len() as u32;
        let kind = match &found {
            Classified::Net(_) => IndicatorKind::Ip,
            Classified::Domain(_) => IndicatorKind::Domain,
        };
        self.indicators.push(Indicator {
            value: entry.value,
            kind,
            feed,
            first_seen: entry.first_seen,
            description: entry.description,
        });
        if let Classified::Net(net) = &found {
            self.non_public |= super::geo::holds_non_public(net);
        }
        match found {
            Classified::Net(IpNet::V4(net)) => self.v4.entry(net).or_default().push(index),
            Classified::Net(IpNet::V6(net)) => self.v6.entry(net).or_default().push(index),
            Classified::Domain(name) => self.domains.entry(name).or_default().push(index),
        }
    }

    /// Whether an address [`super::geo::is_public`] says no to can match an indicator.
    pub fn lists_non_public(&self) -> bool {
        self.non_public
    }

    /// The feeds read, with their counts.
    pub fn feeds(&self) -> &[(String, FeedSummary)] {
        &self.feeds
    }

    /// The indicators listing `ip` or a network holding it, the most specific first.
    pub fn match_ip(&self, ip: IpAddr) -> Vec<&Indicator> {
        self.match_ip_ids(ip)
            .iter()
            .map(|&i| &self.indicators[i as usize])
            .collect()
    }

    /// [`ThreatIntel::match_ip`] as indicator numbers (nothing allocated when none match).
    pub fn match_ip_ids(&self, ip: IpAddr) -> Vec<u32> {
        let mut ids: Vec<u32> = match ip {
            IpAddr::V4(v4) => self
                .v4
                .cover_values(&Ipv4Net::from(v4))
                .flatten()
                .copied()
                .collect(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => return self.match_ip_ids(IpAddr::V4(v4)),
                None => self
                    .v6
                    .cover_values(&Ipv6Net::from(v6))
                    .flatten()
                    .copied()
                    .collect(),
            },
        };
        // The trie yields the widest networks first.
        ids.reverse();
        ids
    }

    /// The indicators listing `name` or one of its parent domains.
    pub fn match_domain(&self, name: &str) -> Vec<&Indicator> {
        let name = name.trim().trim_end_matches('.');
        let name: std::borrow::Cow<'_, str> = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            name.to_ascii_lowercase().into()
        } else {
            name.into()
        };
        let mut found = Vec::new();
        let mut rest: &str = &name;
        loop {
            if let Some(ids) = self.domains.get(rest) {
                found.extend(ids.iter().map(|&i| &self.indicators[i as usize]));
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => break,
            }
        }
        found
    }

    /// Adds `threat.enrichments` for every match in `doc`'s fields (and `extra_ip` /
    /// `extra_domain`, a type's `ioc_ip` / `ioc_domain`), and the tag. Nothing is copied
    /// unless something matches.
    pub fn enrich(&self, doc: &mut Doc, extra_ip: &[String], extra_domain: &[String]) {
        let mut matches = Matches::default();
        if !self.v4.is_empty() || !self.v6.is_empty() {
            let fields = IP_FIELDS
                .iter()
                .copied()
                .chain(extra_ip.iter().map(String::as_str));
            // `related.ip` repeats the other fields' addresses: each is looked up once (the
            // first field it is in is the one a match names anyway).
            let mut looked_up: Vec<&str> = Vec::new();
            for field in fields {
                for_each_text(doc, field, |text| {
                    if looked_up.contains(&text) {
                        return;
                    }
                    looked_up.push(text);
                    if let Some(ip) = crate::ecs::parse_ip(text.trim()) {
                        matches.add(field, text, self.match_ip(ip));
                    }
                });
            }
        }
        if !self.domains.is_empty() {
            let fields = DOMAIN_FIELDS
                .iter()
                .copied()
                .chain(extra_domain.iter().map(String::as_str));
            for field in fields {
                for_each_text(doc, field, |text| {
                    matches.add(field, text, self.match_domain(text));
                });
            }
        }
        let enrichments = matches.into_values();
        if enrichments.is_empty() {
            return;
        }
        let mut all = match ecs::get_in(doc, "threat.enrichments") {
            Some(Value::Array(existing)) => existing.clone(),
            _ => Vec::new(),
        };
        all.extend(enrichments);
        ecs::set(doc, "threat.enrichments", Value::Array(all));
        add_tag(doc);
    }

    /// The `threat.enrichments` of a flow log record's two addresses, as [`ThreatIntel::enrich`]
    /// makes them (for the writer that writes flow documents straight as text).
    pub fn flow_enrichments(&self, source: Option<&str>, destination: Option<&str>) -> Vec<Value> {
        let mut matches = Matches::default();
        for (field, text) in [("source.ip", source), ("destination.ip", destination)] {
            if let Some(text) = text
                && let Ok(ip) = text.parse::<IpAddr>()
            {
                matches.add(field, text, self.match_ip(ip));
            }
        }
        matches.into_values()
    }
}

/// The matches of one document: each indicator once per value (`related.ip` repeats the
/// addresses of the other fields). Only a match allocates.
#[derive(Default)]
struct Matches<'i> {
    found: Vec<(String, String, &'i Indicator)>,
}

impl<'i> Matches<'i> {
    fn add(&mut self, field: &str, text: &str, indicators: Vec<&'i Indicator>) {
        for indicator in indicators {
            let known = self
                .found
                .iter()
                .any(|(_, atomic, seen)| atomic == text && std::ptr::eq(*seen, indicator));
            if !known {
                self.found
                    .push((field.to_owned(), text.to_owned(), indicator));
            }
        }
    }

    fn into_values(self) -> Vec<Value> {
        self.found
            .iter()
            .map(|(field, atomic, indicator)| enrichment(indicator, field, atomic))
            .collect()
    }
}

/// Calls `each` with the string values of a dotted field (one, or each of a list).
fn for_each_text<'d>(doc: &'d Doc, field: &str, mut each: impl FnMut(&'d str)) {
    match ecs::get_in(doc, field) {
        Some(Value::String(s)) => each(s),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(each),
        _ => {}
    }
}

fn enrichment(indicator: &Indicator, field: &str, atomic: &str) -> Value {
    let mut found = Map::new();
    match indicator.kind {
        IndicatorKind::Ip => {
            let kind = if atomic.contains(':') {
                "ipv6-addr"
            } else {
                "ipv4-addr"
            };
            found.insert("type".into(), json!(kind));
            // A network keeps its own text; the address matched is `matched.atomic`.
            found.insert("ip".into(), json!(atomic));
            if indicator.value.contains('/') {
                found.insert("reference".into(), json!(indicator.value));
            }
        }
        IndicatorKind::Domain => {
            found.insert("type".into(), json!("domain-name"));
            found.insert("url".into(), json!({"domain": indicator.value}));
        }
    }
    found.insert("provider".into(), json!(&*indicator.feed));
    if let Some(first_seen) = indicator.first_seen.as_deref().and_then(feed_time) {
        found.insert("first_seen".into(), json!(first_seen));
    }
    if let Some(description) = &indicator.description {
        found.insert("description".into(), json!(description));
    }
    json!({
        "indicator": found,
        "matched": {"atomic": atomic, "field": field, "type": "indicator_match"}
    })
}

/// A feed's time as RFC 3339 (UTC when the feed gives no zone); `None` when it is no time.
fn feed_time(text: &str) -> Option<String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
    let text = text.trim();
    let utc = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S UTC",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .map(|t| t.and_utc())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })?;
    Some(utc.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn add_tag(doc: &mut Doc) {
    match doc.get_mut("tags") {
        Some(Value::Array(tags)) => {
            if !tags.iter().any(|t| t.as_str() == Some(TAG)) {
                tags.push(json!(TAG));
            }
        }
        Some(Value::String(one)) => {
            let one = std::mem::take(one);
            doc.insert("tags".into(), json!([one, TAG]));
        }
        _ => {
            doc.insert("tags".into(), json!([TAG]));
        }
    }
}

/// A feed's name: its file name without the format's extension.
fn feed_name(file_name: &str) -> &str {
    let base = file_name.rsplit('/').next().unwrap_or(file_name);
    for ext in [".txt", ".list", ".csv", ".json", ".stix"] {
        if let Some(stem) = base.strip_suffix(ext) {
            return stem;
        }
    }
    base
}

enum Format {
    List,
    Csv,
    Json,
}

impl Format {
    fn of(file_name: &str, text: &str) -> Self {
        let start = text.trim_start();
        if file_name.ends_with(".json") || start.starts_with('{') || start.starts_with('[') {
            Self::Json
        } else if file_name.ends_with(".csv") {
            Self::Csv
        } else {
            Self::List
        }
    }
}

/// An entry of a feed before it is known to be an indicator.
#[derive(Debug, Default)]
struct Entry {
    value: String,
    first_seen: Option<String>,
    description: Option<String>,
}

impl Entry {
    fn of(value: &str) -> Self {
        Self {
            value: value.trim().to_owned(),
            ..Self::default()
        }
    }
}

/// One token per line; comments after `#` or `;`; Tor's `ExitAddress <ip> <time>` lines.
fn parse_list(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        match first {
            "ExitAddress" => {
                if let Some(ip) = words.next() {
                    let mut entry = Entry::of(ip);
                    let seen = words.collect::<Vec<_>>().join(" ");
                    entry.first_seen = (!seen.is_empty()).then_some(seen);
                    entry.description = Some("Tor exit node".to_owned());
                    entries.push(entry);
                }
            }
            "ExitNode" | "Published" | "LastStatus" => {}
            _ => entries.push(Entry::of(first)),
        }
    }
    entries
}

/// Column names that hold the indicator, its first sighting and what it is.
const VALUE_COLUMNS: &[&str] = &[
    "indicator",
    "ioc",
    "value",
    "ip",
    "ip_address",
    "ipaddress",
    "dst_ip",
    "address",
    "cidr",
    "network",
    "domain",
    "hostname",
    "host",
];
const FIRST_SEEN_COLUMNS: &[&str] = &[
    "first_seen",
    "first_seen_utc",
    "firstseen",
    "date_added",
    "created",
];
const DESCRIPTION_COLUMNS: &[&str] = &[
    "description",
    "malware",
    "threat",
    "name",
    "tags",
    "comment",
];

/// CSV with a header row; a header written as the last comment line before the data (as
/// abuse.ch does) counts.
fn parse_csv(text: &str) -> Result<Vec<Entry>, String> {
    let mut header: Option<String> = None;
    let mut body_start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            let comment = trimmed.trim_start_matches('#').trim();
            if comment.contains(',') {
                header = Some(comment.to_owned());
            }
            body_start += line.len();
            continue;
        }
        break;
    }
    let body = &text[body_start..];
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(header.is_none())
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(body.as_bytes());
    let names: Vec<String> = match &header {
        Some(line) => csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes())
            .records()
            .next()
            .and_then(Result::ok)
            .map(|r| r.iter().map(normalize_column).collect())
            .unwrap_or_default(),
        None => reader
            .headers()
            .map_err(|e| format!("the header cannot be read: {e}"))?
            .iter()
            .map(normalize_column)
            .collect(),
    };
    let column = |wanted: &[&str]| {
        wanted
            .iter()
            .find_map(|w| names.iter().position(|n| n == w))
    };
    let value = column(VALUE_COLUMNS).unwrap_or(0);
    let first_seen = column(FIRST_SEEN_COLUMNS);
    let description = column(DESCRIPTION_COLUMNS);
    let mut entries = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("row {}: {e}", row + 1))?;
        let cell = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let Some(v) = cell(Some(value)) else { continue };
        entries.push(Entry {
            value: v,
            first_seen: cell(first_seen),
            description: cell(description),
        });
    }
    Ok(entries)
}

fn normalize_column(name: &str) -> String {
    name.trim()
        .trim_matches('"')
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
}

/// A STIX 2.1 bundle, or a JSON array of indicator objects.
fn parse_json(text: &str) -> Result<Vec<Entry>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let objects = match &value {
        Value::Array(items) => items.as_slice(),
        Value::Object(bundle) => match bundle.get("objects") {
            Some(Value::Array(items)) => items.as_slice(),
            _ => return Err("a JSON object without `objects` (not a STIX bundle)".to_owned()),
        },
        _ => return Err("neither a STIX bundle nor a list of indicators".to_owned()),
    };
    let pattern_value =
        regex::Regex::new(r"(ipv4-addr|ipv6-addr|domain-name):value\s*=\s*'((?:[^'\\]|\\.)*)'")
            .map_err(|e| e.to_string())?;
    let text_of = |o: &Value, keys: &[&str]| {
        keys.iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let mut entries = Vec::new();
    for object in objects {
        let first_seen = text_of(
            object,
            &["first_seen", "valid_from", "created", "date_added"],
        );
        let description = text_of(object, &["name", "description", "malware"]);
        match object.get("type").and_then(Value::as_str) {
            Some("indicator") => {
                let pattern = object.get("pattern").and_then(Value::as_str).unwrap_or("");
                for captures in pattern_value.captures_iter(pattern) {
                    entries.push(Entry {
                        value: captures[2].replace("\\'", "'"),
                        first_seen: first_seen.clone(),
                        description: description.clone(),
                    });
                }
            }
            Some("ipv4-addr" | "ipv6-addr" | "domain-name") => {
                if let Some(v) = text_of(object, &["value"]) {
                    entries.push(Entry {
                        value: v,
                        first_seen,
                        description,
                    });
                }
            }
            Some(_) => {}
            // Plain objects (Feodo Tracker's blocklist and the like).
            None => {
                if let Some(v) = text_of(
                    object,
                    &["ip_address", "ip", "indicator", "ioc", "domain", "value"],
                ) {
                    entries.push(Entry {
                        value: v,
                        first_seen,
                        description,
                    });
                }
            }
        }
    }
    Ok(entries)
}

enum Classified {
    Net(IpNet),
    Domain(String),
}

/// An address (`ip:port` too), a network, a domain, or a URL's host; `None` for anything else.
fn classify(value: &str) -> Option<Classified> {
    let value = value.trim().trim_matches('"');
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(Classified::Net(IpNet::from(ip)));
    }
    if let Ok(net) = value.parse::<IpNet>() {
        return Some(Classified::Net(net.trunc()));
    }
    if let Some((host, port)) = value.rsplit_once(':')
        && port.bytes().all(|b| b.is_ascii_digit())
        && let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>()
    {
        return Some(Classified::Net(IpNet::from(ip)));
    }
    let host = match value.split_once("://") {
        Some((_, rest)) => rest.split(['/', '?', '#', ':']).next().unwrap_or(""),
        None => value,
    };
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Some(Classified::Net(IpNet::from(ip)));
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let is_domain = host.contains('.')
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && host
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_alphabetic()));
    is_domain.then_some(Classified::Domain(host))
}

/// The feeds of a location, read again when a file changes.
pub struct ThreatFeeds {
    location: Location,
    loaded: RwLock<(Vec<super::files::Stamped>, Arc<ThreatIntel>)>,
    checked: Recheck,
}

impl std::fmt::Debug for ThreatFeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatFeeds")
            .field("location", &self.location)
            .finish()
    }
}

impl ThreatFeeds {
    pub fn new(location: Location) -> Self {
        Self {
            location,
            loaded: RwLock::new((Vec::new(), Arc::new(ThreatIntel::default()))),
            checked: Recheck::default(),
        }
    }

    /// The indicators in use.
    pub fn current(&self) -> Arc<ThreatIntel> {
        self.loaded.read().map(|l| l.1.clone()).unwrap_or_default()
    }

    /// Reads the feeds when a file was added, changed or removed; whether they were read. A
    /// feed that cannot be read is a warning and left out; the others load.
    pub async fn refresh(&self, store: &dyn FileSource) -> Result<bool, ThreatError> {
        let listed = store.list(&self.location).await?;
        if listed.is_empty() {
            return Err(ThreatError::Empty(self.location.to_string()));
        }
        if self.loaded.read().is_ok_and(|l| l.0 == listed) {
            return Ok(false);
        }
        let mut intel = ThreatIntel::default();
        for file in &listed {
            let Some(bytes) = store.read(&self.location, &file.name).await? else {
                continue;
            };
            match intel.add_feed(&file.name, &bytes) {
                Ok(summary) => tracing::info!(
                    feed = %self.location.file(&file.name),
                    indicators = summary.indicators,
                    skipped = summary.skipped,
                    "threat feed read"
                ),
                Err(e) => tracing::warn!("{e}; the feed is left out"),
            }
        }
        if let Ok(mut loaded) = self.loaded.write() {
            *loaded = (listed, Arc::new(intel));
        }
        Ok(true)
    }

    /// [`ThreatFeeds::refresh`] when `every` has passed since the last look.
    pub async fn refresh_if_due(&self, store: &dyn FileSource, every: std::time::Duration) {
        if !self.checked.due(every) {
            return;
        }
        match self.refresh(store).await {
            Ok(true) => tracing::info!(location = %self.location, "threat feeds reloaded"),
            Ok(false) => {}
            Err(e) => tracing::warn!("{e}; the feeds read before stay in use"),
        }
    }
}

/// The feeds named by `THREAT_INTEL_FEEDS`; `None` when it is not set (nothing is matched) or
/// nothing can be read there (one warning).
pub async fn from_env(s3: Option<aws_sdk_s3::Client>) -> Option<Arc<ThreatFeeds>> {
    let text = std::env::var(FEEDS_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())?;
    let feeds = ThreatFeeds::new(Location::parse(text.trim()));
    let store = Files { s3 };
    match feeds.refresh(&store).await {
        Ok(_) => {
            feeds.checked.mark();
            Some(Arc::new(feeds))
        }
        Err(e) => {
            tracing::warn!("{e}; documents load without threat-intelligence matches");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intel(feeds: &[(&str, &str)]) -> ThreatIntel {
        let mut intel = ThreatIntel::default();
        for (name, text) in feeds {
            intel.add_feed(name, text.as_bytes()).expect("feed");
        }
        intel
    }

    fn values_of(found: &[&Indicator]) -> Vec<String> {
        found
            .iter()
            .map(|i| format!("{}:{}", i.feed, i.value))
            .collect()
    }

    #[test]
    fn lists_tor_exits_csv_stix_and_json_arrays_are_read() {
        let mut intel = ThreatIntel::default();
        let list = intel
            .add_feed(
                "blocklist.txt",
                b"# comment\n81.2.69.7 # inline\n10.9.0.0/16\nevil.example\nhttp://bad.example/x?y\n1.2.3.4:8080\nnot an indicator\n\n",
            )
            .expect("list");
        assert_eq!(
            list,
            &FeedSummary {
                indicators: 5,
                skipped: 1
            }
        );
        let tor = intel
            .add_feed(
                "tor-exits",
                b"ExitNode 0011\nPublished 2026-12-01 10:00:00\nLastStatus 2026-12-01 11:00:00\nExitAddress 1.128.3.4 2026-12-01 11:07:00\n",
            )
            .expect("tor");
        assert_eq!(tor.indicators, 1);
        let csv = intel
            .add_feed(
                "feodo.csv",
                b"################\n# Feodo Tracker\n################\n# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\"2026-11-01 10:00:00\",\"1.130.9.9\",\"443\",\"online\",\"2026-12-01\",\"QakBot\"\n# END\n",
            )
            .expect("csv");
        assert_eq!(csv.indicators, 1);
        let stix = intel
            .add_feed(
                "otx.json",
                br#"{"type": "bundle", "id": "bundle--1", "objects": [
                    {"type": "indicator", "id": "indicator--1", "name": "C2 servers",
                     "pattern": "[ipv4-addr:value = '1.131.0.0/24' OR domain-name:value = 'c2.example']",
                     "pattern_type": "stix", "valid_from": "2026-10-01T00:00:00Z"},
                    {"type": "domain-name", "id": "domain-name--1", "value": "phish.example"},
                    {"type": "malware", "id": "malware--1", "name": "x"}
                ]}"#,
            )
            .expect("stix");
        assert_eq!(stix.indicators, 3);
        let json = intel
            .add_feed(
                "ipblocklist.json",
                br#"[{"ip_address": "1.132.5.6", "port": 443, "first_seen": "2026-09-09 09:09:09", "malware": "Emotet"}]"#,
            )
            .expect("array");
        assert_eq!(json.indicators, 1);

        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            values_of(&intel.match_ip(ip("81.2.69.7"))),
            ["blocklist:81.2.69.7"]
        );
        assert_eq!(
            values_of(&intel.match_ip(ip("10.9.200.1"))),
            ["blocklist:10.9.0.0/16"]
        );
        assert_eq!(
            values_of(&intel.match_ip(ip("::ffff:1.2.3.4"))),
            ["blocklist:1.2.3.4:8080"]
        );
        assert_eq!(
            values_of(&intel.match_ip(ip("1.128.3.4"))),
            ["tor-exits:1.128.3.4"]
        );
        let qakbot = intel.match_ip(ip("1.130.9.9"));
        assert_eq!(qakbot[0].first_seen.as_deref(), Some("2026-11-01 10:00:00"));
        assert_eq!(qakbot[0].description.as_deref(), Some("QakBot"));
        assert_eq!(
            values_of(&intel.match_ip(ip("1.131.0.77"))),
            ["otx:1.131.0.0/24"]
        );
        assert_eq!(
            intel.match_ip(ip("1.132.5.6"))[0].description.as_deref(),
            Some("Emotet")
        );
        assert!(intel.match_ip(ip("8.8.8.8")).is_empty());
        assert_eq!(
            values_of(&intel.match_domain("www.EVIL.example.")),
            ["blocklist:evil.example"]
        );
        assert_eq!(
            values_of(&intel.match_domain("bad.example")),
            ["blocklist:http://bad.example/x?y"]
        );
        assert_eq!(
            values_of(&intel.match_domain("c2.example")),
            ["otx:c2.example"]
        );
        assert!(intel.match_domain("example").is_empty());
        assert!(intel.match_domain("notevil.example").is_empty());
    }

    #[test]
    fn a_feed_without_indicators_or_not_text_is_refused() {
        let mut intel = ThreatIntel::default();
        let err = intel
            .add_feed("empty.txt", b"# nothing\n")
            .expect_err("empty");
        assert!(err.to_string().contains("empty.txt"), "{err}");
        assert!(intel.add_feed("bin.txt", b"\xff\xfe\x00").is_err());
        assert!(intel.add_feed("bad.json", b"{\"no\": 1}").is_err());
        assert!(intel.feeds().is_empty());
    }

    #[test]
    fn every_match_is_an_enrichment_and_the_document_is_tagged() {
        let intel = intel(&[
            ("tor.txt", "ExitAddress 1.128.3.4 2026-12-01 11:07:00\n"),
            ("nets.txt", "1.128.0.0/16\n"),
            ("domains.txt", "evil.example\n"),
        ]);
        let mut doc: Doc = serde_json::from_value(json!({
            "source": {"ip": "1.128.3.4"},
            "destination": {"ip": "10.0.0.1"},
            "related": {"ip": ["1.128.3.4", "10.0.0.1"]},
            "url": {"domain": "a.evil.example"},
            "tags": ["kept"]
        }))
        .expect("doc");
        intel.enrich(&mut doc, &[], &[]);
        let enrichments = doc["threat"]["enrichments"]
            .as_array()
            .expect("list")
            .clone();
        assert_eq!(enrichments.len(), 3, "{enrichments:#?}");
        assert_eq!(enrichments[0]["matched"]["field"], "source.ip");
        assert_eq!(enrichments[0]["indicator"]["provider"], "tor");
        assert_eq!(enrichments[0]["indicator"]["type"], "ipv4-addr");
        assert_eq!(enrichments[1]["indicator"]["reference"], "1.128.0.0/16");
        assert_eq!(
            enrichments[0]["indicator"]["first_seen"],
            "2026-12-01T11:07:00Z"
        );
        assert_eq!(enrichments[2]["matched"]["atomic"], "a.evil.example");
        assert_eq!(enrichments[2]["indicator"]["url"]["domain"], "evil.example");
        assert_eq!(doc["tags"], json!(["kept", TAG]));

        let mut other: Doc =
            serde_json::from_value(json!({"app": {"peer": "1.128.9.9"}})).expect("doc");
        intel.enrich(&mut other, &[], &[]);
        assert!(other.get("threat").is_none(), "not a matched field");
        intel.enrich(&mut other, &["app.peer".to_owned()], &[]);
        assert_eq!(
            other["threat"]["enrichments"][0]["matched"]["field"],
            "app.peer"
        );
    }
}
