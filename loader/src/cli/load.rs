//! `loader load` over local files and folders laid out like the bucket.

use super::CliError;
use crate::pipeline::{Document, Outcome, Pipeline, Stats};
use chrono::{DateTime, Utc};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Every file under `path` with its object key (the path below `path`, `/`-separated); a file
/// argument is its own key.
pub fn objects(path: &Path) -> Result<Vec<(PathBuf, String)>, CliError> {
    let read_err = |source| CliError::Read {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_file() {
        let key = path
            .to_string_lossy()
            .trim_start_matches("./")
            .replace('\\', "/");
        return Ok(vec![(path.to_path_buf(), key)]);
    }
    let mut found = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| CliError::Read {
            path: dir.display().to_string(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| CliError::Read {
                path: dir.display().to_string(),
                source,
            })?;
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(path) {
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push((p.clone(), key));
            }
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

/// Loads every object under `paths`, writing documents to `out`.
pub fn load_paths(
    pipeline: &Pipeline,
    paths: &[PathBuf],
    bulk: bool,
    ingested: DateTime<Utc>,
    out: &mut dyn Write,
) -> Result<Stats, CliError> {
    let mut stats = Stats::default();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut write_error: Option<io::Error> = None;
    for path in paths {
        for (file, key) in objects(path)? {
            let reader = File::open(&file).map_err(|source| CliError::Read {
                path: file.display().to_string(),
                source,
            })?;
            let name = file.display().to_string();
            let mut emit = |doc: Document| {
                let written = if bulk {
                    doc.write_bulk(&mut buf)
                } else {
                    doc.write_ndjson(&mut buf)
                };
                if let Err(e) = written {
                    write_error.get_or_insert(io::Error::other(e));
                }
                if buf.len() >= 1 << 20 {
                    if let Err(e) = out.write_all(&buf) {
                        write_error.get_or_insert(e);
                    }
                    buf.clear();
                }
            };
            let outcome =
                pipeline.load_object(&key, &name, reader, ingested, &mut stats, &mut emit);
            if let Outcome::Failed { reason, .. } = &outcome {
                tracing::warn!(object = %name, %reason, "object not fully read");
            }
            if let Some(e) = write_error.take() {
                return Err(CliError::Write(e));
            }
        }
    }
    out.write_all(&buf).map_err(CliError::Write)?;
    out.flush().map_err(CliError::Write)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn keys_are_the_path_below_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("AWSLogs/111122223333/CloudTrail/us-east-1");
        std::fs::create_dir_all(&nested).expect("mkdir");
        std::fs::write(nested.join("b.json"), b"{}").expect("write");
        std::fs::write(dir.path().join("a.txt"), b"x").expect("write");
        let found = objects(dir.path()).expect("walk");
        let keys: Vec<&str> = found.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["AWSLogs/111122223333/CloudTrail/us-east-1/b.json", "a.txt"]
        );
    }

    #[test]
    fn load_writes_bulk_lines_and_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir
            .path()
            .join("AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01");
        std::fs::create_dir_all(&nested).expect("mkdir");
        std::fs::write(
            nested.join("x.json"),
            br#"{"Records":[{"eventID":"e1","eventTime":"2024-05-01T00:00:00Z","eventName":"ListUsers","eventSource":"iam.amazonaws.com"}]}"#,
        )
        .expect("write");
        std::fs::write(dir.path().join("unknown.bin"), b"?").expect("write");
        let pipeline = Pipeline::new(Config::builtin().expect("config"));
        let mut out = Vec::new();
        let ingested = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let stats = load_paths(
            &pipeline,
            &[dir.path().to_path_buf()],
            true,
            ingested,
            &mut out,
        )
        .expect("loads");
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            r#"{"create":{"_index":"log-aws-cloudtrail-2024-05","_id":"e1"}}"#
        );
        assert_eq!(stats.objects, 2);
        assert_eq!(stats.documents(), 1);
        assert_eq!(stats.skipped.values().sum::<u64>(), 1);
    }
}
