//! `loader test --type NAME FILE`: normalizes a sample file with the effective configuration
//! and prints the documents; with `--expected FILE.json`, compares them field by field.

use super::{CliError, build_pipeline};
use crate::pipeline::{Document, Outcome, Stats};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

pub struct Args {
    pub type_name: String,
    pub file: PathBuf,
    pub config: Option<PathBuf>,
    pub expected: Option<PathBuf>,
    pub key: Option<String>,
    pub exclusions: Option<PathBuf>,
    pub ingested: DateTime<Utc>,
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".to_owned(),
        Some(v) => v.to_string(),
    }
}

/// Field-by-field differences, as `path: expected X, actual Y`.
pub fn diff(path: &str, expected: Option<&Value>, actual: Option<&Value>, out: &mut Vec<String>) {
    match (expected, actual) {
        (Some(Value::Object(e)), Some(Value::Object(a))) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                diff(&format!("{path}.{k}"), e.get(k), a.get(k), out);
            }
        }
        (Some(Value::Array(e)), Some(Value::Array(a))) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: expected {} items, actual {}",
                    e.len(),
                    a.len()
                ));
            }
            for i in 0..e.len().max(a.len()) {
                diff(&format!("{path}[{i}]"), e.get(i), a.get(i), out);
            }
        }
        (e, a) if e == a => {}
        (e, a) => out.push(format!("{path}: expected {}, actual {}", show(e), show(a))),
    }
}

/// `event.ingested` is the load time: compared only when the expected document has it.
fn drop_unexpected_ingest_time(expected: &Value, actual: &mut Value) {
    let (Some(e), Some(a)) = (expected.as_array(), actual.as_array_mut()) else {
        return;
    };
    for (e, a) in e.iter().zip(a.iter_mut()) {
        let has = e.pointer("/_source/event/ingested").is_some();
        if !has && let Some(Value::Object(event)) = a.pointer_mut("/_source/event") {
            event.remove("ingested");
        }
    }
}

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let pipeline = build_pipeline(args.config.as_deref(), args.exclusions.as_deref())?;
    let config = pipeline.config();
    if config.get(&args.type_name).is_none() {
        return Err(CliError::unknown_type(config, &args.type_name));
    }
    let name = args.file.display().to_string();
    let key = args.key.clone().unwrap_or_else(|| name.clone());
    let reader = File::open(&args.file).map_err(|source| CliError::Read {
        path: name.clone(),
        source,
    })?;
    let mut stats = Stats::default();
    let mut documents: Vec<Document> = Vec::new();
    let outcome = pipeline.load_object_as(
        &args.type_name,
        &key,
        &name,
        reader,
        args.ingested,
        &mut stats,
        &mut |d| documents.push(d),
    );
    let mut actual = Value::Array(
        documents
            .into_iter()
            .map(|d| json!({"_index": d.index, "_id": d.id, "_source": Value::Object(d.source.into_fields())}))
            .collect(),
    );
    let text = serde_json::to_string_pretty(&actual).map_err(|e| CliError::Write(e.into()))?;
    writeln!(out, "{text}").map_err(CliError::Write)?;
    err.write_all(stats.summary().as_bytes())
        .map_err(CliError::Write)?;
    let mut failures = Vec::new();
    if let Some(Outcome::Failed { reason, .. }) = &outcome {
        failures.push(format!("the file could not be read to the end: {reason}"));
    }
    if stats.error_count > 0 {
        failures.push(format!("{} records did not load", stats.error_count));
    }
    if let Some(path) = &args.expected {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut expected: Value = serde_json::from_str(&text).map_err(|e| CliError::Read {
            path: path.display().to_string(),
            source: e.into(),
        })?;
        // A golden fixture's `expected.json` holds the documents under `documents`.
        if let Some(docs) = expected.get_mut("documents") {
            expected = docs.take();
        }
        drop_unexpected_ingest_time(&expected, &mut actual);
        let mut differences = Vec::new();
        diff("", Some(&expected), Some(&actual), &mut differences);
        for d in &differences {
            writeln!(err, "difference: {d}").map_err(CliError::Write)?;
        }
        if differences.is_empty() {
            writeln!(err, "the documents match {}", path.display()).map_err(CliError::Write)?;
        } else {
            failures.push(format!(
                "{} differences from {}",
                differences.len(),
                path.display()
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::TestFailed(failures.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_paths_and_values() {
        let mut out = Vec::new();
        let e = json!([{"a": {"b": 1, "c": [1, 2]}, "gone": true}]);
        let a = json!([{"a": {"b": 2, "c": [1]}, "new": "x"}]);
        diff("", Some(&e), Some(&a), &mut out);
        assert_eq!(
            out,
            [
                "[0].a.b: expected 1, actual 2",
                "[0].a.c: expected 2 items, actual 1",
                "[0].a.c[1]: expected 2, actual (absent)",
                "[0].gone: expected true, actual (absent)",
                "[0].new: expected (absent), actual \"x\"",
            ]
        );
    }

    #[test]
    fn the_ingest_time_is_compared_only_when_expected() {
        let expected = json!([{"_source": {"event": {"kind": "event"}}}, {"_source": {"event": {"ingested": "t"}}}]);
        let mut actual = json!([{"_source": {"event": {"kind": "event", "ingested": "now"}}}, {"_source": {"event": {"ingested": "now"}}}]);
        drop_unexpected_ingest_time(&expected, &mut actual);
        assert_eq!(
            actual,
            json!([{"_source": {"event": {"kind": "event"}}}, {"_source": {"event": {"ingested": "now"}}}])
        );
    }
}
