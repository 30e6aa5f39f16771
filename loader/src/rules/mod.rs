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
//! A rule that does not parse or compile, or whose logsource fits no log type, is reported
//! with its file, id and reason ([`RuleProblem`]) and left out; the others load.

pub mod alert;
pub mod logsource;
pub mod testing;

use crate::config::Config;
use include_dir::{Dir, include_dir};
use rsigma_eval::{Engine, JsonEvent};
use serde_json::Value;
use std::collections::BTreeMap;

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
    engines: BTreeMap<String, Engine>,
    rules: Vec<RuleInfo>,
    problems: Vec<RuleProblem>,
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
        set
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
        if !collection.correlations.is_empty() {
            self.problems.push(problem(
                None,
                format!(
                    "{} correlation rule(s) left out: thresholds and correlations run as OpenSearch monitors, not in the load",
                    collection.correlations.len()
                ),
            ));
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
            if self.rules.iter().any(|r| r.id == id) {
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
            for t in &types {
                self.engines
                    .entry(t.clone())
                    .or_default()
                    .add_compiled_rule(compiled.clone());
            }
            self.rules.push(RuleInfo {
                id,
                title: rule.title.clone(),
                level: level_name(rule.level.as_ref()),
                tags: rule.tags.clone(),
                log_types: types,
                file: file.to_owned(),
            });
        }
    }

    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    pub fn problems(&self) -> &[RuleProblem] {
        &self.problems
    }

    /// Whether any rule applies to documents of `log_type`.
    pub fn applies_to(&self, log_type: &str) -> bool {
        self.engines.contains_key(log_type)
    }

    /// The rules of `log_type` that match `doc`.
    pub fn evaluate(&self, log_type: &str, doc: &Value) -> Vec<RuleMatch> {
        let Some(engine) = self.engines.get(log_type) else {
            return Vec::new();
        };
        engine
            .evaluate(&JsonEvent::borrow(doc))
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
        assert_eq!(set.rules().len(), files.len());
    }
}
