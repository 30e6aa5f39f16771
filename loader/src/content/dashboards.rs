//! Dashboards: each `dashboards/*.toml` file is one dashboard, a list of panels that say what
//! to count by which fields. They become OpenSearch Dashboards saved objects: an index pattern
//! per index (`log-aws-cloudtrail-*`, time field `@timestamp`) and one over every index, a
//! visualization per panel and the dashboard laying them out.
//!
//! A panel is checked against the field table of the index it reads: it may only count by
//! fields the templates map with a type that can be counted (a visualization on a missing or
//! a text field shows nothing), and its query may only name mapped fields.
//!
//! ```toml
//! id = "waf"                  # saved-object ids: org-security-logs-waf, org-security-logs-waf-<panel>
//! title = "AWS WAF"
//! index = "waf"               # the log type whose index the panels read, or "all"
//!
//! [[panel]]
//! id = "blocked-over-time"
//! title = "Blocked requests over time"
//! chart = "line"              # line, bar, pie, table, metric or map
//! query = 'event.action:BLOCK'
//! split = "rule.name"         # line and bar: one series per value
//! ```

use super::fields::{FieldTable, FieldType, Resolved};
use super::{Artifact, ArtifactKind, Content, ContentError, IndexGroup, NAME_PREFIX};
use crate::config::Config;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// `index` of a dashboard or panel that reads every index.
pub const ALL: &str = "all";

/// The grid of a dashboard is this many columns wide.
const GRID_COLUMNS: u32 = 48;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct DashboardError {
    pub file: String,
    pub reason: String,
}

/// One dashboard file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSpec {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The log type whose index the panels read, or [`ALL`].
    pub index: String,
    /// The time range the dashboard opens with.
    #[serde(default = "default_time_from")]
    pub time_from: String,
    #[serde(rename = "panel")]
    pub panels: Vec<PanelSpec>,
    #[serde(skip)]
    pub file: String,
}

/// One panel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelSpec {
    pub id: String,
    pub title: String,
    pub chart: Chart,
    /// Another index than the dashboard's.
    #[serde(default)]
    pub index: Option<String>,
    /// A query in the Dashboards query language (KQL): only matching documents count.
    #[serde(default)]
    pub query: String,
    /// The fields to count by: table rows (one column each), pie slices, bar categories.
    #[serde(default)]
    pub terms: Vec<String>,
    /// Line and bar charts: one series per value of this field.
    #[serde(default)]
    pub split: Option<String>,
    /// `count` (the default), or `unique:<field>`, `sum:<field>`, `max:<field>`, `avg:<field>`.
    #[serde(default)]
    pub metric: Option<String>,
    /// Map: the `geo_point` field to place documents by.
    #[serde(default)]
    pub field: Option<String>,
    /// How many values of each field to show.
    #[serde(default = "default_size")]
    pub size: u32,
    /// Width in grid columns (of 48), height in rows.
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Chart {
    /// Documents over time.
    Line,
    /// Categories of `terms` (or time, without `terms`), stacked by `split`.
    Bar,
    Pie,
    Table,
    /// One number.
    Metric,
    /// Documents placed by a `geo_point`.
    Map,
}

fn default_time_from() -> String {
    "now-7d".to_owned()
}

fn default_size() -> u32 {
    10
}

/// How a panel uses a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Usage {
    /// Counted by: needs a mapped field of a type that aggregates.
    Aggregated,
    /// Placed on a map: needs a `geo_point`.
    Located,
    /// Named in the query: needs a mapped field, or a value inside a flat object.
    Queried,
}

/// A metric of a panel: the aggregation and its field.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Metric {
    kind: &'static str,
    field: Option<String>,
}

impl PanelSpec {
    fn metric(&self) -> Result<Metric, String> {
        let Some(spec) = self.metric.as_deref().filter(|m| *m != "count") else {
            return Ok(Metric {
                kind: "count",
                field: None,
            });
        };
        let (kind, field) = spec
            .split_once(':')
            .ok_or_else(|| format!("metric `{spec}` is not count or <kind>:<field>"))?;
        let kind = match kind {
            "unique" => "cardinality",
            "sum" => "sum",
            "max" => "max",
            "avg" => "avg",
            other => {
                return Err(format!(
                    "metric `{other}` is not one of count, unique, sum, max, avg"
                ));
            }
        };
        Ok(Metric {
            kind,
            field: Some(field.to_owned()),
        })
    }

    /// Every field the panel names, with how it uses it.
    pub fn fields(&self) -> Result<Vec<(String, Usage)>, String> {
        let mut out: Vec<(String, Usage)> = self
            .terms
            .iter()
            .chain(&self.split)
            .map(|f| (f.clone(), Usage::Aggregated))
            .collect();
        if let Some(field) = self.metric()?.field {
            out.push((field, Usage::Aggregated));
        }
        if let Some(field) = &self.field {
            out.push((field.clone(), Usage::Located));
        }
        out.extend(
            query_fields(&self.query)
                .into_iter()
                .map(|f| (f, Usage::Queried)),
        );
        Ok(out)
    }

    fn check_shape(&self) -> Result<(), String> {
        let needs_terms = matches!(self.chart, Chart::Pie | Chart::Table);
        if needs_terms && self.terms.is_empty() {
            return Err(format!("a {:?} chart needs `terms`", self.chart).to_lowercase());
        }
        if self.chart == Chart::Map && self.field.is_none() {
            return Err("a map needs `field`, a geo_point".to_owned());
        }
        if self.chart != Chart::Map && self.field.is_some() {
            return Err("`field` is for maps; count by `terms`".to_owned());
        }
        if self.split.is_some() && !matches!(self.chart, Chart::Line | Chart::Bar) {
            return Err("`split` is for line and bar charts".to_owned());
        }
        if !self.terms.is_empty() && matches!(self.chart, Chart::Line | Chart::Metric | Chart::Map)
        {
            return Err("line, metric and map charts take no `terms`".to_owned());
        }
        if self.terms.len() > 1 && self.chart != Chart::Table {
            return Err("only a table counts by more than one field".to_owned());
        }
        if self.width.is_some_and(|w| w == 0 || w > GRID_COLUMNS) {
            return Err(format!("width must be 1 to {GRID_COLUMNS} columns"));
        }
        self.metric().map(|_| ())
    }
}

impl DashboardSpec {
    pub fn parse(file: &str, text: &str) -> Result<Self, DashboardError> {
        let error = |reason: String| DashboardError {
            file: file.to_owned(),
            reason,
        };
        let mut spec: DashboardSpec = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        spec.file = file.to_owned();
        if !is_id(&spec.id) {
            return Err(error(format!(
                "id `{}` must be lowercase letters, digits and dashes",
                spec.id
            )));
        }
        let mut ids = BTreeSet::new();
        for panel in &spec.panels {
            if !is_id(&panel.id) {
                return Err(error(format!(
                    "panel id `{}` must be lowercase letters, digits and dashes",
                    panel.id
                )));
            }
            if !ids.insert(&panel.id) {
                return Err(error(format!("panel id `{}` is used twice", panel.id)));
            }
            panel
                .check_shape()
                .map_err(|reason| error(format!("panel `{}`: {reason}", panel.id)))?;
        }
        if spec.panels.is_empty() {
            return Err(error("a dashboard needs at least one [[panel]]".to_owned()));
        }
        Ok(spec)
    }

    /// The index a panel reads: a log type name or [`ALL`].
    pub fn index_of<'a>(&'a self, panel: &'a PanelSpec) -> &'a str {
        panel.index.as_deref().unwrap_or(&self.index)
    }

    pub fn saved_object_id(&self) -> String {
        format!("{NAME_PREFIX}-{}", self.id)
    }
}

fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The field names of a KQL query: every `name:` outside quoted values.
pub fn query_fields(query: &str) -> Vec<String> {
    static QUOTED: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r#""(?:[^"\\]|\\.)*""#).ok());
    static FIELD: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"([@A-Za-z_][A-Za-z0-9_.@-]*)\s*:").ok());
    let (Some(quoted), Some(field)) = (&*QUOTED, &*FIELD) else {
        return Vec::new();
    };
    let bare = quoted.replace_all(query, "\"\"");
    let mut out: Vec<String> = field
        .captures_iter(&bare)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_owned()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `table` lets a panel use `field` that way; the reason when not.
pub fn check_field(table: &FieldTable, field: &str, usage: Usage) -> Result<(), String> {
    let resolved = table.resolve(field);
    match (usage, resolved) {
        (_, None) => Err(format!("`{field}` is not a mapped field")),
        (Usage::Queried, Some(_)) => Ok(()),
        (Usage::Located, Some(Resolved::Field(FieldType::GeoPoint))) => Ok(()),
        (Usage::Located, _) => Err(format!("`{field}` is not a geo_point")),
        (Usage::Aggregated, Some(Resolved::InFlatObject(object))) => Err(format!(
            "`{field}` is inside the flat object `{object}`: its values cannot be counted"
        )),
        (Usage::Aggregated, Some(Resolved::Field(t @ (FieldType::Text | FieldType::GeoPoint)))) => {
            Err(format!(
                "`{field}` is a {t} field: its values cannot be counted"
            ))
        }
        (Usage::Aggregated, Some(Resolved::Field(FieldType::FlatObject))) => Err(format!(
            "`{field}` is a flat object: count by a field inside it that the templates map"
        )),
        (Usage::Aggregated, Some(Resolved::Field(_))) => Ok(()),
    }
}

/// The index pattern of one index, or of every index.
pub fn index_pattern_id(alias: Option<&str>) -> String {
    format!("{NAME_PREFIX}-index-{}", alias.unwrap_or(ALL))
}

/// Every saved object: the index patterns, then each dashboard's visualizations and itself.
pub fn saved_objects(
    config: &Config,
    content: &Content,
    groups: &[IndexGroup],
) -> Result<Vec<Artifact>, ContentError> {
    let mut out: Vec<Artifact> = groups
        .iter()
        .map(|g| index_pattern(&index_pattern_id(Some(&g.alias)), &g.pattern()))
        .collect();
    let every: Vec<String> = groups.iter().map(IndexGroup::pattern).collect();
    out.push(index_pattern(&index_pattern_id(None), &every.join(",")));
    for spec in &content.dashboards {
        out.extend(dashboard(config, content, groups, spec)?);
    }
    Ok(out)
}

fn index_pattern(id: &str, title: &str) -> Artifact {
    saved_object(
        "index-pattern",
        id,
        json!({"title": title, "timeFieldName": "@timestamp"}),
        Vec::new(),
    )
}

/// The saved-object format version the objects are written in (Dashboards' own, from the
/// Kibana 7.10 line): Dashboards then takes them as current instead of running every migration
/// since 7.0 over them, so what it keeps is what was sent and a second setup finds it unchanged.
fn migration_version(kind: &str) -> &'static str {
    match kind {
        "index-pattern" => "7.6.0",
        "dashboard" => "7.9.3",
        _ => "7.10.0",
    }
}

fn saved_object(kind: &str, id: &str, attributes: Value, references: Vec<Value>) -> Artifact {
    Artifact {
        kind: ArtifactKind::SavedObject,
        name: format!("{kind}/{id}"),
        body: json!({"type": kind, "id": id, "attributes": attributes, "references": references,
                     "migrationVersion": {kind: migration_version(kind)}}),
        existing: None,
    }
}

/// The group a panel's index names, `None` for every index.
fn group_for<'a>(
    config: &Config,
    groups: &'a [IndexGroup],
    index: &str,
) -> Result<Option<&'a IndexGroup>, String> {
    if index == ALL {
        return Ok(None);
    }
    if config.get(index).is_none() {
        return Err(format!(
            "index `{index}` is not a log type of the configuration, nor `{ALL}`"
        ));
    }
    groups
        .iter()
        .find(|g| g.types.iter().any(|t| t == index))
        .map(Some)
        .ok_or_else(|| format!("log type `{index}` has no index"))
}

fn dashboard(
    config: &Config,
    content: &Content,
    groups: &[IndexGroup],
    spec: &DashboardSpec,
) -> Result<Vec<Artifact>, ContentError> {
    let error = |reason: String| {
        ContentError::Dashboard(DashboardError {
            file: spec.file.clone(),
            reason,
        })
    };
    let mut out = Vec::new();
    let mut panels = Vec::new();
    let mut references = Vec::new();
    let mut layout = Layout::default();
    // The fields of each index the panels read, merged once.
    let mut tables: BTreeMap<Option<&str>, FieldTable> = BTreeMap::new();
    for (n, panel) in spec.panels.iter().enumerate() {
        let in_panel = |reason: String| error(format!("panel `{}`: {reason}", panel.id));
        let group = group_for(config, groups, spec.index_of(panel)).map_err(in_panel)?;
        let key = group.map(|g| g.alias.as_str());
        let table = match tables.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(match group {
                Some(g) => super::templates::all_fields_of(content, g)?,
                None => content.shared_fields()?,
            }),
        };
        for (field, usage) in panel.fields().map_err(in_panel)? {
            check_field(table, &field, usage).map_err(in_panel)?;
        }
        let vis_id = format!("{}-{}", spec.saved_object_id(), panel.id);
        let pattern = index_pattern_id(group.map(|g| g.alias.as_str()));
        out.push(visualization(&vis_id, panel, &pattern).map_err(in_panel)?);
        let (width, height) = panel_size(panel);
        let (x, y) = layout.place(width, height);
        let index = (n + 1).to_string();
        panels.push(json!({
            "panelIndex": index,
            "gridData": {"x": x, "y": y, "w": width, "h": height, "i": index},
            "embeddableConfig": {},
            "version": "2.11.0",
            "panelRefName": format!("panel_{n}")
        }));
        references.push(json!({
            "name": format!("panel_{n}"),
            "type": "visualization",
            "id": vis_id
        }));
    }
    out.push(saved_object(
        "dashboard",
        &spec.saved_object_id(),
        json!({
            "title": spec.title,
            "description": spec.description,
            "panelsJSON": Value::Array(panels).to_string(),
            "optionsJSON": json!({"hidePanelTitles": false, "useMargins": true}).to_string(),
            "timeRestore": true,
            "timeFrom": spec.time_from,
            "timeTo": "now",
            "refreshInterval": {"pause": true, "value": 0},
            "version": 1,
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": json!({"query": {"query": "", "language": "kuery"}, "filter": []}).to_string()
            }
        }),
        references,
    ));
    Ok(out)
}

fn panel_size(panel: &PanelSpec) -> (u32, u32) {
    let (width, height) = match panel.chart {
        Chart::Metric => (12, 8),
        Chart::Line | Chart::Map => (GRID_COLUMNS, 12),
        _ => (24, 14),
    };
    (panel.width.unwrap_or(width), panel.height.unwrap_or(height))
}

/// Panels placed left to right, a new row when one does not fit.
#[derive(Debug, Default)]
struct Layout {
    x: u32,
    y: u32,
    row_height: u32,
}

impl Layout {
    fn place(&mut self, width: u32, height: u32) -> (u32, u32) {
        if self.x + width > GRID_COLUMNS {
            self.x = 0;
            self.y += self.row_height;
            self.row_height = 0;
        }
        let at = (self.x, self.y);
        self.x += width;
        self.row_height = self.row_height.max(height);
        at
    }
}

fn visualization(id: &str, panel: &PanelSpec, pattern_id: &str) -> Result<Artifact, String> {
    let metric = panel.metric()?;
    let mut aggs = vec![json!({
        "id": "1",
        "enabled": true,
        "type": metric.kind,
        "schema": "metric",
        "params": match &metric.field {
            Some(field) => json!({"field": field}),
            None => json!({}),
        }
    })];
    let terms = |id: usize, field: &str, schema: &str| {
        json!({
            "id": id.to_string(),
            "enabled": true,
            "type": "terms",
            "schema": schema,
            "params": {
                "field": field,
                "size": panel.size,
                "order": "desc",
                "orderBy": "1",
                "otherBucket": false,
                "missingBucket": false
            }
        })
    };
    let over_time = json!({
        "id": "2",
        "enabled": true,
        "type": "date_histogram",
        "schema": "segment",
        "params": {
            "field": "@timestamp",
            "useNormalizedOpenSearchInterval": true,
            "interval": "auto",
            "drop_partials": false,
            "min_doc_count": 1,
            "extended_bounds": {}
        }
    });
    let (vis_type, params) = match panel.chart {
        Chart::Line | Chart::Bar => {
            match panel.terms.first() {
                Some(field) => aggs.push(terms(2, field, "segment")),
                None => aggs.push(over_time),
            }
            if let Some(split) = &panel.split {
                aggs.push(terms(3, split, "group"));
            }
            let kind = if panel.chart == Chart::Line {
                "line"
            } else {
                "histogram"
            };
            (kind, xy_params(kind, &metric_label(&metric)))
        }
        Chart::Pie => {
            aggs.push(terms(2, &panel.terms[0], "segment"));
            (
                "pie",
                json!({"type": "pie", "addTooltip": true, "addLegend": true, "legendPosition": "right", "isDonut": true,
                       "labels": {"show": false, "values": true, "last_level": true, "truncate": 100}}),
            )
        }
        Chart::Table => {
            for (n, field) in panel.terms.iter().enumerate() {
                aggs.push(terms(n + 2, field, "bucket"));
            }
            (
                "table",
                json!({"perPage": 10, "showPartialRows": false, "showMetricsAtAllLevels": false,
                       "showTotal": false, "totalFunc": "sum", "percentageCol": ""}),
            )
        }
        Chart::Metric => (
            "metric",
            json!({"addTooltip": true, "addLegend": false, "type": "metric",
                   "metric": {"percentageMode": false, "useRanges": false, "colorSchema": "Green to Red",
                              "metricColorMode": "None", "colorsRange": [{"from": 0, "to": 10000}],
                              "labels": {"show": true}, "invertColors": false,
                              "style": {"bgFill": "#000", "bgColor": false, "labelColor": false, "subText": "", "fontSize": 60}}}),
        ),
        Chart::Map => {
            let field = panel.field.as_deref().unwrap_or_default();
            aggs.push(json!({
                "id": "2",
                "enabled": true,
                "type": "geohash_grid",
                "schema": "segment",
                "params": {"field": field, "autoPrecision": true, "precision": 2,
                           "useGeocentroid": true, "isFilteredByCollar": true}
            }));
            (
                "tile_map",
                json!({"mapType": "Scaled Circle Markers", "isDesaturated": true, "addTooltip": true,
                       "heatClusterSize": 1.5, "legendPosition": "bottomright", "mapZoom": 2,
                       "mapCenter": [0, 0], "wms": {"enabled": false}}),
            )
        }
    };
    let vis_state = json!({"title": panel.title, "type": vis_type, "params": params, "aggs": aggs});
    let search = json!({
        "query": {"query": panel.query, "language": "kuery"},
        "filter": [],
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"
    });
    Ok(saved_object(
        "visualization",
        id,
        json!({
            "title": panel.title,
            "visState": vis_state.to_string(),
            "uiStateJSON": "{}",
            "description": "",
            "version": 1,
            "kibanaSavedObjectMeta": {"searchSourceJSON": search.to_string()}
        }),
        vec![json!({
            "name": "kibanaSavedObjectMeta.searchSourceJSON.index",
            "type": "index-pattern",
            "id": pattern_id
        })],
    ))
}

fn metric_label(metric: &Metric) -> String {
    match (&metric.field, metric.kind) {
        (Some(field), "cardinality") => format!("Unique count of {field}"),
        (Some(field), kind) => format!("{} of {field}", capitalized(kind)),
        (None, _) => "Count".to_owned(),
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The axes and series of a line or bar chart (what the chart editor saves).
fn xy_params(kind: &str, label: &str) -> Value {
    json!({
        "type": kind,
        "grid": {"categoryLines": false},
        "categoryAxes": [{"id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": true,
                          "style": {}, "scale": {"type": "linear"},
                          "labels": {"show": true, "filter": true, "truncate": 100}, "title": {}}],
        "valueAxes": [{"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left",
                       "show": true, "style": {}, "scale": {"type": "linear", "mode": "normal"},
                       "labels": {"show": true, "rotate": 0, "filter": false, "truncate": 100},
                       "title": {"text": label}}],
        "seriesParams": [{"show": true, "type": kind, "mode": if kind == "line" { "normal" } else { "stacked" },
                          "data": {"label": label, "id": "1"}, "valueAxis": "ValueAxis-1",
                          "drawLinesBetweenPoints": true, "lineWidth": 2, "showCircles": true}],
        "addTooltip": true,
        "addLegend": true,
        "legendPosition": "right",
        "times": [],
        "addTimeMarker": false,
        "labels": {"show": false}
    })
}

/// The saved objects a dashboard needs, itself last: importable as one NDJSON file.
pub fn with_references<'a>(objects: &'a [Artifact], root: &'a Artifact) -> Vec<&'a Artifact> {
    let mut wanted: Vec<&Artifact> = vec![root];
    let mut i = 0;
    while i < wanted.len() {
        let refs: Vec<String> = wanted[i].body["references"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| Some(format!("{}/{}", r["type"].as_str()?, r["id"].as_str()?)))
            .collect();
        for name in refs {
            if let Some(object) = objects.iter().find(|o| o.name == name)
                && !wanted.iter().any(|w| w.name == name)
            {
                wanted.push(object);
            }
        }
        i += 1;
    }
    wanted.reverse();
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::index_groups;
    use std::collections::BTreeMap;

    fn spec(text: &str) -> Result<DashboardSpec, DashboardError> {
        DashboardSpec::parse("d.toml", text)
    }

    const ONE: &str = r#"
id = "waf"
title = "WAF"
index = "waf"

[[panel]]
id = "blocked"
title = "Blocked"
chart = "line"
query = 'event.action:BLOCK and not httpRequest.headers.value:"a:b"'
split = "rule.name"

[[panel]]
id = "clients"
title = "Clients"
chart = "table"
terms = ["source.ip", "source.geo.country_iso_code"]
metric = "unique:http.request.id"
size = 20
"#;

    #[test]
    fn query_fields_skip_quoted_values() {
        assert_eq!(
            query_fields(r#"event.action:(A or B) and not user.name:"x:y" and @log_type : waf"#),
            ["@log_type", "event.action", "user.name"]
        );
        assert!(query_fields("").is_empty());
    }

    #[test]
    fn panels_become_visualizations_laid_out_on_a_dashboard() {
        let config = Config::builtin().expect("config");
        let mut content = Content::bundled().expect("content");
        content.dashboards = vec![spec(ONE).expect("valid")];
        let groups = index_groups(&config, &BTreeMap::new()).expect("groups");
        let objects = saved_objects(&config, &content, &groups).expect("objects");
        let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        assert!(names.contains(&"index-pattern/org-security-logs-index-log-aws-waf"));
        assert!(names.contains(&"index-pattern/org-security-logs-index-all"));
        let all = objects
            .iter()
            .find(|o| o.name == "index-pattern/org-security-logs-index-all")
            .expect("all");
        assert!(
            all.body["attributes"]["title"]
                .as_str()
                .is_some_and(|t| t.contains("log-aws-cloudtrail-*,")),
            "{}",
            all.body
        );
        let line = objects
            .iter()
            .find(|o| o.name == "visualization/org-security-logs-waf-blocked")
            .expect("line");
        let vis: Value = serde_json::from_str(
            line.body["attributes"]["visState"]
                .as_str()
                .expect("string"),
        )
        .expect("json");
        assert_eq!(vis["type"], json!("line"));
        assert_eq!(vis["aggs"][1]["type"], json!("date_histogram"));
        assert_eq!(vis["aggs"][2]["params"]["field"], json!("rule.name"));
        assert_eq!(
            line.body["references"][0]["id"],
            json!("org-security-logs-index-log-aws-waf")
        );
        let table = objects
            .iter()
            .find(|o| o.name == "visualization/org-security-logs-waf-clients")
            .expect("table");
        let vis: Value = serde_json::from_str(
            table.body["attributes"]["visState"]
                .as_str()
                .expect("string"),
        )
        .expect("json");
        assert_eq!(vis["aggs"][0]["type"], json!("cardinality"));
        assert_eq!(
            vis["aggs"][2]["params"]["field"],
            json!("source.geo.country_iso_code")
        );
        assert_eq!(vis["aggs"][2]["params"]["size"], json!(20));

        let board = objects.last().expect("dashboard");
        assert_eq!(board.name, "dashboard/org-security-logs-waf");
        assert_eq!(
            board.body["migrationVersion"],
            json!({"dashboard": "7.9.3"})
        );
        assert_eq!(
            line.body["migrationVersion"],
            json!({"visualization": "7.10.0"})
        );
        let panels: Value = serde_json::from_str(
            board.body["attributes"]["panelsJSON"]
                .as_str()
                .expect("string"),
        )
        .expect("json");
        assert_eq!(
            panels[0]["gridData"],
            json!({"x": 0, "y": 0, "w": 48, "h": 12, "i": "1"})
        );
        assert_eq!(
            panels[1]["gridData"],
            json!({"x": 0, "y": 12, "w": 24, "h": 14, "i": "2"})
        );
        assert_eq!(
            board.body["references"][1]["id"],
            json!("org-security-logs-waf-clients")
        );

        // One importable file: the index pattern, the visualizations, the dashboard last.
        let file = with_references(&objects, board);
        assert_eq!(file.len(), 4);
        assert_eq!(
            file[0].name,
            "index-pattern/org-security-logs-index-log-aws-waf"
        );
        assert_eq!(file[3].name, board.name);
    }

    #[test]
    fn panels_on_unmapped_text_or_flat_fields_are_refused() {
        let config = Config::builtin().expect("config");
        let groups = index_groups(&config, &BTreeMap::new()).expect("groups");
        let cases = [
            ("terms = [\"no.such.field\"]", "not a mapped field"),
            ("terms = [\"message\"]", "text field"),
            (
                "terms = [\"requestParameters.bucketName\"]",
                "inside the flat object",
            ),
            ("terms = [\"requestParameters\"]", "flat object"),
            ("terms = [\"event.action\"]\nquery = 'nope:1'", "`nope`"),
        ];
        for (line, expected) in cases {
            let text = format!(
                "id = \"x\"\ntitle = \"X\"\nindex = \"cloudtrail\"\n[[panel]]\nid = \"p\"\ntitle = \"P\"\nchart = \"table\"\n{line}\n"
            );
            let mut content = Content::bundled().expect("content");
            content.dashboards = vec![spec(&text).expect("shape is valid")];
            let err = saved_objects(&config, &content, &groups).expect_err(line);
            assert!(err.to_string().contains(expected), "{line}: {err}");
            assert!(err.to_string().contains("panel `p`"), "{err}");
        }
        // A query may look inside a flat object.
        let text = "id = \"x\"\ntitle = \"X\"\nindex = \"cloudtrail\"\n[[panel]]\nid = \"p\"\ntitle = \"P\"\nchart = \"metric\"\nquery = 'requestParameters.bucketName:logs'\n";
        let mut content = Content::bundled().expect("content");
        content.dashboards = vec![spec(text).expect("valid")];
        assert!(saved_objects(&config, &content, &groups).is_ok());
    }

    #[test]
    fn badly_shaped_specs_are_named() {
        let head =
            "id = \"x\"\ntitle = \"X\"\nindex = \"waf\"\n[[panel]]\nid = \"p\"\ntitle = \"P\"\n";
        for (rest, expected) in [
            ("chart = \"pie\"\n", "needs `terms`"),
            ("chart = \"map\"\n", "needs `field`"),
            (
                "chart = \"pie\"\nterms = [\"a\"]\nsplit = \"b\"\n",
                "`split`",
            ),
            ("chart = \"line\"\nterms = [\"a\"]\n", "no `terms`"),
            ("chart = \"metric\"\nmetric = \"median:a\"\n", "median"),
            ("chart = \"donut\"\n", "donut"),
            ("chart = \"metric\"\ncolour = \"red\"\n", "colour"),
            (
                "chart = \"metric\"\n[[panel]]\nid = \"p\"\ntitle = \"Q\"\nchart = \"metric\"\n",
                "twice",
            ),
        ] {
            let err = spec(&format!("{head}{rest}")).expect_err(rest);
            assert!(err.to_string().starts_with("d.toml: "), "{err}");
            assert!(err.to_string().contains(expected), "{rest}: {err}");
        }
        let err = spec("id = \"Bad Id\"\ntitle = \"X\"\nindex = \"waf\"\n[[panel]]\nid = \"p\"\ntitle = \"P\"\nchart = \"metric\"\n")
            .expect_err("id");
        assert!(err.to_string().contains("Bad Id"), "{err}");
    }
}
