//! VPC Flow Logs and Transit Gateway flow logs (versions 2 to 8, any custom field order).
//!
//! Flow logs are the highest-volume type, so a record is written straight to the JSON of its
//! document, without building a map: a [`Writer`] learns once per object what each column of
//! the header means, then writes each line's values. The original fields stay in the document
//! (`-` = absent); the ECS fields are added next to them, and every field without an ECS home
//! is kept typed under `aws.vpcflow.<name_with_underscores>`. Records that arrive as maps
//! (objects whose type has a user mapping, CloudWatch Logs lines) go through the same writer
//! and are read back, so there is one normalizer.

use super::{NormalizeError, Normalized};
use crate::ecs::Doc;
use crate::enrich::geo::{GeoLookup, is_public};
use crate::enrich::org::{Directory, FlowFields};
use crate::enrich::threat::ThreatIntel;
use crate::json_write::{write_str, write_u64};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

/// Field names of the default (version 2) format, in order.
pub const DEFAULT_FIELDS: [&str; 14] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// Top-level keys of the document that belong to ECS or to the pipeline: a header field with
/// one of these names stays only under `aws.vpcflow`, so no key is written twice.
const RESERVED: &[&str] = &[
    "@timestamp",
    "@log_type",
    "@log_s3key",
    "tags",
    "event",
    "source",
    "destination",
    "network",
    "cloud",
    "orchestrator",
    "container",
    "related",
    "aws",
];

/// What a column means to the normalizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    SrcAddr,
    DstAddr,
    SrcPort,
    DstPort,
    Protocol,
    Bytes,
    Packets,
    Start,
    End,
    Kind,
    FlowDirection,
    Account,
    Region,
    Instance,
    EcsClusterName,
    EcsContainerId,
    RejectReason,
    Action,
    LogStatus,
    PktSrcAddr,
    PktDstAddr,
    TcpFlags,
    /// An integer kept as a number under `aws.vpcflow`.
    Number(&'static str),
    /// Kept as text under `aws.vpcflow`.
    Text,
    /// A name the header repeats: only its last column counts.
    Repeated,
}

impl Role {
    fn of(name: &str) -> Self {
        match name {
            "srcaddr" => Self::SrcAddr,
            "dstaddr" => Self::DstAddr,
            "srcport" => Self::SrcPort,
            "dstport" => Self::DstPort,
            "protocol" => Self::Protocol,
            "bytes" => Self::Bytes,
            "packets" => Self::Packets,
            "start" => Self::Start,
            "end" => Self::End,
            "type" => Self::Kind,
            "flow-direction" => Self::FlowDirection,
            "account-id" => Self::Account,
            "region" => Self::Region,
            "instance-id" => Self::Instance,
            "ecs-cluster-name" => Self::EcsClusterName,
            "ecs-container-id" => Self::EcsContainerId,
            "reject-reason" => Self::RejectReason,
            "action" => Self::Action,
            "log-status" => Self::LogStatus,
            "pkt-srcaddr" => Self::PktSrcAddr,
            "pkt-dstaddr" => Self::PktDstAddr,
            "tcp-flags" => Self::TcpFlags,
            "version" => Self::Number("version"),
            "traffic-path" => Self::Number("traffic-path"),
            "packets-lost-no-route" => Self::Number("packets-lost-no-route"),
            "packets-lost-blackhole" => Self::Number("packets-lost-blackhole"),
            "packets-lost-mtu-exceeded" => Self::Number("packets-lost-mtu-exceeded"),
            "packets-lost-ttl-expired" => Self::Number("packets-lost-ttl-expired"),
            _ => Self::Text,
        }
    }

    /// Whether the field is also kept under `aws.vpcflow`: those whose meaning ECS carries are
    /// not repeated there, except the raw verdict, the status and the packet addresses.
    fn under_vpcflow(self) -> bool {
        matches!(
            self,
            Self::Action
                | Self::LogStatus
                | Self::PktSrcAddr
                | Self::PktDstAddr
                | Self::TcpFlags
                | Self::Number(_)
                | Self::Text
        )
    }
}

/// One column of the header, with its JSON keys written once.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    role: Role,
    /// `"name":` for the original field; `None` for a reserved or repeated name.
    top_key: Option<Box<[u8]>>,
    /// `"name_with_underscores":` under `aws.vpcflow`; `None` when the field is not kept there.
    vpcflow_key: Option<Box<[u8]>>,
}

/// What the pipeline adds to every document, written where it belongs (`event.ingested`,
/// `cloud.*`) so the document needs no second pass.
#[derive(Debug, Clone, Copy)]
pub struct Common<'a> {
    /// `event.ingested`, formatted.
    pub ingested: &'a str,
    /// `cloud.account.id` and `cloud.region` when the record has none.
    pub key_account: Option<&'a str>,
    pub key_region: Option<&'a str>,
    /// GeoIP for the addresses, written here as the enrichment stage would add it (documents
    /// of this path are never made into fields).
    pub geo: Option<&'a dyn GeoLookup>,
    /// Threat intelligence for the addresses, likewise.
    pub threat: Option<&'a ThreatIntel>,
    /// The organization context of the account, likewise.
    pub org: Option<&'a Directory>,
}

/// Writes flow log records of one header layout as JSON documents.
#[derive(Debug, Clone)]
pub struct Writer {
    columns: Vec<Column>,
    /// Records of one object mostly share their capture window: its texts are kept.
    start_text: TimeText,
    end_text: TimeText,
    /// What the enrichment knows of each address: the flows of an object mostly involve the
    /// same addresses, and this spares each line the shared cache's lock and the trie walk.
    /// Keyed by the parsed address, which is held inline (a text key cost a pointer chase and
    /// a compare per probe).
    seen: HashMap<IpAddr, AddressFacts, foldhash::fast::RandomState>,
    /// The `geo` and `as` JSON of the addresses `seen` holds, one after the other: an entry
    /// is found in the map and written from here, without a pointer to follow or a count to
    /// change on memory no other line touched lately.
    seen_geo: Vec<u8>,
    /// Whether the last record written matched a threat indicator (its document is tagged).
    threat_matched: bool,
    /// The organization context of the last account written (an object's records are
    /// mostly of one account): its name and its `aws` members.
    org_seen: Option<(Box<str>, Option<FlowFields>)>,
}

/// Addresses an object's writer remembers before it starts over (a few MB at most).
const SEEN_MAX: usize = 65_536;
/// And the bytes of their `geo` and `as` JSON (some 25,000 addresses).
const SEEN_GEO_MAX: usize = 8 << 20;

/// What the enrichment knows of one address: where its `geo` and `as` JSON is in the
/// writer's `seen_geo`, and whether an indicator lists it.
#[derive(Debug, Clone, Copy, Default)]
struct AddressFacts {
    geo_start: u32,
    geo_len: u32,
    threat: bool,
}

#[derive(Debug, Clone, Default)]
struct TimeText {
    secs: Option<i64>,
    text: String,
}

impl TimeText {
    fn get(&mut self, t: DateTime<Utc>) -> &str {
        let secs = t.timestamp();
        if self.secs != Some(secs) {
            self.text = t.to_rfc3339_opts(SecondsFormat::Secs, true);
            self.secs = Some(secs);
        }
        &self.text
    }
}

/// The values of one record that have an ECS home, by role.
#[derive(Default)]
struct Flow<'v> {
    srcaddr: Option<&'v str>,
    dstaddr: Option<&'v str>,
    srcport: Option<&'v str>,
    dstport: Option<&'v str>,
    protocol: Option<&'v str>,
    bytes: Option<&'v str>,
    packets: Option<&'v str>,
    start: Option<&'v str>,
    end: Option<&'v str>,
    kind: Option<&'v str>,
    flow_direction: Option<&'v str>,
    account: Option<&'v str>,
    region: Option<&'v str>,
    instance: Option<&'v str>,
    ecs_cluster_name: Option<&'v str>,
    ecs_container_id: Option<&'v str>,
    reject_reason: Option<&'v str>,
    action: Option<&'v str>,
    log_status: Option<&'v str>,
    pkt_srcaddr: Option<&'v str>,
    pkt_dstaddr: Option<&'v str>,
    tcp_flags: Option<&'v str>,
}

/// `-` (and an empty value) means the field is absent.
fn present(value: &str) -> Option<&str> {
    (!value.is_empty() && value != "-").then_some(value)
}

fn json_key(name: &str) -> Box<[u8]> {
    let mut key = Vec::with_capacity(name.len() + 3);
    write_str(&mut key, name);
    key.push(b':');
    key.into_boxed_slice()
}

impl Writer {
    /// Learns the header's field names (in column order).
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        let mut columns: Vec<Column> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref();
            let repeated = names[i + 1..].iter().any(|later| later.as_ref() == name);
            let role = if repeated {
                Role::Repeated
            } else {
                Role::of(name)
            };
            columns.push(Column {
                name: name.to_owned(),
                role,
                top_key: (!repeated && !RESERVED.contains(&name)).then(|| json_key(name)),
                vpcflow_key: None,
            });
        }
        // Keys under aws.vpcflow replace `-` by `_`, so two names can meet (`a-b`, `a_b`): the
        // last in name order wins, as it would in a map filled in that order.
        // `tcp_flags_array` is the normalizer's own when the header has tcp-flags.
        let has_tcp_flags = columns.iter().any(|c| c.role == Role::TcpFlags);
        let mut order: Vec<usize> = (0..columns.len()).collect();
        order.sort_by(|&a, &b| columns[a].name.cmp(&columns[b].name));
        let mut taken: Vec<String> = Vec::new();
        for &i in order.iter().rev() {
            let column = &mut columns[i];
            if !column.role.under_vpcflow() {
                continue;
            }
            let key = column.name.replace('-', "_");
            if taken.contains(&key) || (has_tcp_flags && key == "tcp_flags_array") {
                continue;
            }
            column.vpcflow_key = Some(json_key(&key));
            taken.push(key);
        }
        Self {
            columns,
            start_text: TimeText::default(),
            end_text: TimeText::default(),
            seen: HashMap::default(),
            seen_geo: Vec::new(),
            threat_matched: false,
            org_seen: None,
        }
    }

    /// What the enrichment knows of an address of a line (nothing without enrichment).
    fn facts(&mut self, ip: Option<IpAddr>, common: Option<&Common<'_>>) -> Option<AddressFacts> {
        let (ip, common) = (ip?, common?);
        if common.geo.is_none() && common.threat.is_none() {
            return None;
        }
        // Private addresses have no location, and are in no feed unless one lists them.
        if !is_public(ip) && !common.threat.is_some_and(ThreatIntel::lists_non_public) {
            return Some(AddressFacts::default());
        }
        if let Some(&known) = self.seen.get(&ip) {
            return Some(known);
        }
        if self.seen.len() >= SEEN_MAX || self.seen_geo.len() >= SEEN_GEO_MAX {
            self.seen.clear();
            self.seen_geo.clear();
        }
        let geo = common.geo.and_then(|g| g.lookup_shared(ip));
        let json = geo.as_ref().map_or(&[][..], |g| &g.json[..]);
        let facts = AddressFacts {
            geo_start: u32::try_from(self.seen_geo.len()).unwrap_or(u32::MAX),
            geo_len: u32::try_from(json.len()).unwrap_or(0),
            threat: common
                .threat
                .is_some_and(|intel| !intel.match_ip_ids(ip).is_empty()),
        };
        self.seen_geo.extend_from_slice(json);
        self.seen.insert(ip, facts);
        Some(facts)
    }

    /// Whether the last record written matched a threat indicator.
    pub fn threat_matched(&self) -> bool {
        self.threat_matched
    }

    /// The value of the field `name` in `values` (a line of this layout), for exclusion rules;
    /// `None` when absent.
    pub fn value_of<'v>(&self, name: &str, values: &[&'v str]) -> Option<&'v str> {
        let i = self.columns.iter().rposition(|c| c.name == name)?;
        values.get(i).copied().and_then(present)
    }

    /// Writes the document of one record, `values` in column order, as a JSON object left
    /// open: the caller adds its own fields (each after a comma) and the closing brace. With
    /// `common`, the pipeline's `event.ingested` and `cloud.*` are written too. Returns the
    /// event time (`start`). On error nothing is left in `out`.
    pub fn write(
        &mut self,
        values: &[&str],
        common: Option<&Common<'_>>,
        out: &mut Vec<u8>,
    ) -> Result<Option<DateTime<Utc>>, NormalizeError> {
        let mark = out.len();
        let result = self.write_fields(values, common, out);
        if result.is_err() {
            out.truncate(mark);
        }
        result
    }

    fn write_fields(
        &mut self,
        values: &[&str],
        common: Option<&Common<'_>>,
        out: &mut Vec<u8>,
    ) -> Result<Option<DateTime<Utc>>, NormalizeError> {
        if values.len() != self.columns.len() {
            return Err(NormalizeError::InvalidField {
                field: "record",
                reason: format!(
                    "{} fields where the header names {}",
                    values.len(),
                    self.columns.len()
                ),
            });
        }
        let mut f = Flow::default();
        for (column, value) in self.columns.iter().zip(values) {
            let Some(value) = present(value) else {
                continue;
            };
            let slot = match column.role {
                Role::SrcAddr => &mut f.srcaddr,
                Role::DstAddr => &mut f.dstaddr,
                Role::SrcPort => &mut f.srcport,
                Role::DstPort => &mut f.dstport,
                Role::Protocol => &mut f.protocol,
                Role::Bytes => &mut f.bytes,
                Role::Packets => &mut f.packets,
                Role::Start => &mut f.start,
                Role::End => &mut f.end,
                Role::Kind => &mut f.kind,
                Role::FlowDirection => &mut f.flow_direction,
                Role::Account => &mut f.account,
                Role::Region => &mut f.region,
                Role::Instance => &mut f.instance,
                Role::EcsClusterName => &mut f.ecs_cluster_name,
                Role::EcsContainerId => &mut f.ecs_container_id,
                Role::RejectReason => &mut f.reject_reason,
                Role::Action => &mut f.action,
                Role::LogStatus => &mut f.log_status,
                Role::PktSrcAddr => &mut f.pkt_srcaddr,
                Role::PktDstAddr => &mut f.pkt_dstaddr,
                Role::TcpFlags => &mut f.tcp_flags,
                Role::Number(_) | Role::Text | Role::Repeated => continue,
            };
            *slot = Some(value);
        }

        // Everything that can make the record invalid is checked before writing.
        let (src, src_ip) = ip(f.srcaddr, "srcaddr")?.unzip();
        let (dst, dst_ip) = ip(f.dstaddr, "dstaddr")?.unzip();
        let pkt_src = ip(f.pkt_srcaddr, "pkt-srcaddr")?.map(|(text, _)| text);
        let pkt_dst = ip(f.pkt_dstaddr, "pkt-dstaddr")?.map(|(text, _)| text);
        let srcport = port(f.srcport, "srcport")?;
        let dstport = port(f.dstport, "dstport")?;
        let protocol = number(f.protocol, "protocol")?;
        let bytes = number(f.bytes, "bytes")?;
        let packets = number(f.packets, "packets")?;
        let start = epoch(f.start, "start")?;
        let end = epoch(f.end, "end")?;
        let tcp_flags = number(f.tcp_flags, "tcp-flags")?;

        out.extend_from_slice(
            br#"{"event":{"module":"aws","dataset":"aws.vpcflow","kind":"event","category":["network"],"type":"#,
        );
        // `event.action` keeps the flow log's own word, as the es-loader and Elastic's AWS
        // integration write it (content made for them filters on it); ECS's vocabulary is
        // in `event.type` (`allowed`/`denied`) and `event.outcome`.
        let verdict = match f.action {
            Some(a) if a.eq_ignore_ascii_case("ACCEPT") => Some(("ACCEPT", "allowed", "success")),
            Some(a) if a.eq_ignore_ascii_case("REJECT") => Some(("REJECT", "denied", "failure")),
            _ => None,
        };
        if matches!(f.log_status, Some("NODATA" | "SKIPDATA")) {
            // No traffic (NODATA) or records the service could not capture (SKIPDATA): a
            // report about the capture window, not a connection.
            out.extend_from_slice(br#"["info"]"#);
        } else {
            match verdict {
                Some((_, kind, _)) => {
                    out.extend_from_slice(br#"["connection","#);
                    write_str(out, kind);
                    out.push(b']');
                }
                None => out.extend_from_slice(br#"["connection"]"#),
            }
        }
        if let Some((action, _, outcome)) = verdict {
            out.extend_from_slice(br#","action":"#);
            write_str(out, action);
            out.extend_from_slice(br#","outcome":"#);
            write_str(out, outcome);
        }
        if let Some(start) = start {
            out.extend_from_slice(br#","start":"#);
            write_str(out, self.start_text.get(start));
        }
        if let Some(end) = end {
            out.extend_from_slice(br#","end":"#);
            write_str(out, self.end_text.get(end));
        }
        if let (Some(start), Some(end)) = (start, end)
            && let Some(nanos) = (end - start).num_nanoseconds()
            && let Ok(nanos) = u64::try_from(nanos)
        {
            out.extend_from_slice(br#","duration":"#);
            write_u64(out, nanos);
        }
        if let Some(reason) = f.reject_reason {
            out.extend_from_slice(br#","reason":"#);
            write_str(out, reason);
        }
        if let Some(common) = common {
            out.extend_from_slice(br#","ingested":"#);
            write_str(out, common.ingested);
        }
        out.push(b'}');

        for (column, value) in self.columns.iter().zip(values) {
            if let (Some(key), Some(value)) = (&column.top_key, present(value)) {
                out.push(b',');
                out.extend_from_slice(key);
                write_str(out, value);
            }
        }

        let (src_facts, dst_facts) = (self.facts(src_ip, common), self.facts(dst_ip, common));
        let geo_of = |facts: Option<AddressFacts>| {
            facts
                .and_then(|f| {
                    let start = f.geo_start as usize;
                    self.seen_geo.get(start..start + f.geo_len as usize)
                })
                .unwrap_or_default()
        };
        let (src_geo, dst_geo) = (geo_of(src_facts), geo_of(dst_facts));
        let mut source = Object::endpoint(out, br#","source":{"#, src, srcport);
        if let Some(bytes) = bytes {
            source.number(out, br#""bytes":"#, bytes);
        }
        if let Some(packets) = packets {
            source.number(out, br#""packets":"#, packets);
        }
        source.geo(out, src_geo);
        source.close(out);

        let mut destination = Object::endpoint(out, br#","destination":{"#, dst, dstport);
        destination.geo(out, dst_geo);
        destination.close(out);

        let threats = |facts: Option<AddressFacts>| facts.is_some_and(|f| f.threat);
        let enrichments = match common.and_then(|c| c.threat) {
            Some(intel) if threats(src_facts) || threats(dst_facts) => {
                intel.flow_enrichments(src, dst)
            }
            _ => Vec::new(),
        };
        self.threat_matched = !enrichments.is_empty();
        if self.threat_matched {
            out.extend_from_slice(br#","threat":{"enrichments":"#);
            crate::json_write::write_value(out, &serde_json::Value::Array(enrichments));
            out.push(b'}');
        }

        let mut network = Object::open(out, br#","network":{"#);
        if let Some(proto) = protocol {
            network.key(out, br#""iana_number":"#);
            out.push(b'"');
            write_u64(out, proto);
            out.push(b'"');
            if let Some(name) = u8::try_from(proto).ok().and_then(transport_name) {
                network.text(out, br#""transport":"#, name);
            }
        }
        if let Some(bytes) = bytes {
            network.number(out, br#""bytes":"#, bytes);
        }
        if let Some(packets) = packets {
            network.number(out, br#""packets":"#, packets);
        }
        let network_type = match f.kind {
            Some(t) if t.eq_ignore_ascii_case("IPv4") => Some("ipv4"),
            Some(t) if t.eq_ignore_ascii_case("IPv6") => Some("ipv6"),
            Some(_) => None,
            None => src
                .or(dst)
                .map(|a| if a.contains(':') { "ipv6" } else { "ipv4" }),
        };
        if let Some(t) = network_type {
            network.text(out, br#""type":"#, t);
        }
        // `ingress`/`egress` are ECS values too, and the ones the es-loader and Elastic write.
        if let Some(d @ ("ingress" | "egress")) = f.flow_direction {
            network.text(out, br#""direction":"#, d);
        }
        network.close(out);

        let account = f.account.or(common.and_then(|c| c.key_account));
        let org = match (account, common.and_then(|c| c.org)) {
            (Some(account), Some(directory)) => {
                if self
                    .org_seen
                    .as_ref()
                    .is_none_or(|(seen, _)| **seen != *account)
                {
                    self.org_seen = Some((account.into(), directory.flow_fields(account)));
                }
                self.org_seen
                    .as_ref()
                    .and_then(|(_, fields)| fields.as_ref())
            }
            _ => None,
        };
        let mut cloud = Object::open(out, br#","cloud":{"#);
        if let Some(account) = account {
            cloud.key(out, br#""account":{"id":"#);
            write_str(out, account);
            if let Some(name) = org.and_then(|o| o.name.as_deref()) {
                out.extend_from_slice(br#","name":"#);
                write_str(out, name);
            }
            out.push(b'}');
        }
        if let Some(region) = f.region.or(common.and_then(|c| c.key_region)) {
            cloud.text(out, br#""region":"#, region);
        }
        if let Some(instance) = f.instance {
            cloud.key(out, br#""instance":{"id":"#);
            write_str(out, instance);
            out.push(b'}');
        }
        if common.is_some() {
            cloud.text(out, br#""provider":"#, "aws");
        }
        cloud.close(out);

        if let Some(cluster) = f.ecs_cluster_name {
            out.extend_from_slice(br#","orchestrator":{"type":"ecs","cluster":{"name":"#);
            write_str(out, cluster);
            out.extend_from_slice(b"}}");
        }
        if let Some(container) = f.ecs_container_id {
            out.extend_from_slice(br#","container":{"id":"#);
            write_str(out, container);
            out.push(b'}');
        }

        let mut related: [Option<&str>; 4] = [None; 4];
        let mut n = 0;
        for addr in [src, dst, pkt_src, pkt_dst].into_iter().flatten() {
            if !related[..n].contains(&Some(addr)) {
                related[n] = Some(addr);
                n += 1;
            }
        }
        if n > 0 {
            out.extend_from_slice(br#","related":{"ip":["#);
            for (i, addr) in related[..n].iter().flatten().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, addr);
            }
            out.extend_from_slice(b"]}");
        }

        let mut vpcflow = Object::open(out, br#","aws":{"vpcflow":{"#);
        for (column, value) in self.columns.iter().zip(values) {
            let (Some(key), Some(value)) = (&column.vpcflow_key, present(value)) else {
                continue;
            };
            match column.role {
                Role::Number(field) => {
                    let n = number(Some(value), field)?;
                    vpcflow.number(out, key, n.unwrap_or_default());
                }
                Role::TcpFlags => vpcflow.number(out, key, tcp_flags.unwrap_or_default()),
                _ => vpcflow.text(out, key, value),
            }
        }
        if let Some(flags) = tcp_flags
            && flags & 0x3f != 0
        {
            vpcflow.key(out, br#""tcp_flags_array":["#);
            let mut first = true;
            for (bit, name) in TCP_FLAGS {
                if flags & bit != 0 {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    write_str(out, name);
                }
            }
            out.push(b']');
        }
        let org_members = org.map(|o| o.aws_members.as_slice()).unwrap_or_default();
        if vpcflow.close(out) {
            if !org_members.is_empty() {
                out.push(b',');
                out.extend_from_slice(org_members);
            }
            out.push(b'}');
        } else if !org_members.is_empty() {
            out.extend_from_slice(br#","aws":{"#);
            out.extend_from_slice(org_members);
            out.push(b'}');
        }
        // The flow's end, as the es-loader and Elastic time it: the record is written when the
        // aggregation window closes.
        Ok(end.or(start))
    }
}

/// A nested object that is left out when nothing is written into it.
struct Object {
    mark: usize,
    empty: bool,
}

impl Object {
    /// Writes `,"name":{`; `open` ends with the brace.
    fn open(out: &mut Vec<u8>, open: &[u8]) -> Self {
        let mark = out.len();
        out.extend_from_slice(open);
        Self { mark, empty: true }
    }

    /// `source` or `destination`: the address (ECS `ip` and `address`) and the port.
    fn endpoint(out: &mut Vec<u8>, open: &[u8], addr: Option<&str>, port: Option<u16>) -> Self {
        let mut endpoint = Self::open(out, open);
        if let Some(addr) = addr {
            endpoint.text(out, br#""ip":"#, addr);
            endpoint.text(out, br#""address":"#, addr);
        }
        if let Some(port) = port {
            endpoint.number(out, br#""port":"#, u64::from(port));
        }
        endpoint
    }

    /// `geo` and `as` of the address (their JSON, empty when the lookup knew nothing).
    fn geo(&mut self, out: &mut Vec<u8>, json: &[u8]) {
        if !json.is_empty() {
            self.key(out, b"");
            out.extend_from_slice(json);
        }
    }

    fn key(&mut self, out: &mut Vec<u8>, key: &[u8]) {
        if !self.empty {
            out.push(b',');
        }
        self.empty = false;
        out.extend_from_slice(key);
    }

    fn text(&mut self, out: &mut Vec<u8>, key: &[u8], value: &str) {
        self.key(out, key);
        write_str(out, value);
    }

    fn number(&mut self, out: &mut Vec<u8>, key: &[u8], value: u64) {
        self.key(out, key);
        write_u64(out, value);
    }

    /// Closes the object, or takes it back out when empty. Whether it was kept.
    fn close(self, out: &mut Vec<u8>) -> bool {
        if self.empty {
            out.truncate(self.mark);
            false
        } else {
            out.push(b'}');
            true
        }
    }
}

/// The values of a default-format line (as CloudWatch Logs delivers it, without a header), in
/// [`DEFAULT_FIELDS`] order. `None` when the line does not have the 14 fields of the default
/// format or does not start with a version number.
fn default_line_values(line: &str) -> Option<Vec<&str>> {
    let values: Vec<&str> = line.split_ascii_whitespace().collect();
    let version = values.first()?;
    (values.len() == DEFAULT_FIELDS.len() && version.bytes().all(|b| b.is_ascii_digit()))
        .then_some(values)
}

/// Normalizes one default-format line (as CloudWatch Logs delivers flow logs) into a document
/// read back as fields. `Ok(false)` when the line is not in the default format.
pub fn normalize_default_line(
    line: &str,
    out: &mut Vec<Normalized>,
) -> Result<bool, NormalizeError> {
    thread_local! {
        /// The default header is the same for every line: learned once per thread.
        static DEFAULT: std::cell::RefCell<Writer> = std::cell::RefCell::new(Writer::new(&DEFAULT_FIELDS));
    }
    let Some(values) = default_line_values(line) else {
        return Ok(false);
    };
    DEFAULT.with_borrow_mut(|writer| written_fields(writer, &values, out))?;
    Ok(true)
}

/// Normalizes one record given as values of the named fields (`-` = absent) into a document
/// read back as fields, for the paths that work on maps.
pub fn normalize_fields<S: AsRef<str>>(
    names: &[S],
    values: &[&str],
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    written_fields(&mut Writer::new(names), values, out)
}

fn written_fields(
    writer: &mut Writer,
    values: &[&str],
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    let mut json = Vec::with_capacity(1024);
    let timestamp = writer.write(values, None, &mut json)?;
    json.push(b'}');
    let doc: Doc = serde_json::from_slice(&json).map_err(|e| NormalizeError::InvalidField {
        field: "record",
        reason: format!("the document written is not JSON: {e}"),
    })?;
    out.push(Normalized::new(doc, timestamp));
    Ok(())
}

/// Normalizes one flow log record given as a map (field name to value) into one document.
pub fn normalize(
    record: Value,
    _ctx: &super::Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    let Value::Object(map) = record else {
        return Err(NormalizeError::NotAnObject);
    };
    let mut names: Vec<&str> = Vec::with_capacity(map.len());
    let mut texts: Vec<Cow<'_, str>> = Vec::with_capacity(map.len());
    for (name, value) in &map {
        let text = match value {
            Value::String(s) => Cow::Borrowed(s.as_str()),
            Value::Number(n) => Cow::Owned(n.to_string()),
            Value::Bool(b) => Cow::Owned(b.to_string()),
            Value::Null => Cow::Borrowed("-"),
            Value::Array(_) | Value::Object(_) => {
                return Err(NormalizeError::ConfiguredField {
                    field: name.clone(),
                    reason: "a flow log field is a single value, not a list or an object"
                        .to_owned(),
                });
            }
        };
        names.push(name);
        texts.push(text);
    }
    let values: Vec<&str> = texts.iter().map(Cow::as_ref).collect();
    normalize_fields(&names, &values, out)
}

fn invalid(field: &'static str, reason: impl Into<String>) -> NormalizeError {
    NormalizeError::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// An unsigned integer field; a present but non-numeric value is an error for the record.
fn number(value: Option<&str>, field: &'static str) -> Result<Option<u64>, NormalizeError> {
    match value {
        None => Ok(None),
        Some(s) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| invalid(field, format!("`{s}` is not a non-negative integer"))),
    }
}

fn port(value: Option<&str>, field: &'static str) -> Result<Option<u16>, NormalizeError> {
    match number(value, field) {
        Ok(Some(n)) => u16::try_from(n)
            .map(Some)
            .map_err(|_| invalid(field, format!("port {n} is out of range"))),
        Ok(None) => Ok(None),
        Err(_) => Err(invalid(
            field,
            format!(
                "`{}` is not a port number",
                Value::from(value.unwrap_or_default())
            ),
        )),
    }
}

/// An address field: its text and the address.
fn ip<'a>(
    value: Option<&'a str>,
    field: &'static str,
) -> Result<Option<(&'a str, IpAddr)>, NormalizeError> {
    let Some(text) = value else {
        return Ok(None);
    };
    match crate::ecs::parse_ip(text) {
        Some(ip) => Ok(Some((text, ip))),
        None => Err(invalid(field, format!("`{text}` is not an IP address"))),
    }
}

fn epoch(
    value: Option<&str>,
    field: &'static str,
) -> Result<Option<DateTime<Utc>>, NormalizeError> {
    let Some(secs) = number(value, field)? else {
        return Ok(None);
    };
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .map(Some)
        .ok_or_else(|| {
            invalid(
                field,
                format!("{secs} is not a valid time in epoch seconds"),
            )
        })
}

/// `network.transport` for an IANA protocol number (lowercase keyword names as in ECS).
pub fn transport_name(number: u8) -> Option<&'static str> {
    Some(match number {
        0 => "hopopt",
        1 => "icmp",
        2 => "igmp",
        3 => "ggp",
        4 => "ipv4",
        5 => "st",
        6 => "tcp",
        8 => "egp",
        9 => "igp",
        17 => "udp",
        27 => "rdp",
        33 => "dccp",
        41 => "ipv6",
        43 => "ipv6-route",
        44 => "ipv6-frag",
        46 => "rsvp",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        59 => "ipv6-nonxt",
        60 => "ipv6-opts",
        88 => "eigrp",
        89 => "ospf",
        94 => "ipip",
        97 => "etherip",
        98 => "encap",
        103 => "pim",
        108 => "ipcomp",
        112 => "vrrp",
        115 => "l2tp",
        124 => "isis",
        132 => "sctp",
        135 => "mobility-header",
        136 => "udplite",
        137 => "mpls-in-ip",
        139 => "hip",
        140 => "shim6",
        141 => "wesp",
        142 => "rohc",
        143 => "ethernet",
        _ => return None,
    })
}

/// The TCP flags VPC Flow Logs reports (bitwise OR over the aggregation window), by bit.
const TCP_FLAGS: [(u64, &str); 6] = [
    (0x01, "fin"),
    (0x02, "syn"),
    (0x04, "rst"),
    (0x08, "psh"),
    (0x10, "ack"),
    (0x20, "urg"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::get;
    use crate::parsers::Context;
    use serde_json::{Map, json};

    fn ctx() -> Context<'static> {
        Context {
            s3_key: "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/x.log.gz",
            key_account: Some("111122223333"),
            key_region: Some("us-east-1"),
            ingested: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            reference: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            key_time: None,
        }
    }

    /// Builds a record the way the splitter does: header names to values, `-` left out.
    fn record(header: &str, line: &str) -> Value {
        let map: Map<String, Value> = header
            .split(' ')
            .zip(line.split(' '))
            .filter(|(_, v)| *v != "-")
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
        Value::Object(map)
    }

    fn one(rec: Value) -> Normalized {
        let mut out = Vec::new();
        normalize(rec, &ctx(), &mut out).expect("record normalizes");
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    const V2: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";

    #[test]
    fn default_accept_record() {
        let n = one(record(
            V2,
            "2 111122223333 eni-0123456789abcdef0 192.0.2.10 198.51.100.20 49152 443 6 10 5200 1714521600 1714521660 ACCEPT OK",
        ));
        let d = Value::Object(n.doc);
        assert_eq!(get(&d, "source.ip"), Some(&json!("192.0.2.10")));
        assert_eq!(get(&d, "source.port"), Some(&json!(49152)));
        assert_eq!(get(&d, "destination.ip"), Some(&json!("198.51.100.20")));
        assert_eq!(get(&d, "destination.port"), Some(&json!(443)));
        assert_eq!(get(&d, "network.transport"), Some(&json!("tcp")));
        assert_eq!(get(&d, "network.iana_number"), Some(&json!("6")));
        assert_eq!(get(&d, "network.bytes"), Some(&json!(5200)));
        assert_eq!(get(&d, "network.packets"), Some(&json!(10)));
        assert_eq!(get(&d, "network.type"), Some(&json!("ipv4")));
        assert_eq!(get(&d, "event.action"), Some(&json!("ACCEPT")));
        assert_eq!(get(&d, "event.outcome"), Some(&json!("success")));
        assert_eq!(
            get(&d, "event.type"),
            Some(&json!(["connection", "allowed"]))
        );
        assert_eq!(get(&d, "event.category"), Some(&json!(["network"])));
        assert_eq!(get(&d, "event.start"), Some(&json!("2024-05-01T00:00:00Z")));
        assert_eq!(get(&d, "event.end"), Some(&json!("2024-05-01T00:01:00Z")));
        assert_eq!(get(&d, "event.duration"), Some(&json!(60_000_000_000_i64)));
        assert_eq!(get(&d, "cloud.account.id"), Some(&json!("111122223333")));
        assert_eq!(
            get(&d, "aws.vpcflow.interface_id"),
            Some(&json!("eni-0123456789abcdef0"))
        );
        assert_eq!(get(&d, "aws.vpcflow.version"), Some(&json!(2)));
        assert_eq!(get(&d, "aws.vpcflow.log_status"), Some(&json!("OK")));
        assert_eq!(
            get(&d, "related.ip"),
            Some(&json!(["192.0.2.10", "198.51.100.20"]))
        );
        // Original fields stay as they were.
        assert_eq!(get(&d, "srcaddr"), Some(&json!("192.0.2.10")));
        assert_eq!(get(&d, "account-id"), Some(&json!("111122223333")));
        // The flow's end times the document.
        assert_eq!(n.timestamp, DateTime::from_timestamp(1_714_521_660, 0));
        assert_eq!(n.id, None);
    }

    #[test]
    fn reject_is_denied_failure() {
        let n = one(record(
            V2,
            "2 111122223333 eni-0123456789abcdef0 203.0.113.5 192.0.2.10 55000 22 6 1 40 1714521600 1714521660 REJECT OK",
        ));
        let d = Value::Object(n.doc);
        assert_eq!(get(&d, "event.action"), Some(&json!("REJECT")));
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(
            get(&d, "event.type"),
            Some(&json!(["connection", "denied"]))
        );
    }

    #[test]
    fn nodata_and_skipdata_are_kept_with_their_status() {
        for status in ["NODATA", "SKIPDATA"] {
            let n = one(record(
                V2,
                &format!(
                    "2 111122223333 eni-0123456789abcdef0 - - - - - - - 1714521600 1714521660 - {status}"
                ),
            ));
            let d = Value::Object(n.doc);
            assert_eq!(get(&d, "aws.vpcflow.log_status"), Some(&json!(status)));
            assert_eq!(get(&d, "event.type"), Some(&json!(["info"])));
            assert_eq!(get(&d, "source.ip"), None);
            assert_eq!(get(&d, "event.outcome"), None);
            assert!(n.timestamp.is_some());
        }
    }

    #[test]
    fn custom_v5_fields() {
        let header = "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status region az-id sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path";
        let line = "5 vpc-0a1b2c3d subnet-0a1b2c3d i-0a1b2c3d4e5f60718 eni-0a1b2c3d4e5f60718 111122223333 IPv4 10.0.1.5 198.51.100.7 443 51234 10.0.1.5 198.51.100.7 6 3400 8 1714521600 1714521620 ACCEPT 19 OK eu-west-1 euw1-az2 - - - S3 egress 8";
        let d = Value::Object(one(record(header, line)).doc);
        assert_eq!(get(&d, "network.direction"), Some(&json!("egress")));
        assert_eq!(
            get(&d, "cloud.instance.id"),
            Some(&json!("i-0a1b2c3d4e5f60718"))
        );
        assert_eq!(get(&d, "cloud.region"), Some(&json!("eu-west-1")));
        assert_eq!(get(&d, "aws.vpcflow.vpc_id"), Some(&json!("vpc-0a1b2c3d")));
        assert_eq!(
            get(&d, "aws.vpcflow.subnet_id"),
            Some(&json!("subnet-0a1b2c3d"))
        );
        assert_eq!(get(&d, "aws.vpcflow.tcp_flags"), Some(&json!(19)));
        assert_eq!(
            get(&d, "aws.vpcflow.tcp_flags_array"),
            Some(&json!(["fin", "syn", "ack"]))
        );
        assert_eq!(get(&d, "aws.vpcflow.traffic_path"), Some(&json!(8)));
        assert_eq!(get(&d, "aws.vpcflow.pkt_srcaddr"), Some(&json!("10.0.1.5")));
        assert_eq!(
            get(&d, "aws.vpcflow.pkt_dst_aws_service"),
            Some(&json!("S3"))
        );
        assert_eq!(get(&d, "aws.vpcflow.az_id"), Some(&json!("euw1-az2")));
        assert_eq!(get(&d, "aws.vpcflow.sublocation_type"), None);
        // Fields ECS carries are not repeated under aws.vpcflow; the originals stay.
        assert_eq!(get(&d, "aws.vpcflow.flow_direction"), None);
        assert_eq!(get(&d, "aws.vpcflow.action"), Some(&json!("ACCEPT")));
        assert_eq!(get(&d, "flow-direction"), Some(&json!("egress")));
    }

    #[test]
    fn ingress_stays_ingress_and_ipv6_is_detected() {
        let header = "version srcaddr dstaddr srcport dstport protocol start end action log-status flow-direction";
        let line = "5 2001:db8::1 2001:db8::2 546 547 17 1714521600 1714521601 ACCEPT OK ingress";
        let d = Value::Object(one(record(header, line)).doc);
        assert_eq!(get(&d, "network.direction"), Some(&json!("ingress")));
        assert_eq!(get(&d, "network.type"), Some(&json!("ipv6")));
        assert_eq!(get(&d, "network.transport"), Some(&json!("udp")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("2001:db8::1")));
    }

    #[test]
    fn v7_ecs_fields() {
        let header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id ecs-container-id ecs-second-container-id ecs-service-name ecs-task-definition-arn ecs-task-arn ecs-task-id";
        let line = "7 111122223333 eni-0a1b2c3d4e5f60718 10.0.1.100 10.0.2.200 49152 8080 6 15 3500 1714521600 1714521660 ACCEPT OK arn:aws:ecs:us-east-1:111122223333:cluster/web web arn:aws:ecs:us-east-1:111122223333:container-instance/web/abc abc 3f2a9c1e 7d1e0b2a front arn:aws:ecs:us-east-1:111122223333:task-definition/front:3 arn:aws:ecs:us-east-1:111122223333:task/web/0f1e 0f1e";
        let d = Value::Object(one(record(header, line)).doc);
        assert_eq!(get(&d, "orchestrator.cluster.name"), Some(&json!("web")));
        assert_eq!(get(&d, "orchestrator.type"), Some(&json!("ecs")));
        assert_eq!(get(&d, "container.id"), Some(&json!("3f2a9c1e")));
        assert_eq!(
            get(&d, "aws.vpcflow.ecs_service_name"),
            Some(&json!("front"))
        );
        assert_eq!(get(&d, "aws.vpcflow.ecs_task_id"), Some(&json!("0f1e")));
    }

    #[test]
    fn transit_gateway_record() {
        let header = "version resource-type account-id tgw-id tgw-attachment-id tgw-src-vpc-account-id tgw-dst-vpc-account-id tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id tgw-dst-subnet-id tgw-src-eni tgw-dst-eni tgw-src-az-id tgw-dst-az-id tgw-pair-attachment-id srcaddr dstaddr srcport dstport protocol packets bytes start end log-status type packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded packets-lost-ttl-expired tcp-flags region flow-direction pkt-src-aws-service pkt-dst-aws-service";
        let line = "6 TransitGateway 111122223333 tgw-0a1b2c3d tgw-attach-0a1b2c3d 111122223333 444455556666 vpc-0a1b vpc-0c2d subnet-0a1b subnet-0c2d eni-0a1b eni-0c2d use1-az1 use1-az2 tgw-attach-0e3f 10.0.0.1 10.1.0.1 12345 443 6 10 1000 1714521600 1714521660 OK IPv4 0 2 0 0 3 us-east-1 ingress - -";
        let d = Value::Object(one(record(header, line)).doc);
        assert_eq!(get(&d, "aws.vpcflow.tgw_id"), Some(&json!("tgw-0a1b2c3d")));
        assert_eq!(
            get(&d, "aws.vpcflow.tgw_attachment_id"),
            Some(&json!("tgw-attach-0a1b2c3d"))
        );
        assert_eq!(
            get(&d, "aws.vpcflow.packets_lost_blackhole"),
            Some(&json!(2))
        );
        assert_eq!(
            get(&d, "aws.vpcflow.packets_lost_no_route"),
            Some(&json!(0))
        );
        assert_eq!(get(&d, "aws.vpcflow.tcp_flags"), Some(&json!(3)));
        assert_eq!(
            get(&d, "aws.vpcflow.resource_type"),
            Some(&json!("TransitGateway"))
        );
        assert_eq!(get(&d, "network.direction"), Some(&json!("ingress")));
        assert_eq!(get(&d, "network.bytes"), Some(&json!(1000)));
        assert_eq!(get(&d, "event.action"), None);
        assert_eq!(get(&d, "event.type"), Some(&json!(["connection"])));
    }

    #[test]
    fn bad_numbers_and_addresses_are_record_errors() {
        let mut out = Vec::new();
        let bad_port = record(
            V2,
            "2 111122223333 eni-0 192.0.2.1 192.0.2.2 http 443 6 1 40 1714521600 1714521660 ACCEPT OK",
        );
        let err = normalize(bad_port, &ctx(), &mut out).expect_err("port is not a number");
        assert!(
            matches!(
                err,
                NormalizeError::InvalidField {
                    field: "srcport",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("`\"http\"` is not a port number"),
            "{err}"
        );

        let big_port = record(
            V2,
            "2 111122223333 eni-0 192.0.2.1 192.0.2.2 70000 443 6 1 40 1714521600 1714521660 ACCEPT OK",
        );
        let err = normalize(big_port, &ctx(), &mut out).expect_err("port out of range");
        assert!(err.to_string().contains("out of range"), "{err}");

        let bad_ip = record(
            V2,
            "2 111122223333 eni-0 192.0.2.999 192.0.2.2 1 443 6 1 40 1714521600 1714521660 ACCEPT OK",
        );
        let err = normalize(bad_ip, &ctx(), &mut out).expect_err("address is invalid");
        assert!(
            matches!(
                err,
                NormalizeError::InvalidField {
                    field: "srcaddr",
                    ..
                }
            ),
            "{err}"
        );

        let bad_bytes = record(
            V2,
            "2 111122223333 eni-0 192.0.2.1 192.0.2.2 1 443 6 1 -40 1714521600 1714521660 ACCEPT OK",
        );
        let err = normalize(bad_bytes, &ctx(), &mut out).expect_err("bytes is negative");
        assert!(
            matches!(err, NormalizeError::InvalidField { field: "bytes", .. }),
            "{err}"
        );

        let err = normalize(json!(["not", "an", "object"]), &ctx(), &mut out)
            .expect_err("arrays are not records");
        assert_eq!(err, NormalizeError::NotAnObject);
        assert!(out.is_empty());
    }

    #[test]
    fn protocol_table() {
        for (n, name) in [
            (1, "icmp"),
            (6, "tcp"),
            (17, "udp"),
            (47, "gre"),
            (50, "esp"),
            (51, "ah"),
            (58, "ipv6-icmp"),
            (132, "sctp"),
        ] {
            assert_eq!(transport_name(n), Some(name));
        }
        assert_eq!(transport_name(253), None);
        // An unknown protocol keeps its number but gets no transport name.
        let d = Value::Object(one(record("version protocol start", "2 253 1714521600")).doc);
        assert_eq!(get(&d, "network.iana_number"), Some(&json!("253")));
        assert_eq!(get(&d, "network.transport"), None);
    }

    #[test]
    fn default_line_values_need_fourteen_fields_and_a_version() {
        let values = default_line_values(
            "2 111122223333 eni-0a1b 192.0.2.1 198.51.100.2 443 49152 6 3 180 1714521600 1714521660 ACCEPT OK",
        )
        .expect("default line");
        assert_eq!(values[3], "192.0.2.1");
        assert_eq!(values[13], "OK");
        let mut out = Vec::new();
        normalize_fields(&DEFAULT_FIELDS, &values, &mut out).expect("normalizes");
        let d = Value::Object(out.remove(0).doc);
        assert_eq!(get(&d, "source.ip"), Some(&json!("192.0.2.1")));
        assert!(
            default_line_values(
                "2 111122223333 eni-0a1b - - - - - - - 1714521600 1714521660 - NODATA"
            )
            .is_some()
        );
        assert_eq!(default_line_values("2 111122223333 eni-0a1b"), None);
        assert_eq!(normalize_default_line("hello world", &mut out), Ok(false));
        let line = "2 111122223333 eni-0a1b 192.0.2.1 198.51.100.2 443 49152 6 3 180 1714521600 1714521660 ACCEPT OK";
        assert_eq!(normalize_default_line(line, &mut out), Ok(true));
        // The same document as from the named fields, the header learned once per thread.
        assert_eq!(Value::Object(out.remove(0).doc), d);
        assert_eq!(default_line_values("hello world"), None);
        assert_eq!(default_line_values(""), None);
        assert_eq!(
            default_line_values(
                "x 111122223333 eni-0a1b - - - - - - - 1714521600 1714521660 - NODATA"
            ),
            None
        );
        assert_eq!(
            default_line_values(
                "2 111122223333 eni-0a1b - - - - - - - 1714521600 1714521660 - NODATA extra"
            ),
            None
        );
    }

    /// Writes one line directly, closed, and checks it is JSON without a repeated key (a
    /// repeated key would make the re-serialized map shorter).
    fn direct(header: &str, line: &str, common: Option<&Common<'_>>) -> Doc {
        let names: Vec<&str> = header.split(' ').collect();
        let values: Vec<&str> = line.split(' ').collect();
        let mut out = b"garbage".to_vec();
        Writer::new(&names)
            .write(&values, common, &mut out)
            .expect("record writes");
        out.push(b'}');
        let json = &out[7..];
        let doc: Doc = serde_json::from_slice(json).expect("valid JSON");
        assert_eq!(
            crate::json_write::map_to_vec(&doc).len(),
            json.len(),
            "no key written twice: {}",
            String::from_utf8_lossy(json)
        );
        doc
    }

    #[test]
    fn direct_writing_equals_the_map_path() {
        let cases = [
            (
                V2,
                "2 111122223333 eni-0123456789abcdef0 192.0.2.10 198.51.100.20 49152 443 6 10 5200 1714521600 1714521660 ACCEPT OK",
            ),
            (
                V2,
                "2 111122223333 eni-0123456789abcdef0 - - - - - - - 1714521600 1714521660 - NODATA",
            ),
            (
                "version vpc-id instance-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status region flow-direction traffic-path reject-reason ecs-cluster-name ecs-container-id",
                "5 vpc-0a1b i-0a1b 111122223333 IPv6 2001:db8::1 2001:db8::2 443 51234 2001:db8::9 2001:db8::2 17 3400 8 1714521600 1714521620 REJECT 63 OK eu-west-1 ingress 8 BPA web 3f2a",
            ),
            // Odd headers: a repeated name (the last wins), reserved names, colliding keys.
            (
                "srcaddr event a-b a_b tcp_flags_array tcp-flags srcaddr start",
                "192.0.2.1 x 1 2 y 2 198.51.100.1 1714521600",
            ),
        ];
        for (header, line) in cases {
            let mut out = Vec::new();
            normalize(record(header, line), &ctx(), &mut out).expect("map path");
            let mapped = out.remove(0).doc;
            assert_eq!(direct(header, line, None), mapped, "{line}");
        }
        let d = direct(cases[3].0, cases[3].1, None);
        assert_eq!(d.get("srcaddr"), Some(&json!("198.51.100.1")));
        assert_eq!(
            d.get("event").and_then(|e| e.get("module")),
            Some(&json!("aws"))
        );
        let d = Value::Object(d);
        assert_eq!(get(&d, "aws.vpcflow.event"), Some(&json!("x")));
        assert_eq!(get(&d, "aws.vpcflow.a_b"), Some(&json!("2")));
        assert_eq!(
            get(&d, "aws.vpcflow.tcp_flags_array"),
            Some(&json!(["syn"]))
        );
    }

    #[test]
    fn common_fields_go_into_event_and_cloud() {
        let common = Common {
            ingested: "2026-01-01T00:00:00.000Z",
            key_account: Some("444455556666"),
            key_region: Some("ap-northeast-1"),
            geo: None,
            threat: None,
            org: None,
        };
        let d = Value::Object(direct(
            "version srcaddr start region",
            "2 192.0.2.1 1714521600 eu-west-1",
            Some(&common),
        ));
        assert_eq!(
            get(&d, "event.ingested"),
            Some(&json!("2026-01-01T00:00:00.000Z"))
        );
        assert_eq!(get(&d, "cloud.provider"), Some(&json!("aws")));
        assert_eq!(get(&d, "cloud.account.id"), Some(&json!("444455556666")));
        assert_eq!(get(&d, "cloud.region"), Some(&json!("eu-west-1")));
    }

    /// Private addresses are skipped by the lookups only while no feed lists such an address.
    #[test]
    fn private_addresses_match_feeds_that_list_them() {
        let matched = |feed: &str| {
            let mut intel = ThreatIntel::default();
            intel.add_feed("feed.txt", feed.as_bytes()).expect("feed");
            let common = Common {
                ingested: "2026-01-01T00:00:00.000Z",
                key_account: None,
                key_region: None,
                geo: None,
                threat: Some(&intel),
                org: None,
            };
            let doc = Value::Object(direct(
                "version srcaddr dstaddr",
                "2 10.0.0.7 81.2.69.1",
                Some(&common),
            ));
            get(&doc, "threat.enrichments")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        assert_eq!(matched("81.2.69.1\n"), 1);
        assert_eq!(matched("81.2.69.1\n10.0.0.0/8\n"), 2);
        assert_eq!(matched("8.0.0.0/6\n"), 1, "a network holding 10.0.0.0/8");
    }

    #[test]
    fn an_invalid_record_writes_nothing() {
        let names: Vec<&str> = V2.split(' ').collect();
        let mut writer = Writer::new(&names);
        let mut out = b"kept".to_vec();
        let bad = "2 111122223333 eni-0 192.0.2.1 192.0.2.2 1 443 6 1 40 1714521600 1714521660 ACCEPT OK x";
        let values: Vec<&str> = bad.split(' ').collect();
        let err = writer
            .write(&values, None, &mut out)
            .expect_err("one field too many");
        assert!(
            err.to_string()
                .contains("15 fields where the header names 14"),
            "{err}"
        );
        let values: Vec<&str> = V2.split(' ').map(|_| "x").collect();
        writer
            .write(&values, None, &mut out)
            .expect_err("nothing is valid");
        let bad_version = "v2 111122223333 eni-0 192.0.2.1 192.0.2.2 1 443 6 1 40 1714521600 1714521660 ACCEPT OK";
        let values: Vec<&str> = bad_version.split(' ').collect();
        let err = writer
            .write(&values, None, &mut out)
            .expect_err("version is a number");
        assert!(
            matches!(
                err,
                NormalizeError::InvalidField {
                    field: "version",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(out, b"kept");
        assert_eq!(writer.value_of("srcaddr", &values), Some("192.0.2.1"));
        assert_eq!(writer.value_of("nope", &values), None);
    }
}
