//! Detection rules in the Sigma format, evaluated on every document as it is loaded.
//!
//! Rules are YAML files (`loader/rules/` is bundled into the binary; a team adds a folder of
//! its own, a checkout of SigmaHQ's `rules/cloud/aws/` for example, unchanged). They are parsed
//! and compiled once by the `rsigma` engine (chosen over `sigma-rust` because it matches lists
//! and nested objects as CloudTrail has them, compares numbers given as strings as the Sigma
//! specification asks, supports correlation rules, and evaluated a rule set 3 to 4 times
//! faster in a comparison on CloudTrail-shaped events). A rule applies to the log types its
//! `logsource` names ([`logsource::log_types`]); one engine per log type holds only those, so a
//! document is matched against its own type's rules alone.
//!
//! Thresholds and sequences (N events in a window, one event after others) are Sigma
//! correlation rules over named base rules. A base rule a correlation counts does not alert
//! on its own (Sigma's `generate: false`, the default); the correlation is decided where the
//! whole stream is seen: by OpenSearch Alerting monitors that `loader setup` makes of it
//! ([`monitors`]), and by `loader detect` over its whole input ([`correlate`]).
//!
//! A rule that does not parse or compile, or whose logsource fits no log type, is reported
//! with its file, id and reason ([`RuleProblem`]) and left out; the others load.

pub mod alert;
pub mod correlate;
pub mod dispatch;
pub mod logsource;
pub mod monitors;
pub mod testing;

use crate::config::Config;
use include_dir::{Dir, include_dir};
use rsigma_eval::{CompiledRule, Engine, JsonEvent};
use rsigma_parser::{CorrelationRule, SigmaRule};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

static BUNDLED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/rules");

/// A rule that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    pub file: String,
    /// The rule's id or title, when the file got that far.
    pub rule: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Some(rule) => write!(f, "{}: rule {rule}: {}", self.file, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

/// How a rule is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// On each document as it loads.
    Event,
    /// Counted by a correlation; no alert of its own.
    Counted,
    /// A correlation (`event_count`, `temporal_ordered`, ...): OpenSearch monitors and
    /// `loader detect`.
    Correlation(String),
}

impl RuleKind {
    pub fn label(&self) -> &str {
        match self {
            RuleKind::Event => "event",
            RuleKind::Counted => "counted",
            RuleKind::Correlation(t) => t,
        }
    }
}

/// A loaded rule, as `loader rules list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    pub level: String,
    pub tags: Vec<String>,
    /// The log types it is evaluated on.
    pub log_types: Vec<String>,
    pub file: String,
    pub kind: RuleKind,
}

/// A base rule as parsed and compiled, kept until the set is complete (whether a correlation
/// counts it decides where it runs).
struct Parsed {
    info: RuleInfo,
    rule: SigmaRule,
    compiled: CompiledRule,
}

/// A correlation rule and the file it came from.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub info: RuleInfo,
    pub rule: CorrelationRule,
}

/// A rule that matched a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub id: String,
    pub title: String,
    pub level: String,
    pub tags: Vec<String>,
}

/// The compiled rules, by log type.
#[derive(Default)]
pub struct RuleSet {
    engines: BTreeMap<String, dispatch::Dispatch>,
    /// The rules correlations count, by log type: which documents a correlation needs.
    counted_engines: BTreeMap<String, Engine>,
    rules: Vec<RuleInfo>,
    problems: Vec<RuleProblem>,
    /// Every base rule (evaluated on each document or counted), as parsed.
    base_rules: Vec<(RuleInfo, SigmaRule)>,
    correlations: Vec<Correlation>,
    /// While building: parsed, not yet placed.
    pending: Vec<Parsed>,
    pending_correlations: Vec<(String, CorrelationRule)>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("problems", &self.problems)
            .finish()
    }
}

/// The bundled files whose path `wanted` accepts, as (`rules/...` path, text), by path.
fn bundled(wanted: fn(&str) -> bool) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let mut dirs = vec![&BUNDLED];
    while let Some(dir) = dirs.pop() {
        dirs.extend(dir.dirs());
        for file in dir.files() {
            let name = file.path().to_string_lossy();
            if let (true, Some(text)) = (wanted(&name), file.contents_utf8()) {
                out.push((format!("rules/{name}"), text));
            }
        }
    }
    out.sort();
    out
}

/// The bundled rule files (`*.yml`, `*.yaml`).
pub fn bundled_files() -> Vec<(String, &'static str)> {
    bundled(|name| name.ends_with(".yml") || name.ends_with(".yaml"))
}

/// The bundled test events of the rules (`*.tests.json`).
pub fn bundled_tests() -> Vec<(String, &'static str)> {
    bundled(|name| name.ends_with(".tests.json"))
}

impl RuleSet {
    /// Compiles the rules of `files` ((name, YAML text)) for the types of `config`, leaving out
    /// the ids in `disabled`.
    pub fn build<'a>(
        config: &Config,
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
        disabled: &[String],
    ) -> Self {
        let mut set = RuleSet::default();
        for (file, text) in files {
            set.add_file(config, file, text, disabled);
        }
        set.place(disabled);
        set
    }

    /// Places the parsed rules once every file is read: correlations whose rules all exist
    /// are kept, the base rules they count leave the per-document engines.
    fn place(&mut self, disabled: &[String]) {
        let pending = std::mem::take(&mut self.pending);
        let mut correlations = std::mem::take(&mut self.pending_correlations);
        // (name or id) -> log types, of base rules and of the correlations placed so far.
        let mut known: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in &pending {
            known.insert(p.info.id.clone(), p.info.log_types.clone());
            if let Some(name) = &p.rule.name {
                known.insert(name.clone(), p.info.log_types.clone());
            }
        }
        // Correlations may count other correlations: place them until none is left that can be.
        let mut counted: BTreeSet<String> = BTreeSet::new();
        loop {
            let before = correlations.len();
            let mut waiting = Vec::new();
            for (file, rule) in correlations {
                if rule.rules.iter().all(|r| known.contains_key(r)) {
                    let mut types: Vec<String> = rule
                        .rules
                        .iter()
                        .flat_map(|r| known.get(r).cloned().unwrap_or_default())
                        .collect();
                    types.sort();
                    types.dedup();
                    let info = RuleInfo {
                        id: rule.id.clone().unwrap_or_default(),
                        title: rule.title.clone(),
                        level: level_name(rule.level.as_ref()),
                        tags: rule.tags.clone(),
                        log_types: types.clone(),
                        file,
                        kind: RuleKind::Correlation(rule.correlation_type.as_str().to_owned()),
                    };
                    known.insert(info.id.clone(), types.clone());
                    if let Some(name) = &rule.name {
                        known.insert(name.clone(), types);
                    }
                    if !rule.generate {
                        counted.extend(rule.rules.iter().cloned());
                    }
                    self.correlations.push(Correlation { info, rule });
                } else {
                    waiting.push((file, rule));
                }
            }
            correlations = waiting;
            if correlations.is_empty() || correlations.len() == before {
                break;
            }
        }
        for (file, rule) in correlations {
            let missing: Vec<&str> = rule
                .rules
                .iter()
                .filter(|r| !known.contains_key(*r))
                .map(String::as_str)
                .collect();
            let id = rule.id.clone().unwrap_or_else(|| rule.title.clone());
            let disabled_hint = if missing.iter().any(|m| disabled.iter().any(|d| d == m)) {
                " (disabled)"
            } else {
                ""
            };
            self.problems.push(RuleProblem {
                file,
                rule: Some(id),
                reason: format!(
                    "counts rules that are not loaded{disabled_hint}: {}",
                    missing.join(", ")
                ),
            });
        }
        let mut pending = pending;
        for p in &mut pending {
            let is_counted = counted.contains(&p.info.id)
                || p.rule.name.as_ref().is_some_and(|n| counted.contains(n));
            if is_counted {
                p.info.kind = RuleKind::Counted;
                for t in &p.info.log_types {
                    self.counted_engines
                        .entry(t.clone())
                        .or_default()
                        .add_compiled_rule(p.compiled.clone());
                }
            }
            self.rules.push(p.info.clone());
        }
        let mut per_type: BTreeMap<&str, Vec<(&SigmaRule, &CompiledRule)>> = BTreeMap::new();
        for p in pending.iter().filter(|p| p.info.kind == RuleKind::Event) {
            for t in &p.info.log_types {
                per_type.entry(t).or_default().push((&p.rule, &p.compiled));
            }
        }
        for (log_type, rules) in per_type {
            self.engines
                .insert(log_type.to_owned(), dispatch::Dispatch::new(&rules));
        }
        self.base_rules
            .extend(pending.into_iter().map(|p| (p.info, p.rule)));
        self.rules
            .extend(self.correlations.iter().map(|c| c.info.clone()));
    }

    /// The correlation rules (thresholds and sequences).
    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations
    }

    /// The base rule or correlation named or identified by `reference`.
    pub fn base_rule(&self, reference: &str) -> Option<&SigmaRule> {
        self.base_rules
            .iter()
            .find(|(info, rule)| info.id == reference || rule.name.as_deref() == Some(reference))
            .map(|(_, rule)| rule)
    }

    /// The correlation named or identified by `reference`.
    pub fn correlation(&self, reference: &str) -> Option<&Correlation> {
        self.correlations
            .iter()
            .find(|c| c.info.id == reference || c.rule.name.as_deref() == Some(reference))
    }

    /// The bundled pack and `user` files, without the ids of `disabled`; each rule left out is
    /// logged as a warning naming its file, id and reason.
    pub fn with_bundled(config: &Config, user: &[(String, String)], disabled: &[String]) -> Self {
        let bundled = bundled_files();
        let files = bundled
            .iter()
            .map(|(f, t)| (f.as_str(), *t))
            .chain(user.iter().map(|(f, t)| (f.as_str(), t.as_str())));
        let set = Self::build(config, files, disabled);
        for problem in set.problems() {
            tracing::warn!("rule left out: {problem}");
        }
        set
    }

    fn add_file(&mut self, config: &Config, file: &str, text: &str, disabled: &[String]) {
        let problem = |rule: Option<String>, reason: String| RuleProblem {
            file: file.to_owned(),
            rule,
            reason,
        };
        let collection = match rsigma_parser::parse_sigma_yaml(text) {
            Ok(c) => c,
            Err(e) => {
                self.problems.push(problem(None, e.to_string()));
                return;
            }
        };
        for error in &collection.errors {
            self.problems.push(problem(None, error.clone()));
        }
        for correlation in &collection.correlations {
            let name = correlation
                .id
                .clone()
                .unwrap_or_else(|| correlation.title.clone());
            if disabled.contains(&name) {
                continue;
            }
            if correlation.id.is_none() {
                self.problems.push(problem(
                    Some(name),
                    "has no id: alerts are named by it".into(),
                ));
                continue;
            }
            if self.is_taken(&name) {
                self.problems.push(problem(
                    Some(name),
                    "an earlier rule has the same id".into(),
                ));
                continue;
            }
            self.pending_correlations
                .push((file.to_owned(), correlation.clone()));
        }
        for rule in &collection.rules {
            let name = rule.id.clone().unwrap_or_else(|| rule.title.clone());
            if disabled.contains(&name) {
                continue;
            }
            let Some(id) = rule.id.clone() else {
                self.problems.push(problem(
                    Some(name),
                    "has no id: alerts are named by it".into(),
                ));
                continue;
            };
            if self.is_taken(&id) {
                self.problems
                    .push(problem(Some(id), "an earlier rule has the same id".into()));
                continue;
            }
            let types = logsource::log_types(&rule.logsource, config);
            if types.is_empty() {
                self.problems.push(problem(
                    Some(id),
                    format!(
                        "its logsource ({}) fits no log type",
                        logsource::describe(&rule.logsource)
                    ),
                ));
                continue;
            }
            let compiled = match rsigma_eval::compile_rule(rule) {
                Ok(c) => c,
                Err(e) => {
                    self.problems.push(problem(Some(id), e.to_string()));
                    continue;
                }
            };
            self.pending.push(Parsed {
                info: RuleInfo {
                    id,
                    title: rule.title.clone(),
                    level: level_name(rule.level.as_ref()),
                    tags: rule.tags.clone(),
                    log_types: types,
                    file: file.to_owned(),
                    kind: RuleKind::Event,
                },
                rule: rule.clone(),
                compiled,
            });
        }
    }

    fn is_taken(&self, id: &str) -> bool {
        self.pending.iter().any(|p| p.info.id == id)
            || self
                .pending_correlations
                .iter()
                .any(|(_, c)| c.id.as_deref() == Some(id))
    }

    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    pub fn problems(&self) -> &[RuleProblem] {
        &self.problems
    }

    /// How many single-event rules each document of `log_type` is matched against.
    pub fn event_rules_of(&self, log_type: &str) -> usize {
        self.rules
            .iter()
            .filter(|r| r.kind == RuleKind::Event && r.log_types.iter().any(|t| t == log_type))
            .count()
    }

    /// Whether any rule applies to documents of `log_type`.
    pub fn applies_to(&self, log_type: &str) -> bool {
        self.engines.contains_key(log_type)
    }

    /// Whether a rule a correlation counts matches `doc` (a document `loader detect` keeps
    /// for the correlations).
    pub fn is_counted(&self, log_type: &str, doc: &Value) -> bool {
        self.counted_engines
            .get(log_type)
            .is_some_and(|engine| !engine.evaluate(&JsonEvent::borrow(doc)).is_empty())
    }

    /// Whether any correlation counts documents at all.
    pub fn counts_any(&self) -> bool {
        !self.counted_engines.is_empty()
    }

    /// The rules of `log_type` that match `doc`.
    pub fn evaluate(&self, log_type: &str, doc: &Value) -> Vec<RuleMatch> {
        self.engine(log_type)
            .map(|e| e.matches(doc))
            .unwrap_or_default()
    }

    /// The single-event rules of `log_type`, when it has any.
    pub fn engine(&self, log_type: &str) -> Option<&dispatch::Dispatch> {
        self.engines.get(log_type)
    }
}

impl dispatch::Dispatch {
    /// The rules that match `doc`.
    pub fn matches(&self, doc: &Value) -> Vec<RuleMatch> {
        self.evaluate(doc)
            .into_iter()
            .filter(|r| r.is_detection())
            .map(|r| RuleMatch {
                id: r.header.rule_id.unwrap_or_default(),
                title: r.header.rule_title,
                level: level_name(r.header.level.as_ref()),
                tags: r.header.tags,
            })
            .collect()
    }
}

/// Whether a detection name matches a condition selector's pattern (`1 of selection_*`).
fn selector_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
    }
}

fn level_name(level: Option<&rsigma_parser::Level>) -> String {
    level
        .map(|l| l.as_str().to_owned())
        .unwrap_or_else(|| "medium".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Config {
        Config::builtin().expect("config")
    }

    const ROOT: &str = "title: Root used\nid: t-root\nlevel: high\ntags: [attack.privilege-escalation]\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  root: {userIdentity.type: Root}\n  condition: root\n";

    #[test]
    fn rules_match_documents_of_their_log_types() {
        let set = RuleSet::build(&config(), [("a.yml", ROOT)], &[]);
        assert!(set.problems().is_empty(), "{:?}", set.problems());
        assert_eq!(set.rules()[0].log_types, ["cloudtrail"]);
        let doc = json!({"userIdentity": {"type": "Root"}, "eventName": "ListUsers"});
        let matches = set.evaluate("cloudtrail", &doc);
        assert_eq!(matches.len(), 1);
        assert_eq!(
            (matches[0].id.as_str(), matches[0].level.as_str()),
            ("t-root", "high")
        );
        assert_eq!(matches[0].tags, ["attack.privilege-escalation"]);
        assert!(set.evaluate("waf", &doc).is_empty());
        assert!(
            set.evaluate("cloudtrail", &json!({"userIdentity": {"type": "IAMUser"}}))
                .is_empty()
        );
    }

    #[test]
    fn bad_rules_are_reported_by_file_and_id_and_the_rest_loads() {
        let files = [
            ("ok.yml", ROOT),
            ("broken.yml", "title: [unclosed\n"),
            (
                "modifier.yml",
                "title: M\nid: t-mod\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventName|nosuchmodifier: x}\n  condition: s\n",
            ),
            (
                "nowhere.yml",
                "title: W\nid: t-win\nlogsource: {product: windows, category: process_creation}\ndetection:\n  s: {Image: x}\n  condition: s\n",
            ),
            (
                "noid.yml",
                "title: No id\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventName: x}\n  condition: s\n",
            ),
            ("again.yml", ROOT),
        ];
        let set = RuleSet::build(&config(), files, &[]);
        assert_eq!(set.rules().len(), 1);
        let text: Vec<String> = set.problems().iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|p| p.starts_with("broken.yml: ")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|p| p.starts_with("modifier.yml: ") && p.contains("nosuchmodifier")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|p| p.starts_with("nowhere.yml: rule t-win: its logsource")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|p| p.starts_with("noid.yml: rule No id: has no id")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|p| p.starts_with("again.yml: rule t-root: an earlier rule")),
            "{text:?}"
        );
    }

    #[test]
    fn disabled_rules_are_left_out() {
        let set = RuleSet::build(&config(), [("a.yml", ROOT)], &["t-root".to_owned()]);
        assert!(set.rules().is_empty() && set.problems().is_empty());
        assert!(!set.applies_to("cloudtrail"));
    }

    #[test]
    fn the_bundled_rules_all_load() {
        let files = bundled_files();
        assert!(files.len() >= 20, "bundled rules: {}", files.len());
        let set = RuleSet::build(&config(), files.iter().map(|(f, t)| (f.as_str(), *t)), &[]);
        assert!(set.problems().is_empty(), "{:#?}", set.problems());
        let with_rules: BTreeSet<&str> = set.rules().iter().map(|r| r.file.as_str()).collect();
        assert_eq!(with_rules.len(), files.len());
        assert_eq!(set.correlations().len(), 5);
        // The rules a threshold counts alert on nothing by themselves.
        let counted = set
            .rules()
            .iter()
            .filter(|r| r.kind == RuleKind::Counted)
            .count();
        assert_eq!(counted, 5);
    }
}
