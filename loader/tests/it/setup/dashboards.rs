//! Every saved object references only fields that the templates map and the golden fixtures
//! produce: a visualization on a missing field is a defect. Read from the saved objects
//! themselves (the aggregations of `visState` and the query of `searchSourceJSON`), not from
//! the dashboard files they were made from.

use super::*;
use crate::sink::golden_docs::golden_items;
use loader::content::ArtifactKind;
use loader::content::dashboards::{ALL, Usage, check_field, index_pattern_id, query_fields};
use loader::content::templates::all_fields_of;
use std::collections::BTreeSet;

#[test]
fn saved_objects_reference_only_fields_the_templates_map_and_the_fixtures_produce() {
    let (config, content) = fixture_config();
    let groups = groups(&config);
    // Fields the fixtures produce, by alias and over every index.
    let mut produced: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in golden_items("") {
        let doc: Value = serde_json::from_slice(&item.source).expect("source");
        let alias = group_of(&groups, &item.index).alias.clone();
        for key in [alias, ALL.to_owned()] {
            let paths = produced.entry(key).or_default();
            visit(&doc, "", &mut |path, _| {
                paths.insert(path.to_owned());
            });
        }
    }
    let objects: Vec<Value> = content::plan(&config, &content, &Options::default())
        .expect("plan")
        .into_iter()
        .filter(|a| a.kind == ArtifactKind::SavedObject)
        .map(|a| a.body)
        .collect();
    let ids: BTreeSet<String> = objects.iter().map(object_key).collect();
    let mut checked = 0;
    let mut problems = Vec::new();
    for object in &objects {
        for r in object["references"].as_array().into_iter().flatten() {
            let target = object_key(r);
            if !ids.contains(&target) {
                problems.push(format!("{}: references missing {target}", object["id"]));
            }
        }
        if object["type"] != "visualization" {
            continue;
        }
        let pattern = object["references"][0]["id"].as_str().unwrap_or_default();
        let (key, table) = match groups
            .iter()
            .find(|g| index_pattern_id(Some(&g.alias)) == pattern)
        {
            Some(g) => (g.alias.clone(), all_fields_of(&content, g).expect("fields")),
            None => {
                assert_eq!(pattern, index_pattern_id(None), "{}", object["id"]);
                (ALL.to_owned(), content.shared_fields().expect("fields"))
            }
        };
        let vis: Value =
            serde_json::from_str(object["attributes"]["visState"].as_str().unwrap_or("{}"))
                .expect("visState is JSON");
        let search: Value = serde_json::from_str(
            object["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]
                .as_str()
                .unwrap_or("{}"),
        )
        .expect("searchSourceJSON is JSON");
        let mut fields: Vec<(String, Usage)> = vis["aggs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|agg| {
                let field = agg["params"]["field"].as_str()?.to_owned();
                let usage = if agg["type"] == "geohash_grid" {
                    Usage::Located
                } else {
                    Usage::Aggregated
                };
                Some((field, usage))
            })
            .collect();
        fields.extend(
            query_fields(search["query"]["query"].as_str().unwrap_or_default())
                .into_iter()
                .map(|f| (f, Usage::Queried)),
        );
        for (field, usage) in fields {
            checked += 1;
            if let Err(why) = check_field(&table, &field, usage) {
                problems.push(format!("{}: {why}", object["id"]));
            }
            let made = produced.get(&key).is_some_and(|p| p.contains(&field));
            if !made {
                problems.push(format!(
                    "{}: no fixture of {key} produces `{field}`",
                    object["id"]
                ));
            }
        }
    }
    assert!(checked > 100, "fields checked: {checked}");
    assert!(problems.is_empty(), "{problems:#?}");
}
