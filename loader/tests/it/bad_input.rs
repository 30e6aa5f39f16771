//! The bad-input corpus (`loader/tests/bad-input/`): objects broken in the ways real buckets
//! hold them, one file per case, and `cases.json`, which gives each its object key, what its
//! error must say, and how many documents its good records make. Every case is loaded as a
//! load does: the error names the object, the position (when the object was readable that far)
//! and the reason; the good records of the same object still load; the counts add up (records
//! = documents + record errors + excluded + skipped); documents name their object by its key
//! exactly as given. The 50 MB line is also loaded by the binary, whose peak memory must not
//! grow with the line.

use chrono::{DateTime, Utc};
use loader::config::Config;
use loader::pipeline::{Outcome, Pipeline, Stats};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One broken object, as `cases.json` describes it.
#[derive(Debug, Deserialize)]
struct Case {
    /// The file of the case, in the corpus folder.
    file: String,
    /// The key it is loaded under (the log type is detected from it).
    key: String,
    /// Substrings of one of the reported errors (reason and position).
    says: Vec<String>,
    /// Documents its good records make.
    documents: u64,
    /// The object as a whole fails (it cannot be read to its end).
    fails: bool,
    /// What is broken, in words.
    case: String,
}

#[derive(Debug, Deserialize)]
struct Corpus {
    cases: Vec<Case>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input")
}

fn cases() -> Vec<Case> {
    let path = corpus_dir().join("cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let corpus: Corpus =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    corpus.cases
}

fn ingested() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-05T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

#[test]
fn every_bad_input_is_named_counted_and_does_not_stop_the_good_records() {
    let pipeline = Pipeline::new(Config::builtin().expect("config"));
    let mut problems = Vec::new();
    let cases = cases();
    // Every file of the folder is a case, and every case has its file.
    let mut files: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("the corpus folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name != "cases.json")
        .collect();
    files.sort();
    let mut described: Vec<String> = cases.iter().map(|c| c.file.clone()).collect();
    described.sort();
    assert_eq!(
        files, described,
        "files of the folder and cases of cases.json"
    );
    assert!(cases.len() >= 21, "the corpus lost cases");
    for case in cases {
        let bytes = std::fs::read(corpus_dir().join(&case.file)).expect("the case's file");
        let name = format!("{} ({})", case.file, case.case);
        let mut stats = Stats::default();
        let mut documents = 0u64;
        let mut keys = Vec::new();
        let outcome = pipeline.load_object(
            &case.key,
            &case.key,
            &bytes[..],
            ingested(),
            &mut stats,
            &mut |d| {
                documents += 1;
                keys.push(d.source.fields().get("@log_s3key").cloned());
            },
        );
        if keys
            .iter()
            .any(|k| k.as_ref().and_then(|v| v.as_str()) != Some(case.key.as_str()))
        {
            problems.push(format!("{name}: documents name the object as {keys:?}"));
        }
        let failed = matches!(outcome, Outcome::Failed { .. });
        let what = format!("{name}: {outcome:?}, errors {:?}", stats.errors);
        if failed != case.fails {
            problems.push(format!("{what}: failed {failed}, expected {}", case.fails));
        }
        if documents != case.documents {
            problems.push(format!(
                "{what}: {documents} documents, expected {}",
                case.documents
            ));
        }
        if !case.says.is_empty()
            && !stats.errors.iter().any(|e| {
                let text = e.to_string();
                e.object == case.key && case.says.iter().all(|s| text.contains(s.as_str()))
            })
        {
            problems.push(format!(
                "{what}: no error names the object and says {:?}",
                case.says
            ));
        }
        if case.says.is_empty() && !stats.errors.is_empty() {
            problems.push(format!("{what}: unexpected errors"));
        }
        let record_errors = stats.errors.iter().filter(|e| e.position.is_some()).count() as u64;
        for t in stats.per_type.values() {
            if t.records != t.documents + record_errors + t.excluded + t.skipped {
                problems.push(format!("{what}: counts do not add up: {t:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Peak resident memory of the loader loading `dir` (kilobytes). A Python process starts it
/// and reads the kernel's account of its one child, so no other process of the test counts.
fn peak_rss_kb(dir: &Path, reports: &Path) -> i64 {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import resource, subprocess, sys\n\
             done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
             print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
            env!("CARGO_BIN_EXE_loader"),
            "load",
        ])
        .arg(dir)
        .args(["--out", "/dev/null", "--concurrency", "1"])
        .arg("--report-dir")
        .arg(reports)
        .env("RUST_LOG", "error")
        .output()
        .expect("python3 runs the loader");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace();
    assert_eq!(
        fields.next(),
        Some("0"),
        "the load failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fields
        .next()
        .and_then(|kb| kb.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in {text:?}"))
}

#[test]
fn a_line_of_50_mb_does_not_cost_50_mb_of_memory() {
    let work = tempfile::tempdir().expect("tempdir");
    let case = cases()
        .into_iter()
        .find(|c| c.file == "line-of-50-mb.log.gz")
        .expect("the 50 MB case");
    let place = |dir: &Path, bytes: &[u8]| {
        let path = dir.join(&case.key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    };
    let big = work.path().join("big");
    place(
        &big,
        &std::fs::read(corpus_dir().join(&case.file)).expect("case"),
    );
    let small = work.path().join("small");
    place(
        &small,
        br#"{"timestamp":1772625600000,"action":"ALLOW","httpRequest":{"clientIp":"192.0.2.2","uri":"/","httpMethod":"GET","headers":[]}}"#,
    );
    let baseline = peak_rss_kb(&small, &work.path().join("r1"));
    let with_line = peak_rss_kb(&big, &work.path().join("r2"));
    // Held once, the line alone would be 50 MB more; the reader stops keeping it at 8 MiB.
    assert!(
        with_line - baseline < 32 * 1024,
        "peak RSS {with_line} kB with the 50 MB line, {baseline} kB without"
    );
}
