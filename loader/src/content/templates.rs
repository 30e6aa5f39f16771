//! Component templates (settings, and one per ECS group of `components/`) and one composable
//! index template per index of the configuration.
//!
//! Every index template is composed of every component template, so an ECS field has one
//! type in every index and an index pattern over several types (the overview) never sees a
//! field with two types. Each template carries `_meta.content_hash`, a hash of its own body:
//! `loader setup` compares it to tell what changed without depending on how a cluster
//! rewrites settings and mappings in its answers.

use super::fields::FieldTable;
use super::{
    Artifact, ArtifactKind, Content, ContentError, IndexGroup, NAME_PREFIX, Options,
    substitute::substitute,
};
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::BTreeMap;

/// The component template of settings and dynamic mapping rules.
pub fn settings_component_name() -> String {
    format!("{NAME_PREFIX}-settings")
}

/// The component template of a component field table.
pub fn component_name(table: &str) -> String {
    format!("{NAME_PREFIX}-{table}")
}

/// The settings component first (settings of later components would win), then one per field
/// table of `components/`.
pub fn component_templates(
    content: &Content,
    options: &Options,
) -> Result<Vec<Artifact>, ContentError> {
    let values = BTreeMap::from([
        ("shards", json!(options.shards)),
        ("replicas", json!(options.replicas)),
        ("refresh_interval", json!(options.refresh_interval)),
    ]);
    let settings = substitute(&content.settings, &values)
        .map_err(|reason| ContentError::file("settings.json", reason))?;
    let mut out = vec![Artifact {
        kind: ArtifactKind::ComponentTemplate,
        name: settings_component_name(),
        body: with_meta(settings, json!({"part": "settings"})),
        existing: None,
    }];
    for (name, table) in &content.components {
        out.push(Artifact {
            kind: ArtifactKind::ComponentTemplate,
            name: component_name(name),
            body: with_meta(
                json!({"template": {"mappings": {"properties": table.properties()}}}),
                json!({"part": format!("components/{name}.fields")}),
            ),
            existing: None,
        });
    }
    Ok(out)
}

/// The index template of one index: its rotated indices, their alias, and the fields of its
/// types over the shared components.
pub fn index_template(content: &Content, group: &IndexGroup) -> Result<Artifact, ContentError> {
    let table = fields_of(content, group)?;
    let mut composed_of = vec![settings_component_name()];
    composed_of.extend(content.components.keys().map(|c| component_name(c)));
    let rotation = format!("{:?}", group.rotation).to_lowercase();
    let body = json!({
        "index_patterns": [group.pattern()],
        "priority": group.priority(),
        "composed_of": composed_of,
        "template": {
            "aliases": {group.alias.clone(): {}},
            "mappings": {"properties": table.properties()}
        }
    });
    Ok(Artifact {
        kind: ArtifactKind::IndexTemplate,
        name: group.alias.clone(),
        body: with_meta(
            body,
            json!({"log_types": group.types, "rotation": rotation}),
        ),
        existing: Some(group.existing()),
    })
}

/// The fields an index declares beyond the components (those of every type writing to it),
/// and every field it maps (the components' too).
fn tables_of(
    content: &Content,
    group: &IndexGroup,
) -> Result<(FieldTable, FieldTable), ContentError> {
    let conflict = |reason| ContentError::Index {
        alias: group.alias.clone(),
        reason,
    };
    let mut own = FieldTable::default();
    for t in &group.types {
        if let Some(table) = content.types.get(t) {
            own.merge(table).map_err(conflict)?;
        }
    }
    // A type field that redeclares a shared one with another type would be refused by the
    // cluster as a conflict between the template and its components: say it here.
    let mut all = content.shared_fields()?;
    all.merge(&own).map_err(conflict)?;
    Ok((own, all))
}

/// The fields an index declares beyond the components.
pub fn fields_of(content: &Content, group: &IndexGroup) -> Result<FieldTable, ContentError> {
    tables_of(content, group).map(|(own, _)| own)
}

/// Every field an index maps: the shared components and its types' own.
pub fn all_fields_of(content: &Content, group: &IndexGroup) -> Result<FieldTable, ContentError> {
    tables_of(content, group).map(|(_, all)| all)
}

/// `body` with `_meta`: who manages it, `extra`, and the hash of everything else.
fn with_meta(mut body: Value, extra: Value) -> Value {
    let hash = content_hash(&body);
    let mut meta = json!({"managed_by": NAME_PREFIX, "content_hash": hash});
    if let (Some(meta), Value::Object(extra)) = (meta.as_object_mut(), extra) {
        meta.extend(extra);
    }
    if let Some(map) = body.as_object_mut() {
        map.insert("_meta".to_owned(), meta);
    }
    body
}

/// A short hash of a JSON value (serde_json writes object keys in order, so equal values give
/// equal text).
pub fn content_hash(value: &Value) -> String {
    let digest = sha2::Sha256::digest(value.to_string().as_bytes());
    hex::encode(&digest[..12])
}

/// The hash a template body was made with.
pub fn hash_of(body: &Value) -> Option<&str> {
    body.get("_meta")?.get("content_hash")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::content::index_groups;

    fn plan_for(config: &Config) -> Vec<Artifact> {
        let content = Content::bundled().expect("content");
        let groups = index_groups(config, &BTreeMap::new()).expect("groups");
        let mut out = component_templates(&content, &Options::default()).expect("components");
        for g in &groups {
            out.push(index_template(&content, g).expect("template"));
        }
        out
    }

    #[test]
    fn every_index_gets_a_template_with_alias_pattern_and_all_components() {
        let config = Config::builtin().expect("config");
        let artifacts = plan_for(&config);
        let components: Vec<&str> = artifacts
            .iter()
            .filter(|a| a.kind == ArtifactKind::ComponentTemplate)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(components[0], "org-security-logs-settings");
        assert!(components.contains(&"org-security-logs-network"));
        let ct = artifacts
            .iter()
            .find(|a| a.name == "log-aws-cloudtrail")
            .expect("cloudtrail template");
        assert_eq!(ct.body["index_patterns"], json!(["log-aws-cloudtrail-*"]));
        assert_eq!(
            ct.body["template"]["aliases"],
            json!({"log-aws-cloudtrail": {}})
        );
        assert_eq!(
            ct.body["composed_of"].as_array().map(Vec::len),
            Some(components.len())
        );
        assert_eq!(
            ct.body["template"]["mappings"]["properties"]["requestParameters"],
            json!({"type": "flat_object"})
        );
        assert_eq!(ct.body["_meta"]["log_types"], json!(["cloudtrail"]));
        assert_eq!(ct.body["_meta"]["rotation"], json!("monthly"));
        let templates = artifacts
            .iter()
            .filter(|a| a.kind == ArtifactKind::IndexTemplate)
            .count();
        // One per index (types may share one: CloudFront's two, AWS Config's three), and the
        // detection alerts'.
        let indices: std::collections::BTreeSet<&str> =
            config.types.iter().map(|t| t.index_name.as_str()).collect();
        assert!(indices.len() < config.types.len());
        assert_eq!(templates, indices.len() + 1);
        let alerts = artifacts
            .iter()
            .find(|a| a.name == "alert")
            .expect("alert template");
        assert_eq!(alerts.body["index_patterns"], json!(["alert-*"]));
    }

    #[test]
    fn settings_come_from_the_options_and_hashes_follow_the_body() {
        let content = Content::bundled().expect("content");
        let options = Options {
            shards: 3,
            replicas: 0,
            refresh_interval: "5s".into(),
            ..Options::default()
        };
        let a = component_templates(&content, &options).expect("components");
        let index = &a[0].body["template"]["settings"]["index"];
        assert_eq!(
            (
                &index["number_of_shards"],
                &index["number_of_replicas"],
                &index["refresh_interval"]
            ),
            (&json!(3), &json!(0), &json!("5s"))
        );
        let b = component_templates(&content, &Options::default()).expect("components");
        assert_ne!(hash_of(&a[0].body), hash_of(&b[0].body));
        assert_eq!(hash_of(&a[1].body), hash_of(&b[1].body));
        // The hash covers the body without its own `_meta`.
        let mut body = a[1].body.clone();
        body.as_object_mut().map(|m| m.remove("_meta"));
        assert_eq!(hash_of(&a[1].body), Some(content_hash(&body).as_str()));
    }

    #[test]
    fn a_type_field_that_contradicts_a_component_is_refused() {
        let mut content = Content::bundled().expect("content");
        content
            .add_type_fields("waf.fields", "source.ip keyword\n")
            .expect("parses");
        let config = Config::builtin().expect("config");
        let groups = index_groups(&config, &BTreeMap::new()).expect("groups");
        let waf = groups
            .iter()
            .find(|g| g.alias == "log-aws-waf")
            .expect("waf");
        let err = index_template(&content, waf).expect_err("conflict");
        assert!(err.to_string().contains("source.ip"), "{err}");
    }
}
