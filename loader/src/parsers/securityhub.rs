//! AWS Security Hub findings (ASFF): EventBridge events "Security Hub Findings - Imported"
//! (one document per finding in `detail.findings`), bare findings, and "Custom Action" events.
//!
//! Custom Action events carry the same findings, sent again because someone chose a custom
//! action in the console. They are indexed as findings too, with `event.action` = the action's
//! name and its details under `aws.securityhub.custom_action`, because who asked for which
//! remediation of which finding is worth searching. Their `_id` adds the event's id to the
//! finding's id and update time: the imported version keeps its own document (so the finding
//! state is not overwritten or lost), and a redelivered custom action event is still stored once.
//! Dashboards counting findings filter them out with `NOT event.action:*`.
//!
//! `event.severity` is the normalized score 0-100 (derived from the label when only the label is
//! present), `aws.securityhub.severity_label` the label; `_id` is the finding `Id` plus
//! `UpdatedAt`, so each version of a finding is kept once. GuardDuty findings inside Security
//! Hub get their network details through the shared GuardDuty action mapping.

use super::guardduty::{action_fields, finding_doc_id};
use super::{Context, NormalizeError, Normalized};
use crate::ecs::{Doc, add_related, get, get_str, set, set_opt};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::net::IpAddr;

const IMPORTED: &str = "Security Hub Findings - Imported";
const CUSTOM_ACTION: &str = "Security Hub Findings - Custom Action";

/// The user action a Custom Action event reports.
struct CustomAction {
    name: Option<String>,
    description: Option<String>,
    arn: Option<String>,
    event_id: String,
}

/// Normalizes one Security Hub event or bare finding. Every valid finding of an event becomes a
/// document even when another finding of the same event is invalid; the first invalid finding
/// is then reported as the record's error.
pub fn normalize(
    record: Value,
    _ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    let Value::Object(mut map) = record else {
        return Err(NormalizeError::NotAnObject);
    };
    if map.contains_key("SchemaVersion") && map.contains_key("Id") && map.contains_key("ProductArn")
    {
        out.push(finding(Value::Object(map), None)?);
        return Ok(());
    }
    let detail_type = map
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let custom = if detail_type == CUSTOM_ACTION {
        let detail = map.get("detail");
        let text = |path: &str| detail.and_then(|d| get_str(d, path)).map(str::to_owned);
        let name = text("actionName");
        Some(CustomAction {
            event_id: map
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| name.clone())
                .unwrap_or_else(|| "custom-action".to_owned()),
            name,
            description: text("actionDescription"),
            arn: map
                .get("resources")
                .and_then(Value::as_array)
                .and_then(|r| r.first())
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    } else {
        None
    };
    let findings = match map.get_mut("detail").and_then(|d| d.get_mut("findings")) {
        Some(Value::Array(findings)) => std::mem::take(findings),
        _ if !detail_type.is_empty() && detail_type != IMPORTED && custom.is_none() => {
            return Err(NormalizeError::InvalidField {
                field: "detail-type",
                reason: format!("`{detail_type}` events carry no findings"),
            });
        }
        _ => return Err(NormalizeError::MissingField("detail.findings")),
    };
    let mut first_error = None;
    for (i, f) in findings.into_iter().enumerate() {
        match finding(f, custom.as_ref()) {
            Ok(doc) => out.push(doc),
            Err(e) => {
                first_error.get_or_insert(NormalizeError::InvalidField {
                    field: "detail.findings",
                    reason: format!("finding {i}: {e}"),
                });
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn finding(f: Value, custom: Option<&CustomAction>) -> Result<Normalized, NormalizeError> {
    if !f.is_object() {
        return Err(NormalizeError::NotAnObject);
    }
    let id = get_str(&f, "Id").ok_or(NormalizeError::MissingField("Id"))?;
    let updated_at = get_str(&f, "UpdatedAt").ok_or(NormalizeError::MissingField("UpdatedAt"))?;
    let updated = DateTime::parse_from_rfc3339(updated_at)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| NormalizeError::InvalidField {
            field: "UpdatedAt",
            reason: format!("`{updated_at}` is not an RFC 3339 time ({e})"),
        })?;
    let doc_id = match custom {
        Some(action) => finding_doc_id(
            &format!("{id}_{updated_at}"),
            &format!("custom-action/{}", action.event_id),
        ),
        None => finding_doc_id(id, updated_at),
    };

    let mut ecs = Doc::new();
    set(&mut ecs, "event.module", "aws");
    set(&mut ecs, "event.dataset", "aws.securityhub");
    set(&mut ecs, "event.kind", "alert");
    set(&mut ecs, "event.type", vec!["info"]);
    set(&mut ecs, "event.id", id);
    set_opt(&mut ecs, "message", get_str(&f, "Description"));
    for (field, path) in [
        ("event.created", "CreatedAt"),
        ("event.start", "FirstObservedAt"),
        ("event.end", "LastObservedAt"),
    ] {
        if let Some(t) = get_str(&f, path).filter(|t| DateTime::parse_from_rfc3339(t).is_ok()) {
            set(&mut ecs, field, t);
        }
    }

    let product = product(&f);
    set_opt(&mut ecs, "event.provider", product.provider);
    set_opt(&mut ecs, "observer.product", product.name.as_deref());
    set_opt(&mut ecs, "observer.vendor", product.company);
    set_opt(
        &mut ecs,
        "aws.securityhub.product_name",
        product.name.as_deref(),
    );

    rule_fields(&f, product.provider, &mut ecs);
    let label = severity(&f, &mut ecs);
    state_fields(&f, &mut ecs);
    resource_fields(&f, &mut ecs);

    let mut categories = categories(&f);
    if let Some(action) = get(&f, "Action") {
        categories.extend(action_fields(action, None, &mut ecs));
    }
    network_fields(&f, &mut ecs, &mut categories);
    guardduty_product_fields(&f, &mut ecs);
    if vulnerability_fields(&f, label, product.name.as_deref(), &mut ecs) {
        categories.push("vulnerability");
    }
    let mut unique = Vec::new();
    for c in categories {
        if !unique.contains(&c) {
            unique.push(c);
        }
    }
    set(&mut ecs, "event.category", unique);

    if let Some(action) = custom {
        set_opt(&mut ecs, "event.action", action.name.as_deref());
        set_opt(
            &mut ecs,
            "aws.securityhub.custom_action.name",
            action.name.as_deref(),
        );
        set_opt(
            &mut ecs,
            "aws.securityhub.custom_action.description",
            action.description.as_deref(),
        );
        set_opt(
            &mut ecs,
            "aws.securityhub.custom_action.arn",
            action.arn.as_deref(),
        );
    }

    let Value::Object(mut doc) = f else {
        return Err(NormalizeError::NotAnObject);
    };
    // ASFF names are PascalCase: they never collide with the lowercase ECS objects.
    doc.extend(ecs);
    Ok(Normalized::new(doc, Some(updated)).with_id(doc_id))
}

struct Product<'a> {
    provider: Option<&'a str>,
    name: Option<String>,
    company: Option<&'a str>,
}

/// The product that produced the finding, from `ProductName`, the `ProductFields` Security Hub
/// adds, or the product ARN (`arn:aws:securityhub:<region>::product/<company>/<product>`).
fn product(f: &Value) -> Product<'_> {
    let fields = f.get("ProductFields");
    let field = |key: &str| {
        fields
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let arn_parts = get_str(f, "ProductArn")
        .and_then(|arn| arn.split_once(":product/"))
        .map(|(_, rest)| rest.split('/').collect::<Vec<_>>())
        .unwrap_or_default();
    let company_from_arn = arn_parts.first().copied();
    let provider = arn_parts.get(1).copied();
    let name = get_str(f, "ProductName")
        .or_else(|| field("aws/securityhub/ProductName"))
        .map(str::to_owned)
        .or_else(|| provider.map(|p| display_name(p).to_owned()));
    let company = get_str(f, "CompanyName")
        .or_else(|| field("aws/securityhub/CompanyName"))
        .or(match company_from_arn {
            Some("aws") => Some("AWS"),
            other => other,
        });
    Product {
        provider,
        name,
        company,
    }
}

fn display_name(provider: &str) -> &str {
    match provider {
        "guardduty" => "GuardDuty",
        "inspector" => "Inspector",
        "macie" => "Macie",
        "access-analyzer" => "IAM Access Analyzer",
        "securityhub" => "Security Hub",
        "config" => "Config",
        "firewall-manager" => "Firewall Manager",
        "health" => "Health",
        "ssm-patch-manager" => "Systems Manager Patch Manager",
        "detective" => "Detective",
        other => other,
    }
}

/// `rule.*`: what the finding is an instance of, so findings can be grouped by it: the control
/// (Security Hub standards), the CVE (Inspector), the finding type (GuardDuty, Macie: the last
/// part of `Types`), the generator otherwise. The title names it.
fn rule_fields(f: &Value, provider: Option<&str>, ecs: &mut Doc) {
    let fields = f.get("ProductFields");
    let field = |key: &str| {
        fields
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let control = get_str(f, "Compliance.SecurityControlId")
        .or_else(|| field("ControlId"))
        .or_else(|| field("RuleId"));
    let vulnerability = || {
        f.get("Vulnerabilities")
            .and_then(Value::as_array)
            .and_then(|v| v.first())
            .and_then(|v| get_str(v, "Id"))
    };
    let finding_type = || {
        matches!(provider, Some("guardduty" | "macie"))
            .then(|| first_type(f))
            .flatten()
            .and_then(|t| t.rsplit('/').next())
            .filter(|t| !t.is_empty())
    };
    let id = control
        .or_else(vulnerability)
        .or_else(finding_type)
        .or_else(|| get_str(f, "GeneratorId"));
    set_opt(ecs, "rule.id", id);
    set_opt(ecs, "rule.name", get_str(f, "Title"));
    set_opt(
        ecs,
        "aws.securityhub.generator_id",
        get_str(f, "GeneratorId"),
    );
    let standard = field("StandardsArn")
        .or_else(|| field("StandardsGuideArn"))
        .or_else(|| {
            get(f, "Compliance.AssociatedStandards")
                .and_then(Value::as_array)
                .and_then(|s| s.first())
                .and_then(|s| get_str(s, "StandardsId"))
        });
    set_opt(ecs, "rule.ruleset", standard);
    set_opt(
        ecs,
        "rule.reference",
        get_str(f, "Remediation.Recommendation.Url"),
    );
    set_opt(ecs, "rule.category", first_type(f));
}

fn first_type(f: &Value) -> Option<&str> {
    f.get("Types")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
}

/// Security Hub's label for a normalized score, and the score a label stands for.
fn label_for(normalized: i64) -> &'static str {
    match normalized {
        i64::MIN..=0 => "INFORMATIONAL",
        1..=39 => "LOW",
        40..=69 => "MEDIUM",
        70..=89 => "HIGH",
        _ => "CRITICAL",
    }
}

fn normalized_for(label: &str) -> Option<i64> {
    Some(match label {
        "INFORMATIONAL" => 0,
        "LOW" => 1,
        "MEDIUM" => 40,
        "HIGH" => 70,
        "CRITICAL" => 90,
        _ => return None,
    })
}

/// Sets `event.severity` and the label; returns the label.
fn severity<'a>(f: &'a Value, ecs: &mut Doc) -> Option<&'a str> {
    let label = get_str(f, "Severity.Label");
    let normalized = get(f, "Severity.Normalized")
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|x| x.round() as i64)))
        .filter(|n| (0..=100).contains(n))
        .or_else(|| label.and_then(normalized_for));
    let label = label.or_else(|| normalized.map(label_for));
    set_opt(ecs, "event.severity", normalized);
    set_opt(ecs, "aws.securityhub.severity_label", label);
    label
}

fn state_fields(f: &Value, ecs: &mut Doc) {
    set_opt(
        ecs,
        "aws.securityhub.compliance_status",
        get_str(f, "Compliance.Status"),
    );
    set_opt(
        ecs,
        "aws.securityhub.workflow_status",
        get_str(f, "Workflow.Status").or_else(|| get_str(f, "WorkflowState")),
    );
    set_opt(
        ecs,
        "aws.securityhub.record_state",
        get_str(f, "RecordState"),
    );
}

fn resource_fields(f: &Value, ecs: &mut Doc) {
    let resources = f
        .get("Resources")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut ids = Vec::new();
    let mut types = Vec::new();
    let mut regions = Vec::new();
    for r in resources {
        for (list, field) in [
            (&mut ids, "Id"),
            (&mut types, "Type"),
            (&mut regions, "Region"),
        ] {
            if let Some(v) = get_str(r, field)
                && !list.contains(&v)
            {
                list.push(v);
            }
        }
        if get_str(r, "Type") == Some("AwsEc2Instance")
            && let Some(instance) = get_str(r, "Id").and_then(|id| id.rsplit('/').next())
        {
            set(ecs, "cloud.instance.id", instance);
        }
        // The instance's own addresses, so an IP search finds findings about it.
        for ip in r
            .get("Details")
            .and_then(|d| d.get("AwsEc2Instance"))
            .and_then(|i| i.get("IpV4Addresses"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|ip| ip.parse::<IpAddr>().is_ok())
        {
            add_related(ecs, "ip", ip);
        }
        let user = get_str(r, "Details.AwsIamAccessKey.PrincipalName")
            .or_else(|| get_str(r, "Details.AwsIamAccessKey.UserName"))
            .or_else(|| get_str(r, "Details.AwsIamUser.UserName"));
        if let Some(user) = user {
            set(ecs, "user.name", user);
            add_related(ecs, "user", user);
        }
    }
    let region = get_str(f, "Region").or(regions.first().copied());
    set_opt(ecs, "cloud.region", region);
    set_opt(ecs, "cloud.account.id", get_str(f, "AwsAccountId"));
    for (field, list) in [
        ("aws.securityhub.resource_ids", ids),
        ("aws.securityhub.resource_types", types),
        ("aws.securityhub.resource_regions", regions),
    ] {
        if !list.is_empty() {
            set(ecs, field, list);
        }
    }
}

/// `event.category` from the finding type namespaces (`Software and Configuration Checks/...`).
fn categories(f: &Value) -> Vec<&'static str> {
    let mut out = Vec::new();
    for t in f
        .get("Types")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let namespace = t.split('/').next().unwrap_or_default();
        let category = match namespace {
            "Software and Configuration Checks" if t.contains("/Vulnerabilities") => {
                "vulnerability"
            }
            "Software and Configuration Checks" => "configuration",
            "TTPs" | "Effects" | "Unusual Behaviors" => "intrusion_detection",
            "Sensitive Data Identifications" => "file",
            _ => continue,
        };
        if !out.contains(&category) {
            out.push(category);
        }
    }
    if out.is_empty() {
        out.push("intrusion_detection");
    }
    out
}

/// ASFF `Network`: the connection the finding is about.
fn network_fields(f: &Value, ecs: &mut Doc, categories: &mut Vec<&'static str>) {
    let Some(net) = f.get("Network") else {
        return;
    };
    categories.push("network");
    match get_str(net, "Direction") {
        Some("IN") => set(ecs, "network.direction", "inbound"),
        Some("OUT") => set(ecs, "network.direction", "outbound"),
        _ => {}
    }
    if let Some(proto) = get_str(net, "Protocol") {
        set(ecs, "network.transport", proto.to_ascii_lowercase());
    }
    for (side, prefix) in [("source", "Source"), ("destination", "Destination")] {
        let ip = get_str(net, &format!("{prefix}IpV4"))
            .or_else(|| get_str(net, &format!("{prefix}IpV6")))
            .filter(|ip| ip.parse::<IpAddr>().is_ok());
        if let Some(ip) = ip {
            set(ecs, &format!("{side}.ip"), ip);
            add_related(ecs, "ip", ip);
        }
        if let Some(port) = get(net, &format!("{prefix}Port"))
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
        {
            set(ecs, &format!("{side}.port"), port);
        }
        set_opt(
            ecs,
            &format!("{side}.domain"),
            get_str(net, &format!("{prefix}Domain")),
        );
    }
}

/// Older GuardDuty findings in Security Hub carry the remote address only in `ProductFields`.
fn guardduty_product_fields(f: &Value, ecs: &mut Doc) {
    if crate::ecs::get_in(ecs, "source.ip").is_some()
        || crate::ecs::get_in(ecs, "destination.ip").is_some()
    {
        return;
    }
    let Some(fields) = f.get("ProductFields").and_then(Value::as_object) else {
        return;
    };
    const PREFIX: &str = "aws/guardduty/service/action/";
    const REMOTE: [&str; 3] = [
        "networkConnectionAction/remoteIpDetails/ipAddressV4",
        "awsApiCallAction/remoteIpDetails/ipAddressV4",
        "portProbeAction/portProbeDetails.0_/remoteIpDetails/ipAddressV4",
    ];
    let remote = REMOTE.iter().find_map(|suffix| {
        fields
            .get(&format!("{PREFIX}{suffix}"))
            .and_then(Value::as_str)
            .filter(|ip| ip.parse::<IpAddr>().is_ok())
    });
    if let Some(ip) = remote {
        let outbound = fields
            .get(&format!(
                "{PREFIX}networkConnectionAction/connectionDirection"
            ))
            .and_then(Value::as_str)
            == Some("OUTBOUND");
        let side = if outbound { "destination" } else { "source" };
        set(ecs, &format!("{side}.ip"), ip);
        add_related(ecs, "ip", ip);
    }
}

/// `vulnerability.*` and `package.*` from ASFF `Vulnerabilities` (Inspector). Returns whether
/// the finding is about a vulnerability.
fn vulnerability_fields(
    f: &Value,
    label: Option<&str>,
    scanner: Option<&str>,
    ecs: &mut Doc,
) -> bool {
    let Some(Value::Array(vulns)) = f.get("Vulnerabilities") else {
        return false;
    };
    let ids: Vec<&str> = vulns.iter().filter_map(|v| get_str(v, "Id")).collect();
    let Some(first) = vulns.first() else {
        return false;
    };
    match ids.as_slice() {
        [] => {}
        [one] => set(ecs, "vulnerability.id", *one),
        many => set(ecs, "vulnerability.id", many.to_vec()),
    }
    if ids.iter().any(|id| id.starts_with("CVE-")) {
        set(ecs, "vulnerability.enumeration", "CVE");
    }
    set_opt(ecs, "vulnerability.description", get_str(f, "Description"));
    set_opt(ecs, "vulnerability.severity", label);
    set_opt(ecs, "vulnerability.scanner.vendor", scanner);
    if let Some(cvss) = first
        .get("Cvss")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
    {
        set(ecs, "vulnerability.classification", "CVSS");
        if let Some(score) = get(cvss, "BaseScore").and_then(Value::as_f64) {
            set(ecs, "vulnerability.score.base", score);
        }
        set_opt(ecs, "vulnerability.score.version", get_str(cvss, "Version"));
    }
    let reference = get_str(first, "Vendor.Url").or_else(|| {
        first
            .get("ReferenceUrls")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(Value::as_str)
    });
    set_opt(ecs, "vulnerability.reference", reference);
    if let Some(pkg) = first
        .get("VulnerablePackages")
        .and_then(Value::as_array)
        .and_then(|p| p.first())
    {
        set_opt(ecs, "package.name", get_str(pkg, "Name"));
        set_opt(ecs, "package.version", get_str(pkg, "Version"));
        set_opt(ecs, "package.fixed_version", get_str(pkg, "FixedInVersion"));
        set_opt(ecs, "package.architecture", get_str(pkg, "Architecture"));
    }
    set_opt(
        ecs,
        "aws.securityhub.fix_available",
        get_str(first, "FixAvailable"),
    );
    set_opt(
        ecs,
        "aws.securityhub.exploit_available",
        get_str(first, "ExploitAvailable"),
    );
    if let Some(epss) = get(first, "EpssScore").and_then(Value::as_f64) {
        set(ecs, "aws.securityhub.epss_score", epss);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context<'static> {
        Context {
            s3_key: "AWSLogs/111122223333/SecurityHub/us-east-1/2024/05/01/00/e.json.gz",
            key_account: Some("111122223333"),
            key_region: Some("us-east-1"),
            ingested: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            reference: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            key_time: None,
        }
    }

    fn control_finding() -> Value {
        json!({
            "SchemaVersion": "2018-10-08",
            "Id": "arn:aws:securityhub:us-east-1:111122223333:security-control/EC2.19/finding/0a1b2c3d",
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
            "ProductName": "Security Hub",
            "CompanyName": "AWS",
            "Region": "us-east-1",
            "GeneratorId": "security-control/EC2.19",
            "AwsAccountId": "111122223333",
            "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
            "FirstObservedAt": "2024-04-01T00:00:00.000Z",
            "LastObservedAt": "2024-05-01T00:00:00.000Z",
            "CreatedAt": "2024-04-01T00:00:00.000Z",
            "UpdatedAt": "2024-05-01T00:00:05.000Z",
            "Severity": {"Label": "CRITICAL", "Normalized": 90, "Original": "CRITICAL"},
            "Title": "Security groups should not allow unrestricted access to ports with high risk",
            "Description": "This control checks whether unrestricted incoming traffic is accessible to high-risk ports.",
            "Remediation": {"Recommendation": {"Text": "See the docs.", "Url": "https://docs.aws.amazon.com/console/securityhub/EC2.19/remediation"}},
            "ProductFields": {"aws/securityhub/ProductName": "Security Hub"},
            "Resources": [{
                "Type": "AwsEc2SecurityGroup",
                "Id": "arn:aws:ec2:us-east-1:111122223333:security-group/sg-0a1b2c3d",
                "Partition": "aws",
                "Region": "us-east-1"
            }],
            "Compliance": {
                "Status": "FAILED",
                "SecurityControlId": "EC2.19",
                "AssociatedStandards": [{"StandardsId": "standards/aws-foundational-security-best-practices/v/1.0.0"}]
            },
            "WorkflowState": "NEW",
            "Workflow": {"Status": "NEW"},
            "RecordState": "ACTIVE"
        })
    }

    fn guardduty_finding() -> Value {
        json!({
            "SchemaVersion": "2018-10-08",
            "Id": "arn:aws:guardduty:us-east-1:111122223333:detector/d1/finding/f1",
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            "GeneratorId": "arn:aws:guardduty:us-east-1:111122223333:detector/d1",
            "AwsAccountId": "111122223333",
            "Types": ["TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce"],
            "CreatedAt": "2024-05-01T00:00:00.000Z",
            "UpdatedAt": "2024-05-01T01:00:00.000Z",
            "Severity": {"Label": "LOW", "Normalized": 20, "Product": 2},
            "Title": "203.0.113.50 is performing SSH brute force attacks against i-0a1b2c3d4e5f60718.",
            "Description": "Brute force.",
            "ProductFields": {"aws/guardduty/service/action/networkConnectionAction/remoteIpDetails/ipAddressV4": "203.0.113.50"},
            "Resources": [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60718", "Region": "us-east-1",
                           "Details": {"AwsEc2Instance": {"IpV4Addresses": ["10.0.0.12", "not-an-ip"]}}}],
            "Action": {
                "ActionType": "NETWORK_CONNECTION",
                "NetworkConnectionAction": {
                    "ConnectionDirection": "INBOUND",
                    "RemoteIpDetails": {"IpAddressV4": "203.0.113.50"},
                    "LocalPortDetails": {"Port": 22},
                    "Protocol": "TCP"
                }
            },
            "Workflow": {"Status": "NEW"},
            "RecordState": "ACTIVE"
        })
    }

    fn envelope(detail_type: &str, findings: Vec<Value>) -> Value {
        json!({
            "version": "0",
            "id": "5f1e2d3c-aaaa-bbbb-cccc-0123456789ab",
            "detail-type": detail_type,
            "source": "aws.securityhub",
            "account": "111122223333",
            "time": "2024-05-01T01:00:01Z",
            "region": "us-east-1",
            "resources": ["arn:aws:securityhub:us-east-1:111122223333:action/custom/Escalate"],
            "detail": {"actionName": "Escalate", "actionDescription": "Page the on-call", "findings": findings}
        })
    }

    fn run(rec: Value) -> Vec<Normalized> {
        let mut out = Vec::new();
        normalize(rec, &ctx(), &mut out).expect("event normalizes");
        out
    }

    #[test]
    fn imported_event_gives_one_document_per_finding() {
        let out = run(envelope(
            IMPORTED,
            vec![control_finding(), guardduty_finding()],
        ));
        assert_eq!(out.len(), 2);
        let control = &out[0];
        assert_eq!(
            control.id.as_deref(),
            Some(
                "arn:aws:securityhub:us-east-1:111122223333:security-control/EC2.19/finding/0a1b2c3d_2024-05-01T00:00:05.000Z"
            )
        );
        assert_eq!(
            control.timestamp,
            DateTime::from_timestamp(1_714_521_605, 0)
        );
        let d = Value::Object(control.doc.clone());
        assert_eq!(get(&d, "event.kind"), Some(&json!("alert")));
        assert_eq!(get(&d, "event.category"), Some(&json!(["configuration"])));
        assert_eq!(get(&d, "event.severity"), Some(&json!(90)));
        assert_eq!(
            get(&d, "aws.securityhub.severity_label"),
            Some(&json!("CRITICAL"))
        );
        assert_eq!(get(&d, "rule.id"), Some(&json!("EC2.19")));
        assert_eq!(
            get(&d, "rule.ruleset"),
            Some(&json!(
                "standards/aws-foundational-security-best-practices/v/1.0.0"
            ))
        );
        assert_eq!(
            get(&d, "rule.name"),
            Some(&json!(
                "Security groups should not allow unrestricted access to ports with high risk"
            ))
        );
        assert_eq!(get(&d, "event.provider"), Some(&json!("securityhub")));
        assert_eq!(get(&d, "observer.product"), Some(&json!("Security Hub")));
        assert_eq!(get(&d, "observer.vendor"), Some(&json!("AWS")));
        assert_eq!(
            get(&d, "aws.securityhub.compliance_status"),
            Some(&json!("FAILED"))
        );
        assert_eq!(
            get(&d, "aws.securityhub.workflow_status"),
            Some(&json!("NEW"))
        );
        assert_eq!(
            get(&d, "aws.securityhub.record_state"),
            Some(&json!("ACTIVE"))
        );
        assert_eq!(
            get(&d, "aws.securityhub.resource_ids"),
            Some(&json!([
                "arn:aws:ec2:us-east-1:111122223333:security-group/sg-0a1b2c3d"
            ]))
        );
        assert_eq!(
            get(&d, "aws.securityhub.resource_types"),
            Some(&json!(["AwsEc2SecurityGroup"]))
        );
        assert_eq!(get(&d, "cloud.account.id"), Some(&json!("111122223333")));
        assert_eq!(get(&d, "cloud.region"), Some(&json!("us-east-1")));
        assert_eq!(
            get(&d, "event.created"),
            Some(&json!("2024-04-01T00:00:00.000Z"))
        );
        assert_eq!(
            get(&d, "event.end"),
            Some(&json!("2024-05-01T00:00:00.000Z"))
        );
        assert_eq!(
            get(&d, "message"),
            Some(&json!(
                "This control checks whether unrestricted incoming traffic is accessible to high-risk ports."
            ))
        );
        assert_eq!(get(&d, "event.action"), None);
        // The finding's own fields stay.
        assert_eq!(get(&d, "Compliance.Status"), Some(&json!("FAILED")));

        let d = Value::Object(out[1].doc.clone());
        assert_eq!(get(&d, "observer.product"), Some(&json!("GuardDuty")));
        assert_eq!(get(&d, "event.provider"), Some(&json!("guardduty")));
        assert_eq!(
            get(&d, "event.category"),
            Some(&json!(["intrusion_detection", "network"]))
        );
        assert_eq!(get(&d, "source.ip"), Some(&json!("203.0.113.50")));
        assert_eq!(get(&d, "destination.port"), Some(&json!(22)));
        assert_eq!(
            get(&d, "cloud.instance.id"),
            Some(&json!("i-0a1b2c3d4e5f60718"))
        );
        assert_eq!(get(&d, "cloud.region"), Some(&json!("us-east-1")));
        assert_eq!(
            get(&d, "rule.id"),
            Some(&json!("UnauthorizedAccess:EC2-SSHBruteForce"))
        );
        assert_eq!(get(&d, "event.severity"), Some(&json!(20)));
    }

    #[test]
    fn older_guardduty_findings_use_product_fields() {
        let mut f = guardduty_finding();
        f.as_object_mut().map(|m| m.remove("Action"));
        let d = Value::Object(run(f).remove(0).doc);
        assert_eq!(get(&d, "source.ip"), Some(&json!("203.0.113.50")));
        assert_eq!(
            get(&d, "related.ip"),
            Some(&json!(["10.0.0.12", "203.0.113.50"]))
        );
    }

    #[test]
    fn bare_finding_and_label_only_severity() {
        let mut f = control_finding();
        f["Severity"] = json!({"Label": "MEDIUM"});
        f.as_object_mut().map(|m| m.remove("Region"));
        let out = run(f);
        assert_eq!(out.len(), 1);
        let d = Value::Object(out[0].doc.clone());
        assert_eq!(get(&d, "event.severity"), Some(&json!(40)));
        assert_eq!(
            get(&d, "aws.securityhub.severity_label"),
            Some(&json!("MEDIUM"))
        );
        // Region falls back to the first resource's.
        assert_eq!(get(&d, "cloud.region"), Some(&json!("us-east-1")));
        let mut f = control_finding();
        f["Severity"] = json!({"Normalized": 55});
        let d = Value::Object(run(f).remove(0).doc);
        assert_eq!(
            get(&d, "aws.securityhub.severity_label"),
            Some(&json!("MEDIUM"))
        );
    }

    #[test]
    fn custom_action_keeps_the_action_and_its_own_id() {
        let imported = run(envelope(IMPORTED, vec![control_finding()])).remove(0);
        let out = run(envelope(
            CUSTOM_ACTION,
            vec![control_finding(), guardduty_finding()],
        ));
        assert_eq!(out.len(), 2);
        let d = Value::Object(out[0].doc.clone());
        assert_eq!(get(&d, "event.action"), Some(&json!("Escalate")));
        assert_eq!(
            get(&d, "aws.securityhub.custom_action.description"),
            Some(&json!("Page the on-call"))
        );
        assert_eq!(
            get(&d, "aws.securityhub.custom_action.arn"),
            Some(&json!(
                "arn:aws:securityhub:us-east-1:111122223333:action/custom/Escalate"
            ))
        );
        assert_ne!(out[0].id, imported.id);
        assert_ne!(out[0].id, out[1].id);
        let again = run(envelope(CUSTOM_ACTION, vec![control_finding()])).remove(0);
        assert_eq!(again.id, out[0].id);
    }

    #[test]
    fn inspector_vulnerability() {
        let f = json!({
            "SchemaVersion": "2018-10-08",
            "Id": "arn:aws:inspector2:us-east-1:111122223333:finding/0a1b",
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/inspector",
            "ProductName": "Inspector",
            "CompanyName": "Amazon",
            "AwsAccountId": "111122223333",
            "Types": ["Software and Configuration Checks/Vulnerabilities/CVE"],
            "UpdatedAt": "2024-05-01T00:00:00Z",
            "Severity": {"Label": "HIGH", "Normalized": 70},
            "Title": "CVE-2024-0001 - openssl",
            "Description": "A flaw in openssl.",
            "Vulnerabilities": [{
                "Id": "CVE-2024-0001",
                "VulnerablePackages": [{"Name": "openssl", "Version": "3.0.1", "FixedInVersion": "3.0.13", "Architecture": "x86_64"}],
                "Cvss": [{"Version": "3.1", "BaseScore": 7.5, "BaseVector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", "Source": "NVD"}],
                "Vendor": {"Name": "NVD", "Url": "https://nvd.nist.gov/vuln/detail/CVE-2024-0001"},
                "FixAvailable": "YES",
                "ExploitAvailable": "NO",
                "EpssScore": 0.02
            }],
            "Resources": [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:111122223333:instance/i-0123", "Region": "us-east-1"}]
        });
        let d = Value::Object(run(f).remove(0).doc);
        assert_eq!(get(&d, "event.category"), Some(&json!(["vulnerability"])));
        assert_eq!(get(&d, "vulnerability.id"), Some(&json!("CVE-2024-0001")));
        assert_eq!(get(&d, "rule.id"), Some(&json!("CVE-2024-0001")));
        assert_eq!(get(&d, "vulnerability.score.base"), Some(&json!(7.5)));
        assert_eq!(get(&d, "vulnerability.score.version"), Some(&json!("3.1")));
        assert_eq!(get(&d, "vulnerability.severity"), Some(&json!("HIGH")));
        assert_eq!(get(&d, "vulnerability.enumeration"), Some(&json!("CVE")));
        assert_eq!(
            get(&d, "vulnerability.scanner.vendor"),
            Some(&json!("Inspector"))
        );
        assert_eq!(get(&d, "package.name"), Some(&json!("openssl")));
        assert_eq!(get(&d, "package.fixed_version"), Some(&json!("3.0.13")));
        assert_eq!(get(&d, "observer.vendor"), Some(&json!("Amazon")));
        assert_eq!(get(&d, "cloud.instance.id"), Some(&json!("i-0123")));
    }

    #[test]
    fn macie_and_access_analyzer_products_from_the_arn() {
        let macie = json!({
            "SchemaVersion": "2018-10-08",
            "Id": "macie-1",
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/macie",
            "AwsAccountId": "111122223333",
            "Types": ["Sensitive Data Identifications/PII/SensitiveData:S3Object-Personal"],
            "UpdatedAt": "2024-05-01T00:00:00Z",
            "Severity": {"Label": "HIGH"},
            "Title": "The S3 object contains personal information."
        });
        let d = Value::Object(run(macie).remove(0).doc);
        assert_eq!(get(&d, "observer.product"), Some(&json!("Macie")));
        assert_eq!(get(&d, "observer.vendor"), Some(&json!("AWS")));
        assert_eq!(get(&d, "event.category"), Some(&json!(["file"])));
        assert_eq!(
            get(&d, "rule.id"),
            Some(&json!("SensitiveData:S3Object-Personal"))
        );

        let analyzer = json!({
            "SchemaVersion": "2018-10-08",
            "Id": "arn:aws:access-analyzer:us-east-1:111122223333:analyzer/org/arn:aws:s3:::bucket",
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/access-analyzer",
            "GeneratorId": "aws/access-analyzer",
            "AwsAccountId": "111122223333",
            "Types": ["Software and Configuration Checks/AWS Security Best Practices/External Access Granted"],
            "UpdatedAt": "2024-05-01T00:00:00Z",
            "Severity": {"Label": "LOW", "Normalized": 1},
            "Title": "AwsS3Bucket/arn:aws:s3:::bucket/ allows cross-account access",
            "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::bucket", "Region": "us-east-1"}]
        });
        let d = Value::Object(run(analyzer).remove(0).doc);
        assert_eq!(
            get(&d, "observer.product"),
            Some(&json!("IAM Access Analyzer"))
        );
        assert_eq!(get(&d, "event.provider"), Some(&json!("access-analyzer")));
        assert_eq!(get(&d, "rule.id"), Some(&json!("aws/access-analyzer")));
        assert_eq!(get(&d, "event.category"), Some(&json!(["configuration"])));
    }

    #[test]
    fn network_field() {
        let mut f = control_finding();
        f["Network"] = json!({"Direction": "OUT", "Protocol": "UDP", "SourceIpV4": "10.0.0.5", "SourcePort": 5353, "DestinationIpV6": "2001:db8::53", "DestinationPort": 53, "DestinationDomain": "example.com"});
        let d = Value::Object(run(f).remove(0).doc);
        assert_eq!(get(&d, "network.direction"), Some(&json!("outbound")));
        assert_eq!(get(&d, "network.transport"), Some(&json!("udp")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("10.0.0.5")));
        assert_eq!(get(&d, "destination.ip"), Some(&json!("2001:db8::53")));
        assert_eq!(get(&d, "destination.port"), Some(&json!(53)));
        assert_eq!(get(&d, "destination.domain"), Some(&json!("example.com")));
    }

    #[test]
    fn a_bad_finding_does_not_lose_the_others() {
        let mut bad = control_finding();
        bad["UpdatedAt"] = json!("soon");
        let mut out = Vec::new();
        let err = normalize(
            envelope(
                IMPORTED,
                vec![control_finding(), bad, json!(42), guardduty_finding()],
            ),
            &ctx(),
            &mut out,
        )
        .expect_err("one finding is invalid");
        assert_eq!(out.len(), 2);
        assert!(err.to_string().contains("finding 1"), "{err}");
        assert!(err.to_string().contains("UpdatedAt"), "{err}");
    }

    #[test]
    fn events_without_findings_are_errors() {
        let mut out = Vec::new();
        let mut insight = envelope("Security Hub Insight Results", vec![]);
        insight["detail"] = json!({"actionName": "x", "insightResults": []});
        let err = normalize(insight, &ctx(), &mut out).expect_err("no findings");
        assert!(err.to_string().contains("carry no findings"), "{err}");
        let mut imported = envelope(IMPORTED, vec![]);
        imported["detail"] = json!({});
        assert_eq!(
            normalize(imported, &ctx(), &mut out),
            Err(NormalizeError::MissingField("detail.findings"))
        );
        assert_eq!(
            normalize(json!({"hello": 1}), &ctx(), &mut out),
            Err(NormalizeError::MissingField("detail.findings"))
        );
        assert_eq!(
            normalize(json!([]), &ctx(), &mut out),
            Err(NormalizeError::NotAnObject)
        );
        let mut f = control_finding();
        f.as_object_mut().map(|m| m.remove("UpdatedAt"));
        assert_eq!(
            normalize(f, &ctx(), &mut out),
            Err(NormalizeError::MissingField("UpdatedAt"))
        );
        assert!(out.is_empty());
    }
}
