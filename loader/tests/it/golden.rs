//! Golden tests: every folder `fixtures/<log_type>/<case>/` holds input objects at their bucket
//! key (relative to the case folder) and `expected.json`:
//! `{"documents": [{"_index", "_id", "_source"}...], "errors": ["substring", ...],
//! "skipped": null | "substring of the skip reason"}`.
//!
//! A type folder may hold a `user.ini`: its cases are loaded with it read over the built-in
//! configuration (user-defined types such as `apache`).
//!
//! Each case is loaded as a load does by default, enrichment included: user agents, GeoIP from
//! the test databases of [`crate::geoip`] (Tokyo and Sydney networks; documentation addresses
//! are never looked up), threat intelligence from `fixtures/threat-feeds/` and the organization
//! context of `fixtures/org-context/`. The ingest time is fixed at 2026-01-01T00:00:00Z;
//! documents are compared field by field; every difference of every case is printed (path,
//! expected, actual) before failing.
//! `UPDATE_GOLDEN=1` rewrites the expected files from the actual output (review them!);
//! `GOLDEN_FILTER=<text>` limits the run (and the rewrite) to cases whose path contains it.

// Field by field, the same comparison as `loader test --expected`.
use chrono::{DateTime, Utc};
use loader::cli::diff;
use loader::config::Config;
use loader::enrich::files::{Files, Location};
use loader::enrich::geo::{Cached, MaxMind};
use loader::enrich::org::{OrgContext, OrgSource};
use loader::enrich::threat::ThreatFeeds;
use loader::enrich::user_agent::UserAgents;
use loader::pipeline::{Document, Outcome, Pipeline, Stats};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Folders of `fixtures/` that are no log type: the Lambda's event shapes (read by the unit
/// tests of `loader::lambda::events`) and the es-loader's configuration files with their cases
/// ([`es_loader_configuration_files`]).
const NOT_LOG_TYPES: &[&str] = &["events", "es-loader", "threat-feeds", "org-context"];

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn ingested() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("fixed time")
        .with_timezone(&Utc)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable fixture folder") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("readable fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// Runs one case; returns the actual `expected.json` content.
fn run_case(
    pipeline: &Pipeline,
    case: &Path,
    type_name: &str,
    problems: &mut Vec<String>,
) -> Value {
    let mut documents: Vec<Document> = Vec::new();
    let mut stats = Stats::default();
    let mut skipped: Option<String> = None;
    let inputs: Vec<PathBuf> = files_under(case)
        .into_iter()
        .filter(|p| p.file_name().is_none_or(|n| n != "expected.json"))
        .collect();
    if inputs.is_empty() {
        problems.push(format!("{}: no input object", case.display()));
    }
    for input in inputs {
        let key = input
            .strip_prefix(case)
            .expect("below the case")
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let bytes = std::fs::read(&input).expect("readable input");
        let outcome =
            pipeline.load_object(&key, &key, &bytes[..], ingested(), &mut stats, &mut |d| {
                documents.push(d)
            });
        match outcome {
            Outcome::Skipped(reason) => skipped = Some(reason.to_string()),
            Outcome::Loaded { log_type } | Outcome::Failed { log_type, .. } => {
                if log_type != type_name {
                    problems.push(format!(
                        "{}: detected as {log_type}, but the case is in the {type_name} folder",
                        case.display()
                    ));
                }
            }
        }
    }
    let docs: Vec<Value> = documents
        .into_iter()
        .map(|d| json!({"_index": d.index, "_id": d.id, "_source": Value::Object(d.source.into_fields())}))
        .collect();
    let errors: Vec<Value> = stats
        .errors
        .iter()
        .map(|e| Value::String(e.to_string()))
        .collect();
    let mut actual = json!({"documents": docs, "errors": errors, "skipped": skipped});
    // Records excluded (by rule, or FireLens stderr) are counted, never silently gone.
    if !stats.excluded.is_empty() {
        actual["excluded"] = json!(stats.excluded);
    }
    actual
}

fn compare(case: &str, expected: &Value, actual: &Value, problems: &mut Vec<String>) {
    let mut out = Vec::new();
    diff(
        "documents",
        expected.get("documents"),
        actual.get("documents"),
        &mut out,
    );
    let no_errors = Vec::new();
    let exp_errors = expected
        .get("errors")
        .and_then(Value::as_array)
        .unwrap_or(&no_errors);
    let act_errors = actual
        .get("errors")
        .and_then(Value::as_array)
        .unwrap_or(&no_errors);
    if exp_errors.len() != act_errors.len() {
        out.push(format!(
            "errors: expected {} ({exp_errors:?}), actual {} ({act_errors:?})",
            exp_errors.len(),
            act_errors.len()
        ));
    }
    for (e, a) in exp_errors.iter().zip(act_errors) {
        let (Some(e), Some(a)) = (e.as_str(), a.as_str()) else {
            continue;
        };
        if !a.contains(e) {
            out.push(format!(
                "errors: expected one containing {e:?}, actual {a:?}"
            ));
        }
    }
    if expected.get("excluded") != actual.get("excluded") {
        out.push(format!(
            "excluded: expected {:?}, actual {:?}",
            expected.get("excluded"),
            actual.get("excluded")
        ));
    }
    match (
        expected.get("skipped").and_then(Value::as_str),
        actual.get("skipped").and_then(Value::as_str),
    ) {
        (None, None) => {}
        (Some(e), Some(a)) if a.contains(e) => {}
        (e, a) => out.push(format!("skipped: expected {e:?}, actual {a:?}")),
    }
    for line in out {
        problems.push(format!("{case}: {line}"));
    }
}

/// The type folder's `user.ini` over the built-in configuration, or the built-in one alone.
fn pipeline_for(type_dir: &Path) -> Pipeline {
    let user = type_dir.join("user.ini");
    let config = match std::fs::read_to_string(&user) {
        Ok(text) => Config::with_user_file(&user.display().to_string(), &text)
            .unwrap_or_else(|e| panic!("{}: {e}", user.display())),
        Err(_) => Config::builtin().expect("bundled configuration"),
    };
    enriched(Pipeline::new(config))
}

/// The enrichment a load has by default, with the test GeoIP databases, the threat feeds of
/// `fixtures/threat-feeds/` and the accounts of `fixtures/org-context/`.
fn enriched(pipeline: Pipeline) -> Pipeline {
    let databases =
        MaxMind::from_bytes(Some(crate::geoip::city_db()), Some(crate::geoip::asn_db()))
            .expect("test databases");
    let feeds = ThreatFeeds::new(Location::Dir(fixtures_root().join("threat-feeds")));
    futures::executor::block_on(feeds.refresh(&Files { s3: None })).expect("test feeds");
    let org = OrgContext::new(
        OrgSource::Mapping(
            fixtures_root()
                .join("org-context/accounts.csv")
                .display()
                .to_string(),
        ),
        Vec::new(),
        std::time::Duration::from_secs(3600),
    );
    futures::executor::block_on(org.refresh(None, &Files { s3: None })).expect("test accounts");
    pipeline
        .with_geo(Some(Arc::new(Cached::new(databases))))
        .with_threat_feeds(Some(Arc::new(feeds)))
        .with_org_context(Some(Arc::new(org)))
        .with_user_agents(Some(UserAgents::shared()))
}

/// Runs one case against its `expected.json` (or rewrites it); `None` when `GOLDEN_FILTER`
/// leaves it out, else the actual result.
fn check_case(
    pipeline: &Pipeline,
    case: &Path,
    type_name: &str,
    update: bool,
    problems: &mut Vec<String>,
) -> Option<Value> {
    if let Some(filter) = std::env::var_os("GOLDEN_FILTER")
        && !case.to_string_lossy().contains(&*filter.to_string_lossy())
    {
        return None;
    }
    let actual = run_case(pipeline, case, type_name, problems);
    let expected_path = case.join("expected.json");
    if update {
        let mut text = serde_json::to_string_pretty(&actual).expect("serializable");
        text.push('\n');
        std::fs::write(&expected_path, text).expect("writable expected.json");
        return Some(actual);
    }
    let expected: Value = match std::fs::read_to_string(&expected_path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{}: invalid JSON: {e}", expected_path.display()));
                return Some(actual);
            }
        },
        Err(e) => {
            problems.push(format!(
                "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
                expected_path.display()
            ));
            return Some(actual);
        }
    };
    let name = case
        .strip_prefix(fixtures_root())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    compare(&name, &expected, &actual, problems);
    Some(actual)
}

#[test]
fn golden_fixtures() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut problems = Vec::new();
    let mut cases = 0;
    for type_dir in subdirs(&fixtures_root()) {
        let type_name = type_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if NOT_LOG_TYPES.contains(&type_name.as_str()) {
            continue;
        }
        let pipeline = pipeline_for(&type_dir);
        let type_cases = subdirs(&type_dir);
        if type_cases.len() < 5 {
            problems.push(format!(
                "{type_name}: {} cases, at least 5 expected",
                type_cases.len()
            ));
        }
        for case in type_cases {
            if check_case(&pipeline, &case, &type_name, update, &mut problems).is_some() {
                cases += 1;
            }
        }
    }
    for type_name in Config::builtin()
        .expect("config")
        .types
        .iter()
        .map(|t| t.name.clone())
    {
        if !fixtures_root().join(&type_name).is_dir() {
            problems.push(format!("{type_name}: no golden fixtures"));
        }
    }
    assert!(
        cases > 0,
        "no golden cases found under {}",
        fixtures_root().display()
    );
    assert!(
        problems.is_empty(),
        "{} golden differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn diff_names_paths_and_values() {
    let mut out = Vec::new();
    let e = json!({"a": {"b": 1, "c": [1, 2]}, "gone": true});
    let a = json!({"a": {"b": 2, "c": [1]}, "new": "x"});
    diff("doc", Some(&e), Some(&a), &mut out);
    assert_eq!(
        out,
        [
            "doc.a.b: expected 1, actual 2",
            "doc.a.c: expected 2 items, actual 1",
            "doc.a.c[1]: expected 2, actual (absent)",
            "doc.gone: expected true, actual (absent)",
            "doc.new: expected (absent), actual \"x\"",
        ]
    );
}

/// The es-loader's own configuration files, as a migrating team brings them (copies of their
/// sections, keys and values, without the comments): `fixtures/es-loader/aws.ini` and
/// `user.ini` each read as the user file, with one case per section in `aws-ini/<section>/`
/// and `user-ini/<section>[.<variant>]/`. Every case is detected as its section, loads with
/// golden results, and takes its time from the record (never the load time).
#[test]
fn es_loader_configuration_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let root = fixtures_root().join("es-loader");
    let mut problems = Vec::new();
    for (file, cases_folder) in [("aws.ini", "aws-ini"), ("user.ini", "user-ini")] {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).expect("es-loader file");
        let config = Config::with_user_file(&path.display().to_string(), &text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let sections: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix('[')?.strip_suffix(']'))
            .filter(|s| *s != "DEFAULT")
            .map(str::to_owned)
            .collect();
        // Types that name no time of their own take the load time, as in the es-loader.
        let timeless: Vec<String> = config
            .types
            .iter()
            .filter(|t| {
                t.timestamp_key.is_none()
                    && t.timestamp_key_list.is_empty()
                    && t.file_timestamp_format.is_none()
            })
            .map(|t| t.name.clone())
            .collect();
        let pipeline = enriched(Pipeline::new(config));
        let cases = subdirs(&root.join(cases_folder));
        for section in &sections {
            if !cases.iter().any(|c| case_section(c) == *section) {
                problems.push(format!(
                    "{file}: [{section}] has no case in {cases_folder}/"
                ));
            }
        }
        for case in cases {
            let section = case_section(&case);
            // The es-loader's name of a built-in type is that type.
            let type_name = loader::config::ES_LOADER_SECTIONS
                .iter()
                .find(|(alias, _)| *alias == section)
                .map_or(section.as_str(), |(_, real)| real);
            let Some(actual) = check_case(&pipeline, &case, type_name, update, &mut problems)
            else {
                continue;
            };
            let documents = actual["documents"].as_array().cloned().unwrap_or_default();
            let excluded = actual.get("excluded").is_some();
            if documents.is_empty() && !excluded {
                problems.push(format!("{}: no documents", case.display()));
            }
            if let Some(errors) = actual["errors"].as_array().filter(|e| !e.is_empty()) {
                problems.push(format!("{}: errors {errors:?}", case.display()));
            }
            for doc in documents.iter().filter(|_| !timeless.contains(&section)) {
                let tags = doc["_source"]["tags"].as_array();
                if tags.is_some_and(|t| t.iter().any(|t| t == "_timestamp_from_ingest")) {
                    problems.push(format!(
                        "{}: a document has no time of its own: {}",
                        case.display(),
                        doc["_source"]
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems with the es-loader's files:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// `user-ini/apache-ecs.stderr-only` is a case of `[apache-ecs]`.
fn case_section(case: &Path) -> String {
    let name = case
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.split('.').next().unwrap_or_default().to_owned()
}
