//! What `loader load` is asked to load: the objects named on the command line and in `--list`
//! files, parsed by pure functions so every accepted line format is tested without a bucket.
//!
//! A list line is one of:
//! - `s3://bucket/key`;
//! - a line of `aws s3 ls --recursive` (`2024-05-01 12:00:00     1234 some/key with spaces`),
//!   the format the es-loader accepts;
//! - a plain key: an object of `--bucket` when one is given, else a local path.
//!
//! Blank lines and lines starting with `#` are ignored. The failed-objects file a run writes is
//! itself a list (one `s3://bucket/key` or path per line), so it can be loaded again as it is.

pub use crate::deliver::ObjectRef as Target;
use std::path::Path;

/// A local file named by its path, which is also its key (what type detection sees).
pub fn local_file(path: impl AsRef<Path>) -> Target {
    let path = path.as_ref();
    let key = path
        .to_string_lossy()
        .trim_start_matches("./")
        .replace('\\', "/");
    Target::local(path, key)
}

/// A command-line argument or list line that names no object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("{0:?} names no bucket: expected s3://bucket/key or s3://bucket/prefix")]
    NoBucket(String),
    #[error(
        "{0:?} is a folder line of `aws s3 ls` without --recursive: list the objects with --recursive"
    )]
    Folder(String),
}

/// Splits `s3://bucket/rest` into bucket and rest (key or prefix, maybe empty); `None` when the
/// text is not an `s3://` URL.
pub fn parse_s3_url(text: &str) -> Option<Result<(String, String), ListError>> {
    let rest = text.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Some(Err(ListError::NoBucket(text.to_owned())));
    }
    Some(Ok((bucket.to_owned(), key.to_owned())))
}

/// The key of an `aws s3 ls --recursive` line (`YYYY-MM-DD HH:MM:SS <size> <key>`), or `None`
/// when the line does not have that shape. The key is everything after the single space that
/// follows the size, so keys with spaces survive.
pub fn s3_ls_key(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    // "2024-05-01 12:00:00" is 19 bytes of fixed shape.
    let shape = b"dddd-dd-dd dd:dd:dd";
    if b.len() < shape.len() + 3 {
        return None;
    }
    for (c, s) in b.iter().zip(shape) {
        let ok = match s {
            b'd' => c.is_ascii_digit(),
            other => c == other,
        };
        if !ok {
            return None;
        }
    }
    let rest = &line[shape.len()..];
    let after_spaces = rest.trim_start_matches(' ');
    if after_spaces.len() == rest.len() {
        return None;
    }
    let digits = after_spaces.len()
        - after_spaces
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .len();
    if digits == 0 {
        return None;
    }
    let key = after_spaces[digits..].strip_prefix(' ')?;
    (!key.is_empty()).then_some(key)
}

/// Parses one list line. `Ok(None)` for blank lines, comments and folder markers (keys ending in
/// `/`, which hold no log).
pub fn parse_line(line: &str, bucket: Option<&str>) -> Result<Option<Target>, ListError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    if let Some(url) = parse_s3_url(trimmed) {
        let (bucket, key) = url?;
        if key.is_empty() || key.ends_with('/') {
            return Ok(None);
        }
        return Ok(Some(Target::s3(bucket, key)));
    }
    if trimmed.starts_with("PRE ") {
        return Err(ListError::Folder(trimmed.to_owned()));
    }
    let key = s3_ls_key(line).unwrap_or(trimmed);
    if key.ends_with('/') {
        return Ok(None);
    }
    Ok(Some(match bucket {
        Some(bucket) => Target::s3(bucket, key.trim_start_matches('/')),
        None => local_file(key),
    }))
}

/// A list line that could not be used, with its place in the list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub error: ListError,
}

/// Parses a whole list: the objects in order, and the lines that named none.
pub fn parse_list(text: &str, bucket: Option<&str>) -> (Vec<Target>, Vec<BadLine>) {
    let mut targets = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match parse_line(line, bucket) {
            Ok(Some(t)) => targets.push(t),
            Ok(None) => {}
            Err(error) => bad.push(BadLine { line: n + 1, error }),
        }
    }
    (targets, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_plain_keys_and_paths() {
        assert_eq!(
            parse_line("s3://logs/AWSLogs/1/x.json.gz", Some("other")),
            Ok(Some(Target::s3("logs", "AWSLogs/1/x.json.gz")))
        );
        assert_eq!(
            parse_line("AWSLogs/1/x.json.gz\r\n", Some("logs")),
            Ok(Some(Target::s3("logs", "AWSLogs/1/x.json.gz")))
        );
        assert_eq!(
            parse_line("/AWSLogs/1/x.json.gz", Some("logs")),
            Ok(Some(Target::s3("logs", "AWSLogs/1/x.json.gz")))
        );
        assert_eq!(
            parse_line("  ./samples/a.json ", None),
            Ok(Some(Target::local("./samples/a.json", "samples/a.json")))
        );
        assert_eq!(
            parse_line("s3:///key", None),
            Err(ListError::NoBucket("s3:///key".into()))
        );
    }

    #[test]
    fn aws_s3_ls_lines_keep_spaces_in_keys() {
        let line = "2024-05-01 12:00:00     1234 some/key with spaces";
        assert_eq!(s3_ls_key(line), Some("some/key with spaces"));
        assert_eq!(
            parse_line(line, Some("b")),
            Ok(Some(Target::s3("b", "some/key with spaces")))
        );
        // Large sizes push the key right; the single separating space is all that is removed.
        assert_eq!(
            s3_ls_key("2024-05-01 12:00:00 123456789012  leading-space"),
            Some(" leading-space")
        );
        assert_eq!(s3_ls_key("2024-05-01 12:00:00"), None);
        assert_eq!(s3_ls_key("2024-05-01T12:00:00     1234 k"), None);
        assert_eq!(s3_ls_key("2024-05-01 12:00:00     12x4 k"), None);
        // Folder markers hold no log.
        assert_eq!(
            parse_line("2024-05-01 12:00:00        0 AWSLogs/", Some("b")),
            Ok(None)
        );
        assert_eq!(
            parse_line("                           PRE AWSLogs/", Some("b")),
            Err(ListError::Folder("PRE AWSLogs/".into()))
        );
    }

    #[test]
    fn blank_lines_and_comments_are_ignored_bad_lines_reported_with_their_number() {
        let text =
            "# failed objects\n\ns3://b/k1\n   \nk2\ns3:///x\n2024-05-01 12:00:00     1 k 3\n";
        let (targets, bad) = parse_list(text, Some("dflt"));
        assert_eq!(
            targets,
            [
                Target::s3("b", "k1"),
                Target::s3("dflt", "k2"),
                Target::s3("dflt", "k 3")
            ]
        );
        assert_eq!(
            bad,
            [BadLine {
                line: 6,
                error: ListError::NoBucket("s3:///x".into())
            }]
        );
    }

    #[test]
    fn a_target_prints_as_a_line_that_parses_back_to_it() {
        for t in [
            Target::s3("b", "AWSLogs/1/some key.gz"),
            local_file("samples/AWSLogs/x.json"),
        ] {
            assert_eq!(parse_line(&t.to_string(), None), Ok(Some(t)));
        }
    }
}
