//! The rules of one log type split by the value of a field most of them require, so a
//! document meets only the rules that can match it: a CloudTrail `StartInstances` event is
//! never matched against the twenty rules that each name other `eventName`s.
//!
//! A rule *requires* a field when every way its condition can be true includes an exact match
//! of that field against plain values (Sigma's default, no wildcard); those values, lowercased
//! since Sigma compares without case, are its keys. From the rules as rsigma lowers them, of
//! the fields at least half the rules require, the one with the most distinct values becomes
//! the dispatch field; each of its values gets an
//! engine with the rules that require it plus the rules that require nothing of it. A document
//! whose field is missing or not a string goes to the engine of every rule. The engines are
//! rsigma's: this only chooses which one a document meets, never whether a rule matches.

use rsigma_eval::{CompiledRule, Engine, Event, EventValue, JsonEvent};
use rsigma_ir::{IrCondition, IrDetection, IrMatcher, IrStrOp, LowerOptions, lower_rule};
use rsigma_parser::{Quantifier, SelectorPattern, SigmaRule};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

type Values = BTreeSet<String>;

/// The rules of one log type, ready to evaluate.
pub struct Dispatch {
    /// The field documents are dispatched on, split at its dots.
    field: Option<Vec<String>>,
    by_value: HashMap<String, Engine>,
    /// The rules that require nothing of the field: for a value no rule names.
    others: Engine,
    /// Every rule: for a document without a string in the field.
    all: Engine,
    /// The fields the rules read; `None` when that cannot be told (keyword searches, which
    /// read every value, or a rule that does not lower).
    reads: Option<BTreeSet<String>>,
}

impl Dispatch {
    /// The engines of `rules` (each as parsed and compiled).
    pub fn new(rules: &[(&SigmaRule, &CompiledRule)]) -> Self {
        let lowered: Vec<Option<rsigma_ir::IrRule>> = rules
            .iter()
            .map(|(rule, _)| lower_rule(rule, &LowerOptions::default()).ok())
            .collect();
        let mut fields: BTreeSet<String> = BTreeSet::new();
        for ir in lowered.iter().flatten() {
            for detection in ir.detections.values() {
                collect_fields(detection, &mut fields);
            }
        }
        let mut reads = Some(BTreeSet::new());
        for ir in &lowered {
            match (ir, &mut reads) {
                (Some(ir), Some(read)) => {
                    if !ir.detections.values().all(|d| read_fields(d, read)) {
                        reads = None;
                    }
                }
                _ => reads = None,
            }
        }
        // Of the fields at least half the rules require, the one with the most
        // distinct values: it splits the rules finest (CloudTrail's `eventName` rather than
        // `eventSource`, which the engines still use to prune within a split).
        let mut best: Option<(String, Vec<Option<Values>>, usize)> = None;
        for field in fields {
            let required: Vec<Option<Values>> = lowered
                .iter()
                .map(|ir| ir.as_ref().and_then(|ir| rule_requires(ir, &field)))
                .collect();
            let requiring = required.iter().filter(|r| r.is_some()).count();
            let distinct = required
                .iter()
                .flatten()
                .flatten()
                .collect::<BTreeSet<_>>()
                .len();
            if requiring * 2 < rules.len() || distinct < 2 {
                continue;
            }
            if best.as_ref().is_none_or(|(_, _, d)| distinct > *d) {
                best = Some((field, required, distinct));
            }
        }
        let mut all = Engine::new();
        for (_, compiled) in rules {
            all.add_compiled_rule((*compiled).clone());
        }
        let Some((field, required, _)) = best else {
            return Self {
                field: None,
                by_value: HashMap::new(),
                others: Engine::new(),
                all,
                reads,
            };
        };
        let mut others = Engine::new();
        let mut per_value: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (n, values) in required.iter().enumerate() {
            match values {
                None => others.add_compiled_rule(rules[n].1.clone()),
                Some(values) => {
                    for v in values {
                        per_value.entry(v.clone()).or_default().push(n);
                    }
                }
            }
        }
        let by_value = per_value
            .into_iter()
            .map(|(value, indices)| {
                let mut engine = Engine::new();
                for (n, values) in required.iter().enumerate() {
                    if values.is_none() || indices.contains(&n) {
                        engine.add_compiled_rule(rules[n].1.clone());
                    }
                }
                (value, engine)
            })
            .collect();
        Self {
            field: Some(field.split('.').map(str::to_owned).collect()),
            by_value,
            others,
            all,
            reads,
        }
    }

    /// Whether a rule may read a field for which `read` says yes (always, when the rules'
    /// fields cannot be told).
    pub fn may_read(&self, read: impl Fn(&str) -> bool) -> bool {
        self.reads
            .as_ref()
            .is_none_or(|fields| fields.iter().any(|f| read(f)))
    }

    /// The engine a document meets.
    fn engine_for(&self, doc: &Value) -> &Engine {
        let Some(path) = &self.field else {
            return &self.all;
        };
        let value = path.iter().try_fold(doc, |v, key| v.get(key));
        let Some(Value::String(text)) = value else {
            return &self.all;
        };
        let mut lower = [0u8; 64];
        let key = if text.len() <= lower.len() && text.is_ascii() {
            let bytes = &mut lower[..text.len()];
            bytes.copy_from_slice(text.as_bytes());
            bytes.make_ascii_lowercase();
            std::str::from_utf8(bytes)
                .ok()
                .map(std::borrow::Cow::Borrowed)
        } else {
            Some(std::borrow::Cow::Owned(text.to_lowercase()))
        };
        key.and_then(|k| self.by_value.get(k.as_ref()))
            .unwrap_or(&self.others)
    }

    /// The results of the rules that can match `doc`.
    pub fn evaluate(&self, doc: &Value) -> Vec<rsigma_eval::EvaluationResult> {
        let event = Lean {
            doc,
            json: JsonEvent::borrow(doc),
        };
        self.engine_for(doc).evaluate(&event)
    }

    /// How many engines the rules were split into (for `loader rules list`).
    pub fn describe(&self) -> Option<(String, usize)> {
        self.field
            .as_ref()
            .map(|f| (f.join("."), self.by_value.len()))
    }
}

/// A document as the engines read it: rsigma's JSON event, with a path walk that allocates
/// nothing for the plain `a.b.c` paths rules use (arrays and escaped paths take rsigma's own
/// walk), and no list of top-level keys, so an engine of a few rules probes its own few
/// fields rather than every key of a large document.
struct Lean<'a> {
    doc: &'a Value,
    json: JsonEvent<'a>,
}

impl Event for Lean<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        let Value::Object(root) = self.doc else {
            return self.json.get_field(path);
        };
        if !path.contains('.') {
            return root.get(path).map(EventValue::from);
        }
        if path.contains(['[', '\\']) {
            return self.json.get_field(path);
        }
        // The nested path first: loader documents have no dotted keys; a document that has
        // one (a user's type) is still read as rsigma reads it when the path is not nested.
        let mut value = self.doc;
        for segment in path.split('.') {
            value = match value {
                Value::Object(map) => match map.get(segment) {
                    Some(v) => v,
                    None => return root.get(path).map(EventValue::from),
                },
                Value::Array(_) => return self.json.get_field(path),
                _ => return root.get(path).map(EventValue::from),
            };
        }
        Some(EventValue::from(value))
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.json.any_string_value(pred)
    }

    fn all_string_values(&self) -> Vec<std::borrow::Cow<'_, str>> {
        self.json.all_string_values()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.json.visit_string_values(visit)
    }

    fn to_json(&self) -> Value {
        self.json.to_json()
    }
}

/// Every field a detection names.
fn collect_fields(detection: &IrDetection, out: &mut BTreeSet<String>) {
    match detection {
        IrDetection::AllOf(items) => out.extend(items.iter().filter_map(|i| i.field.clone())),
        IrDetection::AnyOf(ds) | IrDetection::And(ds) => {
            for d in ds {
                collect_fields(d, out);
            }
        }
        IrDetection::Conditional { named, .. } => {
            for d in named.values() {
                collect_fields(d, out);
            }
        }
        IrDetection::Keywords(_) | IrDetection::ArrayMatch { .. } => {}
    }
}

/// Adds every field a detection reads to `out`; false when it may read any (keywords, values
/// expanded from placeholders).
fn read_fields(detection: &IrDetection, out: &mut BTreeSet<String>) -> bool {
    match detection {
        IrDetection::AllOf(items) => items.iter().all(|item| {
            let Some(field) = &item.field else {
                return false;
            };
            out.insert(field.clone());
            matcher_fields(&item.matcher, out)
        }),
        IrDetection::AnyOf(ds) | IrDetection::And(ds) => ds.iter().all(|d| read_fields(d, out)),
        IrDetection::Conditional { named, .. } => named.values().all(|d| read_fields(d, out)),
        IrDetection::ArrayMatch { field, body, .. } => {
            out.insert(field.clone());
            read_fields(body, out)
        }
        IrDetection::Keywords(_) => false,
    }
}

/// The other fields a matcher compares with (`fieldref`).
fn matcher_fields(matcher: &IrMatcher, out: &mut BTreeSet<String>) -> bool {
    match matcher {
        IrMatcher::FieldRef { field, .. } => {
            out.insert(field.clone());
            true
        }
        IrMatcher::Not(inner) | IrMatcher::TimestampPart { inner, .. } => {
            matcher_fields(inner, out)
        }
        IrMatcher::AnyOf(ms) | IrMatcher::AllOf(ms) => ms.iter().all(|m| matcher_fields(m, out)),
        IrMatcher::Expand { .. } => false,
        _ => true,
    }
}

/// Union when every part requires values, else nothing.
fn all_of(parts: impl Iterator<Item = Option<Values>>) -> Option<Values> {
    let mut out = Values::new();
    let mut any = false;
    for part in parts {
        out.extend(part?);
        any = true;
    }
    any.then_some(out)
}

/// The first part that requires values (any one is necessary).
fn any_of(parts: impl Iterator<Item = Option<Values>>) -> Option<Values> {
    parts.flatten().next()
}

fn rule_requires(ir: &rsigma_ir::IrRule, field: &str) -> Option<Values> {
    all_of(
        ir.conditions
            .iter()
            .map(|c| condition_requires(c, &ir.detections, field)),
    )
}

fn condition_requires(
    c: &IrCondition,
    named: &HashMap<String, IrDetection>,
    field: &str,
) -> Option<Values> {
    match c {
        IrCondition::Detection(name) => detection_requires(named.get(name)?, field),
        IrCondition::And(cs) => any_of(cs.iter().map(|c| condition_requires(c, named, field))),
        IrCondition::Or(cs) => all_of(cs.iter().map(|c| condition_requires(c, named, field))),
        IrCondition::Not(_) => None,
        IrCondition::Selector {
            quantifier,
            pattern,
        } => {
            let chosen = named.iter().filter(|(n, _)| match pattern {
                SelectorPattern::Them => !n.starts_with('_'),
                SelectorPattern::Pattern(p) => super::selector_matches(p, n),
            });
            let parts = chosen.map(|(_, d)| detection_requires(d, field));
            match quantifier {
                Quantifier::Any | Quantifier::Count(1) => all_of(parts),
                Quantifier::All => any_of(parts),
                Quantifier::Count(_) => None,
            }
        }
    }
}

fn detection_requires(d: &IrDetection, field: &str) -> Option<Values> {
    match d {
        IrDetection::AllOf(items) => any_of(
            items
                .iter()
                .filter(|i| i.field.as_deref() == Some(field) && i.exists.is_none())
                .map(|i| matcher_requires(&i.matcher)),
        ),
        IrDetection::AnyOf(ds) => all_of(ds.iter().map(|d| detection_requires(d, field))),
        IrDetection::And(ds) => any_of(ds.iter().map(|d| detection_requires(d, field))),
        IrDetection::Conditional { named, condition } => {
            condition_requires(condition, named, field)
        }
        IrDetection::Keywords(_) | IrDetection::ArrayMatch { .. } => None,
    }
}

fn matcher_requires(m: &IrMatcher) -> Option<Values> {
    match m {
        IrMatcher::Str {
            op: IrStrOp::Exact,
            pattern,
            ..
        } => pattern
            .as_plain()
            .map(|plain| Values::from([plain.to_lowercase()])),
        IrMatcher::AnyOf(ms) => all_of(ms.iter().map(matcher_requires)),
        IrMatcher::AllOf(ms) => any_of(ms.iter().map(matcher_requires)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(texts: &[&str]) -> Vec<(SigmaRule, CompiledRule)> {
        texts
            .iter()
            .map(|t| {
                let rule = rsigma_parser::parse_sigma_yaml(t)
                    .expect("parses")
                    .rules
                    .remove(0);
                let compiled = rsigma_eval::compile_rule(&rule).expect("compiles");
                (rule, compiled)
            })
            .collect()
    }

    fn ids(results: Vec<rsigma_eval::EvaluationResult>) -> Vec<String> {
        let mut ids: Vec<String> = results
            .into_iter()
            .filter_map(|r| r.header.rule_id)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn documents_meet_the_rules_that_can_match_them_and_no_match_is_lost() {
        let texts = [
            "title: A\nid: a\nlogsource: {product: aws}\ndetection:\n  s: {eventName: [StopLogging, DeleteTrail]}\n  condition: s\n",
            "title: B\nid: b\nlogsource: {product: aws}\ndetection:\n  s1: {eventName: PutBucketPolicy}\n  s2: {eventName: PutBucketAcl, eventSource: s3.amazonaws.com}\n  condition: 1 of s*\n",
            "title: C\nid: c\nlogsource: {product: aws}\ndetection:\n  s: {userIdentity.type: Root}\n  condition: s\n",
            "title: D\nid: d\nlogsource: {product: aws}\ndetection:\n  s: {eventName: ConsoleLogin}\n  f: {eventName: ConsoleLogin, errorCode: x}\n  condition: s or f\n",
            "title: E\nid: e\nlogsource: {product: aws}\ndetection:\n  s: {eventName|startswith: Delete}\n  condition: s\n",
        ];
        let parsed = rules(&texts);
        let refs: Vec<(&SigmaRule, &CompiledRule)> = parsed.iter().map(|(r, c)| (r, c)).collect();
        let d = Dispatch::new(&refs);
        assert_eq!(d.describe(), Some(("eventName".to_owned(), 5)));
        let mut plain = Engine::new();
        for (_, c) in &parsed {
            plain.add_compiled_rule(c.clone());
        }
        for doc in [
            json!({"eventName": "StopLogging", "userIdentity": {"type": "Root"}}),
            json!({"eventName": "stoplogging"}),
            json!({"eventName": "PutBucketAcl", "eventSource": "s3.amazonaws.com"}),
            json!({"eventName": "PutBucketPolicy"}),
            json!({"eventName": "DeleteBucket", "userIdentity": {"type": "Root"}}),
            json!({"eventName": "ConsoleLogin"}),
            json!({"eventName": ["StopLogging"]}),
            json!({"userIdentity": {"type": "Root"}}),
            json!({"eventName": "DescribeInstances"}),
        ] {
            assert_eq!(
                ids(d.evaluate(&doc)),
                ids(plain.evaluate(&JsonEvent::borrow(&doc))),
                "{doc}"
            );
        }
        assert_eq!(
            ids(d.evaluate(&json!({"eventName": "DeleteTrail"}))),
            ["a", "e"]
        );
    }

    #[test]
    fn a_negated_or_wildcard_value_is_no_requirement() {
        let texts = [
            "title: N\nid: n\nlogsource: {product: aws}\ndetection:\n  s: {eventName: GetObject}\n  condition: not s\n",
            "title: W\nid: w\nlogsource: {product: aws}\ndetection:\n  s: {eventName: 'Put*'}\n  condition: s\n",
        ];
        let parsed = rules(&texts);
        let refs: Vec<(&SigmaRule, &CompiledRule)> = parsed.iter().map(|(r, c)| (r, c)).collect();
        let d = Dispatch::new(&refs);
        assert_eq!(d.describe(), None);
        assert_eq!(
            ids(d.evaluate(&json!({"eventName": "PutObject"}))),
            ["n", "w"]
        );
    }
}
