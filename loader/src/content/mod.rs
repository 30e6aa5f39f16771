//! OpenSearch content as code: what a cluster needs before the first document arrives.
//!
//! The content is data under `loader/content/`, bundled into the binary, read by code that
//! knows nothing of what it says:
//!
//! - `components/*.fields` and `types/*.fields`: field tables ([`fields`]), one line per field.
//!   Each component file becomes a component template (the ECS groups every type shares); each
//!   type file holds the fields of one log type of the configuration (its section name).
//! - `settings.json`: the component template of index settings and of the mapping rules for
//!   fields nobody declared (strings become `keyword`, never dates or text+keyword pairs).
//! - `retention.json`: the ISM policy of one type, with `${...}` placeholders.
//! - `dashboards/*.toml`: dashboards as lists of panels ([`dashboards`]).
//!
//! [`plan`] turns them and the loader's configuration into [`Artifact`]s: component templates,
//! one index template per index of the configuration (its rotated indices reached through an
//! alias named like the index, `log-aws-cloudtrail`), one ISM retention policy per index, and
//! Dashboards saved objects. Everything here is pure; `crate::setup` sends the artifacts.

pub mod dashboards;
pub mod fields;
pub mod ism;
pub mod security;
pub mod snapshots;
pub mod substitute;
pub mod templates;

use crate::config::{Config, LogType, Rotation};
use fields::{FieldTable, FieldTableError};
use include_dir::{Dir, include_dir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

static BUNDLED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/content");

/// The prefix of every name the loader gives a template, a policy or a saved object, so an
/// operator sees at a glance what it manages.
pub const NAME_PREFIX: &str = "org-security-logs";

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error(transparent)]
    Fields(#[from] FieldTableError),
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    #[error("index {alias}: {reason}")]
    Index { alias: String, reason: String },
    #[error(transparent)]
    Dashboard(#[from] dashboards::DashboardError),
}

impl ContentError {
    fn file(file: &str, reason: impl Into<String>) -> Self {
        Self::File {
            file: file.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The content files, parsed: the bundled ones, and any a user adds.
#[derive(Debug, Clone)]
pub struct Content {
    /// Component field tables by name (file stem), in name order.
    pub components: BTreeMap<String, FieldTable>,
    /// Field tables of log types by type name.
    pub types: BTreeMap<String, FieldTable>,
    pub settings: Value,
    pub retention: Value,
    pub dashboards: Vec<dashboards::DashboardSpec>,
}

impl Content {
    /// The content bundled into the binary.
    pub fn bundled() -> Result<Self, ContentError> {
        let (components, types) = bundled_tables()?;
        let mut content = Self {
            components,
            types,
            settings: bundled_json("settings.json")?,
            retention: bundled_json("retention.json")?,
            dashboards: Vec::new(),
        };
        for (path, text) in bundled_files("dashboards", "toml")? {
            content
                .dashboards
                .push(dashboards::DashboardSpec::parse(&path, text)?);
        }
        Ok(content)
    }

    /// Adds a user field table named after its type (`apache.fields` for `[apache]`); fields
    /// of a bundled type are added to its own.
    pub fn add_type_fields(&mut self, path: &str, text: &str) -> Result<(), ContentError> {
        let table = FieldTable::parse(path, text)?;
        let name = stem(path);
        match self.types.get_mut(&name) {
            Some(existing) => existing
                .merge(&table)
                .map_err(|reason| ContentError::file(path, reason))?,
            None => {
                self.types.insert(name, table);
            }
        }
        Ok(())
    }

    /// Adds a user dashboard; one with the id of a bundled dashboard replaces it.
    pub fn add_dashboard(&mut self, path: &str, text: &str) -> Result<(), ContentError> {
        let spec = dashboards::DashboardSpec::parse(path, text)?;
        self.dashboards.retain(|d| d.id != spec.id);
        self.dashboards.push(spec);
        Ok(())
    }

    /// Every component table merged: the ECS fields every index has.
    pub fn shared_fields(&self) -> Result<FieldTable, ContentError> {
        merged(&self.components)
    }
}

/// The bundled field tables alone (components, types), without the rest of the content: what
/// the loader itself reads of it.
type Tables = (BTreeMap<String, FieldTable>, BTreeMap<String, FieldTable>);

fn bundled_tables() -> Result<Tables, ContentError> {
    let mut tables: Tables = (BTreeMap::new(), BTreeMap::new());
    for (folder, target) in [("components", &mut tables.0), ("types", &mut tables.1)] {
        for (path, text) in bundled_files(folder, "fields")? {
            target.insert(stem(&path), FieldTable::parse(&path, text)?);
        }
    }
    Ok(tables)
}

/// Every table of `components` merged.
fn merged(components: &BTreeMap<String, FieldTable>) -> Result<FieldTable, ContentError> {
    let mut all = FieldTable::default();
    for table in components.values() {
        all.merge(table)
            .map_err(|reason| ContentError::file("components", reason))?;
    }
    Ok(all)
}

/// The bundled field tables the loader itself reads: the type tables, and the components
/// merged. Parsed once, for [`shared_fields`] and [`flat_object_fields`] alike.
fn loader_tables() -> Option<&'static (BTreeMap<String, FieldTable>, FieldTable)> {
    static TABLES: OnceLock<Option<(BTreeMap<String, FieldTable>, FieldTable)>> = OnceLock::new();
    TABLES
        .get_or_init(|| {
            let (components, types) = bundled_tables().ok()?;
            Some((types, merged(&components).ok()?))
        })
        .as_ref()
}

/// The bundled ECS fields (all components): the configured mapping of user types converts
/// values to the types declared here.
pub fn shared_fields() -> Option<&'static FieldTable> {
    loader_tables().map(|(_, shared)| shared)
}

/// The flat-object fields of each bundled log type, by type name: the loader keeps their
/// values within what OpenSearch indexes (see `crate::oversize`). Worked out once.
pub fn flat_object_fields() -> &'static BTreeMap<String, Vec<String>> {
    static FIELDS: OnceLock<BTreeMap<String, Vec<String>>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let Some((types, shared)) = loader_tables() else {
            return BTreeMap::new();
        };
        let shared = flat_names(shared);
        types
            .iter()
            .map(|(name, table)| {
                let mut fields = shared.clone();
                fields.extend(flat_names(table));
                (name.clone(), fields)
            })
            .filter(|(_, fields)| !fields.is_empty())
            .collect()
    })
}

fn flat_names(table: &FieldTable) -> Vec<String> {
    table
        .iter()
        .filter(|(_, kind)| *kind == fields::FieldType::FlatObject)
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// One index of the configuration: the rotated indices of one or more types, one template,
/// one alias, one retention.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexGroup {
    /// `<index_name>[-<index_suffix>]`: the alias of every rotated index, and the name of the
    /// index template, the retention policy and the index pattern.
    pub alias: String,
    /// The types writing to it, in configuration order.
    pub types: Vec<String>,
    pub rotation: Rotation,
    /// Days to keep; `None` keeps indices for ever.
    pub retention_days: Option<u32>,
}

impl IndexGroup {
    /// The rotated indices: `log-aws-cloudtrail-2026-12`.
    pub fn pattern(&self) -> String {
        format!("{}-*", self.alias)
    }

    /// The rotated indices of this group that a cluster may already have.
    pub fn existing(&self) -> ExistingIndices {
        ExistingIndices {
            alias: self.alias.clone(),
            rotation: self.rotation,
        }
    }

    /// Longer names win: `log-aws-waf-cf-*` must beat `log-aws-waf-*`, which matches it too.
    /// OpenSearch refuses two templates with overlapping patterns at one priority.
    pub fn priority(&self) -> u64 {
        100 + self.alias.len() as u64
    }
}

/// The alias of a type's indices.
pub fn alias_of(log_type: &LogType) -> String {
    match &log_type.index_suffix {
        Some(suffix) => format!("{}-{suffix}", log_type.index_name),
        None => log_type.index_name.clone(),
    }
}

/// The indices of a configuration, one per alias in first-seen order. `retention` overrides
/// the configured days per type name (`"*"` for every type); 0 keeps for ever.
pub fn index_groups(
    config: &Config,
    retention: &BTreeMap<String, u32>,
) -> Result<Vec<IndexGroup>, ContentError> {
    let mut groups: Vec<IndexGroup> = Vec::new();
    for t in &config.types {
        let alias = alias_of(t);
        let days = retention
            .get(&t.name)
            .or_else(|| retention.get("*"))
            .copied()
            .or(t.retention_days)
            .filter(|d| *d > 0);
        match groups.iter_mut().find(|g| g.alias == alias) {
            Some(group) => {
                if group.rotation != t.index_rotation {
                    return Err(ContentError::Index {
                        alias,
                        reason: format!(
                            "types {} and {} share the index with different index_rotation",
                            group.types.join(", "),
                            t.name
                        ),
                    });
                }
                // The longest retention of the types sharing it: none loses data early.
                group.retention_days = match (group.retention_days, days) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                group.types.push(t.name.clone());
            }
            None => groups.push(IndexGroup {
                alias,
                types: vec![t.name.clone()],
                rotation: t.index_rotation,
                retention_days: days,
            }),
        }
    }
    groups.push(alerts_group(retention));
    Ok(groups)
}

/// The name of the alert documents' log type in retention settings (`alerts=DAYS`).
pub const ALERTS: &str = "alerts";

/// Days alerts are kept unless told otherwise.
const ALERTS_RETENTION_DAYS: u32 = 365;

/// The alerts of the detection rules (`alert-<YYYY-MM>`): an index of their own, mapped by
/// the shared components alone.
fn alerts_group(retention: &BTreeMap<String, u32>) -> IndexGroup {
    let days = retention
        .get(ALERTS)
        .or_else(|| retention.get("*"))
        .copied()
        .unwrap_or(ALERTS_RETENTION_DAYS);
    IndexGroup {
        alias: crate::rules::alert::ALERT_INDEX.to_owned(),
        types: vec![ALERTS.to_owned()],
        rotation: Rotation::Monthly,
        retention_days: (days > 0).then_some(days),
    }
}

/// Settings of the cluster side that are not content: given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub shards: u32,
    pub replicas: u32,
    pub refresh_interval: String,
    /// Days to keep by type name, over the configuration's `retention_days` (`"*"`: all).
    pub retention: BTreeMap<String, u32>,
    /// Where daily snapshots go; `None`: no repository, no snapshot policy.
    pub snapshots: Option<snapshots::SnapshotOptions>,
    /// Backend roles of the loader and of analysts, on a cluster with fine-grained access
    /// control; empty: no roles, no mappings.
    pub security: security::SecurityOptions,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            shards: 1,
            replicas: 1,
            refresh_interval: "30s".to_owned(),
            retention: BTreeMap::new(),
            snapshots: None,
            security: security::SecurityOptions::default(),
        }
    }
}

/// What a cluster or Dashboards is given, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub kind: ArtifactKind,
    /// The template or policy name, or the saved object's `type/id`.
    pub name: String,
    /// The request body (for a saved object, the object as the saved-objects API takes it).
    pub body: Value,
    /// The indices it also concerns once applied (an alias or a policy for the rotated indices
    /// that already exist).
    pub existing: Option<ExistingIndices>,
}

/// The rotated indices of one index of the configuration, as they may exist on a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingIndices {
    pub alias: String,
    pub rotation: Rotation,
}

impl ExistingIndices {
    /// `log-aws-cloudtrail-*`: what to list.
    pub fn pattern(&self) -> String {
        format!("{}-*", self.alias)
    }

    /// Exactly the rotated names (`log-aws-cloudtrail-2026-12`), not those of a longer index
    /// name the pattern also matches (`log-aws-waf-*` and `log-aws-waf-cf-2026-12`).
    pub fn matches(&self, index: &str) -> bool {
        let Some(period) = index
            .strip_prefix(self.alias.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
        else {
            return false;
        };
        let shape: &[u8] = match self.rotation {
            Rotation::Daily => b"dddd-dd-dd",
            Rotation::Weekly => b"dddd-wdd",
            Rotation::Monthly => b"dddd-dd",
            Rotation::Yearly => b"dddd",
        };
        period.len() == shape.len()
            && period.bytes().zip(shape).all(|(c, s)| match s {
                b'd' => c.is_ascii_digit(),
                other => c == *other,
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArtifactKind {
    ComponentTemplate,
    IndexTemplate,
    IsmPolicy,
    SavedObject,
    /// An OpenSearch Notifications channel the monitors send to (the alert topic).
    NotificationChannel,
    /// An OpenSearch Alerting monitor (a threshold or sequence detection rule).
    Monitor,
    /// A manual snapshot repository in S3.
    SnapshotRepository,
    /// A snapshot management policy (daily snapshots, deletion by age).
    SnapshotPolicy,
    /// A role of the security plugin (fine-grained access control).
    SecurityRole,
    /// The backend roles mapped to a security plugin role.
    SecurityRoleMapping,
}

impl ArtifactKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::ComponentTemplate => "component template",
            Self::IndexTemplate => "index template",
            Self::IsmPolicy => "ISM policy",
            Self::SavedObject => "saved object",
            Self::NotificationChannel => "notification channel",
            Self::Monitor => "monitor",
            Self::SnapshotRepository => "snapshot repository",
            Self::SnapshotPolicy => "snapshot policy",
            Self::SecurityRole => "security role",
            Self::SecurityRoleMapping => "role mapping",
        }
    }
}

/// Every artifact of a configuration, in the order they must be applied (components before
/// the templates composed of them, index patterns before the visualizations that use them).
pub fn plan(
    config: &Config,
    content: &Content,
    options: &Options,
) -> Result<Vec<Artifact>, ContentError> {
    let groups = index_groups(config, &options.retention)?;
    let mut out = templates::component_templates(content, options)?;
    for group in &groups {
        out.push(templates::index_template(content, group)?);
    }
    for group in &groups {
        if let Some(policy) = ism::retention_policy(&content.retention, group)? {
            out.push(policy);
        }
    }
    out.extend(dashboards::saved_objects(config, content, &groups)?);
    if let Some(snapshots) = &options.snapshots {
        out.extend(snapshots::artifacts(snapshots));
    }
    out.extend(security::artifacts(&options.security));
    Ok(out)
}

fn bundled_json(path: &str) -> Result<Value, ContentError> {
    let file = BUNDLED
        .get_file(path)
        .ok_or_else(|| ContentError::file(path, "missing from the bundled content"))?;
    serde_json::from_slice(file.contents())
        .map_err(|e| ContentError::file(path, format!("not valid JSON: {e}")))
}

/// The bundled files of a folder with an extension, as (`folder/name.ext`, text), by name.
fn bundled_files(folder: &str, ext: &str) -> Result<Vec<(String, &'static str)>, ContentError> {
    let Some(dir) = BUNDLED.get_dir(folder) else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for file in dir.files() {
        let path = file.path().to_string_lossy().into_owned();
        if file.path().extension().is_some_and(|e| e == ext) {
            let text = file
                .contents_utf8()
                .ok_or_else(|| ContentError::file(&path, "not UTF-8 text"))?;
            files.push((path, text));
        }
    }
    files.sort();
    Ok(files)
}

/// `types/cloudtrail.fields` -> `cloudtrail`.
fn stem(path: &str) -> String {
    std::path::Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_content_parses_and_names_every_builtin_type() {
        let content = Content::bundled().expect("bundled content");
        let config = Config::builtin().expect("builtin config");
        for t in &config.types {
            assert!(
                content.types.contains_key(&t.name),
                "no types/{}.fields",
                t.name
            );
        }
        for name in content.types.keys() {
            assert!(
                config.get(name).is_some(),
                "types/{name}.fields names no type"
            );
        }
        let shared = content.shared_fields().expect("components agree");
        assert_eq!(
            shared.get("@timestamp"),
            Some(fields::FieldType::Date),
            "every document has a time"
        );
        // Type tables never redeclare a shared field with another type.
        for (name, table) in &content.types {
            let mut merged = shared.clone();
            merged
                .merge(table)
                .unwrap_or_else(|e| panic!("types/{name}.fields: {e}"));
        }
    }

    #[test]
    fn groups_follow_the_configuration_and_retention_overrides() {
        let config = Config::with_user_file(
            "user.ini",
            "[waf_cf]\ns3_key = cf-waf\nindex_name = log-aws-waf\nindex_suffix = cf\nretention_days = 30\n\
             [waf_copy]\ns3_key = copy-waf\nindex_name = log-aws-waf\nretention_days = 400\n",
        )
        .expect("config");
        let groups = index_groups(&config, &BTreeMap::new()).expect("groups");
        let waf = groups
            .iter()
            .find(|g| g.alias == "log-aws-waf")
            .expect("waf");
        assert_eq!(waf.types, ["waf", "waf_copy"]);
        assert_eq!(waf.retention_days, Some(400));
        let cf = groups
            .iter()
            .find(|g| g.alias == "log-aws-waf-cf")
            .expect("cf");
        assert_eq!(cf.pattern(), "log-aws-waf-cf-*");
        assert!(cf.priority() > waf.priority());

        let overrides = BTreeMap::from([("*".to_owned(), 7), ("waf_cf".to_owned(), 0)]);
        let groups = index_groups(&config, &overrides).expect("groups");
        let cf = groups
            .iter()
            .find(|g| g.alias == "log-aws-waf-cf")
            .expect("cf");
        assert_eq!(cf.retention_days, None);
        assert!(
            groups
                .iter()
                .filter(|g| g.alias != "log-aws-waf-cf")
                .all(|g| g.retention_days == Some(7))
        );
    }

    #[test]
    fn flat_object_fields_come_from_the_type_tables() {
        let flat = flat_object_fields();
        assert!(flat["cloudtrail"].iter().any(|f| f == "requestParameters"));
        assert!(flat["securityhub"].iter().any(|f| f == "Resources.Details"));
        // The shared components' flat objects (account tags) are every type's; flow logs have
        // none of their own.
        assert_eq!(flat["vpcflowlogs"], ["aws.account.tags"]);
        assert!(flat["cloudtrail"].iter().any(|f| f == "aws.account.tags"));
    }

    #[test]
    fn existing_indices_are_the_rotated_names_alone() {
        let monthly = ExistingIndices {
            alias: "log-aws-waf".into(),
            rotation: Rotation::Monthly,
        };
        assert_eq!(monthly.pattern(), "log-aws-waf-*");
        assert!(monthly.matches("log-aws-waf-2026-12"));
        for other in [
            "log-aws-waf-cf-2026-12",
            "log-aws-waf-2026-1",
            "log-aws-waf-2026-12-01",
            "log-aws-waf",
            "log-aws-wafx-2026-12",
        ] {
            assert!(!monthly.matches(other), "{other}");
        }
        let weekly = ExistingIndices {
            alias: "a".into(),
            rotation: Rotation::Weekly,
        };
        assert!(weekly.matches("a-2026-w05") && !weekly.matches("a-2026-05"));
        let daily = ExistingIndices {
            alias: "a".into(),
            rotation: Rotation::Daily,
        };
        assert!(daily.matches("a-2026-12-06"));
        let yearly = ExistingIndices {
            alias: "a".into(),
            rotation: Rotation::Yearly,
        };
        assert!(yearly.matches("a-2026") && !yearly.matches("a-26"));
    }

    #[test]
    fn types_sharing_an_index_must_rotate_alike() {
        let config = Config::with_user_file(
            "user.ini",
            "[daily_waf]\ns3_key = x\nindex_name = log-aws-waf\nindex_rotation = daily\n",
        )
        .expect("config");
        let err = index_groups(&config, &BTreeMap::new()).expect_err("rotation differs");
        assert!(err.to_string().contains("daily_waf"), "{err}");
    }
}
