//! A rule's own test events: `<rule>.tests.json` next to `<rule>.yml` holds records as AWS
//! writes them (`{"type": "cloudtrail", "match": [...], "no_match": [...]}`). Each record is
//! normalized by the loader exactly as in a load, then the rules of the file must match every
//! `match` record and none of the `no_match` ones: a rule is tested on the documents it will
//! really see, CloudTrail's own fields and ECS alike.
//!
//! A threshold or sequence (a correlation) is tested with scenarios instead: `"fires"` and
//! `"quiet"` each list scenarios, a scenario is a list of steps `{"record": .., "times": 20,
//! "every_seconds": 10}`, and each document gets the time of its place in the scenario (from
//! 2026-12-01T10:00:00Z). The correlations of the file must fire in every `fires` scenario
//! and in no `quiet` one.

use super::RuleSet;
use super::correlate::Correlator;
use crate::pipeline::{Pipeline, Source, Stats};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// One tests file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTests {
    /// The log type the records are (the section name of the configuration).
    #[serde(rename = "type")]
    pub log_type: String,
    #[serde(rename = "match", default)]
    pub should_match: Vec<Value>,
    #[serde(rename = "no_match", default)]
    pub should_not_match: Vec<Value>,
    /// Scenarios in which the file's correlations must fire.
    #[serde(default)]
    pub fires: Vec<Vec<Step>>,
    /// Scenarios in which they must not.
    #[serde(default)]
    pub quiet: Vec<Vec<Step>>,
}

/// One step of a scenario: a record repeated `times`, `every_seconds` apart.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub record: Value,
    #[serde(default = "one")]
    pub times: u32,
    #[serde(default = "one_second")]
    pub every_seconds: u64,
}

fn one() -> u32 {
    1
}

fn one_second() -> u64 {
    1
}

impl RuleTests {
    pub fn parse(file: &str, text: &str) -> Result<Self, String> {
        let tests: RuleTests = serde_json::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        let events = !tests.should_match.is_empty() && !tests.should_not_match.is_empty();
        let scenarios = !tests.fires.is_empty() && !tests.quiet.is_empty();
        if !events && !scenarios {
            return Err(format!(
                "{file}: needs at least one `match` and one `no_match` record, or one `fires` and one `quiet` scenario"
            ));
        }
        Ok(tests)
    }
}

/// The rule file a tests file belongs to: `x.tests.json` -> `x.yml` (or `x.yaml`).
pub fn rule_file_of(tests_file: &str) -> Option<(String, String)> {
    let stem = tests_file.strip_suffix(".tests.json")?;
    Some((format!("{stem}.yml"), format!("{stem}.yaml")))
}

/// The ids of the rules a tests file is for (those of its rule file).
pub fn rule_ids_for(rules: &RuleSet, tests_file: &str) -> Vec<String> {
    let Some((yml, yaml)) = rule_file_of(tests_file) else {
        return Vec::new();
    };
    rules
        .rules()
        .iter()
        .filter(|r| r.file == yml || r.file == yaml)
        .map(|r| r.id.clone())
        .collect()
}

/// Whether one of `tests_files` is for the rule file `rule_file`.
pub fn has_tests<'a>(mut tests_files: impl Iterator<Item = &'a str>, rule_file: &str) -> bool {
    tests_files
        .any(|t| rule_file_of(t).is_some_and(|(yml, yaml)| yml == rule_file || yaml == rule_file))
}

/// An object key of the type's own layout, so the documents get account and region as in a
/// load.
fn key_for(log_type: &str) -> String {
    match log_type {
        "cloudtrail" => "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/01/111122223333_CloudTrail_eu-west-1_20261201T1000Z_rules.json".into(),
        "securityhub" => "AWSLogs/111122223333/SecurityHub/eu-west-1/2026/12/01/10/rules.json".into(),
        "guardduty" => "AWSLogs/111122223333/GuardDuty/eu-west-1/2026/12/01/10/rules.json".into(),
        "waf" => "AWSLogs/111122223333/WAFLogs/eu-west-1/acl/2026/12/01/10/00/rules.log".into(),
        other => format!("rules-test/{other}/linux/secure"),
    }
}

/// The object text of one record of `log_type`: CloudTrail's `Records` wrapper, a JSON line,
/// or a text line as it is.
fn object_text(pipeline: &Pipeline, log_type: &str, record: &Value) -> String {
    let delimiter = pipeline
        .config()
        .get(log_type)
        .and_then(|t| t.json_delimiter.clone());
    match (record, delimiter) {
        (Value::String(line), _) => format!("{line}\n"),
        (record, Some(delimiter)) => serde_json::json!({ delimiter: [record] }).to_string(),
        (record, None) => format!("{record}\n"),
    }
}

/// The documents the loader makes of one record.
pub fn documents(
    pipeline: &Pipeline,
    log_type: &str,
    record: &Value,
    ingested: DateTime<Utc>,
) -> Result<Vec<(String, Value)>, String> {
    let text = object_text(pipeline, log_type, record);
    let key = key_for(log_type);
    let mut stats = Stats::default();
    let mut docs = Vec::new();
    let outcome = pipeline.load_object_as(
        log_type,
        &key,
        &key,
        text.as_bytes(),
        ingested,
        &mut stats,
        &mut |doc| docs.push(doc),
    );
    if outcome.is_none() {
        return Err(format!("no log type named `{log_type}`"));
    }
    if let Some(e) = stats.errors.first() {
        return Err(format!("the record does not load: {}", e.reason));
    }
    docs.into_iter()
        .map(|d| {
            let value = match d.source {
                Source::Json(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string())?,
                fields => Value::Object(fields.into_fields()),
            };
            let doc_type = value["@log_type"].as_str().unwrap_or(log_type).to_owned();
            Ok((doc_type, value))
        })
        .collect()
}

/// Runs one tests file against the rules of `rule_ids`; the failures, each a sentence.
pub fn run(
    pipeline: &Pipeline,
    rules: &RuleSet,
    rule_ids: &[String],
    tests: &RuleTests,
    ingested: DateTime<Utc>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let cases = tests
        .should_match
        .iter()
        .map(|r| (r, true))
        .chain(tests.should_not_match.iter().map(|r| (r, false)));
    for (n, (record, wanted)) in cases.enumerate() {
        let docs = match documents(pipeline, &tests.log_type, record, ingested) {
            Ok(docs) => docs,
            Err(reason) => {
                failures.push(format!("record {n}: {reason}"));
                continue;
            }
        };
        let matched = docs.iter().any(|(t, doc)| {
            rules
                .evaluate(t, doc)
                .iter()
                .any(|m| rule_ids.contains(&m.id))
        });
        if matched != wanted {
            let what = if wanted {
                "should match"
            } else {
                "should not match"
            };
            failures.push(format!(
                "record {n} {what} {}, but {}",
                rule_ids.join(", "),
                if matched { "it does" } else { "it does not" }
            ));
        }
    }
    let scenarios = tests
        .fires
        .iter()
        .map(|s| (s, true))
        .chain(tests.quiet.iter().map(|s| (s, false)));
    for (n, (scenario, wanted)) in scenarios.enumerate() {
        match fired(
            pipeline,
            rules,
            rule_ids,
            &tests.log_type,
            scenario,
            ingested,
        ) {
            Err(reason) => failures.push(format!("scenario {n}: {reason}")),
            Ok(fired) if fired != wanted => failures.push(format!(
                "scenario {n} should {}fire {}, but it {}",
                if wanted { "" } else { "not " },
                rule_ids.join(", "),
                if fired { "does" } else { "does not" }
            )),
            Ok(_) => {}
        }
    }
    failures
}

/// Whether one of the correlations of `rule_ids` fires in `scenario`.
fn fired(
    pipeline: &Pipeline,
    rules: &RuleSet,
    rule_ids: &[String],
    log_type: &str,
    scenario: &[Step],
    ingested: DateTime<Utc>,
) -> Result<bool, String> {
    let mut correlator = Correlator::new(rules);
    let mut at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
        .map_err(|e| e.to_string())?
        .with_timezone(&Utc);
    let mut fired = false;
    for step in scenario {
        let docs = documents(pipeline, log_type, &step.record, ingested)?;
        for _ in 0..step.times {
            for (doc_type, doc) in &docs {
                let mut doc = doc.clone();
                doc["@timestamp"] =
                    Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                fired |= correlator
                    .process(doc_type, &doc)
                    .iter()
                    .any(|a| rule_ids.contains(&a.rule.id));
            }
            at += chrono::Duration::seconds(step.every_seconds as i64);
        }
    }
    Ok(fired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rules::{bundled_files, bundled_tests};

    #[test]
    fn every_bundled_rule_has_tests_and_passes_them() {
        let config = Config::builtin().expect("config");
        let pipeline = Pipeline::new(config.clone());
        let files = bundled_files();
        let rules = RuleSet::build(&config, files.iter().map(|(f, t)| (f.as_str(), *t)), &[]);
        assert!(rules.problems().is_empty(), "{:#?}", rules.problems());
        let tests = bundled_tests();
        let mut failures = Vec::new();
        for info in rules.rules() {
            if !has_tests(tests.iter().map(|(t, _)| t.as_str()), &info.file) {
                failures.push(format!("{}: no tests file", info.file));
            }
        }
        for (file, text) in &tests {
            let parsed = match RuleTests::parse(file, text) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            let ids = rule_ids_for(&rules, file);
            if ids.is_empty() {
                failures.push(format!("{file}: no rule file for it"));
            }
            for f in run(&pipeline, &rules, &ids, &parsed, Utc::now()) {
                failures.push(format!("{file}: {f}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn a_test_that_fails_says_which_record_and_why() {
        let config = Config::builtin().expect("config");
        let pipeline = Pipeline::new(config.clone());
        let rule = "title: Stop\nid: t-stop\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventName: StopLogging}\n  condition: s\n";
        let rules = RuleSet::build(&config, [("s.yml", rule)], &[]);
        let tests = RuleTests::parse(
            "s.tests.json",
            r#"{"type": "cloudtrail", "match": [{"eventName": "DeleteTrail", "eventTime": "2026-12-01T00:00:00Z"}],
                "no_match": [{"eventName": "StopLogging", "eventTime": "2026-12-01T00:00:00Z"}]}"#,
        )
        .expect("valid");
        let failures = run(&pipeline, &rules, &["t-stop".into()], &tests, Utc::now());
        assert_eq!(
            failures,
            [
                "record 0 should match t-stop, but it does not",
                "record 1 should not match t-stop, but it does"
            ]
        );
        assert!(RuleTests::parse("x.tests.json", r#"{"type": "waf", "match": [1]}"#).is_err());
    }
}
