//! Log type registry: the bundled `aws.ini` (and later a user file over it) parsed once at
//! start-up into typed, validated settings. Regexes are checked here, so a bad one is a
//! start-up error naming its file, line, section and key, never a surprise per object (they
//! compile at first use; `loader check-config` compiles them all).

pub mod ini;
mod lazy_regex;
pub use lazy_regex::LazyRegex;

use chrono::FixedOffset;
use serde_json::Value;

pub use ini::{Ini, IniError, Origin};

/// The bundled definitions.
pub const BUILTIN_INI: &str = include_str!("../../config/aws.ini");
/// The name of the bundled file in error messages: never the name of a user's file, even one
/// called `aws.ini` (the es-loader's own file given as the user file).
pub const BUILTIN_NAME: &str = "built-in aws.ini";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Ini(#[from] IniError),
    #[error("{location}: [{section}] {key}: {reason}")]
    Invalid {
        location: String,
        section: String,
        key: String,
        reason: String,
    },
}

/// The Rust normalizer of a built-in type (chosen by section name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParserKind {
    CloudTrail,
    VpcFlow,
    Waf,
    SecurityHub,
    GuardDuty,
    CloudWatch,
    LinuxSecure,
}

impl ParserKind {
    pub fn for_section(name: &str) -> Option<Self> {
        Some(match name {
            "cloudtrail" => Self::CloudTrail,
            "vpcflowlogs" => Self::VpcFlow,
            "waf" => Self::Waf,
            "securityhub" => Self::SecurityHub,
            "guardduty" => Self::GuardDuty,
            "cloudwatchlogs" => Self::CloudWatch,
            "linux_secure" => Self::LinuxSecure,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Json,
    Text,
    Csv,
    /// Records of several lines, each starting at a line `multiline_firstline` matches.
    Multiline,
    /// XML records, each starting at a line `xml_firstline` matches.
    Xml,
    /// Windows event XML (`<Event xmlns=...>` records).
    WinEvtXml,
    /// Apache Parquet objects (Security Lake): each row a record.
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexTime {
    /// The event time.
    Timestamp,
    /// The load time.
    Ingested,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampFormat {
    Iso8601,
    Epoch,
    Syslog,
    /// A strftime pattern such as `%d/%b/%Y:%H:%M:%S %z`.
    Pattern(String),
}

/// Where the value of an ECS field comes from: `a b c` takes the first of these original
/// fields that is present, `[a, b]` makes a list of every one present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcsSource {
    First(Vec<String>),
    List(Vec<String>),
}

/// One `<ecs.field> = <source fields>` line named by the `ecs` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsMapping {
    pub field: String,
    pub source: EcsSource,
}

/// One ECS field of `value_map` and its (source value, ECS value) pairs.
pub type ValueMap = (String, Vec<(String, String)>);

/// One effective key of a type after overrides, for `loader check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    /// `file:line` where the value was written.
    pub origin: String,
}

/// The ECS objects `geoip` may name: their `.ip` gets `.geo` and `.as`.
pub const GEOIP_TARGETS: &[&str] = &["source", "destination", "client", "server"];

/// One log type, validated.
#[derive(Debug, Clone)]
pub struct LogType {
    pub name: String,
    pub parser: Option<ParserKind>,
    pub s3_key: LazyRegex,
    pub s3_key_ignored: Option<LazyRegex>,
    pub file_format: FileFormat,
    pub json_delimiter: Option<String>,
    pub text_header_line_number: usize,
    pub csv_delimiter: u8,
    pub log_pattern: Option<LazyRegex>,
    pub index_name: String,
    pub index_suffix: Option<String>,
    pub index_rotation: Rotation,
    pub index_time: IndexTime,
    pub index_tz: FixedOffset,
    pub doc_id: Option<String>,
    pub doc_id_suffix: Option<String>,
    pub timestamp_key: Option<String>,
    pub timestamp_format: TimestampFormat,
    /// The es-loader's `timestamp_key_list`: keys tried in order (over `timestamp_key`).
    pub timestamp_key_list: Vec<String>,
    /// The es-loader's `timestamp_format_list`: formats tried in order (over
    /// `timestamp_format`).
    pub timestamp_format_list: Vec<TimestampFormat>,
    pub timestamp_tz: FixedOffset,
    pub loggroup: Option<LazyRegex>,
    /// `logstream`: with `loggroup`, only the streams of the group this regex matches (EKS
    /// writes every control-plane log to one group, the audit log in `kube-apiserver-audit-*`).
    pub logstream: Option<LazyRegex>,
    /// `multiline_firstline`: where a record of a `multiline` file starts.
    pub multiline_firstline: Option<LazyRegex>,
    /// `xml_firstline`: where a record of an `xml` (or `winevtxml`) file starts.
    pub xml_firstline: Option<LazyRegex>,
    /// `file_timestamp_format`: a regex whose named groups (`year`, `month`, `day`, `hour`,
    /// `minute`, `second`) read a time from the object key.
    pub file_timestamp_format: Option<LazyRegex>,
    /// `ecs` and its field lines, in the order `ecs` lists them.
    pub ecs: Vec<EcsMapping>,
    /// `static_ecs`: fields set to a fixed value.
    pub static_ecs: Vec<(String, Value)>,
    /// `geoip`: ECS objects (`source`, `destination`) whose `.ip` is looked up.
    pub geoip: Vec<String>,
    /// `renamed_newfields`: (new name, original name) of top-level fields renamed first.
    pub renamed_newfields: Vec<(String, String)>,
    /// `json_to_text`: fields whose object or list value is kept as its JSON text.
    pub json_to_text: Vec<String>,
    /// `url_encoded`: original fields the source writes percent-encoded (CloudFront's user
    /// agent and referrer); the ECS fields mapped from them get the decoded text, the original
    /// keeps what was written.
    pub url_encoded: Vec<String>,
    /// `absent_values`: what the source writes for "no value" besides `-` and the empty string
    /// (Client VPN's `NA`); ECS fields are never mapped from them.
    pub absent_values: Vec<String>,
    /// `time_fields`: other fields of the record that hold times in the type's timestamp
    /// formats (Inspector's `Mar 3, 2026, 9:14:02 PM`); they are written in RFC 3339, so the
    /// index types them as dates. A value no format reads stays as it is.
    pub time_fields: Vec<String>,
    /// `value_map`: ECS fields whose mapped value is translated into ECS's vocabulary
    /// (`event.outcome: successful=success failed=failure`); a value not listed is left out.
    pub value_maps: Vec<ValueMap>,
    /// `field_prefix`: the record's own fields go under this object, beside the ECS ones.
    pub field_prefix: Option<String>,
    /// `user_agent_enrichment_field`: the object whose `.original` is parsed into its
    /// `name`, `version`, `os` and `device` (`user_agent` when unset).
    pub user_agent_field: Option<String>,
    /// `ioc_ip` / `ioc_domain`: fields matched against the threat feeds besides the ECS
    /// address and domain fields every document is matched on.
    pub ioc_ip: Vec<String>,
    pub ioc_domain: Vec<String>,
    /// `clientip_xff`: (client address field, X-Forwarded-For field), both ECS names.
    pub clientip_xff: Option<(String, String)>,
    /// `trusted_proxies`: the proxies whose X-Forwarded-For `clientip_xff` believes.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `via_firelens`: records are FireLens JSON lines whose `log` holds the record.
    pub via_firelens: bool,
    /// `ignore_container_stderr`: FireLens records from stderr are counted as excluded.
    pub ignore_container_stderr: bool,
    /// `via_cwl`: objects may hold CloudWatch Logs subscription payloads (as Firehose writes
    /// them) whose messages are the records.
    pub via_cwl: bool,
    /// `retention_days`: how long `loader setup`'s retention policy keeps the type's indices;
    /// `None` (0 or empty) keeps them for ever.
    pub retention_days: Option<u32>,
    /// `quiet_after`: how long a source of this type (one account and region) may send nothing
    /// before `loader freshness` calls it quiet; `None` (0) for a type whose silence is normal.
    pub quiet_after: Option<std::time::Duration>,
    /// Every key visible in the section, resolved, with where it was written.
    pub settings: Vec<Setting>,
}

impl LogType {
    /// Whether the user file maps fields of this type (`ecs`, `static_ecs` or `geoip`). Built-in
    /// types without one pay nothing for the configured mapping.
    pub fn has_mapping(&self) -> bool {
        !self.ecs.is_empty() || !self.static_ecs.is_empty() || !self.geoip.is_empty()
    }

    /// Compiles every pattern of the type now (a load compiles each at its first use); the
    /// error names the key of one that cannot be.
    pub fn compile_patterns(&self) -> Result<(), ConfigError> {
        let patterns = [
            ("s3_key", Some(&self.s3_key)),
            ("s3_key_ignored", self.s3_key_ignored.as_ref()),
            ("log_pattern", self.log_pattern.as_ref()),
            ("loggroup", self.loggroup.as_ref()),
            ("logstream", self.logstream.as_ref()),
            ("multiline_firstline", self.multiline_firstline.as_ref()),
            ("xml_firstline", self.xml_firstline.as_ref()),
            ("file_timestamp_format", self.file_timestamp_format.as_ref()),
        ];
        for (key, pattern) in patterns {
            let Some(pattern) = pattern else { continue };
            pattern
                .try_compile()
                .map_err(|reason| ConfigError::Invalid {
                    location: self
                        .settings
                        .iter()
                        .find(|s| s.key == key)
                        .map_or_else(|| "(not set)".to_owned(), |s| s.origin.clone()),
                    section: self.name.clone(),
                    key: key.to_owned(),
                    reason: format!(
                        "regular expression `{}` cannot be compiled: {reason}",
                        pattern.as_str()
                    ),
                })?;
        }
        Ok(())
    }
}

/// Every type, in detection order.
#[derive(Debug, Clone)]
pub struct Config {
    pub types: Vec<LogType>,
    /// Keys no type uses (warned about, not fatal: es-loader files carry keys of their own).
    pub warnings: Vec<String>,
}

/// Keys this loader reads. Others (the es-loader's `script_ecs`, `json_to_text`, helper keys
/// used only in references, ...) produce a warning.
const KNOWN_KEYS: &[&str] = &[
    "s3_key",
    "s3_key_ignored",
    "file_format",
    "json_delimiter",
    "text_header_line_number",
    "csv_delimiter",
    "log_pattern",
    "index_name",
    "index_suffix",
    "index_rotation",
    "index_time",
    "index_tz",
    "doc_id",
    "doc_id_suffix",
    "timestamp_key",
    "timestamp_format",
    "timestamp_tz",
    "loggroup",
    "logstream",
    "ecs",
    "static_ecs",
    "geoip",
    "retention_days",
    "quiet_after",
    "file_timestamp_format",
    "multiline_firstline",
    "xml_firstline",
    "timestamp_key_list",
    "timestamp_format_list",
    // Fractions of any length are read as they are; times are written to the millisecond.
    "timestamp_nano",
    "renamed_newfields",
    "json_to_text",
    "url_encoded",
    "absent_values",
    "time_fields",
    "value_map",
    "field_prefix",
    "user_agent_enrichment_field",
    "ioc_ip",
    "ioc_domain",
    "clientip_xff",
    "trusted_proxies",
    "via_firelens",
    "ignore_container_stderr",
    "via_cwl",
    // Deprecated by the es-loader, still read: `timestamp = <key>[,<format>]`.
    "timestamp",
];

/// Older es-loader names of keys, read as the newer key when the section does not set it.
const OLDER_KEY_NAMES: &[(&str, &str)] = &[("index", "index_name"), ("format", "file_format")];

/// The es-loader's names of built-in types that differ from ours: a user file written for the
/// es-loader overrides our type under its name.
pub const ES_LOADER_SECTIONS: &[(&str, &str)] = &[("linux-secure", "linux_secure")];

/// Keys of the es-loader that do nothing here, and why: each is one warning where it is
/// written, saying so.
const ES_LOADER_KEYS: &[(&str, &str)] = &[
    (
        "script_ecs",
        "its Python normalizers do not run here: the built-in types normalize themselves and `ecs` lines map the fields of yours",
    ),
    (
        "max_log_count",
        "objects are streamed whole, without a cap on records",
    ),
    (
        "ignore_own_logs",
        "the subscriber never subscribes the pipeline's own log groups",
    ),
    ("bump_version", "it stamps the es-loader's own version"),
    (
        "custom_user_agent",
        "requests carry this loader's own user agent",
    ),
    (
        "exclude_log_patterns_filename",
        "exclusion rules are read from `--exclusions` (LOADER_EXCLUSIONS in the Lambda)",
    ),
    (
        "ecs_version",
        "documents follow the ECS version of the bundled index templates",
    ),
    ("cloud_provider", "`cloud.provider` is always `aws`"),
];

impl Config {
    /// The bundled definitions alone.
    pub fn builtin() -> Result<Self, ConfigError> {
        Self::from_ini(&Ini::parse(BUILTIN_NAME, BUILTIN_INI)?)
    }

    /// The bundled definitions with a user file read over them.
    pub fn with_user_file(file_name: &str, text: &str) -> Result<Self, ConfigError> {
        let mut ini = Ini::parse(BUILTIN_NAME, BUILTIN_INI)?.with_aliases(ES_LOADER_SECTIONS);
        ini.read(file_name, text)?;
        Self::from_ini(&ini)
    }

    pub fn from_ini(ini: &Ini) -> Result<Self, ConfigError> {
        let mut types = Vec::new();
        let referenced = ini.referenced_keys();
        let mut unknown = PerFile::default();
        for section in ini.sections() {
            let reader = SectionReader { ini, section };
            let mut log_type = reader.log_type()?;
            if log_type.parser.is_some() {
                keep_builtin_format(&reader, &mut log_type)?;
            }
            types.push(log_type);
            // Keys `script_ecs` names are the inputs of the es-loader's scripts: its one warning
            // covers them.
            let listed: Vec<String> = ["ecs", "static_ecs", "script_ecs", "renamed_newfields"]
                .iter()
                .filter_map(|k| ini.get(section, k).ok().flatten())
                .flat_map(|v| {
                    v.split_whitespace()
                        .map(str::to_lowercase)
                        .collect::<Vec<_>>()
                })
                .collect();
            for key in ini.keys(section) {
                let es_loader_key = ES_LOADER_KEYS.iter().any(|(k, _)| *k == key)
                    || OLDER_KEY_NAMES.iter().any(|(k, _)| *k == key);
                // A helper key read only through `${...}` references is used, not unknown.
                if KNOWN_KEYS.contains(&key)
                    || listed.iter().any(|l| l == key)
                    || (!es_loader_key
                        && referenced
                            .iter()
                            .any(|(s, k)| k == key && (s == section || s == ini::DEFAULT_SECTION)))
                {
                    continue;
                }
                // An empty value (the es-loader's `[DEFAULT]` lists its keys empty) loses nothing.
                if ini
                    .get_raw(section, key)
                    .is_none_or(|v| v.trim().is_empty())
                {
                    continue;
                }
                // The bundled file's own lines (an `ecs` line a user's `ecs` no longer lists)
                // are nobody's mistake.
                let Some(origin) = ini
                    .origin(section, key)
                    .filter(|o| &*o.file != BUILTIN_NAME)
                else {
                    continue;
                };
                unknown.note(origin, key, section, Vec::new());
            }
        }
        // One warning per key per file, where it is first written: an es-loader file writes
        // the same key in many sections, and `[DEFAULT]` keys are seen by all.
        let mut warnings: Vec<String> = unknown
            .0
            .into_iter()
            .map(|Noted { key, at, sections, .. }| {
                let seen = match sections.as_slice() {
                    [one] => format!("[{one}]"),
                    many => format!("{} sections", many.len()),
                };
                if let Some((_, newer)) = OLDER_KEY_NAMES.iter().find(|(k, _)| *k == key) {
                    return format!(
                        "{at}: `{key}` is the es-loader's older name of `{newer}`, read as `{newer}` where the section does not set it ({seen})"
                    );
                }
                match ES_LOADER_KEYS.iter().find(|(k, _)| *k == key) {
                    Some((_, why)) => format!("{at}: `{key}` has no effect here: {why} ({seen})"),
                    None => format!("{at}: unknown key `{key}` is ignored ({seen})"),
                }
            })
            .collect();
        warnings.extend(clientip_xff_warnings(ini, &types));
        Ok(Self { types, warnings })
    }

    pub fn get(&self, name: &str) -> Option<&LogType> {
        self.types.iter().find(|t| t.name == name)
    }
}

/// What a warning is about, one per file and key: where first written, the sections that see
/// it and the reasons found, in the order first seen.
#[derive(Default)]
struct PerFile(Vec<Noted>);

struct Noted {
    file: String,
    key: String,
    /// `file:line`.
    at: String,
    sections: Vec<String>,
    reasons: Vec<String>,
}

impl PerFile {
    fn note(&mut self, origin: &Origin, key: &str, section: &str, reasons: Vec<String>) {
        match self
            .0
            .iter_mut()
            .find(|n| *n.file == *origin.file && n.key == key)
        {
            Some(noted) => {
                noted.sections.push(section.to_owned());
                for reason in reasons {
                    if !noted.reasons.contains(&reason) {
                        noted.reasons.push(reason);
                    }
                }
            }
            None => self.0.push(Noted {
                file: origin.file.to_string(),
                key: key.to_owned(),
                at: origin.to_string(),
                sections: vec![section.to_owned()],
                reasons,
            }),
        }
    }
}

/// One warning per file where `clientip_xff` cannot work: without `trusted_proxies` no header
/// is believed, and it reads its two fields from what `ecs` lines set.
fn clientip_xff_warnings(ini: &Ini, types: &[LogType]) -> Vec<String> {
    let mut found = PerFile::default();
    for t in types {
        let Some((client, xff)) = &t.clientip_xff else {
            continue;
        };
        let Some(origin) = ini.origin(&t.name, "clientip_xff") else {
            continue;
        };
        if &*origin.file == BUILTIN_NAME {
            continue;
        }
        let mut why = Vec::new();
        if t.trusted_proxies.is_empty() {
            why.push(
                "`trusted_proxies` (the CIDR blocks of your load balancers and CDN) is not set"
                    .to_owned(),
            );
        }
        for field in [client, xff] {
            if !t.ecs.iter().any(|m| m.field == *field) {
                why.push(format!("no `ecs` line sets `{field}`"));
            }
        }
        if !why.is_empty() {
            found.note(origin, "clientip_xff", &t.name, why);
        }
    }
    found
        .0
        .into_iter()
        .map(|n| {
            format!(
                "{}: `clientip_xff` keeps the connecting address: {} ([{}])",
                n.at,
                n.reasons.join("; "),
                n.sections.join("], [")
            )
        })
        .collect()
}

/// Values the es-loader's own `aws.ini` gives the format keys of the types built in here: it
/// describes the same AWS formats in its own terms (VPC Flow Logs as space-separated `csv`,
/// Security Hub as the `findings` of EventBridge events, Linux secure by its syslog pattern).
/// A user file carrying them reads as the built-in type does.
const ES_LOADER_FORMATS: &[(&str, &str, &str)] = &[
    ("vpcflowlogs", "file_format", "csv"),
    ("vpcflowlogs", "file_format", "text"),
    ("cloudtrail", "file_format", "json"),
    ("cloudtrail", "json_delimiter", "Records"),
    ("securityhub", "file_format", "json"),
    ("securityhub", "json_delimiter", "findings"),
    ("guardduty", "file_format", "json"),
    ("waf", "file_format", "json"),
    ("linux_secure", "file_format", "text"),
    ("linux_secure", "log_pattern", "*"),
];

/// A built-in type reads its AWS format with its own parser: a user file that changes how its
/// objects are split would silently make worse documents. A value the es-loader uses for the
/// same format is read as the built-in type reads it; any other is an error naming its line.
fn keep_builtin_format(
    reader: &SectionReader<'_>,
    log_type: &mut LogType,
) -> Result<(), ConfigError> {
    const FORMAT_KEYS: [&str; 7] = [
        "file_format",
        "json_delimiter",
        "text_header_line_number",
        "csv_delimiter",
        "log_pattern",
        "multiline_firstline",
        "xml_firstline",
    ];
    // Only a user file can change them (and the bundled configuration is built from here).
    let from_user = FORMAT_KEYS.iter().any(|key| {
        reader
            .ini
            .origin(reader.section, key)
            .is_some_and(|o| &*o.file != BUILTIN_NAME)
    });
    if !from_user {
        return Ok(());
    }
    static BUILTIN: std::sync::OnceLock<Option<Config>> = std::sync::OnceLock::new();
    let Some(builtin) = BUILTIN
        .get_or_init(|| Config::builtin().ok())
        .as_ref()
        .and_then(|c| c.get(&log_type.name))
    else {
        return Ok(());
    };
    let pattern = |re: &Option<LazyRegex>| re.as_ref().map(|r| r.as_str().to_owned());
    let differs = [
        ("file_format", log_type.file_format != builtin.file_format),
        (
            "json_delimiter",
            log_type.json_delimiter != builtin.json_delimiter,
        ),
        (
            "text_header_line_number",
            log_type.text_header_line_number != builtin.text_header_line_number,
        ),
        (
            "csv_delimiter",
            log_type.csv_delimiter != builtin.csv_delimiter,
        ),
        (
            "log_pattern",
            pattern(&log_type.log_pattern) != pattern(&builtin.log_pattern),
        ),
        (
            "multiline_firstline",
            pattern(&log_type.multiline_firstline) != pattern(&builtin.multiline_firstline),
        ),
        (
            "xml_firstline",
            pattern(&log_type.xml_firstline) != pattern(&builtin.xml_firstline),
        ),
    ];
    for (key, changed) in differs {
        if !changed {
            continue;
        }
        let value = reader
            .ini
            .get(reader.section, key)?
            .unwrap_or_default()
            .trim()
            .to_owned();
        let same_format = value.is_empty()
            || ES_LOADER_FORMATS
                .iter()
                .any(|(t, k, v)| *t == log_type.name && *k == key && (*v == "*" || *v == value));
        if !same_format {
            return Err(reader.invalid(
                key,
                format!(
                    "`{value}` would change how the built-in {} type splits its objects, which its own parser reads; remove the line, or define a type of your own with another section name",
                    log_type.name
                ),
            ));
        }
    }
    log_type.file_format = builtin.file_format;
    log_type.json_delimiter = builtin.json_delimiter.clone();
    log_type.text_header_line_number = builtin.text_header_line_number;
    log_type.csv_delimiter = builtin.csv_delimiter;
    log_type.log_pattern = builtin.log_pattern.clone();
    log_type.multiline_firstline = builtin.multiline_firstline.clone();
    log_type.xml_firstline = builtin.xml_firstline.clone();
    Ok(())
}

/// One `timestamp_format` value.
fn parse_timestamp_format(value: &str) -> Result<TimestampFormat, String> {
    // The es-loader's own file quotes one (`"epoch"`); its reader looks for the word inside.
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    match value {
        "iso8601" => Ok(TimestampFormat::Iso8601),
        "epoch" => Ok(TimestampFormat::Epoch),
        "syslog" => Ok(TimestampFormat::Syslog),
        pattern if pattern.contains('%') => Ok(TimestampFormat::Pattern(pattern.to_owned())),
        other => Err(format!(
            "`{other}` is not iso8601, epoch, syslog or a strftime pattern"
        )),
    }
}

struct SectionReader<'a> {
    ini: &'a Ini,
    section: &'a str,
}

impl SectionReader<'_> {
    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            location: self
                .ini
                .origin(self.section, key)
                .map(ToString::to_string)
                .unwrap_or_else(|| "(not set)".to_owned()),
            section: self.section.to_owned(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    /// The value, trimmed; `None` when absent or empty. A key with an older es-loader name
    /// falls back to that name.
    /// A list of words (field names), empty when unset.
    fn words(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        Ok(self
            .opt(key)?
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default())
    }

    fn opt(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let trimmed = |key: &str| -> Result<Option<String>, ConfigError> {
            Ok(self
                .ini
                .get(self.section, key)?
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()))
        };
        match (
            trimmed(key)?,
            OLDER_KEY_NAMES.iter().find(|(_, newer)| *newer == key),
        ) {
            (None, Some((older, _))) => trimmed(older),
            (value, _) => Ok(value),
        }
    }

    /// `value_map = <ecs.field>: <from>=<to> ... <ecs.field>: ...`
    fn value_maps(&self) -> Result<Vec<ValueMap>, ConfigError> {
        let mut maps: Vec<ValueMap> = Vec::new();
        for word in self.words("value_map")? {
            if let Some(field) = word.strip_suffix(':') {
                maps.push((field.to_owned(), Vec::new()));
                continue;
            }
            let pair = word
                .split_once('=')
                .filter(|(from, to)| !from.is_empty() && !to.is_empty());
            match (maps.last_mut(), pair) {
                (Some((_, pairs)), Some((from, to))) => {
                    pairs.push((from.to_owned(), to.to_owned()))
                }
                (None, _) => {
                    return Err(self.invalid(
                        "value_map",
                        format!("`{word}` comes before any `<ecs.field>:`"),
                    ));
                }
                (_, None) => {
                    return Err(self.invalid(
                        "value_map",
                        format!("`{word}` is not `<value>=<ECS value>`"),
                    ));
                }
            }
        }
        Ok(maps)
    }

    fn required(&self, key: &str, why: &str) -> Result<String, ConfigError> {
        self.opt(key)?
            .ok_or_else(|| self.invalid(key, format!("is empty or missing: {why}")))
    }

    /// Checked now, compiled at first use.
    fn regex(&self, key: &str) -> Result<Option<LazyRegex>, ConfigError> {
        self.opt(key)?
            .map(|pattern| {
                LazyRegex::new(&pattern).map_err(|e| {
                    self.invalid(key, format!("invalid regular expression `{pattern}`: {e}"))
                })
            })
            .transpose()
    }

    fn offset(&self, key: &str) -> Result<FixedOffset, ConfigError> {
        let value = self.opt(key)?.unwrap_or_else(|| "+00:00".to_owned());
        parse_offset(&value).ok_or_else(|| {
            self.invalid(
                key,
                format!("`{value}` is not a time zone offset such as +00:00 or -04:30"),
            )
        })
    }

    fn log_type(&self) -> Result<LogType, ConfigError> {
        let s3_key = self
            .regex("s3_key")?
            .ok_or_else(|| self.invalid("s3_key", "is empty: the type could never be detected"))?;
        let file_format = match self.opt("file_format")?.as_deref() {
            None | Some("json") => FileFormat::Json,
            Some("text") => FileFormat::Text,
            Some("csv") => FileFormat::Csv,
            Some("multiline") => FileFormat::Multiline,
            Some("xml") => FileFormat::Xml,
            Some("winevtxml") => FileFormat::WinEvtXml,
            Some("parquet") => FileFormat::Parquet,
            Some(other) => {
                return Err(self.invalid(
                    "file_format",
                    format!(
                        "`{other}` is not one of json, text, csv, multiline, xml, winevtxml, parquet"
                    ),
                ));
            }
        };
        let xml_firstline = self.regex("xml_firstline")?;
        if file_format == FileFormat::Xml && xml_firstline.is_none() {
            return Err(self.invalid(
                "file_format",
                "xml needs xml_firstline, the regex of a record's first line".to_owned(),
            ));
        }
        let multiline_firstline = self.regex("multiline_firstline")?;
        if file_format == FileFormat::Multiline && multiline_firstline.is_none() {
            return Err(self.invalid(
                "file_format",
                "multiline needs multiline_firstline, the regex of a record's first line"
                    .to_owned(),
            ));
        }
        let text_header_line_number = match self.opt("text_header_line_number")? {
            None => 0,
            Some(v) => v.parse().map_err(|_| {
                self.invalid(
                    "text_header_line_number",
                    format!("`{v}` is not a line count"),
                )
            })?,
        };
        let csv_delimiter = match self.opt("csv_delimiter")?.as_deref() {
            None => b',',
            Some("space") => b' ',
            Some("tab") | Some("\\t") => b'\t',
            Some(v) if v.len() == 1 => v.as_bytes()[0],
            Some(v) => {
                return Err(self.invalid(
                    "csv_delimiter",
                    format!("`{v}` is not one character (or `space`, `tab`)"),
                ));
            }
        };
        let index_name = self.required("index_name", "documents need an index")?;
        let index_rotation = match self.opt("index_rotation")?.as_deref() {
            None | Some("monthly") => Rotation::Monthly,
            Some("daily") => Rotation::Daily,
            Some("weekly") => Rotation::Weekly,
            Some("yearly") => Rotation::Yearly,
            Some(other) => {
                return Err(self.invalid(
                    "index_rotation",
                    format!("`{other}` is not one of daily, weekly, monthly, yearly"),
                ));
            }
        };
        let index_time = match self.opt("index_time")?.as_deref() {
            None | Some("@timestamp") => IndexTime::Timestamp,
            Some("event_ingested") => IndexTime::Ingested,
            Some(other) => {
                return Err(self.invalid(
                    "index_time",
                    format!("`{other}` is not @timestamp or event_ingested"),
                ));
            }
        };
        // The es-loader's older `timestamp = <key>[,<format>]` wins over the newer keys, as
        // there.
        // Unless `renamed_newfields` lists `timestamp`: then its line renames a field.
        let renames_timestamp = self.opt("renamed_newfields")?.is_some_and(|v| {
            v.split_whitespace()
                .any(|f| f.eq_ignore_ascii_case("timestamp"))
        });
        let legacy = if renames_timestamp {
            None
        } else {
            self.opt("timestamp")?
        };
        let (legacy_key, legacy_format) = match legacy.as_deref() {
            Some(v) => match v.split_once(',') {
                Some((k, f)) => (Some(k.trim().to_owned()), Some(f.trim().to_owned())),
                None => (Some(v.to_owned()), None),
            },
            None => (None, None),
        };
        let format_key = if legacy_format.is_some() {
            "timestamp"
        } else {
            "timestamp_format"
        };
        let format_value = match legacy_format {
            Some(f) => Some(f),
            None => self.opt("timestamp_format")?,
        };
        let timestamp_format = match format_value.as_deref() {
            None => TimestampFormat::Iso8601,
            Some(v) => {
                parse_timestamp_format(v).map_err(|reason| self.invalid(format_key, reason))?
            }
        };
        let timestamp_key_list: Vec<String> = self
            .opt("timestamp_key_list")?
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        // A JSON list, as the es-loader reads it: `["iso8601", "%Y-%m-%d %H:%M:%S,%f"]`.
        let timestamp_format_list = match self.opt("timestamp_format_list")? {
            None => Vec::new(),
            Some(v) => serde_json::from_str::<Vec<String>>(&v)
                .map_err(|e| format!("expected a JSON list of formats: {e}"))
                .and_then(|list| list.iter().map(|f| parse_timestamp_format(f)).collect())
                .map_err(|reason| self.invalid("timestamp_format_list", reason))?,
        };
        let timestamp_key = match legacy_key {
            Some(k) => Some(k),
            None => self.opt("timestamp_key")?,
        };
        Ok(LogType {
            name: self.section.to_owned(),
            parser: ParserKind::for_section(self.section),
            s3_key,
            s3_key_ignored: self.regex("s3_key_ignored")?,
            file_format,
            json_delimiter: self.opt("json_delimiter")?,
            text_header_line_number,
            csv_delimiter,
            log_pattern: self.regex("log_pattern")?,
            index_name,
            index_suffix: self.opt("index_suffix")?,
            index_rotation,
            index_time,
            index_tz: self.offset("index_tz")?,
            doc_id: self.opt("doc_id")?,
            doc_id_suffix: self.opt("doc_id_suffix")?,
            timestamp_key,
            timestamp_format,
            timestamp_key_list,
            timestamp_format_list,
            timestamp_tz: self.offset("timestamp_tz")?,
            loggroup: self.regex("loggroup")?,
            logstream: self.regex("logstream")?,
            file_timestamp_format: self.file_timestamp_format()?,
            multiline_firstline,
            xml_firstline,
            ecs: self.ecs()?,
            static_ecs: self.static_ecs()?,
            geoip: self.geoip()?,
            renamed_newfields: self.renamed_newfields()?,
            json_to_text: self.words("json_to_text")?,
            url_encoded: self.words("url_encoded")?,
            absent_values: self.words("absent_values")?,
            time_fields: self.words("time_fields")?,
            value_maps: self.value_maps()?,
            field_prefix: self.opt("field_prefix")?,
            user_agent_field: self.opt("user_agent_enrichment_field")?,
            ioc_ip: self.words("ioc_ip")?,
            ioc_domain: self.words("ioc_domain")?,
            clientip_xff: self.clientip_xff()?,
            trusted_proxies: self.trusted_proxies()?,
            via_firelens: self.flag("via_firelens")?,
            ignore_container_stderr: self.flag("ignore_container_stderr")?,
            via_cwl: self.flag("via_cwl")?,
            retention_days: self.retention_days()?,
            quiet_after: self.quiet_after()?,
            settings: self.settings()?,
        })
    }

    /// `file_timestamp_format`, with at least a `year` group (the rest default as in the
    /// es-loader).
    fn file_timestamp_format(&self) -> Result<Option<LazyRegex>, ConfigError> {
        let Some(re) = self.regex("file_timestamp_format")? else {
            return Ok(None);
        };
        if !re.has_group("year") {
            return Err(self.invalid(
                "file_timestamp_format",
                "needs a named group `(?P<year>...)` (and month, day, hour, minute, second as the key has them)".to_owned(),
            ));
        }
        Ok(Some(re))
    }

    /// The fields listed by `key` (`ecs` or `static_ecs`), each with its own value line.
    fn listed(&self, key: &str) -> Result<Vec<(String, String)>, ConfigError> {
        let Some(list) = self.opt(key)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for field in list.split_whitespace() {
            let field = field.to_lowercase();
            if out.iter().any(|(f, _)| *f == field) {
                continue;
            }
            let value = self.opt(&field)?.ok_or_else(|| {
                self.invalid(
                    key,
                    format!("lists `{field}`, but the section has no `{field} = ...` line"),
                )
            })?;
            out.push((field, value));
        }
        Ok(out)
    }

    fn ecs(&self) -> Result<Vec<EcsMapping>, ConfigError> {
        self.listed("ecs")?
            .into_iter()
            .map(|(field, value)| {
                let source = match list_items(&value) {
                    Some(items) => EcsSource::List(items),
                    None => EcsSource::First(value.split_whitespace().map(str::to_owned).collect()),
                };
                let empty = match &source {
                    EcsSource::First(v) | EcsSource::List(v) => v.is_empty(),
                };
                if empty {
                    return Err(self.invalid(&field, "names no source field"));
                }
                Ok(EcsMapping { field, source })
            })
            .collect()
    }

    fn static_ecs(&self) -> Result<Vec<(String, Value)>, ConfigError> {
        Ok(self
            .listed("static_ecs")?
            .into_iter()
            .map(|(field, value)| {
                let value = match list_items(&value) {
                    Some(items) => Value::Array(items.into_iter().map(Value::String).collect()),
                    None => Value::String(value),
                };
                (field, value)
            })
            .collect())
    }

    fn geoip(&self) -> Result<Vec<String>, ConfigError> {
        let Some(value) = self.opt("geoip")? else {
            return Ok(Vec::new());
        };
        value
            .split_whitespace()
            .map(|target| {
                if GEOIP_TARGETS.contains(&target) {
                    Ok(target.to_owned())
                } else {
                    Err(self.invalid(
                        "geoip",
                        format!("`{target}` is not one of {}", GEOIP_TARGETS.join(", ")),
                    ))
                }
            })
            .collect()
    }

    /// A boolean as Python's `configparser` reads one.
    fn flag(&self, key: &str) -> Result<bool, ConfigError> {
        match self.opt(key)?.map(|v| v.to_lowercase()).as_deref() {
            None | Some("false" | "no" | "off" | "0") => Ok(false),
            Some("true" | "yes" | "on" | "1") => Ok(true),
            Some(other) => Err(self.invalid(key, format!("`{other}` is not true or false"))),
        }
    }

    /// Each name listed has its own `<new name> = <original field>` line.
    fn renamed_newfields(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let Some(list) = self.opt("renamed_newfields")? else {
            return Ok(Vec::new());
        };
        list.split_whitespace()
            .map(|new| {
                let old = self.opt(&new.to_lowercase())?.ok_or_else(|| {
                    self.invalid(
                        "renamed_newfields",
                        format!(
                            "lists `{new}`, but the section has no `{new} = <original field>` line"
                        ),
                    )
                })?;
                Ok((new.to_owned(), old))
            })
            .collect()
    }

    fn clientip_xff(&self) -> Result<Option<(String, String)>, ConfigError> {
        let Some(value) = self.opt("clientip_xff")? else {
            return Ok(None);
        };
        match value.split_whitespace().collect::<Vec<_>>().as_slice() {
            [client, xff] => Ok(Some(((*client).to_owned(), (*xff).to_owned()))),
            _ => Err(self.invalid(
                "clientip_xff",
                format!(
                    "`{value}` is not two fields: the client address and the X-Forwarded-For header"
                ),
            )),
        }
    }

    fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        let Some(value) = self.opt("trusted_proxies")? else {
            return Ok(Vec::new());
        };
        value
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        self.invalid(
                            "trusted_proxies",
                            format!("`{s}` is not an address or a CIDR block"),
                        )
                    })
            })
            .collect()
    }

    fn retention_days(&self) -> Result<Option<u32>, ConfigError> {
        match self.opt("retention_days")? {
            None => Ok(None),
            Some(v) => v
                .parse::<u32>()
                .map(|days| (days > 0).then_some(days))
                .map_err(|_| {
                    self.invalid(
                        "retention_days",
                        format!("`{v}` is not a number of days (0 keeps for ever)"),
                    )
                }),
        }
    }

    fn quiet_after(&self) -> Result<Option<std::time::Duration>, ConfigError> {
        match self.opt("quiet_after")? {
            None => Ok(None),
            Some(v) => crate::freshness::parse_quiet_after(&v)
                .map_err(|reason| self.invalid("quiet_after", reason)),
        }
    }

    fn settings(&self) -> Result<Vec<Setting>, ConfigError> {
        let mut out = Vec::new();
        for key in self.ini.keys(self.section) {
            let value = self.ini.get(self.section, key)?.unwrap_or_default();
            let origin = self
                .ini
                .origin(self.section, key)
                .map(ToString::to_string)
                .unwrap_or_default();
            out.push(Setting {
                key: key.to_owned(),
                value,
                origin,
            });
        }
        Ok(out)
    }
}

/// `[a, b]` → `["a", "b"]`; anything else `None`.
fn list_items(value: &str) -> Option<Vec<String>> {
    let inner = value.strip_prefix('[')?.strip_suffix(']')?;
    Some(
        inner
            .split(',')
            .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// `+09:00`, `-04:30`, `+0000`, `Z` → an offset; also hours as the es-loader writes them
/// (`9`, `-4.5`, `0`).
pub fn parse_offset(value: &str) -> Option<FixedOffset> {
    if value == "Z" || value == "UTC" {
        return FixedOffset::east_opt(0);
    }
    let body = value.trim_start_matches(['+', '-']);
    if !value.contains(':')
        && (body.len() <= 2 || body.contains('.'))
        && let Ok(hours) = value.parse::<f64>()
    {
        if !hours.is_finite() || hours.abs() >= 24.0 {
            return None;
        }
        return FixedOffset::east_opt((hours * 3600.0).round() as i32);
    }
    let (sign, rest) = match value.as_bytes().first()? {
        b'+' => (1, &value[1..]),
        b'-' => (-1, &value[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_file_is_valid_and_lists_every_type_in_order() {
        let config = Config::builtin().expect("bundled config is valid");
        let names: Vec<&str> = config.types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cloudwatchlogs",
                "cloudtrail",
                "vpcflowlogs",
                "waf",
                "securityhub",
                "guardduty",
                "linux_secure",
                "cloudhsm",
                "alb",
                "nlb",
                "clb",
                "s3accesslog",
                "cloudfront-standard",
                "cloudfront-realtime",
                "route53resolver",
                "config-history",
                "config-snapshot",
                "config-rules",
                "clientvpn",
                "networkfirewall",
                "linux-os-syslog",
                "apache-access",
                "apache-error",
                "nginx-access",
                "nginx-error",
                "rds-postgresql",
                "rds-mysql-audit",
                "rds-mysql-general",
                "rds-mysql-error",
                "rds-mysql-slowquery",
                "elasticache-redis-slowlog",
                "msk",
                "opensearch-audit",
                "eks-audit",
                "lambda",
                "apigateway-access",
                "route53-public-dns",
                "inspector",
                "workspaces-event",
                "workspaces-inventory",
                "trustedadvisor",
                "directory-service",
                "fsx-win",
                "windows-event",
                "securitylake",
                "ocsf-json",
            ]
        );
        // The first seven have a Rust normalizer; the others are described by their
        // configuration.
        let parsed = &names[..7];
        assert!(
            config
                .types
                .iter()
                .all(|t| t.parser.is_some() == parsed.contains(&t.name.as_str()))
        );
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let ct = config.get("cloudtrail").expect("cloudtrail");
        assert_eq!(ct.json_delimiter.as_deref(), Some("Records"));
        assert_eq!(ct.index_rotation, Rotation::Monthly);
        assert_eq!(ct.doc_id.as_deref(), Some("eventID"));
        let vpc = config.get("vpcflowlogs").expect("vpc");
        assert_eq!(vpc.file_format, FileFormat::Text);
        assert_eq!(vpc.text_header_line_number, 1);
    }

    #[test]
    fn a_bad_regex_is_an_error_naming_file_line_section_and_key() {
        let err = Config::with_user_file("user.ini", "[cloudtrail]\n\ns3_key = CloudTrail(\n")
            .expect_err("invalid regex")
            .to_string();
        assert!(
            err.starts_with(
                "user.ini:3: [cloudtrail] s3_key: invalid regular expression `CloudTrail(`"
            ),
            "{err}"
        );
    }

    #[test]
    fn user_overrides_change_settings_key_by_key() {
        let config = Config::with_user_file(
            "user.ini",
            "[cloudtrail]\nindex_rotation = daily\nindex_tz = +09:00\n",
        )
        .expect("valid");
        let ct = config.get("cloudtrail").expect("cloudtrail");
        assert_eq!(ct.index_rotation, Rotation::Daily);
        assert_eq!(ct.index_tz.local_minus_utc(), 9 * 3600);
        assert_eq!(ct.index_name, "log-aws-cloudtrail");
    }

    #[test]
    fn every_bundled_pattern_compiles() {
        let config = Config::builtin().expect("builtin");
        for t in &config.types {
            t.compile_patterns().expect("bundled patterns compile");
        }
    }

    #[test]
    fn invalid_values_are_reported() {
        for (text, key) in [
            (
                "[x]\ns3_key = a\nindex_name = i\nindex_rotation = hourly\n",
                "index_rotation",
            ),
            ("[x]\ns3_key = a\n", "index_name"),
            ("[x]\nindex_name = i\n", "s3_key"),
            (
                "[x]\ns3_key = a\nindex_name = i\nindex_tz = JST\n",
                "index_tz",
            ),
            (
                "[x]\ns3_key = a\nindex_name = i\nfile_format = xml\n",
                "file_format",
            ),
            (
                "[x]\ns3_key = a\nindex_name = i\nfile_timestamp_format = _(?P<years>[0-9]{4})_\n",
                "file_timestamp_format",
            ),
        ] {
            let err = Config::with_user_file("user.ini", text)
                .expect_err(text)
                .to_string();
            assert!(err.contains(&format!("[x] {key}:")), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let config = Config::with_user_file(
            "user.ini",
            "[web]\ns3_key = web/\nindex_name = log-web\nscript_ecs = x\necs = source.ip\nsource.ip = client\n",
        )
        .expect("valid");
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("script_ecs"));
        assert_eq!(config.types.last().map(|t| t.parser), Some(None));
    }

    #[test]
    fn ecs_static_ecs_geoip_and_the_older_timestamp_key() {
        let config = Config::with_user_file(
            "user.ini",
            "[web]\ns3_key = web/\nindex_name = log-web\ntimestamp = datetime\n\
timestamp_format = %d/%b/%Y:%H:%M:%S %z\ntimestamp_tz = 9\n\
ecs = source.ip\n  user.name related.user\nsource.ip = xff remotehost\nuser.name = authuser\n\
related.user = [authuser, rfc931]\nstatic_ecs = event.category\nevent.category = [web]\ngeoip = source\n",
        )
        .expect("valid");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let web = config.get("web").expect("web");
        assert_eq!(web.timestamp_key.as_deref(), Some("datetime"));
        assert_eq!(
            web.timestamp_format,
            TimestampFormat::Pattern("%d/%b/%Y:%H:%M:%S %z".into())
        );
        assert_eq!(web.timestamp_tz.local_minus_utc(), 9 * 3600);
        assert_eq!(
            web.ecs,
            [
                EcsMapping {
                    field: "source.ip".into(),
                    source: EcsSource::First(vec!["xff".into(), "remotehost".into()])
                },
                EcsMapping {
                    field: "user.name".into(),
                    source: EcsSource::First(vec!["authuser".into()])
                },
                EcsMapping {
                    field: "related.user".into(),
                    source: EcsSource::List(vec!["authuser".into(), "rfc931".into()])
                },
            ]
        );
        assert_eq!(
            web.static_ecs,
            [("event.category".to_owned(), serde_json::json!(["web"]))]
        );
        assert_eq!(web.geoip, ["source"]);
        assert!(web.has_mapping());
        let legacy = Config::with_user_file(
            "user.ini",
            "[web]\ns3_key = web/\nindex_name = log-web\ntimestamp = time,epoch\n",
        )
        .expect("valid");
        let web = legacy.get("web").expect("web");
        assert_eq!(web.timestamp_key.as_deref(), Some("time"));
        assert_eq!(web.timestamp_format, TimestampFormat::Epoch);
        assert!(!web.has_mapping());
    }

    #[test]
    fn mapping_errors_name_file_line_section_and_key() {
        for (text, expected) in [
            (
                "[web]\ns3_key = web/\nindex_name = i\necs = source.ip user.name\nsource.ip = a\n",
                "user.ini:4: [web] ecs: lists `user.name`, but the section has no `user.name = ...` line",
            ),
            (
                "[web]\ns3_key = web/\nindex_name = i\ngeoip = source host\n",
                "user.ini:4: [web] geoip: `host` is not one of source, destination, client, server",
            ),
            (
                "[web]\ns3_key = web/\nindex_name = i\ntimestamp = t,soon\n",
                "user.ini:4: [web] timestamp: `soon` is not iso8601",
            ),
            (
                "[web]\ns3_key = web/\nindex_name = i\nlog_pattern = (?P<a>x\n",
                "user.ini:4: [web] log_pattern: invalid regular expression `(?P<a>x`",
            ),
        ] {
            let err = Config::with_user_file("user.ini", text)
                .expect_err(text)
                .to_string();
            assert!(err.starts_with(expected), "{err}");
        }
    }

    #[test]
    fn default_inheritance_and_references_across_sections() {
        let config = Config::with_user_file(
            "user.ini",
            "[DEFAULT]\nindex_rotation = daily\nindex_tz = +09:00\n\
[web]\ns3_key = UserLogs/web/\nindex_name = log-web\n\
[web-error]\ns3_key = ${web:s3_key}error/\nindex_name = ${web:index_name}-error\nindex_rotation = yearly\n",
        )
        .expect("valid");
        let web = config.get("web").expect("web");
        assert_eq!(web.index_rotation, Rotation::Daily);
        assert_eq!(web.index_tz.local_minus_utc(), 9 * 3600);
        let error = config.get("web-error").expect("web-error");
        assert_eq!(error.s3_key.as_str(), "UserLogs/web/error/");
        assert_eq!(error.index_name, "log-web-error");
        assert_eq!(error.index_rotation, Rotation::Yearly);
        // The bundled types inherit the user's [DEFAULT] too, unless they set the key.
        assert_eq!(
            config.get("cloudtrail").expect("ct").index_rotation,
            Rotation::Daily
        );
        let setting = error
            .settings
            .iter()
            .find(|s| s.key == "index_name")
            .expect("listed");
        assert_eq!(setting.value, "log-web-error");
        assert_eq!(setting.origin, "user.ini:9");
    }

    #[test]
    fn offsets() {
        assert_eq!(
            parse_offset("+09:00").map(|o| o.local_minus_utc()),
            Some(32400)
        );
        assert_eq!(
            parse_offset("-04:30").map(|o| o.local_minus_utc()),
            Some(-16200)
        );
        assert_eq!(parse_offset("0900"), None);
        assert_eq!(
            parse_offset("+0900").map(|o| o.local_minus_utc()),
            Some(32400)
        );
        assert_eq!(parse_offset("9").map(|o| o.local_minus_utc()), Some(32400));
        assert_eq!(
            parse_offset("-4.5").map(|o| o.local_minus_utc()),
            Some(-16200)
        );
        assert_eq!(parse_offset("0").map(|o| o.local_minus_utc()), Some(0));
        assert_eq!(parse_offset("24"), None);
        assert_eq!(parse_offset("+25:00"), None);
    }

    /// A user file written for the es-loader: its `[linux-secure]` is our `linux_secure`, its
    /// references to that name resolve, and a key we do not use written once in `[DEFAULT]`
    /// is one warning, not one per section.
    #[test]
    fn es_loader_names_and_one_warning_per_written_key() {
        let user = "[DEFAULT]\nscript_ecs = x\nmax_log_count = 50000\n\n[linux-secure]\nindex_name = log-os-secure\n\n[apache]\ns3_key = apache/\nfile_format = text\nindex_name = ${linux-secure:index_name}-apache\n";
        let config = Config::with_user_file("user.ini", user).expect("config");
        let secure = config.get("linux_secure").expect("built-in type");
        assert_eq!(secure.index_name, "log-os-secure");
        assert!(config.get("linux-secure").is_none());
        assert_eq!(
            config.get("apache").expect("apache").index_name,
            "log-os-secure-apache"
        );
        let warnings: Vec<&String> = config
            .warnings
            .iter()
            .filter(|w| w.starts_with("user.ini:"))
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(
            warnings[0].starts_with("user.ini:2: `script_ecs` has no effect here: ")
                && warnings[0].ends_with(" sections)"),
            "{warnings:#?}"
        );
    }

    #[test]
    fn multiline_needs_its_first_line() {
        let e = Config::with_user_file(
            "user.ini",
            "[pg]\ns3_key = /pg/\nfile_format = multiline\nindex_name = log-pg\n",
        )
        .expect_err("no multiline_firstline")
        .to_string();
        assert!(
            e.contains("user.ini:3") && e.contains("multiline_firstline"),
            "{e}"
        );
        let ok = Config::with_user_file(
            "user.ini",
            "[pg]\ns3_key = /pg/\nfile_format = multiline\nmultiline_firstline = ^20\\d\\d-\nindex_name = log-pg\n",
        )
        .expect("valid");
        assert_eq!(ok.get("pg").expect("pg").file_format, FileFormat::Multiline);
        assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
    }

    #[test]
    fn timestamp_key_and_format_lists_as_the_es_loader_reads_them() {
        let config = Config::with_user_file(
            "user.ini",
            "[app]\ns3_key = /app/\nindex_name = log-app\ntimestamp_key_list = time_stamp TimeStamp\ntimestamp_format_list = [\"iso8601\", \"%Y-%m-%d %H:%M:%S,%f\"]\n",
        )
        .expect("valid");
        let app = config.get("app").expect("app");
        assert_eq!(app.timestamp_key_list, ["time_stamp", "TimeStamp"]);
        assert_eq!(
            app.timestamp_format_list,
            [
                TimestampFormat::Iso8601,
                TimestampFormat::Pattern("%Y-%m-%d %H:%M:%S,%f".into())
            ]
        );
        let e = Config::with_user_file(
            "user.ini",
            "[app]\ns3_key = /app/\nindex_name = log-app\ntimestamp_format_list = iso8601 epoch\n",
        )
        .expect_err("not JSON")
        .to_string();
        assert!(e.contains("user.ini:4") && e.contains("JSON list"), "{e}");
    }

    /// A user file for the es-loader describes the built-in formats in its own terms: read as
    /// the built-in types read them. Another value would silently split objects wrongly: an
    /// error naming its line.
    #[test]
    fn built_in_formats_are_kept_and_contradictions_named() {
        let esloader = "[vpcflowlogs]\nfile_format = csv\n\n[securityhub]\nfile_format = json\njson_delimiter = findings\n";
        let config = Config::with_user_file("aws.ini.es", esloader).expect("same formats");
        let builtin = Config::builtin().expect("builtin");
        for t in ["vpcflowlogs", "securityhub"] {
            let (a, b) = (config.get(t).expect(t), builtin.get(t).expect(t));
            assert_eq!(a.file_format, b.file_format, "{t}");
            assert_eq!(a.json_delimiter, b.json_delimiter, "{t}");
            assert_eq!(a.text_header_line_number, b.text_header_line_number, "{t}");
        }
        let e = Config::with_user_file("user.ini", "[cloudtrail]\njson_delimiter = events\n")
            .expect_err("contradiction")
            .to_string();
        assert!(
            e.starts_with("user.ini:2: [cloudtrail] json_delimiter: `events` would change"),
            "{e}"
        );
    }
}
