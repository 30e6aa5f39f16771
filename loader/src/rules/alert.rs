//! The alert document of a rule that matched: ECS (`event.kind: alert`, `rule.*`, `threat.*`
//! from the rule's ATT&CK tags), who and where from the matched document, and which document
//! it was (`alert.source.*`). Its id is a hash of the rule and the document's index and id, so a
//! replayed object never duplicates an alert; it goes to `alert-<YYYY-MM>` of the document's
//! time.

use super::RuleMatch;
use super::correlate::CorrelationAlert;
use crate::ecs::{self, Doc};
use crate::pipeline::{Document, Source};
use serde_json::Value;

/// The alias (and name prefix) of the alert indices.
pub const ALERT_INDEX: &str = "alert";

/// `event.severity` of a Sigma level (the scale ECS uses for risk scores, 0 to 100).
pub fn severity(level: &str) -> u64 {
    match level {
        "informational" => 1,
        "low" => 21,
        "medium" => 47,
        "high" => 73,
        "critical" => 99,
        _ => 47,
    }
}

/// Fields of the matched document an analyst wants on the alert itself.
const CARRIED: &[&str] = &[
    "@timestamp",
    "cloud.account.id",
    "cloud.region",
    "cloud.instance.id",
    "event.action",
    "event.provider",
    "event.outcome",
    "source.ip",
    "source.geo.country_iso_code",
    "user.name",
    "user.id",
    "related.ip",
    "related.user",
    "host.hostname",
];

/// The alert of `matched` on the document `index`/`id` with the fields `doc`.
pub fn alert_document(
    matched: &RuleMatch,
    index: &str,
    id: &str,
    log_type: &str,
    doc: &Doc,
    ingested: &str,
) -> Document {
    let mut alert = Doc::new();
    for field in CARRIED {
        if let Some(value) = ecs::get_in(doc, field) {
            ecs::set(&mut alert, field, value.clone());
        }
    }
    rule_fields(&mut alert, matched, ingested);
    ecs::set(&mut alert, "alert.source.index", index);
    ecs::set(&mut alert, "alert.source.id", id);
    ecs::set(&mut alert, "alert.source.log_type", log_type);
    ecs::set_opt(
        &mut alert,
        "alert.source.s3_key",
        doc.get("@log_s3key").and_then(Value::as_str),
    );
    alert.insert("@log_type".to_owned(), Value::String("alerts".to_owned()));
    let key = format!("{}\n{index}\n{id}", matched.id);
    finish(alert, &key)
}

/// The alert of a correlation that fired: the rule, the group it fired for (each group-by
/// field at its own path, so the alert is filtered like the documents), the count and window.
pub fn correlation_alert_document(fired: &CorrelationAlert, ingested: &str) -> Document {
    let mut alert = Doc::new();
    ecs::set(&mut alert, "@timestamp", fired.time.as_str());
    rule_fields(&mut alert, &fired.rule, ingested);
    for (field, value) in &fired.group {
        ecs::set(&mut alert, field, value.as_str());
    }
    ecs::set(
        &mut alert,
        "alert.correlation.type",
        fired.correlation_type.as_str(),
    );
    ecs::set(&mut alert, "alert.correlation.value", fired.value);
    ecs::set(
        &mut alert,
        "alert.correlation.window_seconds",
        fired.window_seconds,
    );
    ecs::set(
        &mut alert,
        "alert.correlation.group_by",
        fired
            .group
            .iter()
            .map(|(f, _)| f.clone())
            .collect::<Vec<_>>(),
    );
    ecs::set(&mut alert, "alert.source.log_type", fired.log_type.as_str());
    alert.insert("@log_type".to_owned(), Value::String("alerts".to_owned()));
    let group: Vec<String> = fired
        .group
        .iter()
        .map(|(f, v)| format!("{f}={v}"))
        .collect();
    let key = format!("{}\n{}\n{}", fired.rule.id, group.join("\n"), fired.time);
    finish(alert, &key)
}

/// The fields of the rule that matched, shared by both kinds of alert.
fn rule_fields(alert: &mut Doc, matched: &RuleMatch, ingested: &str) {
    ecs::set(alert, "event.kind", "alert");
    ecs::set(alert, "event.module", "sigma");
    ecs::set(alert, "event.dataset", "sigma.alert");
    ecs::set(alert, "event.severity", severity(&matched.level));
    ecs::set(alert, "event.ingested", ingested);
    ecs::set(alert, "rule.id", matched.id.as_str());
    ecs::set(alert, "rule.name", matched.title.as_str());
    ecs::set(alert, "rule.ruleset", "sigma");
    ecs::set(alert, "rule.category", matched.level.as_str());
    ecs::set(alert, "tags", matched.tags.clone());
    let (tactics, techniques) = attack(&matched.tags);
    if !tactics.is_empty() || !techniques.is_empty() {
        ecs::set(alert, "threat.framework", "MITRE ATT&CK");
        ecs::set_opt(alert, "threat.tactic.name", non_empty(tactics));
        ecs::set_opt(alert, "threat.technique.id", non_empty(techniques));
    }
}

/// The alert in the index of its month, with an id hashed from `key`.
fn finish(alert: Doc, key: &str) -> Document {
    let month = alert
        .get("@timestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.get(..7))
        .unwrap_or("0000-00")
        .to_owned();
    Document {
        index: format!("{ALERT_INDEX}-{month}"),
        id: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes())),
        source: Source::Fields(alert),
    }
}

fn non_empty(items: Vec<String>) -> Option<Vec<String>> {
    (!items.is_empty()).then_some(items)
}

/// ATT&CK tactics (`attack.defense-evasion` -> `defense-evasion`) and techniques
/// (`attack.t1562.008` -> `T1562.008`) of Sigma tags.
fn attack(tags: &[String]) -> (Vec<String>, Vec<String>) {
    let mut tactics = Vec::new();
    let mut techniques = Vec::new();
    for tag in tags {
        let Some(name) = tag.strip_prefix("attack.") else {
            continue;
        };
        // t1562.008 is a technique, g0016 a group and s0002 a software: a letter and digits.
        let mut chars = name.chars();
        let coded = chars.next().is_some() && chars.next().is_some_and(|c| c.is_ascii_digit());
        match (coded, name.starts_with('t')) {
            (true, true) => techniques.push(name.to_ascii_uppercase()),
            (true, false) => {}
            (false, _) => tactics.push(name.to_owned()),
        }
    }
    (tactics, techniques)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matched() -> RuleMatch {
        RuleMatch {
            id: "r-1".into(),
            title: "CloudTrail stopped".into(),
            level: "high".into(),
            tags: vec![
                "attack.defense-evasion".into(),
                "attack.t1562.008".into(),
                "cis".into(),
            ],
        }
    }

    #[test]
    fn alerts_carry_rule_threat_origin_and_a_stable_id() {
        let Value::Object(doc) = json!({
            "@timestamp": "2026-12-01T10:00:00.000Z", "@log_s3key": "AWSLogs/k",
            "cloud": {"account": {"id": "111122223333"}, "region": "eu-west-1"},
            "user": {"name": "alice"}, "source": {"ip": "203.0.113.10"},
            "eventName": "StopLogging"
        }) else {
            unreachable!()
        };
        let a = alert_document(
            &matched(),
            "log-aws-cloudtrail-2026-12",
            "e1",
            "cloudtrail",
            &doc,
            "2026-12-01T10:05:00.000Z",
        );
        assert_eq!(a.index, "alert-2026-12");
        let Source::Fields(f) = &a.source else {
            panic!("fields")
        };
        let v = Value::Object(f.clone());
        assert_eq!(v["event"]["kind"], json!("alert"));
        assert_eq!(v["event"]["severity"], json!(73));
        assert_eq!(v["rule"]["id"], json!("r-1"));
        assert_eq!(v["threat"]["tactic"]["name"], json!(["defense-evasion"]));
        assert_eq!(v["threat"]["technique"]["id"], json!(["T1562.008"]));
        assert_eq!(
            v["alert"]["source"],
            json!({"index": "log-aws-cloudtrail-2026-12", "id": "e1", "log_type": "cloudtrail", "s3_key": "AWSLogs/k"})
        );
        assert_eq!(
            (v["user"]["name"].clone(), v["source"]["ip"].clone()),
            (json!("alice"), json!("203.0.113.10"))
        );
        assert_eq!(v.get("eventName"), None);
        let again = alert_document(
            &matched(),
            "log-aws-cloudtrail-2026-12",
            "e1",
            "cloudtrail",
            &doc,
            "later",
        );
        assert_eq!(again.id, a.id);
        let other = alert_document(
            &matched(),
            "log-aws-cloudtrail-2026-12",
            "e2",
            "cloudtrail",
            &doc,
            "later",
        );
        assert_ne!(other.id, a.id);
    }
}
