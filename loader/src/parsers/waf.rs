//! AWS WAF logs (WAFv2, and WAF Classic where its shape differs): one JSON object per request.
//!
//! The terminating rule becomes `rule.*` (with `rule.ruleset` when the rule that decided sits
//! inside a rule group), the request becomes `source.*`, `url.*`, `http.*` and `user_agent.*`,
//! and the rule evaluation details (non-terminating matches, excluded rules, rate-based rules,
//! labels) are summarized as keyword lists under `aws.waf.*` so they can be aggregated. The
//! record has no natural id: the pipeline hashes the raw record.

use super::{Context, NormalizeError, Normalized};
use crate::ecs::{Doc, add_related, get, set, set_opt};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::net::IpAddr;

/// Normalizes one WAF log record into one document.
pub fn normalize(
    record: Value,
    _ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    if !record.is_object() {
        return Err(NormalizeError::NotAnObject);
    }
    let (ecs, timestamp) = ecs_fields(&record)?;
    let Value::Object(mut doc) = record else {
        return Err(NormalizeError::NotAnObject);
    };
    // `httpRequest.clientIp` is mapped as an address: a word there (`unknown`) would have the
    // whole document refused. The word is `source.address`.
    if let Some(Value::Object(request)) = doc.get_mut("httpRequest")
        && request
            .get("clientIp")
            .and_then(Value::as_str)
            .is_some_and(|ip| ip.parse::<IpAddr>().is_err())
    {
        request.remove("clientIp");
    }
    // WAF's own top-level names (`httpRequest`, `labels`, `action`, ...) never collide with the
    // ECS objects added here.
    doc.extend(ecs);
    out.push(Normalized::new(doc, timestamp));
    Ok(())
}

fn ecs_fields(rec: &Value) -> Result<(Doc, Option<DateTime<Utc>>), NormalizeError> {
    let mut ecs = Doc::new();
    set(&mut ecs, "event.module", "aws");
    set(&mut ecs, "event.dataset", "aws.waf");
    set(&mut ecs, "event.kind", "event");
    set(&mut ecs, "event.category", vec!["web", "network"]);
    set(&mut ecs, "observer.vendor", "AWS");
    set(&mut ecs, "observer.product", "WAF");
    set(&mut ecs, "observer.type", "waf");

    let action = get_str(rec, "action");
    let verdict = match action {
        Some("ALLOW") => Some("allowed"),
        Some("BLOCK" | "CAPTCHA" | "CHALLENGE") => Some("denied"),
        _ => None,
    };
    let mut event_type = vec!["access"];
    event_type.extend(verdict);
    set(&mut ecs, "event.type", event_type);
    set_opt(&mut ecs, "event.action", action);

    terminating_rule(rec, &mut ecs);
    web_acl(rec, &mut ecs);
    request(rec, &mut ecs)?;
    rule_details(rec, &mut ecs);

    if let Some(code) = get(rec, "responseCodeSent").and_then(as_u64) {
        set(&mut ecs, "http.response.status_code", code);
    }
    set_opt(&mut ecs, "tls.client.ja3", get_str(rec, "ja3Fingerprint"));
    set_opt(
        &mut ecs,
        "aws.waf.ja4_fingerprint",
        get_str(rec, "ja4Fingerprint"),
    );
    set_opt(
        &mut ecs,
        "aws.waf.http_source_name",
        get_str(rec, "httpSourceName"),
    );
    set_opt(
        &mut ecs,
        "aws.waf.http_source_id",
        get_str(rec, "httpSourceId"),
    );
    set_opt(
        &mut ecs,
        "aws.waf.captcha_response_code",
        get(rec, "captchaResponse.responseCode").and_then(as_u64),
    );
    set_opt(
        &mut ecs,
        "aws.waf.challenge_response_code",
        get(rec, "challengeResponse.responseCode").and_then(as_u64),
    );

    let timestamp = match get(rec, "timestamp") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            as_i64(v)
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| NormalizeError::InvalidField {
                    field: "timestamp",
                    reason: format!("`{v}` is not a time in epoch milliseconds"),
                })?,
        ),
    };
    Ok((ecs, timestamp))
}

/// `rule.*` from the terminating rule. `rule.name` is `terminatingRuleId`, as the es-loader and
/// Elastic's AWS integration write it (a rule group's name when a group decided), so content
/// made for them keeps working; when a group decided, `rule.id` is the rule inside it (the
/// group's `terminatingRule`) and `rule.ruleset` the group.
fn terminating_rule(rec: &Value, ecs: &mut Doc) {
    let rule_type = get_str(rec, "terminatingRuleType");
    set_opt(ecs, "aws.waf.terminating_rule_type", rule_type);
    let in_group = rule_groups(rec).find_map(|group| {
        let rule_id = get_str(group, "terminatingRule.ruleId")?;
        Some((get_str(group, "ruleGroupId"), rule_id))
    });
    match in_group {
        Some((group_id, rule_id)) => {
            set(ecs, "rule.id", rule_id);
            set(
                ecs,
                "rule.name",
                get_str(rec, "terminatingRuleId").unwrap_or(rule_id),
            );
            set_opt(
                ecs,
                "rule.ruleset",
                group_id.or(get_str(rec, "terminatingRuleId")),
            );
        }
        None => {
            if let Some(id) = get_str(rec, "terminatingRuleId") {
                set(ecs, "rule.id", id);
                set(ecs, "rule.name", id);
            }
        }
    }
    if let Some(kind) = rule_type {
        set(ecs, "rule.category", kind);
    }
}

/// Web ACL id, and for WAFv2 (an ARN: `arn:aws:wafv2:<region>:<account>:<scope>/webacl/<name>/<id>`)
/// its name, account and region.
fn web_acl(rec: &Value, ecs: &mut Doc) {
    let Some(id) = get_str(rec, "webaclId") else {
        return;
    };
    set(ecs, "aws.waf.web_acl_id", id);
    let parts: Vec<&str> = id.splitn(6, ':').collect();
    if let [
        "arn",
        _partition,
        "wafv2" | "waf" | "waf-regional",
        region,
        account,
        resource,
    ] = parts.as_slice()
    {
        let segments: Vec<&str> = resource.split('/').collect();
        if let Some(pos) = segments.iter().position(|s| *s == "webacl")
            && let Some(name) = segments.get(pos + 1)
        {
            set(ecs, "aws.waf.web_acl_name", *name);
            set(ecs, "observer.name", *name);
        }
        if !account.is_empty() {
            set(ecs, "cloud.account.id", *account);
        }
        if !region.is_empty() {
            set(ecs, "cloud.region", *region);
        }
    }
}

fn request(rec: &Value, ecs: &mut Doc) -> Result<(), NormalizeError> {
    let Some(req) = get(rec, "httpRequest") else {
        return Ok(());
    };
    if let Some(ip) = get_str(req, "clientIp") {
        // WAF writes a word (`unknown`) when it has no address: the request was still allowed
        // or blocked, so the record loads, with the word as its address and no `source.ip`.
        set(ecs, "source.address", ip);
        if ip.parse::<IpAddr>().is_ok() {
            set(ecs, "source.ip", ip);
            add_related(ecs, "ip", ip);
        }
    }
    // WAF writes "-" when the country is unknown.
    if let Some(country) = get_str(req, "country").filter(|c| *c != "-") {
        set(ecs, "source.geo.country_iso_code", country);
    }
    let uri = get_str(req, "uri");
    let args = get_str(req, "args");
    set_opt(ecs, "url.path", uri);
    set_opt(ecs, "url.query", args);
    set_opt(ecs, "url.fragment", get_str(req, "fragment"));
    set_opt(ecs, "url.scheme", get_str(req, "scheme"));
    if let Some(uri) = uri {
        let original = match args {
            Some(args) => format!("{uri}?{args}"),
            None => uri.to_owned(),
        };
        set(ecs, "url.original", original);
    }
    set_opt(ecs, "http.request.method", get_str(req, "httpMethod"));
    set_opt(ecs, "http.request.id", get_str(req, "requestId"));
    if let Some(version) = get_str(req, "httpVersion") {
        let bare = version
            .strip_prefix("HTTP/")
            .or_else(|| version.strip_prefix("http/"))
            .unwrap_or(version);
        set(ecs, "http.version", bare);
    }
    if let Some(size) = get(rec, "requestBodySize").and_then(as_u64) {
        set(ecs, "http.request.body.bytes", size);
    }

    let mut host = get_str(req, "host");
    if let Some(Value::Array(headers)) = req.get("headers") {
        for header in headers {
            let (Some(name), Some(value)) = (get_str(header, "name"), get_str(header, "value"))
            else {
                continue;
            };
            if name.eq_ignore_ascii_case("user-agent") {
                set(ecs, "user_agent.original", value);
            } else if name.eq_ignore_ascii_case("host") {
                host = host.or(Some(value));
            } else if name.eq_ignore_ascii_case("referer") || name.eq_ignore_ascii_case("referrer")
            {
                set(ecs, "http.request.referrer", value);
            }
        }
    }
    if let Some(host) = host {
        let domain = host_domain(host);
        set(ecs, "url.domain", domain);
        add_related(ecs, "hosts", domain);
        if let Some(port) = host
            .rsplit_once(':')
            .filter(|(name, _)| *name == domain || name.trim_matches(['[', ']']) == domain)
            .and_then(|(_, port)| port.parse::<u16>().ok())
        {
            set(ecs, "url.port", port);
        }
    }
    Ok(())
}

/// Keyword lists of what the other rules did.
fn rule_details(rec: &Value, ecs: &mut Doc) {
    let labels: Vec<&str> = array(rec, "labels")
        .filter_map(|l| get_str(l, "name"))
        .collect();
    if !labels.is_empty() {
        set(ecs, "aws.waf.labels", labels);
    }

    let mut groups = Vec::new();
    let mut matching = Vec::new();
    let mut matching_actions = Vec::new();
    let mut excluded = Vec::new();
    for rule in array(rec, "nonTerminatingMatchingRules") {
        if let Some(id) = get_str(rule, "ruleId") {
            matching.push(id);
            matching_actions.extend(get_str(rule, "action"));
        }
    }
    for group in rule_groups(rec) {
        groups.extend(get_str(group, "ruleGroupId"));
        for rule in array(group, "nonTerminatingMatchingRules") {
            if let Some(id) = get_str(rule, "ruleId") {
                matching.push(id);
                matching_actions.extend(get_str(rule, "action"));
            }
        }
        for rule in array(group, "excludedRules") {
            excluded.extend(get_str(rule, "ruleId"));
        }
        // Rule action overrides appear as non-terminating matches with action EXCLUDED_AS_COUNT
        // in WAFv2, as `excludedRules` in WAF Classic and older WAFv2 logs.
    }
    matching_actions.sort_unstable();
    matching_actions.dedup();
    for (field, list) in [
        ("aws.waf.rule_groups", groups),
        ("aws.waf.non_terminating_matching_rules", matching),
        ("aws.waf.non_terminating_actions", matching_actions),
        ("aws.waf.excluded_rules", excluded),
    ] {
        if !list.is_empty() {
            set(ecs, field, list);
        }
    }

    let mut rate_rules = Vec::new();
    let mut limit_keys = Vec::new();
    for rule in array(rec, "rateBasedRuleList") {
        rate_rules.extend(get_str(rule, "rateBasedRuleName").or(get_str(rule, "rateBasedRuleId")));
        limit_keys.extend(get_str(rule, "limitKey"));
    }
    limit_keys.sort_unstable();
    limit_keys.dedup();
    if !rate_rules.is_empty() {
        set(ecs, "aws.waf.rate_based_rules", rate_rules);
    }
    if !limit_keys.is_empty() {
        set(ecs, "aws.waf.rate_limit_keys", limit_keys);
    }
}

/// A Host value without its port (`shop.example.com:8443`, `[2001:db8::1]:443`).
fn host_domain(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// A non-empty string field of an object, or of a nested one for a dotted name.
fn get_str<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    let found = if name.contains('.') {
        get(value, name)
    } else {
        value.get(name)
    };
    found.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn array<'a>(value: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn rule_groups(rec: &Value) -> impl Iterator<Item = &Value> {
    array(rec, "ruleGroupList")
}

/// WAF writes some numbers as strings (`evaluationWindowSec`, old `responseCodeSent`).
fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context<'static> {
        Context {
            s3_key: "AWSLogs/111122223333/WAFLogs/us-east-1/web/2024/05/01/00/00/x.log.gz",
            key_account: Some("111122223333"),
            key_region: Some("us-east-1"),
            ingested: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            reference: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            key_time: None,
        }
    }

    fn one(rec: Value) -> (Value, Option<DateTime<Utc>>) {
        let mut out = Vec::new();
        normalize(rec, &ctx(), &mut out).expect("record normalizes");
        assert_eq!(out.len(), 1);
        let n = out.remove(0);
        assert_eq!(n.id, None);
        (Value::Object(n.doc), n.timestamp)
    }

    fn alb_allow() -> Value {
        json!({
            "timestamp": 1714521600123_i64,
            "formatVersion": 1,
            "webaclId": "arn:aws:wafv2:us-east-1:111122223333:regional/webacl/shop-acl/0f1e2d3c-aaaa-bbbb-cccc-123456789012",
            "terminatingRuleId": "Default_Action",
            "terminatingRuleType": "REGULAR",
            "action": "ALLOW",
            "terminatingRuleMatchDetails": [],
            "httpSourceName": "ALB",
            "httpSourceId": "111122223333-app/shop/0123456789abcdef",
            "ruleGroupList": [{
                "ruleGroupId": "AWS#AWSManagedRulesCommonRuleSet",
                "terminatingRule": null,
                "nonTerminatingMatchingRules": [{"ruleId": "SizeRestrictions_BODY", "action": "COUNT"}],
                "excludedRules": [{"exclusionType": "EXCLUDED_AS_COUNT", "ruleId": "NoUserAgent_HEADER"}]
            }],
            "rateBasedRuleList": [],
            "nonTerminatingMatchingRules": [],
            "responseCodeSent": null,
            "httpRequest": {
                "clientIp": "198.51.100.23",
                "country": "JP",
                "headers": [
                    {"name": "Host", "value": "shop.example.com:8443"},
                    {"name": "User-Agent", "value": "curl/8.5.0"},
                    {"name": "Referer", "value": "https://example.com/"}
                ],
                "uri": "/cart",
                "args": "item=42&qty=1",
                "httpVersion": "HTTP/1.1",
                "httpMethod": "POST",
                "requestId": "1-66318a00-0123456789abcdef01234567"
            },
            "labels": [{"name": "awswaf:clientip:geo:country:JP"}]
        })
    }

    #[test]
    fn allowed_request_through_alb() {
        let (d, ts) = one(alb_allow());
        assert_eq!(ts, DateTime::from_timestamp_millis(1_714_521_600_123));
        assert_eq!(get(&d, "event.action"), Some(&json!("ALLOW")));
        assert_eq!(get(&d, "event.type"), Some(&json!(["access", "allowed"])));
        assert_eq!(get(&d, "rule.name"), Some(&json!("Default_Action")));
        assert_eq!(get(&d, "rule.ruleset"), None);
        assert_eq!(get(&d, "source.ip"), Some(&json!("198.51.100.23")));
        assert_eq!(get(&d, "source.geo.country_iso_code"), Some(&json!("JP")));
        assert_eq!(get(&d, "url.path"), Some(&json!("/cart")));
        assert_eq!(get(&d, "url.query"), Some(&json!("item=42&qty=1")));
        assert_eq!(get(&d, "url.original"), Some(&json!("/cart?item=42&qty=1")));
        assert_eq!(get(&d, "url.domain"), Some(&json!("shop.example.com")));
        assert_eq!(get(&d, "url.port"), Some(&json!(8443)));
        assert_eq!(get(&d, "http.request.method"), Some(&json!("POST")));
        assert_eq!(get(&d, "http.version"), Some(&json!("1.1")));
        assert_eq!(get(&d, "user_agent.original"), Some(&json!("curl/8.5.0")));
        assert_eq!(
            get(&d, "http.request.referrer"),
            Some(&json!("https://example.com/"))
        );
        assert_eq!(get(&d, "aws.waf.web_acl_name"), Some(&json!("shop-acl")));
        assert_eq!(get(&d, "cloud.account.id"), Some(&json!("111122223333")));
        assert_eq!(get(&d, "cloud.region"), Some(&json!("us-east-1")));
        assert_eq!(get(&d, "observer.product"), Some(&json!("WAF")));
        assert_eq!(get(&d, "observer.vendor"), Some(&json!("AWS")));
        assert_eq!(
            get(&d, "aws.waf.labels"),
            Some(&json!(["awswaf:clientip:geo:country:JP"]))
        );
        assert_eq!(
            get(&d, "aws.waf.rule_groups"),
            Some(&json!(["AWS#AWSManagedRulesCommonRuleSet"]))
        );
        assert_eq!(
            get(&d, "aws.waf.non_terminating_matching_rules"),
            Some(&json!(["SizeRestrictions_BODY"]))
        );
        assert_eq!(
            get(&d, "aws.waf.excluded_rules"),
            Some(&json!(["NoUserAgent_HEADER"]))
        );
        assert_eq!(get(&d, "aws.waf.http_source_name"), Some(&json!("ALB")));
        // The original record stays.
        assert_eq!(
            get(&d, "httpRequest.clientIp"),
            Some(&json!("198.51.100.23"))
        );
    }

    #[test]
    fn block_by_rule_inside_a_managed_group() {
        let mut rec = alb_allow();
        rec["action"] = json!("BLOCK");
        rec["terminatingRuleId"] = json!("AWS-AWSManagedRulesSQLiRuleSet");
        rec["terminatingRuleType"] = json!("MANAGED_RULE_GROUP");
        rec["ruleGroupList"] = json!([{
            "ruleGroupId": "AWS#AWSManagedRulesSQLiRuleSet",
            "terminatingRule": {"ruleId": "SQLi_QUERYARGUMENTS", "action": "BLOCK"},
            "nonTerminatingMatchingRules": [],
            "excludedRules": null
        }]);
        rec["responseCodeSent"] = json!(403);
        let (d, _) = one(rec);
        assert_eq!(get(&d, "event.type"), Some(&json!(["access", "denied"])));
        assert_eq!(get(&d, "rule.id"), Some(&json!("SQLi_QUERYARGUMENTS")));
        assert_eq!(
            get(&d, "rule.name"),
            Some(&json!("AWS-AWSManagedRulesSQLiRuleSet"))
        );
        assert_eq!(
            get(&d, "rule.ruleset"),
            Some(&json!("AWS#AWSManagedRulesSQLiRuleSet"))
        );
        assert_eq!(get(&d, "rule.category"), Some(&json!("MANAGED_RULE_GROUP")));
        assert_eq!(get(&d, "http.response.status_code"), Some(&json!(403)));
        assert_eq!(get(&d, "aws.waf.excluded_rules"), None);
    }

    #[test]
    fn rate_based_block_from_api_gateway() {
        let rec = json!({
            "timestamp": 1714521600000_i64,
            "formatVersion": 1,
            "webaclId": "arn:aws:wafv2:eu-west-3:111122223333:regional/webacl/api/1234",
            "terminatingRuleId": "PerIpLimit",
            "terminatingRuleType": "RATE_BASED",
            "action": "BLOCK",
            "httpSourceName": "APIGW",
            "httpSourceId": "111122223333:abc123:prod",
            "rateBasedRuleList": [{
                "rateBasedRuleId": "arn:aws:wafv2:eu-west-3:111122223333:regional/ipset/x",
                "rateBasedRuleName": "PerIpLimit",
                "limitKey": "IP",
                "maxRateAllowed": 100,
                "evaluationWindowSec": "300"
            }],
            "httpRequest": {
                "clientIp": "2001:db8::7",
                "country": "FR",
                "headers": [{"name": "user-agent", "value": "python-requests/2.31"}],
                "uri": "/v1/items",
                "args": "",
                "httpVersion": "HTTP/2.0",
                "httpMethod": "GET",
                "requestId": "Ed0AiHF_CGYF-DA="
            }
        });
        let (d, _) = one(rec);
        assert_eq!(get(&d, "rule.name"), Some(&json!("PerIpLimit")));
        assert_eq!(
            get(&d, "aws.waf.rate_based_rules"),
            Some(&json!(["PerIpLimit"]))
        );
        assert_eq!(get(&d, "aws.waf.rate_limit_keys"), Some(&json!(["IP"])));
        assert_eq!(get(&d, "source.ip"), Some(&json!("2001:db8::7")));
        assert_eq!(get(&d, "url.query"), None);
        assert_eq!(get(&d, "url.original"), Some(&json!("/v1/items")));
        assert_eq!(get(&d, "http.version"), Some(&json!("2.0")));
        assert_eq!(get(&d, "url.domain"), None);
    }

    #[test]
    fn captcha_and_cloudfront_fields() {
        let rec = json!({
            "timestamp": 1714521600000_i64,
            "webaclId": "arn:aws:wafv2:us-east-1:111122223333:global/webacl/cdn/5678",
            "terminatingRuleId": "LoginCaptcha",
            "terminatingRuleType": "REGULAR",
            "action": "CAPTCHA",
            "httpSourceName": "CF",
            "captchaResponse": {"responseCode": 405, "failureReason": "TOKEN_MISSING"},
            "nonTerminatingMatchingRules": [
                {"ruleId": "CountBots", "action": "COUNT"},
                {"ruleId": "ChallengeOld", "action": "CHALLENGE"}
            ],
            "httpRequest": {
                "clientIp": "203.0.113.9",
                "country": "-",
                "headers": [{"name": "HOST", "value": "d111111abcdef8.cloudfront.net"}],
                "uri": "/login",
                "httpVersion": "HTTP/2.0",
                "httpMethod": "GET",
                "scheme": "https",
                "host": "www.example.com",
                "fragment": "top"
            },
            "ja3Fingerprint": "0123456789abcdef0123456789abcdef"
        });
        let (d, _) = one(rec);
        assert_eq!(get(&d, "event.action"), Some(&json!("CAPTCHA")));
        assert_eq!(get(&d, "event.type"), Some(&json!(["access", "denied"])));
        assert_eq!(get(&d, "aws.waf.captcha_response_code"), Some(&json!(405)));
        assert_eq!(
            get(&d, "aws.waf.non_terminating_actions"),
            Some(&json!(["CHALLENGE", "COUNT"]))
        );
        assert_eq!(get(&d, "source.geo"), None);
        // The request's own host wins over the header.
        assert_eq!(get(&d, "url.domain"), Some(&json!("www.example.com")));
        assert_eq!(get(&d, "url.scheme"), Some(&json!("https")));
        assert_eq!(get(&d, "url.fragment"), Some(&json!("top")));
        assert_eq!(
            get(&d, "tls.client.ja3"),
            Some(&json!("0123456789abcdef0123456789abcdef"))
        );
    }

    #[test]
    fn classic_record() {
        let rec = json!({
            "timestamp": 1576280412771_i64,
            "formatVersion": 1,
            "webaclId": "8b0c6e63-1234-4f4b-9bc0-aa1c2e3d4f5a",
            "terminatingRuleId": "STMTest_SQLi_XSS",
            "terminatingRuleType": "REGULAR",
            "action": "BLOCK",
            "httpSourceName": "CF",
            "httpSourceId": "i-123",
            "ruleGroupList": [],
            "rateBasedRuleList": [],
            "nonTerminatingMatchingRules": [],
            "httpRequest": {
                "clientIp": "192.0.2.44",
                "country": "US",
                "headers": [{"name": "Host", "value": "localhost:1989"}],
                "uri": "/foo",
                "args": "",
                "httpVersion": "HTTP/1.1",
                "httpMethod": "GET",
                "requestId": "rid"
            }
        });
        let (d, _) = one(rec);
        assert_eq!(
            get(&d, "aws.waf.web_acl_id"),
            Some(&json!("8b0c6e63-1234-4f4b-9bc0-aa1c2e3d4f5a"))
        );
        assert_eq!(get(&d, "aws.waf.web_acl_name"), None);
        assert_eq!(get(&d, "cloud"), None);
        assert_eq!(get(&d, "url.domain"), Some(&json!("localhost")));
        assert_eq!(get(&d, "rule.id"), Some(&json!("STMTest_SQLi_XSS")));
    }

    #[test]
    fn host_without_port() {
        assert_eq!(host_domain("a.example.com:443"), "a.example.com");
        assert_eq!(host_domain("a.example.com"), "a.example.com");
        assert_eq!(host_domain("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(host_domain("2001:db8::1"), "2001:db8::1");
        let mut rec = alb_allow();
        rec["httpRequest"]["headers"] = json!([{"name": "Host", "value": "[2001:db8::1]:8080"}]);
        let (d, _) = one(rec);
        assert_eq!(get(&d, "url.domain"), Some(&json!("2001:db8::1")));
        assert_eq!(get(&d, "url.port"), Some(&json!(8080)));
        let mut rec = alb_allow();
        rec["httpRequest"]["headers"] = json!([{"name": "Host", "value": "2001:db8::1"}]);
        let (d, _) = one(rec);
        assert_eq!(get(&d, "url.port"), None);
    }

    #[test]
    fn a_client_without_an_address_still_loads() {
        let mut rec = alb_allow();
        rec["httpRequest"]["clientIp"] = json!("unknown");
        let (d, _) = one(rec);
        assert_eq!(get(&d, "source.address"), Some(&json!("unknown")));
        assert_eq!(get(&d, "httpRequest.clientIp"), None);
        assert_eq!(get(&d, "source.ip"), None);
        assert_eq!(get(&d, "related.ip"), None);
        assert_eq!(get(&d, "event.action"), Some(&json!("ALLOW")));
    }

    #[test]
    fn bad_records_are_errors() {
        let mut out = Vec::new();
        let mut rec = alb_allow();
        rec["timestamp"] = json!("yesterday");
        let err = normalize(rec, &ctx(), &mut out).expect_err("invalid timestamp");
        assert!(err.to_string().contains("`timestamp`"), "{err}");
        assert_eq!(
            normalize(json!("text"), &ctx(), &mut out),
            Err(NormalizeError::NotAnObject)
        );
        assert!(out.is_empty());
        // Missing pieces are not errors: the document just has fewer fields.
        let (d, ts) = one(json!({"action": "ALLOW"}));
        assert_eq!(ts, None);
        assert_eq!(get(&d, "event.action"), Some(&json!("ALLOW")));
    }
}
