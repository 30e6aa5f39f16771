//! `loader check-config`: validates the built-in and user definitions (and exclusion rules),
//! then lists the types in detection order or prints one type's effective settings.

use super::{CliError, load_config, load_exclusions};
use crate::config::{Config, EcsSource, LogType};
use crate::pipeline::index_name;
use chrono::{TimeZone, Utc};
use std::io::Write;
use std::path::Path;

fn normalizer(t: &LogType) -> String {
    match t.parser {
        Some(_) if t.has_mapping() => "built-in, then the user's ecs/static_ecs/geoip".to_owned(),
        Some(_) => "built-in".to_owned(),
        None => format!("configured ({} ecs fields)", t.ecs.len()),
    }
}

/// An index name this type would write to, for an example time.
fn example_index(t: &LogType) -> String {
    let when = Utc
        .with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    index_name(t, when)
}

/// The summary of every type.
pub fn overview(config: &Config, source: &str) -> String {
    let mut s = format!(
        "configuration valid ({source}): {} log types\n",
        config.types.len()
    );
    for w in &config.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s.push_str("types, in detection order:\n");
    for t in &config.types {
        s.push_str(&format!(
            "  {}: s3_key `{}`, {}, index {}, normalizer {}\n",
            t.name,
            t.s3_key.as_str(),
            format!("{:?}", t.file_format).to_lowercase(),
            example_index(t),
            normalizer(t)
        ));
    }
    s
}

/// Every effective setting of one type, with where it was written, then what the loader
/// makes of them.
pub fn details(t: &LogType) -> String {
    let mut s = format!("[{}]\n", t.name);
    let width = t.settings.iter().map(|x| x.key.len()).max().unwrap_or(0);
    for setting in &t.settings {
        let value = setting.value.replace('\n', "\n    ");
        s.push_str(&format!(
            "{:width$} = {value}    # {}\n",
            setting.key, setting.origin
        ));
    }
    s.push_str(&format!(
        "# normalizer: {}\n# index for an event at 2024-05-01T12:00:00Z: {}\n",
        normalizer(t),
        example_index(t)
    ));
    if let Some(key) = &t.timestamp_key {
        s.push_str(&format!(
            "# event time: field `{key}`, format {:?}, offset {}\n",
            t.timestamp_format, t.timestamp_tz
        ));
    } else {
        s.push_str("# event time: the type's own (or the load time when none)\n");
    }
    for m in &t.ecs {
        let from = match &m.source {
            EcsSource::First(c) => format!("first present of {}", c.join(", ")),
            EcsSource::List(c) => format!("list of {}", c.join(", ")),
        };
        s.push_str(&format!("# ecs {} <- {from}\n", m.field));
    }
    for (field, value) in &t.static_ecs {
        s.push_str(&format!("# static {field} = {value}\n"));
    }
    s
}

pub fn run(
    config_path: Option<&Path>,
    type_name: Option<&str>,
    exclusions: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let config = load_config(config_path)?;
    for t in &config.types {
        t.compile_patterns()?;
    }
    let source = match config_path {
        Some(p) => format!("built-in aws.ini + {}", p.display()),
        None => "built-in aws.ini".to_owned(),
    };
    let mut text = match type_name {
        None => overview(&config, &source),
        Some(name) => {
            let t = config
                .get(name)
                .ok_or_else(|| CliError::unknown_type(&config, name))?;
            details(t)
        }
    };
    if let Some(path) = exclusions {
        let ex = load_exclusions(path, &config)?;
        let rules: Vec<_> = ex
            .rules()
            .filter(|r| type_name.is_none_or(|n| r.log_type == n))
            .collect();
        text.push_str(&format!("exclusion rules ({}):\n", rules.len()));
        for r in rules {
            text.push_str(&format!("  {}\n", r.label));
        }
        for w in ex.warnings(&config) {
            text.push_str(&format!("warning: {w}\n"));
        }
    }
    out.write_all(text.as_bytes()).map_err(CliError::Write)
}
