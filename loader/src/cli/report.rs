//! The three files a `loader load` run leaves: the objects finished, the objects failed (a list
//! `--list` accepts, so a rerun loads only those), and a debug log of the failures and of the
//! objects refused for their key (time, object, reason, one JSON line each). Lines are written as objects finish, so an interrupted
//! run still tells what it did.

use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// File name suffixes, after the list's own name (as the es-loader names them).
pub const FINISHED_SUFFIX: &str = ".finish.log";
pub const FAILED_SUFFIX: &str = ".error.log";
pub const DEBUG_SUFFIX: &str = ".error_debug.log";
/// The base name of the report files when the run has no list.
pub const DEFAULT_STEM: &str = "loader-load";

/// Where the report files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPaths {
    pub finished: PathBuf,
    pub failed: PathBuf,
    pub debug: PathBuf,
}

impl ReportPaths {
    /// Next to the list (named after it), or in `dir` when given; `loader-load.*` in `dir` or
    /// the state folder ([`state_dir`]) when there is no list: never silently in the current
    /// folder.
    pub fn new(list: Option<&Path>, dir: Option<&Path>) -> Self {
        let stem = list
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| DEFAULT_STEM.to_owned());
        let dir = match (dir, list) {
            (Some(dir), _) => dir.to_path_buf(),
            (None, Some(list)) => list.parent().map(Path::to_path_buf).unwrap_or_default(),
            (None, None) => state_dir(),
        };
        let file = |suffix: &str| dir.join(format!("{stem}{suffix}"));
        Self {
            finished: file(FINISHED_SUFFIX),
            failed: file(FAILED_SUFFIX),
            debug: file(DEBUG_SUFFIX),
        }
    }

    /// The folder the files are in (for the default quarantine folder).
    pub fn dir(&self) -> &Path {
        self.finished.parent().unwrap_or(Path::new(""))
    }
}

/// Where the reports of a run without a list or a folder go: `$LOADER_STATE_DIR`, else
/// `$XDG_STATE_HOME/org-security-logs`, else `~/.local/state/org-security-logs`.
pub fn state_dir() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("LOADER_STATE_DIR")
        .or_else(|| var("XDG_STATE_HOME").map(|d| d.join("org-security-logs")))
        .or_else(|| var("HOME").map(|h| h.join(".local/state/org-security-logs")))
        .unwrap_or_else(|| std::env::temp_dir().join("org-security-logs"))
}

/// Cannot write a report file.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the report file {path}: {source}")]
pub struct ReportError {
    pub path: String,
    #[source]
    pub source: io::Error,
}

/// Writes the report files as objects finish.
pub struct Report {
    paths: ReportPaths,
    finished: BufWriter<File>,
    failed: BufWriter<File>,
    debug: BufWriter<File>,
    pub finished_count: u64,
    pub failed_count: u64,
    pub refused_count: u64,
}

impl Report {
    /// Creates (truncates) the three files; the folder is created when missing.
    pub fn create(paths: ReportPaths) -> Result<Self, ReportError> {
        Self::open(paths, false)
    }

    /// Goes on with an earlier run's files: the objects its finished list names (returned)
    /// are not loaded again, and new lines are added after the old ones; the failed list
    /// starts afresh (this run tries those objects again).
    pub fn resume(paths: ReportPaths) -> Result<(Self, HashSet<String>), ReportError> {
        let finished = match std::fs::read_to_string(&paths.finished) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashSet::new(),
            Err(source) => {
                return Err(ReportError {
                    path: paths.finished.display().to_string(),
                    source,
                });
            }
        };
        Ok((Self::open(paths, true)?, finished))
    }

    fn open(paths: ReportPaths, append: bool) -> Result<Self, ReportError> {
        let open_with = |path: &Path, append: bool| {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| ReportError {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(path)
                .map(BufWriter::new)
                .map_err(|source| ReportError {
                    path: path.display().to_string(),
                    source,
                })
        };
        Ok(Self {
            finished: open_with(&paths.finished, append)?,
            failed: open_with(&paths.failed, false)?,
            debug: open_with(&paths.debug, append)?,
            paths,
            finished_count: 0,
            failed_count: 0,
            refused_count: 0,
        })
    }

    pub fn paths(&self) -> &ReportPaths {
        &self.paths
    }

    /// An object that is fully accounted for (loaded, or skipped on purpose).
    pub fn finished(&mut self, object: &str) -> Result<(), ReportError> {
        self.finished_count += 1;
        let line = one_line(object);
        let path = &self.paths.finished;
        writeln!(self.finished, "{line}").map_err(|source| ReportError {
            path: path.display().to_string(),
            source,
        })
    }

    /// An object that failed: its name in the failed list, the reason in the debug log.
    pub fn failed(
        &mut self,
        object: &str,
        reason: &str,
        time: DateTime<Utc>,
    ) -> Result<(), ReportError> {
        self.failed_count += 1;
        let failed = &self.paths.failed;
        writeln!(self.failed, "{}", one_line(object)).map_err(|source| ReportError {
            path: failed.display().to_string(),
            source,
        })?;
        self.debug_line(object, reason, time)
    }

    /// An object refused for its key: only in the debug log, with its reason. Not in the failed
    /// list, since loading it again would be refused again.
    pub fn refused(
        &mut self,
        object: &str,
        reason: &str,
        time: DateTime<Utc>,
    ) -> Result<(), ReportError> {
        self.refused_count += 1;
        self.debug_line(object, reason, time)
    }

    /// A problem that names no object to retry (a list line, a queue message that is not an
    /// event): only in the debug log.
    pub fn problem(
        &mut self,
        what: &str,
        reason: &str,
        time: DateTime<Utc>,
    ) -> Result<(), ReportError> {
        self.debug_line(what, reason, time)
    }

    fn debug_line(
        &mut self,
        object: &str,
        reason: &str,
        time: DateTime<Utc>,
    ) -> Result<(), ReportError> {
        let line = debug_line(object, reason, time);
        let path = &self.paths.debug;
        self.debug
            .write_all(line.as_bytes())
            .map_err(|source| ReportError {
                path: path.display().to_string(),
                source,
            })
    }

    /// Pushes what is buffered to the files (called now and then, and at the end).
    pub fn flush(&mut self) -> Result<(), ReportError> {
        for (w, path) in [
            (&mut self.finished, &self.paths.finished),
            (&mut self.failed, &self.paths.failed),
            (&mut self.debug, &self.paths.debug),
        ] {
            w.flush().map_err(|source| ReportError {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Object names are written one per line: a line break inside one (possible in an S3 key) is
/// escaped so the list stays one object per line.
fn one_line(object: &str) -> std::borrow::Cow<'_, str> {
    if object.contains(['\n', '\r']) {
        object.replace('\n', "\\n").replace('\r', "\\r").into()
    } else {
        object.into()
    }
}

/// `{"time":..,"object":..,"reason":..}` and a newline.
pub fn debug_line(object: &str, reason: &str, time: DateTime<Utc>) -> String {
    let mut line = serde_json::json!({
        "time": time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "object": object,
        "reason": reason,
    })
    .to_string();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::list::{Target, local_file, parse_list};

    #[test]
    fn paths_next_to_the_list_or_in_the_report_dir() {
        let p = ReportPaths::new(Some(Path::new("work/keys.txt")), None);
        assert_eq!(p.finished, Path::new("work/keys.txt.finish.log"));
        assert_eq!(p.failed, Path::new("work/keys.txt.error.log"));
        assert_eq!(p.debug, Path::new("work/keys.txt.error_debug.log"));
        let p = ReportPaths::new(Some(Path::new("work/keys.txt")), Some(Path::new("out")));
        assert_eq!(p.failed, Path::new("out/keys.txt.error.log"));
        // Without a list or a folder: the state folder, never the current one.
        let p = ReportPaths::new(None, None);
        assert_eq!(p.failed, state_dir().join("loader-load.error.log"));
        assert!(p.dir().is_absolute() || p.dir().starts_with(std::env::temp_dir()));
        let p = ReportPaths::new(None, Some(Path::new("r")));
        assert_eq!(p.debug, Path::new("r/loader-load.error_debug.log"));
    }

    #[test]
    fn the_failed_file_is_a_list_of_exactly_the_failed_objects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = ReportPaths::new(None, Some(&dir.path().join("reports")));
        let mut report = Report::create(paths.clone()).expect("create");
        let time = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let ok = Target::s3("logs", "AWSLogs/1/ok.json.gz");
        let bad = Target::s3("logs", "AWSLogs/1/bad key.json.gz");
        let local = local_file("samples/x.log");
        report.finished(&ok.to_string()).expect("finished");
        report
            .failed(&bad.to_string(), "truncated gzip", time)
            .expect("failed");
        report
            .failed(&local.to_string(), "cannot open", time)
            .expect("failed");
        report
            .problem("queue message m-1", "not an S3 event", time)
            .expect("problem");
        let forged = Target::s3("logs", "AWSLogs/111122223333/CloudTrail/x.json.gz");
        report
            .refused(
                &forged.to_string(),
                "refused: not the organization trail",
                time,
            )
            .expect("refused");
        report.flush().expect("flush");
        assert_eq!(
            (
                report.finished_count,
                report.failed_count,
                report.refused_count
            ),
            (1, 2, 1)
        );

        let finished = std::fs::read_to_string(&paths.finished).expect("read");
        assert_eq!(finished, "s3://logs/AWSLogs/1/ok.json.gz\n");
        let failed = std::fs::read_to_string(&paths.failed).expect("read");
        let (targets, bad_lines) = parse_list(&failed, None);
        assert_eq!(targets, [bad, local]);
        assert!(bad_lines.is_empty());

        let debug = std::fs::read_to_string(&paths.debug).expect("read");
        let lines: Vec<serde_json::Value> = debug
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["object"], "s3://logs/AWSLogs/1/bad key.json.gz");
        assert_eq!(lines[0]["reason"], "truncated gzip");
        assert_eq!(lines[0]["time"], "2026-01-01T00:00:00.000Z");
        assert_eq!(lines[2]["object"], "queue message m-1");
        // A refused object is in the debug log only: a rerun of the failed list would refuse it.
        assert_eq!(lines[3]["object"], forged.to_string());
        assert_eq!(lines[3]["reason"], "refused: not the organization trail");
        assert!(!failed.contains("CloudTrail"), "{failed}");
    }

    #[test]
    fn line_breaks_in_names_cannot_split_a_line() {
        assert_eq!(one_line("a\nb\rc"), "a\\nb\\rc");
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn unwritable_folder_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").expect("write");
        let err = Report::create(ReportPaths::new(None, Some(&blocker.join("sub"))))
            .err()
            .expect("cannot create");
        assert!(
            err.to_string().contains(&blocker.display().to_string()),
            "{err}"
        );
    }
}
