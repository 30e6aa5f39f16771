//! Correlation rules as OpenSearch Alerting monitors: what no single load can decide is
//! decided by the cluster, over every account's documents, on a schedule.
//!
//! Each correlation becomes a bucket-level monitor over the indices of its log types: the
//! documents of its counted rules in the last `timespan` (each rule, as rsigma lowers it,
//! written as a Lucene query-string query, the syntax OpenSearch Dashboards users already
//! read: [`rule_query`]), grouped by its `group-by` fields with a
//! composite aggregation, and a trigger whose condition is the correlation's:
//!
//! - `event_count`: the group's document count against the threshold;
//! - `value_count`: the distinct values of the field (a `cardinality` aggregation);
//! - `temporal` / `temporal_ordered`: every counted rule seen in the group (a `filter`
//!   aggregation each, with the threshold of a counted correlation), and for the ordered
//!   kind the last of each after the first of the one before it.
//!
//! The monitor runs every five minutes over a window of `timespan` ending now, so it sees a
//! burst that a window boundary would cut in two at the next run. Sigma matches strings
//! without case; these queries match keyword values as stored, which is how CloudTrail and the
//! loader write them. A rule the converter or this translation cannot express is named with
//! the reason and left out; the others are applied.

use super::{Correlation, RuleSet};
use crate::config::Config;
use crate::content::{Artifact, ArtifactKind};
use rsigma_ir::{
    IrCondition, IrDetection, IrDetectionItem, IrMatcher, IrNumber, IrPattern, IrPatternPart,
    IrStrOp, LowerOptions, lower_rule,
};
use rsigma_parser::{
    ConditionOperator, CorrelationCondition, CorrelationType, Quantifier, SelectorPattern,
    SigmaRule,
};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Characters the query-string syntax gives a meaning to, escaped in values.
const SPECIAL: &str = "+-=&|!(){}[]<>^\"~*?:\\/ ";

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        if SPECIAL.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A value pattern with Sigma's wildcards kept and everything else escaped, wrapped for the
/// operator (`*value*` for contains).
fn pattern(op: IrStrOp, pattern: &IrPattern) -> String {
    let mut out = String::new();
    if matches!(op, IrStrOp::Contains | IrStrOp::EndsWith) {
        out.push('*');
    }
    for part in &pattern.parts {
        match part {
            IrPatternPart::Literal(text) => escape(text, &mut out),
            IrPatternPart::WildcardMulti => out.push('*'),
            IrPatternPart::WildcardSingle => out.push('?'),
        }
    }
    if matches!(op, IrStrOp::Contains | IrStrOp::StartsWith) {
        out.push('*');
    }
    if out.is_empty() {
        out.push_str("\"\"");
    }
    out
}

fn number(n: &IrNumber) -> Result<String, String> {
    match n {
        IrNumber::Literal(v) if v.fract() == 0.0 => Ok((*v as i64).to_string()),
        IrNumber::Literal(v) => Ok(v.to_string()),
        IrNumber::DynamicSourceRef { .. } => Err("a dynamic value cannot become a query".into()),
    }
}

fn any(parts: Vec<String>) -> String {
    match parts.len() {
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => format!("({})", parts.join(" OR ")),
    }
}

fn all(parts: Vec<String>) -> String {
    match parts.len() {
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => format!("({})", parts.join(" AND ")),
    }
}

/// One matcher on `field` (none: a keyword anywhere in the document).
fn matcher(field: Option<&str>, m: &IrMatcher) -> Result<String, String> {
    let on = |value: String| match field {
        Some(f) => format!("{f}:{value}"),
        None => value,
    };
    let field_only = |what: &str| {
        field
            .map(str::to_owned)
            .ok_or_else(|| format!("{what} without a field cannot become a query"))
    };
    Ok(match m {
        IrMatcher::Str { op, pattern: p, .. } => on(pattern(*op, p)),
        IrMatcher::Regex { pattern: re, .. } => on(format!("/{}/", re.replace('/', "\\/"))),
        IrMatcher::Cidr { network } => {
            let mut value = String::new();
            escape(network, &mut value);
            on(value)
        }
        IrMatcher::NumericEq(n) => on(number(n)?),
        IrMatcher::NumericGt(n) => on(format!(">{}", number(n)?)),
        IrMatcher::NumericGte(n) => on(format!(">={}", number(n)?)),
        IrMatcher::NumericLt(n) => on(format!("<{}", number(n)?)),
        IrMatcher::NumericLte(n) => on(format!("<={}", number(n)?)),
        IrMatcher::Exists(true) => format!("_exists_:{}", field_only("exists")?),
        IrMatcher::Exists(false) | IrMatcher::Null => {
            format!("NOT _exists_:{}", field_only("null")?)
        }
        IrMatcher::BoolEq(b) => on(b.to_string()),
        IrMatcher::Not(inner) => format!("NOT {}", matcher(field, inner)?),
        IrMatcher::AnyOf(items) => any(items
            .iter()
            .map(|i| matcher(field, i))
            .collect::<Result<_, _>>()?),
        IrMatcher::AllOf(items) => all(items
            .iter()
            .map(|i| matcher(field, i))
            .collect::<Result<_, _>>()?),
        IrMatcher::Encoded { .. } => return Err("encoding modifiers cannot become a query".into()),
        IrMatcher::FieldRef { .. } => return Err("fieldref cannot become a query".into()),
        IrMatcher::Expand { .. } => return Err("expand cannot become a query".into()),
        IrMatcher::TimestampPart { .. } => {
            return Err("time-part modifiers cannot become a query".into());
        }
    })
}

fn detection_item(i: &IrDetectionItem) -> Result<String, String> {
    let field = i.field.as_deref();
    match i.exists {
        Some(true) => Ok(format!("_exists_:{}", field.unwrap_or("*"))),
        Some(false) => Ok(format!("NOT _exists_:{}", field.unwrap_or("*"))),
        None => matcher(field, &i.matcher),
    }
}

fn detection(d: &IrDetection) -> Result<String, String> {
    match d {
        IrDetection::AllOf(items) => Ok(all(items
            .iter()
            .map(detection_item)
            .collect::<Result<_, _>>()?)),
        IrDetection::AnyOf(ds) => Ok(any(ds.iter().map(detection).collect::<Result<_, _>>()?)),
        IrDetection::Keywords(m) => matcher(None, m),
        IrDetection::And(ds) => Ok(all(ds.iter().map(detection).collect::<Result<_, _>>()?)),
        IrDetection::ArrayMatch { .. } => Err("array matching cannot become a query".into()),
        IrDetection::Conditional {
            named,
            condition: c,
        } => self::condition(c, named),
    }
}

fn condition(c: &IrCondition, named: &HashMap<String, IrDetection>) -> Result<String, String> {
    match c {
        IrCondition::Detection(name) => named
            .get(name)
            .ok_or_else(|| format!("the condition names {name}, which the rule lacks"))
            .and_then(detection),
        IrCondition::And(cs) => Ok(all(cs
            .iter()
            .map(|c| condition(c, named))
            .collect::<Result<_, _>>()?)),
        IrCondition::Or(cs) => Ok(any(cs
            .iter()
            .map(|c| condition(c, named))
            .collect::<Result<_, _>>()?)),
        IrCondition::Not(inner) => Ok(format!("NOT {}", condition(inner, named)?)),
        IrCondition::Selector {
            quantifier,
            pattern: selector,
        } => {
            let mut names: Vec<&String> = named
                .keys()
                .filter(|n| match selector {
                    SelectorPattern::Them => !n.starts_with('_'),
                    SelectorPattern::Pattern(p) => super::selector_matches(p, n),
                })
                .collect();
            names.sort();
            let parts = names
                .iter()
                .map(|n| detection(&named[*n]))
                .collect::<Result<Vec<_>, _>>()?;
            match quantifier {
                Quantifier::Any | Quantifier::Count(1) => Ok(any(parts)),
                Quantifier::All => Ok(all(parts)),
                Quantifier::Count(_) => Err("`N of` selectors cannot become a query".into()),
            }
        }
    }
}

/// The query-string query of one detection rule (any of its conditions), from the rule as
/// rsigma lowers it (modifiers resolved, wildcards kept).
pub fn rule_query(rule: &SigmaRule) -> Result<String, String> {
    let ir = lower_rule(rule, &LowerOptions::default()).map_err(|e| e.to_string())?;
    let parts = ir
        .conditions
        .iter()
        .map(|c| condition(c, &ir.detections))
        .collect::<Result<Vec<_>, _>>()?;
    if parts.is_empty() {
        return Err("the rule has no condition".into());
    }
    Ok(any(parts))
}

/// Where alerts of the monitors go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorOptions {
    /// The id of an OpenSearch Notifications channel (an SNS topic, a Slack or Chime
    /// webhook...) every trigger sends to; none: alerts stay in the Alerting dashboards.
    pub channel_id: Option<String>,
    /// An SNS topic and the role OpenSearch publishes to it with: `loader setup` makes the
    /// channel [`CHANNEL_ID`] of them, and the monitors send to it.
    pub sns: Option<(String, String)>,
    /// Minutes between runs.
    pub interval_minutes: u32,
}

/// The notification channel `loader setup` makes of an SNS topic.
pub const CHANNEL_ID: &str = "org-security-logs-alerts";

impl MonitorOptions {
    /// The channel the monitors send to: the one given, or the one made of the topic.
    pub fn destination(&self) -> Option<&str> {
        self.channel_id
            .as_deref()
            .or_else(|| self.sns.as_ref().map(|_| CHANNEL_ID))
    }
}

/// The Notifications channel of the SNS topic of `options`, when one is given.
pub fn channel_artifact(options: &MonitorOptions) -> Option<Artifact> {
    let (topic, role) = options.sns.as_ref()?;
    Some(Artifact {
        kind: ArtifactKind::NotificationChannel,
        name: CHANNEL_ID.to_owned(),
        body: json!({
            "config_id": CHANNEL_ID,
            "config": {
                "name": "org-security-logs alert topic",
                "description": "Alerts of the threshold and sequence detection rules",
                "config_type": "sns",
                "is_enabled": true,
                "sns": {"topic_arn": topic, "role_arn": role}
            }
        }),
        existing: None,
    })
}

/// A counted item of a temporal correlation: its query and how many it takes.
struct Item {
    query: String,
    at_least: u64,
}

/// The threshold `>= n` of a correlation condition (`gte`, or `gt` n-1); others are not
/// something a bucket selector of counts can say simply.
fn at_least(condition: &CorrelationCondition) -> Result<u64, String> {
    let CorrelationCondition::Threshold { predicates, .. } = condition else {
        return Err("an extended condition cannot become a monitor".into());
    };
    match predicates.as_slice() {
        [(ConditionOperator::Gte, n)] => Ok(*n),
        [(ConditionOperator::Gt, n)] => Ok(n + 1),
        _ => Err("only a gte or gt condition can become a monitor".into()),
    }
}

/// The query of what `reference` (a counted rule, or a counted correlation of the same
/// groups) matches, and how many it takes.
fn item(set: &RuleSet, reference: &str, group_by: &[String]) -> Result<Item, String> {
    if let Some(rule) = set.base_rule(reference) {
        return Ok(Item {
            query: rule_query(rule).map_err(|e| format!("rule {reference}: {e}"))?,
            at_least: 1,
        });
    }
    let Some(inner) = set.correlation(reference) else {
        return Err(format!("{reference} is not loaded"));
    };
    if inner.rule.correlation_type != CorrelationType::EventCount || inner.rule.group_by != group_by
    {
        return Err(format!(
            "{reference}: only an event_count over the same group-by can be counted inside a monitor"
        ));
    }
    let queries = inner
        .rule
        .rules
        .iter()
        .map(|r| item(set, r, group_by).map(|i| format!("({})", i.query)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Item {
        query: queries.join(" OR "),
        at_least: at_least(&inner.rule.condition)?,
    })
}

/// Alerting's severities: 1 (highest) to 5.
fn severity(level: &str) -> &'static str {
    match level {
        "critical" => "1",
        "high" => "2",
        "medium" => "3",
        "low" => "4",
        _ => "5",
    }
}

/// The monitor name of a correlation (how `loader setup` finds it again).
pub fn monitor_name(correlation: &Correlation) -> String {
    format!("sigma {}: {}", correlation.info.id, correlation.info.title)
}

/// The bucket-level monitor of one correlation.
pub fn monitor(
    set: &RuleSet,
    correlation: &Correlation,
    indices: &[String],
    options: &MonitorOptions,
) -> Result<Value, String> {
    let rule = &correlation.rule;
    if rule.group_by.is_empty() {
        return Err("a correlation without group-by cannot become a bucket monitor".into());
    }
    let items = rule
        .rules
        .iter()
        .map(|r| item(set, r, &rule.group_by))
        .collect::<Result<Vec<_>, _>>()?;
    let window = format!("{}s", rule.timespan.seconds);
    let any: Vec<String> = items.iter().map(|i| format!("({})", i.query)).collect();
    let sources: Vec<Value> = rule
        .group_by
        .iter()
        .map(|f| json!({ f.as_str(): {"terms": {"field": f}} }))
        .collect();
    let mut sub_aggs = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    let script = match rule.correlation_type {
        CorrelationType::EventCount => {
            let n = at_least(&rule.condition)?;
            paths.insert("count".into(), json!("_count"));
            format!("params.count >= {n}")
        }
        CorrelationType::ValueCount => {
            let n = at_least(&rule.condition)?;
            let CorrelationCondition::Threshold {
                field: Some(fields),
                ..
            } = &rule.condition
            else {
                return Err("value_count needs a field".into());
            };
            let [field] = fields.as_slice() else {
                return Err("value_count over several fields cannot become a monitor".into());
            };
            sub_aggs.insert("distinct".into(), json!({"cardinality": {"field": field}}));
            paths.insert("distinct".into(), json!("distinct"));
            format!("params.distinct >= {n}")
        }
        CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
            let mut terms = Vec::new();
            for (n, i) in items.iter().enumerate() {
                sub_aggs.insert(
                    format!("r{n}"),
                    json!({
                        "filter": {"query_string": {"query": i.query}},
                        "aggs": {
                            "first": {"min": {"field": "@timestamp"}},
                            "last": {"max": {"field": "@timestamp"}}
                        }
                    }),
                );
                paths.insert(format!("r{n}"), json!(format!("r{n}._count")));
                terms.push(format!("params.r{n} >= {}", i.at_least));
                if rule.correlation_type == CorrelationType::TemporalOrdered && n > 0 {
                    paths.insert(
                        format!("r{}_first", n - 1),
                        json!(format!("r{}>first", n - 1)),
                    );
                    paths.insert(format!("r{n}_last"), json!(format!("r{n}>last")));
                    terms.push(format!("params.r{n}_last > params.r{}_first", n - 1));
                }
            }
            terms.join(" && ")
        }
        other => {
            return Err(format!(
                "a {} correlation cannot become a monitor",
                other.as_str()
            ));
        }
    };
    let mut composite = json!({
        "composite": {"sources": sources, "size": 500}
    });
    if !sub_aggs.is_empty() {
        composite["aggs"] = Value::Object(sub_aggs);
    }
    let name = monitor_name(correlation);
    let mut trigger = json!({
        "bucket_level_trigger": {
            "name": correlation.info.title,
            "severity": severity(&correlation.info.level),
            "condition": {
                "buckets_path": paths,
                "parent_bucket_path": "groups",
                "script": {"source": script, "lang": "painless"}
            },
            "actions": []
        }
    });
    if let Some(channel) = options.destination() {
        let group_fields: Vec<String> = rule
            .group_by
            .iter()
            .map(|f| format!("{f}={{{{key.{f}}}}}"))
            .collect();
        trigger["bucket_level_trigger"]["actions"] = json!([{
            "name": "notify",
            "destination_id": channel,
            "subject_template": {"source": format!("[{}] {}", correlation.info.level, correlation.info.title), "lang": "mustache"},
            "message_template": {
                "source": format!(
                    "{} ({}, rule {})\n{{{{#ctx.newAlerts}}}}{}: {{{{doc_count}}}} documents in the last {window}\n{{{{/ctx.newAlerts}}}}",
                    correlation.info.title,
                    correlation.info.level,
                    correlation.info.id,
                    group_fields.join(" ").replace("key.", "bucket_keys.")
                ),
                "lang": "mustache"
            },
            "action_execution_policy": {"action_execution_scope": {"per_alert": {"actionable_alerts": ["NEW"]}}}
        }]);
    }
    Ok(json!({
        "type": "monitor",
        "monitor_type": "bucket_level_monitor",
        "name": name,
        "enabled": true,
        "schedule": {"period": {"interval": options.interval_minutes.max(1), "unit": "MINUTES"}},
        "inputs": [{"search": {
            "indices": indices,
            "query": {
                "size": 0,
                "query": {"bool": {"filter": [
                    {"range": {"@timestamp": {"gte": format!("{{{{period_end}}}}||-{window}"), "lte": "{{period_end}}", "format": "epoch_millis"}}},
                    {"query_string": {"query": any.join(" OR ")}}
                ]}},
                "aggregations": {"groups": composite}
            }
        }}],
        "triggers": [trigger]
    }))
}

/// The index patterns of log types (`log-aws-cloudtrail-*`).
fn indices_of(config: &Config, log_types: &[String]) -> Vec<String> {
    let mut out: Vec<String> = log_types
        .iter()
        .filter_map(|t| config.get(t))
        .map(|t| format!("{}-*", crate::content::alias_of(t)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The monitors of every correlation of `set`, and the correlations that cannot become one
/// (id, reason).
pub fn monitor_artifacts(
    set: &RuleSet,
    config: &Config,
    options: &MonitorOptions,
) -> (Vec<Artifact>, Vec<(String, String)>) {
    let mut artifacts = Vec::new();
    let mut refused = Vec::new();
    for correlation in set.correlations() {
        let indices = indices_of(config, &correlation.info.log_types);
        match monitor(set, correlation, &indices, options) {
            Ok(body) => artifacts.push(Artifact {
                kind: ArtifactKind::Monitor,
                name: monitor_name(correlation),
                body,
                existing: None,
            }),
            Err(reason) => refused.push((correlation.info.id.clone(), reason)),
        }
    }
    (artifacts, refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::bundled_files;

    fn bundled() -> (Config, RuleSet) {
        let config = Config::builtin().expect("config");
        let files = bundled_files();
        let set = RuleSet::build(&config, files.iter().map(|(f, t)| (f.as_str(), *t)), &[]);
        (config, set)
    }

    #[test]
    fn rules_become_query_string_queries() {
        let rule = rsigma_parser::parse_sigma_yaml(
            "title: T\nid: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s:\n    eventSource: s3.amazonaws.com\n    eventName|startswith: [Put, Delete]\n    userIdentity.arn|contains: 'role/ci runner'\n  f:\n    errorCode|exists: true\n  condition: s and not f\n",
        )
        .expect("parses")
        .rules
        .remove(0);
        let q = rule_query(&rule).expect("converts");
        assert!(q.contains("eventSource:s3.amazonaws.com"), "{q}");
        assert!(q.contains("eventName:Put*"), "{q}");
        assert!(q.contains("eventName:Delete*"), "{q}");
        assert!(q.contains("userIdentity.arn:*role\\/ci\\ runner*"), "{q}");
        assert!(q.contains("NOT _exists_:errorCode"), "{q}");
    }

    #[test]
    fn every_bundled_correlation_becomes_a_monitor() {
        let (config, set) = bundled();
        let options = MonitorOptions {
            channel_id: Some("alerts-channel".into()),
            sns: None,
            interval_minutes: 5,
        };
        let (monitors, refused) = monitor_artifacts(&set, &config, &options);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(monitors.len(), set.correlations().len());
        let burst = monitors
            .iter()
            .find(|m| m.name.contains("ebf2aff0"))
            .expect("burst monitor");
        let search = &burst.body["inputs"][0]["search"];
        assert_eq!(search["indices"], json!(["log-aws-cloudtrail-*"]));
        let filter = &search["query"]["query"]["bool"]["filter"];
        assert_eq!(
            filter[0]["range"]["@timestamp"]["gte"],
            json!("{{period_end}}||-600s")
        );
        assert_eq!(
            search["query"]["aggregations"]["groups"]["composite"]["sources"],
            json!([{"userIdentity.arn": {"terms": {"field": "userIdentity.arn"}}}])
        );
        let trigger = &burst.body["triggers"][0]["bucket_level_trigger"];
        assert_eq!(
            trigger["condition"]["script"]["source"],
            json!("params.count >= 20")
        );
        assert_eq!(trigger["severity"], json!("2"));
        assert_eq!(
            trigger["actions"][0]["destination_id"],
            json!("alerts-channel")
        );

        // The sequence: the brute force counted inside, then a success, in that order.
        let after = monitors
            .iter()
            .find(|m| m.name.contains("abecbdab"))
            .expect("success-after-failures monitor");
        let search = &after.body["inputs"][0]["search"];
        assert_eq!(search["indices"], json!(["log-linux-secure-*"]));
        let script =
            after.body["triggers"][0]["bucket_level_trigger"]["condition"]["script"]["source"]
                .as_str()
                .expect("script");
        assert_eq!(
            script,
            "params.r0 >= 10 && params.r1 >= 1 && params.r1_last > params.r0_first"
        );
    }

    #[test]
    fn what_cannot_be_a_monitor_is_named_with_the_reason() {
        let config = Config::builtin().expect("config");
        let text = "title: B\nname: b\nid: t-b\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventName: X}\n  condition: s\n---\ntitle: Avg\nid: t-avg\ncorrelation:\n  type: value_sum\n  rules: [b]\n  group-by: [sourceIPAddress]\n  timespan: 5m\n  condition: {gte: 3, field: bytes}\n";
        let set = RuleSet::build(&config, [("x.yml", text)], &[]);
        let (monitors, refused) = monitor_artifacts(&set, &config, &MonitorOptions::default());
        assert!(monitors.is_empty());
        assert_eq!(refused[0].0, "t-avg");
        assert!(refused[0].1.contains("value_sum"), "{refused:?}");
    }
}
