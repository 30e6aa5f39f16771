//! Amazon GuardDuty findings as GuardDuty itself emits them: an EventBridge event with
//! `detail-type` "GuardDuty Finding" (written by the collector under
//! `AWSLogs/<account>/GuardDuty/<region>/...`) or a bare finding (GuardDuty's S3 export).
//!
//! `event.severity` is GuardDuty's severity (1.0 to 10.0) times ten, rounded: the result falls
//! in the same ranges as Security Hub's normalized score (LOW 1-39, MEDIUM 40-69, HIGH 70-89,
//! CRITICAL 90-100), so one query works across both indices. The exact value is kept in
//! `aws.guardduty.severity.code` and GuardDuty's label in `aws.guardduty.severity.label`.
//!
//! The action mapping ([`action_fields`]) also serves Security Hub, whose ASFF `Action` object is
//! the same structure with PascalCase names.

use super::{Context, NormalizeError, Normalized};
use crate::ecs::{Doc, add_related, get, get_str, set, set_opt};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::net::IpAddr;

/// Normalizes one GuardDuty finding event (or bare finding) into one document.
pub fn normalize(
    record: Value,
    _ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    let Value::Object(mut map) = record else {
        return Err(NormalizeError::NotAnObject);
    };
    let mut eventbridge_id = None;
    if map.contains_key("detail-type") {
        let detail_type = map.get("detail-type").and_then(Value::as_str).unwrap_or("");
        if detail_type != "GuardDuty Finding" {
            return Err(NormalizeError::InvalidField {
                field: "detail-type",
                reason: format!("`{detail_type}` events are not GuardDuty findings"),
            });
        }
        eventbridge_id = map.get("id").and_then(Value::as_str).map(str::to_owned);
        map = match map.remove("detail") {
            Some(Value::Object(detail)) => detail,
            _ => return Err(NormalizeError::MissingField("detail")),
        };
    }
    let finding = Value::Object(map);
    let Some(id) = get_str(&finding, "id") else {
        return Err(NormalizeError::MissingField("id"));
    };
    let Some(finding_type) = get_str(&finding, "type") else {
        return Err(NormalizeError::MissingField("type"));
    };
    let updated = updated_at(&finding)?;
    let doc_id = match get_str(&finding, "updatedAt") {
        Some(updated) => finding_doc_id(id, updated),
        None => id.to_owned(),
    };

    let mut ecs = Doc::new();
    set(&mut ecs, "event.module", "aws");
    set(&mut ecs, "event.dataset", "aws.guardduty");
    set(&mut ecs, "event.kind", "alert");
    set(&mut ecs, "event.id", id);
    set(&mut ecs, "rule.name", finding_type);
    set(&mut ecs, "rule.id", finding_type);
    if let Some((purpose, _)) = finding_type.split_once(':') {
        set(&mut ecs, "rule.category", purpose);
    }
    set_opt(&mut ecs, "rule.description", get_str(&finding, "title"));
    set_opt(&mut ecs, "message", get_str(&finding, "description"));
    set_opt(&mut ecs, "cloud.account.id", get_str(&finding, "accountId"));
    set_opt(&mut ecs, "cloud.region", get_str(&finding, "region"));
    set(&mut ecs, "observer.vendor", "AWS");
    set(&mut ecs, "observer.product", "GuardDuty");
    for (field, path) in [
        ("event.created", "createdAt"),
        ("event.start", "service.eventFirstSeen"),
        ("event.end", "service.eventLastSeen"),
    ] {
        if let Some(t) = get_str(&finding, path).filter(|t| DateTime::parse_from_rfc3339(t).is_ok())
        {
            set(&mut ecs, field, t);
        }
    }
    set_opt(&mut ecs, "aws.guardduty.eventbridge_id", eventbridge_id);
    if let Some(archived) = get(&finding, "service.archived").and_then(Value::as_bool) {
        set(&mut ecs, "aws.guardduty.archived", archived);
    }
    if let Some(count) = get(&finding, "service.count").and_then(Value::as_u64) {
        set(&mut ecs, "aws.guardduty.count", count);
    }

    match get(&finding, "severity").and_then(Value::as_f64) {
        Some(severity) if (0.0..=10.0).contains(&severity) => {
            set(&mut ecs, "event.severity", (severity * 10.0).round() as i64);
            set(&mut ecs, "aws.guardduty.severity.code", severity);
            set(
                &mut ecs,
                "aws.guardduty.severity.label",
                severity_label(severity),
            );
        }
        Some(severity) => {
            return Err(NormalizeError::InvalidField {
                field: "severity",
                reason: format!("{severity} is outside GuardDuty's range 0 to 10"),
            });
        }
        None => {}
    }

    let mut categories = vec!["intrusion_detection"];
    resource_fields(&finding, &mut ecs);
    let local_ip = get(&finding, "resource.instanceDetails.networkInterfaces")
        .and_then(Value::as_array)
        .and_then(|nics| nics.first())
        .and_then(|nic| get_str(nic, "privateIpAddress"));
    if let Some(action) = get(&finding, "service.action") {
        categories.extend(action_fields(action, local_ip, &mut ecs));
    }
    set(&mut ecs, "event.category", categories);
    set(&mut ecs, "event.type", vec!["info"]);

    let Value::Object(mut doc) = finding else {
        return Err(NormalizeError::NotAnObject);
    };
    // GuardDuty's own top-level names (`service`, `resource`, `severity`, ...) are kept; the
    // ECS objects added here are others, except `service`, which ECS never gets from us.
    doc.extend(ecs);
    out.push(Normalized::new(doc, updated).with_id(doc_id));
    Ok(())
}

/// GuardDuty's label for a severity value.
pub fn severity_label(severity: f64) -> &'static str {
    if severity >= 9.0 {
        "Critical"
    } else if severity >= 7.0 {
        "High"
    } else if severity >= 4.0 {
        "Medium"
    } else {
        "Low"
    }
}

/// `_id` of one version of a finding: its id plus its update time. Kept under OpenSearch's
/// 512-byte limit by hashing the rare ids that would exceed it.
pub fn finding_doc_id(id: &str, updated: &str) -> String {
    let joined = format!("{id}_{updated}");
    if joined.len() <= 512 {
        joined
    } else {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(joined.as_bytes()))
    }
}

fn updated_at(finding: &Value) -> Result<Option<DateTime<Utc>>, NormalizeError> {
    match get_str(finding, "updatedAt") {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| NormalizeError::InvalidField {
                field: "updatedAt",
                reason: format!("`{s}` is not an RFC 3339 time ({e})"),
            }),
    }
}

fn resource_fields(finding: &Value, ecs: &mut Doc) {
    set_opt(
        ecs,
        "aws.guardduty.resource_type",
        get_str(finding, "resource.resourceType"),
    );
    set_opt(
        ecs,
        "cloud.instance.id",
        get_str(finding, "resource.instanceDetails.instanceId"),
    );
    if let Some(user) = get_str(finding, "resource.accessKeyDetails.userName") {
        set(ecs, "user.name", user);
        add_related(ecs, "user", user);
    }
    set_opt(
        ecs,
        "user.id",
        get_str(finding, "resource.accessKeyDetails.principalId"),
    );
    if let Some(Value::Array(nics)) = get(finding, "resource.instanceDetails.networkInterfaces") {
        for nic in nics {
            for field in ["privateIpAddress", "publicIp"] {
                if let Some(ip) = get_str(nic, field) {
                    add_related(ecs, "ip", ip);
                }
            }
        }
    }
}

/// Looks up a camelCase field, or its PascalCase form (ASFF spells GuardDuty's names that way).
fn pick<'a>(value: &'a Value, camel: &str) -> Option<&'a Value> {
    let map = value.as_object()?;
    if let Some(v) = map.get(camel) {
        return Some(v);
    }
    let mut chars = camel.chars();
    let first = chars.next()?;
    let pascal: String = first.to_uppercase().chain(chars).collect();
    map.get(&pascal)
}

fn pick_path<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, part| pick(v, part))
}

fn pick_str<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    pick_path(value, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn pick_port(value: &Value, path: &[&str]) -> Option<u16> {
    match pick_path(value, path)? {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Maps a GuardDuty `service.action` (or ASFF `Action`) to ECS: the remote side of the action
/// (with its geo and AS details), the local side when known, ports, transport, DNS question and
/// the API call. Returns the extra `event.category` values the action implies.
pub fn action_fields(action: &Value, local_ip: Option<&str>, ecs: &mut Doc) -> Vec<&'static str> {
    let mut categories = Vec::new();
    if let Some(kind) = pick_str(action, &["actionType"]) {
        set(ecs, "event.action", kind);
    }
    if let Some(conn) = pick(action, "networkConnectionAction") {
        categories.push("network");
        let outbound = pick_str(conn, &["connectionDirection"])
            .is_some_and(|d| d.eq_ignore_ascii_case("OUTBOUND"));
        let (remote, local) = if outbound {
            ("destination", "source")
        } else {
            ("source", "destination")
        };
        set(
            ecs,
            "network.direction",
            if outbound { "outbound" } else { "inbound" },
        );
        if let Some(details) = pick(conn, "remoteIpDetails") {
            remote_ip(details, remote, ecs);
        }
        if let Some(port) = pick_port(conn, &["remotePortDetails", "port"]) {
            set(ecs, &format!("{remote}.port"), port);
        }
        let local_addr = pick_str(conn, &["localIpDetails", "ipAddressV4"])
            .or_else(|| pick_str(conn, &["localIpDetails", "ipAddressV6"]))
            .or(local_ip);
        if let Some(ip) = local_addr.filter(|ip| ip.parse::<IpAddr>().is_ok()) {
            set(ecs, &format!("{local}.ip"), ip);
            add_related(ecs, "ip", ip);
        }
        if let Some(port) = pick_port(conn, &["localPortDetails", "port"]) {
            set(ecs, &format!("{local}.port"), port);
        }
        if let Some(proto) = pick_str(conn, &["protocol"]) {
            set(ecs, "network.transport", proto.to_ascii_lowercase());
        }
        blocked(conn, ecs);
    }
    if let Some(call) = pick(action, "awsApiCallAction") {
        categories.push("api");
        if let Some(details) = pick(call, "remoteIpDetails") {
            remote_ip(details, "source", ecs);
        }
        set_opt(ecs, "aws.guardduty.api.name", pick_str(call, &["api"]));
        set_opt(
            ecs,
            "aws.guardduty.api.service_name",
            pick_str(call, &["serviceName"]),
        );
        set_opt(
            ecs,
            "aws.guardduty.api.caller_type",
            pick_str(call, &["callerType"]),
        );
        if let Some(code) = pick_str(call, &["errorCode"]) {
            set(ecs, "error.code", code);
            set(ecs, "event.outcome", "failure");
        }
        set_opt(
            ecs,
            "user_agent.original",
            pick_str(call, &["userAgent", "fullUserAgent"]),
        );
        set_opt(
            ecs,
            "aws.guardduty.api.remote_account_id",
            pick_str(call, &["remoteAccountDetails", "accountId"]),
        );
    }
    if let Some(probe) = pick(action, "portProbeAction") {
        categories.push("network");
        set(ecs, "network.direction", "inbound");
        let details = pick(probe, "portProbeDetails")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut ports = Vec::new();
        for (i, detail) in details.iter().enumerate() {
            if let Some(remote) = pick(detail, "remoteIpDetails") {
                if i == 0 {
                    remote_ip(remote, "source", ecs);
                } else if let Some(ip) = remote_address(remote) {
                    add_related(ecs, "ip", ip);
                }
            }
            if let Some(port) = pick_port(detail, &["localPortDetails", "port"])
                && !ports.contains(&port)
            {
                ports.push(port);
            }
        }
        if let Some(first) = ports.first() {
            set(ecs, "destination.port", *first);
        }
        if ports.len() > 1 {
            set(ecs, "aws.guardduty.probed_ports", ports);
        }
        let local = details
            .first()
            .and_then(|d| pick_str(d, &["localIpDetails", "ipAddressV4"]))
            .or(local_ip);
        if let Some(ip) = local.filter(|ip| ip.parse::<IpAddr>().is_ok()) {
            set(ecs, "destination.ip", ip);
            add_related(ecs, "ip", ip);
        }
        blocked(probe, ecs);
    }
    if let Some(dns) = pick(action, "dnsRequestAction") {
        categories.push("network");
        set(ecs, "network.protocol", "dns");
        set(ecs, "network.direction", "outbound");
        set_opt(ecs, "dns.question.name", pick_str(dns, &["domain"]));
        set_opt(
            ecs,
            "dns.question.registered_domain",
            pick_str(dns, &["domainWithSuffix"]),
        );
        if let Some(proto) = pick_str(dns, &["protocol"]) {
            set(ecs, "network.transport", proto.to_ascii_lowercase());
        }
        if let Some(ip) = local_ip.filter(|ip| ip.parse::<IpAddr>().is_ok()) {
            set(ecs, "source.ip", ip);
            add_related(ecs, "ip", ip);
        }
        blocked(dns, ecs);
    }
    if let Some(k8s) = pick(action, "kubernetesApiCallAction") {
        categories.push("api");
        if let Some(details) = pick(k8s, "remoteIpDetails") {
            remote_ip(details, "source", ecs);
        } else if let Some(ip) = pick_str(k8s, &["sourceIps"]) {
            set(ecs, "source.ip", ip);
        }
        set_opt(ecs, "url.path", pick_str(k8s, &["requestUri"]));
        set_opt(ecs, "http.request.method", pick_str(k8s, &["verb"]));
        set_opt(ecs, "user_agent.original", pick_str(k8s, &["userAgent"]));
    }
    categories.sort_unstable();
    categories.dedup();
    categories
}

fn blocked(action: &Value, ecs: &mut Doc) {
    if let Some(blocked) = pick(action, "blocked").and_then(Value::as_bool) {
        set(ecs, "aws.guardduty.blocked", blocked);
        if blocked {
            set(ecs, "event.outcome", "failure");
        }
    }
}

fn remote_address(details: &Value) -> Option<&str> {
    pick_str(details, &["ipAddressV4"])
        .or_else(|| pick_str(details, &["ipAddressV6"]))
        .filter(|ip| ip.parse::<IpAddr>().is_ok())
}

/// The remote party's address, AS and location under `source.*` or `destination.*`.
fn remote_ip(details: &Value, side: &str, ecs: &mut Doc) {
    let Some(ip) = remote_address(details) else {
        return;
    };
    set(ecs, &format!("{side}.ip"), ip);
    set(ecs, &format!("{side}.address"), ip);
    add_related(ecs, "ip", ip);
    match pick_path(details, &["organization", "asn"]) {
        Some(Value::Number(n)) => {
            if let Some(n) = n.as_u64() {
                set(ecs, &format!("{side}.as.number"), n);
            }
        }
        Some(Value::String(s)) => {
            if let Ok(n) = s.parse::<u64>() {
                set(ecs, &format!("{side}.as.number"), n);
            }
        }
        _ => {}
    }
    set_opt(
        ecs,
        &format!("{side}.as.organization.name"),
        pick_str(details, &["organization", "asnOrg"]),
    );
    set_opt(
        ecs,
        &format!("{side}.geo.country_name"),
        pick_str(details, &["country", "countryName"]),
    );
    set_opt(
        ecs,
        &format!("{side}.geo.country_iso_code"),
        pick_str(details, &["country", "countryCode"]),
    );
    set_opt(
        ecs,
        &format!("{side}.geo.city_name"),
        pick_str(details, &["city", "cityName"]),
    );
    let lat = pick_path(details, &["geoLocation", "lat"]).and_then(Value::as_f64);
    let lon = pick_path(details, &["geoLocation", "lon"]).and_then(Value::as_f64);
    if let (Some(lat), Some(lon)) = (lat, lon) {
        set(
            ecs,
            &format!("{side}.geo.location"),
            json!({"lat": lat, "lon": lon}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            s3_key: "AWSLogs/111122223333/GuardDuty/us-east-1/2024/05/01/00/e.json.gz",
            key_account: Some("111122223333"),
            key_region: Some("us-east-1"),
            ingested: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            reference: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            key_time: None,
        }
    }

    fn finding(action: Value) -> Value {
        json!({
            "schemaVersion": "2.0",
            "accountId": "111122223333",
            "region": "us-east-1",
            "partition": "aws",
            "id": "a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7",
            "arn": "arn:aws:guardduty:us-east-1:111122223333:detector/d1/finding/a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7",
            "type": "UnauthorizedAccess:EC2/SSHBruteForce",
            "resource": {
                "resourceType": "Instance",
                "instanceDetails": {
                    "instanceId": "i-0a1b2c3d4e5f60718",
                    "networkInterfaces": [{"privateIpAddress": "10.0.0.12", "publicIp": "198.51.100.12"}]
                }
            },
            "service": {
                "serviceName": "guardduty",
                "detectorId": "d1",
                "action": action,
                "archived": false,
                "count": 4,
                "eventFirstSeen": "2024-05-01T00:00:00.000Z",
                "eventLastSeen": "2024-05-01T00:10:00.000Z"
            },
            "severity": 5,
            "createdAt": "2024-05-01T00:00:05.000Z",
            "updatedAt": "2024-05-01T00:10:05.000Z",
            "title": "203.0.113.50 is performing SSH brute force attacks against i-0a1b2c3d4e5f60718.",
            "description": "203.0.113.50 is performing SSH brute force attacks against i-0a1b2c3d4e5f60718. Brute force attacks are used to gain unauthorized access to your instance by guessing the SSH password."
        })
    }

    fn remote(ip: &str) -> Value {
        json!({
            "ipAddressV4": ip,
            "organization": {"asn": "64500", "asnOrg": "Example Org", "isp": "Example ISP", "org": "Example Org"},
            "country": {"countryName": "Japan"},
            "city": {"cityName": "Tokyo"},
            "geoLocation": {"lat": 35.6, "lon": 139.7}
        })
    }

    fn one(rec: Value) -> Normalized {
        let mut out = Vec::new();
        normalize(rec, &ctx(), &mut out).expect("finding normalizes");
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    fn envelope(detail: Value) -> Value {
        json!({
            "version": "0",
            "id": "c8c4daa7-a20c-2f03-0070-b7393dd542ad",
            "detail-type": "GuardDuty Finding",
            "source": "aws.guardduty",
            "account": "111122223333",
            "time": "2024-05-01T00:10:06Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail
        })
    }

    #[test]
    fn inbound_network_connection_in_an_eventbridge_event() {
        let action = json!({
            "actionType": "NETWORK_CONNECTION",
            "networkConnectionAction": {
                "connectionDirection": "INBOUND",
                "remoteIpDetails": remote("203.0.113.50"),
                "remotePortDetails": {"port": 40522, "portName": "Unknown"},
                "localPortDetails": {"port": 22, "portName": "SSH"},
                "protocol": "TCP",
                "blocked": false
            }
        });
        let n = one(envelope(finding(action)));
        assert_eq!(
            n.id.as_deref(),
            Some("a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7_2024-05-01T00:10:05.000Z")
        );
        assert_eq!(n.timestamp, DateTime::from_timestamp(1_714_522_205, 0));
        let d = Value::Object(n.doc);
        assert_eq!(get(&d, "event.kind"), Some(&json!("alert")));
        assert_eq!(
            get(&d, "event.category"),
            Some(&json!(["intrusion_detection", "network"]))
        );
        assert_eq!(get(&d, "event.action"), Some(&json!("NETWORK_CONNECTION")));
        assert_eq!(get(&d, "event.severity"), Some(&json!(50)));
        assert_eq!(
            get(&d, "aws.guardduty.severity.label"),
            Some(&json!("Medium"))
        );
        assert_eq!(get(&d, "aws.guardduty.severity.code"), Some(&json!(5.0)));
        assert_eq!(
            get(&d, "rule.name"),
            Some(&json!("UnauthorizedAccess:EC2/SSHBruteForce"))
        );
        assert_eq!(get(&d, "rule.category"), Some(&json!("UnauthorizedAccess")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("203.0.113.50")));
        assert_eq!(get(&d, "source.port"), Some(&json!(40522)));
        assert_eq!(get(&d, "source.as.number"), Some(&json!(64500)));
        assert_eq!(get(&d, "source.geo.city_name"), Some(&json!("Tokyo")));
        assert_eq!(
            get(&d, "source.geo.location"),
            Some(&json!({"lat": 35.6, "lon": 139.7}))
        );
        assert_eq!(get(&d, "destination.ip"), Some(&json!("10.0.0.12")));
        assert_eq!(get(&d, "destination.port"), Some(&json!(22)));
        assert_eq!(get(&d, "network.transport"), Some(&json!("tcp")));
        assert_eq!(get(&d, "network.direction"), Some(&json!("inbound")));
        assert_eq!(
            get(&d, "cloud.instance.id"),
            Some(&json!("i-0a1b2c3d4e5f60718"))
        );
        assert_eq!(get(&d, "cloud.account.id"), Some(&json!("111122223333")));
        assert_eq!(
            get(&d, "event.start"),
            Some(&json!("2024-05-01T00:00:00.000Z"))
        );
        assert_eq!(
            get(&d, "event.created"),
            Some(&json!("2024-05-01T00:00:05.000Z"))
        );
        assert_eq!(get(&d, "aws.guardduty.count"), Some(&json!(4)));
        assert_eq!(
            get(&d, "aws.guardduty.eventbridge_id"),
            Some(&json!("c8c4daa7-a20c-2f03-0070-b7393dd542ad"))
        );
        assert_eq!(
            get(&d, "related.ip"),
            Some(&json!(["10.0.0.12", "198.51.100.12", "203.0.113.50"]))
        );
        // The finding's own fields stay; the envelope does not.
        assert_eq!(get(&d, "service.detectorId"), Some(&json!("d1")));
        assert_eq!(get(&d, "detail-type"), None);
    }

    #[test]
    fn outbound_connection_swaps_sides() {
        let action = json!({
            "actionType": "NETWORK_CONNECTION",
            "networkConnectionAction": {
                "connectionDirection": "OUTBOUND",
                "remoteIpDetails": remote("203.0.113.77"),
                "remotePortDetails": {"port": 6667},
                "localPortDetails": {"port": 50000},
                "localIpDetails": {"ipAddressV4": "10.0.0.12"},
                "protocol": "TCP",
                "blocked": true
            }
        });
        let d = Value::Object(one(finding(action)).doc);
        assert_eq!(get(&d, "destination.ip"), Some(&json!("203.0.113.77")));
        assert_eq!(get(&d, "destination.port"), Some(&json!(6667)));
        assert_eq!(get(&d, "source.ip"), Some(&json!("10.0.0.12")));
        assert_eq!(get(&d, "source.port"), Some(&json!(50000)));
        assert_eq!(get(&d, "network.direction"), Some(&json!("outbound")));
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(get(&d, "aws.guardduty.blocked"), Some(&json!(true)));
    }

    #[test]
    fn aws_api_call() {
        let mut f = finding(json!({
            "actionType": "AWS_API_CALL",
            "awsApiCallAction": {
                "api": "GetCallerIdentity",
                "serviceName": "sts.amazonaws.com",
                "callerType": "Remote IP",
                "remoteIpDetails": remote("192.0.2.200"),
                "errorCode": "AccessDenied",
                "userAgent": {"fullUserAgent": "aws-cli/2.15.0", "userAgentCategory": "AWS CLI"}
            }
        }));
        f["type"] = json!("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS");
        f["severity"] = json!(8.9);
        f["resource"] = json!({
            "resourceType": "AccessKey",
            "accessKeyDetails": {"accessKeyId": "ASIAEXAMPLE", "principalId": "AROAEXAMPLE:i-0a1b", "userName": "web-role", "userType": "AssumedRole"}
        });
        let d = Value::Object(one(f).doc);
        assert_eq!(
            get(&d, "event.category"),
            Some(&json!(["intrusion_detection", "api"]))
        );
        assert_eq!(get(&d, "source.ip"), Some(&json!("192.0.2.200")));
        assert_eq!(get(&d, "user.name"), Some(&json!("web-role")));
        assert_eq!(get(&d, "related.user"), Some(&json!(["web-role"])));
        assert_eq!(
            get(&d, "aws.guardduty.api.name"),
            Some(&json!("GetCallerIdentity"))
        );
        assert_eq!(get(&d, "error.code"), Some(&json!("AccessDenied")));
        assert_eq!(
            get(&d, "user_agent.original"),
            Some(&json!("aws-cli/2.15.0"))
        );
        assert_eq!(get(&d, "event.severity"), Some(&json!(89)));
        assert_eq!(
            get(&d, "aws.guardduty.severity.label"),
            Some(&json!("High"))
        );
        assert_eq!(get(&d, "cloud.instance.id"), None);
    }

    #[test]
    fn port_probe_with_several_probes() {
        let d = Value::Object(
            one(finding(json!({
                "actionType": "PORT_PROBE",
                "portProbeAction": {
                    "blocked": false,
                    "portProbeDetails": [
                        {"localPortDetails": {"port": 3389}, "remoteIpDetails": remote("203.0.113.1")},
                        {"localPortDetails": {"port": 22}, "remoteIpDetails": remote("203.0.113.2")},
                        {"localPortDetails": {"port": 3389}, "remoteIpDetails": remote("203.0.113.1")}
                    ]
                }
            })))
            .doc,
        );
        assert_eq!(get(&d, "source.ip"), Some(&json!("203.0.113.1")));
        assert_eq!(get(&d, "destination.port"), Some(&json!(3389)));
        assert_eq!(get(&d, "destination.ip"), Some(&json!("10.0.0.12")));
        assert_eq!(
            get(&d, "aws.guardduty.probed_ports"),
            Some(&json!([3389, 22]))
        );
        let related = get(&d, "related.ip")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        assert!(related.contains(&json!("203.0.113.2")), "{related:?}");
    }

    #[test]
    fn dns_request() {
        let mut f = finding(json!({
            "actionType": "DNS_REQUEST",
            "dnsRequestAction": {"domain": "pool.example.net", "protocol": "UDP", "blocked": false, "domainWithSuffix": "example.net"}
        }));
        f["severity"] = json!(2);
        let d = Value::Object(one(f).doc);
        assert_eq!(
            get(&d, "dns.question.name"),
            Some(&json!("pool.example.net"))
        );
        assert_eq!(
            get(&d, "dns.question.registered_domain"),
            Some(&json!("example.net"))
        );
        assert_eq!(get(&d, "source.ip"), Some(&json!("10.0.0.12")));
        assert_eq!(get(&d, "network.transport"), Some(&json!("udp")));
        assert_eq!(get(&d, "event.severity"), Some(&json!(20)));
        assert_eq!(get(&d, "aws.guardduty.severity.label"), Some(&json!("Low")));
    }

    #[test]
    fn pascal_case_action_from_security_hub() {
        let mut ecs = Doc::new();
        let categories = action_fields(
            &json!({
                "ActionType": "NETWORK_CONNECTION",
                "NetworkConnectionAction": {
                    "ConnectionDirection": "INBOUND",
                    "RemoteIpDetails": {"IpAddressV4": "203.0.113.50", "Country": {"CountryName": "Japan"}},
                    "LocalPortDetails": {"Port": 22},
                    "Protocol": "TCP"
                }
            }),
            None,
            &mut ecs,
        );
        assert_eq!(categories, vec!["network"]);
        let d = Value::Object(ecs);
        assert_eq!(get(&d, "source.ip"), Some(&json!("203.0.113.50")));
        assert_eq!(get(&d, "source.geo.country_name"), Some(&json!("Japan")));
        assert_eq!(get(&d, "destination.port"), Some(&json!(22)));
    }

    #[test]
    fn labels_and_ids() {
        assert_eq!(severity_label(1.0), "Low");
        assert_eq!(severity_label(3.9), "Low");
        assert_eq!(severity_label(4.0), "Medium");
        assert_eq!(severity_label(6.9), "Medium");
        assert_eq!(severity_label(7.0), "High");
        assert_eq!(severity_label(8.9), "High");
        assert_eq!(severity_label(9.0), "Critical");
        let long = "x".repeat(600);
        assert_eq!(finding_doc_id(&long, "2024").len(), 64);
        assert_eq!(finding_doc_id("abc", "2024"), "abc_2024");
    }

    #[test]
    fn bad_findings_are_errors() {
        let mut out = Vec::new();
        let mut f = finding(json!({}));
        f.as_object_mut().map(|m| m.remove("id"));
        assert_eq!(
            normalize(f, &ctx(), &mut out),
            Err(NormalizeError::MissingField("id"))
        );
        let mut f = finding(json!({}));
        f["updatedAt"] = json!("last tuesday");
        let err = normalize(f, &ctx(), &mut out).expect_err("bad time");
        assert!(err.to_string().contains("updatedAt"), "{err}");
        let mut f = finding(json!({}));
        f["severity"] = json!(42);
        let err = normalize(f, &ctx(), &mut out).expect_err("bad severity");
        assert!(err.to_string().contains("severity"), "{err}");
        let mut e = envelope(finding(json!({})));
        e["detail-type"] = json!("EC2 Instance State-change Notification");
        let err = normalize(e, &ctx(), &mut out).expect_err("not a finding event");
        assert!(err.to_string().contains("not GuardDuty findings"), "{err}");
        let mut e = envelope(json!(null));
        e["detail"] = json!("text");
        assert_eq!(
            normalize(e, &ctx(), &mut out),
            Err(NormalizeError::MissingField("detail"))
        );
        assert_eq!(
            normalize(json!(3), &ctx(), &mut out),
            Err(NormalizeError::NotAnObject)
        );
        assert!(out.is_empty());
    }
}
