//! Local files and folders laid out like the bucket, as objects with their keys.

use super::CliError;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
