//! VPC Flow Logs and Transit Gateway flow logs (versions 2 to 8, any custom field order).
//!
//! The splitter hands one record per line as a JSON object mapping each header field name
//! (`srcaddr`, `account-id`, `tgw-id`, ...) to its string value, with `-` values left out. The
//! original fields stay in the document; the ECS fields are added next to them, and every
//! field without an ECS home is kept typed under `aws.vpcflow.<name_with_underscores>`.

use super::{Context, NormalizeError, Normalized};
use crate::ecs::{Doc, set};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
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

/// Turns one line of the default format (as CloudWatch Logs delivers it, without a header) into
/// the record shape [`normalize`] expects. `None` when the line does not have the 14 fields of
/// the default format or does not start with a version number.
pub fn record_from_default_line(line: &str) -> Option<Value> {
    let mut parts = line.split_ascii_whitespace();
    let mut record = Map::new();
    for name in DEFAULT_FIELDS {
        let value = parts.next()?;
        if value != "-" {
            record.insert(name.to_owned(), Value::String(value.to_owned()));
        }
    }
    if parts.next().is_some() {
        return None;
    }
    let version = record.get("version")?.as_str()?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Value::Object(record))
}

/// Normalizes one flow log record into one document.
pub fn normalize(
    record: Value,
    _ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    let Value::Object(mut doc) = record else {
        return Err(NormalizeError::NotAnObject);
    };
    let (ecs, timestamp) = ecs_fields(&doc)?;
    merge(&mut doc, ecs);
    out.push(Normalized::new(doc, timestamp));
    Ok(())
}

/// The fields of one record that have an ECS home, found in one pass over the record.
#[derive(Default)]
struct Known<'a> {
    srcaddr: Option<&'a Value>,
    dstaddr: Option<&'a Value>,
    srcport: Option<&'a Value>,
    dstport: Option<&'a Value>,
    protocol: Option<&'a Value>,
    bytes: Option<&'a Value>,
    packets: Option<&'a Value>,
    start: Option<&'a Value>,
    end: Option<&'a Value>,
    action: Option<&'a Value>,
    log_status: Option<&'a Value>,
    kind: Option<&'a Value>,
    flow_direction: Option<&'a Value>,
    account: Option<&'a Value>,
    region: Option<&'a Value>,
    instance: Option<&'a Value>,
    ecs_cluster_name: Option<&'a Value>,
    ecs_container_id: Option<&'a Value>,
    reject_reason: Option<&'a Value>,
    tcp_flags: Option<&'a Value>,
    pkt_srcaddr: Option<&'a Value>,
    pkt_dstaddr: Option<&'a Value>,
}

/// Builds the ECS fields of one record; the record itself is only read. Flow logs are the
/// highest-volume type, so the record is walked once and the objects are built directly
/// rather than through dotted paths.
fn ecs_fields(rec: &Doc) -> Result<(Doc, Option<DateTime<Utc>>), NormalizeError> {
    let mut k = Known::default();
    let mut vpcflow = Map::new();
    for (name, value) in rec {
        // Fields whose meaning ECS carries are not repeated under `aws.vpcflow` (except the raw
        // verdict); integers there are numbers.
        let numeric: Option<&'static str> = match name.as_str() {
            "srcaddr" => {
                k.srcaddr = Some(value);
                continue;
            }
            "dstaddr" => {
                k.dstaddr = Some(value);
                continue;
            }
            "srcport" => {
                k.srcport = Some(value);
                continue;
            }
            "dstport" => {
                k.dstport = Some(value);
                continue;
            }
            "protocol" => {
                k.protocol = Some(value);
                continue;
            }
            "bytes" => {
                k.bytes = Some(value);
                continue;
            }
            "packets" => {
                k.packets = Some(value);
                continue;
            }
            "start" => {
                k.start = Some(value);
                continue;
            }
            "end" => {
                k.end = Some(value);
                continue;
            }
            // The raw verdict stays searchable next to event.action (allowed/denied).
            "action" => {
                k.action = Some(value);
                None
            }
            "type" => {
                k.kind = Some(value);
                continue;
            }
            "flow-direction" => {
                k.flow_direction = Some(value);
                continue;
            }
            "account-id" => {
                k.account = Some(value);
                continue;
            }
            "region" => {
                k.region = Some(value);
                continue;
            }
            "instance-id" => {
                k.instance = Some(value);
                continue;
            }
            "ecs-cluster-name" => {
                k.ecs_cluster_name = Some(value);
                continue;
            }
            "ecs-container-id" => {
                k.ecs_container_id = Some(value);
                continue;
            }
            "reject-reason" => {
                k.reject_reason = Some(value);
                continue;
            }
            "log-status" => {
                k.log_status = Some(value);
                None
            }
            "pkt-srcaddr" => {
                k.pkt_srcaddr = Some(value);
                None
            }
            "pkt-dstaddr" => {
                k.pkt_dstaddr = Some(value);
                None
            }
            "tcp-flags" => {
                k.tcp_flags = Some(value);
                Some("tcp-flags")
            }
            "version" => Some("version"),
            "traffic-path" => Some("traffic-path"),
            "packets-lost-no-route" => Some("packets-lost-no-route"),
            "packets-lost-blackhole" => Some("packets-lost-blackhole"),
            "packets-lost-mtu-exceeded" => Some("packets-lost-mtu-exceeded"),
            "packets-lost-ttl-expired" => Some("packets-lost-ttl-expired"),
            _ => None,
        };
        let typed = match numeric {
            Some(field) => match number(Some(value), field)? {
                Some(n) => Value::from(n),
                None => continue,
            },
            None => value.clone(),
        };
        vpcflow.insert(name.replace('-', "_"), typed);
    }

    let mut event = Map::new();
    put(&mut event, "module", "aws");
    put(&mut event, "dataset", "aws.vpcflow");
    put(&mut event, "kind", "event");
    put(&mut event, "category", vec!["network"]);
    let mut event_type = vec!["connection"];
    match text(k.action) {
        Some(a) if a.eq_ignore_ascii_case("ACCEPT") => {
            put(&mut event, "action", "allowed");
            put(&mut event, "outcome", "success");
            event_type.push("allowed");
        }
        Some(a) if a.eq_ignore_ascii_case("REJECT") => {
            put(&mut event, "action", "denied");
            put(&mut event, "outcome", "failure");
            event_type.push("denied");
        }
        _ => {}
    }
    if matches!(text(k.log_status), Some("NODATA" | "SKIPDATA")) {
        // No traffic (NODATA) or records the service could not capture (SKIPDATA): a
        // report about the capture window, not a connection.
        event_type = vec!["info"];
    }
    put(&mut event, "type", event_type);

    let mut related = Vec::new();
    let mut source = Map::new();
    let mut destination = Map::new();
    let src = ip(k.srcaddr, "srcaddr")?;
    let dst = ip(k.dstaddr, "dstaddr")?;
    if let Some(src) = src {
        put(&mut source, "ip", src);
        put(&mut source, "address", src);
        related.push(src);
    }
    if let Some(dst) = dst {
        put(&mut destination, "ip", dst);
        put(&mut destination, "address", dst);
        if !related.contains(&dst) {
            related.push(dst);
        }
    }
    for addr in [
        ip(k.pkt_srcaddr, "pkt-srcaddr")?,
        ip(k.pkt_dstaddr, "pkt-dstaddr")?,
    ]
    .into_iter()
    .flatten()
    {
        if !related.contains(&addr) {
            related.push(addr);
        }
    }
    if let Some(port) = port(k.srcport, "srcport")? {
        put(&mut source, "port", port);
    }
    if let Some(port) = port(k.dstport, "dstport")? {
        put(&mut destination, "port", port);
    }

    let mut network = Map::new();
    if let Some(proto) = number(k.protocol, "protocol")? {
        put(&mut network, "iana_number", proto.to_string());
        if let Some(name) = u8::try_from(proto).ok().and_then(transport_name) {
            put(&mut network, "transport", name);
        }
    }
    if let Some(bytes) = number(k.bytes, "bytes")? {
        put(&mut network, "bytes", bytes);
        put(&mut source, "bytes", bytes);
    }
    if let Some(packets) = number(k.packets, "packets")? {
        put(&mut network, "packets", packets);
        put(&mut source, "packets", packets);
    }
    let network_type = match text(k.kind) {
        Some(t) if t.eq_ignore_ascii_case("IPv4") => Some("ipv4"),
        Some(t) if t.eq_ignore_ascii_case("IPv6") => Some("ipv6"),
        Some(_) => None,
        None => src
            .or(dst)
            .map(|a| if a.contains(':') { "ipv6" } else { "ipv4" }),
    };
    if let Some(t) = network_type {
        put(&mut network, "type", t);
    }
    match text(k.flow_direction) {
        Some("ingress") => put(&mut network, "direction", "inbound"),
        Some("egress") => put(&mut network, "direction", "outbound"),
        _ => {}
    }

    let start = epoch(k.start, "start")?;
    let end = epoch(k.end, "end")?;
    if let Some(start) = start {
        put(&mut event, "start", iso(start));
    }
    if let Some(end) = end {
        put(&mut event, "end", iso(end));
    }
    if let (Some(start), Some(end)) = (start, end)
        && let Some(nanos) = (end - start).num_nanoseconds()
        && nanos >= 0
    {
        put(&mut event, "duration", nanos);
    }
    if let Some(reason) = text(k.reject_reason) {
        put(&mut event, "reason", reason);
    }

    let mut ecs = Doc::new();
    let mut cloud = Map::new();
    if let Some(account) = text(k.account) {
        let mut id = Map::new();
        put(&mut id, "id", account);
        cloud.insert("account".to_owned(), Value::Object(id));
    }
    if let Some(region) = text(k.region) {
        put(&mut cloud, "region", region);
    }
    if let Some(instance) = text(k.instance) {
        let mut id = Map::new();
        put(&mut id, "id", instance);
        cloud.insert("instance".to_owned(), Value::Object(id));
    }
    if !cloud.is_empty() {
        ecs.insert("cloud".to_owned(), Value::Object(cloud));
    }
    if let Some(cluster) = text(k.ecs_cluster_name) {
        set(&mut ecs, "orchestrator.type", "ecs");
        set(&mut ecs, "orchestrator.cluster.name", cluster);
    }
    if let Some(container) = text(k.ecs_container_id) {
        set(&mut ecs, "container.id", container);
    }
    if let Some(flags) = number(k.tcp_flags, "tcp-flags")? {
        let names = tcp_flag_names(flags);
        if !names.is_empty() {
            vpcflow.insert("tcp_flags_array".to_owned(), Value::from(names));
        }
    }

    ecs.insert("event".to_owned(), Value::Object(event));
    if !source.is_empty() {
        ecs.insert("source".to_owned(), Value::Object(source));
    }
    if !destination.is_empty() {
        ecs.insert("destination".to_owned(), Value::Object(destination));
    }
    if !network.is_empty() {
        ecs.insert("network".to_owned(), Value::Object(network));
    }
    if !related.is_empty() {
        set(&mut ecs, "related.ip", related);
    }
    if !vpcflow.is_empty() {
        set(&mut ecs, "aws.vpcflow", Value::Object(vpcflow));
    }
    Ok((ecs, start))
}

fn put(map: &mut Doc, key: &str, value: impl Into<Value>) {
    map.insert(key.to_owned(), value.into());
}

fn text(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && *s != "-")
}

fn invalid(field: &'static str, reason: impl Into<String>) -> NormalizeError {
    NormalizeError::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// An unsigned integer field; a present but non-numeric value is an error for the record.
fn number(value: Option<&Value>, field: &'static str) -> Result<Option<u64>, NormalizeError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(field, format!("`{n}` is not a non-negative integer"))),
        Some(Value::String(s)) if s.is_empty() || s == "-" => Ok(None),
        Some(Value::String(s)) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| invalid(field, format!("`{s}` is not a non-negative integer"))),
        Some(other) => Err(invalid(field, format!("`{other}` is not an integer"))),
    }
}

fn port(value: Option<&Value>, field: &'static str) -> Result<Option<u16>, NormalizeError> {
    match number(value, field) {
        Ok(Some(n)) => u16::try_from(n)
            .map(Some)
            .map_err(|_| invalid(field, format!("port {n} is out of range"))),
        Ok(None) => Ok(None),
        Err(_) => Err(invalid(
            field,
            format!(
                "`{}` is not a port number",
                value.map(ToString::to_string).unwrap_or_default()
            ),
        )),
    }
}

fn ip<'a>(
    value: Option<&'a Value>,
    field: &'static str,
) -> Result<Option<&'a str>, NormalizeError> {
    match text(value) {
        None => Ok(None),
        Some(s) if s.parse::<IpAddr>().is_ok() => Ok(Some(s)),
        Some(s) => Err(invalid(field, format!("`{s}` is not an IP address"))),
    }
}

fn epoch(
    value: Option<&Value>,
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

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Adds the ECS fields to the record: objects present on both sides are merged key by key.
fn merge(doc: &mut Doc, ecs: Doc) {
    for (key, value) in ecs {
        match (doc.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(new)) => existing.extend(new),
            (_, value) => {
                doc.insert(key, value);
            }
        }
    }
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

/// Names of the TCP flags VPC Flow Logs reports (bitwise OR over the aggregation window).
fn tcp_flag_names(flags: u64) -> Vec<&'static str> {
    [
        (0x01, "fin"),
        (0x02, "syn"),
        (0x04, "rst"),
        (0x08, "psh"),
        (0x10, "ack"),
        (0x20, "urg"),
    ]
    .into_iter()
    .filter(|(bit, _)| flags & bit != 0)
    .map(|(_, name)| name)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::get;
    use serde_json::json;

    fn ctx() -> Context<'static> {
        Context {
            s3_key: "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/x.log.gz",
            key_account: Some("111122223333"),
            key_region: Some("us-east-1"),
            ingested: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
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
        assert_eq!(get(&d, "event.action"), Some(&json!("allowed")));
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
        assert_eq!(n.timestamp, DateTime::from_timestamp(1_714_521_600, 0));
        assert_eq!(n.id, None);
    }

    #[test]
    fn reject_is_denied_failure() {
        let n = one(record(
            V2,
            "2 111122223333 eni-0123456789abcdef0 203.0.113.5 192.0.2.10 55000 22 6 1 40 1714521600 1714521660 REJECT OK",
        ));
        let d = Value::Object(n.doc);
        assert_eq!(get(&d, "event.action"), Some(&json!("denied")));
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
        assert_eq!(get(&d, "network.direction"), Some(&json!("outbound")));
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
    fn ingress_is_inbound_and_ipv6_is_detected() {
        let header = "version srcaddr dstaddr srcport dstport protocol start end action log-status flow-direction";
        let line = "5 2001:db8::1 2001:db8::2 546 547 17 1714521600 1714521601 ACCEPT OK ingress";
        let d = Value::Object(one(record(header, line)).doc);
        assert_eq!(get(&d, "network.direction"), Some(&json!("inbound")));
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
        assert_eq!(get(&d, "network.direction"), Some(&json!("inbound")));
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
    fn default_line_to_record() {
        let rec = record_from_default_line(
            "2 111122223333 eni-0a1b 192.0.2.1 198.51.100.2 443 49152 6 3 180 1714521600 1714521660 ACCEPT OK",
        )
        .expect("default line");
        assert_eq!(rec["srcaddr"], json!("192.0.2.1"));
        assert_eq!(rec["log-status"], json!("OK"));
        let nodata = record_from_default_line(
            "2 111122223333 eni-0a1b - - - - - - - 1714521600 1714521660 - NODATA",
        )
        .expect("nodata line");
        assert_eq!(nodata.get("srcaddr"), None);
        assert_eq!(nodata["log-status"], json!("NODATA"));
        assert_eq!(record_from_default_line("2 111122223333 eni-0a1b"), None);
        assert_eq!(record_from_default_line("hello world"), None);
        assert_eq!(
            record_from_default_line(
                "x 111122223333 eni-0a1b - - - - - - - 1714521600 1714521660 - NODATA"
            ),
            None
        );
        assert_eq!(
            record_from_default_line(
                "2 111122223333 eni-0a1b - - - - - - - 1714521600 1714521660 - NODATA extra"
            ),
            None
        );
    }
}
